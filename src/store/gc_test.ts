/**
 * Tests of gc's orphan entries: names listed with nothing stored behind them, made here by
 * adding set members directly, as an add Riak applied after the name's removal leaves them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  forgetRiakFuseType,
  putLegacyRiakFuseFile,
  riakFusePrefixes,
  withStore,
} from "./_test_support.ts";
import type { StoreClient } from "./client.ts";
import { collectGarbage } from "./gc.ts";
import { encodeEntryMember, shardKey } from "./shards.ts";
import { Store } from "./store.ts";
import type { EntryType } from "./usermeta.ts";

/** Adds the entry `type:name` to the root shard of `directory`, with no object behind it. */
async function addOrphan(
  client: StoreClient,
  store: Store,
  directory: string,
  type: EntryType,
  name: string,
): Promise<void> {
  const { entries } = store.layout.directory(Buffer.from(directory));
  assert.equal(entries.kind, "sharded");
  await client.updateSet(
    { bucketType: entries.bucketType, bucket: entries.bucket, key: shardKey(entries.dirKey, 1, 0) },
    { add: [encodeEntryMember(type, Buffer.from(name))] },
  );
}

async function listed(store: Store, directory: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of store.list(directory)) {
    names.push(`${entry.type}:${entry.name.toString()}`);
  }
  return names.sort();
}

Deno.test("gc reports orphan entries of every type in a dry run, and --delete removes only them", async () => {
  await withStore(async ({ store, client }) => {
    await store.writeFile("photos/a.jpg", Buffer.from("a"));
    await store.symlink("photos/link", Buffer.from("a.jpg"));
    await store.mkdir("photos/sub");
    await store.writeFile("photos/big.bin", Buffer.alloc(10_000, 7));
    await addOrphan(client, store, "photos", "file", "gone.jpg");
    await addOrphan(client, store, "photos", "symlink", "gone-link");
    await addOrphan(client, store, "photos", "directory", "gone-dir");
    await addOrphan(client, store, "", "directory", "gone-top");
    const real = ["directory:sub", "file:a.jpg", "file:big.bin", "symlink:link"];
    const orphans = ["directory:gone-dir", "file:gone.jpg", "symlink:gone-link"];

    const dry = await collectGarbage(store, { minAgeMs: 0 });
    assert.deepEqual(
      dry.orphanEntries.map((o) => `${o.type}:${o.path}`).sort(),
      ["directory:gone-top", ...orphans.map((o) => o.replace(":", ":photos/"))].sort(),
    );
    assert.equal(dry.deletedEntries, 0);
    assert.equal(dry.manifests, 1, "the walk still reaches the chunked file");
    assert.deepEqual(await listed(store, "photos"), [...real, ...orphans].sort(), "dry run");

    const run = await collectGarbage(store, { minAgeMs: 0, delete: true });
    assert.equal(run.orphanEntries.length, 4);
    assert.equal(run.deletedEntries, 4);
    assert.deepEqual(run.garbage, [], "the file's chunks stay");
    assert.deepEqual(await listed(store, "photos"), real);
    assert.deepEqual(await listed(store, ""), ["directory:photos"]);
    assert.equal((await store.readFile("photos/big.bin")).length, 10_000);

    const again = await collectGarbage(store, { minAgeMs: 0 });
    assert.deepEqual(again.orphanEntries, []);
  }, { namespace: { chunkSize: 4096 } });
});

/**
 * Makes the orphan entry `type:x`, then has `removeOrphanEntry` remove it while `write`
 * stores `x` again between its last look at `x` and its removal: the name must stay listed.
 */
async function removalRacing(
  type: EntryType,
  write: (writer: Store) => Promise<unknown>,
): Promise<void> {
  await withStore(async ({ store, client, bucket }) => {
    await addOrphan(client, store, "", type, "x");
    let raced = false;
    const racing: StoreClient = {
      ...client,
      get: async (location, options) => {
        const answer = await client.get(location, options);
        if (!raced && location.key.toString() === "x") {
          raced = true;
          await write(store);
        }
        return answer;
      },
    };
    const gc = new Store(racing, { namespace: { bucket } });
    const removed = await gc.removeOrphanEntry("x");
    assert.ok(raced, "the write ran between the last look and the removal");
    assert.deepEqual(await listed(store, ""), [`${type}:x`]);
    assert.ok(await store.tryStat("x"));
    assert.equal(removed, false, "it was stored meanwhile");
  });
}

Deno.test("gc: a file written again where an orphan entry was stays listed (add-wins)", async () => {
  await removalRacing("file", (writer) => writer.writeFile("x", Buffer.from("back")));
});

Deno.test("gc: a symlink made where its orphan entry still was stays listed (put back)", async () => {
  // The symlink finds its entry in place and adds none: the removal takes the only one.
  await removalRacing("symlink", (writer) => writer.symlink("x", Buffer.from("target")));
});

Deno.test("gc: a riak-fuse folder and images folder with no objects are no orphans", async () => {
  await withStore(async ({ riak, client, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    // A folder riak-fuse made: riakfs lists it, and its images folder, without objects.
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a");
    await store.writeFile("shop/images/b.jpg", Buffer.from("b"));
    assert.deepEqual(await listed(store, ""), ["directory:shop"]);
    assert.equal((await collectGarbage(store, { minAgeMs: 0 })).orphanEntries.length, 0);
    await store.remove("shop/images/a.jpg");
    await store.remove("shop/images/b.jpg");
    assert.deepEqual(await listed(store, "shop"), ["directory:images"]);
    // As `riakfs gc` runs it: a store that never wrote there (knows no directory).
    const gc = another({ namespace: { preset: "riak-fuse", riakFuse } });
    const report = await collectGarbage(gc, { minAgeMs: 0, delete: true });
    assert.deepEqual(report.orphanEntries, []);
    assert.deepEqual(await listed(store, "shop"), ["directory:images"]);
  });
});

Deno.test("gc run with the riak-fuse preset keeps the chunks of a file the default layout wrote at <folder>/images/<file>", async () => {
  await withStore(async ({ riak, store, another }) => {
    const content = Buffer.alloc(10_000, 9);
    // Its manifest is at that key of the content bucket, where the preset looks for none.
    await store.writeFile("shop/images/big.jpg", content);
    const riakFuse = riakFusePrefixes(riak);
    const gc = another({ namespace: { preset: "riak-fuse", riakFuse } });
    const report = await collectGarbage(gc, { minAgeMs: 0, delete: true });
    assert.deepEqual(report.garbage, [], "its generation is referenced");
    assert.equal(report.manifests, 1);
    assert.ok(content.equals(await store.readFile("shop/images/big.jpg")));
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("gc keeps the chunks of files in buckets whose names are not ASCII: an unlisted file's, a riak-fuse folder's", async () => {
  await withStore(async ({ riak, client, another }) => {
    const content = Buffer.alloc(10_000, 5);
    // A namespace bucket named in UTF-8, and a file there whose entry a crash never added.
    const namespace = { bucket: `${riak.prefix}-fotos-été`, chunkSize: 4096 };
    const crashing = new Store({
      ...client,
      updateSet: () => Promise.reject(new Error("killed")),
    }, { namespace });
    await assert.rejects(crashing.writeFile("unlisted.bin", content), /killed/);
    // A riak-fuse folder named in UTF-8, gc run with other prefixes (its bucket in the set).
    const riakFuse = riakFusePrefixes(riak);
    const writer = another({ namespace: { ...namespace, preset: "riak-fuse", riakFuse } });
    await writer.writeFile("café/images/big.jpg", content);
    const report = await collectGarbage(another({ namespace }), { minAgeMs: 0, delete: true });
    assert.deepEqual(report.garbage, []);
    assert.equal(report.manifests, 2);
    const store = another({ namespace });
    assert.ok(content.equals(await store.readFile("unlisted.bin")));
    assert.ok(content.equals(await writer.readFile("café/images/big.jpg")));
  });
});

Deno.test("gc walks the subdirectories of a riak-fuse folder, also one an earlier build listed as a file", async () => {
  await withStore(async ({ riak, client, bucket, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a");
    await store.mkdir("shop/images/sub");
    await store.mkdir("shop/images/old");
    await addOrphan(client, store, "shop/images/sub", "file", "ghost");
    await addOrphan(client, store, "shop/images/old", "file", "ghost");
    // What earlier builds left of `old`: its name in riak-fuse's set only, no type beside it.
    await forgetRiakFuseType(client, bucket, "shop", "d:old");
    assert.deepEqual(await listed(store, "shop/images"), [
      "directory:sub",
      "file:a.jpg",
      "file:old",
    ]);
    const report = await collectGarbage(store, { minAgeMs: 0 });
    assert.deepEqual(report.orphanEntries.map((o) => `${o.type}:${o.path}`).sort(), [
      "file:shop/images/old/ghost",
      "file:shop/images/sub/ghost",
    ]);
  });
});
