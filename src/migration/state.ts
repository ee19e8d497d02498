/**
 * What pre-warm runs remember between runs, in a state directory per source and
 * namespace (default `/var/lib/riakfs/<hash>`, or `--state-dir`):
 *
 * - `lock` — the run lock (lock.ts);
 * - `state.json` — the resume cursor and the tallies of the current and the last complete
 *   pass over the tree (a pass may span several budget-limited runs);
 * - `history.jsonl` — one JSON line per run (start, end, files/bytes moved, failures), for
 *   the trend `progress` shows;
 * - `run.json` — the run under way: its start, and its tallies as last saved. A run that never
 *   ended (killed, crashed, its host went down) leaves it behind; `progress` says so, and the
 *   next run records it in the history as "unfinished";
 * - `deleted-<run>-<n>.log` — what a drain deleted since its marker was last saved
 *   (deletion_log.ts), which counts too when it never ends.
 *
 * Everything here is small and read whole: `progress` stays cheap on any tree size.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_STATE_ROOT } from "./defaults.ts";
import { makeDirectories } from "../util/directories.ts";
import { acquireLock, type HeldLock } from "../util/lock.ts";
import { isNoRoomError } from "../util/no_room.ts";
import { isDeletionLogName, readDeletionLog } from "./deletion_log.ts";

/** Files and bytes. */
export interface Tally {
  files: number;
  bytes: number;
}

/** What a pass (or a run) found and did, per category of file. */
export interface PassTally {
  /** Files walked and selected by the globs. */
  seen: Tally;
  /** Riak holds the same version (found so, or uploaded now). */
  inRiak: Tally;
  /**
   * Of `inRiak`: uploaded by this pass/run. Files are counted once each, however many attempts
   * it took (one whose local copy changed before its deletion is not in Riak, and not
   * counted); bytes are every byte of the uploads that completed, sent again ones included.
   */
  uploaded: Tally;
  /** Of `inRiak`: sha256 of the Riak copy matched the local file. */
  verified: Tally;
  /**
   * Of `inRiak`: the content was there, the mode or owner not (a chmod or chown after the
   * upload); updated in Riak.
   */
  attributesUpdated: Tally;
  /** Of `inRiak`: Riak holds a newer version (written through the mount); left alone. */
  newerInRiak: Tally;
  /** Riak holds another version, not updated (dry run or rescan). */
  differing: Tally;
  /** Riak lacks the file, not uploaded (dry run or rescan). */
  missing: Tally;
  /** Changed while being uploaded every time it was tried: skipped, next run retries. */
  busy: Tally;
  /** Failed (Riak or local error); listed. */
  failed: Tally;
  /**
   * Directories that failed (not created in Riak, or not readable); listed. Apart from
   * `failed`, which counts files as `seen` does.
   */
  failedDirectories: Tally;
  /** Local copies deleted after verification (`--delete-local`). */
  deleted: Tally;
  /**
   * Of `inRiak`: verified, but the local copy was kept (`--delete-local`) as still in use:
   * open for writing by another process, or changed within the quiet period.
   */
  keptActive: Tally;
  /**
   * FIFOs, sockets and device nodes: Riak holds only files, symlinks and directories, so they
   * stay where they are (a drain leaves them) and are counted apart, not in `seen`.
   */
  special: Tally;
  /**
   * Directories below SOURCE where another filesystem is mounted (a share, a riakfs mount):
   * not walked, so nothing below them is uploaded or drained; counted apart, not in `seen`.
   */
  mountPoints: Tally;
}

/** The categories of a {@link PassTally}. */
export const TALLY_KEYS = [
  "seen",
  "inRiak",
  "uploaded",
  "verified",
  "attributesUpdated",
  "newerInRiak",
  "differing",
  "missing",
  "busy",
  "failed",
  "failedDirectories",
  "deleted",
  "keptActive",
  "special",
  "mountPoints",
] as const satisfies readonly (keyof PassTally)[];

/** An all-zero tally. */
export function emptyTally(): PassTally {
  const tally = {} as PassTally;
  for (const key of TALLY_KEYS) tally[key] = { files: 0, bytes: 0 };
  return tally;
}

/** What one entry (a file, a symlink, a directory) added to a tally, by category. */
export type TallyDelta = Partial<Record<keyof PassTally, Tally>>;

/** Adds `delta` into `into` (`sign` -1: takes it back, never below zero). */
export function addDelta(into: PassTally, delta: TallyDelta, sign: 1 | -1 = 1): void {
  for (const key of TALLY_KEYS) {
    const part = delta[key];
    if (!part) continue;
    into[key] ??= { files: 0, bytes: 0 };
    into[key].files = Math.max(0, into[key].files + sign * part.files);
    into[key].bytes = Math.max(0, into[key].bytes + sign * part.bytes);
  }
}

/** Adds `more` into `into`. */
export function addTally(into: PassTally, more: PassTally): void {
  for (const key of TALLY_KEYS) {
    // Tallies read from an older state.json may lack a category.
    into[key] ??= { files: 0, bytes: 0 };
    into[key].files += more[key]?.files ?? 0;
    into[key].bytes += more[key]?.bytes ?? 0;
  }
}

/** What local copies a drain deleted count in a pass: seen, in Riak, verified and deleted. */
export function drainedDelta(deleted: Tally): TallyDelta {
  return { seen: deleted, inRiak: deleted, verified: deleted, deleted };
}

/**
 * The local copies the drains of SOURCE deleted up to now, as recorded: those before the pass
 * in progress (else the last complete pass or rescan) and those it deleted itself. The next
 * pass or rescan starts with them.
 */
export function drainedSoFar(state: MigrationState): Tally {
  const pass = state.currentPass ?? state.lastCompletePass;
  const earlier = pass?.drainedEarlier ?? { files: 0, bytes: 0 };
  const own = pass?.tally.deleted ?? { files: 0, bytes: 0 };
  return { files: earlier.files + own.files, bytes: earlier.bytes + own.bytes };
}

/** A pass over the tree, from its first run's start. */
export interface PassRecord {
  startedAt: string;
  endedAt?: string;
  /** "prewarm" (may have spanned runs) or "rescan" (one read-only walk). */
  kind: "prewarm" | "rescan";
  tally: PassTally;
  /**
   * Files in the tree as the last run of a first pass that finished counting it counted
   * (names only, alongside the run): what `progress` estimates the pass's total by.
   */
  treeFiles?: number;
  /** The `--include`/`--exclude` globs it walked with (absent in states of earlier builds). */
  globs?: Globs;
  /**
   * Of a rescan made while a pre-warm pass was in progress: that pass (by its start) and its
   * tally then. The rescan's figures already hold what the pass had done; only what its runs
   * did afterwards is added to them.
   */
  passInProgress?: { startedAt: string; tally: PassTally };
  /**
   * The local copies drains (`--delete-local`) deleted before this pass (or rescan) began, as
   * they were when deleted: no walk of it sees them, and they are in Riak (verified before
   * their deletion), so `progress` counts them in the tree. Absent: none, or a state of an
   * earlier build.
   */
  drainedEarlier?: Tally;
}

/** state.json. */
export interface MigrationState {
  format: "riakfs-migration-state/1";
  /** Where the next pre-warm resumes: hex of the last finished path (walk order). */
  cursorHex?: string;
  /**
   * The `--include`/`--exclude` globs of the runs that walked up to {@link cursorHex}: a run
   * with others starts a new pass, since the files they selected differently lie behind the
   * cursor, where the pass never goes back. Absent in states of earlier builds.
   */
  cursorGlobs?: Globs;
  /** The pass in progress (resumed by the next run), if any. */
  currentPass?: PassRecord;
  /** The most recent complete pass or rescan. */
  lastCompletePass?: PassRecord;
  /**
   * Paths the last run left to retry (capped; the rest in {@link retryMoreFile}): hex, then,
   * while their pass goes on, a space and the JSON of what they counted in it (see prewarm.ts).
   */
  retryHex?: string[];
  /** The file in the state directory listing the rest of the paths to retry, as `retryHex`. */
  retryMoreFile?: string;
  /** The last `verify` of the whole tree. */
  lastVerify?: VerifyRecord;
  /**
   * The start of the last pre-warm run whose tallies this state holds: one that died right
   * after saving it, before its history record, is not added to its pass again.
   */
  recordedRunStartedAt?: string;
}

/** Include and exclude globs, as given. */
export interface Globs {
  include: string[];
  exclude: string[];
}

/** What a whole-tree `verify` found. */
export interface VerifyRecord {
  endedAt: string;
  checked: Tally;
  /** Byte-identical in Riak. */
  matched: Tally;
  /** Files that differ in Riak or are missing there. */
  differing: number;
  /** Their bytes (absent in records of earlier builds). */
  differingBytes?: number;
  /** The first of them ({@link HISTORY_FAILURES_LIMIT}), as `progress` lists them. */
  differences?: { path: string; status: string; detail?: string }[];
}

/** Failed paths a history record keeps (failed.jsonl lists them all). */
export const HISTORY_FAILURES_LIMIT = 20;
/** Size of history.jsonl past which its oldest records are dropped (a few years of nights). */
export const HISTORY_MAX_BYTES = 1024 * 1024;
/** The marker of the run under way, in the state directory (see {@link RunMarker}). */
export const RUN_MARKER_FILE = "run.json";

/** One line of history.jsonl. */
export interface RunRecord {
  startedAt: string;
  /** For an "unfinished" run: when it last saved its tallies, the last sign of it alive. */
  endedAt: string;
  command: "prewarm" | "rescan";
  /** "unfinished": the run never ended (killed, crashed, its host went down). */
  outcome: "complete" | "failed" | "partial" | "unfinished";
  /** Null for an "unfinished" run, which never exited on its own. */
  exitCode: number | null;
  dryRun: boolean;
  tally: PassTally;
  /** The first failed paths (display form), capped. */
  failures: string[];
}

/** run.json: a pre-warm under way, or one that never ended. */
export interface RunMarker {
  startedAt: string;
  pid: number;
  /** When {@link tally} was saved. */
  savedAt: string;
  /** What the run had counted by then. */
  tally: PassTally;
  /**
   * The deletion log (deletion_log.ts) of what the run deleted after {@link savedAt}, which
   * {@link tally} lacks. Absent in markers of earlier builds.
   */
  deletionLog?: string;
  /**
   * The local copies runs that died before this one deleted, which no pass counts yet: this
   * run adds them to its pass, or, if it dies too, the next one does.
   */
  drainedUnrecorded?: Tally;
}

/** The history record of a run that left `marker` and never ended. */
export function unfinishedRecord(marker: RunMarker): RunRecord {
  return {
    startedAt: marker.startedAt,
    endedAt: marker.savedAt,
    command: "prewarm",
    outcome: "unfinished",
    exitCode: null,
    dryRun: false,
    tally: marker.tally,
    failures: [],
  };
}

function freshState(): MigrationState {
  return { format: "riakfs-migration-state/1" };
}

/** What is wrong with a parsed state.json, or undefined when it has the expected shape. */
function stateProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const state = value as Record<string, unknown>;
  if (state.format !== "riakfs-migration-state/1") {
    return `format ${JSON.stringify(state.format)}`;
  }
  for (const key of ["cursorHex", "retryMoreFile", "recordedRunStartedAt"]) {
    if (state[key] !== undefined && typeof state[key] !== "string") return `${key} is not a text`;
  }
  const retries = state.retryHex;
  if (retries !== undefined && !(Array.isArray(retries) && retries.every(isText))) {
    return "retryHex is not a list of texts";
  }
  for (const key of ["currentPass", "lastCompletePass"]) {
    const pass = state[key] as { tally?: unknown } | undefined;
    if (pass === undefined) continue;
    if (typeof pass !== "object" || pass === null || !isTally(pass.tally)) {
      return `${key} is not a pass with a tally`;
    }
  }
  return undefined;
}

function isText(value: unknown): boolean {
  return typeof value === "string";
}

/** A tally: each category present holds whole numbers of files and bytes. */
function isTally(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).every((entry) =>
    typeof entry === "object" && entry !== null &&
    Number.isFinite((entry as Tally).files) && Number.isFinite((entry as Tally).bytes)
  );
}

/** The state directory of one source and namespace. */
export class StateDirectory {
  /** Absolute path of the directory. */
  readonly path: string;
  readonly #warn: (message: string) => void;

  /** `warn` hears of a damaged state.json (set aside, and started over). */
  constructor(path: string, warn: (message: string) => void = () => {}) {
    this.path = resolve(path);
    this.#warn = warn;
  }

  /**
   * The directory for `source` and a namespace identity under `root`: a stable hash of
   * the source's real path and the namespace, so each pair gets its own lock and history.
   */
  static for(
    source: string,
    namespaceKey: string,
    root: string = DEFAULT_STATE_ROOT,
    warn?: (message: string) => void,
  ) {
    let real: string;
    try {
      real = realpathSync(source);
    } catch {
      real = resolve(source);
    }
    const hash = createHash("sha256").update(`${real}\0${namespaceKey}`).digest("hex");
    return new StateDirectory(join(root, hash.slice(0, 16)), warn);
  }

  /** The lock file's path. */
  get lockFile(): string {
    return join(this.path, "lock");
  }

  /**
   * Takes the lock of the runs on this source and namespace (see `acquireLock`, which throws
   * `LockedError` while another run holds it). A lock needs no byte, but an inode: on a disk
   * without one left (many small files), this says what to do instead of a bare ENOSPC.
   */
  lock(): HeldLock {
    try {
      return acquireLock(this.lockFile);
    } catch (error) {
      if (!isNoRoomError(error)) throw error;
      throw new Error(
        `cannot take the lock ${this.lockFile}: ${(error as Error).message} (its disk has no ` +
          "room left, not even an inode: give --state-dir on another filesystem, or free a " +
          "few files there first)",
        { cause: error },
      );
    }
  }

  /** Creates the directory (and parents) if missing. */
  ensure(): void {
    try {
      makeDirectories(this.path, 0o755);
    } catch (error) {
      // Once it is there, a full disk no longer stops a run (its lock needs no byte).
      const hint = isNoRoomError(error)
        ? " (the disk is full: give --state-dir on another filesystem, or free a few KiB " +
          "first; a drain mount frees it as files are read)"
        : "";
      throw new Error(
        `cannot make the state directory ${this.path}: ${(error as Error).message}${hint}`,
        { cause: error },
      );
    }
  }

  /**
   * Reads state.json; a missing file gives a fresh state. A damaged one (not JSON, another
   * format, fields of the wrong shape) is renamed to `state.json.damaged-<time>`, said to
   * `warn`, and gives a fresh state too: the walk checks everything against Riak again.
   * Passes of earlier builds get the copies drains deleted before them from the history.
   */
  loadState(): MigrationState {
    const file = join(this.path, "state.json");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return freshState();
      throw error;
    }
    let problem: string | undefined;
    try {
      const value = JSON.parse(text);
      problem = stateProblem(value);
      if (problem === undefined) {
        return withDrainedEarlierOfHistory(value as MigrationState, this.readHistory());
      }
    } catch (error) {
      problem = (error as Error).message;
    }
    const aside = `${file}.damaged-${new Date().toISOString().replace(/[-:.]/g, "")}`;
    renameSync(file, aside);
    this.#warn(`${file} is damaged (${problem}); kept as ${aside}, starting over`);
    return freshState();
  }

  /** Writes state.json atomically (write, then rename over). */
  saveState(state: MigrationState): void {
    this.ensure();
    const file = join(this.path, "state.json");
    replaceWhole(file, `${file}.${process.pid}.tmp`, JSON.stringify(state, null, 1) + "\n");
  }

  /**
   * Appends one run to history.jsonl (with at most {@link HISTORY_FAILURES_LIMIT} of its
   * failed paths). Past {@link HISTORY_MAX_BYTES} the oldest runs go, down to half of it:
   * `progress` reads the file on every call.
   */
  appendHistory(record: RunRecord): void {
    this.ensure();
    const file = join(this.path, "history.jsonl");
    const line = JSON.stringify({
      ...record,
      failures: record.failures.slice(0, HISTORY_FAILURES_LIMIT),
    });
    // A line cut short by a crash must not swallow the next record.
    const separator = endsWithNewline(file) ? "" : "\n";
    appendFileSync(file, separator + line + "\n");
    if (statSync(file).size <= HISTORY_MAX_BYTES) return;
    const kept: string[] = [];
    let bytes = 0;
    const lines = readFileSync(file, "utf8").split("\n").filter((text) => text.trim() !== "");
    for (let index = lines.length - 1; index >= 0; index--) {
      bytes += Buffer.byteLength(lines[index]) + 1;
      if (bytes > HISTORY_MAX_BYTES / 2) break;
      kept.unshift(lines[index]);
    }
    replaceWhole(file, `${file}.tmp`, kept.map((text) => `${text}\n`).join(""));
  }

  /**
   * Marks a run as under way (run.json). A marker left by a run that never ended first becomes
   * its history record (see {@link unfinishedRecord}), which is returned.
   */
  beginRun(marker: RunMarker): RunRecord | undefined {
    const left = this.unfinishedRun();
    const record = left && unfinishedRecord(this.withLoggedDeletions(left));
    if (record) this.appendHistory(record);
    this.saveRunMarker(marker);
    return record;
  }

  /** Saves the marker of the run under way again, with its tallies so far. */
  saveRunMarker(marker: RunMarker): void {
    this.ensure();
    const file = join(this.path, RUN_MARKER_FILE);
    replaceWhole(file, `${file}.${process.pid}.tmp`, JSON.stringify(marker) + "\n");
  }

  /** Records the end of the run under way: its history record replaces its marker. */
  endRun(record: RunRecord): void {
    this.appendHistory(record);
    this.forgetRunMarker();
  }

  /**
   * Removes the marker of the run under way without a record of it (its disk had no room for
   * one): the run ended, and must not be taken for one that died.
   */
  forgetRunMarker(): void {
    rmSync(join(this.path, RUN_MARKER_FILE), { force: true });
  }

  /**
   * `marker` with the deletions its run logged after saving it added to its tallies (seen, in
   * Riak, verified and deleted, as each deleted copy was): what the run counted up to its end,
   * killed at any moment.
   */
  withLoggedDeletions(marker: RunMarker): RunMarker {
    if (!isDeletionLogName(marker.deletionLog)) return marker;
    const logged = readDeletionLog(this.path, marker.deletionLog);
    if (logged.files === 0) return marker;
    const tally = structuredClone(marker.tally);
    addDelta(tally, drainedDelta(logged));
    return { ...marker, tally };
  }

  /**
   * The marker of a run that began and has not ended: one under way, or one that died. A run
   * whose record made it to the history before it died is not one (nor is a damaged marker).
   */
  unfinishedRun(): RunMarker | undefined {
    let marker: RunMarker;
    try {
      marker = JSON.parse(readFileSync(join(this.path, RUN_MARKER_FILE), "utf8"));
    } catch {
      return undefined;
    }
    if (
      typeof marker !== "object" || marker === null || typeof marker.startedAt !== "string" ||
      typeof marker.savedAt !== "string" || !Number.isSafeInteger(marker.pid) ||
      !isTally(marker.tally) ||
      (marker.drainedUnrecorded !== undefined && !isTally({ earlier: marker.drainedUnrecorded }))
    ) return undefined;
    return this.readHistory().at(-1)?.startedAt === marker.startedAt ? undefined : marker;
  }

  /**
   * Every recorded run, oldest first; damaged lines (not JSON, or not of a record's shape: an
   * edit by hand, a line from another tool) are skipped.
   */
  readHistory(): RunRecord[] {
    let text: string;
    try {
      text = readFileSync(join(this.path, "history.jsonl"), "utf8");
    } catch {
      return [];
    }
    const records: RunRecord[] = [];
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const record = JSON.parse(line);
        if (isRunRecord(record)) records.push(record);
      } catch {
        // A line cut short by a crash: ignore it.
      }
    }
    return records;
  }
}

/**
 * Gives each pass an earlier build saved (without `drainedEarlier`) the local copies the runs
 * before it deleted, as their history records count them: those builds kept no account of
 * them, so after a drain's second pass its totals shrank to what SOURCE still held, and an
 * upgrade mid-migration carried that on into every later pass. None deleted: left absent.
 */
function withDrainedEarlierOfHistory(
  state: MigrationState,
  history: RunRecord[],
): MigrationState {
  for (const pass of [state.currentPass, state.lastCompletePass]) {
    if (typeof pass?.startedAt !== "string" || pass.drainedEarlier !== undefined) continue;
    const earlier = { files: 0, bytes: 0 };
    for (const record of history) {
      if (record.dryRun || record.startedAt >= pass.startedAt) continue;
      earlier.files += record.tally.deleted?.files ?? 0;
      earlier.bytes += record.tally.deleted?.bytes ?? 0;
    }
    if (earlier.files > 0) pass.drainedEarlier = earlier;
  }
  return state;
}

/** Whether a parsed history line has what `progress` and the rate read of a record. */
function isRunRecord(value: unknown): value is RunRecord {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  const tally = record.tally as Record<string, unknown> | undefined;
  return typeof record.startedAt === "string" && typeof record.endedAt === "string" &&
    typeof record.command === "string" && typeof record.outcome === "string" &&
    (record.exitCode === null || typeof record.exitCode === "number") &&
    isTally(tally) && tally!.uploaded !== undefined &&
    Array.isArray(record.failures) && record.failures.every(isText);
}

function endsWithNewline(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return true;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    closeSync(fd);
  }
}

/** Hex form of a path, for JSON (paths are bytes). */
export function pathToHex(path: Uint8Array): string {
  return Buffer.from(path).toString("hex");
}

/** Inverse of {@link pathToHex}. */
export function pathFromHex(hex: string): Buffer {
  return Buffer.from(hex, "hex");
}

/**
 * Replaces `file` with `text` (written to `temporary`, renamed over). A temporary file the
 * write could not finish (a full disk) is removed: it would hold room the disk needs, and
 * nobody would remove it later.
 */
function replaceWhole(file: string, temporary: string, text: string): void {
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
