/**
 * Telling the operator that a disk of the mount is full, once a minute rather than once per
 * refused request: an application writing on the disk that filled up gets ENOSPC for each
 * write, and a line for each would flood the log the operator reads to find out why.
 *
 * @module
 */
import { Errno, type ReaderCounts } from "../fuse/filesystem.ts";
import type { Logger } from "./log.ts";

/** At most one line this often (ms), with the count of refusals since the last one. */
export const NO_ROOM_REPORT_MS = 60_000;

/** How often the reader threads' refusals are looked at (ms). */
const READERS_LOOKED_AT_MS = 1_000;

/**
 * Counts requests refused for lack of room (ENOSPC, EDQUOT) and logs the first of each
 * minute, with how many there were since the last line. Writes the FUSE reader threads
 * answer themselves (on local files) are counted from their counters, looked at every second.
 *
 * @example
 * ```ts
 * const report = new NoRoomReport(logger);
 * report.refused("write", "ENOSPC: no space left on device, write");
 * ```
 */
export class NoRoomReport {
  readonly #logger: Logger;
  readonly #now: () => number;
  #refusals = 0;
  #reportedAt = -Infinity;
  #readersWatch: ReturnType<typeof setInterval> | undefined;
  #lookAtReaders: (() => void) | undefined;

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#logger = logger;
    this.#now = now;
  }

  /** Counts `count` refusals, the last one of `operation` failing with `error`. */
  refused(operation: string, error: string, count = 1): void {
    this.#refusals += count;
    const now = this.#now();
    if (now - this.#reportedAt < NO_ROOM_REPORT_MS) return;
    this.#reportedAt = now;
    this.#logger.warn(
      "a disk of the mount is full: what needs room on it answers ENOSPC until there is some",
      { operation, error, refused: this.#refusals },
    );
    this.#refusals = 0;
  }

  /**
   * Follows the refusals the reader threads answered (`counts`, cumulative), until
   * {@link close}.
   */
  watchReaders(counts: () => ReaderCounts): void {
    this.close();
    let seen = 0;
    this.#lookAtReaders = () => {
      const { errnos } = counts();
      const refusals = (errnos.get(Errno.ENOSPC) ?? 0) + (errnos.get(Errno.EDQUOT) ?? 0);
      if (refusals > seen) {
        this.refused("write", "ENOSPC (answered by a reader thread)", refusals - seen);
      }
      seen = refusals;
    };
    this.#readersWatch = setInterval(this.#lookAtReaders, READERS_LOOKED_AT_MS);
    (this.#readersWatch as { unref?: () => void }).unref?.();
  }

  /** Stops following the reader threads, once it counted their last refusals. */
  close(): void {
    clearInterval(this.#readersWatch);
    this.#readersWatch = undefined;
    this.#lookAtReaders?.();
    this.#lookAtReaders = undefined;
  }
}
