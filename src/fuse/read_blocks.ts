/**
 * Which blocks of a file one open handle has read, in shared memory: the FUSE reader
 * threads record the reads they serve on a local descriptor (`Opened.localFd`) here, so a
 * filesystem that must know what was read (copy-on-read after a whole file was read) can
 * still let them serve the reads, and looks at the record when the handle is released.
 * The kernel sends RELEASE only after every READ of the handle was answered, and a reader
 * records a read before it answers it, so `release` sees every read, from any thread.
 *
 * @module
 */

/** Bytes per recorded block: the page size, the unit the page cache reads in. */
export const READ_BLOCK_SIZE = 4096;
/**
 * Files up to this size get a record (32 KiB of shared memory per GiB); bigger ones are
 * not recorded (their reads are served by the filesystem's `read`).
 */
export const MAX_RECORDED_FILE_SIZE = 64 * 1024 ** 3;

/**
 * Records one read of `length` bytes at `offset`, asked as `requested` bytes, in the
 * bitmap `words` (bit i of the words = block i). Only block-aligned reads of whole blocks
 * are recorded (what the page cache asks for); a short read ends at end of file, so its
 * partial last block counts as read. Returns false, recording nothing, for a read it cannot
 * record (not aligned): the caller records that one another way. Blocks beyond the bitmap
 * (the file grew since the open) are not recorded.
 *
 * Self-contained (no outer names, only standard globals): the reader threads run its
 * source text, so the threads and the event loop record with the same code.
 */
export function markReadBlocks(
  words: Int32Array,
  offset: number,
  requested: number,
  length: number,
): boolean {
  const blockSize = 4096; // READ_BLOCK_SIZE, spelled out: the threads see only this function.
  if (offset % blockSize !== 0 || requested % blockSize !== 0 || requested === 0) return false;
  const first = offset / blockSize;
  const whole = Math.floor(length / blockSize);
  const end = Math.min(
    first + (length < requested && length % blockSize !== 0 ? whole + 1 : whole),
    words.length * 32,
  );
  for (let block = first; block < end;) {
    const word = block >>> 5;
    const from = block & 31;
    const to = Math.min(32, from + end - block);
    const bits = to - from === 32 ? -1 : ((1 << (to - from)) - 1) << from;
    if ((Atomics.load(words, word) & bits) !== bits) Atomics.or(words, word, bits);
    block += to - from;
  }
  return true;
}

/**
 * The read record of one open handle of a file of `size` bytes (its size when opened).
 *
 * @example
 * ```ts
 * const reads = new ReadBlocks(10_000);
 * reads.record(0, 8192, 8192);
 * reads.record(8192, 4096, 1808); // short: end of file
 * reads.readFrom(0); // 10000: all of it
 * ```
 */
export class ReadBlocks {
  /** The bitmap, shared with the reader threads. */
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #size: number;

  /** Whether a file of `size` bytes gets a record (see {@link MAX_RECORDED_FILE_SIZE}). */
  static fits(size: number): boolean {
    return size <= MAX_RECORDED_FILE_SIZE;
  }

  constructor(size: number) {
    if (!ReadBlocks.fits(size)) throw new RangeError(`${size} bytes is too big to record`);
    this.#size = size;
    const blocks = Math.ceil(size / READ_BLOCK_SIZE);
    this.buffer = new SharedArrayBuffer(Math.max(1, Math.ceil(blocks / 32)) * 4);
    this.#words = new Int32Array(this.buffer);
  }

  /** Records a read (see {@link markReadBlocks}); false when the caller must record it. */
  record(offset: number, requested: number, length: number): boolean {
    return markReadBlocks(this.#words, offset, requested, length);
  }

  /**
   * Where the bytes read from `offset` on without a gap end: `offset` itself when the
   * block holding it was not read; at most the file's size.
   */
  readFrom(offset: number): number {
    const blocks = Math.ceil(this.#size / READ_BLOCK_SIZE);
    let block = Math.floor(offset / READ_BLOCK_SIZE);
    while (block < blocks) {
      const word = Atomics.load(this.#words, block >>> 5);
      // A whole word read is stepped over at once (a GiB is 8,192 words).
      if ((block & 31) === 0 && word === -1) block += 32;
      else if ((word & (1 << (block & 31))) !== 0) block++;
      else break;
    }
    return Math.max(offset, Math.min(block * READ_BLOCK_SIZE, this.#size));
  }
}
