/**
 * A byte-rate limiter for `--max-rate`: a token bucket shared by every upload of a run,
 * so the total rate stays under the limit whatever the concurrency.
 *
 * @module
 */

/** Clock and sleep, injectable so tests need no real time. */
export interface Timer {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Real time. */
export const REAL_TIMER: Timer = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Lets at most `bytesPerSecond` through on average, with bursts of up to one second's
 * worth. A request larger than the burst is let through once the bucket is full and
 * leaves it in debt, so large reads never deadlock.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter(50 * 1024 * 1024);
 * await limiter.take(chunk.length); // before sending the chunk
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #timer: Timer;
  #tokens: number;
  #updated: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number, timer: Timer = REAL_TIMER) {
    if (!(bytesPerSecond > 0)) throw new RangeError("the rate must be positive");
    this.#rate = bytesPerSecond;
    this.#timer = timer;
    this.#tokens = bytesPerSecond;
    this.#updated = timer.now();
  }

  /** Waits until `bytes` may pass. Callers are served in order. */
  take(bytes: number): Promise<void> {
    const turn = this.#queue.then(() => this.#wait(bytes));
    this.#queue = turn;
    return turn;
  }

  async #wait(bytes: number): Promise<void> {
    const need = Math.min(bytes, this.#rate);
    for (;;) {
      this.#refill();
      if (this.#tokens >= need) {
        this.#tokens -= bytes;
        return;
      }
      await this.#timer.sleep(Math.ceil(((need - this.#tokens) / this.#rate) * 1000));
    }
  }

  #refill(): void {
    const now = this.#timer.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#updated) / 1000) * this.#rate);
    this.#updated = now;
  }
}

/** A limiter that never waits (no `--max-rate`). */
export const UNLIMITED = { take: (_bytes: number): Promise<void> => Promise.resolve() };

/** What uploads call before moving bytes. */
export type ByteGate = Pick<RateLimiter, "take">;
