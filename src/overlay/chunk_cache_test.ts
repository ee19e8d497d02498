import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ChunkCache, DEFAULT_BLOCK_ENTRY_BYTES, type FileVersion } from "./chunk_cache.ts";
import { MountMetrics } from "./metrics.ts";

/** A deterministic file of `size` bytes and a fetcher that records every request. */
function source(size: number) {
  const bytes = Buffer.alloc(size);
  for (let index = 0; index < size; index++) bytes[index] = (index * 31 + 7) & 0xff;
  const requests: [number, number][] = [];
  const fetch = (offset: number, length: number) => {
    requests.push([offset, length]);
    return Promise.resolve(bytes.subarray(offset, offset + length));
  };
  return { bytes, requests, fetch };
}

Deno.test("reads spanning blocks return the exact bytes, and repeats hit the cache", async () => {
  const metrics = new MountMetrics();
  const cache = new ChunkCache({
    blockSize: 10,
    maxBytes: 1000,
    readAheadBlocks: 0,
    entryBytes: 0,
    metrics,
  });
  const { bytes, requests, fetch } = source(95);
  const file: FileVersion = { path: "/f", version: "v1", size: 95 };
  assert.deepEqual(await cache.read(file, 5, 20, fetch), bytes.subarray(5, 25));
  assert.deepEqual(requests, [[0, 10], [10, 10], [20, 10]]);
  assert.deepEqual(await cache.read(file, 12, 3, fetch), bytes.subarray(12, 15));
  assert.equal(requests.length, 3);
  assert.deepEqual(await cache.read(file, 90, 100, fetch), bytes.subarray(90, 95));
  assert.deepEqual(requests[3], [90, 5]);
  assert.equal((await cache.read(file, 95, 10, fetch)).length, 0);
  const counters = metrics.snapshot().cache;
  assert.equal(counters.hits, 1);
  assert.equal(counters.misses, 4);
  assert.equal(counters.bytes, 35);
});

Deno.test("the byte bound evicts the least recently used blocks", async () => {
  const cache = new ChunkCache({ blockSize: 10, maxBytes: 30, readAheadBlocks: 0, entryBytes: 0 });
  const { requests, fetch } = source(100);
  const file: FileVersion = { path: "/f", version: "v1", size: 100 };
  await cache.read(file, 0, 1, fetch); // block 0
  await cache.read(file, 10, 1, fetch); // block 1
  await cache.read(file, 20, 1, fetch); // block 2
  await cache.read(file, 0, 1, fetch); // touch block 0
  await cache.read(file, 30, 1, fetch); // block 3 evicts block 1
  assert.equal(cache.bytes, 30);
  assert.equal(requests.length, 4);
  await cache.read(file, 0, 1, fetch);
  assert.equal(requests.length, 4, "block 0 stayed");
  await cache.read(file, 10, 1, fetch);
  assert.equal(requests.length, 5, "block 1 was evicted");
  assert.ok(cache.bytes <= 30);
});

Deno.test("a new version or an invalidation misses; concurrent reads share one fetch", async () => {
  const cache = new ChunkCache({ blockSize: 10, readAheadBlocks: 0 });
  const { requests, fetch } = source(50);
  const v1: FileVersion = { path: "/f", version: "v1", size: 50 };
  await Promise.all([cache.read(v1, 0, 5, fetch), cache.read(v1, 2, 5, fetch)]);
  assert.equal(requests.length, 1);
  await cache.read({ ...v1, version: "v2" }, 0, 5, fetch);
  assert.equal(requests.length, 2);
  cache.invalidate("/f");
  assert.equal(cache.bytes, 0);
  await cache.read(v1, 0, 5, fetch);
  assert.equal(requests.length, 3);
});

Deno.test("a failed fetch rejects the read and is not cached", async () => {
  const cache = new ChunkCache({ blockSize: 10 });
  const file: FileVersion = { path: "/f", version: "v1", size: 10 };
  await assert.rejects(
    cache.read(file, 0, 5, () => Promise.reject(new Error("Riak down"))),
    /Riak down/,
  );
  assert.equal(cache.bytes, 0);
  assert.equal((await cache.read(file, 0, 5, () => Promise.resolve(new Uint8Array(10)))).length, 5);
  assert.throws(() => new ChunkCache({ blockSize: 0 }), /blockSize must be a whole number >= 1/);
});

Deno.test("primed bytes are served by peek without a fetch; a missing block peeks nothing", () => {
  const metrics = new MountMetrics();
  const cache = new ChunkCache({ blockSize: 10, maxBytes: 1000, entryBytes: 0, metrics });
  const { bytes } = source(25);
  const file: FileVersion = { path: "/f", version: "v1", size: 25 };
  assert.equal(cache.peek(file, 0, 5), undefined);
  cache.prime({ ...file, size: 24 }, bytes);
  assert.equal(cache.bytes, 0, "bytes of another size than the version's are ignored");
  cache.prime(file, bytes);
  assert.equal(cache.bytes, 25);
  assert.deepEqual(cache.peek(file, 0, 100), bytes);
  assert.deepEqual(cache.peek(file, 12, 3), bytes.subarray(12, 15));
  assert.equal(cache.peek(file, 25, 10)?.length, 0, "at the end: nothing to read");
  assert.equal(cache.peek({ ...file, version: "v2" }, 0, 5), undefined);
  assert.equal(metrics.snapshot().cache.hits, 4);
  cache.invalidate("/f");
  assert.equal(cache.peek(file, 0, 5), undefined);
});

Deno.test("primed bytes live in their own, smaller pool: they never evict fetched blocks", async () => {
  const cache = new ChunkCache({ blockSize: 10, maxBytes: 100, primedBytes: 20, entryBytes: 0 });
  const { bytes, requests, fetch } = source(30);
  const big: FileVersion = { path: "/big", version: "v1", size: 30 };
  await cache.read(big, 0, 30, fetch); // three fetched blocks
  for (let index = 0; index < 5; index++) {
    cache.prime({ path: `/small${index}`, version: "v1", size: 8 }, bytes.subarray(0, 8));
  }
  assert.equal(cache.bytes, 30 + 16, "two primed files of 8 bytes fit in 20");
  assert.equal(cache.peek({ path: "/small0", version: "v1", size: 8 }, 0, 8), undefined);
  assert.deepEqual(
    cache.peek({ path: "/small4", version: "v1", size: 8 }, 0, 8),
    bytes.subarray(0, 8),
  );
  assert.deepEqual(await cache.read(big, 0, 30, fetch), bytes);
  assert.equal(requests.length, 3, "the fetched blocks stayed");
});

Deno.test("a small block that came as a view into a larger buffer is kept as a copy", async () => {
  const cache = new ChunkCache({ blockSize: 1024 });
  // A small file's bytes in the middle of the reply (a socket read) that brought them.
  const reply = new Uint8Array(65536).fill(9);
  const small: FileVersion = { path: "/small", version: "v1", size: 100 };
  cache.prime(small, reply.subarray(300, 400));
  const primed = cache.peek(small, 0, 100)!;
  assert.deepEqual([...primed], new Array(100).fill(9));
  assert.equal(primed.buffer.byteLength, 100, "the cache keeps the reply alive");
  const read = await cache.read(
    { path: "/read", version: "v1", size: 100 },
    0,
    100,
    () => Promise.resolve(reply.subarray(1000, 1100)),
  );
  assert.equal(read.length, 100);
  const cached = cache.peek({ path: "/read", version: "v1", size: 100 }, 0, 100)!;
  assert.equal(cached.buffer.byteLength, 100, "the cache keeps the reply alive");
  // A block that is most of its buffer (a large value, in the frame it came in) stays a view.
  const frame = new Uint8Array(1100);
  const large: FileVersion = { path: "/large", version: "v1", size: 1000 };
  cache.prime(large, frame.subarray(50, 1050));
  assert.equal(cache.peek(large, 0, 1000)!.buffer, frame.buffer);
});

Deno.test("the bounds count what each block costs beyond its bytes: tiny files do not swamp them", () => {
  const primedBytes = 1024 * 1024;
  const cache = new ChunkCache({ blockSize: 65536, primedBytes });
  // A tree of tiny files looked up once: each costs its key, map slot and objects, ten
  // times its 10 bytes; counting the bytes alone held ~100,000 of them in a 1 MiB pool.
  const files = 100_000;
  const tiny = (index: number): FileVersion => ({ path: `/t/${index}`, version: "v1", size: 10 });
  for (let index = 0; index < files; index++) {
    cache.prime(tiny(index), Buffer.alloc(10, index));
  }
  assert.ok(cache.bytes <= primedBytes, `${cache.bytes} bytes held in a pool of ${primedBytes}`);
  const kept = Math.floor(primedBytes / (10 + DEFAULT_BLOCK_ENTRY_BYTES));
  assert.notEqual(cache.peek(tiny(files - 1), 0, 10), undefined, "the newest is kept");
  assert.notEqual(cache.peek(tiny(files - kept), 0, 10), undefined);
  assert.equal(cache.peek(tiny(files - kept - 1), 0, 10), undefined, "older ones were evicted");
  assert.equal(cache.peek(tiny(0), 0, 10), undefined);
});
