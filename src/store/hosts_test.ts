/**
 * Two hosts on one namespace: two Store instances over one server, one of them held at a
 * chosen request until the other has done its part, so each interleaving is the same on every
 * run. Whatever the order, an acknowledged write is listed and readable afterwards, and no
 * directory ends unlisted while it holds entries.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { SetChange, StoreClient } from "./client.ts";
import { seededBytes, withStore } from "./_test_support.ts";
import { AlreadyExistsError, DirectoryNotEmptyError } from "./errors.ts";
import type { ObjectLocation } from "./layout.ts";
import { Store } from "./store.ts";

const SMALL_CHUNKS = { chunkSize: 4096 };

/** What a held request is: its kind, where it goes, and a set update's change. */
interface Request {
  operation: "get" | "put" | "delete" | "fetchSet" | "updateSet";
  bucket: string;
  key: string;
  change?: SetChange;
}

/**
 * `client`, whose first request that `holds` picks waits until `release()`; `reached`
 * resolves when it arrives. Its other requests pass at once.
 */
function holding(client: StoreClient, holds: (request: Request) => boolean) {
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => arrived = resolve);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let held = false;
  const pass = async <T>(request: Request, send: () => Promise<T>): Promise<T> => {
    if (!held && holds(request)) {
      held = true;
      arrived();
      await gate;
    }
    return await send();
  };
  const describe = (
    operation: Request["operation"],
    location: ObjectLocation,
    change?: SetChange,
  ): Request => ({
    operation,
    bucket: Buffer.from(location.bucket).toString(),
    key: Buffer.from(location.key).toString(),
    change,
  });
  const held_: StoreClient = {
    ...client,
    get: (location, options) =>
      pass(describe("get", location), () => client.get(location, options)),
    put: (location, content, options) =>
      pass(describe("put", location), () => client.put(location, content, options)),
    delete: (location, options) =>
      pass(describe("delete", location), () => client.delete(location, options)),
    fetchSet: (location) => pass(describe("fetchSet", location), () => client.fetchSet(location)),
    updateSet: (location, change) =>
      pass(describe("updateSet", location, change), () => client.updateSet(location, change)),
  };
  return { client: held_, reached, release };
}

const names = async (store: Store, path: string) =>
  (await Array.fromAsync(store.list(path))).map((entry) => `${entry.name}`).sort();

/** The entry added to directory `dir` (its root shard): the update that lists a new name. */
const addsTo = (bucket: string, dir: string) => (request: Request) =>
  request.operation === "updateSet" && request.bucket === `${bucket}.dirs` &&
  request.key === `${dir}/` && (request.change?.add?.length ?? 0) > 0;

Deno.test("a directory removed while another host writes below it: the write is kept", async () => {
  await withStore(async ({ store, client, bucket }) => {
    // The removal held at the delete of the directory's object: the write comes in between.
    await store.mkdir("d", { mode: 0o750 });
    const remover = holding(
      client,
      (r) => r.operation === "delete" && r.bucket === bucket && r.key === "d/",
    );
    const removal = new Store(remover.client, { namespace: { bucket } }).remove("d");
    await remover.reached;
    await store.writeFile("d/x", Buffer.from("acknowledged"));
    remover.release();
    await assert.rejects(removal, DirectoryNotEmptyError);
    assert.deepEqual(await names(store, ""), ["d"]);
    assert.deepEqual(await names(store, "d"), ["x"]);
    assert.equal((await store.stat("d")).mode, 0o750, "put back with its attributes");
    assert.equal((await store.readFile("d/x")).toString(), "acknowledged");

    // The write held at its entry: the removal, which saw none, ends first.
    await store.mkdir("e");
    const writer = holding(client, addsTo(bucket, "e"));
    const write = new Store(writer.client, { namespace: { bucket } })
      .writeFile("e/y", Buffer.from("acknowledged too"));
    await writer.reached;
    await store.remove("e");
    writer.release();
    await write;
    assert.deepEqual(await names(store, ""), ["d", "e"], "made again, as a write makes parents");
    assert.deepEqual(await names(store, "e"), ["y"]);
    assert.equal((await store.readFile("e/y")).toString(), "acknowledged too");
  });
});

Deno.test("a mkdir below a directory another host removes: the new directory stays listed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.mkdir("d");
    const writer = holding(client, addsTo(bucket, "d"));
    const mkdir = new Store(writer.client, { namespace: { bucket } }).mkdir("d/sub");
    await writer.reached;
    await store.remove("d");
    writer.release();
    await mkdir;
    assert.deepEqual(await names(store, ""), ["d"]);
    assert.deepEqual(await names(store, "d"), ["sub"]);
    assert.equal((await store.stat("d/sub")).type, "directory");
    // And a removed directory is gone for good when nothing was written below it.
    await store.remove("d/sub");
    await store.remove("d");
    assert.deepEqual(await names(store, ""), []);
    assert.equal(await store.tryStat("d"), undefined);
  });
});

Deno.test("a directory renamed while another host writes into it: every write is listed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("f/old", Buffer.from("old"));
    // The rename held at the delete of the old directory's object; a write comes in between.
    const renamer = holding(
      client,
      (r) => r.operation === "delete" && r.bucket === bucket && r.key === "f/",
    );
    const rename = new Store(renamer.client, { namespace: { bucket } }).rename("f", "t");
    await renamer.reached;
    await store.writeFile("f/during", Buffer.from("during"));
    renamer.release();
    await rename;
    assert.deepEqual(await names(store, ""), ["t"]);
    assert.deepEqual(await names(store, "t"), ["during", "old"], "moved along");
    assert.equal((await store.readFile("t/during")).toString(), "during");

    // A write held at its entry until the rename is over: the old name is made again for it.
    const writer = holding(client, addsTo(bucket, "t"));
    const write = new Store(writer.client, { namespace: { bucket } })
      .writeFile("t/late", Buffer.from("late"));
    await writer.reached;
    await store.rename("t", "u");
    writer.release();
    await write;
    assert.deepEqual(await names(store, ""), ["t", "u"]);
    assert.deepEqual(await names(store, "t"), ["late"]);
    assert.deepEqual(await names(store, "u"), ["during", "old"]);
    assert.equal((await store.readFile("t/late")).toString(), "late");
  });
});

Deno.test("a file renamed while another host overwrites it: the new version stays, listed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    for (const [dir, old, fresh] of [["small", 100, 200], ["big", 9000, 9500]] as const) {
      await store.writeFile(`${dir}/f`, seededBytes(1, old));
      const stat = await store.tryStat(`${dir}/f`, { fileOnly: true });
      // The rename held at the removal of the old name's entry: the overwrite comes in between.
      const renamer = holding(
        client,
        (r) => r.operation === "updateSet" && (r.change?.remove?.length ?? 0) > 0,
      );
      const rename = new Store(renamer.client, { namespace: { bucket, ...SMALL_CHUNKS } })
        .rename(`${dir}/f`, `${dir}/g`);
      await renamer.reached;
      await store.writeFile(`${dir}/f`, seededBytes(2, fresh), { previous: stat });
      renamer.release();
      await rename;
      assert.deepEqual(await names(store, dir), ["f", "g"], dir);
      assert.ok((await store.readFile(`${dir}/f`)).equals(seededBytes(2, fresh)), dir);
      assert.ok((await store.readFile(`${dir}/g`)).equals(seededBytes(1, old)), dir);
    }
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("allow_mult: a write landing between a rename's or rm's last look and its delete stays, listed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const namespace = { bucket, bucketType: "kvmulti" };
    for (const operation of ["rename", "remove"] as const) {
      for (const change of ["overwrite", "chmod"] as const) {
        const dir = `${operation}-${change}`;
        await store.writeFile(`${dir}/x`, Buffer.from("version one"), { mode: 0o644 });
        const stat = await store.tryStat(`${dir}/x`, { fileOnly: true });
        // Held at the delete of the old object, after the look that found the version it
        // copied (or read): the other host's change, acknowledged, comes in between.
        const host = holding(
          client,
          (r) => r.operation === "delete" && r.bucket === bucket && r.key === `${dir}/x`,
        );
        const other = new Store(host.client, { namespace });
        const done = operation === "rename"
          ? other.rename(`${dir}/x`, `${dir}/y`)
          : other.remove(`${dir}/x`);
        await host.reached;
        if (change === "overwrite") {
          await store.writeFile(`${dir}/x`, Buffer.from("acknowledged"), { previous: stat });
        } else await store.setAttributes(`${dir}/x`, { mode: 0o600 });
        host.release();
        await done;
        assert.deepEqual(await names(store, dir), operation === "rename" ? ["x", "y"] : ["x"], dir);
        const kept = change === "overwrite" ? "acknowledged" : "version one";
        assert.equal((await store.readFile(`${dir}/x`)).toString(), kept, dir);
        if (change === "chmod") assert.equal((await store.stat(`${dir}/x`)).mode & 0o777, 0o600);
        if (operation === "rename") {
          assert.equal((await store.readFile(`${dir}/y`)).toString(), "version one", dir);
        }
      }
    }
  }, { namespace: { bucketType: "kvmulti" } });
});

Deno.test("allow_mult: an overwrite landing between a directory rename's last look at a file and its delete moves too", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("f/x", Buffer.from("version one"));
    const stat = await store.tryStat("f/x", { fileOnly: true });
    const host = holding(
      client,
      (r) => r.operation === "delete" && r.bucket === bucket && r.key === "f/x",
    );
    const rename = new Store(host.client, { namespace: { bucket, bucketType: "kvmulti" } })
      .rename("f", "t");
    await host.reached;
    await store.writeFile("f/x", Buffer.from("acknowledged"), { previous: stat });
    host.release();
    await rename;
    assert.deepEqual(await names(store, ""), ["t"]);
    assert.deepEqual(await names(store, "t"), ["x"]);
    assert.equal(
      (await store.readFile("t/x")).toString(),
      "acknowledged",
      "moved in a later round",
    );
  }, { namespace: { bucketType: "kvmulti" } });
});

Deno.test("a chunked file overwritten while another host renames it: the renamed copy keeps its chunks", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("f", seededBytes(3, 9000));
    // The overwrite held at its first chunk, after it read the file it replaces: the whole
    // rename (which marks the file as sharing its chunks with the new name) comes in between.
    const writer = holding(
      client,
      (r) => r.operation === "put" && r.bucket === `${bucket}.chunks`,
    );
    const host = new Store(writer.client, { namespace: { bucket, ...SMALL_CHUNKS } });
    const stat = await host.tryStat("f", { fileOnly: true });
    const write = host.writeFile("f", seededBytes(4, 9500), { previous: stat });
    await writer.reached;
    await store.rename("f", "g");
    writer.release();
    await write;
    assert.deepEqual(await names(store, ""), ["f", "g"]);
    assert.ok((await store.readFile("g")).equals(seededBytes(3, 9000)), "the renamed file");
    assert.ok((await store.readFile("f")).equals(seededBytes(4, 9500)), "the overwrite");
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a removed directory that had opened levels is gone, and its name is free again", async () => {
  await withStore(async ({ store }) => {
    // Its shards are emptied, not deleted: the level markers its root shard keeps are no entry.
    for (let i = 0; i < 10; i++) await store.writeFile(`big/f${i}`, Buffer.from(`${i}`));
    for (let i = 0; i < 10; i++) await store.remove(`big/f${i}`);
    await store.remove("big");
    assert.equal(await store.tryStat("big"), undefined);
    assert.deepEqual(await names(store, ""), []);
    await store.mkdir("big");
    await store.writeFile("big/again", Buffer.from("again"));
    assert.deepEqual(await names(store, "big"), ["again"]);
  }, { namespace: { shardCapacity: 3, shardFanout: 2 } });
});

Deno.test("a symlink made where another host just wrote a file: EEXIST, the file is kept", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.mkdir("d");
    // The symlink held at its object's put: it looked and found nothing, then the file came.
    const linker = holding(
      client,
      (r) => r.operation === "put" && r.bucket === bucket && r.key === "d/x",
    );
    const symlink = new Store(linker.client, { namespace: { bucket } }).symlink("d/x", "target");
    symlink.catch(() => {}); // awaited below
    await linker.reached;
    await store.writeFile("d/x", Buffer.from("acknowledged"));
    linker.release();
    await assert.rejects(symlink, AlreadyExistsError);
    assert.equal((await store.readFile("d/x")).toString(), "acknowledged");
    assert.equal((await store.stat("d/x")).type, "file");
    assert.deepEqual(await names(store, "d"), ["x"]);
  });
});

Deno.test("a directory's attributes set while another host removes it and a third writes below it: the directory stays listed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.mkdir("d");
    let armed = false;
    // The write held at its entry until the removal, which saw none, is over...
    const atEntry = holding(client, (r) => armed && addsTo(bucket, "d")(r));
    // ...then at its look for the directory's object, which the removal deleted.
    const atLook = holding(
      atEntry.client,
      (r) => armed && r.operation === "get" && r.bucket === bucket && r.key === "d/",
    );
    const writer = new Store(atLook.client, { namespace: { bucket } });
    // It knows the directory from an earlier write: it does not look it up again.
    await writer.writeFile("d/warm", Buffer.from("warm"));
    await store.remove("d/warm");
    armed = true;
    const write = writer.writeFile("d/x", Buffer.from("acknowledged"));
    await atEntry.reached;
    await store.remove("d");
    atEntry.release();
    await atLook.reached;
    // A mount's write of the directory's mtime (or a chmod) finds it by the write's entry
    // alone, and makes its object; held at the entry it adds to the root, if it adds one.
    const inRoot = holding(client, addsTo(bucket, ""));
    const attributes = new Store(inRoot.client, { namespace: { bucket } })
      .setAttributes("d", { mtimeNs: 1_000_000_000n });
    await Promise.race([inRoot.reached, attributes]);
    atLook.release();
    await write;
    // Acknowledged: listed now, whatever the change of attributes still has to do.
    assert.deepEqual(await names(store, ""), ["d"]);
    inRoot.release();
    await attributes;
    assert.deepEqual(await names(store, ""), ["d"]);
    assert.deepEqual(await names(store, "d"), ["x"]);
    assert.equal((await store.readFile("d/x")).toString(), "acknowledged");
    assert.equal((await store.stat("d")).mtimeNs, 1_000_000_000n);
  });
});
