/**
 * Directory modification times of Riak-backed directories. Creating, removing or renaming
 * an entry moves its directory's mtime, as on a local disk; writing that to the directory's
 * attributes object in Riak on every such change would add a read and a write to each one.
 * The change is shown at once from memory instead, and written once per directory within
 * a short delay, however many entries changed meanwhile.
 *
 * @module
 */

/** Default time changes to one directory's entries are gathered before its mtime is written. */
export const DEFAULT_DIRECTORY_TIME_DELAY_MS = 1_000;

/** What {@link DirectoryTimes} needs. */
export interface DirectoryTimesOptions {
  /** Writes `mtimeNs` as the mtime of the directory at `path`; its failures are ignored here. */
  write: (path: string, mtimeNs: bigint) => Promise<void>;
  /** How long changes are gathered before a write ({@link DEFAULT_DIRECTORY_TIME_DELAY_MS}). */
  delayMs?: number;
}

interface Pending {
  /** The newest change's time. */
  mtimeNs: bigint;
  /** The write scheduled after the delay, not started yet. */
  timer?: ReturnType<typeof setTimeout>;
  /** Whether a write is queued on `writes` that has not read `mtimeNs` yet. */
  queued: boolean;
  /** The time the running write carries. */
  writing?: bigint;
  /** This directory's writes, one after the other. */
  writes: Promise<void>;
  /** Set by {@link DirectoryTimes.forget}: writes not begun are not made. */
  forgotten?: boolean;
}

/**
 * Directory mtimes changed here and not yet written to Riak. A write failed (Riak away, the
 * directory gone meanwhile) leaves the directory at what Riak holds; the change it carried is
 * lost, as it is when the mount is killed within the delay. Nothing but the mtime is.
 */
export class DirectoryTimes {
  readonly #write: DirectoryTimesOptions["write"];
  readonly #delayMs: number;
  readonly #pending = new Map<string, Pending>();

  constructor(options: DirectoryTimesOptions) {
    this.#write = options.write;
    this.#delayMs = options.delayMs ?? DEFAULT_DIRECTORY_TIME_DELAY_MS;
  }

  /** Directories with a change not written yet. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Records that the entries of the directory at `path` changed at `mtimeNs`. */
  changed(path: string, mtimeNs: bigint): void {
    let pending = this.#pending.get(path);
    if (pending === undefined) {
      pending = { mtimeNs, queued: false, writes: Promise.resolve() };
      this.#pending.set(path, pending);
    } else if (mtimeNs > pending.mtimeNs) {
      pending.mtimeNs = mtimeNs;
    }
    const carried = pending.queued || pending.timer !== undefined ||
      pending.writing === pending.mtimeNs;
    if (!carried) {
      const scheduled = pending;
      scheduled.timer = setTimeout(() => void this.#queue(path, scheduled), this.#delayMs);
    }
  }

  /** The mtime the directory at `path` has here and may not have in Riak yet. */
  mtimeOf(path: string): bigint | undefined {
    return this.#pending.get(path)?.mtimeNs;
  }

  /**
   * Writes the change of the directory at `path` now, and resolves once it was written or
   * failed: its removal or an explicit change of its attributes goes after it, never under a
   * late write. One lookup: every setattr asks.
   */
  async settled(path: string): Promise<void> {
    const pending = this.#pending.get(path);
    if (pending !== undefined) await this.#queue(path, pending);
  }

  /**
   * Drops the change of the directory at `path` unwritten, as it goes away (removed, or
   * replaced by a rename), and resolves once no write of it runs.
   */
  async forget(path: string): Promise<void> {
    const pending = this.#pending.get(path);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    pending.timer = undefined;
    pending.forgotten = true;
    this.#pending.delete(path);
    await pending.writes;
  }

  /** {@link settled} for the directories at or below `path` (`/`: all), as a rename moves them. */
  async settledBelow(path: string): Promise<void> {
    if (this.#pending.size === 0) return;
    const below = path === "/" ? "/" : `${path}/`;
    const writes = [...this.#pending].filter(([at]) => at === path || at.startsWith(below))
      .map(([at, pending]) => this.#queue(at, pending));
    await Promise.all(writes);
  }

  /** Queues a write of `pending`'s newest time, unless a write queued or running carries it. */
  #queue(path: string, pending: Pending): Promise<void> {
    clearTimeout(pending.timer);
    pending.timer = undefined;
    if (pending.queued || pending.writing === pending.mtimeNs) return pending.writes;
    pending.queued = true;
    pending.writes = pending.writes.then(async () => {
      pending.queued = false;
      if (pending.forgotten) return;
      const mtimeNs = pending.writing = pending.mtimeNs;
      await this.#write(path, mtimeNs).catch(() => {});
      pending.writing = undefined;
      // Changed again meanwhile: the timer then set writes that change.
      if (
        pending.mtimeNs === mtimeNs && !pending.queued && pending.timer === undefined &&
        this.#pending.get(path) === pending
      ) {
        this.#pending.delete(path);
      }
    });
    return pending.writes;
  }
}
