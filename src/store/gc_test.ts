/**
 * Tests of gc's orphan entries: names listed with nothing stored behind them, made here by
 * adding set members directly, as an add Riak applied after the name's removal leaves them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  addOrphanEntry,
  forgetRiakFuseType,
  putLegacyRiakFuseFile,
  riakFusePrefixes,
  seededBytes,
  withStore,
} from "./_test_support.ts";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { toText } from "../riak/commands/values.ts";
import { encodeFrame } from "../riak/frame.ts";
import { type DtFetchReq, MessageCode, type RpbGetReq } from "../riak/messages.ts";
import { createdTypeProps, TEST_BUCKET_TYPES } from "../riak-server/bucket_types.ts";
import { RiakEngine } from "../riak-server/engine.ts";
import { Keyspace } from "../riak-server/keyspace.ts";
import { RiakNetworkServer } from "../riak-server/server.ts";
import type { StoreClient } from "./client.ts";
import { collectGarbage } from "./gc.ts";
import { chunkKey, renameStampKey } from "./manifest.ts";
import { openRiakStoreClient } from "./riak_adapter.ts";
import { Store } from "./store.ts";
import type { EntryType } from "./usermeta.ts";

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
    await addOrphanEntry(client, store, "photos", "file", "gone.jpg");
    await addOrphanEntry(client, store, "photos", "symlink", "gone-link");
    await addOrphanEntry(client, store, "photos", "directory", "gone-dir");
    await addOrphanEntry(client, store, "", "directory", "gone-top");
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
    await addOrphanEntry(client, store, "", type, "x");
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
    await addOrphanEntry(client, store, "shop/images/sub", "file", "ghost");
    await addOrphanEntry(client, store, "shop/images/old", "file", "ghost");
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

/** Min age of the runs below: chunks written when the test began are exactly this old. */
const MIN_AGE_MS = 60_000;

/**
 * A `nowMs` for gc at which the chunks of `path`'s generation are exactly {@link MIN_AGE_MS}
 * old (garbage once no manifest references them), returned once Riak's clock has passed
 * their last-modified time: anything written from then on is younger.
 */
async function chunksAtMinAge(store: Store, client: StoreClient, path: string): Promise<number> {
  const { generation, chunks } = (await store.manifest(path))!;
  let writtenMs = 0;
  for (const index of chunks.keys()) {
    const modified = (await store.chunkLastModifiedNs(chunkKey(generation, index)))!;
    writtenMs = Math.max(writtenMs, Number(modified / 1_000_000n));
  }
  const probe = store.layout.chunk("clock-probe");
  for (let attempt = 0; attempt < 10_000; attempt++) {
    await client.put(probe, { value: Buffer.alloc(0), contentType: "text/plain", usermeta: [] });
    const modified = (await client.get(probe, { head: true })).contents[0].lastModifiedNs!;
    if (Number(modified / 1_000_000n) > writtenMs) {
      await client.delete(probe);
      return writtenMs + MIN_AGE_MS;
    }
  }
  throw new Error("Riak's clock did not move");
}

/**
 * What another host renames while gc runs: `first` when gc's key scan gets `file` (listed
 * before), `second` when the walk fetches the set of `walked`, a directory the walk reaches
 * after the one `second` moves the file into.
 */
const RENAMED_TWICE = [
  {
    what: "a file",
    file: "q/a.bin",
    first: ["q/a.bin", "q/b.bin"],
    second: ["q/b.bin", "b.bin"],
    walked: "q/",
    after: "b.bin",
  },
  {
    what: "a directory",
    file: "src/x.bin",
    first: ["src", "mid"],
    second: ["mid", "dst"],
    walked: "mid/",
    after: "dst/x.bin",
  },
];

for (const { what, file, first, second, walked, after } of RENAMED_TWICE) {
  Deno.test(`gc --delete keeps the chunks of ${what} another host renames twice during the run`, async () => {
    await withStore(async ({ store, client, bucket }) => {
      const content = seededBytes(41, 10_000);
      await store.writeFile(file, content);
      const nowMs = await chunksAtMinAge(store, client, file);
      const renamed: string[] = [];
      const racing: StoreClient = {
        ...client,
        // The whole listing first: the new names are not in it.
        listKeys: async function* (bucketType, listed) {
          const keys: Uint8Array[][] = [];
          for await (const batch of client.listKeys(bucketType, listed)) keys.push(batch);
          yield* keys;
        },
        // The key scan misses the file: gone from a key it lists, at one it did not list.
        get: async (location, options) => {
          if (renamed.length === 0 && Buffer.from(location.key).toString() === file) {
            await store.rename(first[0], first[1]);
            renamed.push(first[1]);
          }
          return await client.get(location, options);
        },
        // The walk misses it: gone from a directory it has not listed yet, into one it has.
        fetchSet: async (location) => {
          if (renamed.length === 1 && Buffer.from(location.key).toString() === walked) {
            await store.rename(second[0], second[1]);
            renamed.push(second[1]);
          }
          return await client.fetchSet(location);
        },
      };
      const gc = new Store(racing, { namespace: { bucket } });
      const report = await collectGarbage(gc, { delete: true, minAgeMs: MIN_AGE_MS, nowMs });
      assert.deepEqual(renamed, [first[1], second[1]], "both renames ran during the run");
      assert.deepEqual(report.garbage, []);
      assert.equal(report.deleted, 0);
      assert.ok(content.equals(await store.readFile(after)), "readable under its new name");
    }, { namespace: { chunkSize: 4096 } });
  });
}

Deno.test("gc --delete keeps the chunks of a file whose rename is on its way while its old name is removed or overwritten", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const changes = [
      ["removed", () => store.remove("d/f")],
      ["overwritten", () => store.writeFile("d/f", Buffer.from("small now"))],
    ] as const;
    for (const [what, change] of changes) {
      const content = seededBytes(42, 10_000);
      await store.writeFile("d/f", content);
      const { generation } = (await store.manifest("d/f"))!;
      const nowMs = await chunksAtMinAge(store, client, "d/f");
      // Another host's rename, held at its put of d/t: the only manifest holding the
      // generation is in its memory while d/f goes and gc runs.
      let proceed!: () => void;
      const held = new Promise<void>((resolve) => proceed = resolve);
      let atPut!: () => void;
      const reached = new Promise<void>((resolve) => atPut = resolve);
      const slow: StoreClient = {
        ...client,
        put: async (location, stored, options) => {
          if (Buffer.from(location.key).toString() === "d/t") {
            atPut();
            await held;
          }
          return await client.put(location, stored, options);
        },
      };
      const renaming = new Store(slow, { namespace: { bucket, chunkSize: 4096 } })
        .rename("d/f", "d/t");
      renaming.catch(() => {}); // awaited below
      await reached;
      await change();
      const report = await collectGarbage(store, { delete: true, minAgeMs: MIN_AGE_MS, nowMs });
      proceed();
      await renaming;
      const garbage = report.garbage.map((found) => found.generation);
      assert.ok(!garbage.includes(generation), `${what}: its generation is no garbage`);
      assert.ok(content.equals(await store.readFile("d/t")), `${what}: d/t has its chunks`);
      await store.remove("d/t");
      if (await store.tryStat("d/f")) await store.remove("d/f");
    }
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("gc counts a rename stamp with its generation: kept while referenced, deleted with its chunks, never a chunk", async () => {
  await withStore(async ({ store }) => {
    const content = seededBytes(43, 10_000);
    await store.writeFile("a.bin", content);
    const { generation } = (await store.manifest("a.bin"))!;
    await store.rename("a.bin", "b.bin");
    const stamp = renameStampKey(generation);
    const later = Date.now() + 2 * MIN_AGE_MS;
    const run = () => collectGarbage(store, { delete: true, minAgeMs: MIN_AGE_MS, nowMs: later });
    const kept = await run();
    assert.equal(kept.chunks, 3);
    assert.equal(kept.foreignKeys, 0);
    assert.deepEqual(kept.garbage, []);
    assert.ok(await store.chunkLastModifiedNs(stamp), "referenced: the stamp stays");
    // The removal takes the chunks; the stamp is left for gc.
    await store.remove("b.bin");
    const collected = await run();
    assert.deepEqual(collected.garbage, [{ generation, keys: [], renameStamp: stamp }]);
    assert.equal(collected.chunks, 0);
    assert.equal(collected.deleted, 0, "no chunk");
    assert.equal(await store.chunkLastModifiedNs(stamp), undefined);
  }, { namespace: { chunkSize: 4096 } });
});

/**
 * A node over its own store that answers not found to the gets and set fetches `degraded`
 * picks (while `degraded.on`) unless they ask with notfound_ok false: as Riak does with its
 * default notfound_ok while the primaries of a key are down and fallback vnodes answer.
 */
async function withDegradedNode(
  picks: (code: number, bucket: string, key: string) => boolean,
  body: (client: StoreClient, degraded: { on: boolean }) => Promise<void>,
): Promise<void> {
  const keyspace = new Keyspace();
  for (const [name, spec] of Object.entries(TEST_BUCKET_TYPES)) {
    keyspace.types.set(name, createdTypeProps(spec));
  }
  const engine = new RiakEngine(keyspace);
  const degraded = { on: false };
  const front = Object.create(engine) as RiakEngine;
  front.handle = (code, body, session) => {
    if (degraded.on && (code === MessageCode.GetReq || code === MessageCode.DtFetchReq)) {
      const request = decodeMessage(code, body) as RpbGetReq | DtFetchReq;
      if (
        request.notfound_ok !== false &&
        picks(code, toText(request.bucket), toText(request.key))
      ) {
        const answer = code === MessageCode.GetReq ? MessageCode.GetResp : MessageCode.DtFetchResp;
        const notFound = encodeFrame(answer, encodeMessage(answer, {}));
        return Promise.resolve({ frames: [notFound], close: false });
      }
    }
    return engine.handle(code, body, session);
  };
  const server = new RiakNetworkServer(front, { host: "127.0.0.1", port: 0 });
  await server.listen();
  const opened = openRiakStoreClient({ nodes: [`127.0.0.1:${server.port}`] });
  try {
    await body(opened.client, degraded);
  } finally {
    await opened.close();
    await server.close();
  }
}

/** A file's bytes as the store reads them back. */
async function readBack(store: Store, path: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of store.readRange(path)) pieces.push(piece);
  return Buffer.concat(pieces);
}

Deno.test("gc asks with notfound_ok false: replicas answering not found (fallbacks after a node failure) never make a stored file's chunks garbage", async () => {
  const bucket = "gc-degraded";
  await withDegradedNode((code, asked) => code === MessageCode.GetReq && asked === bucket, async (
    client,
    degraded,
  ) => {
    const store = new Store(client, { namespace: { bucket, chunkSize: 4096 } });
    const content = seededBytes(31, 20_000);
    await store.writeFile("photos/big.bin", content);
    degraded.on = true;
    const report = await collectGarbage(store, { delete: true, minAgeMs: 0 });
    degraded.on = false;
    assert.deepEqual(report.garbage, []);
    assert.deepEqual(report.orphanEntries, []);
    assert.equal(report.deleted + report.deletedEntries, 0);
    assert.deepEqual(await listed(store, "photos"), ["file:big.bin"]);
    assert.ok((await readBack(store, "photos/big.bin")).equals(content));
  });
});

Deno.test("gc asks for the set of manifest buckets with notfound_ok false: a riak-fuse folder's chunks are no garbage while fallbacks answer not found", async () => {
  const bucket = "gc-degraded-sets";
  await withDegradedNode(
    (code, _bucket, key) => code === MessageCode.DtFetchReq && key === "riakfs-manifest-buckets",
    async (client, degraded) => {
      const namespace = { bucket, chunkSize: 4096 };
      const riakFuse = { contentPrefix: "gcIMG_", directoryPrefix: "gcIMGDIR_" };
      const writer = new Store(client, {
        namespace: { ...namespace, preset: "riak-fuse", riakFuse },
      });
      const content = seededBytes(32, 20_000);
      await writer.writeFile("shop/images/big.jpg", content);
      degraded.on = true;
      // Run with the default layout: only that set leads it to the folder's bucket.
      const report = await collectGarbage(new Store(client, { namespace }), {
        delete: true,
        minAgeMs: 0,
      });
      degraded.on = false;
      assert.deepEqual(report.garbage, []);
      assert.equal(report.deleted, 0);
      assert.ok((await readBack(writer, "shop/images/big.jpg")).equals(content));
    },
  );
});

Deno.test("removeOrphanEntry asks with notfound_ok false whatever the store's reads: a stored file's entry stays while fallbacks answer not found", async () => {
  const bucket = "orphan-degraded";
  await withDegradedNode((code, asked) => code === MessageCode.GetReq && asked === bucket, async (
    client,
    degraded,
  ) => {
    // A mount's store: its own look-ups take Riak's default notfound_ok.
    const store = new Store(client, { namespace: { bucket } });
    await store.writeFile("photos/a.txt", Buffer.from("stored"));
    degraded.on = true;
    const removed = await store.removeOrphanEntry("photos/a.txt");
    degraded.on = false;
    assert.equal(removed, false);
    assert.deepEqual(await listed(store, "photos"), ["file:a.txt"]);
    assert.equal((await store.readFile("photos/a.txt")).toString(), "stored");
  });
});
