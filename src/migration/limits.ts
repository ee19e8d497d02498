/**
 * The limits of one run: `--time-budget`, `--max-files`, an interruption (SIGINT or SIGTERM
 * through an AbortSignal), and a Riak that no longer answers. Once one is reached no new file
 * is started; files in flight finish, and the run ends as "partial".
 *
 * @module
 */
import { noNodeAnswered } from "../riak/errors.ts";

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

/**
 * Entries failing in a row because no Riak node answered, for at least
 * {@link UNREACHABLE_MS_TO_STOP}, after which a run stops as a budget stops it: each costs the
 * client's timeouts and retries, so a tree of a million files would otherwise take hours to
 * fail, file by file.
 */
export const UNREACHABLE_FAILURES_TO_STOP = 50;
/**
 * How long, at least, entries must keep failing with no node answering before the run stops: a
 * node restarting is a blip the end-of-run retry covers.
 */
export const UNREACHABLE_MS_TO_STOP = 30_000;

/** Tracks the budget of a run. */
export class RunLimits {
  readonly #deadline: number | undefined;
  readonly #maxFiles: number | undefined;
  readonly #now: () => number;
  readonly #signal: AbortSignal | undefined;
  readonly #unreachableStopMs: number;
  #started = 0;
  #stopped: StopReason | undefined;
  /** Entries that failed in a row with no Riak node answering, since when. */
  #unanswered = 0;
  #unansweredSince = 0;

  /**
   * `budgetMs`/`maxFiles` undefined = no limit; `unreachableStopMs` defaults to
   * {@link UNREACHABLE_MS_TO_STOP}; `now` is injectable for tests.
   */
  constructor(
    options: {
      budgetMs?: number;
      maxFiles?: number;
      signal?: AbortSignal;
      unreachableStopMs?: number;
    },
    now: () => number = Date.now,
  ) {
    this.#now = now;
    this.#signal = options.signal;
    this.#deadline = options.budgetMs === undefined ? undefined : now() + options.budgetMs;
    this.#maxFiles = options.maxFiles;
    this.#unreachableStopMs = options.unreachableStopMs ?? UNREACHABLE_MS_TO_STOP;
  }

  /**
   * Counts an entry (file, symlink, directory) that failed. Failures for which no Riak node
   * answered ({@link noNodeAnswered}) make a streak; once it is
   * {@link UNREACHABLE_FAILURES_TO_STOP} long and has lasted the time given, the run stops
   * with "riak-unreachable": the rest of the tree would only fail the same way. Any other
   * failure (Riak answering with an error, a local error) ends the streak.
   */
  entryFailed(error: unknown): void {
    if (!noNodeAnswered(error)) {
      this.#unanswered = 0;
      return;
    }
    if (this.#unanswered++ === 0) this.#unansweredSince = this.#now();
    if (
      this.#unanswered >= UNREACHABLE_FAILURES_TO_STOP &&
      this.#now() - this.#unansweredSince >= this.#unreachableStopMs
    ) this.stop("riak-unreachable");
  }

  /**
   * True while the entries that finished last failed with no Riak node answering (a streak,
   * however short): what failed so is still to do, and a pass that reached the end of the tree
   * so is not complete.
   */
  riakAway(): boolean {
    return this.#unanswered > 0;
  }

  /** An entry (file, symlink, directory) is in Riak: a node answers, the streak ends. */
  entryDone(): void {
    this.#unanswered = 0;
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
