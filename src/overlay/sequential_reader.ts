/**
 * A reader that follows one handle's sequential reads with a single streaming read of the
 * store: the manifest is fetched once and the store reads chunks ahead, instead of one
 * range request (manifest + chunk) per read. A read anywhere else restarts the stream there.
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

/**
 * Serves reads at increasing offsets from one stream.
 *
 * @example
 * ```ts
 * const reader = new SequentialReader((at) => store.readRange(path, at)[Symbol.asyncIterator]());
 * const first = await reader.read(0, 131072, (step) => step());
 * ```
 */
export class SequentialReader {
  readonly #open: StreamOpener;
  #stream: AsyncIterator<Uint8Array> | undefined;
  /** File offset of the first byte of `#pending`. */
  #position = -1;
  #pending: Uint8Array = new Uint8Array(0);
  #ended = false;
  /** Reads run one at a time: the kernel may send several reads of one handle at once. */
  #turn: Promise<unknown> = Promise.resolve();

  constructor(open: StreamOpener) {
    this.#open = open;
  }

  /** Whether a read at `offset` continues the stream (or nothing was read yet). */
  follows(offset: number): boolean {
    return this.#stream === undefined || offset === this.#position;
  }

  /** Reads up to `size` bytes at `offset`; fewer at the end of the file. */
  read(offset: number, size: number, run: StepRunner): Promise<Uint8Array> {
    const result = this.#turn.then(() =>
      this.#read(offset, size, run).catch((error) => {
        // Part of the stream may be consumed: the next read starts a fresh one.
        this.#end();
        throw error;
      })
    );
    this.#turn = result.catch(() => {});
    return result;
  }

  async #read(offset: number, size: number, run: StepRunner): Promise<Uint8Array> {
    if (this.#stream === undefined || offset !== this.#position) this.#restart(offset);
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < size) {
      if (this.#pending.length === 0) {
        if (this.#ended) break;
        const next = await run(() => this.#stream!.next());
        if (next.done) {
          this.#ended = true;
          break;
        }
        this.#pending = next.value;
      }
      const take = this.#pending.subarray(0, size - have);
      parts.push(take);
      have += take.length;
      this.#pending = this.#pending.subarray(take.length);
    }
    this.#position = offset + have;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Ends the stream (on release). */
  async close(): Promise<void> {
    await this.#turn;
    this.#end();
  }

  #end(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    // Not awaited: a generator still waiting on an unreachable Riak would hold the caller
    // (release, or the next read) until that request times out.
    stream?.return?.().catch(() => {});
  }

  #restart(offset: number): void {
    this.#end();
    this.#stream = this.#open(offset);
    this.#position = offset;
    this.#pending = new Uint8Array(0);
    this.#ended = false;
  }
}
