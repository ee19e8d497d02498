/**
 * The limits of one run: `--time-budget`, `--max-files`, and an interruption (SIGINT or
 * SIGTERM through an AbortSignal). Once one is reached no new file is started; files in
 * flight finish, and the run ends as "partial".
 *
 * @module
 */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as `2h`, `90m`, `1h30m`, `45s` or `1.5h`; a bare number is
 * seconds. Throws RangeError on anything else.
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * ```
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed) && Math.round(Number(trimmed) * 1000) > 0) {
    return Math.round(Number(trimmed) * 1000);
  }
  const part = /(\d+(?:\.\d+)?)([smhd])/gy;
  let total = 0;
  let matched = 0;
  for (let m = part.exec(trimmed); m; m = part.exec(trimmed)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = part.lastIndex;
  }
  if (trimmed.length === 0 || matched !== trimmed.length || !(Math.round(total) > 0)) {
    throw new RangeError(
      `not a duration: ${JSON.stringify(text)} (use e.g. 2h, 90m, 1h30m, 45s)`,
    );
  }
  return Math.round(total);
}

/**
 * Why a run stopped before the end of the tree. `riak-unreachable`: files kept failing because
 * no Riak node answered, and the rest of the tree would only fail the same way.
 */
export type StopReason = "time-budget" | "max-files" | "interrupted" | "riak-unreachable";

/** Tracks the budget of a run. */
export class RunLimits {
  readonly #deadline: number | undefined;
  readonly #maxFiles: number | undefined;
  readonly #now: () => number;
  readonly #signal: AbortSignal | undefined;
  #started = 0;
  #stopped: StopReason | undefined;

  /** `budgetMs`/`maxFiles` undefined = no limit; `now` is injectable for tests. */
  constructor(
    options: { budgetMs?: number; maxFiles?: number; signal?: AbortSignal },
    now: () => number = Date.now,
  ) {
    this.#now = now;
    this.#signal = options.signal;
    this.#deadline = options.budgetMs === undefined ? undefined : now() + options.budgetMs;
    this.#maxFiles = options.maxFiles;
  }

  /** Counts a file about to be transferred; call only when {@link reached} is undefined. */
  startFile(): void {
    this.#started++;
  }

  /** Takes back a {@link startFile} whose transfer turned out not to be needed. */
  undoFile(): void {
    this.#started--;
  }

  /** Files counted by {@link startFile}. */
  get filesStarted(): number {
    return this.#started;
  }

  /** Ends the run for `reason`: no file starts from now on. */
  stop(reason: StopReason): void {
    this.#stopped ??= reason;
  }

  /** The limit that was reached, or undefined while the run may go on. */
  reached(): StopReason | undefined {
    if (this.#signal?.aborted) return "interrupted";
    if (this.#stopped) return this.#stopped;
    if (this.#maxFiles !== undefined && this.#started >= this.#maxFiles) return "max-files";
    if (this.#deadline !== undefined && this.#now() >= this.#deadline) return "time-budget";
    return undefined;
  }

  /** Milliseconds left of the time budget (Infinity without one). */
  remainingMs(): number {
    return this.#deadline === undefined ? Infinity : Math.max(0, this.#deadline - this.#now());
  }
}
