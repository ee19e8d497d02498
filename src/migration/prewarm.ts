/**
 * The pre-warm run: walks the source tree and makes Riak hold every file, symlink and
 * directory, through the store's own upload code (the same as the mount's), so a file
 * copied here and the same file written through the mount end up identical in Riak. What
 * Riak cannot hold (FIFOs, sockets, device nodes) is counted and reported, and stays.
 *
 * One run: take the lock, retry what failed last time behind the cursor (the walk reaches the
 * rest), walk from where the last run stopped (a pass over the tree may span several
 * budget-limited runs; its tally counts each path once, a retry taking back what the earlier
 * attempt counted), check each file
 * with one head-only get and upload what Riak lacks or holds in another version, then save
 * the cursor, the pass tallies and a history record. While files need uploads (a first
 * pass), the shards of a directory's index in Riak are read instead, each once for the
 * directory's files (only those a file's name can be in, so a directory of any size), and a
 * file they do not name is put at once with "only if absent": a new file costs its put and a
 * share of its directory's set update, where it cost four requests. A marker in the state directory, saved
 * at the start and every {@link RUN_CHECKPOINT_MS}, tells of a run that never got to its end.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BigIntStats } from "node:fs";
import { closeSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { readlink } from "node:fs/promises";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { displayPath, isSameOrBelow } from "../store/path.ts";
import { AlreadyExistsError, NewerVersionError, WrongTypeError } from "../store/errors.ts";
import type { ListedNames } from "../store/listed_names.ts";
import {
  type FileStat,
  GenerationChangedError,
  type MkdirOptions,
  type Store,
} from "../store/store.ts";
import { FailureList, type FailureRecord, readLines, reasonOf } from "./failure_list.ts";
import { SmallFileReaders } from "./small_file_readers.ts";
import { isLocalFilesystem } from "../util/blocking_while_fast.ts";
import {
  FileChangedError,
  type FileIdentity,
  identityOf,
  lstatIfExists,
  storedAttributes,
} from "./file_identity.ts";
import { PathFilter } from "./glob.ts";
import { RunLimits, type StopReason } from "./limits.ts";
import { isNoRoomError } from "../util/no_room.ts";
import {
  changedTooRecently,
  DEFAULT_READ_SIZE,
  hashBytes,
  isFileChanged,
  readUnchanged,
  waitOutRacyWindow,
} from "./local_file.ts";
import { type ByteGate, RateLimiter, UNLIMITED } from "./rate_limiter.ts";
import {
  addDelta,
  addTally,
  drainedDelta,
  drainedSoFar,
  emptyTally,
  type Globs,
  type MigrationState,
  type PassTally,
  pathFromHex,
  pathToHex,
  type RunMarker,
  type RunRecord,
  type StateDirectory,
  type Tally,
  type TallyDelta,
} from "./state.ts";
import { CHECKED_AHEAD_PER_UPLOAD, DEFAULT_CONCURRENCY } from "./defaults.ts";
import { emptiedSubtree, removeEmptied } from "./emptied_directory.ts";
import { DeletionLog, deletionLogName, removeDeletionLogs } from "./deletion_log.ts";
import type { MigrationStore } from "./stored_file.ts";
import { type LocalEntry, removeReplacedEntry, ReplacedTypeKeptError } from "./type_change.ts";
import {
  type ActivityCheck,
  deleteIfVerified,
  describeAttributeDifference,
} from "./verified_delete.ts";
import {
  compareWalkOrder,
  countTree,
  specialType,
  type WalkEntry,
  type WalkFailure,
  type WalkOptions,
  walkTree,
} from "./walk.ts";

/**
 * What the pre-warm asks of the store: a store that cannot tell which names a directory lists
 * (no `listedNames`) gets a look-up per file.
 */
export type PrewarmStore =
  & MigrationStore
  & Pick<
    Store,
    "ensureListed" | "setAttributes" | "list" | "removeIfUnchanged" | "removeOrphanEntry"
  >
  & Partial<Pick<Store, "listedNames" | "everHeldEntries">>;

/**
 * Riak's copy, read back before a deletion, is not the local content: damaged (it fails its
 * own recorded checksums) or other bytes of the same size and mtime. The local file stays,
 * and is uploaded over that copy.
 */
class RiakCopyNotLocalContent extends Error {
  constructor(detail: string) {
    super(`not deleted: ${detail}`);
    this.name = "RiakCopyNotLocalContent";
  }
}

/** Exit codes of `prewarm` (2, a usage error, comes from the command line). */
export const EXIT_COMPLETE = 0;
/** Some files failed; they are listed. */
export const EXIT_FAILED = 1;
/**
 * The budget (`--time-budget`, `--max-files`) or an interrupt ended the run, or files kept
 * changing while they were uploaded (busy); the next run resumes, and retries those first.
 */
export const EXIT_PARTIAL = 3;
/** Another run holds the lock. */
export const EXIT_LOCKED = 4;

/** Default uploads of a file that keeps changing before it is skipped as busy. */
export const DEFAULT_CHANGE_RETRIES = 3;
/**
 * Failed paths held in memory and in state.json (`retryHex`); the rest of a run's failures
 * go to files in the state directory, so every one is listed and retried.
 */
export const RETRY_LIST_LIMIT = 1000;
/**
 * Start of the names of the files listing the paths to retry beyond state.json's
 * {@link RETRY_LIST_LIMIT}, one per line as in `retryHex`. Each run writes a new one, which
 * state.json then names (`retryMoreFile`): a crash between the two saves leaves the older
 * pair whole, never one run's short list beside another run's long one.
 */
export const RETRY_MORE_PREFIX = "retry-more-";
/** The one such file of the builds before: read when state.json names none, then removed. */
const LEGACY_RETRY_MORE_FILE = "retry-more.txt";
/** Every failed path of the last run, JSON lines `{"path", "error"}`; absent when none failed. */
export const FAILED_LIST_FILE = "failed.jsonl";
/** Where a run spills failures beyond {@link RETRY_LIST_LIMIT} while it runs. */
const FAILED_SPILL_FILE = "failed.spill";
/** Wait before the end-of-run retry of failed paths. */
export const END_OF_RUN_RETRY_DELAY_MS = 1000;
/** Longest further wait before that retry for a Riak none of whose nodes answers. */
export const END_OF_RUN_REACHABLE_WAIT_MS = 5000;
/** Failed paths kept in the history record and the summary. */
export const LISTED_FAILURES_LIMIT = 1000;
/**
 * How long the end of a run in a first pass waits for its count of the tree to finish, which
 * `progress` takes for the pass's total (its ETA) until the pass has covered the tree.
 */
export const COUNT_GRACE_MS = 10_000;
/**
 * How often a run saves its marker (run.json) with its tallies so far: what a run that is
 * killed has done is known up to this long before it died.
 */
export const RUN_CHECKPOINT_MS = 30_000;

/** Options of {@link runPrewarm}. */
export interface PrewarmOptions {
  /** The local tree (absolute path). */
  source: string;
  /**
   * Where files go. With `listedNames` (a {@link Store} has it), the shards of a directory's
   * index are read once for its files, and a file they do not name is uploaded without a
   * look-up of its own.
   */
  store: PrewarmStore;
  state: StateDirectory;
  /**
   * Files uploaded at once; default {@link DEFAULT_CONCURRENCY}. {@link CHECKED_AHEAD_PER_UPLOAD}
   * times as many more are checked (stat, head-only get) ahead of them.
   */
  concurrency?: number;
  /** Upload rate limit, bytes per second. */
  maxBytesPerSecond?: number;
  budgetMs?: number;
  /** Most files uploaded by this run. */
  maxFiles?: number;
  /** Aborting it stops the run cleanly, as a reached budget does (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /**
   * Resolves once Riak has a node that answers (pinging the down ones now), or after
   * `timeoutMs`: the cluster's `whenReachable`, awaited before the end-of-run retry.
   */
  whenRiakReachable?: (timeoutMs: number) => Promise<unknown>;
  /**
   * How long files must keep failing with no Riak node answering (50 of them at least) before
   * the run stops; default 30 s.
   */
  unreachableStopMs?: number;
  filter?: PathFilter;
  /** Compare sha256 of files whose size and mtime match. */
  checksum?: boolean;
  /** Reports what would be uploaded; writes nothing to Riak or to the state. */
  dryRun?: boolean;
  /** Deletes each local file once Riak's copy is verified (drain). */
  deleteLocal?: boolean;
  /**
   * Files of SOURCE may have been deleted once in Riak by something other than the pre-warm (a
   * mount of SOURCE that deletes local copies, as drain does): where a path's type changed in
   * SOURCE, Riak's file or directory of files there is kept, as in a drain (type_change.ts).
   */
  drainedElsewhere?: boolean;
  /**
   * What keeps a verified local file from deletion as still in use (open for writing by
   * another process, changed within `quietPeriodMs`): counted as `keptActive`, retried by the
   * next run.
   */
  inUse?: ActivityCheck;
  /** Called for each action of a dry run, and each failure, as it happens. */
  onEvent?: (event: PrewarmEvent) => void;
  /** Called once the run has started, with a live view of its tallies. */
  onStart?: (live: LiveRun) => void;
  changeRetries?: number;
  /** Failed paths held in memory (the rest go to a file); default {@link RETRY_LIST_LIMIT}. */
  failuresInMemory?: number;
  /** How often the run's marker is saved with its tallies; default {@link RUN_CHECKPOINT_MS}. */
  checkpointMs?: number;
}

/** Something worth telling the operator while the run goes on. */
export type PrewarmEvent =
  | { kind: "would-upload"; path: string; bytes: number; reason: string }
  | { kind: "would-create-directory"; path: string }
  /**
   * In a drain: a directory the drain had emptied, which another host removed from Riak
   * since, was removed locally (with the empty ones below it) rather than made in Riak again
   * (`dryRun`: would be).
   */
  | { kind: "removed-elsewhere"; path: string; dryRun: boolean }
  /** Riak holds the content, with another mode or owner (`difference` says which). */
  | { kind: "would-update-attributes"; path: string; difference: string }
  | { kind: "failed"; path: string; error: string }
  | { kind: "busy"; path: string }
  /**
   * In Riak and verified, but not deleted (`--delete-local`): another process has it open for
   * writing, or it changed within the quiet period (`detail` says which).
   */
  | { kind: "kept-active"; path: string; detail: string }
  /** Found in Riak without its directory entry, which was added. */
  | { kind: "relisted"; path: string }
  /**
   * Not a file, symlink or directory (`type`: "FIFO", "socket", "character device", "block
   * device"): Riak cannot hold it, so it stays where it is, even in a drain.
   */
  | { kind: "special"; path: string; type: string }
  /**
   * Another filesystem is mounted here (or a file is bind-mounted): not crossed, so nothing
   * below it is uploaded or deleted; it stays, even in a drain.
   */
  | { kind: "mount-point"; path: string }
  /**
   * The pass in progress was walked with other `--include`/`--exclude` globs: this run
   * starts a new pass instead of resuming it.
   */
  | { kind: "globs-changed"; before: Globs; now: Globs }
  /**
   * The run before this one never ended (killed, crashed, its host went down); it is now in
   * the history as "unfinished". `lastSeen`: when it last saved its tallies.
   */
  | { kind: "unfinished-run"; startedAt: string; lastSeen: string }
  /**
   * The state directory's disk has no room: the run goes on without marking itself as under
   * way (a run killed now is not recorded as unfinished).
   */
  | { kind: "state-not-saved"; directory: string }
  /**
   * A local deletion was interrupted (a crash) with the file set aside under a private name
   * (`.riakfs-deleting.*`): `restored`, it is back at `path`; else its name holds another
   * file, and it stays at `path` (the private one) for the operator to look at.
   */
  | { kind: "set-aside"; path: string; restored: boolean };

/** A live view of a running pre-warm, for progress output. */
export interface LiveRun {
  readonly tally: PassTally;
  readonly startedAt: number;
  /**
   * Files this run is expected to see: from the last complete pass, or, in a first pass, from
   * a count of the tree made while the run goes on (undefined until it is done).
   */
  readonly expectedFiles?: number;
}

/** A failed path and why. */
export interface FailedPath {
  path: string;
  error: string;
}

/** What a run did. */
export interface PrewarmResult {
  outcome: "complete" | "failed" | "partial";
  exitCode: number;
  stopReason?: StopReason;
  dryRun: boolean;
  startedAt: string;
  endedAt: string;
  tally: PassTally;
  /** Failed paths (at most {@link LISTED_FAILURES_LIMIT}; `tally.failed` has the count). */
  failures: FailedPath[];
  /**
   * The file listing every failed path, when more failed than `failures` lists (not in a
   * dry run): JSON lines `{"path", "error"}`, in the state directory.
   */
  failuresFile?: string;
  /** Paths skipped because they kept changing while being uploaded. */
  busy: string[];
  /** Paths whose local copy `--delete-local` kept as still in use (see `tally.keptActive`). */
  keptActive: string[];
  /**
   * The state directory's disk had no room for the run's record at its end (its resume
   * point, retry list and history line, or some of them): the next run checks its files
   * against Riak again, and resumes where the last recorded run stopped.
   */
  notRecorded?: true;
}

/** A local file version to upload, and what was learnt about it while checking it. */
interface UploadJob {
  path: Buffer;
  absolute: Buffer;
  stats: BigIntStats;
  identity: FileIdentity;
  bytes: Tally;
  /** What Riak holds at the path (a stat of the store), if anything. */
  remote: FileStat | undefined;
  /** The whole content, when a small file was read while Riak was asked about it. */
  prefetched: Promise<Buffer> | undefined;
  /** Riak's listing of the directory did not name it: see {@link WriteOptions.unlisted}. */
  unlisted?: boolean;
  /** Where this attempt's outcome is counted. */
  count: EntryCount;
}

interface Pending {
  path: Buffer;
  done: boolean;
}

/** Whether `path` lies below the directory `directory` (both relative to the source). */
function isBelow(path: Buffer, directory: Buffer): boolean {
  return path.length > directory.length && path[directory.length] === 0x2f &&
    path.subarray(0, directory.length).equals(directory);
}

/** A walk's started entries in walk order, and its cursor over the finished front. */
interface WalkProgress {
  pending: Pending[];
  cursor: Buffer | undefined;
  /**
   * Directories above the walk's position that take no part by themselves (an include
   * selects nothing of them: see {@link PathFilter.selectsDirectory}), outermost first: each
   * is brought into Riak (or reported, in a dry run) only once the walk reaches an entry
   * below it, so an excluded subtree leaves no empty directories in Riak.
   */
  unselected?: Buffer[];
}

/**
 * Runs one pre-warm. Throws LockedError when another run holds the lock (exit code
 * {@link EXIT_LOCKED}); every per-file problem is counted and listed instead.
 */
export async function runPrewarm(options: PrewarmOptions): Promise<PrewarmResult> {
  const dryRun = options.dryRun === true;
  if (!dryRun) options.state.ensure();
  const lock = dryRun ? undefined : options.state.lock();
  const run = new PrewarmRun(options);
  try {
    return await run.run();
  } finally {
    await run.close();
    lock?.release();
  }
}

class PrewarmRun {
  readonly #o: PrewarmOptions;
  readonly #source: Buffer;
  /** SOURCE's filesystem (st_dev): a file on another one is not SOURCE's to upload or drain. */
  readonly #sourceDevice: bigint | undefined;
  readonly #tally = emptyTally();
  /** Failed paths: listed, retried at the end and by the next run. */
  readonly #failed: FailureList;
  /** Failures added that a retry may fix (not unreadable directories). */
  #retryableFailures = 0;
  /**
   * Which names Riak lists in the directories the walk is in (their shards, read as their
   * names are asked about), when the store can tell.
   */
  readonly #listing: ListedNames | undefined;
  /** The file decided last had to be uploaded: read the next small file ahead. */
  #lastNeededUpload = true;
  /** The last run's retry list, while this run has not taken all of it. */
  #retriesLeft: AsyncGenerator<string> | undefined;
  /** Paths this run had no budget left for (from the retry list or the walk). */
  readonly #notRetried: string[] = [];
  readonly #busy: string[] = [];
  readonly #keptActive: string[] = [];
  /**
   * The busy paths and those kept in use, for the next run's retry list (a partial run walks
   * past them), with what they added to this run's tally.
   */
  readonly #busyRetries: { path: Buffer; counted: TallyDelta }[] = [];
  /**
   * What earlier runs of this pass counted for paths this run counts again (their retries):
   * taken from the pass's tally when this run's is added, so every path counts once.
   */
  readonly #passCorrection = emptyTally();
  /**
   * The local copies a run that never ended (killed, its host gone down) deleted, as its
   * marker last saved them: its pass was not recorded, and no walk sees them again, so this
   * run's record adds them to the pass.
   */
  #drainedUnrecorded: TallyDelta | undefined;
  /**
   * Paths (latin1) retried at the end of the run after an earlier attempt of this run
   * uploaded them: found in Riak by the retry, they count as uploaded by the run.
   */
  readonly #uploadedEarlier = new Set<string>();
  readonly #gate: ByteGate;
  /**
   * Aborted, with a {@link DeferredSignal}, by an interrupt: uploads under way stop before
   * their next chunk and are left for the next run (with small chunks, the bytes already
   * read and paced are thousands of puts).
   */
  readonly #uploadsStopped = new AbortController();
  readonly #limits: RunLimits;
  readonly #startedAt = Date.now();
  readonly #inFlight = new Set<Promise<void>>();
  /** Directories (latin1 of the path) being created or looked at in Riak by {@link #directory}. */
  readonly #directoriesInFlight = new Map<string, Promise<void>>();
  /**
   * Directories (latin1 of the path) Riak holds another type at, kept there
   * ({@link ReplacedTypeKeptError}), and those below them: what is below waits with them.
   */
  readonly #keptDirectories = new Set<string>();
  /** Upload slots: `concurrency` files transfer at once, more are checked ahead. */
  readonly #uploadSlots: Slots;
  /** Small files are read whole on these threads (see SmallFileReaders). */
  readonly #readers: SmallFileReaders;
  /** The walk of the tree: where the next run of the pass resumes. */
  readonly #walk: WalkProgress = { pending: [], cursor: undefined };
  /** Files (and symlinks) ahead of the run, once {@link countAhead} finished. */
  #counted: number | undefined;
  /**
   * The files of the tree by that count: what the pass had covered before this run, and what
   * the count found ahead of it. Recorded with the pass, for `progress` during a first pass.
   */
  #treeFiles: number | undefined;
  /** The count of the tree under way, if one was started. */
  #counting: Promise<void> | undefined;
  /** Aborted when the run ends: a count still going stops. */
  readonly #ended = new AbortController();
  /** Some entry (walked or retried) was left for the next run: the run is partial. */
  #deferred = false;
  /** Whether SOURCE's files may exist only in Riak, once known (see {@link #drained}). */
  #drainedKnown: boolean | undefined;
  /** When the run's marker was last saved (ms since the epoch). */
  #markerSavedAt = 0;
  /** How many times the run's marker was saved. */
  #markerSaves = 0;
  /** Where the deletions since the marker's last save go (see deletion_log.ts). */
  #deletionLog: DeletionLog | undefined;
  readonly #state: MigrationState;

  constructor(options: PrewarmOptions) {
    this.#o = options;
    this.#source = Buffer.from(options.source);
    try {
      this.#sourceDevice = statSync(options.source, { bigint: true }).dev;
    } catch {
      // The walk of a SOURCE that cannot be looked at fails, and says why.
    }
    this.#gate = interruptible(
      options.maxBytesPerSecond === undefined
        ? UNLIMITED
        : new RateLimiter(options.maxBytesPerSecond),
      options.signal,
    );
    options.signal?.addEventListener(
      "abort",
      () => this.#uploadsStopped.abort(new DeferredSignal()),
      { once: true },
    );
    if (options.signal?.aborted) this.#uploadsStopped.abort(new DeferredSignal());
    this.#limits = new RunLimits({
      budgetMs: options.budgetMs,
      maxFiles: options.maxFiles,
      signal: options.signal,
      unreachableStopMs: options.unreachableStopMs,
    });
    this.#state = options.state.loadState();
    this.#listing = options.store.listedNames?.();
    this.#uploadSlots = new Slots(options.concurrency ?? DEFAULT_CONCURRENCY);
    this.#readers = new SmallFileReaders(options.concurrency ?? DEFAULT_CONCURRENCY, {
      // Looked at again now and then: a run lasts hours, and a share may be mounted below.
      blocking: () => isLocalFilesystem(options.source),
    });
    this.#failed = new FailureList(
      options.dryRun ? undefined : join(options.state.path, FAILED_SPILL_FILE),
      options.failuresInMemory ?? RETRY_LIST_LIMIT,
    );
  }

  /** Stops the run's threads. */
  close(): Promise<void> {
    this.#deletionLog?.close();
    return this.#readers.close();
  }

  async run(): Promise<PrewarmResult> {
    const dryRun = this.#o.dryRun === true;
    if (!dryRun) this.#newPassIfGlobsChanged();
    const resumeFrom = !dryRun && this.#state.cursorHex
      ? pathFromHex(this.#state.cursorHex)
      : undefined;
    this.#walk.cursor = resumeFrom;
    if (!dryRun) {
      // Saved in this run's marker, so that they still count if this run dies too.
      this.#drainedUnrecorded = this.#drainedByDeadRun();
      const left = this.#beginRun();
      if (!left) this.#drainedUnrecorded = undefined;
      if (left) {
        this.#o.onEvent?.({
          kind: "unfinished-run",
          startedAt: left.startedAt,
          lastSeen: left.endedAt,
        });
      }
    }
    // What the last pass drained is no longer in SOURCE: no walk of this pass sees it.
    const last = this.#state.lastCompletePass?.tally;
    const expected = last && last.seen.files - (last.deleted?.files ?? 0);
    const coveredAlready = resumeFrom ? (this.#state.currentPass?.tally.seen.files ?? 0) : 0;
    const expectedFiles = () => {
      if (expected !== undefined) return Math.max(0, expected - coveredAlready);
      // Files created since the count passed their directory are seen all the same.
      return this.#counted === undefined
        ? undefined
        : Math.max(this.#counted, this.#tally.seen.files);
    };
    this.#o.onStart?.({
      tally: this.#tally,
      startedAt: this.#startedAt,
      get expectedFiles() {
        return expectedFiles();
      },
    });
    // A first pass has nothing to go by: the tree is counted alongside (names only).
    this.#counting = expected === undefined
      ? this.#countAhead(resumeFrom, coveredAlready)
      : undefined;
    try {
      return await this.#walkAndFinish(resumeFrom, dryRun);
    } finally {
      this.#ended.abort();
      await this.#counting;
    }
  }

  /**
   * Drops the pass in progress when its runs walked with other globs: the files this run's
   * globs select and theirs did not lie behind the cursor, and resuming would call the pass
   * complete without them. Its retry list stays; the walk of the new pass takes it.
   */
  #newPassIfGlobsChanged(): void {
    const recorded = this.#state.cursorGlobs;
    const filter = this.#o.filter ?? new PathFilter();
    if (this.#state.cursorHex === undefined || !recorded || filter.sameGlobs(recorded)) return;
    delete this.#state.cursorHex;
    delete this.#state.currentPass;
    this.#o.onEvent?.({ kind: "globs-changed", before: recorded, now: filter.globs });
  }

  /**
   * Counts what the run will see, into {@link #counted}: the last run's retry list (a
   * directory in it counts as one file), and the files and symlinks the walk finds after
   * `resumeFrom` ({@link countTree}), to which `coveredAlready` (the files the pass covered
   * before) adds up to {@link #treeFiles}. Stops at once when the run ends first.
   */
  async #countAhead(resumeFrom: Buffer | undefined, coveredAlready: number): Promise<void> {
    const signal = this.#ended.signal;
    let retries = 0;
    let notCovered = 0;
    try {
      if (!this.#o.dryRun) {
        for await (const line of this.#lastRetryList()) {
          if (signal.aborted) return;
          const entry = parseRetryEntry(line);
          if (!isRetriedNow(entry.path, resumeFrom, entry.subtree !== undefined)) continue;
          retries++;
          // Left over by a budget, not counted in the pass yet (a failed one was).
          if (!entry.subtree && !entry.counted?.seen) notCovered++;
        }
      }
      const walked = await countTree(this.#o.source, {
        filter: this.#o.filter,
        startAfter: resumeFrom,
        signal,
      });
      if (walked === undefined) return;
      this.#counted = retries + walked;
      this.#treeFiles = coveredAlready + notCovered + walked;
    } catch {
      // Only an estimate: the run itself reports what it cannot read.
    }
  }

  /** Reports what an interrupted deletion left set aside; a dry run leaves it as it is. */
  get #setAsideRestored(): WalkOptions["onSetAsideRestored"] {
    if (this.#o.dryRun) return undefined;
    return (directory, restored) => {
      const within = (name: Buffer) =>
        directory === "" ? name : Buffer.concat([Buffer.from(`${directory}/`, "latin1"), name]);
      for (const name of restored.putBack) {
        this.#o.onEvent?.({ kind: "set-aside", path: displayPath(within(name)), restored: true });
      }
      for (const name of restored.kept) {
        this.#o.onEvent?.({ kind: "set-aside", path: displayPath(within(name)), restored: false });
      }
    };
  }

  async #walkAndFinish(resumeFrom: Buffer | undefined, dryRun: boolean): Promise<PrewarmResult> {
    let stopReason: StopReason | undefined;
    if (!dryRun) {
      // What a reached budget leaves of the list, #finish hands on to the next run.
      this.#retriesLeft = this.#lastRetryList();
      for (;;) {
        stopReason = this.#limits.reached();
        if (stopReason) break;
        const next = await this.#retriesLeft.next();
        if (next.done) {
          this.#retriesLeft = undefined;
          break;
        }
        const entry = parseRetryEntry(next.value);
        // Counted by an earlier run of this pass: this run counts it anew.
        if (resumeFrom && entry.counted) addDelta(this.#passCorrection, retried(entry.counted));
        if (!isRetriedNow(entry.path, resumeFrom, entry.subtree !== undefined)) {
          // The walk resumes at or inside it: a directory is looked at first, so that what is
          // below one Riak still holds another type at waits with it.
          if (entry.subtree && resumeFrom && isSameOrBelow(resumeFrom, entry.path)) {
            const stats = await lstatIfExists(this.#absolute(entry.path)).catch(() => undefined);
            if (stats?.isDirectory()) await this.#keptStill(entry.path);
          }
          continue;
        }
        if (entry.subtree) stopReason = await this.#retrySubtree(entry.path, entry.subtree.after);
        else await this.#retry(entry.path);
        if (stopReason) break;
      }
    }
    let walkedToEnd = false;
    if (!stopReason) {
      stopReason = await this.#walkEntries(
        walkTree(this.#o.source, {
          filter: this.#o.filter,
          startAfter: resumeFrom,
          onSetAsideRestored: this.#setAsideRestored,
        }),
        this.#walk,
      );
      walkedToEnd = stopReason === undefined;
    }
    await Promise.all(this.#inFlight);
    if (!dryRun && this.#retryableFailures > 0 && !this.#limits.reached()) {
      // One more try for what failed, once Riak had a moment (a node restarting, a blip),
      // and once a node answers again if none did (unanswered, the retry fails at once).
      // SIGINT/SIGTERM end either wait.
      await untilAborted(
        new Promise((resolve) => setTimeout(resolve, END_OF_RUN_RETRY_DELAY_MS)),
        this.#o.signal,
      );
      await untilAborted(
        this.#o.whenRiakReachable?.(END_OF_RUN_REACHABLE_WAIT_MS),
        this.#o.signal,
      );
      this.#retryableFailures = 0;
      for await (const failure of this.#failed.takeAll()) {
        if (!failure.retryNow || this.#limits.reached()) {
          this.#keepFailure(failure);
          continue;
        }
        // Its first attempt's counts go: the retry counts it anew.
        const earlier = failure.counted ?? {};
        addDelta(this.#tally, retried(earlier), -1);
        if (earlier.uploaded?.files) {
          // A file, not an attempt: counted again once the retry has it in Riak. Its bytes
          // did move, and stay counted.
          addDelta(this.#tally, { uploaded: { files: earlier.uploaded.files, bytes: 0 } }, -1);
          this.#uploadedEarlier.add(failure.path.toString("latin1"));
        }
        await this.#retry(failure.path);
      }
      await Promise.all(this.#inFlight);
    }
    if (this.#deferred) {
      walkedToEnd = false;
      stopReason ??= this.#limits.reached();
    }
    // Files still failing with no node answering at the end are still to do: the pass goes on,
    // as when the run stops for that before the end of the tree, and the next run retries them
    // before it closes the pass. Closed, it would stand as complete with none of them in Riak.
    const closesPass = walkedToEnd && !this.#limits.riakAway();
    if (!closesPass && !dryRun) await this.#countFinished();
    try {
      return await this.#finish(stopReason, walkedToEnd, closesPass);
    } finally {
      this.#failed.close();
    }
  }

  /**
   * Gives the count of the tree still going at the end of a first pass's run up to
   * {@link COUNT_GRACE_MS} to finish (not after an interrupt), so that the pass records it:
   * a short run (`--max-files`) on a large tree ends before its count does.
   */
  async #countFinished(): Promise<void> {
    if (!this.#counting) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise((resolve) => timer = setTimeout(resolve, COUNT_GRACE_MS));
    await untilAborted(Promise.race([this.#counting, grace]), this.#o.signal);
    clearTimeout(timer);
  }

  /**
   * The paths the last run left to retry (entries of {@link parseRetryEntry}): state.json's
   * list, then the file with the rest.
   */
  async *#lastRetryList(): AsyncGenerator<string> {
    yield* this.#state.retryHex ?? [];
    const more = this.#state.retryMoreFile ?? LEGACY_RETRY_MORE_FILE;
    yield* readLines(join(this.#o.state.path, more));
  }

  /**
   * The local copies the run that left its marker and never ended deleted (up to its death,
   * logged after its last save too), with those of runs that died before it, when no pass
   * counts them yet: none of them is in SOURCE for a walk to see.
   */
  #drainedByDeadRun(): TallyDelta | undefined {
    const dead = this.#o.state.unfinishedRun();
    if (!dead || this.#state.recordedRunStartedAt === dead.startedAt) return undefined;
    const own = this.#o.state.withLoggedDeletions(dead).tally.deleted;
    const earlier = dead.drainedUnrecorded;
    return drainedDelta({
      files: (own?.files ?? 0) + (earlier?.files ?? 0),
      bytes: (own?.bytes ?? 0) + (earlier?.bytes ?? 0),
    });
  }

  /** This run's marker, with its tallies as they are now. */
  #marker(): RunMarker {
    this.#markerSavedAt = Date.now();
    return {
      startedAt: new Date(this.#startedAt).toISOString(),
      pid: process.pid,
      savedAt: new Date(this.#markerSavedAt).toISOString(),
      tally: this.#tally,
      deletionLog: deletionLogName(this.#startedAt, this.#markerSaves),
      drainedUnrecorded: this.#drainedUnrecorded?.deleted,
    };
  }

  /**
   * Deletions go to the log `marker` names once it is saved: its tallies hold every one
   * logged before. Logs no marker names any more go.
   */
  #markerSaved(marker: RunMarker): void {
    this.#markerSaves++;
    const name = marker.deletionLog!;
    if (this.#deletionLog) this.#deletionLog.switchTo(name);
    else this.#deletionLog = new DeletionLog(this.#o.state.path, name);
    removeDeletionLogs(this.#o.state.path, name);
  }

  /**
   * Marks the run as under way. On a state directory whose disk is full the run goes on
   * unmarked (said as an event): its files matter more, a drain (`--delete-local`) makes
   * room as it goes, and the run's record is written at its end.
   */
  #beginRun(): RunRecord | undefined {
    try {
      const marker = this.#marker();
      const left = this.#o.state.beginRun(marker);
      this.#markerSaved(marker);
      return left;
    } catch (error) {
      if (!isNoRoomError(error)) throw error;
      this.#o.onEvent?.({ kind: "state-not-saved", directory: this.#o.state.path });
      return undefined;
    }
  }

  /** Saves the run's marker again once {@link PrewarmOptions.checkpointMs} has passed. */
  #checkpointWhenDue(): void {
    const interval = this.#o.checkpointMs ?? RUN_CHECKPOINT_MS;
    if (this.#o.dryRun || Date.now() - this.#markerSavedAt < interval) return;
    try {
      const marker = this.#marker();
      this.#o.state.saveRunMarker(marker);
      this.#markerSaved(marker);
    } catch {
      // A marker not saved costs an account of the run only if it dies; the files matter more.
    }
  }

  #keepFailure(failure: FailureRecord): void {
    this.#failed.add(failure);
    if (failure.retryNow) this.#retryableFailures++;
  }

  /**
   * Takes the entries of a walk (of the tree, or below a directory) until the budget stops
   * it; returns why it stopped, undefined at its end. Started entries may still run.
   */
  async #walkEntries(
    entries: AsyncIterable<WalkEntry | WalkFailure>,
    progress: WalkProgress,
  ): Promise<StopReason | undefined> {
    for await (const entry of entries) {
      const stopReason = this.#limits.reached();
      if (stopReason) return stopReason;
      if (entry.kind === "unreadable") {
        // Its subtree is walked by the next runs of the pass (the root's: by the next pass).
        const retry = entry.path.length > 0 ? "subtree" : "next-pass";
        this.#fail(entry.path, entry.error, new EntryCount(this.#tally), retry, "directory");
      } else if (entry.kind === "mount-point") {
        this.#mountPoint(entry.path);
      } else if (entry.kind === "directory" && !this.#selectsDirectory(entry.path)) {
        this.#leaveUnselected(entry.path, progress);
      } else if (entry.kind === "other") {
        if (progress.unselected?.length) await this.#unselectedNeeded(entry.path, progress);
        // A special file, or one the listing could not type (replaced or gone since).
        await this.#track(entry.path, () => this.#retry(entry.path), progress);
      } else {
        if (progress.unselected?.length) await this.#unselectedNeeded(entry.path, progress);
        await this.#schedule(entry.path, entry.kind, progress);
      }
    }
    return undefined;
  }

  /**
   * Walks what is below a directory an earlier run of the pass could not read, after
   * `after` (where a budget stopped an earlier attempt). Stopped by the budget, what is left
   * is listed again for the next run.
   */
  async #retrySubtree(path: Buffer, after: Buffer | undefined): Promise<StopReason | undefined> {
    const stats = await lstatIfExists(this.#absolute(path)).catch(() => undefined);
    // Gone, replaced, or still not to be looked at: as for any listed path.
    if (!stats?.isDirectory()) {
      await this.#retry(path);
      return undefined;
    }
    if (await this.#keptStill(path)) return undefined;
    const progress: WalkProgress = {
      pending: [],
      cursor: after,
      // Never brought in: the walk of the run that could not read it reached nothing below.
      unselected: this.#unselectedAbove(after ?? Buffer.concat([path, Buffer.from("/")])),
    };
    const stopReason = await this.#walkEntries(
      walkTree(this.#o.source, {
        filter: this.#o.filter,
        under: path,
        startAfter: after,
        onSetAsideRestored: this.#setAsideRestored,
      }),
      progress,
    );
    if (stopReason) {
      // The cursor stops moving once what was started has finished.
      await Promise.all(this.#inFlight);
      this.#notRetried.push(formatRetryEntry(path, undefined, { after: progress.cursor }));
      this.#deferred = true;
    }
    return stopReason;
  }

  /**
   * Brings a directory listed for its subtree into Riak (again) before what is below it:
   * true when Riak still holds another type there, kept ({@link ReplacedTypeKeptError}, failed
   * again), and what is below waits with it.
   */
  async #keptStill(path: Buffer): Promise<boolean> {
    if (!this.#selectsDirectory(path)) return false;
    await this.#directory(path);
    return this.#keptDirectories.has(path.toString("latin1"));
  }

  /** Whether the directory at `path` takes part by itself ({@link PathFilter.selectsDirectory}). */
  #selectsDirectory(path: Buffer): boolean {
    return this.#o.filter?.selectsDirectory(path) ?? true;
  }

  /** The directories above `path` that take no part by themselves, outermost first. */
  #unselectedAbove(path: Buffer): Buffer[] {
    const above: Buffer[] = [];
    for (let slash = path.indexOf(0x2f); slash > 0; slash = path.indexOf(0x2f, slash + 1)) {
      const directory = path.subarray(0, slash);
      if (!this.#selectsDirectory(directory)) above.push(directory);
    }
    return above;
  }

  /** The walk reached `path`, a directory that takes no part by itself: left for now. */
  #leaveUnselected(path: Buffer, progress: WalkProgress): void {
    const unselected = progress.unselected ?? [];
    while (unselected.length > 0 && !isBelow(path, unselected.at(-1)!)) unselected.pop();
    unselected.push(path);
    progress.unselected = unselected;
  }

  /**
   * The walk reached `path`, which takes part: the directories above it left so far are
   * brought in first, in walk order (tracked as any entry, before it), as a run without the
   * include would have.
   */
  async #unselectedNeeded(path: Buffer, progress: WalkProgress): Promise<void> {
    const unselected = progress.unselected ?? [];
    while (unselected.length > 0 && !isBelow(path, unselected.at(-1)!)) unselected.pop();
    progress.unselected = [];
    for (const directory of unselected) await this.#schedule(directory, "directory", progress);
  }

  /** Starts one entry once a slot is free (tracked by a walk's progress, when it has one). */
  async #schedule(
    path: Buffer,
    kind: "file" | "symlink" | "directory",
    progress: WalkProgress | undefined,
  ): Promise<void> {
    const limit = (this.#o.concurrency ?? DEFAULT_CONCURRENCY) * (1 + CHECKED_AHEAD_PER_UPLOAD);
    while (this.#inFlight.size >= limit) await Promise.race(this.#inFlight);
    this.#checkpointWhenDue();
    const work = kind === "file"
      ? () => this.#file(path)
      : kind === "symlink"
      ? () => this.#symlink(path)
      : () => this.#directory(path);
    const task = progress ? this.#track(path, work, progress) : work().catch((error) => {
      if (!(error instanceof DeferredSignal)) throw error;
      this.#notRetried.push(pathToHex(path));
      this.#deferred = true;
    });
    const promise = task.finally(() => this.#inFlight.delete(promise));
    this.#inFlight.add(promise);
  }

  /** Takes a path as it is now (file, symlink, directory or special file). */
  async #retry(path: Buffer): Promise<void> {
    // Only a path that is gone is dropped: one that cannot be looked at fails again, listed.
    const stats = await lstatIfExists(this.#absolute(path)).catch((error) => {
      this.#fail(path, error, new EntryCount(this.#tally));
      return null;
    });
    if (stats === null) return;
    if (stats?.isDirectory()) {
      // Its parent must be there for it: one taking no part by itself was maybe never made.
      for (const directory of this.#unselectedAbove(path)) await this.#directory(directory);
      await this.#directory(path);
    } else if (stats?.isSymbolicLink()) {
      await this.#schedule(path, "symlink", undefined);
    } else if (stats?.isFile()) {
      await this.#schedule(path, "file", undefined);
    } else if (stats) {
      this.#special(path, stats);
    }
  }

  /**
   * Counts and reports a FIFO, socket or device node, which Riak cannot hold: without a word,
   * an operator draining the tree would not know why its directory never empties.
   */
  #special(path: Buffer, stats: BigIntStats): void {
    new EntryCount(this.#tally).add("special", { files: 1, bytes: 0 });
    this.#o.onEvent?.({ kind: "special", path: displayPath(path), type: specialType(stats) });
  }

  /** Counts and reports a mount point below SOURCE, which the run does not cross. */
  #mountPoint(path: Buffer): void {
    new EntryCount(this.#tally).add("mountPoints", { files: 1, bytes: 0 });
    this.#o.onEvent?.({ kind: "mount-point", path: displayPath(path) });
  }

  /** Runs `work` for a walked entry and advances its walk's cursor over finished entries. */
  async #track(path: Buffer, work: () => Promise<void>, progress: WalkProgress): Promise<void> {
    const pending: Pending = { path, done: false };
    progress.pending.push(pending);
    try {
      await work();
    } catch (error) {
      if (!(error instanceof DeferredSignal)) throw error;
      // Left for the next run, which retries it first; the cursor may pass it, so files
      // finished after it are not walked (and counted) again.
      this.#notRetried.push(pathToHex(path));
      this.#deferred = true;
    } finally {
      pending.done = true;
      while (progress.pending.length > 0 && progress.pending[0].done) {
        progress.cursor = progress.pending.shift()!.path;
      }
    }
  }

  async #file(path: Buffer): Promise<void> {
    await this.#parentLookedAt(path);
    if (this.#inKeptDirectory(path)) return;
    const absolute = this.#absolute(path);
    const retries = this.#o.changeRetries ?? DEFAULT_CHANGE_RETRIES;
    const count = new EntryCount(this.#tally);
    let counted: Tally | undefined;
    try {
      for (let attempt = 1;; attempt++) {
        const stats = await this.#readers.lstat(absolute);
        if (!stats || !stats.isFile()) return; // vanished or replaced meanwhile
        if (this.#sourceDevice !== undefined && stats.dev !== this.#sourceDevice) {
          // Bind-mounted, or listed for a retry from below what is a mount point now.
          this.#mountPoint(path);
          return;
        }
        const identity = identityOf(stats);
        const size = Number(stats.size);
        if (!counted) {
          counted = { files: 1, bytes: size };
          count.add("seen", counted);
        } else if (counted.bytes !== size) {
          // Changed since the last attempt: seen at the size this one stores, not the first.
          count.add("seen", { files: 0, bytes: size - counted.bytes });
          counted = { files: 1, bytes: size };
        }
        if (changedTooRecently(identity) && attempt < retries) {
          // Being written right now: give the writer a moment before spending a transfer.
          await waitOutRacyWindow(undefined, identity);
          continue;
        }
        const outcome = count.mark();
        try {
          await this.#fileVersion(path, absolute, stats, identity, count);
          this.#limits.entryDone();
          return;
        } catch (error) {
          if (isDeferred(error)) {
            count.undo();
            throw new DeferredSignal();
          }
          if (!isFileChanged(error)) throw error;
          // What this attempt counted goes: the next one decides again.
          count.undo(outcome);
          if (attempt >= retries) {
            count.add("busy", counted);
            this.#noteBusy(path, count);
            this.#o.onEvent?.({ kind: "busy", path: displayPath(path) });
            return;
          }
          await waitOutRacyWindow();
        }
      }
    } catch (error) {
      if (error instanceof DeferredSignal) throw error;
      this.#fail(path, error, count);
    }
  }

  /** Counts a transfer against the budget, or defers the entry to the next run. */
  #startTransfer(): void {
    if (this.#limits.reached()) throw new DeferredSignal();
    this.#limits.startFile();
  }

  /** Brings one version of a file into Riak (or reports it, in a dry run). */
  async #fileVersion(
    path: Buffer,
    absolute: Buffer,
    stats: BigIntStats,
    identity: FileIdentity,
    count: EntryCount,
  ): Promise<void> {
    const bytes = { files: 1, bytes: Number(stats.size) };
    // While files need uploads (a first pass), the directory's listing settles which are new;
    // while they are found in Riak (a later pass), each needs its look-up anyway.
    if (
      !this.#o.dryRun && this.#lastNeededUpload &&
      // A listing that fails leaves each file to its own look-up, which reports the problem.
      await this.#listed(path).catch(() => undefined) === false
    ) {
      // Believed new: no look-up; the put itself refuses to replace an object it finds.
      this.#lastNeededUpload = true;
      // A small file is read before waiting for a slot, so the slot is held for Riak alone.
      const prefetched = stats.size < BigInt(DEFAULT_READ_SIZE)
        ? readWhole(this.#readSmall(path, absolute, identity))
        : undefined;
      prefetched?.catch(() => {}); // awaited by the upload
      const job = {
        path,
        absolute,
        stats,
        identity,
        bytes,
        remote: undefined,
        unlisted: true,
        count,
      };
      if (await this.#uploadInSlot({ ...job, prefetched })) return;
      // Riak held it after all (written before its entry, or since): decide as for any file.
    }
    const small = stats.size < BigInt(DEFAULT_READ_SIZE);
    // While the last file needed an upload (a first pass), a small file is read while Riak is
    // asked about it, so the read adds no wait of its own; while files are found in Riak (a
    // later pass) nothing is read for nothing.
    // One head-only get; a directory of the same name is caught by the write below. Sent
    // before the read, which blocks this thread.
    const asked = this.#o.store.tryStat(path, { fileOnly: true });
    const prefetched = small && this.#lastNeededUpload && !this.#o.dryRun
      ? readWhole(this.#readSmall(path, absolute, identity))
      : undefined;
    prefetched?.catch(() => {}); // awaited only if the file is uploaded
    this.#lastNeededUpload = false;
    const remote = await asked;
    let localSha256: string | undefined;
    // An object riakfs did not write (riak-fuse's) has no mtime of the file, only the time
    // Riak stored it: the same bytes are the same file, whatever the times say, and it is
    // left as riak-fuse wrote it (a rewrite would make a large one a manifest).
    if (remote?.type === "file" && !remote.managed && BigInt(remote.size) === stats.size) {
      localSha256 = (await hashBytes(readUnchanged(absolute, identity, { gate: this.#gate })))
        .sha256;
    }
    const sameForeign = localSha256 !== undefined && localSha256 === remote!.sha256;
    if (!sameForeign && remote !== undefined && remote.mtimeNs > stats.mtimeNs) {
      // Written through the mount after the local copy (a file, or a symlink made there): the
      // older local bytes never replace it, and the local copy is not Riak's content, so it
      // is not deleted either.
      // A write cut off before its entry (one a listing lacked) is listed, as Riak's.
      await this.#ensureListed(path);
      count.add("inRiak", bytes);
      count.add("newerInRiak", bytes);
      return;
    }
    let reason = sameForeign
      ? undefined
      : localSha256 !== undefined
      ? "content differs (sha256)"
      : describeDifference(remote, stats);
    if (reason === undefined && this.#o.checksum && localSha256 === undefined) {
      localSha256 = (await hashBytes(readUnchanged(absolute, identity, { gate: this.#gate })))
        .sha256;
      if (localSha256 !== remote!.sha256) reason = "content differs (sha256)";
    }
    if (reason === undefined) {
      await this.#ensureListed(path);
      const found = count.mark();
      this.#foundInRiak(path, bytes, count);
      if (localSha256 !== undefined) count.add("verified", bytes);
      await this.#attributesToRiak(path, stats, remote!, bytes, count);
      if (this.#o.deleteLocal && !this.#o.dryRun) {
        // The deletion rule needs the local content's own hash, never Riak's word for it.
        localSha256 ??= (await hashBytes(readUnchanged(absolute, identity, { gate: this.#gate })))
          .sha256;
        try {
          await this.#deleteLocal(path, absolute, stats, localSha256, bytes, count);
        } catch (error) {
          if (!(error instanceof RiakCopyNotLocalContent)) throw error;
          // Riak's copy, read back, is damaged there, or holds other bytes with the local
          // size and mtime (which --checksum would have found). Either way the local file is
          // what Riak should hold: it is uploaded, only over the version looked at (a newer
          // one written since stays), and goes once the new copy reads back right; a drain
          // would otherwise fail on it every night.
          count.undo(found);
          this.#lastNeededUpload = true;
          const job = { path, absolute, stats, identity, bytes, remote, count };
          await this.#uploadInSlot({ ...job, prefetched: undefined });
        }
      }
      return;
    }
    // Riak's symlink, or directory, of the name goes first where SOURCE shows it replaced. A
    // directory is looked for before a large file is sent (or in a dry run); a small file's
    // write finds it.
    const replaced = remote?.type === "symlink"
      ? remote
      : remote === undefined && (!small || this.#o.dryRun)
      ? await this.#directoryAt(path)
      : undefined;
    const entry: LocalEntry = { type: "file", mtimeNs: stats.mtimeNs };
    if (replaced) {
      await this.#replaceType(path, replaced, entry);
      reason = `replaces Riak's ${replaced.type}`;
    }
    if (this.#o.dryRun) {
      this.#wouldUpload(path, remote !== undefined || replaced !== undefined, bytes, reason, count);
      return;
    }
    this.#lastNeededUpload = true;
    const job = { path, absolute, stats, identity, bytes, prefetched, count };
    try {
      await this.#uploadInSlot({ ...job, remote: replaced ? undefined : remote });
    } catch (error) {
      const isDirectory = error instanceof WrongTypeError && error.code === "EISDIR";
      const directory = isDirectory ? await this.#directoryAt(path) : undefined;
      if (!directory) throw error;
      this.#limits.undoFile(); // its transfer starts again
      await this.#replaceType(path, directory, entry);
      await this.#uploadInSlot({ ...job, remote: undefined });
    }
  }

  /**
   * Whether Riak's index of the file's directory names it; undefined when unknown (the store
   * cannot tell, or the directory's shards would take more memory than the pre-warm keeps).
   * Only the shards the name can be in are read, once for the directory's files (a name's
   * absence, from shards at most a few seconds old): a stale answer costs a refused put (a file
   * added since) or a look-up (one removed since), never a wrong decision.
   */
  #listed(path: Buffer): Promise<boolean | undefined> {
    return this.#listing ? this.#listing.has(path) : Promise.resolve(undefined);
  }

  /**
   * Makes sure a file or link found in Riak has its directory entry. A write that ended
   * between its object and its entry (a crash, a put that landed after its client gave up)
   * left it readable by key but in no listing, and `--delete-local` would then delete the only
   * listed copy. Checked against the directory's shards (each read once for many files);
   * where they are more than the pre-warm keeps, each entry is looked up when local copies
   * are deleted, and not checked otherwise.
   */
  async #ensureListed(path: Buffer): Promise<void> {
    if (this.#o.dryRun) return;
    const listed = await this.#listed(path).catch(() => false as const);
    if (listed === true || (listed === undefined && !this.#o.deleteLocal)) return;
    // Its directory was made (with the source's attributes) when the walk entered it.
    const added = await this.#o.store.ensureListed(path, {
      parentAttributes: this.#localDirectoryAttributes,
    });
    if (added) this.#o.onEvent?.({ kind: "relisted", path: displayPath(path) });
  }

  /**
   * Uploads in an upload slot; false when an {@link UploadJob.unlisted} file turned out to
   * be in Riak (nothing stored).
   */
  async #uploadInSlot(job: UploadJob): Promise<boolean> {
    await this.#uploadSlots.take();
    let held = true;
    // Given back as soon as the object is stored: the directory entry moves no file bytes.
    const release = () => {
      if (held) this.#uploadSlots.give();
      held = false;
    };
    try {
      return await this.#upload(job, release);
    } finally {
      release();
    }
  }

  /** Uploads a file version found missing or different in Riak (holding an upload slot). */
  async #upload(job: UploadJob, objectStored: () => void): Promise<boolean> {
    const { path, absolute, stats, identity, bytes, prefetched, count } = job;
    this.#startTransfer();
    const small = stats.size < BigInt(DEFAULT_READ_SIZE);
    // Paced here, not when read: a small file read ahead and then found in Riak moves nothing.
    if (small) await this.#gate.take(Number(stats.size));
    const writing = this.#o.store.writeFile(
      path,
      prefetched
        ? await prefetched
        : small
        ? this.#readSmall(path, absolute, identity)
        : readUnchanged(absolute, identity, { gate: this.#gate, displayName: displayPath(path) }),
      {
        ...storedAttributes(stats),
        previous: job.remote ?? null,
        unlisted: job.unlisted,
        objectStored,
        // Written through the mount while this uploaded: the older local bytes give way.
        keepNewer: true,
        parentAttributes: this.#localDirectoryAttributes,
        signal: this.#uploadsStopped.signal,
      },
    );
    let written: FileStat;
    try {
      written = await writing;
    } catch (error) {
      if (error instanceof NewerVersionError) {
        count.add("inRiak", bytes);
        count.add("newerInRiak", bytes);
        return true;
      }
      if (!job.unlisted || !(error instanceof AlreadyExistsError)) throw error;
      this.#limits.undoFile();
      return false;
    }
    this.#uploadedEarlier.delete(path.toString("latin1"));
    count.add("inRiak", bytes);
    count.add("uploaded", bytes);
    if (this.#o.deleteLocal) {
      await this.#deleteLocal(path, absolute, stats, written.sha256, bytes, count);
    }
    return true;
  }

  /**
   * A small file in one read into a buffer of its size, on a reader thread (see
   * SmallFileReaders): thread-pool round trips and 1 MiB buffers cost more than the upload
   * of a 100 KiB file, and a read blocking this thread would let a cold disk serve one file
   * at a time.
   */
  async *#readSmall(
    path: Buffer,
    absolute: Buffer,
    identity: FileIdentity,
  ): AsyncGenerator<Buffer> {
    yield await this.#readers.read(absolute, identity, displayPath(path));
  }

  /** Dry run: counts and reports what a real run would upload. */
  #wouldUpload(
    path: Buffer,
    inRiak: boolean,
    bytes: Tally,
    reason: string,
    count: EntryCount,
  ): void {
    count.add(inRiak ? "differing" : "missing", bytes);
    this.#o.onEvent?.({
      kind: "would-upload",
      path: displayPath(path),
      bytes: bytes.bytes,
      reason,
    });
  }

  /**
   * Gives Riak's copy the local mode and owner where only they differ (a chmod or chown after
   * the upload): a drain would otherwise delete the only copy that has them. Only over the
   * version looked at; one written since is decided on again.
   */
  async #attributesToRiak(
    path: Buffer,
    stats: BigIntStats,
    remote: FileStat,
    bytes: Tally,
    count: EntryCount,
  ): Promise<void> {
    const { mode, uid, gid } = storedAttributes(stats);
    const difference = describeAttributeDifference(remote, { mode, uid, gid });
    if (difference === undefined) return;
    if (this.#o.dryRun) {
      this.#o.onEvent?.({ kind: "would-update-attributes", path: displayPath(path), difference });
      return;
    }
    try {
      await this.#o.store.setAttributes(path, { mode, uid, gid }, remote);
    } catch (error) {
      if (!(error instanceof GenerationChangedError)) throw error;
      throw new FileChangedError(displayPath(path));
    }
    count.add("attributesUpdated", bytes);
  }

  /** `stats`: the local version hashed, whose content, mode and owner Riak must hold. */
  async #deleteLocal(
    path: Buffer,
    absolute: Buffer,
    stats: BigIntStats,
    sha256: string,
    bytes: Tally,
    count: EntryCount,
  ): Promise<void> {
    const slash = path.lastIndexOf(0x2f);
    const { mode, uid, gid } = storedAttributes(stats);
    const hashed = { identity: identityOf(stats), sha256, attributes: { mode, uid, gid } };
    const within = {
      root: this.#source,
      directory: slash === -1 ? Buffer.alloc(0) : path.subarray(0, slash),
    };
    const outcome = await deleteIfVerified(
      this.#o.store,
      path,
      absolute,
      hashed,
      within,
      this.#o.inUse,
    );
    if (outcome.deleted || outcome.reason === "local-active") {
      if (count.delta.verified === undefined) count.add("verified", bytes);
    }
    if (outcome.deleted) {
      // Logged at once, with no await between it and the count a marker save takes.
      this.#deletionLog?.add(bytes.bytes);
      count.add("deleted", bytes);
      return;
    }
    if (outcome.reason === "local-active") {
      // Riak holds this version; the local copy stays while it is in use, and the next run
      // tries again (a writer's later lines would go with it).
      count.add("keptActive", bytes);
      this.#keptActive.push(displayPath(path));
      this.#busyRetries.push({ path, counted: count.delta });
      this.#o.onEvent?.({ kind: "kept-active", path: displayPath(path), detail: outcome.detail });
      return;
    }
    if (outcome.reason === "local-changed") throw new LocalChangedSignal(outcome.detail);
    if (outcome.reason === "riak-damaged" || outcome.reason === "riak-differs") {
      throw new RiakCopyNotLocalContent(outcome.detail);
    }
    throw new Error(`not deleted: ${outcome.detail}`);
  }

  async #symlink(path: Buffer): Promise<void> {
    await this.#parentLookedAt(path);
    if (this.#inKeptDirectory(path)) return;
    const absolute = this.#absolute(path);
    let target: Buffer;
    try {
      target = await readlink(absolute, { encoding: "buffer" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      this.#fail(path, error, new EntryCount(this.#tally));
      return;
    }
    const bytes = { files: 1, bytes: target.length };
    const count = new EntryCount(this.#tally);
    count.add("seen", bytes);
    try {
      await this.#symlinkTarget(path, absolute, target, bytes, count);
      this.#limits.entryDone();
    } catch (error) {
      if (error instanceof DeferredSignal) {
        count.undo();
        throw error;
      }
      this.#fail(path, error, count);
    }
  }

  /** Brings a link's target into Riak (or reports it, in a dry run). */
  async #symlinkTarget(
    path: Buffer,
    absolute: Buffer,
    target: Buffer,
    bytes: Tally,
    count: EntryCount,
  ): Promise<void> {
    const remote = await this.#o.store.tryStat(path);
    const same = remote?.type === "symlink" &&
      remote.sha256 === createHash("sha256").update(target).digest("hex");
    if (same) {
      await this.#ensureListed(path);
      this.#foundInRiak(path, bytes, count);
      return;
    }
    const local = await lstatIfExists(absolute);
    if (!local?.isSymbolicLink()) {
      // Gone or replaced since it was read: with no time of its own to go by, it would
      // replace what Riak holds, a file written through the mount since included.
      count.undo();
      return;
    }
    // A file or link written through the mount after the local link: left as it is.
    if (remote && remote.type !== "directory" && remote.mtimeNs > local.mtimeNs) {
      count.add("inRiak", bytes);
      count.add("newerInRiak", bytes);
      return;
    }
    const replaced = remote && remote.type !== "symlink" ? remote : undefined;
    const entry: LocalEntry = { type: "symlink", mtimeNs: local.mtimeNs };
    if (this.#o.dryRun) {
      if (replaced) await this.#replaceType(path, replaced, entry);
      this.#wouldUpload(
        path,
        remote !== undefined,
        bytes,
        replaced ? `replaces Riak's ${replaced.type}` : remote ? "symlink differs" : "not in Riak",
        count,
      );
      return;
    }
    this.#startTransfer();
    if (replaced) await this.#replaceType(path, replaced, entry);
    else if (remote && !await this.#o.store.removeIfUnchanged(remote)) {
      // Changed in Riak since the look (through a mount, or by another host): that stays.
      count.add("inRiak", bytes);
      count.add("newerInRiak", bytes);
      return;
    }
    // The link's own times and owner: a link made again later (cp -a, tar, rsync) is newer.
    await this.#o.store.symlink(path, target, {
      mtimeNs: local.mtimeNs,
      uid: Number(local.uid),
      gid: Number(local.gid),
    });
    this.#uploadedEarlier.delete(path.toString("latin1"));
    count.add("inRiak", bytes);
    count.add("uploaded", bytes);
  }

  /**
   * Counts a file or link Riak holds in the local version: uploaded by this run when an
   * earlier attempt of it in this run was (see {@link #uploadedEarlier}).
   */
  #foundInRiak(path: Buffer, bytes: Tally, count: EntryCount): void {
    count.add("inRiak", bytes);
    if (this.#uploadedEarlier.delete(path.toString("latin1"))) {
      count.add("uploaded", { files: bytes.files, bytes: 0 });
    }
  }

  /**
   * Brings a directory into Riak (or checks it is there). The walk goes on into it meanwhile:
   * what is below waits for it ({@link #parentLookedAt}), not the walk, so the files already
   * checked ahead keep the upload slots busy across directories.
   */
  #directory(path: Buffer): Promise<void> {
    const key = path.toString("latin1");
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => markReady = resolve);
    this.#directoriesInFlight.set(key, ready);
    return this.#parentLookedAt(path).then(() =>
      this.#inKeptDirectory(path, true) ? undefined : this.#directoryNow(path, markReady)
    ).finally(
      () => {
        markReady();
        if (this.#directoriesInFlight.get(key) === ready) this.#directoriesInFlight.delete(key);
      },
    );
  }

  /**
   * Waits until the walk's look at the entry's directory in Riak finished: an entry below a
   * directory that is still being created would otherwise create it itself, with a race.
   */
  async #parentLookedAt(path: Buffer): Promise<void> {
    const slash = path.lastIndexOf(0x2f);
    if (slash < 0) return;
    await this.#directoriesInFlight.get(path.subarray(0, slash).toString("latin1"));
  }

  /**
   * Whether `path` lies in a directory Riak holds another type at, kept there: it waits with
   * that directory, uncounted (one failure, not one per entry below). A directory there is
   * marked as kept too (`isDirectory`).
   */
  #inKeptDirectory(path: Buffer, isDirectory = false): boolean {
    const slash = path.lastIndexOf(0x2f);
    const parent = slash < 0 ? undefined : path.subarray(0, slash).toString("latin1");
    if (parent === undefined || !this.#keptDirectories.has(parent)) return false;
    if (isDirectory) this.#keptDirectories.add(path.toString("latin1"));
    return true;
  }

  /** `ready`: called once entries below the directory may be written. */
  async #directoryNow(path: Buffer, ready: () => void): Promise<void> {
    try {
      await this.#directoryInRiak(path, ready);
      this.#limits.entryDone();
    } catch (error) {
      // What is below it waits with it, for the next runs (see #retrySubtree).
      if (error instanceof ReplacedTypeKeptError) {
        this.#keptDirectories.add(path.toString("latin1"));
      }
      this.#fail(path, error, new EntryCount(this.#tally), "now", "directory");
    }
  }

  /**
   * Removes Riak's entry at `path`, of another type than SOURCE's now, where SOURCE shows all
   * it holds replaced (in a dry run, only decides); else throws {@link ReplacedTypeKeptError}.
   */
  async #replaceType(path: Buffer, remote: FileStat, local: LocalEntry): Promise<void> {
    await removeReplacedEntry(this.#o.store, path, remote, local, {
      drain: this.#drained(),
      dryRun: this.#o.dryRun === true,
    });
  }

  /**
   * Whether files of SOURCE may have been drained, so that they exist only in Riak: this run
   * drains, a mount of SOURCE does ({@link PrewarmOptions.drainedElsewhere}), or an earlier run
   * recorded in the state directory deleted local copies.
   */
  #drained(): boolean {
    const deletedBefore = () =>
      [this.#state.currentPass, this.#state.lastCompletePass, ...this.#o.state.readHistory()]
        .some((run) => (run?.tally.deleted?.files ?? 0) > 0);
    this.#drainedKnown ??= this.#o.deleteLocal === true || this.#o.drainedElsewhere === true ||
      deletedBefore();
    return this.#drainedKnown;
  }

  /** Riak's directory at `path`, if it holds one. */
  async #directoryAt(path: Buffer): Promise<FileStat | undefined> {
    const found = await this.#o.store.tryStat(path);
    return found?.type === "directory" ? found : undefined;
  }

  /** Creates a directory in Riak, or finds it there (or reports it, in a dry run). */
  async #directoryInRiak(path: Buffer, ready: () => void): Promise<void> {
    // In a first pass, a directory its parent's listing does not name is created at once
    // (mkdir itself refuses to create it over anything).
    const unlisted = !this.#o.dryRun && this.#lastNeededUpload &&
      await this.#listed(path) === false;
    if (unlisted && await this.#leftoverOfRemoved(path, false)) return;
    if (unlisted && await this.#createDirectory(path, { unlisted, objectStored: ready })) {
      return;
    }
    const remote = await this.#o.store.tryStat(path);
    if (remote?.type === "directory") {
      // A mkdir cut off between the directory's object and its entry: no listing shows it.
      // Looked for whatever the file before it needed (a run after a crash finds the files
      // before it in Riak), as a file found in Riak is.
      await this.#ensureListed(path);
      return;
    }
    if (remote) {
      const local = await lstatIfExists(this.#absolute(path));
      // Replaced since the walk listed it: the walk finds what it is now.
      if (!local?.isDirectory()) return;
      await this.#replaceType(path, remote, { type: "directory", mtimeNs: local.mtimeNs });
    } else if (await this.#leftoverOfRemoved(path, true)) {
      return;
    }
    if (this.#o.dryRun) {
      this.#o.onEvent?.({ kind: "would-create-directory", path: displayPath(path) });
      return;
    }
    if (!await this.#createDirectory(path, { objectStored: ready })) {
      throw new AlreadyExistsError(displayPath(path));
    }
  }

  /**
   * In a drain, removes the local directory at `path` (and the empty ones below it) where it
   * is what the drain left of a directory another host removed from Riak since, rather than
   * make it in Riak again (emptied_directory.ts): true when it went (in a dry run, would go).
   * `absentInRiak`: Riak was asked, and holds nothing there.
   */
  async #leftoverOfRemoved(path: Buffer, absentInRiak: boolean): Promise<boolean> {
    const pass = this.#state.lastCompletePass;
    const walkedWith = pass?.kind === "prewarm" && !pass.tally.failedDirectories?.files
      ? pass.globs
      : undefined;
    if (
      !this.#o.deleteLocal || this.#sourceDevice === undefined || !walkedWith ||
      !(this.#o.filter ?? new PathFilter()).sameGlobs(walkedWith)
    ) return false;
    const now = (this.#o.inUse?.now ?? Date.now)();
    const directories = await emptiedSubtree(this.#source, path, {
      passStartMs: Date.parse(pass!.startedAt),
      quietSinceMs: now - (this.#o.inUse?.quietPeriodMs ?? 0),
      filter: this.#o.filter,
      device: this.#sourceDevice,
    });
    if (!directories) return false;
    if (!absentInRiak && await this.#o.store.tryStat(path) !== undefined) return false;
    // Its files were in Riak, and went: its emptied index says so (a Riak that lost it all,
    // or a directory that never held a file there, has none).
    if (!await this.#o.store.everHeldEntries?.(path)) return false;
    if (!this.#o.dryRun && !await removeEmptied(this.#source, directories)) return false;
    const dryRun = this.#o.dryRun === true;
    this.#o.onEvent?.({ kind: "removed-elsewhere", path: displayPath(path), dryRun });
    return true;
  }

  /**
   * Creates a directory with the local one's attributes (or nothing, if it is gone or no
   * directory now); false when Riak holds something at the path already.
   */
  async #createDirectory(
    path: Buffer,
    options: Pick<MkdirOptions, "unlisted" | "objectStored">,
  ): Promise<boolean> {
    const stats = await lstatIfExists(this.#absolute(path));
    // Replaced by a file since the walk listed it: a directory made in Riak would refuse
    // that file's upload by every later run. The walk finds it no directory, and lists it.
    if (!stats?.isDirectory()) return true;
    try {
      await this.#o.store.mkdir(path, {
        unlisted: options.unlisted,
        objectStored: () => {
          // Created just now, so empty: its files need no listing from Riak.
          this.#listing?.madeEmpty(path);
          options.objectStored?.();
        },
        ...storedAttributes(stats),
      });
    } catch (error) {
      if (error instanceof AlreadyExistsError) return false;
      throw error;
    }
    return true;
  }

  /**
   * The source directory's attributes, for a parent the store has to make itself (its own
   * step failed, or a directory another host removed meanwhile): not the defaults.
   */
  readonly #localDirectoryAttributes = async (directory: Buffer) => {
    const stats = await lstatIfExists(this.#absolute(directory)).catch(() => undefined);
    return stats?.isDirectory() ? storedAttributes(stats) : undefined;
  };

  /**
   * Counts a failure into `count` (what the entry counted so far) and records it. `retry`:
   * "now" at the end of the run and by the next runs; "subtree" (a directory that could not be
   * read) by the next runs of the pass, walking below it; "next-pass" not before. Riak's entry
   * of another type kept ({@link ReplacedTypeKeptError}) is "subtree": it stays until the
   * operator moves one of the two aside, which the end of this run would not see. `what`: a
   * directory counts apart, as it is not among the files seen.
   */
  #fail(
    path: Buffer,
    error: unknown,
    count: EntryCount,
    retry: "now" | "subtree" | "next-pass" = "now",
    what: "file" | "directory" = "file",
  ): void {
    const bytes = count.delta.seen?.bytes ?? 0;
    if (error instanceof LocalChangedSignal) {
      // Uploaded and verified, but changed locally meanwhile: kept, and retried next time.
      // Riak holds the version before the change, not this one: pending until it does (the
      // bytes moved still count as uploaded, the file not: it is not in Riak).
      for (const key of ["inRiak", "verified"] as const) {
        const counted = count.delta[key];
        if (counted) count.add(key, { files: -counted.files, bytes: -counted.bytes });
      }
      const uploaded = count.delta.uploaded?.files ?? 0;
      if (uploaded > 0) count.add("uploaded", { files: -uploaded, bytes: 0 });
      count.add("busy", { files: 1, bytes });
      this.#noteBusy(path, count);
      return;
    }
    if (error instanceof ReplacedTypeKeptError) retry = "subtree";
    const message = reasonOf(error, displayPath(path));
    count.add(what === "directory" ? "failedDirectories" : "failed", { files: 1, bytes });
    // Riak away file after file: the run stops; the next one resumes where it stopped.
    this.#limits.entryFailed(error);
    this.#keepFailure({
      path,
      error: message,
      counted: count.delta,
      retryNow: retry === "now",
      subtree: retry === "subtree",
    });
    this.#o.onEvent?.({ kind: "failed", path: displayPath(path), error: message });
  }

  #noteBusy(path: Buffer, count: EntryCount): void {
    this.#busy.push(displayPath(path));
    this.#busyRetries.push({ path, counted: count.delta });
  }

  #absolute(path: Buffer): Buffer {
    return Buffer.concat([this.#source, Buffer.from("/"), path]);
  }

  async #finish(
    stopReason: StopReason | undefined,
    walkedToEnd: boolean,
    closesPass: boolean,
  ): Promise<PrewarmResult> {
    const failed = failedEntries(this.#tally) > 0;
    // A file that kept changing is not in Riak: "complete" (exit 0) would tell cron the
    // tree is mirrored, or drained, while it is not.
    // Nor is a drain that kept files in use: they are still to be deleted.
    const done = walkedToEnd && this.#busy.length === 0 && this.#keptActive.length === 0;
    const outcome = failed ? "failed" : done ? "complete" : "partial";
    const exitCode = failed ? EXIT_FAILED : done ? EXIT_COMPLETE : EXIT_PARTIAL;
    const endedAt = new Date().toISOString();
    const startedAt = new Date(this.#startedAt).toISOString();
    const result: PrewarmResult = {
      outcome,
      exitCode,
      stopReason: walkedToEnd ? undefined : stopReason,
      dryRun: this.#o.dryRun === true,
      startedAt,
      endedAt,
      tally: this.#tally,
      failures: this.#failed.first.slice(0, LISTED_FAILURES_LIMIT).map((failure) => ({
        path: displayPath(failure.path),
        error: failure.error,
      })),
      busy: this.#busy,
      keptActive: this.#keptActive,
    };
    if (this.#o.dryRun) return result;
    try {
      await this.#record(result, closesPass);
    } catch (error) {
      // Its files are in Riak (or failed) all the same: the outcome stands, unrecorded.
      if (!isNoRoomError(error)) throw error;
      this.#o.state.forgetRunMarker();
      result.notRecorded = true;
    }
    return result;
  }

  /** Saves the run's state, failure lists and history record; `closesPass`: it is complete. */
  async #record(result: PrewarmResult, closesPass: boolean): Promise<void> {
    const { startedAt, endedAt, outcome, exitCode } = result;
    const retries = await this.#saveFailures(!closesPass);
    if (retries.listed > result.failures.length) {
      result.failuresFile = join(this.#o.state.path, FAILED_LIST_FILE);
    }
    // Read again: `verify` and `progress --rescan` may have recorded results meanwhile.
    const state = this.#o.state.loadState();
    const resumed = this.#state;
    const goesOn = resumed.cursorHex !== undefined && resumed.currentPass !== undefined;
    // A new pass walks none of the local copies earlier drains deleted: it starts with them.
    const pass = goesOn ? resumed.currentPass! : {
      startedAt,
      kind: "prewarm" as const,
      tally: emptyTally(),
      drainedEarlier: drainedSoFar(state),
    };
    addTally(pass.tally, this.#tally);
    // Paths this run counted again were counted by the earlier runs too: once is right.
    if (goesOn) addDelta(pass.tally, this.#passCorrection, -1);
    if (this.#drainedUnrecorded) addDelta(pass.tally, this.#drainedUnrecorded);
    // What `progress --rescan` selects when given no globs of its own.
    pass.globs = (this.#o.filter ?? new PathFilter()).globs;
    // An earlier run's count stands when this run's did not finish.
    if (this.#treeFiles !== undefined) pass.treeFiles = this.#treeFiles;
    if (closesPass) {
      state.lastCompletePass = { ...pass, endedAt };
      delete state.currentPass;
      delete state.cursorHex;
      delete state.cursorGlobs;
    } else {
      state.currentPass = pass;
      state.cursorHex = this.#walk.cursor ? pathToHex(this.#walk.cursor) : undefined;
      state.cursorGlobs = (this.#o.filter ?? new PathFilter()).globs;
    }
    state.retryHex = retries.first;
    state.retryMoreFile = retries.moreFile;
    state.recordedRunStartedAt = startedAt;
    this.#o.state.saveState(state);
    // Only now: a crash before the save keeps the last run's lists, which are retried again.
    this.#removeRetryFilesBut(retries.moreFile);
    // The pass counts every deletion now.
    this.#deletionLog?.close();
    removeDeletionLogs(this.#o.state.path);
    const record: RunRecord = {
      startedAt,
      endedAt,
      command: "prewarm",
      outcome,
      exitCode,
      dryRun: false,
      tally: this.#tally,
      failures: result.failures.map((failure) => failure.path),
    };
    this.#o.state.endRun(record);
  }

  /**
   * Writes every failure to {@link FAILED_LIST_FILE}, and the next run's retry list: what is
   * left of the last run's, this run's failures, what the budget deferred, then the files
   * that kept changing while they were read. The first
   * {@link PrewarmOptions.failuresInMemory} are returned for state.json, the rest go to a new
   * file (`moreFile`, named by {@link RETRY_MORE_PREFIX}) for state.json to name.
   */
  async #saveFailures(
    passGoesOn: boolean,
  ): Promise<{ first: string[]; listed: number; moreFile?: string }> {
    this.#o.state.ensure();
    const failedList = new LineFile(join(this.#o.state.path, FAILED_LIST_FILE));
    const moreFile = `${RETRY_MORE_PREFIX}${Date.now().toString(36)}-${
      randomBytes(4).toString("hex")
    }.txt`;
    const retryMore = new LineFile(join(this.#o.state.path, moreFile));
    const first: string[] = [];
    // What a path counted belongs to this pass only while the pass goes on.
    const retry = (line: string) => {
      const entry = passGoesOn ? line : line.split(" ")[0];
      if (first.length < (this.#o.failuresInMemory ?? RETRY_LIST_LIMIT)) first.push(entry);
      else retryMore.write(entry);
    };
    let listed = 0;
    try {
      if (this.#retriesLeft) { for await (const hex of this.#retriesLeft) retry(hex); }
      for await (const failure of this.#failed.takeAll()) {
        failedList.write(
          JSON.stringify({ path: displayPath(failure.path), error: failure.error }),
        );
        listed++;
        if (failure.retryNow || failure.subtree) {
          const subtree = failure.subtree ? {} : undefined;
          retry(formatRetryEntry(failure.path, failure.counted, subtree));
        }
      }
      for (const hex of this.#notRetried) retry(hex);
      for (const busy of this.#busyRetries) retry(formatRetryEntry(busy.path, busy.counted));
    } catch (error) {
      failedList.abandon();
      retryMore.abandon();
      throw error;
    }
    failedList.commit();
    const written = retryMore.commit();
    return { first, listed, moreFile: written ? moreFile : undefined };
  }

  /** Removes the retry lists state.json no longer names (and those a crash left unnamed). */
  #removeRetryFilesBut(kept: string | undefined): void {
    for (const name of readdirSync(this.#o.state.path)) {
      const isList = name.startsWith(RETRY_MORE_PREFIX) || name === LEGACY_RETRY_MORE_FILE;
      if (isList && name !== kept) {
        rmSync(join(this.#o.state.path, name), { force: true });
      }
    }
  }
}

/**
 * A text file written line by line into a temporary file, which replaces the file on
 * `commit` (an empty one removes it).
 */
class LineFile {
  readonly #path: string;
  readonly #temporary: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.#path = path;
    this.#temporary = `${path}.${process.pid}.tmp`;
  }

  write(line: string): void {
    this.#fd ??= openSync(this.#temporary, "w", 0o644);
    writeSync(this.#fd, line + "\n");
  }

  /** Whether a line was written (the file exists). */
  commit(): boolean {
    if (this.#fd === undefined) {
      rmSync(this.#path, { force: true });
      return false;
    }
    closeSync(this.#fd);
    this.#fd = undefined;
    renameSync(this.#temporary, this.#path);
    return true;
  }

  abandon(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.#temporary, { force: true });
  }
}

/** A counting semaphore: at most `count` holders at once, the rest wait in order. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(count: number) {
    this.#free = count;
  }

  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/**
 * The budget ran out before this entry's transfer, or the run was interrupted during it:
 * leave it to the next run.
 */
class DeferredSignal extends Error {}

/** Whether `error` is, or was caused by, a {@link DeferredSignal} (a store wraps it). */
function isDeferred(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof DeferredSignal) return true;
  }
  return false;
}

/**
 * `gate`, letting no more bytes through once `signal` fired (SIGINT, SIGTERM): the transfers
 * under way stop there (a rate-limited one could take minutes), left for the next run.
 */
function interruptible(gate: ByteGate, signal: AbortSignal | undefined): ByteGate {
  if (!signal) return gate;
  return {
    take: (bytes) => {
      if (signal.aborted) return Promise.reject(new DeferredSignal());
      return untilAborted(gate.take(bytes), signal).then(() => {
        if (signal.aborted) throw new DeferredSignal();
      });
    },
  };
}

/** Resolves when `promise` does, or at once when `signal` fires (then ignoring `promise`). */
function untilAborted(promise: Promise<unknown> | undefined, signal: AbortSignal | undefined) {
  if (!promise || !signal) return promise ?? Promise.resolve();
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(() => resolve(), reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** Uploaded and verified, but the local file changed before it could be deleted. */
class LocalChangedSignal extends Error {}

/** Every byte of a (small) stream in one buffer. */
async function readWhole(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * Files and directories that failed.
 *
 * @example
 * ```ts
 * if (failedEntries(result.tally) > 0) process.exitCode = EXIT_FAILED;
 * ```
 */
export function failedEntries(tally: PassTally): number {
  return tally.failed.files + (tally.failedDirectories?.files ?? 0);
}

/** Why Riak's copy is not the local version (by size and mtime), or undefined if it is. */
function describeDifference(remote: FileStat | undefined, local: BigIntStats): string | undefined {
  if (!remote) return "not in Riak";
  if (remote.type !== "file") return `Riak holds a ${remote.type}`;
  if (BigInt(remote.size) !== local.size) {
    return `size differs (Riak ${remote.size}, local ${local.size})`;
  }
  if (remote.mtimeNs !== local.mtimeNs) return "mtime differs";
  return undefined;
}

/**
 * What one entry (a file, a symlink, a directory) adds to a run's tally, added there as it
 * goes and remembered, so that a retry can take all of it back and count the entry anew.
 */
class EntryCount {
  readonly #tally: PassTally;
  readonly #added: [keyof PassTally, Tally][] = [];

  constructor(tally: PassTally) {
    this.#tally = tally;
  }

  /** Adds `more` to category `key` of the run's tally. */
  add(key: keyof PassTally, more: Tally): void {
    this.#tally[key].files += more.files;
    this.#tally[key].bytes += more.bytes;
    this.#added.push([key, { ...more }]);
  }

  /** A point to {@link undo} back to. */
  mark(): number {
    return this.#added.length;
  }

  /** Takes back from the run's tally what was added since `mark` (default: everything). */
  undo(mark = 0): void {
    for (const [key, less] of this.#added.splice(mark)) {
      this.#tally[key].files -= less.files;
      this.#tally[key].bytes -= less.bytes;
    }
  }

  /** Everything added, by category. */
  get delta(): TallyDelta {
    const delta: TallyDelta = {};
    for (const [key, more] of this.#added) {
      const part = delta[key] ??= { files: 0, bytes: 0 };
      part.files += more.files;
      part.bytes += more.bytes;
    }
    return delta;
  }
}

/**
 * A line of the retry list: a hex path; for a directory whose subtree is to be walked, a
 * `/` and the hex path of the last entry below it already done, if any (hex holds no `/`);
 * then (for a pass that goes on) a space and the JSON of what the run that listed it
 * counted for it in the pass.
 */
function formatRetryEntry(
  path: Buffer | string,
  counted?: TallyDelta,
  subtree?: { after?: Buffer },
): string {
  let head = typeof path === "string" ? path : pathToHex(path);
  if (subtree) head += `/${subtree.after ? pathToHex(subtree.after) : ""}`;
  return counted === undefined || Object.keys(counted).length === 0
    ? head
    : `${head} ${JSON.stringify(counted)}`;
}

/** A line of the retry list (see {@link formatRetryEntry}). */
interface RetryEntry {
  path: Buffer;
  counted?: TallyDelta;
  /** Walk below `path` (after `after`), rather than try `path` itself again. */
  subtree?: { after?: Buffer };
}

function parseRetryEntry(line: string): RetryEntry {
  const space = line.indexOf(" ");
  const head = space < 0 ? line : line.slice(0, space);
  const slash = head.indexOf("/");
  const entry: RetryEntry = { path: pathFromHex(slash < 0 ? head : head.slice(0, slash)) };
  if (slash >= 0) {
    const after = head.slice(slash + 1);
    entry.subtree = after === "" ? {} : { after: pathFromHex(after) };
  }
  if (space < 0) return entry;
  try {
    entry.counted = JSON.parse(line.slice(space + 1)) as TallyDelta;
  } catch {
    // A damaged count only costs the pass's tally its correction.
  }
  return entry;
}

/**
 * What a retry takes back of an earlier attempt's counts: all but the bytes it uploaded,
 * which did move (rates and history count them).
 */
function retried(counted: TallyDelta): TallyDelta {
  const { uploaded: _moved, ...rest } = counted;
  return rest;
}

/**
 * Whether a listed path is retried before the walk: only one the resumed walk will not reach
 * again (at or before its cursor); the walk takes the others in its stride. Below a listed
 * directory (`subtree`) the walk reaches again when it resumes at it or inside it.
 */
function isRetriedNow(path: Buffer, resumeFrom: Buffer | undefined, subtree = false): boolean {
  if (resumeFrom === undefined) return false;
  if (subtree) {
    const inside = resumeFrom.equals(path) ||
      (resumeFrom.length > path.length && resumeFrom[path.length] === 0x2f &&
        resumeFrom.subarray(0, path.length).equals(path));
    if (inside) return false;
  }
  return compareWalkOrder(path, resumeFrom) <= 0;
}
