/**
 * The in-memory chunk cache for bytes read from Riak: fixed-size blocks of a file version,
 * evicted least-recently-used once the cache holds more than its byte bound. Concurrent
 * reads of one block share one fetch. Small files' bytes that came with their stat are
 * primed into a second, smaller pool: they are only needed between a lookup and the reads
 * that follow it, and must not push the mount's memory up to the main bound while a tree of
 * small files is read once. Sequential readers do not go through the cache: they stream
 * (sequential_reader.ts), pulled `readAheadBlocks` blocks ahead.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ownedBytes } from "../util/owned_bytes.ts";
import { DEFAULT_CACHE_BYTES, DEFAULT_READ_AHEAD_BLOCKS } from "./defaults.ts";
import type { MountMetrics } from "./metrics.ts";

/** Default block size: Riak chunk size, so one block is one Riak object read. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
/** Default byte bound of the bytes primed with stats (see {@link ChunkCache.prime}). */
export const DEFAULT_PRIMED_BYTES = 32 * 1024 * 1024;
/**
 * What a cached block costs beyond its bytes: its key, the map's slot, the view and buffer
 * objects and the buffer's own bookkeeping (about 0.9 KiB for a 100-byte block in Node 24).
 * Counted against the bounds, so a tree of tiny files held in a 32 MiB pool takes about
 * 32 MiB, not ten times that.
 */
export const DEFAULT_BLOCK_ENTRY_BYTES = 1024;

/** Fetches `length` bytes at `offset` of the file version; fewer bytes means end of file. */
export type RangeFetcher = (offset: number, length: number) => Promise<Uint8Array>;

/** Options of a {@link ChunkCache}. */
export interface ChunkCacheOptions {
  maxBytes?: number;
  /** Byte bound of the primed pool; default {@link DEFAULT_PRIMED_BYTES}, at most `maxBytes`. */
  primedBytes?: number;
  blockSize?: number;
  /** How far sequential readers pull ahead, in blocks; kept here with the other bounds. */
  readAheadBlocks?: number;
  /** What each block costs beyond its bytes; default {@link DEFAULT_BLOCK_ENTRY_BYTES}. */
  entryBytes?: number;
  metrics?: MountMetrics;
}

/** Identifies one version of one file; a changed file gets a new key and misses the cache. */
export interface FileVersion {
  path: string;
  /** Anything that changes when the content changes: sha256, or size + mtime. */
  version: string;
  size: number;
}

/** A kept block and what it costs the pool's bound. */
interface Cached {
  block: Uint8Array;
  cost: number;
}

/**
 * Blocks by key, least recently used first, within a bound on what they cost: their bytes,
 * the buffers they keep alive, and `entryBytes` each.
 */
class BlockPool {
  readonly #blocks = new Map<string, Cached>();
  #bytes = 0;

  constructor(readonly maxBytes: number, readonly entryBytes: number) {}

  /** What the blocks held cost now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The block, marked as the most recently used. */
  get(key: string): Uint8Array | undefined {
    const cached = this.#blocks.get(key);
    if (cached !== undefined) {
      this.#blocks.delete(key);
      this.#blocks.set(key, cached);
    }
    return cached?.block;
  }

  /**
   * Keeps a block, evicting the least recently used ones beyond the bound. A block that is
   * a small part of the buffer under it (a small file's bytes in the reply that brought
   * them) is copied: kept as a view, it would keep the whole reply alive, uncounted.
   */
  set(key: string, block: Uint8Array): void {
    const kept = block.byteLength * 2 >= block.buffer.byteLength ? block : ownedBytes(block);
    const cost = kept.buffer.byteLength + this.entryBytes;
    if (cost > this.maxBytes) return;
    this.delete(key);
    this.#blocks.set(key, { block: kept, cost });
    this.#bytes += cost;
    for (const [oldest, evicted] of this.#blocks) {
      if (this.#bytes <= this.maxBytes) break;
      this.#blocks.delete(oldest);
      this.#bytes -= evicted.cost;
    }
  }

  delete(key: string): void {
    const cached = this.#blocks.get(key);
    if (cached === undefined) return;
    this.#blocks.delete(key);
    this.#bytes -= cached.cost;
  }

  /** Drops every block whose key starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const key of this.#blocks.keys()) {
      if (key.startsWith(prefix)) this.delete(key);
    }
  }

  clear(): void {
    this.#blocks.clear();
    this.#bytes = 0;
  }
}

/**
 * A byte-bounded LRU cache of file blocks.
 *
 * @example
 * ```ts
 * const cache = new ChunkCache({ maxBytes: 64 << 20 });
 * const file = { path: "/a", version: stat.sha256, size: stat.size };
 * const bytes = cache.peek(file, 0, 4096) ??
 *   await cache.read(file, 0, 4096, (offset, length) => fetchRange(offset, length));
 * ```
 */
export class ChunkCache {
  readonly maxBytes: number;
  readonly blockSize: number;
  readonly readAheadBlocks: number;
  readonly #metrics?: MountMetrics;
  /** Blocks fetched by reads. */
  readonly #fetched: BlockPool;
  /** Whole small files that came with their stat. */
  readonly #primed: BlockPool;
  readonly #fetching = new Map<string, Promise<Uint8Array>>();

  constructor(options: ChunkCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.readAheadBlocks = options.readAheadBlocks ?? DEFAULT_READ_AHEAD_BLOCKS;
    const primedBytes = options.primedBytes ?? Math.min(DEFAULT_PRIMED_BYTES, this.maxBytes);
    const entryBytes = options.entryBytes ?? DEFAULT_BLOCK_ENTRY_BYTES;
    this.#metrics = options.metrics;
    for (
      const [name, value, min] of [
        ["maxBytes", this.maxBytes, 0],
        ["primedBytes", primedBytes, 0],
        ["blockSize", this.blockSize, 1],
        ["readAheadBlocks", this.readAheadBlocks, 0],
        ["entryBytes", entryBytes, 0],
      ] as const
    ) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new RangeError(`chunk cache ${name} must be a whole number >= ${min}, got ${value}`);
      }
    }
    this.#fetched = new BlockPool(this.maxBytes, entryBytes);
    this.#primed = new BlockPool(Math.min(primedBytes, this.maxBytes), entryBytes);
    options.metrics?.onSnapshot(() => options.metrics!.value.cache.bytes = this.bytes);
  }

  /** What the blocks held now cost (both pools): their bytes and their bookkeeping. */
  get bytes(): number {
    return this.#fetched.bytes + this.#primed.bytes;
  }

  /** Reads `size` bytes at `offset` of `file` through the cache, fetching missing blocks. */
  async read(
    file: FileVersion,
    offset: number,
    size: number,
    fetch: RangeFetcher,
  ): Promise<Uint8Array> {
    const end = Math.min(offset + size, file.size);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    const blocks = await Promise.all(
      Array.from(
        { length: last - first + 1 },
        (_, index) => this.#block(file, first + index, fetch),
      ),
    );
    const joined = blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
    const start = offset - first * this.blockSize;
    return joined.subarray(start, start + (end - offset));
  }

  /**
   * The bytes `[offset, offset + size)` of `file` (fewer at its end) when every block they
   * span is cached, with no fetch and no wait; undefined when any block is missing.
   */
  peek(file: FileVersion, offset: number, size: number): Uint8Array | undefined {
    const end = Math.min(offset + size, file.size);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    const blocks: Uint8Array[] = [];
    for (let index = first; index <= last; index++) {
      const block = this.#cached(keyOf(file, index));
      if (block === undefined) return undefined;
      blocks.push(block);
    }
    if (this.#metrics) this.#metrics.value.cache.hits += blocks.length;
    const joined = blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
    const start = offset - first * this.blockSize;
    return joined.subarray(start, start + (end - offset));
  }

  /**
   * Keeps a whole file's bytes that arrived some other way (a small file's content fetched
   * with its stat), so reads of this version need no fetch. They go to the primed pool,
   * whose bound is small: they matter from a lookup to the reads that follow it. Bytes of
   * another size than the version's are ignored. The blocks are views of `bytes`, not copies.
   */
  prime(file: FileVersion, bytes: Uint8Array): void {
    if (bytes.length !== file.size) return;
    for (let index = 0; index * this.blockSize < bytes.length; index++) {
      const start = index * this.blockSize;
      this.#primed.set(keyOf(file, index), bytes.subarray(start, start + this.blockSize));
    }
  }

  /** Drops every cached block of `path` (after a write, rename or unlink). */
  invalidate(path: string): void {
    const prefix = `${path}\0`;
    this.#fetched.deletePrefix(prefix);
    this.#primed.deletePrefix(prefix);
  }

  /** Drops everything. */
  clear(): void {
    this.#fetched.clear();
    this.#primed.clear();
  }

  /** A cached block from either pool, marked as recently used there. */
  #cached(key: string): Uint8Array | undefined {
    return this.#fetched.get(key) ?? this.#primed.get(key);
  }

  async #block(file: FileVersion, index: number, fetch: RangeFetcher): Promise<Uint8Array> {
    const key = keyOf(file, index);
    const cached = this.#cached(key);
    const cache = this.#metrics?.value.cache;
    if (cached) {
      if (cache) cache.hits++;
      return cached;
    }
    if (cache) cache.misses++;
    let pending = this.#fetching.get(key);
    if (!pending) {
      pending = fetch(
        index * this.blockSize,
        Math.min(this.blockSize, file.size - index * this.blockSize),
      );
      this.#fetching.set(key, pending);
      pending.then((block) => this.#fetched.set(key, block), () => {}).finally(() =>
        this.#fetching.delete(key)
      );
    }
    return await pending;
  }
}

function keyOf(file: FileVersion, index: number): string {
  return `${file.path}\0${file.version}\0${index}`;
}
