import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { putLegacyRiakFuseFile, riakFusePrefixes, withStore } from "./_test_support.ts";
import type { StoreClient } from "./client.ts";
import { shardIndex } from "./shards.ts";
import { Store } from "./store.ts";

/** Small shards, so a few dozen names make levels: 1, 4, 16, ... shards. */
const SMALL_SHARDS = { shardCapacity: 4, shardFanout: 4 };

/** `client`, recording the key of every set it fetches (latin1). */
function recordingFetches(client: StoreClient): { client: StoreClient; fetched: string[] } {
  const fetched: string[] = [];
  return {
    fetched,
    client: {
      ...client,
      fetchSet: (location) => {
        fetched.push(location.key.toString("latin1"));
        return client.fetchSet(location);
      },
    },
  };
}

/** Writes `count` empty files `<directory>/n<i>` through `store`. */
async function fill(store: Store, directory: string, count: number, from = 0): Promise<string[]> {
  const names: string[] = [];
  for (let i = from; i < from + count; i++) {
    names.push(`n${i}`);
    await store.writeFile(`${directory}/n${i}`, Buffer.alloc(0));
  }
  return names;
}

/** The shard counts of the levels `directory` has, from its root shard's markers. */
async function levels(client: StoreClient, store: Store, directory: string): Promise<number[]> {
  const placement = store.layout.directory(Buffer.from(directory));
  if (placement.entries.kind !== "sharded") throw new Error("expected a sharded directory");
  const root = await client.fetchSet({
    bucketType: placement.entries.bucketType,
    bucket: placement.entries.bucket,
    key: placement.entries.dirKey,
  });
  const markers = (root?.members ?? []).map((m) => Buffer.from(m).toString())
    .filter((m) => m.startsWith("#shards:")).map((m) => Number(m.slice("#shards:".length)));
  return [1, ...markers].sort((a, b) => a - b);
}

Deno.test("a name's answer reads the root shard and the one shard per level it hashes to, each once for many names", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket, ...SMALL_SHARDS };
    const writer = new Store(client, { namespace });
    await writer.mkdir("big");
    const present = await fill(writer, "big", 60);
    await writer.mkdir("big/sub");
    await writer.symlink("big/link", "n0");
    const counts = await levels(client, writer, "big");
    assert.ok(counts.length >= 3, `levels opened: ${counts}`);
    const recording = recordingFetches(client);
    const listed = new Store(recording.client, { namespace }).listedNames();

    assert.equal(await listed.has("big/absent"), false);
    const expected = counts.map((count) =>
      count === 1 ? "big/" : `big/#${count}.${shardIndex(Buffer.from("absent"), count)}`
    );
    assert.deepEqual(recording.fetched, expected, "the root, then one shard per level");

    for (const name of present) assert.equal(await listed.has(`big/${name}`), true, name);
    assert.equal(await listed.has("big/sub"), true, "a directory is listed");
    assert.equal(await listed.has("big/link"), true, "a symlink is listed");
    for (let i = 60; i < 120; i++) assert.equal(await listed.has(`big/n${i}`), false);
    assert.equal(
      new Set(recording.fetched).size,
      recording.fetched.length,
      "no shard read twice within its time",
    );
    const shards = counts.reduce((total, count) => total + count, 0);
    assert.ok(recording.fetched.length <= shards, `${recording.fetched.length} of ${shards}`);
  });
});

Deno.test("absence is answered from shards younger than their time, a listed name from shards of any age", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket, ...SMALL_SHARDS };
    const writer = new Store(client, { namespace });
    await writer.mkdir("d");
    await fill(writer, "d", 30);
    let now = 1_000_000;
    const recording = recordingFetches(client);
    const listed = new Store(recording.client, { namespace }).listedNames({
      ttlMs: 5_000,
      now: () => now,
    });
    assert.equal(await listed.has("d/late"), false);
    assert.equal(await listed.has("d/n3"), true);
    const first = recording.fetched.length;
    await writer.writeFile("d/late", Buffer.from("added after the read"));
    now += 4_999;
    assert.equal(await listed.has("d/late"), false, "trusted within its time");
    assert.equal(recording.fetched.length, first);
    now += 1;
    assert.equal(await listed.has("d/n3"), true, "still listed");
    assert.equal(recording.fetched.length, first, "a listed name is answered as kept");
    assert.equal(await listed.has("d/late"), true, "read again");
    assert.ok(recording.fetched.length > first);
  });
});

Deno.test("names held stay within the bound: other directories go first, then a large one answers 'unknown' without reading more", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket, ...SMALL_SHARDS };
    const writer = new Store(client, { namespace });
    await writer.mkdir("small");
    await fill(writer, "small", 3);
    await writer.mkdir("big");
    const present = await fill(writer, "big", 200);
    const recording = recordingFetches(client);
    const bound = 40;
    const listed = new Store(recording.client, { namespace }).listedNames({ namesHeld: bound });

    assert.equal(await listed.has("small/n1"), true);
    assert.equal(listed.held, 3);
    const answers = new Map<string, boolean | undefined>();
    for (const name of present) answers.set(name, await listed.has(`big/${name}`));
    assert.ok(listed.held <= bound, `${listed.held} names held`);
    const unknown = [...answers.values()].filter((answer) => answer === undefined).length;
    assert.ok(unknown > 0, "some names are in shards it could not keep");
    assert.ok(
      [...answers.values()].every((answer) => answer !== false),
      "never 'absent' for a name that is there",
    );
    const fetchedBig = recording.fetched.filter((key) => key.startsWith("big/")).length;
    for (const name of present) await listed.has(`big/${name}`);
    assert.equal(
      recording.fetched.filter((key) => key.startsWith("big/")).length,
      fetchedBig,
      "a full directory reads no more shards",
    );
    const fetchedSmall = recording.fetched.filter((key) => key.startsWith("small/")).length;
    assert.equal(await listed.has("small/n2"), true);
    assert.equal(
      recording.fetched.filter((key) => key.startsWith("small/")).length,
      fetchedSmall + 1,
      "the small directory was forgotten to make room, and is read again",
    );
  });
});

Deno.test("a directory the caller made is empty without a read; other directories beyond those kept are forgotten", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket };
    const writer = new Store(client, { namespace });
    const recording = recordingFetches(client);
    const listed = new Store(recording.client, { namespace }).listedNames({ directoriesKept: 2 });
    await writer.mkdir("made");
    listed.madeEmpty("made");
    await writer.writeFile("made/x", Buffer.from("another writer's"));
    assert.equal(await listed.has("made/x"), false, "trusted: the caller's put finds it");
    assert.deepEqual(recording.fetched, []);
    for (const directory of ["a", "b"]) {
      await writer.mkdir(directory);
      assert.equal(await listed.has(`${directory}/y`), false);
    }
    assert.equal(await listed.has("made/x"), true, "forgotten, so read: it names x");
  });
});

Deno.test("a shard Riak failed to give is asked for again by the next name", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket };
    const writer = new Store(client, { namespace });
    await writer.mkdir("d");
    await writer.writeFile("d/x", Buffer.from("x"));
    let failing = true;
    const flaky: StoreClient = {
      ...client,
      fetchSet: (location) =>
        failing ? Promise.reject(new Error("Riak is restarting")) : client.fetchSet(location),
    };
    const listed = new Store(flaky, { namespace }).listedNames();
    await assert.rejects(listed.has("d/x"), /Riak is restarting/);
    failing = false;
    assert.equal(await listed.has("d/x"), true);
    assert.equal(await listed.has("d/y"), false);
  });
});

Deno.test("riak-fuse: a folder's images folder is listed also where only riak-fuse's set names it", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    const listed = store.listedNames();
    assert.equal(await listed.has("shop/images"), true);
    assert.equal(await listed.has("shop/images/a.jpg"), true, "riak-fuse's set is its listing");
    assert.equal(await listed.has("shop/images/b.jpg"), false);
  });
});
