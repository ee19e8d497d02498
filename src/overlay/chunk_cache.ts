/**
 * The in-memory chunk cache for bytes read from Riak: fixed-size blocks of a file version,
 * evicted least-recently-used once the cache holds more than its byte bound. Concurrent
 * reads of one block share one fetch, and sequential reads trigger read-ahead of the next
 * blocks in the background so a streaming reader rarely waits on Riak.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { MountMetrics } from "./metrics.ts";

/** Default byte bound of the cache. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
/** Default block size: Riak chunk size, so one block is one Riak object read. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
/** Default blocks fetched ahead of a sequential reader. */
export const DEFAULT_READ_AHEAD_BLOCKS = 4;

/** Fetches `length` bytes at `offset` of the file version; fewer bytes means end of file. */
export type RangeFetcher = (offset: number, length: number) => Promise<Uint8Array>;

/** Options of a {@link ChunkCache}. */
export interface ChunkCacheOptions {
  maxBytes?: number;
  blockSize?: number;
  readAheadBlocks?: number;
  metrics?: MountMetrics;
}

/** Identifies one version of one file; a changed file gets a new key and misses the cache. */
export interface FileVersion {
  path: string;
  /** Anything that changes when the content changes: sha256, or size + mtime. */
  version: string;
  size: number;
}

/** Per-handle state that detects sequential reading. */
export class ReadPattern {
  /** Where the last read ended. */
  nextOffset = -1;
  /** Consecutive reads that started where the previous one ended. */
  streak = 0;

  /** Records a read; returns whether reading is sequential. */
  observe(offset: number, length: number): boolean {
    this.streak = offset === this.nextOffset ? this.streak + 1 : 0;
    this.nextOffset = offset + length;
    return this.streak >= 1;
  }
}

/**
 * A byte-bounded LRU cache of file blocks.
 *
 * @example
 * ```ts
 * const cache = new ChunkCache({ maxBytes: 64 << 20 });
 * const bytes = await cache.read(file, 0, 4096, (offset, length) => store.readRange(...));
 * ```
 */
export class ChunkCache {
  readonly maxBytes: number;
  readonly blockSize: number;
  readonly readAheadBlocks: number;
  readonly #metrics?: MountMetrics;
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #blocks = new Map<string, Uint8Array>();
  readonly #fetching = new Map<string, Promise<Uint8Array>>();
  #bytes = 0;

  constructor(options: ChunkCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.readAheadBlocks = options.readAheadBlocks ?? DEFAULT_READ_AHEAD_BLOCKS;
    this.#metrics = options.metrics;
    for (
      const [name, value, min] of [
        ["maxBytes", this.maxBytes, 0],
        ["blockSize", this.blockSize, 1],
        ["readAheadBlocks", this.readAheadBlocks, 0],
      ] as const
    ) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new RangeError(`chunk cache ${name} must be a whole number >= ${min}, got ${value}`);
      }
    }
    options.metrics?.onSnapshot(() => options.metrics!.value.cache.bytes = this.#bytes);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Reads `size` bytes at `offset` of `file` through the cache. With a `pattern` showing
   * sequential reads, the blocks after the read are fetched in the background.
   */
  async read(
    file: FileVersion,
    offset: number,
    size: number,
    fetch: RangeFetcher,
    pattern?: ReadPattern,
  ): Promise<Uint8Array> {
    const end = Math.min(offset + size, file.size);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    const sequential = pattern?.observe(offset, end - offset) ?? false;
    if (sequential) this.#readAhead(file, last + 1, fetch);
    const blocks = await Promise.all(
      Array.from(
        { length: last - first + 1 },
        (_, index) => this.#block(file, first + index, fetch, true),
      ),
    );
    const joined = blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
    const start = offset - first * this.blockSize;
    return joined.subarray(start, start + (end - offset));
  }

  /** Drops every cached block of `path` (after a write, rename or unlink). */
  invalidate(path: string): void {
    const prefix = `${path}\0`;
    for (const [key, block] of this.#blocks) {
      if (key.startsWith(prefix)) {
        this.#blocks.delete(key);
        this.#bytes -= block.length;
      }
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#blocks.clear();
    this.#bytes = 0;
  }

  #readAhead(file: FileVersion, from: number, fetch: RangeFetcher): void {
    const lastBlock = Math.floor((file.size - 1) / this.blockSize);
    for (let index = from; index <= Math.min(lastBlock, from + this.readAheadBlocks - 1); index++) {
      const key = keyOf(file, index);
      if (this.#blocks.has(key) || this.#fetching.has(key)) continue;
      if (this.#metrics) this.#metrics.value.cache.readAheadChunks++;
      // Read-ahead is a hint: a failure here surfaces when the block is really read.
      this.#block(file, index, fetch, false).catch(() => {});
    }
  }

  async #block(
    file: FileVersion,
    index: number,
    fetch: RangeFetcher,
    counted: boolean,
  ): Promise<Uint8Array> {
    const key = keyOf(file, index);
    const cached = this.#blocks.get(key);
    const cache = this.#metrics?.value.cache;
    if (cached) {
      this.#blocks.delete(key);
      this.#blocks.set(key, cached);
      if (counted && cache) cache.hits++;
      return cached;
    }
    if (counted && cache) cache.misses++;
    let pending = this.#fetching.get(key);
    if (!pending) {
      pending = fetch(
        index * this.blockSize,
        Math.min(this.blockSize, file.size - index * this.blockSize),
      );
      this.#fetching.set(key, pending);
      pending.then((block) => this.#store(key, block), () => {}).finally(() =>
        this.#fetching.delete(key)
      );
    }
    return await pending;
  }

  #store(key: string, block: Uint8Array): void {
    if (block.length > this.maxBytes) return;
    const previous = this.#blocks.get(key);
    if (previous) this.#bytes -= previous.length;
    this.#blocks.set(key, block);
    this.#bytes += block.length;
    for (const [oldest, evicted] of this.#blocks) {
      if (this.#bytes <= this.maxBytes) break;
      this.#blocks.delete(oldest);
      this.#bytes -= evicted.length;
    }
  }
}

function keyOf(file: FileVersion, index: number): string {
  return `${file.path}\0${file.version}\0${index}`;
}
