/**
 * Copy-on-read: once an application has read a whole local file, a background copy into
 * Riak is queued, so a migration advances with the traffic. The read itself never waits:
 * `enqueue` is synchronous, a full queue skips the file (the pre-warm job catches it later),
 * the same path is never queued twice, and the bytes being copied at once are bounded. A
 * copy that failed because Riak was unreachable is queued again once Riak is back.
 *
 * @module
 */
import { DEFAULT_COPY_CONCURRENCY } from "./defaults.ts";
import { isOutageError } from "./health.ts";
import { SILENT_LOGGER } from "./log.ts";
import type { Logger } from "./log.ts";
import type { MountMetrics } from "./metrics.ts";
import { isAtOrBelow, parentOf } from "./node_table.ts";
import { PathTree } from "./path_tree.ts";

/** Reads recorded somewhere: where the bytes read from `offset` on without a gap end. */
export interface ReadRecord {
  readFrom(offset: number): number;
}

/**
 * The byte ranges one open handle has read, to tell when it has read the whole file.
 *
 * @example
 * ```ts
 * const coverage = new ReadCoverage();
 * coverage.add(0, 4096);
 * coverage.add(4096, 100);
 * coverage.covers(4196); // true
 * ```
 */
export class ReadCoverage {
  /** Disjoint, sorted [start, end) ranges. */
  #ranges: [number, number][] = [];

  /** Records that `length` bytes were read at `offset`. */
  add(offset: number, length: number): void {
    if (length <= 0) return;
    let start = offset;
    let end = offset + length;
    const kept: [number, number][] = [];
    let placed = false;
    for (const range of this.#ranges) {
      if (range[1] < start) kept.push(range);
      else if (range[0] > end) {
        if (!placed) {
          kept.push([start, end]);
          placed = true;
        }
        kept.push(range);
      } else {
        start = Math.min(start, range[0]);
        end = Math.max(end, range[1]);
      }
    }
    if (!placed) kept.push([start, end]);
    this.#ranges = kept;
  }

  /**
   * Whether every byte of a file of `size` bytes was read, here or in `also` (reads recorded
   * elsewhere, e.g. the FUSE reader threads' `ReadBlocks`). An empty file counts once read.
   * Stops at the first byte neither holds: no work for every range of a file read randomly.
   */
  covers(size: number, also?: ReadRecord): boolean {
    let reached = 0;
    while (reached < size) {
      const next = Math.max(this.readFrom(reached), also?.readFrom(reached) ?? reached);
      if (next <= reached) return false;
      reached = next;
    }
    return true;
  }

  /** Where the bytes read from `offset` on without a gap end (`offset` when it was not read). */
  readFrom(offset: number): number {
    for (const [start, end] of this.#ranges) {
      if (start > offset) break;
      if (end > offset) return end;
    }
    return offset;
  }

  /** Bytes read at least once. */
  get bytes(): number {
    return this.#ranges.reduce((sum, [start, end]) => sum + end - start, 0);
  }
}

/** What a queued copy is asked to do beyond copying. */
export interface CopyKind {
  /**
   * The read was served from Riak's copy: the local copy is only deleted where it holds
   * Riak's bytes (verified), and nothing is uploaded, so a read never changes Riak's copy.
   */
  freeOnly?: boolean;
}

/** Copies one local file into Riak. */
export type FileCopier = (path: string, signal: AbortSignal, kind: CopyKind) => Promise<void>;

/** Default longest queue; further files are skipped (the pre-warm job catches them). */
export const DEFAULT_COPY_QUEUE_LIMIT = 10_000;
/** Default bound on the bytes of the files being copied at once. */
export const DEFAULT_COPY_ACTIVE_BYTES = 64 * 1024 * 1024;

/** Options of a {@link CopyOnReadQueue}. */
export interface CopyOnReadOptions {
  copy: FileCopier;
  concurrency?: number;
  queueLimit?: number;
  /** Files start only while the bytes of running copies stay below this (one always may). */
  activeBytesLimit?: number;
  metrics?: MountMetrics;
  logger?: Logger;
}

interface CopyJob extends CopyKind {
  path: string;
  size: number;
}

/** A copy that is running, and how to call it off. */
interface RunningCopy {
  job: CopyJob;
  abort: AbortController;
  ended: Promise<void>;
}

/** The holds of {@link CopyOnReadQueue.pause} at one path, and the copies they keep back. */
interface Pause {
  holds: number;
  /** Path -> job: queued again once the last of the holds is released. */
  kept: Map<string, CopyJob>;
}

/** Why a running copy is aborted by {@link CopyOnReadQueue.withdraw}: routine, not a failure. */
const WITHDRAWN = new Error("copy-on-read withdrawn: the path changed");

/**
 * The background copy queue.
 *
 * @example
 * ```ts
 * const queue = new CopyOnReadQueue({ copy: (path) => copyToRiak(path) });
 * queue.enqueue("/photos/a.jpg", 52_000); // returns at once
 * await queue.idle();
 * ```
 */
export class CopyOnReadQueue {
  readonly #options: CopyOnReadOptions;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #queueLimit: number;
  readonly #activeBytesLimit: number;
  /** Copies waiting to start, by path, oldest first. */
  readonly #queue = new Map<string, CopyJob>();
  /**
   * Paths queued or running, indexed by directory: every drain listing asks for the names in
   * its directory, which then cost what that directory holds, not the whole queue.
   */
  readonly #known = new PathTree();
  readonly #running = new Map<string, RunningCopy>();
  /** Copies that failed for an outage, by path, for {@link retryAfterOutage}. */
  readonly #failedInOutage = new Map<string, CopyJob>();
  /**
   * The paths of {@link #failedInOutage}, indexed as {@link #known} is: a withdrawal (every
   * rename, removal and change of attributes) looks at what its path holds, not at them all.
   */
  readonly #failedPaths = new PathTree();
  /**
   * Paths held by {@link hold} or {@link pause} (how many times): no copy at or below them is
   * queued.
   */
  readonly #held = new Map<string, number>();
  /** Of those holds, the ones of {@link pause}, by path. */
  readonly #paused = new Map<string, Pause>();
  /** The names collected by each {@link watchNamesIn} under way, by directory. */
  readonly #watches = new Map<string, Set<Set<string>>>();
  #activeBytes = 0;
  #stopped = false;
  #idle: (() => void)[] = [];

  constructor(options: CopyOnReadOptions) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#concurrency = options.concurrency ?? DEFAULT_COPY_CONCURRENCY;
    this.#queueLimit = options.queueLimit ?? DEFAULT_COPY_QUEUE_LIMIT;
    this.#activeBytesLimit = options.activeBytesLimit ?? DEFAULT_COPY_ACTIVE_BYTES;
    options.metrics?.onSnapshot(() => {
      const value = options.metrics!.value.copyOnRead;
      value.queued = this.#queue.size;
      value.active = this.#running.size;
    });
  }

  /** Files queued or being copied. */
  get depth(): number {
    return this.#queue.size + this.#running.size;
  }

  /**
   * Queues a copy of `path` (`size` bytes, of `kind`) unless it is already queued or running,
   * the queue is full, or the queue stopped. Never waits. Returns whether it was queued.
   */
  enqueue(path: string, size: number, kind: CopyKind = {}): boolean {
    const metrics = this.#options.metrics?.value.copyOnRead;
    if (this.#stopped || this.#known.has(path) || this.#queue.size >= this.#queueLimit) {
      if (metrics) metrics.skipped++;
      return false;
    }
    const holder = this.#holder(path);
    if (holder === "held") {
      if (metrics) metrics.withdrawn++;
      return false;
    }
    const job = { ...kind, path, size };
    if (holder !== undefined) {
      holder.kept.set(path, job);
      return false;
    }
    this.#known.add(path);
    this.#queue.set(path, job);
    const parent = parentOf(path);
    for (const names of this.#watches.get(parent) ?? []) {
      names.add(path.slice(parent === "/" ? 1 : parent.length + 1));
    }
    // Start copies on a later turn so the read that triggered this returns first.
    setImmediate(() => this.#pump());
    return true;
  }

  /**
   * Queues again the copies that failed because Riak was unreachable (call it when Riak
   * answers again): files read during an outage reach Riak without another full read.
   */
  retryAfterOutage(): void {
    const failed = [...this.#failedInOutage];
    this.#failedInOutage.clear();
    for (const [path] of failed) this.#failedPaths.delete(path);
    for (const [path, job] of failed) this.enqueue(path, job.size, job);
  }

  /**
   * Names directly inside directory `path` whose copy is queued or running (for listings: a
   * copy that deletes the local copy moves the file from the source to Riak meanwhile).
   */
  namesIn(path: string): string[] {
    return this.#known.namesIn(path);
  }

  /**
   * Collects the names directly inside directory `path` whose copy is queued from now until
   * `end()`. A listing takes {@link namesIn} as it begins, but the kernel sends the RELEASE
   * that queues a copy without waiting for its answer (`cat a; ls`): a copy queued later may
   * land in Riak after Riak's listing was read, and remove the local copy before the source's
   * directory is, so the file is on neither side.
   */
  watchNamesIn(path: string): { names: ReadonlySet<string>; end(): void } {
    const directory = path !== "/" && path.endsWith("/") ? path.slice(0, -1) : path;
    const names = new Set<string>();
    const watches = this.#watches.get(directory) ?? new Set();
    watches.add(names);
    this.#watches.set(directory, watches);
    return {
      names,
      end: () => {
        if (watches.delete(names) && watches.size === 0) this.#watches.delete(directory);
      },
    };
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Calls off the copies of `path` and of everything below it (of `path` alone with
   * `below: false`): queued ones are dropped, running ones aborted. Resolves once none of
   * them runs any more, so that what Riak is told next about the path (its removal, a
   * rename, a newer version) is not undone by an older copy landing after it.
   */
  async withdraw(path: string, { below = true }: { below?: boolean } = {}): Promise<void> {
    await this.#withdraw(path, below);
  }

  /** {@link withdraw}; the copies called off go into `kept` (path -> job), when given. */
  async #withdraw(path: string, below: boolean, kept?: Map<string, CopyJob>): Promise<void> {
    if (this.#known.size === 0 && this.#failedInOutage.size === 0) return;
    const metrics = this.#options.metrics?.value.copyOnRead;
    // Looked up in the indexes: the cost is what `path` holds, not the whole queue.
    const affected = (paths: PathTree) =>
      below ? paths.allAtOrBelow(path) : paths.has(path) ? [path] : [];
    for (const failed of affected(this.#failedPaths)) {
      kept?.set(failed, this.#failedInOutage.get(failed)!);
      this.#failedInOutage.delete(failed);
      this.#failedPaths.delete(failed);
    }
    const ended: Promise<void>[] = [];
    for (const at of affected(this.#known)) {
      const queued = this.#queue.get(at);
      if (queued) {
        this.#queue.delete(at);
        this.#known.delete(at);
        kept?.set(at, queued);
        if (metrics) metrics.withdrawn++;
        continue;
      }
      const copy = this.#running.get(at);
      if (copy === undefined) continue;
      if (!copy.abort.signal.aborted && metrics) metrics.withdrawn++;
      copy.abort.abort(WITHDRAWN);
      kept?.set(at, copy.job);
      ended.push(copy.ended);
    }
    await Promise.all(ended);
  }

  /**
   * Resolves once the copies below `path` running now ended (none is called off): a copy
   * making `path` in Riak may have read its attributes before they changed.
   */
  async runningBelow(path: string): Promise<void> {
    const ended = [...this.#running].filter(([at]) => at !== path && isAtOrBelow(at, path))
      .map(([, copy]) => copy.ended);
    await Promise.allSettled(ended);
  }

  /**
   * {@link withdraw}, and no copy at or below `path` is queued until the returned function
   * is called: a read that completes while the path changes in Riak (a removal, a rename)
   * cannot bring the old name back. The hold starts at once, before this resolves.
   */
  hold(path: string): Promise<() => void> {
    return this.#hold(path, undefined);
  }

  /**
   * {@link hold}, for a change that leaves the file where it is (its attributes): the copies
   * it calls off, and those of reads that complete meanwhile, are queued again once it is
   * released (unless a {@link hold} still keeps them off), so the copy is made after the
   * change, with it. Called off for good, the file read stayed out of Riak (drain: its local
   * copy stayed) until the pre-warm job came to it.
   */
  pause(path: string): Promise<() => void> {
    const pause = this.#paused.get(path) ?? { holds: 0, kept: new Map<string, CopyJob>() };
    pause.holds++;
    this.#paused.set(path, pause);
    return this.#hold(path, pause);
  }

  async #hold(path: string, pause: Pause | undefined): Promise<() => void> {
    this.#held.set(path, (this.#held.get(path) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const holds = this.#held.get(path)! - 1;
      if (holds === 0) this.#held.delete(path);
      else this.#held.set(path, holds);
      if (pause && --pause.holds === 0) {
        this.#paused.delete(path);
        for (const [kept, job] of pause.kept) this.enqueue(kept, job.size, job);
      }
    };
    try {
      await this.#withdraw(path, true, pause?.kept);
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  /**
   * What keeps a copy of `path` from being queued: a {@link hold} ("held"), else a
   * {@link pause} (the one that queues it later), else nothing.
   */
  #holder(path: string): "held" | Pause | undefined {
    if (this.#held.size === 0) return undefined;
    let paused: Pause | undefined;
    for (const [held, holds] of this.#held) {
      if (!isAtOrBelow(path, held)) continue;
      const pause = this.#paused.get(held);
      if (holds > (pause?.holds ?? 0)) return "held";
      paused = pause;
    }
    return paused;
  }

  /** Drops what is queued, aborts running copies and waits for them to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const path of this.#failedInOutage.keys()) this.#failedPaths.delete(path);
    this.#failedInOutage.clear();
    for (const path of this.#queue.keys()) this.#known.delete(path);
    this.#queue.clear();
    for (const copy of this.#running.values()) copy.abort.abort();
    await this.idle();
  }

  #pump(): void {
    while (!this.#stopped && this.#running.size < this.#concurrency && this.#queue.size > 0) {
      const next: CopyJob = this.#queue.values().next().value!;
      if (this.#running.size > 0 && this.#activeBytes + next.size > this.#activeBytesLimit) break;
      this.#queue.delete(next.path);
      this.#activeBytes += next.size;
      const abort = new AbortController();
      const ended = this.#run(next, abort.signal).finally(() => {
        this.#running.delete(next.path);
        this.#activeBytes -= next.size;
        this.#known.delete(next.path);
        this.#pump();
        if (this.depth === 0) {
          const idle = this.#idle;
          this.#idle = [];
          for (const resolve of idle) resolve();
        }
      });
      this.#running.set(next.path, { job: next, abort, ended });
    }
  }

  async #run(job: CopyJob, signal: AbortSignal): Promise<void> {
    const metrics = this.#options.metrics?.value.copyOnRead;
    try {
      await this.#options.copy(job.path, signal, { freeOnly: job.freeOnly });
      if (metrics) metrics.copied++;
    } catch (error) {
      if (signal.reason === WITHDRAWN) return; // Counted when withdrawn.
      if (metrics) metrics.failed++;
      // Riak away: tried again when it is back. Otherwise the next full read or the pre-warm.
      if (
        isOutageError(error) && !this.#stopped && this.#failedInOutage.size < this.#queueLimit
      ) {
        this.#failedInOutage.set(job.path, job);
        this.#failedPaths.add(job.path);
      }
      this.#logger.debug("copy-on-read failed", {
        path: job.path,
        error: (error as Error).message,
      });
    }
  }
}
