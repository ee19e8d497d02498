/**
 * Tests that gc's dry run writes nothing to Riak, also where its walk meets siblings, and
 * reports what `--delete` then deletes.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { TestRiak } from "../riak-server/testing.ts";
import { riakFusePrefixes, seededBytes, withStore } from "./_test_support.ts";
import type { StoreClient } from "./client.ts";
import { collectGarbage } from "./gc.ts";
import type { ObjectLocation } from "./layout.ts";
import { chunkKey } from "./manifest.ts";
import type { Store } from "./store.ts";

/**
 * Puts `content` beside what `path` holds as a sibling of its own generation: written at
 * another name first, its object then copied blindly (no vclock) to `path`'s key, and the
 * other name taken away without its chunks, which the sibling alone references then.
 */
async function addSibling(
  client: StoreClient,
  store: Store,
  path: string,
  content: Buffer,
  mtimeNs: bigint,
): Promise<void> {
  const other = path.replace(/[^/]*$/, (name) => `sibling-${name}`);
  await store.writeFile(other, content, { mtimeNs });
  const from = store.layout.file(Buffer.from(other)).object;
  const [written] = (await client.get(from)).contents;
  await client.put(store.layout.file(Buffer.from(path)).object, {
    value: written.value,
    contentType: written.contentType ?? "application/octet-stream",
    usermeta: written.usermeta,
  });
  await client.delete(from);
  assert.ok(await store.removeOrphanEntry(other));
}

/** An object as Riak answers it, vclock and every sibling, in text that compares exactly. */
async function rawObject(client: StoreClient, location: ObjectLocation): Promise<string> {
  const fetched = await client.get(location);
  return JSON.stringify({
    vclock: Buffer.from(fetched.vclock ?? []).toString("hex"),
    siblings: fetched.contents.map((content) => ({
      value: Buffer.from(content.value).toString("hex"),
      contentType: content.contentType,
      usermeta: content.usermeta,
      lastModifiedNs: String(content.lastModifiedNs),
    })),
  });
}

/** The embedded server's every object (undefined against a real Riak), with its vclock counter. */
function everyObject(riak: TestRiak): string | undefined {
  const objects = riak.server?.engine.keyspace.objects;
  return objects &&
    JSON.stringify(
      objects,
      (_key, value) =>
        value instanceof Map
          ? [...value]
          : value instanceof Uint8Array
          ? Buffer.from(value).toString("hex")
          : typeof value === "bigint"
          ? String(value)
          : value,
    );
}

Deno.test("gc's dry run writes nothing where its walk meets siblings, and reports what --delete deletes", async () => {
  await withStore(async ({ riak, client, another }) => {
    // gc walks into riak-fuse folders only with the preset: run with it, it meets them all.
    const preset = {
      namespace: { preset: "riak-fuse" as const, riakFuse: riakFusePrefixes(riak) },
    };
    const writer = another(preset);
    const files = [
      { path: "big.bin", older: seededBytes(1, 10_000), newer: seededBytes(2, 9_000) },
      { path: "small.txt", older: Buffer.from("older"), newer: Buffer.from("newer") },
      // A riak-fuse folder's file: its manifests are read after the walk (manifest buckets).
      { path: "shop/images/big.jpg", older: seededBytes(3, 10_000), newer: seededBytes(4, 10) },
    ];
    const losing: string[] = [];
    for (const { path, older, newer } of files) {
      await writer.writeFile(path, older, { mtimeNs: 1_000n });
      const manifest = await writer.manifest(path);
      if (manifest) losing.push(chunkKey(manifest.generation, 0));
      await addSibling(client, writer, path, newer, 2_000n);
    }
    assert.equal(losing.length, 2, "two of the losing siblings are chunked");
    await writer.mkdir("dir");
    const directory = writer.layout.directory(Buffer.from("dir")).object;
    const [made] = (await client.get(directory)).contents;
    await client.put(directory, {
      value: made.value,
      contentType: made.contentType ?? "text/plain",
      usermeta: made.usermeta,
    });
    // Chunks no manifest references: garbage either way.
    const lost = "f".repeat(32);
    await client.put(writer.layout.chunk(chunkKey(lost, 0)), {
      value: Buffer.from("lost"),
      contentType: "application/octet-stream",
      usermeta: [],
    });
    const locations = [
      ...files.map(({ path }) => writer.layout.file(Buffer.from(path)).object),
      directory,
    ];
    for (const location of locations) {
      assert.equal((await client.get(location)).contents.length, 2, "kvmulti keeps siblings");
    }
    const before = await Promise.all(locations.map((where) => rawObject(client, where)));
    const everyBefore = everyObject(riak);

    // A store that knows of no directory, as `riakfs gc` runs.
    const gc = another(preset);
    const dry = await collectGarbage(gc, { minAgeMs: 0 });
    assert.deepEqual(
      await Promise.all(locations.map((where) => rawObject(client, where))),
      before,
      "vclocks and siblings as they were",
    );
    assert.equal(everyObject(riak), everyBefore, "no object of Riak changed");
    assert.deepEqual(dry.garbage, [{ generation: lost, keys: [chunkKey(lost, 0)] }]);
    assert.deepEqual(dry.orphanEntries, []);
    assert.equal(dry.deleted, 0);

    const run = await collectGarbage(gc, { minAgeMs: 0, delete: true });
    assert.deepEqual(run.garbage, dry.garbage, "the dry run reported what --delete deletes");
    assert.equal(run.deleted, 1);
    assert.equal(run.manifests, dry.manifests);
    // A losing sibling's chunks go once a reader's resolution dropped its manifest, not before.
    for (const key of losing) assert.ok(await gc.chunkLastModifiedNs(key), key);
    for (const { path, newer } of files) {
      assert.ok(newer.equals(await gc.readFile(path)), path);
    }
  }, { namespace: { bucketType: "kvmulti", chunkSize: 4096 } });
});
