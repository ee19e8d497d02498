/**
 * A reader that serves one handle's forward reads from a single streaming read of the store
 * (the manifest fetched once, the store's own read-ahead of chunk gets), pulled ahead of the
 * reader: while the kernel copies one reply, the next chunks are already fetched and
 * verified, so a READ rarely waits on Riak or on hashing. Reads may arrive concurrently and
 * slightly out of order (the kernel's asynchronous read-ahead); any read inside the window
 * the stream covers is served from it. A read elsewhere restarts the stream there once no
 * read is waiting on the old one.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Opens a stream of a file's bytes from `offset` to the end. */
export type StreamOpener = (offset: number) => AsyncIterator<Uint8Array>;

/** Runs one step of the stream under the caller's deadline and outage tracking. */
export type StepRunner = (step: () => Promise<IteratorResult<Uint8Array>>) => Promise<
  IteratorResult<Uint8Array>
>;

/** Options of a {@link SequentialReader}. */
export interface SequentialReaderOptions {
  /**
   * Bytes pulled ahead of the furthest read asked for. Together with what the store keeps
   * in flight, this bounds the memory one reader holds.
   */
  aheadBytes: number;
  /** Runs every step of the stream (a deadline, outage tracking). */
  run: StepRunner;
  /** Called for each piece pulled before any read asked for it (the read-ahead counter). */
  onPulledAhead?: () => void;
  /**
   * Given each piece of the stream once no read can be served from it any more (passed by
   * the reads, or dropped by a restart or close), after the replies already made from it
   * were written: it may free the piece's memory at once (`Store.releaseRead`).
   */
  release?: (bytes: Uint8Array) => void;
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

/** Bytes received from the stream, at their file offset. */
interface Piece {
  start: number;
  bytes: Uint8Array;
}

/**
 * Serves reads at increasing offsets from one stream pulled ahead of them.
 *
 * @example
 * ```ts
 * const reader = new SequentialReader(
 *   (at) => store.readRange(path, at)[Symbol.asyncIterator](),
 *   { aheadBytes: 4 << 20, run: (step) => step() },
 * );
 * if (reader.canServe(0)) await reader.read(0, 1 << 20);
 * reader.close();
 * ```
 */
export class SequentialReader {
  readonly #open: StreamOpener;
  readonly #aheadBytes: number;
  readonly #run: StepRunner;
  readonly #onPulledAhead: () => void;
  readonly #release: ((bytes: Uint8Array) => void) | undefined;
  /** Pieces dropped in this turn of the event loop, released once it is over. */
  #dropped: Uint8Array[] = [];
  #stream: AsyncIterator<Uint8Array> | undefined;
  /** Received bytes not yet passed by every read, in file order and contiguous. */
  #pieces: Piece[] = [];
  /** File offset where the received bytes end (where the next piece starts). */
  #frontier = 0;
  /** The furthest end a read asked for: the pump stays `aheadBytes` beyond it. */
  #wanted = 0;
  #ended = false;
  /** Why the stream broke; surfaced to the first read that needs bytes it did not get. */
  #failure: { error: unknown } | undefined;
  /** The stream step in progress, shared by every read waiting on it and by the pump. */
  #pulling: Promise<void> | undefined;
  #pumping = false;
  /** Offsets of the reads in progress (the bytes from the lowest one on must stay). */
  readonly #reading: number[] = [];

  constructor(open: StreamOpener, options: SequentialReaderOptions) {
    this.#open = open;
    this.#aheadBytes = options.aheadBytes;
    this.#run = options.run;
    this.#onPulledAhead = options.onPulledAhead ?? (() => {});
    this.#release = options.release;
  }

  /**
   * Whether a read at `offset` can be served here: it falls inside the window of the open
   * stream, or no read waits on the stream, so it can (re)start at `offset`.
   */
  canServe(offset: number): boolean {
    return this.follows(offset) || this.#reading.length === 0;
  }

  /**
   * Whether `offset` lies in the window of the open stream: at or after the oldest byte
   * still held, and at most `aheadBytes` beyond the furthest byte received or asked for.
   */
  follows(offset: number): boolean {
    if (this.#stream === undefined) return false;
    const low = this.#pieces.length > 0 ? this.#pieces[0].start : this.#frontier;
    return offset >= low && offset <= Math.max(this.#frontier, this.#wanted) + this.#aheadBytes;
  }

  /** Reads up to `size` bytes at `offset`; fewer at the end of the file. */
  async read(offset: number, size: number): Promise<Uint8Array> {
    // A broken stream nobody waits on any more is dropped: this read starts a fresh one.
    if (this.#failure && this.#reading.length === 0) this.#end();
    if (!this.follows(offset)) {
      if (this.#reading.length > 0) throw new RangeError(`offset ${offset} is not served here`);
      this.#restart(offset);
    }
    const end = offset + size;
    this.#reading.push(offset);
    try {
      if (end > this.#wanted) this.#wanted = end;
      this.#pump();
      while (this.#frontier < end && !this.#ended) {
        // Every read still waiting on a broken stream fails; the next one starts afresh.
        if (this.#failure) throw this.#failure.error;
        if (this.#stream === undefined) throw new RangeError("the reader was closed");
        await this.#pullOnce();
      }
      return this.#slice(offset, Math.min(end, this.#frontier));
    } finally {
      this.#reading.splice(this.#reading.indexOf(offset), 1);
      this.#trim(Math.min(offset, ...this.#reading));
    }
  }

  /** Ends the stream (on release); bytes held are dropped. */
  close(): void {
    this.#end();
  }

  /** Pulls in the background until the stream is `aheadBytes` beyond the furthest read. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    (async () => {
      try {
        while (
          this.#stream !== undefined && !this.#ended && this.#failure === undefined &&
          this.#frontier < this.#wanted + this.#aheadBytes
        ) {
          if (this.#frontier >= this.#wanted && this.#pulling === undefined) this.#onPulledAhead();
          await this.#pullOnce();
        }
      } finally {
        this.#pumping = false;
      }
    })();
  }

  /** One step of the stream; callers arriving meanwhile share it. Never rejects. */
  #pullOnce(): Promise<void> {
    if (this.#pulling) return this.#pulling;
    const stream = this.#stream!;
    const pulling = this.#run(() => stream.next()).then(
      (next) => {
        if (stream !== this.#stream) return; // Restarted meanwhile: these bytes are stale.
        if (next.done) {
          this.#ended = true;
        } else if (next.value.length > 0) {
          this.#pieces.push({ start: this.#frontier, bytes: next.value });
          this.#frontier += next.value.length;
        }
      },
      (error) => {
        if (stream === this.#stream) this.#failure = { error };
      },
    ).finally(() => {
      if (this.#pulling === pulling) this.#pulling = undefined;
    });
    this.#pulling = pulling;
    return pulling;
  }

  /** Bytes `[from, to)` of what was received: a view when one piece holds them all. */
  #slice(from: number, to: number): Uint8Array {
    if (to <= from) return new Uint8Array(0);
    const parts: Uint8Array[] = [];
    for (const piece of this.#pieces) {
      const pieceEnd = piece.start + piece.bytes.length;
      if (pieceEnd <= from) continue;
      if (piece.start >= to) break;
      parts.push(
        piece.bytes.subarray(
          Math.max(0, from - piece.start),
          Math.min(piece.bytes.length, to - piece.start),
        ),
      );
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Drops the pieces that end at or before `offset`: no read in progress needs them. */
  #trim(offset: number): void {
    let drop = 0;
    while (
      drop < this.#pieces.length &&
      this.#pieces[drop].start + this.#pieces[drop].bytes.length <= offset
    ) drop++;
    if (drop === 0) return;
    this.#drop(this.#pieces.slice(0, drop));
    this.#pieces = this.#pieces.slice(drop);
  }

  /**
   * Hands pieces no read will be served from to `release`, once this turn of the event loop
   * is over: a read answered from them in this turn has returned a view of them, and its
   * reply is written in the promise reactions that follow (src/fuse writes a reply before
   * any other I/O callback runs), which all run before an immediate.
   */
  #drop(pieces: readonly Piece[]): void {
    if (this.#release === undefined || pieces.length === 0) return;
    if (this.#dropped.length === 0) setImmediate(() => this.#releaseDropped());
    for (const piece of pieces) this.#dropped.push(piece.bytes);
  }

  #releaseDropped(): void {
    const dropped = this.#dropped;
    this.#dropped = [];
    for (const bytes of dropped) this.#release!(bytes);
  }

  #end(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#drop(this.#pieces);
    this.#pieces = [];
    this.#pulling = undefined;
    this.#failure = undefined;
    // Not awaited: a generator still waiting on an unreachable Riak would hold the caller
    // (release, or the next read) until that request times out.
    stream?.return?.().catch(() => {});
  }

  #restart(offset: number): void {
    this.#end();
    this.#stream = this.#open(offset);
    this.#frontier = offset;
    this.#wanted = offset;
    this.#ended = false;
  }
}
