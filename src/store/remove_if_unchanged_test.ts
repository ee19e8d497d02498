import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { seededBytes, withStore } from "./_test_support.ts";
import type { StoreClient } from "./client.ts";
import { WrongTypeError } from "./errors.ts";
import { chunkKey } from "./manifest.ts";
import { Store } from "./store.ts";

/** The test Riak's bucket type with allow_mult: a delete's vclock keeps what it did not cover. */
const ALLOW_MULT = "kvmulti";

async function names(store: Store, directory: string): Promise<string[]> {
  const result: string[] = [];
  for await (const entry of store.list(directory)) result.push(entry.name.toString());
  return result.sort();
}

Deno.test("removeIfUnchanged removes a file, a chunked file's chunks and a symlink as their stats saw them", async () => {
  await withStore(async ({ store, client }) => {
    await store.writeFile("d/small", Buffer.from("small"));
    await store.writeFile("d/large", seededBytes(1, 9_000));
    await store.symlink("d/link", Buffer.from("target"));
    const manifest = await store.manifest("d/large");
    for (const name of ["small", "large", "link"]) {
      const examined = await store.tryStat(`d/${name}`, { fileOnly: true });
      assert.equal(await store.removeIfUnchanged(examined!), true, name);
      assert.equal(await store.tryStat(`d/${name}`), undefined, name);
    }
    assert.deepEqual(await names(store, "d"), []);
    const chunk = await client.get(store.layout.chunk(chunkKey(manifest!.generation, 1)));
    assert.equal(chunk.contents.length, 0, "chunks removed with the file");
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("removeIfUnchanged leaves a version written after the stat, listed: overwritten, attributes set", async () => {
  await withStore(async ({ store, another }) => {
    const otherHost = another();
    const changes: [string, () => Promise<unknown>][] = [
      ["overwritten", () => otherHost.writeFile("d/f", Buffer.from("newer"))],
      ["chmod", () => otherHost.setAttributes("d/f", { mode: 0o600 })],
    ];
    for (const [what, change] of changes) {
      await store.writeFile("d/f", Buffer.from("examined"));
      const examined = await store.tryStat("d/f", { fileOnly: true });
      await change();
      assert.equal(await store.removeIfUnchanged(examined!), false, what);
      const kept = await store.stat("d/f");
      assert.equal(kept.sha256 !== examined!.sha256 || kept.mode === 0o600, true, what);
      assert.deepEqual(await names(store, "d"), ["f"], what);
    }
  });
});

Deno.test("removeIfUnchanged leaves a version written between its last look and its delete (allow_mult), listed again", async () => {
  await withStore(async ({ client, bucket, another }) => {
    const otherHost = another({ namespace: { bucketType: ALLOW_MULT } });
    let deletes = 0;
    // Another host overwrites the file just before the delete reaches Riak.
    const racing: StoreClient = {
      ...client,
      delete: async (location, options) => {
        if (Buffer.from(location.key).toString() === "d/f" && deletes++ === 0) {
          await otherHost.writeFile("d/f", Buffer.from("written meanwhile"));
        }
        return await client.delete(location, options);
      },
    };
    const store = new Store(racing, { namespace: { bucket, bucketType: ALLOW_MULT } });
    await store.writeFile("d/f", Buffer.from("examined"));
    const examined = await store.tryStat("d/f", { fileOnly: true });
    assert.equal(await store.removeIfUnchanged(examined!), false);
    assert.equal(deletes, 1, "the delete was sent");
    assert.equal((await store.readFile("d/f")).toString(), "written meanwhile");
    assert.deepEqual(await names(store, "d"), ["f"], "listed again");
  });
});

Deno.test("removeIfUnchanged leaves a directory made at the path once the file's object was deleted, listed", async () => {
  await withStore(async ({ client, bucket, another }) => {
    const otherHost = another();
    // Another host's mkdir of the name, just after the delete reached Riak.
    const racing: StoreClient = {
      ...client,
      delete: async (location, options) => {
        await client.delete(location, options);
        if (Buffer.from(location.key).toString() === "d/f") await otherHost.mkdir("d/f");
      },
    };
    const store = new Store(racing, { namespace: { bucket } });
    await store.writeFile("d/f", Buffer.from("examined"));
    const examined = await store.tryStat("d/f", { fileOnly: true });
    assert.equal(await store.removeIfUnchanged(examined!), false, "something stayed at the path");
    assert.equal((await store.stat("d/f")).type, "directory");
    assert.deepEqual(await names(store, "d"), ["f"]);
  });
});

Deno.test("remove with directoryOnly removes an empty directory, and leaves a file or symlink (ENOTDIR)", async () => {
  await withStore(async ({ store }) => {
    await store.mkdir("d");
    await store.writeFile("f", Buffer.from("file"));
    await store.symlink("l", Buffer.from("target"));
    await store.remove("d", { directoryOnly: true });
    assert.equal(await store.tryStat("d"), undefined);
    for (const name of ["f", "l"]) {
      await assert.rejects(store.remove(name, { directoryOnly: true }), WrongTypeError);
      assert.notEqual(await store.tryStat(name), undefined, name);
    }
  });
});
