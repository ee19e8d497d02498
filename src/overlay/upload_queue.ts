/**
 * The upload queue: staged files and local paths to mirror go to Riak in the background
 * with bounded concurrency, in submission order per path, retrying with exponential backoff
 * while Riak is unreachable. A submission is journaled before `submit` resolves, so whatever
 * the caller acknowledged survives a crash; {@link UploadQueue.resume} re-queues the
 * journal's pending entries at start-up. A newer submission for a path that has not started
 * yet replaces the older one (the newer staged file holds the whole file; a mirror looks at
 * the local file when it runs, and only a removal stands in for an older removal).
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { DEFAULT_UPLOAD_CONCURRENCY } from "./defaults.ts";
import { isOutageError } from "./health.ts";
import type { Logger } from "./log.ts";
import { SILENT_LOGGER } from "./log.ts";
import {
  heldBefore,
  isMirror,
  type JournalEntry,
  type NewEntry,
  type NewMirror,
  type NewUpload,
  type PendingMirror,
  type PendingUpload,
  type RiakVersion,
  type UploadJournal,
} from "./journal.ts";
import type { MountMetrics } from "./metrics.ts";
import { parentOf } from "./node_table.ts";
import { PathTree } from "./path_tree.ts";
import { IndexedHeap } from "../util/indexed_heap.ts";
import { RACY_WINDOW_MS } from "../migration/local_file.ts";
import { NewToRiak } from "./new_to_riak.ts";
import type { Spool } from "./spool.ts";

/** How long stopping waits for uploads still running (ms); see {@link UploadQueue.stop}. */
export const STOP_GRACE_MS = 2_000;

/**
 * Puts one staged file into Riak; resolves once Riak acknowledged it with the configured w/dw.
 * Calls `progress` each time Riak acknowledged a part of it (a chunk of a large file).
 * `signal` is aborted when the upload is called off ({@link UploadQueue.withhold}, or
 * {@link UploadQueue.stop} once it gave up waiting for it): an uploader that has sent Riak
 * nothing of it yet then rejects with an {@link UploadWithheldError}; one past that point
 * goes on.
 */
export type Uploader = (
  upload: PendingUpload,
  stagedPath: string,
  signal: AbortSignal,
  progress?: () => void,
) => Promise<void>;

/**
 * Makes Riak's copy of a local path match the local file (see {@link PendingMirror});
 * resolves once Riak acknowledged that. Calls `progress` as an {@link Uploader} does.
 */
export type Mirrorer = (
  mirror: PendingMirror,
  signal: AbortSignal,
  progress?: () => void,
) => Promise<void>;

/** Attempts of a mirror Riak answers with an error (not an outage) before it is given up. */
const MIRROR_ATTEMPTS = 5;

/** Paths remembered in {@link UploadQueue}'s set of unseen uploads done. */
const SET_ASIDE_LIMIT = 100_000;

/**
 * Versions of earlier uploads an upload's journal entry keeps ({@link PendingUpload.ours}),
 * the newest: uploads of a path run one at a time, so Riak holds at most the last one that
 * landed, and a run of failed attempts (an outage with a file closed again and again) must
 * not make its line grow without end.
 */
const OURS_LIMIT = 16;

/** Why a running mirror is aborted (one object: an abort is routine, not an incident). */
const SUPERSEDED = new Error("a newer mirror of the same path was queued");

/** Why a staged file's upload is called off while it runs (see {@link UploadQueue.withhold}). */
const WITHHELD = new Error("its file is being removed");

/** Why an upload's attempt is called off while it runs (see {@link UploadQueue.stop}). */
const STOPPED = new Error("riakfs is stopping");

/**
 * Where the order of jobs waiting to start puts those hurried ({@link UploadQueue.hurry}): behind
 * those put back at the front (below it), ahead of those queued at the end (from
 * {@link QUEUED_ORDERS_FROM} on).
 */
const HURRIED_ORDERS_FROM = 0;
const QUEUED_ORDERS_FROM = 2 ** 50;

/** Default first retry delay after a failed upload. */
export const DEFAULT_RETRY_INITIAL_MS = 500;
/** Default longest retry delay. */
export const DEFAULT_RETRY_MAX_MS = 30_000;

/** Options of an {@link UploadQueue}. */
export interface UploadQueueOptions {
  spool: Spool;
  journal: UploadJournal;
  upload: Uploader;
  /** Mirrors local paths; without it, mirror entries are logged and left journaled. */
  mirror?: Mirrorer;
  /**
   * Which mirror entries `mirror` can do (a mount without a source does removals and
   * directories only); the others are logged and left journaled. Default: all.
   */
  mirrorable?: (mirror: PendingMirror) => boolean;
  /** Uploads running at once; default {@link DEFAULT_UPLOAD_CONCURRENCY}. */
  concurrency?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * Runs after Riak acknowledged an upload and before its staged file is removed (e.g. the
   * verified deletion of the local copy). A failure is logged; the upload still counts.
   */
  afterUpload?: (upload: JournalEntry) => Promise<void>;
  /**
   * Whether a mirror's copy deletes the local file once Riak's copy is verified (after
   * transfer: delete). An fsync's snapshot deletes nothing, so it then never stands in for a
   * copy: `sync FILE` after a write would leave that local copy behind for good.
   */
  deletesLocalCopies?: boolean;
  metrics?: MountMetrics;
  logger?: Logger;
}

/** A submitted upload. */
export interface UploadTicket {
  id: number;
  /**
   * Resolves when Riak acknowledged this upload or a newer one of the same path, or when it
   * was dropped with its file ({@link WithheldUploads.drop}).
   */
  uploaded: Promise<void>;
}

/**
 * Thrown by an {@link Uploader} called off before anything of its upload reached Riak, with
 * what its look at the path found there just before (it would have put the file over that).
 */
export class UploadWithheldError extends Error {
  /** `file`: Riak held a file at the path; `nothing`: none; undefined: it did not look. */
  readonly riakHeld: "file" | "nothing" | undefined;

  constructor(path: string, riakHeld?: "file" | "nothing") {
    super(`${path}: upload called off before it reached Riak`);
    this.name = "UploadWithheldError";
    this.riakHeld = riakHeld;
  }
}

/**
 * The uploads of one path held back by {@link UploadQueue.withhold}: none of them reached
 * Riak, and none starts until they are dropped or released.
 */
export interface WithheldUploads {
  /**
   * Riak was seen to hold no file at the path (by the look the running upload took just
   * before it would have put one there); false when that is not known.
   */
  riakHadNone: boolean;
  /**
   * Drops them as if uploaded (their file is gone): the journal records them done, in one
   * line, their staged files are removed, and whoever waits for them is let go.
   */
  drop(): Promise<void>;
  /** Lets them go on, in their order. */
  release(): void;
}

/** Options of {@link UploadQueue.submit}. */
export interface SubmitOptions {
  /**
   * Journaled now, started only once {@link UploadQueue.letGo} lets it go, or superseded
   * before that by a newer upload of its path. For a file emptied by its open and flushed
   * while still open (a shell's redirect closes its first descriptor before the command
   * writes): the write that follows supersedes it, and Riak gets one version, not an empty
   * one first. Whatever waits for the path's uploads, or for all of them, lets it go first;
   * while a {@link UploadQueue.drain} waits, none is held.
   */
  held?: boolean;
}

/** Options of {@link UploadQueue.start}. */
export interface StartOptions {
  /**
   * The file was written just now (its last close): a copy started at once would find it
   * changed within the clock's tick and wait that out in an upload slot, so it waits in
   * the queue instead. A file created, closed and removed within that time is then never
   * looked at: its removal stands in for the copy not started, or withdraws it.
   */
  justWritten?: boolean;
}

interface Job {
  entry: JournalEntry;
  /** Its place in the order jobs were queued. */
  queuedAs: number;
  started: boolean;
  /**
   * Not started before this time (`performance.now()`): the copy of a file written just now
   * waits out the clock's tick in the queue, not in an upload slot (see {@link StartOptions}).
   */
  notBefore?: number;
  /** A mirror's from its start: aborted when a newer mirror of its path is queued meanwhile. */
  superseded?: AbortController;
  /**
   * A staged file's upload from its start until its first attempt ended: aborted to call it
   * off while it has sent Riak nothing ({@link UploadQueue.withhold}).
   */
  stoppable?: AbortController;
  /**
   * A staged file's upload while an attempt runs: aborted by {@link UploadQueue.stop} to call
   * it off. The first attempt's is {@link Job.stoppable}; a later attempt's only stop aborts
   * (an earlier attempt may have reached Riak, so a withhold must not drop it).
   */
  attempt?: AbortController;
  /**
   * An upload that may have put its file in Riak: an attempt of it started, here or (replayed
   * from the journal) before a restart. Ended in favour of a newer upload of its path, its
   * version goes to that one's {@link PendingUpload.ours}.
   */
  mayHaveLanded?: true;
  /** Told how its first attempt ended by the withhold waiting for that: called off or not. */
  firstAttemptEnded?: (calledOff: UploadWithheldError | undefined) => void;
  /** Moved ahead of the others waiting: a request waits for it ({@link UploadQueue.hurry}). */
  hurried?: true;
  /** Its place among the jobs waiting to start: the lowest starts first. */
  order: number;
  /**
   * While it waits to start: `queued` among those that may start, `behind` a job of its path
   * queued before it, `parked` on {@link Job.parkedOn}, `settling` until its
   * {@link Job.notBefore}, `held` until {@link UploadQueue.letGo} (see {@link SubmitOptions}). Undefined while it runs, while it
   * waits to be tried again ({@link UploadQueue.#retryLater}), and once it ended.
   */
  waits?: "queued" | "behind" | "parked" | "settling" | "held";
  /** The path whose change may let it start, while parked (see {@link UploadQueue.#mayStart}). */
  parkedOn?: string;
  /** Its place in the heap of jobs queued. */
  heapIndex?: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * How the jobs that left the queue since it was made left it ({@link UploadQueue.ended}); with
 * {@link UploadQueue.pendingCount}, what became of the jobs a drain waited for.
 */
export interface JobsEnded {
  /** Riak acknowledged them. */
  uploaded: number;
  /**
   * Dropped unstarted, or ended after a failed attempt, since a later change of the same path
   * does all they would (a newer version of the file, its removal), or there was nothing
   * left to do (a new file removed before its upload, a reserved mirror of nothing).
   */
  unneeded: number;
  /** Given up on, each logged (the staged file changed or vanished, Riak kept refusing). */
  givenUp: number;
}

/** The queue stopped before the upload reached Riak; it stays journaled for the next start. */
export class UploadStoppedError extends Error {
  constructor(path: string) {
    super(`${path}: upload still pending when riakfs stopped; it stays journaled`);
    this.name = "UploadStoppedError";
  }
}

/**
 * Thrown by a mirror that cannot finish yet because other jobs must run first (a directory
 * whose entries' removals are still queued): its upload slot is given up, and it is tried
 * again once the others had their turn, never counted as Riak refusing it.
 */
export class NotYetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotYetError";
  }
}

/**
 * Uploads staged files.
 *
 * @example
 * ```ts
 * const queue = new UploadQueue({ spool, journal, upload: (entry, file) => putFile(entry, file) });
 * queue.resume(pending);
 * const ticket = await queue.submit({ path: "/a", staged, mode, uid, gid, mtimeNs, size });
 * await ticket.uploaded; // fsync semantics
 * ```
 */
export class UploadQueue {
  readonly #options: UploadQueueOptions;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  /** Jobs per path in submission order; only the first of a path may run. */
  readonly #byPath = new Map<string, Job[]>();
  /** The paths of {@link #byPath}, for the looks at a directory's part of them. */
  readonly #paths = new PathTree();
  /** Jobs in {@link #byPath}. */
  #jobCount = 0;
  #queued = 0;
  /** Ids of mirrors reserved and not started yet (their files are still open). */
  readonly #reserved = new Set<number>();
  /**
   * Paths an `unseen` job ran for: Riak's own file there was set aside once; the later
   * unseen jobs of the path (more closes or fsyncs during the outage) find this mount's
   * own upload there and must not set it aside too.
   */
  readonly #setAside = new Set<string>();
  /**
   * Jobs not started yet that may start, by {@link Job.order}: oldest first, the hurried ones
   * ahead of them, those put back at the front ahead of all. A job found unable to start
   * leaves it until what held it back changed: behind a job of its path, it waits for that
   * job to end; others are parked by the path whose change lets them go. The pump thus
   * looks at each job a bounded number of times, not at every one held back each time a
   * slot frees up (a file's removal ahead of thousands of jobs below its name, say).
   */
  readonly #waiting = new IndexedHeap<Job>((a, b) => a.order < b.order);
  /** Jobs parked, by the path whose change may let them start. */
  readonly #parked = new Map<string, Set<Job>>();
  /** The next {@link Job.order} of a job put back at the front (counts down). */
  #frontOrder = HURRIED_ORDERS_FROM - 1;
  #hurriedOrder = HURRIED_ORDERS_FROM;
  #queuedOrder = QUEUED_ORDERS_FROM;
  /** Paths whose jobs {@link withhold} holds back: none of them starts. */
  readonly #withheld = new Set<string>();
  /**
   * Staged files by name, with the pending uploads that name them: a rename while Riak is
   * away journals the upload under the new name with the staged file of the old one, which
   * goes once neither needs it.
   */
  readonly #stagedUsers = new Map<string, number>();
  /**
   * Jobs waiting out their {@link Job.notBefore}, in that order (each is the time it was
   * queued plus one fixed delay, so the order they came in).
   */
  readonly #settling = new Set<Job>();
  /** Journaled uploads not to start until let go ({@link SubmitOptions.held}). */
  readonly #held = new Set<Job>();
  /** How many {@link drain}s wait: a drain (still serving) must not wait on a held upload. */
  #draining = 0;
  /** Queues the jobs of {@link #settling} whose time came. */
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  /** When {@link #settleTimer} fires (`performance.now()`). */
  #settleAt = Infinity;
  #active = 0;
  /**
   * What the mount knows of paths Riak holds nothing at: each job counts as a change of its
   * path while it runs, the mount tells it of its other changes of Riak.
   */
  readonly newToRiak = new NewToRiak();
  /** See {@link acknowledged}. */
  #acknowledged = 0;
  readonly #ended: JobsEnded = { uploaded: 0, unneeded: 0, givenUp: 0 };
  /** What jobs call for each part of them Riak acknowledged. */
  readonly #acknowledge = () => {
    this.#acknowledged++;
  };
  #stopping = false;
  /** What ends the backoffs and retry delays under way early. */
  readonly #wake = new Set<() => void>();
  /** Moves ({@link PendingMirror.moves}) queued or running, by the path they move from. */
  readonly #movesFrom = new Map<string, Set<PendingMirror>>();
  /** Moves of directories ({@link PendingMirror.movesDirectory}) queued or running. */
  readonly #directoryMoves = new Set<PendingMirror>();
  #idle: (() => void)[] = [];

  constructor(options: UploadQueueOptions) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#concurrency = options.concurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
    this.#retryInitialMs = options.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
    this.#retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    if (!Number.isSafeInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new RangeError(
        `upload concurrency must be a whole number >= 1, got ${this.#concurrency}`,
      );
    }
    options.metrics?.onSnapshot(() => {
      const uploads = options.metrics!.value.uploads;
      uploads.pending = this.pendingCount;
      uploads.active = this.#active;
    });
  }

  /** Uploads submitted, resumed or reserved (files still open) and not yet acknowledged. */
  get pendingCount(): number {
    return this.#reserved.size + this.#jobCount;
  }

  /** How the jobs that left the queue so far left it (a drain tells the difference). */
  get ended(): Readonly<JobsEnded> {
    return this.#ended;
  }

  /**
   * How many acknowledgements Riak gave the uploads so far, of whole uploads and of their
   * parts: while it grows, a wait for uploads is moving, however long the queue ahead of them.
   */
  get acknowledged(): number {
    return this.#acknowledged;
  }

  /**
   * An outage began: every upload pending now is {@link PendingUpload.away} from here on.
   * Journaled while Riak answered, it goes over whatever Riak holds, the last writer winning;
   * landing only once Riak is back, after a wait of any length, it would go over a file
   * another host wrote meanwhile, which an upload journaled during the outage sets aside.
   * Marked in the journal (a restart keeps the mark), in one line per upload written now, and
   * in the entries the queue runs; one the journal cannot take (its disk full) keeps the mark
   * until the mount stops, with a warning.
   */
  outageBegan(): void {
    const entries = [...this.#byPath.values()].flat().map((job) => job.entry).filter((
      entry,
    ): entry is PendingUpload =>
      !isMirror(entry) && !entry.away && heldBefore(entry) !== undefined
    );
    if (entries.length === 0) return;
    const journaled = this.#options.journal.markAway(entries.map((entry) => entry.id));
    for (const entry of entries) entry.away = true;
    journaled.catch((error) => {
      this.#logger.warn("uploads pending as Riak went away not marked away in the journal", {
        uploads: entries.length,
        error: (error as Error).message,
      });
    });
  }

  /** Queues the journal's pending entries from the last run; call before serving. */
  resume(pending: readonly JournalEntry[]): void {
    for (const entry of pending) {
      // Flagged before the next entry of its path is queued, which may supersede it.
      if (!isMirror(entry)) this.#enqueue(entry).mayHaveLanded = true;
      else this.#enqueue(entry);
    }
    if (pending.length > 0) {
      this.#logger.info("replaying upload journal", { pending: pending.length });
    }
  }

  /**
   * Journals an upload (durable when this resolves) and queues it. Await
   * `ticket.uploaded` for Riak's acknowledgement.
   */
  async submit(upload: NewUpload, options: SubmitOptions = {}): Promise<UploadTicket> {
    if (this.#stopping) throw new UploadStoppedError(upload.path);
    this.#options.spool.ensure();
    const id = await this.#options.journal.add(upload);
    const held = options.held === true && this.#draining === 0;
    const job = this.#enqueue({ id, ...upload }, false, undefined, held);
    return { id, uploaded: job.done };
  }

  /** Lets the held uploads of `path` (and, with `below`, of the paths below it) start. */
  letGo(path: string, below = false): void {
    if (this.#held.size === 0) return;
    for (const pending of below ? this.#paths.atOrBelow(path) : [path]) {
      for (const job of this.#byPath.get(pending) ?? []) {
        if (job.waits !== "held") continue;
        this.#held.delete(job);
        this.#queue(job);
      }
    }
    this.#pump();
  }

  /**
   * Journals entries together ({@link UploadJournal.addTogether}: a crash keeps all of them
   * or none, durable when this resolves) and queues them in their order. An upload among them
   * names the staged file of a pending one (a rename while Riak is away); when that one
   * landed since the caller looked (Riak came back), its file went with it, and this
   * rejects, journaling nothing: the upload would find no file, and the removal that comes
   * with it would take away the only copy. `handedOver`: staged files of uploads among them
   * that no pending one names (a write session's, committed with a rename): the queue's once
   * journaled, their caller's still if this rejects.
   */
  async submitTogether(
    entries: readonly NewEntry[],
    { handedOver = [] }: { handedOver?: readonly string[] } = {},
  ): Promise<UploadTicket[]> {
    if (this.#stopping) throw new UploadStoppedError(entries[0]?.path ?? "/");
    const uploads = entries.filter((entry) => !isMirror(entry)) as NewUpload[];
    const gone = uploads.find((upload) =>
      !handedOver.includes(upload.staged) && !this.#stagedUsers.has(upload.staged)
    );
    if (gone !== undefined) {
      throw new Error(
        `${gone.path}: the upload it was to share a staged file with landed meanwhile`,
      );
    }
    this.#options.spool.ensure();
    // Counted before the journal's fsync: the job whose staged file a rename shares may land
    // meanwhile, and must leave the file to the upload under the new name.
    for (const upload of uploads) this.#useStaged(upload.staged);
    let added: JournalEntry[];
    try {
      added = await this.#options.journal.addTogether(entries);
    } catch (error) {
      for (const upload of uploads) {
        if (!handedOver.includes(upload.staged)) await this.#releaseStaged(upload);
        else if (this.#stagedUsers.get(upload.staged) === 1) {
          this.#stagedUsers.delete(upload.staged);
        } else this.#stagedUsers.set(upload.staged, this.#stagedUsers.get(upload.staged)! - 1);
      }
      throw error;
    }
    return added.map((entry) => ({ id: entry.id, uploaded: this.#enqueue(entry, true).done }));
  }

  /**
   * Journals a local path to mirror without queueing it yet: the file is still being
   * written, and {@link start} queues it once it is closed. Journaled at once, so a crash in
   * between still mirrors it at the next start.
   */
  reserve(mirror: NewMirror): Promise<PendingMirror> {
    try {
      if (this.#stopping) throw new UploadStoppedError(mirror.path);
      this.#options.spool.ensure();
      const entry = this.#options.journal.mirror(mirror);
      this.#reserved.add(entry.id);
      return Promise.resolve(entry);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Queues a mirror {@link reserve} journaled (synchronously: waiters see it at once). */
  start(reserved: PendingMirror, options: StartOptions = {}): UploadTicket {
    this.#reserved.delete(reserved.id);
    const notBefore = options.justWritten ? performance.now() + RACY_WINDOW_MS : undefined;
    return { id: reserved.id, uploaded: this.#enqueue(reserved, false, notBefore).done };
  }

  /** Drops a mirror {@link reserve} journaled that turned out to have nothing to do. */
  async cancel(reserved: PendingMirror): Promise<void> {
    if (this.#reserved.delete(reserved.id)) this.#ended.unneeded++;
    try {
      await this.#options.journal.complete(reserved.id);
    } finally {
      this.#wakeIfIdle();
    }
  }

  /** Journals a local path to mirror and queues it. */
  async submitMirror(mirror: NewMirror): Promise<UploadTicket> {
    return this.start(await this.reserve(mirror));
  }

  /** Resolves when every upload of `path` submitted so far reached Riak. */
  async settled(path: string): Promise<void> {
    this.letGo(path);
    const jobs = this.#byPath.get(path);
    if (!jobs || jobs.length === 0) return;
    await jobs[jobs.length - 1].done;
  }

  /** Resolves when every upload at or below directory `path` submitted so far reached Riak. */
  async settledBelow(path: string): Promise<void> {
    this.letGo(path, true);
    const waits: Promise<void>[] = [];
    for (const pending of this.#paths.atOrBelow(path)) {
      const jobs = this.#byPath.get(pending)!;
      waits.push(jobs[jobs.length - 1].done);
    }
    await Promise.all(waits);
  }

  /** Paths at or below `path` with an upload queued or running. */
  pendingPathsBelow(path: string): string[] {
    return this.#paths.allAtOrBelow(path);
  }

  /**
   * A path below `path` (not `path` itself) with an upload queued or running that `wanted`
   * accepts, looking at no more of them than it takes to find one; undefined when none is.
   */
  findPendingBelow(
    path: string,
    wanted: (pending: string) => boolean = () => true,
  ): string | undefined {
    if (!this.#paths.hasBelow(path)) return undefined;
    for (const pending of this.#paths.atOrBelow(path)) {
      if (pending !== path && wanted(pending)) return pending;
    }
    return undefined;
  }

  /** The mirrors of `path` queued or running, oldest first. */
  pendingMirrorsOf(path: string): PendingMirror[] {
    return (this.#byPath.get(path) ?? []).flatMap((job) => isMirror(job.entry) ? [job.entry] : []);
  }

  /**
   * Whether the newest job of `path` queued or running is a mirror: its local file is
   * ahead of Riak and of any staged upload journaled before it.
   */
  newestIsMirror(path: string): boolean {
    const jobs = this.#byPath.get(path);
    const newest = jobs?.[jobs.length - 1]?.entry;
    return newest !== undefined && isMirror(newest);
  }

  /** The newest job of `path` queued or running, if any. */
  newestOf(path: string): JournalEntry | undefined {
    return this.#byPath.get(path)?.at(-1)?.entry;
  }

  /** The staged uploads of `path` queued or running, oldest first. */
  pendingUploadsOf(path: string): PendingUpload[] {
    return (this.#byPath.get(path) ?? []).flatMap((job) => isMirror(job.entry) ? [] : [job.entry]);
  }

  /**
   * Names directly inside directory `path` whose newest job makes a directory or moves one
   * there (made or renamed while Riak was away, for listings).
   */
  directoriesMadeIn(path: string): string[] {
    return this.#namesIn(path, (pending) => {
      const newest = this.newestOf(pending);
      return newest !== undefined && isMirror(newest) &&
        (newest.mirror === "directory" || newest.movesDirectory !== undefined);
    });
  }

  /**
   * The directory's move ({@link PendingMirror.movesDirectory}) queued or running whose old or
   * new name is at or above `path`, if any: until it ran, Riak shows `path` as it was before.
   */
  directoryMoveOver(path: string): PendingMirror | undefined {
    for (const move of this.#directoryMoves) {
      const ends = [move.path, move.movesDirectory!.from];
      if (ends.some((end) => end === path || path.startsWith(end === "/" ? "/" : `${end}/`))) {
        return move;
      }
    }
    return undefined;
  }

  /**
   * Names directly inside directory `path` of the directories a move queued or running takes
   * away ({@link PendingMirror.movesDirectory}'s old names, for listings): until it ran, Riak
   * still lists them there.
   */
  directoriesMovedOutOf(path: string): string[] {
    const names: string[] = [];
    for (const move of this.#directoryMoves) {
      const { from } = move.movesDirectory!;
      if (from !== "/" && parentOf(from) === path) {
        names.push(from.slice(from.lastIndexOf("/") + 1));
      }
    }
    return names;
  }

  /**
   * Names directly inside directory `path` whose newest job moves a file there (renamed
   * while Riak was away, for listings).
   */
  filesMovedIn(path: string): string[] {
    return this.#namesIn(path, (pending) => {
      const newest = this.newestOf(pending);
      return newest !== undefined && isMirror(newest) && newest.moves !== undefined;
    });
  }

  /** Paths with an upload pending directly inside directory `path` (for listings). */
  pendingNamesIn(path: string): string[] {
    // Mirrors list from the source.
    return this.#namesIn(path, (pending) => this.pendingFor(pending) !== undefined);
  }

  /**
   * Names directly inside directory `path` whose newest job is a mirror ({@link newestIsMirror}):
   * what Riak lists of them is older than the source (a removal on its way, say).
   */
  mirroredNamesIn(path: string): string[] {
    return this.#namesIn(path, (pending) => this.newestIsMirror(pending));
  }

  #namesIn(path: string, wanted: (pending: string) => boolean): string[] {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    const names: string[] = [];
    for (const name of this.#paths.namesIn(path)) {
      if (wanted(prefix + name)) names.push(name);
    }
    return names;
  }

  /**
   * The newest pending upload of `path` when it is a staged file (its newest bytes are in
   * the spool), else undefined.
   */
  pendingFor(path: string): PendingUpload | undefined {
    const jobs = this.#byPath.get(path);
    const newest = jobs?.[jobs.length - 1]?.entry;
    return newest === undefined || isMirror(newest) ? undefined : newest;
  }

  /** Whether anything of `path` (staged or mirrored) is still on its way to Riak. */
  hasPending(path: string): boolean {
    return (this.#byPath.get(path)?.length ?? 0) > 0;
  }

  /**
   * Moves the jobs of `path` (with `below`, also those of the paths below it) not started yet
   * ahead of the others waiting, in their order, behind those hurried before: a request
   * waits for them (an fsync), which should not wait for the whole backlog too. Jobs of
   * different paths may run in any order (several run at once); the rules between them
   * (a path's jobs one after the other, a file's removal before what goes below its name)
   * still hold, the pump checks them whatever the order.
   */
  hurry(path: string, below = false): void {
    this.letGo(path, below);
    const hurried: Job[] = [];
    for (const pending of below ? this.#paths.atOrBelow(path) : [path]) {
      for (const job of this.#byPath.get(pending) ?? []) {
        if (job.waits !== undefined && !job.hurried) hurried.push(job);
      }
    }
    hurried.sort((a, b) => a.order - b.order);
    for (const job of hurried) {
      job.hurried = true;
      this.#reorder(job, this.#hurriedOrder++);
    }
  }

  /**
   * Holds back every upload of `path` while none of them has sent Riak anything: those not
   * started, and one in its first attempt, which is called off (at the latest before it
   * puts the file) and waited for. Undefined, holding nothing, when that cannot be: one is
   * a mirror, or went on (it reached Riak, or failed and is retried: that attempt may have
   * reached Riak), or another withhold holds them. An unlink then drops them instead of
   * waiting for them to reach Riak, only to remove the file there.
   */
  async withhold(path: string): Promise<WithheldUploads | undefined> {
    const jobs = this.#byPath.get(path);
    if (!jobs || jobs.length === 0 || this.#withheld.has(path)) return undefined;
    if (jobs.some((job) => isMirror(job.entry))) return undefined;
    const running = jobs.find((job) => job.started);
    if (running && running.stoppable === undefined) return undefined;
    this.#withheld.add(path);
    let riakHadNone = false;
    if (running) {
      const calledOff = await new Promise<UploadWithheldError | undefined>((resolve) => {
        running.firstAttemptEnded = resolve;
        running.stoppable!.abort(WITHHELD);
      });
      if (calledOff === undefined) {
        this.#release(path);
        return undefined;
      }
      riakHadNone = calledOff.riakHeld === "nothing";
    }
    const held = [...this.#byPath.get(path) ?? []];
    return { riakHadNone, drop: () => this.#drop(path, held), release: () => this.#release(path) };
  }

  /**
   * Holds back the jobs of `path` while Riak is known to hold nothing there
   * ({@link NewToRiak.isNew}: none of them started since that was seen): a file created and
   * removed before its copy started costs Riak nothing, its removal drops them
   * ({@link WithheldUploads.drop}) instead of journaling a removal that would find nothing
   * there. Undefined, holding nothing, otherwise (the removal must go to Riak). Mirrors still
   * reserved (a writer has the file open) are left to run: they find no file at the path.
   */
  withdrawNew(path: string): WithheldUploads | undefined {
    if (!this.newToRiak.isNew(path) || this.#withheld.has(path)) return undefined;
    const held = [...this.#byPath.get(path) ?? []];
    if (held.some((job) => job.started)) return undefined;
    this.#withheld.add(path);
    return {
      riakHadNone: true,
      drop: () => this.#drop(path, held),
      release: () => this.#release(path),
    };
  }

  /** Drops `held`, jobs of `path` {@link withhold} held back (see {@link WithheldUploads.drop}). */
  async #drop(path: string, held: Job[]): Promise<void> {
    try {
      // Those superseded meanwhile went with their newer job's.
      const dropped = held.filter((job) => this.#byPath.get(path)?.includes(job));
      for (const job of dropped) this.#finish(job);
      this.#ended.unneeded += dropped.length;
      await this.#forget(...dropped.map((job) => job.entry));
      for (const job of dropped) job.resolve();
    } finally {
      this.#release(path);
    }
  }

  /** Lets the jobs of `path` start again once a withhold ended. */
  #release(path: string): void {
    this.#withheld.delete(path);
    this.#unpark(path);
    this.#pump();
    this.#wakeIfIdle();
  }

  /** Retries waiting uploads now (e.g. when another request found Riak reachable again). */
  nudge(): void {
    const wake = [...this.#wake];
    this.#wake.clear();
    for (const resolve of wake) resolve();
  }

  /**
   * Waits until every pending upload reached Riak, at most `timeoutMs`. Returns how many are
   * still pending (0 = drained); those stay journaled.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.pendingCount === 0) return 0;
    for (const job of [...this.#held]) this.letGo(job.entry.path);
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.#draining++;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.#idle.push(resolve)),
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
    } finally {
      this.#draining--;
      clearTimeout(timer);
    }
    return this.pendingCount;
  }

  /**
   * Stops: no new uploads start, waiting retries give up, running mirrors are aborted. What
   * is not uploaded stays journaled; its `uploaded` promises reject with UploadStoppedError.
   * Uploads still running are waited for at most `graceMs`: one stuck in a request to a
   * hung node would hold the unmount for the client's request timeout, and it is replayed
   * from the journal anyway. Those still running then are called off (their signal aborted,
   * see {@link Uploader}), so that one whose request is answered later (Riak back from an
   * outage) puts nothing in Riak beside the next start's replay of the same entry; they
   * stay journaled, and no attempt starts after. An upload whose put of the file's object
   * was already sent cannot be called off: it may still land after this resolved (its
   * directory entry too); a journal closed by then keeps its entry, whose replay finds its
   * staged file gone and drops it.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    this.#settleAt = Infinity;
    for (const jobs of this.#byPath.values()) jobs[0]?.superseded?.abort();
    this.nudge();
    for (const jobs of this.#byPath.values()) {
      for (const job of jobs) {
        if (job.waits === undefined) continue;
        this.#stopWaiting(job);
        job.reject(new UploadStoppedError(job.entry.path));
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    const idle = (async () => {
      while (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    })();
    const gaveUp = await Promise.race([idle.then(() => false), graceOver.then(() => true)]);
    clearTimeout(timer);
    if (!gaveUp) return;
    this.#logger.info("uploads still running as riakfs stops called off; they stay journaled", {
      uploads: this.#active,
    });
    for (const jobs of this.#byPath.values()) jobs[0]?.attempt?.abort(STOPPED);
  }

  /** `stagedCounted`: its staged file's use was counted already ({@link submitTogether}). */
  #enqueue(
    entry: JournalEntry,
    stagedCounted = false,
    notBefore?: number,
    held = false,
  ): Job {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const done = new Promise<void>((yes, no) => {
      resolve = yes;
      reject = no;
    });
    done.catch(() => {}); // Callers that never await a ticket must not crash the process.
    const job: Job = {
      entry,
      queuedAs: this.#queued++,
      started: false,
      order: 0,
      done,
      resolve,
      reject,
    };
    if (notBefore !== undefined) job.notBefore = notBefore;
    if (!isMirror(entry) && !stagedCounted) this.#useStaged(entry.staged);
    const jobs = this.#byPath.get(entry.path) ?? [];
    if (jobs.length === 0) {
      this.#byPath.set(entry.path, jobs);
      this.#paths.add(entry.path);
    }
    if (isMirror(entry) && entry.moves) {
      const moves = this.#movesFrom.get(entry.moves.from) ?? new Set();
      this.#movesFrom.set(entry.moves.from, moves.add(entry));
    }
    if (isMirror(entry) && entry.movesDirectory) this.#directoryMoves.add(entry);
    const previous = jobs[jobs.length - 1];
    // Queued before the older one goes: the path keeps its jobs, and its place among paths.
    jobs.push(job);
    this.#jobCount++;
    if (previous && !previous.started && this.#covers(entry, previous.entry)) {
      this.#supersede(previous, job);
    } // A running mirror waiting for a file to settle gives way (see #run).
    else if (previous?.started && this.#covers(entry, previous.entry)) {
      previous.superseded?.abort(SUPERSEDED);
      this.nudge(); // It may be waiting out a backoff.
    }
    // A job that waits for those journaled before it at other paths (see #heldBack) would
    // wait for a held one as long as its file stays open: what waits for that job lets go
    // of its own path's only.
    if (this.#held.size > 0 && waitsForOtherPaths(entry)) {
      for (const other of [...this.#held]) this.letGo(other.entry.path);
    }
    if (held) {
      job.order = this.#queuedOrder++;
      job.waits = "held";
      this.#held.add(job);
    } else this.#queueAtTheEnd(job);
    this.#pump();
    return job;
  }

  /** Puts `job` among those waiting to start, behind all of them. */
  #queueAtTheEnd(job: Job): void {
    job.order = this.#queuedOrder++;
    this.#queue(job);
  }

  /** Puts `job` among those waiting to start, ahead of all of them. */
  #queueAtTheFront(job: Job): void {
    job.order = this.#frontOrder--;
    this.#queue(job);
  }

  /** Lets the pump look at `job`, waiting to start at {@link Job.order}. */
  #queue(job: Job): void {
    job.waits = "queued";
    this.#waiting.push(job);
  }

  /** Gives `job`, waiting to start, another place among those waiting. */
  #reorder(job: Job, order: number): void {
    const queued = this.#waiting.delete(job);
    job.order = order;
    if (queued) this.#waiting.push(job);
  }

  /** Takes `job` out of those waiting to start (it starts, ends, or is dropped). */
  #stopWaiting(job: Job): void {
    if (job.waits === "queued") this.#waiting.delete(job);
    if (job.waits === "settling") this.#settling.delete(job);
    if (job.waits === "held") this.#held.delete(job);
    if (job.waits === "parked") {
      const parked = this.#parked.get(job.parkedOn!)!;
      parked.delete(job);
      if (parked.size === 0) this.#parked.delete(job.parkedOn!);
    }
    job.waits = undefined;
    job.parkedOn = undefined;
  }

  /**
   * Whether `job`, waiting, may start now: it is the first of its path, not withheld, and
   * no file's removal above it waits to run first. If not, it waits where what holds it
   * back lets it go: behind its path's first job, or parked on the path whose change does.
   */
  #mayStart(job: Job): boolean {
    const { path } = job.entry;
    if (this.#byPath.get(path)![0] !== job) {
      job.waits = "behind";
      return false;
    }
    const holder = this.#withheld.has(path) ? path : this.#fileRemovalAbove(path, job.queuedAs);
    if (holder === undefined) return true;
    job.waits = "parked";
    job.parkedOn = holder;
    const parked = this.#parked.get(holder) ?? new Set<Job>();
    parked.add(job);
    this.#parked.set(holder, parked);
    return false;
  }

  /** Lets the pump look again at the jobs parked on `path`: something of it changed. */
  #unpark(path: string): void {
    const parked = this.#parked.get(path);
    if (parked === undefined) return;
    this.#parked.delete(path);
    for (const job of parked) {
      job.parkedOn = undefined;
      this.#queue(job);
    }
  }

  /** {@link covers}, where a snapshot never stands in for a copy that deletes the local file. */
  #covers(newer: JournalEntry, older: JournalEntry): boolean {
    if (
      this.#options.deletesLocalCopies && isMirror(newer) && newer.snapshot &&
      isMirror(older) && older.mirror === "copy" && !older.snapshot
    ) {
      return false;
    }
    return covers(newer, older);
  }

  /**
   * Whether the removal of a file at a directory above `path` is queued or running, also
   * behind other jobs of that directory's name (a copy of the file it removes, say): until it
   * ran, Riak holds a file where the source now has a directory, and refuses what goes below
   * it (ENOTDIR). A directory's removal is no such job: it waits for the removals below it.
   */
  fileRemovalPendingAbove(path: string): boolean {
    for (let at = parentOf(path); at !== "/"; at = parentOf(at)) {
      const jobs = this.#byPath.get(at) ?? [];
      if (jobs.some(({ entry }) => isFileRemoval(entry))) return true;
    }
    return false;
  }

  /**
   * For the pump: whether the first job of a directory above `path` is the removal of a file
   * there, queued before `queuedBefore`. Only the first: a directory's removal ahead of one
   * waits for the jobs below it, which must not wait for that removal in turn.
   */
  #fileRemovalAbove(path: string, queuedBefore: number): string | undefined {
    for (let at = parentOf(path); at !== "/"; at = parentOf(at)) {
      const first = this.#byPath.get(at)?.[0];
      if (
        first && first.queuedAs < queuedBefore && isFileRemoval(first.entry)
      ) return at;
    }
    return undefined;
  }

  /** `older` has not started and `newer` does all it would do: drop `older`. */
  #supersede(older: Job, newer: Job): void {
    this.#finish(older);
    this.#ended.unneeded++;
    newer.done.then(older.resolve, older.reject);
    this.#handOurs(older, newer);
    void this.#forget(older.entry);
  }

  /**
   * `older`, an upload that may have put its file in Riak ({@link Job.mayHaveLanded}), ends
   * in favour of `newer`, an upload of its path that sets aside what it does not know there
   * (created unseen, or over a known version: an outage may mark it away): `newer` takes
   * `older`'s version, and those it had, into {@link PendingUpload.ours} (only those it had
   * where `older` never started). Journaled at once,
   * before the caller's `done` line of `older`: after a crash or a stop, the next mount
   * still knows the file `older` put there (its directory set's add refused, say) as its
   * own, not one another host wrote.
   */
  #handOurs(older: Job, newer: Job): void {
    const [from, to] = [older.entry, newer.entry];
    if (isMirror(from) || isMirror(to)) return;
    // One that never started put nothing in Riak, but those it replaced may have: what they
    // left it goes on, or the newest upload sets the one that landed aside as another host's.
    if (!older.mayHaveLanded && !from.ours?.length) return;
    if (!to.unseen && heldBefore(to) === undefined) return;
    const ours: RiakVersion[] = [];
    const landed = older.mayHaveLanded ? [from] : [];
    for (const version of [...from.ours ?? [], ...to.ours ?? [], ...landed]) {
      const { size, mtimeNs } = version;
      if (!ours.some((known) => known.size === size && known.mtimeNs === mtimeNs)) {
        ours.push({ size, mtimeNs });
      }
    }
    to.ours = ours.slice(-OURS_LIMIT);
    this.#options.journal.noteOurs(to.id, to.ours).catch((error) => {
      this.#logger.warn("an earlier upload's version not journaled with the newer one", {
        path: to.path,
        error: (error as Error).message,
      });
    });
  }

  /** Wakes {@link drain} and {@link stop} once there is nothing left for them to wait for. */
  #wakeIfIdle(): void {
    if (this.pendingCount > 0 && !(this.#stopping && this.#active === 0)) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  #pump(): void {
    while (!this.#stopping && this.#active < this.#concurrency) {
      const job = this.#waiting.pop();
      if (job === undefined) break;
      job.waits = undefined;
      if (job.notBefore !== undefined && job.notBefore > performance.now()) {
        this.#settle(job);
        continue;
      }
      if (!this.#mayStart(job)) continue;
      job.started = true;
      // Made only now: most mirrors of short-lived files are superseded before they start.
      if (isMirror(job.entry)) job.superseded ??= new AbortController();
      else job.stoppable = new AbortController();
      this.#active++;
      const ended = this.newToRiak.changing(job.entry.path);
      void this.#run(job).finally(() => {
        ended();
        // Whatever way it ended, a withhold waiting for it hears of it.
        this.#firstAttemptEnded(job, undefined);
        this.#active--;
        this.#pump();
        this.#wakeIfIdle();
      });
    }
  }

  /** Sets `job` aside until its {@link Job.notBefore}, when it is queued again. */
  #settle(job: Job): void {
    job.waits = "settling";
    this.#settling.add(job);
    this.#settleBy(job.notBefore!);
  }

  /** Queues the jobs set aside whose time came, then lets them start. */
  #settled(): void {
    this.#settleTimer = undefined;
    this.#settleAt = Infinity;
    const now = performance.now();
    for (const job of this.#settling) {
      if (job.notBefore! > now) {
        this.#settleBy(job.notBefore!);
        break;
      }
      this.#settling.delete(job);
      job.notBefore = undefined;
      this.#queue(job);
    }
    this.#pump();
  }

  /** Looks at {@link #settling} again at `time` (`performance.now()`), unless due before. */
  #settleBy(time: number): void {
    if (this.#stopping || time >= this.#settleAt) return;
    clearTimeout(this.#settleTimer);
    this.#settleAt = time;
    this.#settleTimer = setTimeout(
      () => this.#settled(),
      Math.max(0, Math.ceil(time - performance.now())),
    );
  }

  /** The first attempt of `job` ended; a withhold waiting hears whether it was called off. */
  #firstAttemptEnded(job: Job, calledOff: UploadWithheldError | undefined): void {
    job.stoppable = undefined;
    const told = job.firstAttemptEnded;
    job.firstAttemptEnded = undefined;
    told?.(calledOff);
  }

  /**
   * Puts a job called off before it reached Riak back among those waiting, not started (or,
   * stopping, leaves it journaled as {@link stop} leaves those waiting). `retried`: the attempt
   * called off (by stop) followed a failed one, which may have reached Riak: it stays started,
   * so that no withhold takes it for one that sent Riak nothing and drops it.
   */
  #calledOff(job: Job, error: UploadWithheldError, retried = false): void {
    if (!retried) job.started = false;
    if (this.#stopping) {
      this.#logger.debug("upload called off as riakfs stops; it stays journaled", {
        path: job.entry.path,
      });
      job.reject(new UploadStoppedError(job.entry.path));
    } else this.#queueAtTheFront(job);
    this.#firstAttemptEnded(job, error);
  }

  async #run(job: Job): Promise<void> {
    const { entry } = job;
    const metrics = this.#options.metrics?.value.uploads;
    const stagedPath = isMirror(entry) ? undefined : this.#options.spool.pathOf(entry.staged);
    if (
      isMirror(entry) &&
      (this.#options.mirror === undefined || this.#options.mirrorable?.(entry) === false)
    ) {
      // Journaled by a mount with a source, replayed by one without (another preset): it
      // stays journaled for the next mount that has one.
      this.#logger.error("no source directory to mirror from; left in the journal", {
        path: entry.path,
      });
      job.reject(new Error(`${entry.path}: this mount has no source directory to mirror`));
      this.#finish(job);
      return;
    }
    if (job.stoppable?.signal.aborted) {
      return this.#calledOff(job, new UploadWithheldError(entry.path));
    }
    if (this.#heldBack(entry)) {
      // Its slot goes to the jobs it waits for; it is tried again after them.
      this.#firstAttemptEnded(job, undefined);
      this.#retryLater(job);
      return;
    }
    if (!isMirror(entry) && !await this.#holdsWhatWasJournaled(entry)) {
      if (metrics) metrics.abandoned++;
      // Done in the journal; the file stays, and the next start sets it aside to look at.
      await this.#options.journal.complete(entry.id).catch(() => {});
      this.#finish(job);
      this.#ended.givenUp++;
      job.reject(new Error(`${entry.path}: its staged file changed after it was journaled`));
      return;
    }
    let delay = this.#retryInitialMs;
    /** Failures in a row that were Riak's answers, not an outage. */
    let refusals = 0;
    let task: JournalEntry = entry;
    for (let attempt = 1;; attempt++) {
      if (this.#stopping) {
        job.reject(new UploadStoppedError(entry.path));
        this.#finish(job);
        return;
      }
      // Each attempt: an outage declared since the last one marked the entry away.
      task = entry.unseen && this.#setAside.has(entry.path)
        ? { ...entry, unseen: undefined }
        : entry;
      try {
        if (isMirror(task)) {
          await this.#options.mirror!(task, job.superseded!.signal, this.#acknowledge);
        } else {
          job.attempt = job.stoppable ?? new AbortController();
          job.mayHaveLanded = true;
          await this.#options.upload(
            task as PendingUpload,
            stagedPath!,
            job.attempt.signal,
            this.#acknowledge,
          );
        }
        job.attempt = undefined;
        this.#firstAttemptEnded(job, undefined);
        this.#acknowledge();
        break;
      } catch (error) {
        const calledOff = job.attempt?.signal.aborted;
        job.attempt = undefined;
        if (error instanceof UploadWithheldError && calledOff) {
          return this.#calledOff(job, error, attempt > 1);
        }
        this.#firstAttemptEnded(job, undefined);
        // The newer job does all this one would (a mirror looks at the local file again, an
        // upload holds the whole newer file, a removal takes away whatever this attempt
        // left): this one, say of a file that changed while it was read, or an upload
        // retried through an outage, has nothing left to do.
        if (await this.#givenWayToNewer(job)) return;
        if (error instanceof NotYetError) {
          // Its slot goes to the jobs it waits for; it is tried again after them.
          this.#retryLater(job);
          return;
        }
        refusals = isOutageError(error) ? 0 : refusals + 1;
        if (isMirror(entry) && refusals >= MIRROR_ATTEMPTS) {
          // Riak keeps refusing (a directory where the source has a file, say): reported
          // and given up, not retried forever in an upload slot.
          this.#logger.error("mirror refused by Riak; given up", {
            path: entry.path,
            error: (error as Error).message,
          });
          if (metrics) metrics.abandoned++;
          await this.#forget(entry);
          this.#finish(job);
          this.#ended.givenUp++;
          job.reject(error as Error);
          return;
        }
        if (!isMirror(entry) && !await this.#options.spool.holds(entry.staged)) {
          // The staged file is gone (removed by hand): nothing left to upload, ever.
          this.#logger.error("staged file vanished; upload abandoned", {
            path: entry.path,
            staged: stagedPath,
          });
          if (metrics) metrics.abandoned++;
          await this.#forget(entry);
          this.#finish(job);
          this.#ended.givenUp++;
          job.reject(error as Error);
          return;
        }
        if (metrics) metrics.failedAttempts++;
        if (attempt === 1) {
          this.#logger.debug("upload failed; retrying with backoff", {
            path: entry.path,
            error: (error as Error).message,
          });
        }
        // Queued while this one looked at its staged file, or while it waited (a rename or
        // removal of its file during an outage): the wake-up of the first went unheard.
        if (await this.#givenWayToNewer(job)) return;
        await this.#sleep(delay);
        if (await this.#givenWayToNewer(job)) return;
        delay = Math.min(delay * 2, this.#retryMaxMs);
      }
    }
    if (task.unseen) {
      this.#setAside.add(entry.path);
      if (this.#setAside.size > SET_ASIDE_LIMIT) {
        this.#setAside.delete(this.#setAside.values().next().value!);
      }
    }
    if (metrics) {
      metrics.uploaded++;
      if (!isMirror(entry)) metrics.bytesUploaded += entry.size;
    }
    if (!await this.#afterUpload(entry)) {
      // Stopped while Riak was away: the entry stays journaled, and the next start uploads
      // the file again and then takes the step (what it is in Riak already, it overwrites).
      job.resolve();
      this.#finish(job);
      return;
    }
    const newer = this.#nextUploadAfter(job);
    if (newer) this.#handOurs(job, newer);
    try {
      await this.#forget(entry);
      job.resolve();
    } catch (error) {
      job.reject(error as Error);
    }
    this.#finish(job);
    this.#ended.uploaded++;
  }

  /**
   * The step after an upload (drain's verified removal of the local copy the upload
   * superseded). One that failed because Riak went away is tried again with the uploads'
   * backoff: forgotten, the entry could not bring it back, and a stale local copy would stay
   * (and be served in the next outage). False when the queue stopped first.
   */
  async #afterUpload(entry: JournalEntry): Promise<boolean> {
    let delay = this.#retryInitialMs;
    for (;;) {
      try {
        await this.#options.afterUpload?.(entry);
        return true;
      } catch (error) {
        if (!isOutageError(error)) {
          this.#logger.warn("after-upload step failed", {
            path: entry.path,
            error: (error as Error).message,
          });
          return true;
        }
        if (this.#stopping) return false;
        await this.#sleep(delay);
        if (this.#stopping) return false;
        delay = Math.min(delay * 2, this.#retryMaxMs);
      }
    }
  }

  /**
   * Whether the staged file of `upload` still holds as many bytes as when it was journaled:
   * a staged file is never written after, so another size means someone else's bytes (a
   * file put there by hand, cut short by a disk), which must never go to Riak as the file.
   * A missing one is the upload's own failure to report.
   */
  async #holdsWhatWasJournaled(upload: PendingUpload): Promise<boolean> {
    const staged = this.#options.spool.pathOf(upload.staged);
    let size: number;
    try {
      size = (await stat(staged)).size;
    } catch {
      return true;
    }
    if (size === upload.size) return true;
    this.#logger.error("staged file does not hold what was journaled; not uploaded", {
      path: upload.path,
      staged,
      journaled_bytes: upload.size,
      staged_bytes: size,
    });
    return false;
  }

  /**
   * Ends `job`, whose attempt failed, when the job queued after it for the same path does
   * all it would: that job's outcome is its outcome. False when there is none.
   */
  async #givenWayToNewer(job: Job): Promise<boolean> {
    const newer = this.#newerThan(job);
    if (!newer || !this.#covers(newer.entry, job.entry)) return false;
    newer.done.then(job.resolve, job.reject);
    this.#handOurs(job, newer);
    await this.#forget(job.entry);
    this.#finish(job);
    this.#ended.unneeded++;
    return true;
  }

  /**
   * Whether `entry` must wait for jobs of other paths journaled before it: a move for those
   * of the path it moves from (what Riak holds there is theirs first), a removal for the moves
   * out of its path (they need what it removes); a directory's move for those at, above or
   * below either of its names, and any job there for a directory's move journaled before it
   * (Riak's rename would carry along what goes under the old name after it, and what goes
   * under the new one before it would be in its way).
   */
  #heldBack(entry: JournalEntry): boolean {
    if (this.#waitsForDirectoryMove(entry)) return true;
    if (!isMirror(entry)) return false;
    const mirror = entry;
    if (mirror.movesDirectory && this.#directoryMoveWaits(mirror)) return true;
    if (mirror.moves) {
      const jobs = this.#byPath.get(mirror.moves.from) ?? [];
      if (jobs.some((job) => job.entry.id < mirror.id)) return true;
    }
    if (mirror.mirror !== "remove") return false;
    // A directory's removal after what was journaled before it below it: an upload there
    // still running adds its entry once the removal found the directory empty, and leaves it
    // behind (made again for the entry, or an entry whose object a later removal took).
    if (
      mirror.directory &&
      this.findPendingBelow(
          mirror.path,
          (below) => this.#byPath.get(below)!.some((job) => job.entry.id < mirror.id),
        ) !== undefined
    ) {
      return true;
    }
    return [...this.#movesFrom.get(mirror.path) ?? []].some((move) => move.id < mirror.id);
  }

  /** Whether a directory's move journaled before `entry` is on the line of a path it changes. */
  #waitsForDirectoryMove(entry: JournalEntry): boolean {
    if (this.#directoryMoves.size === 0) return false;
    const paths = [entry.path];
    if (isMirror(entry) && entry.moves) paths.push(entry.moves.from);
    if (isMirror(entry) && entry.movesDirectory) paths.push(entry.movesDirectory.from);
    for (const move of this.#directoryMoves) {
      if (move.id >= entry.id) continue;
      const ends = [move.path, move.movesDirectory!.from];
      if (paths.some((path) => ends.some((end) => onOneLine(path, end)))) return true;
    }
    return false;
  }

  /**
   * Whether a job journaled before `move` (a directory's) is at, above or below either of its
   * names, or moves something from there.
   */
  #directoryMoveWaits(move: PendingMirror): boolean {
    const ends = [move.path, move.movesDirectory!.from];
    const before = (jobs: Job[] | undefined) => jobs?.some((job) => job.entry.id < move.id);
    for (const end of ends) {
      for (const path of this.#paths.atOrBelow(end)) {
        if (before(this.#byPath.get(path))) return true;
      }
      for (let at = end; at !== "/";) {
        at = parentOf(at);
        if (before(this.#byPath.get(at))) return true;
      }
    }
    for (const [from, moves] of this.#movesFrom) {
      if (!ends.some((end) => onOneLine(from, end))) continue;
      if ([...moves].some((other) => other.id < move.id)) return true;
    }
    // A job journaled after `move` is never waited for (it waits for `move`).
    return false;
  }

  /**
   * The next upload of `job`'s path, past mirrors that change only its attributes (an access
   * time no upload carries stays queued between two uploads): the one that goes over the
   * version `job` stored. Undefined where another mirror (a removal, a move) comes first.
   */
  #nextUploadAfter(job: Job): Job | undefined {
    const jobs = this.#byPath.get(job.entry.path) ?? [];
    const index = jobs.indexOf(job);
    if (index === -1) return undefined;
    for (const later of jobs.slice(index + 1)) {
      if (!isMirror(later.entry)) return later;
      if (later.entry.mirror !== "attributes") return undefined;
    }
    return undefined;
  }

  /** The job queued right after `job` for the same path, if any. */
  #newerThan(job: Job): Job | undefined {
    const jobs = this.#byPath.get(job.entry.path);
    const index = jobs?.indexOf(job) ?? -1;
    return index === -1 ? undefined : jobs![index + 1];
  }

  /**
   * Takes `job` out of the queue (it ended, or is dropped); the next job of its path, and
   * the jobs its path held back, may start.
   */
  #finish(job: Job): void {
    this.#stopWaiting(job);
    const { entry } = job;
    if (isMirror(entry) && entry.moves) {
      const moves = this.#movesFrom.get(entry.moves.from);
      if (moves?.delete(entry) && moves.size === 0) this.#movesFrom.delete(entry.moves.from);
    }
    if (isMirror(entry)) this.#directoryMoves.delete(entry);
    const { path } = job.entry;
    const jobs = this.#byPath.get(path);
    const index = jobs?.indexOf(job) ?? -1;
    if (index === -1) return;
    jobs!.splice(index, 1);
    this.#jobCount--;
    if (jobs!.length === 0) {
      this.#byPath.delete(path);
      this.#paths.delete(path);
    }
    if (index > 0) return;
    const next = jobs![0];
    if (next?.waits === "behind") this.#queue(next);
    this.#unpark(path);
  }

  /**
   * Marks entries done in the journal (in one line) and removes their staged files. When the
   * journal cannot record it (the disk is full, say) the staged files go all the same:
   * replayed after a restart, an entry finds its file gone and is dropped, instead of putting
   * these bytes over a newer upload of the path. A mirror replayed looks at the local file
   * again: harmless.
   */
  async #forget(...entries: JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    try {
      await this.#options.journal.complete(...entries.map((entry) => entry.id));
    } catch (error) {
      this.#logger.warn("could not record an upload as done; its staged file goes anyway", {
        path: entries[0].path,
        error: (error as Error).message,
      });
    }
    for (const entry of entries) {
      if (!isMirror(entry)) await this.#releaseStaged(entry);
    }
  }

  /** Counts one more pending upload naming staged file `staged`. */
  #useStaged(staged: string): void {
    this.#stagedUsers.set(staged, (this.#stagedUsers.get(staged) ?? 0) + 1);
  }

  /** Counts one pending upload of `upload`'s staged file less; the last one removes it. */
  async #releaseStaged(upload: NewUpload): Promise<void> {
    const users = (this.#stagedUsers.get(upload.staged) ?? 1) - 1;
    if (users > 0) {
      this.#stagedUsers.set(upload.staged, users);
      return;
    }
    this.#stagedUsers.delete(upload.staged);
    try {
      await this.#options.spool.remove(upload.staged);
    } catch (error) {
      this.#logger.warn("could not remove an uploaded staged file", {
        path: upload.path,
        error: (error as Error).message,
      });
    }
  }

  /** Puts a started job back among the waiting ones after {@link #retryInitialMs}. */
  #retryLater(job: Job): void {
    job.started = false;
    const requeue = () => {
      this.#wake.delete(requeue);
      clearTimeout(timer);
      // Stopping: it stays journaled for the next mount.
      if (this.#stopping || !this.#byPath.get(job.entry.path)?.includes(job)) return;
      this.#queueAtTheEnd(job);
      this.#pump();
    };
    const timer = setTimeout(requeue, this.#retryInitialMs);
    this.#wake.add(requeue);
  }

  #sleep(ms: number): Promise<void> {
    // Stopping: a job that failed after stop() woke the sleepers must not sleep either.
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake.delete(done);
        resolve();
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#wake.add(done);
    });
  }
}

/** Whether one of `a` and `b` is at or below the other. */
function onOneLine(a: string, b: string): boolean {
  return a === b || a.startsWith(b === "/" ? "/" : `${b}/`) ||
    b.startsWith(a === "/" ? "/" : `${a}/`);
}

/**
 * Whether `entry` may wait for jobs of other paths journaled before it: a move (of a file or
 * a directory) or a directory's removal.
 */
function waitsForOtherPaths(entry: JournalEntry): boolean {
  return isMirror(entry) &&
    (entry.moves !== undefined || entry.movesDirectory !== undefined ||
      (entry.mirror === "remove" && entry.directory === true));
}

/** Whether `entry` removes a file (or link) from Riak, not a directory. */
function isFileRemoval(entry: JournalEntry): boolean {
  return isMirror(entry) && entry.mirror === "remove" && !entry.directory;
}

/**
 * Whether `newer` does all that `older` (of the same path) would: an upload holds the whole
 * newer file, and a mirror looks at the local file when it runs, but a copy does nothing
 * where the file is gone, so only a removal stands in for a removal, and attributes stand in
 * for nothing but attributes.
 */
function covers(newer: JournalEntry, older: JournalEntry): boolean {
  // Only an upload that also sets aside what Riak holds unseen may stand in for one.
  if (older.unseen && !newer.unseen) return false;
  // Nothing else sets aside a version written elsewhere after the one this removal saw (a
  // later job of the name removes or overwrites whatever is there), or moves a file in.
  if (
    isMirror(older) &&
    (older.removes !== undefined || older.created || older.moves !== undefined ||
      older.movesDirectory !== undefined)
  ) return false;
  if (isMirror(newer) && newer.mirror === "move") return false;
  // A file's removal takes away what a staged upload would have put there (a file renamed
  // or removed while Riak was away: its upload need not go first).
  if (isMirror(newer) && !isMirror(older)) return isFileRemoval(newer);
  if (!isMirror(newer) || !isMirror(older)) return isMirror(newer) === isMirror(older);
  // A directory's removal and a file's removal of one path stand in for each other never.
  if (newer.mirror === "remove") {
    // The directory's removal also stands in for its making while Riak was away.
    return newer.directory
      ? (older.mirror === "remove" && older.directory === true) || older.mirror === "directory"
      : older.directory !== true && older.mirror !== "directory";
  }
  if (newer.mirror === "directory" || older.mirror === "directory") return false;
  // An fsync waits on a snapshot: a copy that waits for the file to settle cannot stand in.
  if (older.snapshot && !newer.snapshot) return false;
  // A copy carries the attributes along, but an mtime only as exactly as the local file
  // holds it, and an access time not at all: one asked for (utimens) is set after the copy.
  if (older.mirror === "attributes") {
    return older.set?.mtimeNs === undefined && older.set?.atimeNs === undefined;
  }
  return older.mirror === "copy" && newer.mirror === "copy";
}
