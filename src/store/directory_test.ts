import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { withStore } from "./_test_support.ts";
import { DirectoryIndex } from "./directory.ts";
import { normalizePath } from "./path.ts";
import { shardIndex } from "./shards.ts";

Deno.test("a directory of 100,000 entries spreads over bounded shards and lists completely", async () => {
  await withStore(async ({ client, store }) => {
    const capacity = 2000;
    const index = new DirectoryIndex(client, { capacity, fanout: 16 });
    const dir = store.layout.directory(normalizePath("huge"));
    const total = 100_000;
    const batch = 10_000;
    for (let start = 0; start < total; start += batch) {
      const entries = Array.from({ length: batch }, (_, i) => ({
        type: "file" as const,
        name: Buffer.from(`entry-${String(start + i).padStart(6, "0")}`),
      }));
      await index.add(dir, entries);
    }
    const seen = new Set<string>();
    for await (const entry of index.list(dir)) seen.add(entry.name.toString());
    assert.equal(seen.size, total);
    // Every shard stays within capacity.
    if (dir.entries.kind !== "sharded") throw new Error("expected a sharded directory");
    const root = await client.fetchSet({
      bucketType: dir.entries.bucketType,
      bucket: dir.entries.bucket,
      key: dir.entries.dirKey,
    });
    const markers = root!.members.map((m) => Buffer.from(m).toString()).filter((m) =>
      m.startsWith("#shards:")
    );
    assert.ok(markers.length >= 1, "new levels were opened");
    const counts = markers.map((m) => Number(m.slice("#shards:".length)));
    for (const count of counts) {
      for (let i = 0; i < count; i++) {
        const shard = await client.fetchSet({
          bucketType: dir.entries.bucketType,
          bucket: dir.entries.bucket,
          key: Buffer.concat([dir.entries.dirKey, Buffer.from(`#${count}.${i}`)]),
        });
        assert.ok((shard?.members.length ?? 0) <= capacity, `shard ${count}.${i} over capacity`);
      }
    }
    // A single change costs one shard per level, wherever the name lives.
    const name = Buffer.from("entry-012345");
    assert.deepEqual(await index.lookup(dir, name), { type: "file", name });
    await index.remove(dir, [name]);
    assert.equal(await index.lookup(dir, name), undefined);
    await index.add(dir, [{ type: "directory", name }]);
    assert.equal((await index.lookup(dir, name))?.type, "directory");
    await index.add(dir, [{ type: "file", name: Buffer.from("entry-099999") }]); // already there
    let count = 0;
    for await (const _ of index.list(dir)) count++;
    assert.equal(count, total);
  });
});

Deno.test("long names open new levels by bytes, not only by count; every shard stays within both", async () => {
  await withStore(async ({ client, store }) => {
    const maxBytes = 8_000;
    const index = new DirectoryIndex(client, { capacity: 2000, maxBytes, fanout: 16 });
    const dir = store.layout.directory(normalizePath("long-names"));
    const sharded = dir.entries;
    if (sharded.kind !== "sharded") throw new Error("expected a sharded directory");
    const names = Array.from(
      { length: 300 },
      (_, i) => `${String(i).padStart(4, "0")}-${"x".repeat(240)}`,
    );
    for (let start = 0; start < names.length; start += 50) {
      await index.add(
        dir,
        names.slice(start, start + 50).map((name) => ({
          type: "file" as const,
          name: Buffer.from(name),
        })),
      );
    }
    const listed = [];
    for await (const entry of index.list(dir)) listed.push(entry.name.toString());
    assert.deepEqual(listed.sort(), names);
    const location = (key: Buffer) => ({
      bucketType: sharded.bucketType,
      bucket: sharded.bucket,
      key,
    });
    const root = await client.fetchSet(location(sharded.dirKey));
    const counts = root!.members.map((m) => Buffer.from(m).toString())
      .filter((m) => m.startsWith("#shards:")).map((m) => Number(m.slice("#shards:".length)));
    assert.ok(counts.length >= 1, "300 entries, far below the count capacity, opened a level");
    for (const count of [1, ...counts]) {
      for (let i = 0; i < count; i++) {
        const key = count === 1
          ? sharded.dirKey
          : Buffer.concat([sharded.dirKey, Buffer.from(`#${count}.${i}`)]);
        const members = (await client.fetchSet(location(key)))?.members ?? [];
        const bytes = members.filter((m) => !Buffer.from(m).toString().startsWith("#"))
          .reduce((total, member) => total + member.length, 0);
        assert.ok(bytes <= maxBytes, `shard ${count}.${i} holds ${bytes} bytes`);
      }
    }
    // A name longer than a whole shard's bound still finds a place: an empty shard takes it.
    const tiny = new DirectoryIndex(client, { capacity: 2000, maxBytes: 10, fanout: 16 });
    const other = store.layout.directory(normalizePath("tiny-shards"));
    const long = ["a", "b", "c"].map((letter) => Buffer.from(letter.repeat(200)));
    await tiny.add(other, long.map((name) => ({ type: "file" as const, name })));
    const found = [];
    for await (const entry of tiny.list(other)) found.push(entry.name.toString());
    assert.deepEqual(found.sort(), long.map((name) => name.toString()));
  });
});

Deno.test("an entry added under the other type replaces the old one, in a one-shard directory too", async () => {
  await withStore(async ({ client, store }) => {
    const index = new DirectoryIndex(client, { capacity: 2000, fanout: 16 });
    const dir = store.layout.directory(normalizePath("small"));
    await index.add(dir, [{ type: "file", name: Buffer.from("x") }, {
      type: "file",
      name: Buffer.from("y"),
    }]);
    // A directory now where a file was (its removal lost in a crash, say).
    await index.add(dir, [{ type: "directory", name: Buffer.from("x") }]);
    const listed = [];
    for await (const entry of index.list(dir)) listed.push(`${entry.type} ${entry.name}`);
    assert.deepEqual(listed.sort(), ["directory x", "file y"]);
  });
});

Deno.test("a listing running while names are removed and added again lists each name once, and every name that stayed", async () => {
  await withStore(async ({ client, store }) => {
    // Small shards: the root fills at 4 entries, then levels of 2, 4 and 8 shards open.
    const index = new DirectoryIndex(client, { capacity: 4, fanout: 2 });
    const dir = store.layout.directory(normalizePath("busy"));
    const names = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    for (const name of names) {
      await index.add(dir, [{ type: "file", name: Buffer.from(name) }]);
    }
    const listing = index.list(dir);
    const first = await listing.next();
    assert.equal(first.done, false);
    const listed = [(first.value as { name: Buffer }).name.toString()];
    // Between the root shard's entries and the rest: names of the root go, and come back in
    // the newest level (another host's rm and re-create, or a rename back and forth).
    const moved = names.slice(0, 4);
    await index.remove(dir, moved.map((name) => Buffer.from(name)));
    await index.add(dir, moved.map((name) => ({ type: "file" as const, name: Buffer.from(name) })));
    for await (const entry of listing) listed.push(entry.name.toString());
    assert.deepEqual(
      listed.filter((name, i) => listed.indexOf(name) !== i),
      [],
      "no name listed twice",
    );
    assert.deepEqual(listed.sort(), names);
  });
});

Deno.test("levels opened by hosts with different fanouts still list each name once", async () => {
  await withStore(async ({ client, store }) => {
    const index = new DirectoryIndex(client, { capacity: 2000, fanout: 16 });
    const dir = store.layout.directory(normalizePath("mixed"));
    if (dir.entries.kind !== "sharded") throw new Error("expected a sharded directory");
    const { bucketType, bucket, dirKey } = dir.entries;
    const at = (key: Buffer) => ({ bucketType, bucket, key });
    // Levels of 2 and 3 shards (3 is no multiple of 2), and one name in both, as two hosts
    // adding it at once could leave it.
    await client.updateSet(at(dirKey), {
      add: [Buffer.from("#shards:2"), Buffer.from("#shards:3")],
    });
    const name = Buffer.from("both");
    for (const count of [2, 3]) {
      const shard = shardIndex(name, count);
      await client.updateSet(at(Buffer.concat([dirKey, Buffer.from(`#${count}.${shard}`)])), {
        add: [Buffer.from("f:both"), Buffer.from(`f:only-${count}`)],
      });
    }
    const listed = [];
    for await (const entry of index.list(dir)) listed.push(entry.name.toString());
    assert.deepEqual(listed.sort(), ["both", "only-2", "only-3"]);
  });
});
