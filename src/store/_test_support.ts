/**
 * Test support for the store tests: a Store over `startTestRiak()` (the embedded server, or
 * the real Riak named by RIAKFS_TEST_RIAK), deterministic bytes, and cleanup.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createHash } from "node:crypto";
import { startTestRiak, type TestRiak } from "../riak-server/testing.ts";
import type { StoreClient } from "./client.ts";
import { openRiakStoreClient } from "./riak_adapter.ts";
import { encodeEntryMember, shardKey } from "./shards.ts";
import { Store, type StoreOptions } from "./store.ts";
import type { EntryType } from "./usermeta.ts";

/** A store on a fresh namespace of the test Riak, with the raw client beside it. */
export interface StoreFixture {
  riak: TestRiak;
  client: StoreClient;
  store: Store;
  /** The content bucket of this test (unique per run). */
  bucket: string;
  /** Another Store over the same client and namespace, with other options. */
  another(options?: StoreOptions): Store;
}

/** Runs `fn` with a fresh store, then closes the client and the server (also on failure). */
export async function withStore(
  fn: (fixture: StoreFixture) => Promise<void>,
  options: StoreOptions = {},
): Promise<void> {
  const riak = await startTestRiak();
  const opened = openRiakStoreClient({ nodes: riak.nodes });
  try {
    const bucket = `${riak.prefix}-files`;
    const namespace = { bucket, ...options.namespace };
    const store = new Store(opened.client, { ...options, namespace });
    await fn({
      riak,
      client: opened.client,
      store,
      bucket,
      another: (more = {}) =>
        new Store(opened.client, { ...more, namespace: { ...namespace, ...more.namespace } }),
    });
  } finally {
    await opened.close();
    await riak.close();
  }
}

/**
 * `size` deterministic pseudo-random bytes from a seed (AES-CTR keystream: fast, so 100 MiB
 * takes well under a second).
 */
export function seededBytes(seed: number, size: number): Buffer {
  const key = createHash("sha256").update(`riakfs-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** The same bytes as {@link seededBytes}, streamed in pieces of `piece` bytes. */
export async function* seededStream(
  seed: number,
  size: number,
  piece = 256 * 1024,
): AsyncGenerator<Buffer> {
  const key = createHash("sha256").update(`riakfs-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  for (let done = 0; done < size; done += piece) {
    yield cipher.update(Buffer.alloc(Math.min(piece, size - done)));
  }
}

/** sha256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Riak-fuse prefixes of a test's own (`riak.prefix`), so runs against a shared node do not meet. */
export function riakFusePrefixes(
  riak: TestRiak,
): { contentPrefix: string; directoryPrefix: string } {
  return { contentPrefix: `${riak.prefix}IMG_`, directoryPrefix: `${riak.prefix}IMGDIR_` };
}

/**
 * Writes a file as the Python riak-fuse left it: the whole value under `<prefix><folder>`
 * with no usermeta, and its name in the folder's `directory` set. Riak-fuse prefixes of a
 * test are its own (`riak.prefix`), so runs against a shared node do not meet.
 */
export async function putLegacyRiakFuseFile(
  client: StoreClient,
  prefixes: { contentPrefix: string; directoryPrefix: string },
  folder: string,
  name: string,
  value: string,
  contentType = "image/jpeg",
): Promise<void> {
  await client.put(
    {
      bucketType: "default",
      bucket: Buffer.from(`${prefixes.contentPrefix}${folder}`),
      key: Buffer.from(name),
    },
    { value: Buffer.from(value), contentType, usermeta: [] },
  );
  await client.updateSet(
    {
      bucketType: "sets",
      bucket: Buffer.from(`${prefixes.directoryPrefix}${folder}`),
      key: Buffer.from("directory"),
    },
    { add: [Buffer.from(name)] },
  );
}

/**
 * Takes the entry `member` (`d:<name>`, `l:<name>`) out of the default layout's root shard of
 * `<folder>/images/` in the namespace of `bucket`: what builds before riakfs kept the types of
 * directories and symlinks it made in a riak-fuse folder left there.
 */
export async function forgetRiakFuseType(
  client: StoreClient,
  bucket: string,
  folder: string,
  member: string,
): Promise<void> {
  const typed = {
    bucketType: "sets",
    bucket: Buffer.from(`${bucket}.dirs`),
    key: Buffer.from(`${folder}/images/`),
  };
  const set = await client.fetchSet(typed);
  await client.updateSet(typed, { remove: [Buffer.from(member)], context: set?.context });
}

/**
 * Adds the entry `type:name` to the root shard of `directory` (a path without its leading
 * `/`; the root is `""`), with no object behind it: an orphan entry, as an add Riak applied
 * after the name's removal leaves one.
 */
export async function addOrphanEntry(
  client: StoreClient,
  store: Store,
  directory: string,
  type: EntryType,
  name: string,
): Promise<void> {
  const { entries } = store.layout.directory(Buffer.from(directory));
  if (entries.kind !== "sharded") throw new Error(`${directory}: not a sharded directory`);
  await client.updateSet(
    { bucketType: entries.bucketType, bucket: entries.bucket, key: shardKey(entries.dirKey, 1, 0) },
    { add: [encodeEntryMember(type, Buffer.from(name))] },
  );
}
