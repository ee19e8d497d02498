/**
 * Whether Riak is reachable, as seen by the requests the mount makes. The first failure of
 * an outage logs one warning and the first success after it logs one recovery line with how
 * many requests failed in between: an outage is logged once, not once per request. A node
 * that answers with an error (a full disk, too few vnodes up) is no outage: Riak is reachable
 * and says no, logged at most once a minute with a count. Requests
 * that need Riak run under a deadline so a dead cluster answers EIO instead of hanging the
 * application.
 *
 * @module
 */
import { riakAnswerOf } from "../riak/mod.ts";
import { RiakRequestError, StoreError } from "../store/errors.ts";
import type { Logger } from "./log.ts";

/** A refusal by Riak is logged at most once in this long (ms), with how many there were. */
const REFUSALS_LOGGED_EVERY_MS = 60_000;

/** Riak did not answer within the deadline; maps to EIO. */
export class RiakTimeoutError extends StoreError {
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number;

  constructor(operation: string, timeoutMs: number) {
    super("EIO", `Riak ${operation} did not answer within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Riak was not asked: an outage is under way, and until a probe finds Riak answering again
 * every request would only wait out its deadline (maps to EIO, as a timeout does).
 */
export class RiakUnreachableError extends StoreError {
  constructor(operation: string, downSinceMs: number) {
    super(
      "EIO",
      `Riak ${operation}: not asked, Riak unreachable since ${new Date(downSinceMs).toISOString()}`,
    );
  }
}

/** How often Riak is asked whether it answers again while an outage lasts (ms). */
export const OUTAGE_PROBE_INTERVAL_MS = 1_000;

/**
 * Whether an error means Riak (or the way to it) is down, as opposed to an answer such as
 * "not found" or a checksum mismatch.
 */
export function isOutageError(error: unknown): boolean {
  if (
    error instanceof RiakTimeoutError || error instanceof RiakRequestError ||
    error instanceof RiakUnreachableError
  ) return true;
  if (error instanceof StoreError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" &&
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]
      .includes(code);
}

/** A snapshot of the tracker for status output. */
export interface HealthSnapshot {
  reachable: boolean;
  /** When the current outage began (ms since the epoch), if Riak is down. */
  downSince?: number;
  /** The error that began the current outage. */
  lastError?: string;
  /** Outages seen since the mount started. */
  outages: number;
  /**
   * Requests Riak answered with an error since the mount started (a full disk, too few
   * vnodes: reachable, but refusing), and the last one's error and time (ms since the epoch).
   */
  refused?: { count: number; lastAt: number; lastError: string };
}

/**
 * Tracks Riak's reachability from request outcomes.
 *
 * @example
 * ```ts
 * const health = new RiakHealth(logger);
 * const meta = await health.run("stat /a", 5_000, () => store.stat("/a"));
 * ```
 */
export class RiakHealth {
  readonly #logger: Logger;
  readonly #now: () => number;
  #downSince: number | undefined;
  #lastError: string | undefined;
  #failedDuringOutage = 0;
  #outages = 0;
  readonly #reachableAgain: (() => void)[] = [];
  readonly #unreachable: (() => void)[] = [];
  readonly #confirm: ((timeoutMs?: number) => Promise<boolean>) | undefined;
  #confirming = false;
  readonly #overWithinMs: number | undefined;
  /** Whether Riak is being asked if a request's timeout means an outage. */
  #doubting = false;
  /** Refusals since the last one logged, and when that was. */
  #refusalsUnlogged = 0;
  #refusalLoggedAt: number | undefined;
  #refused: HealthSnapshot["refused"];

  readonly #probeIntervalMs: number;
  #probe: ReturnType<typeof setTimeout> | undefined;
  /**
   * Requests of {@link run} waiting on Riak under a plain deadline, each given up on with this
   * once an outage is declared (when Riak is down since then).
   */
  readonly #waiting = new Set<(downSince: number) => void>();

  /**
   * `confirm`, when given, asks Riak itself whether it answers before an outage is declared
   * over: a request that ended well without reaching Riak (nothing left to copy, a local file
   * gone) is no sign of it. With it, an outage is also probed every `probeIntervalMs`, and
   * {@link run} meanwhile fails at once instead of waiting out each deadline: a hung node
   * made every lookup of a local file wait for Riak first, one deadline per request.
   * `confirm(timeoutMs)` waits its own default (the ping timeout) to tell whether an outage
   * begins, but `overWithinMs` (Riak's request deadline) to tell whether one is over: a busy
   * node that answers pings in more than the ping timeout (an outage declared as the mount
   * started, say) would otherwise keep the outage going for good, while its requests, served
   * within their deadline, would be answered.
   */
  constructor(
    logger: Logger,
    now: () => number = Date.now,
    confirm?: (timeoutMs?: number) => Promise<boolean>,
    options: { probeIntervalMs?: number; overWithinMs?: number } = {},
  ) {
    this.#logger = logger;
    this.#now = now;
    this.#confirm = confirm;
    this.#probeIntervalMs = options.probeIntervalMs ?? OUTAGE_PROBE_INTERVAL_MS;
    this.#overWithinMs = options.overWithinMs;
  }

  /** Stops probing (the mount is going away). */
  close(): void {
    clearTimeout(this.#probe);
    this.#probe = undefined;
  }

  /** Whether the last request that reached a verdict found Riak up. */
  get reachable(): boolean {
    return this.#downSince === undefined;
  }

  /** Calls `listener` each time an outage ends (say, to retry waiting uploads at once). */
  onReachableAgain(listener: () => void): void {
    this.#reachableAgain.push(listener);
  }

  /** Calls `listener` each time an outage is declared (say, to mark the uploads pending). */
  onUnreachable(listener: () => void): void {
    this.#unreachable.push(listener);
  }

  /** Records a request Riak answered. Logs the end of an outage once (once confirmed). */
  succeeded(): void {
    if (this.#downSince === undefined) return;
    if (this.#confirm === undefined) return this.#over();
    this.#askRiak();
  }

  /** Asks Riak whether it answers (one question at a time); ends the outage if it does. */
  #askRiak(): void {
    if (this.#confirming || this.#confirm === undefined) return;
    this.#confirming = true;
    this.#confirm(this.#overWithinMs).catch(() => false).then((answers) => {
      this.#confirming = false;
      if (answers && this.#downSince !== undefined) this.#over();
    });
  }

  /** While an outage lasts, Riak is asked again every probe interval. */
  #probeLater(): void {
    if (this.#confirm === undefined || this.#probe !== undefined) return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      if (this.#downSince === undefined) return;
      this.#askRiak();
      this.#probeLater();
    }, this.#probeIntervalMs);
  }

  #over(): void {
    clearTimeout(this.#probe);
    this.#probe = undefined;
    const seconds = ((this.#now() - this.#downSince!) / 1000).toFixed(1);
    this.#logger.info("Riak reachable again", {
      outage_seconds: Number(seconds),
      failed_requests: this.#failedDuringOutage,
    });
    this.#downSince = undefined;
    this.#lastError = undefined;
    this.#failedDuringOutage = 0;
    for (const listener of this.#reachableAgain) listener();
  }

  /**
   * Records a failed request. Outage errors mark Riak down (logged once per outage); other
   * errors (not found, corrupt object) say Riak answered, so they count as success.
   */
  failed(error: unknown): void {
    if (!isOutageError(error)) {
      this.succeeded();
      return;
    }
    if (riakAnswerOf(error) === "error") {
      this.#refusal(error);
      this.succeeded();
      return;
    }
    if (this.#downSince !== undefined) {
      this.#failedDuringOutage++;
      return;
    }
    // A deadline passed: one node may hang while the others answer (before the client takes
    // it out of rotation). Riak is asked before the whole mount is declared cut off, which
    // would fail every request at once.
    if (error instanceof RiakTimeoutError && this.#confirm !== undefined) {
      if (this.#doubting) return;
      this.#doubting = true;
      this.#confirm().catch(() => false).then((answers) => {
        this.#doubting = false;
        if (!answers && this.#downSince === undefined) this.#declare(error);
      });
      return;
    }
    this.#declare(error);
  }

  /** Whether Riak answers now, as the confirmation asks it (true without one: none to ask). */
  async answers(): Promise<boolean> {
    if (this.#confirm === undefined) return true;
    return await this.#confirm().catch(() => false);
  }

  /**
   * Riak did not answer as the mount started ({@link answers}; `why`: each node's failure):
   * nothing else would say so
   * before a request waited out its whole deadline, and the first change of a name that the
   * outage's rules journal (a rename, a mkdir) would fail EIO instead. Declared now, the
   * outage is logged once and probed like any other.
   */
  unreachableAtStart(why?: string): void {
    if (this.#downSince !== undefined) return;
    // Why, node by node: "no node answered" alone hid a port that speaks another protocol,
    // a name that does not resolve, a node that holds the connection and says nothing.
    const reason = `no Riak node answered as the mount started${why ? ` (${why})` : ""}`;
    this.#declare(new Error(reason));
  }

  /** Riak is cut off: logged once, and probed until it answers again. */
  #declare(error: unknown): void {
    this.#failedDuringOutage++;
    this.#downSince = this.#now();
    this.#outages++;
    this.#lastError = error instanceof Error ? error.message : String(error);
    this.#logger.warn(
      "Riak unreachable: what needs Riak fails with EIO, local files are served, writes wait in the spool until it is back",
      { error: this.#lastError },
    );
    this.#probeLater();
    // As a request sent now fails at once: one sent a moment before (an open after the
    // lookup whose deadline began the outage) waited out its own deadline, twice the wait.
    if (this.#confirm !== undefined) {
      for (const giveUp of [...this.#waiting]) giveUp(this.#downSince);
    }
    for (const listener of this.#unreachable) listener();
  }

  #refusal(error: unknown): void {
    this.#refusalsUnlogged++;
    const now = this.#now();
    const message = error instanceof Error ? error.message : String(error);
    this.#refused = { count: (this.#refused?.count ?? 0) + 1, lastAt: now, lastError: message };
    const last = this.#refusalLoggedAt;
    if (last !== undefined && now - last < REFUSALS_LOGGED_EVERY_MS) return;
    this.#logger.warn("Riak answered a request with an error", {
      error: message,
      refused_requests: this.#refusalsUnlogged,
      ...(last === undefined ? {} : { since_seconds: Math.round((now - last) / 1000) }),
    });
    this.#refusalsUnlogged = 0;
    this.#refusalLoggedAt = now;
  }

  /**
   * Runs a Riak request under a deadline and records its outcome. A request still running
   * at the deadline rejects with {@link RiakTimeoutError}; its late result is ignored.
   *
   * With `progress` (a count that grows each time Riak acknowledges part of the request),
   * the deadline is one of silence: it passes once a whole `timeoutMs` went by in which the
   * count did not grow. A wait for uploads takes as long as they do (a backlog of them, a
   * large file), which over a network is often longer than one request's deadline, while
   * Riak answers all along.
   */
  async run<T>(
    operation: string,
    timeoutMs: number,
    request: () => Promise<T>,
    progress?: () => number,
  ): Promise<T> {
    if (this.#downSince !== undefined && this.#confirm !== undefined) {
      this.#failedDuringOutage++;
      throw new RiakUnreachableError(operation, this.#downSince);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let giveUp: ((downSince: number) => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // A wait for uploads is not given up on so: Riak may still be acknowledging them.
      if (progress === undefined) {
        giveUp = (downSince) => reject(new RiakUnreachableError(operation, downSince));
        this.#waiting.add(giveUp);
      }
      let seen = progress?.();
      const expire = () => {
        const now = progress?.();
        if (now === seen) return reject(new RiakTimeoutError(operation, timeoutMs));
        seen = now;
        timer = setTimeout(expire, timeoutMs);
      };
      timer = setTimeout(expire, timeoutMs);
    });
    const attempt = request();
    attempt.catch(() => {}); // A late rejection after the deadline is not unhandled.
    try {
      const result = await Promise.race([attempt, deadline]);
      this.succeeded();
      return result;
    } catch (error) {
      this.failed(error);
      throw error;
    } finally {
      clearTimeout(timer);
      if (giveUp) this.#waiting.delete(giveUp);
    }
  }

  /**
   * Records the outcome of a request that has no deadline of its own (an upload, whose
   * duration grows with the file), passing its result or error through.
   */
  async observe<T>(request: Promise<T>): Promise<T> {
    try {
      const result = await request;
      this.succeeded();
      return result;
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  /** The state for `riakfs status`. */
  snapshot(): HealthSnapshot {
    return {
      reachable: this.reachable,
      downSince: this.#downSince,
      lastError: this.#lastError,
      outages: this.#outages,
      refused: this.#refused,
    };
  }
}
