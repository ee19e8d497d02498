/**
 * How far a migration has come, from what pre-warm runs recorded (cheap at any tree size:
 * two small files are read), or from a fresh read-only pass over the tree (`--rescan`).
 *
 * Figures come from the last complete pass over the tree; while a pass is in progress, the
 * part it has covered replaces the same share of the last complete pass (an estimate,
 * flagged as such). A rescan during a pass is exact as it is; the pass's runs after it add
 * what they uploaded (an estimate again). The ETA divides what is pending by the recent
 * nightly rate: bytes and files moved per calendar day over the last
 * {@link RATE_WINDOW_DAYS} days with runs.
 *
 * @module
 */
import { liveHolderPid } from "../util/lock.ts";
import { isNoRoomError } from "../util/no_room.ts";
import { PathFilter } from "./glob.ts";
import { failedEntries, type PrewarmOptions, runPrewarm } from "./prewarm.ts";
import {
  addDelta,
  addTally,
  drainedDelta,
  drainedSoFar,
  emptyTally,
  type MigrationState,
  type PassRecord,
  type PassTally,
  type RunRecord,
  type StateDirectory,
  type Tally,
  TALLY_KEYS,
  unfinishedRecord,
  type VerifyRecord,
} from "./state.ts";

/** Days with runs the nightly rate is averaged over. */
export const RATE_WINDOW_DAYS = 7;

/** What `riakfs progress` reports. */
export interface ProgressReport {
  /** False when nothing was recorded yet (no pass, no rescan). */
  known: boolean;
  /** Files and bytes in the tree (selected by the globs the runs used). */
  total: Tally;
  /** True when no pass has covered the whole tree yet: `total` is at least this much. */
  totalIsLowerBound: boolean;
  /**
   * During a first pass, the tree's size by the count its runs made of it (names only): its
   * files, and bytes at the mean size of the files seen so far. The ETA is then from it (an
   * estimate); the other figures still stand for what the pass has reached.
   */
  estimatedTotal?: Tally;
  /** True when figures mix a pass in progress with the last complete pass. */
  estimated: boolean;
  /**
   * A pass is in progress that has not covered the tree since its last complete pass or
   * rescan: the ETA is never 0 ("done") then.
   */
  passUnfinished: boolean;
  inRiak: Tally;
  /**
   * Of `inRiak`: Riak holds a newer version (written through the mount); the older local copy
   * is left where it is, also by a drain.
   */
  newerInRiak: Tally;
  /**
   * Of `inRiak`: local copies a drain (`--delete-local`) kept as still in use (open for
   * writing by another process, or changed within the quiet period), as `tally.keptActive` of
   * a pre-warm. They are still in SOURCE: the next run retries them, and the ETA is never 0
   * ("done") while any remain.
   */
  keptActive: Tally;
  /**
   * Local copies a drain mount kept after their transfer (in use, changed since they were
   * hashed, or Riak's copy read back differently), as its spool records them
   * (src/migration/kept_copies.ts): those still in SOURCE, at their size now. Not done while
   * any remain, as for {@link keptActive}.
   */
  keptByMount: Tally;
  /**
   * Of `inRiak`: local copies drains (`prewarm --delete-local`) deleted once verified in Riak,
   * over all their passes, as they were when deleted (no walk sees them again).
   */
  drained: Tally;
  /**
   * The share of the tree's total in Riak, 0 to 1 (by bytes; by files where the tree holds no
   * bytes); undefined while no pass has covered the whole tree (the total is only what the
   * first pass reached, of which all can be in Riak) or when the tree is empty.
   */
  inRiakShare?: number;
  verified: Tally;
  /**
   * Not in Riak in their current version yet (missing, differing, busy, not yet covered);
   * failed files are not among them, but are still to do as well: the ETA counts both.
   */
  pending: Tally;
  differing: Tally;
  failed: Tally;
  /** Directories that failed (not among the files of `total`); still to do. */
  failedDirectories: Tally;
  /**
   * FIFOs, sockets and device nodes in the tree: never in Riak, not in `total`, and left in
   * place by a drain.
   */
  special: Tally;
  /** Mount points of other filesystems below SOURCE: not walked, left in place by a drain. */
  mountPoints: Tally;
  /** Files the pass in progress has covered so far. */
  currentPassCovered?: Tally;
  lastCompletePass?: Pick<PassRecord, "kind" | "startedAt" | "endedAt" | "globs">;
  /** The last whole-tree `verify`. */
  lastVerify?: VerifyRecord;
  /** Moved per day at the recent nightly rate. */
  dailyRate?: { bytes: number; files: number; days: number };
  /**
   * Days until nothing is pending at that rate; undefined when unknown, or when nothing is
   * pending but local copies kept ({@link keptActive}, {@link keptByMount}), still to delete.
   */
  etaDays?: number;
  /**
   * The last run but one under way: outcome "unfinished" when it never ended (killed, crashed,
   * its host went down), `endedAt` then being when it was last seen.
   */
  lastRun?: Pick<RunRecord, "startedAt" | "endedAt" | "outcome" | "exitCode" | "failures">;
  /** A pre-warm under way now (its process holds the lock). */
  runInProgress?: { startedAt: string; pid: number };
  runs: number;
}

/**
 * Builds the report from the state directory, with the local copies a drain mount kept
 * (`keptByMount`, from its spool; none by default).
 */
export function progressFromState(
  state: StateDirectory,
  keptByMount: Tally = { files: 0, bytes: 0 },
): ProgressReport {
  const saved = state.loadState();
  const history = state.readHistory();
  const last = saved.lastCompletePass?.tally;
  const current = saved.currentPass?.tally;
  const { figures, estimated, passUnfinished } = passFigures(
    saved.lastCompletePass,
    saved.currentPass,
  );
  if (saved.lastVerify && last !== undefined) withVerifyDifferences(figures, saved.lastVerify);
  const pending = {
    files: Math.max(0, figures.seen.files - figures.inRiak.files - figures.failed.files),
    bytes: Math.max(0, figures.seen.bytes - figures.inRiak.bytes - figures.failed.bytes),
  };
  const report: ProgressReport = {
    known: last !== undefined || current !== undefined,
    total: figures.seen,
    totalIsLowerBound: last === undefined,
    estimated,
    passUnfinished,
    inRiak: figures.inRiak,
    newerInRiak: figures.newerInRiak,
    keptActive: figures.keptActive,
    keptByMount,
    drained: figures.deleted,
    verified: figures.verified,
    pending,
    differing: figures.differing,
    failed: figures.failed,
    failedDirectories: figures.failedDirectories,
    special: figures.special,
    mountPoints: figures.mountPoints,
    currentPassCovered: current?.seen,
    lastCompletePass: saved.lastCompletePass && {
      kind: saved.lastCompletePass.kind,
      startedAt: saved.lastCompletePass.startedAt,
      endedAt: saved.lastCompletePass.endedAt,
      globs: saved.lastCompletePass.globs,
    },
    runs: history.length,
    lastVerify: saved.lastVerify,
  };
  const treeFiles = last === undefined ? saved.currentPass?.treeFiles : undefined;
  if (treeFiles !== undefined) report.estimatedTotal = estimatedTree(treeFiles, figures.seen);
  if (!report.totalIsLowerBound) {
    const share = shareOf(report.inRiak, report.total);
    if (share !== undefined) report.inRiakShare = share;
  }
  // A whole-tree verify is the stronger word on what is byte-identical in Riak.
  if (saved.lastVerify && saved.lastVerify.matched.files > report.verified.files) {
    report.verified = saved.lastVerify.matched;
  }
  // Files removed since they were verified are no longer in the tree, nor verified.
  report.verified = {
    files: Math.min(report.verified.files, report.inRiak.files),
    bytes: Math.min(report.verified.bytes, report.inRiak.bytes),
  };
  const rate = dailyRate(history);
  if (rate) {
    report.dailyRate = rate;
    // Failures are still to do: never "done" while any remain.
    const toDo = {
      files: pending.files + figures.failed.files + figures.failedDirectories.files,
      bytes: pending.bytes + figures.failed.bytes,
    };
    if (report.estimatedTotal) {
      // What the first pass has not reached yet is all still to do, by its count of the tree.
      toDo.files += report.estimatedTotal.files - report.total.files;
      toDo.bytes += report.estimatedTotal.bytes - report.total.bytes;
    }
    const eta = !report.totalIsLowerBound || report.estimatedTotal
      ? etaDays(toDo, rate)
      : undefined;
    // What the pass has not reached may have changed since it was last looked at, and local
    // copies kept (in use, by a pre-warm or a mount) are still to be deleted: not done.
    const leftOver = passUnfinished || report.keptActive.files > 0 || keptByMount.files > 0;
    if (eta !== undefined && !(eta === 0 && leftOver)) report.etaDays = eta;
  }
  const unfinished = state.unfinishedRun();
  const running = unfinished && liveHolderPid(state.lockFile) === unfinished.pid;
  if (running) report.runInProgress = { startedAt: unfinished.startedAt, pid: unfinished.pid };
  // A run that began and died is the last run, though the history does not have it yet.
  const lastRun = unfinished && !running ? unfinishedRecord(unfinished) : history.at(-1);
  if (lastRun) {
    report.lastRun = {
      startedAt: lastRun.startedAt,
      endedAt: lastRun.endedAt,
      outcome: lastRun.outcome,
      exitCode: lastRun.exitCode,
      failures: lastRun.failures,
    };
  }
  return report;
}

/**
 * The figures of the tree: the last complete pass's, with what the pass in progress did.
 * A pass that began after it replaces the share of it that the pass has covered (an
 * estimate). A rescan made during the pass in progress counted what the pass had done by
 * then: its figures are exact as they are, and only the files the pass uploaded since move
 * from missing (or differing) to in Riak (an estimate again). The local copies drains deleted
 * before the pass (or rescan) the figures start from are added: no walk of it saw them.
 */
function passFigures(
  last: PassRecord | undefined,
  current: PassRecord | undefined,
): { figures: PassTally; estimated: boolean; passUnfinished: boolean } {
  const figures = emptyTally();
  if (!last || !current) {
    const only = last ?? current;
    if (only) addTally(figures, only.tally);
    addDelta(figures, drainedDelta(only?.drainedEarlier ?? { files: 0, bytes: 0 }));
    return { figures, estimated: false, passUnfinished: current !== undefined };
  }
  if (last.kind === "rescan" && last.passInProgress?.startedAt === current.startedAt) {
    addTally(figures, last.tally);
    const since = tallySince(current.tally, last.passInProgress.tally);
    const uploaded = Math.min(
      since.uploaded.files,
      figures.seen.files - figures.inRiak.files - figures.failed.files,
    );
    const fromMissing = Math.min(uploaded, figures.missing.files);
    figures.missing.files -= fromMissing;
    figures.differing.files = Math.max(0, figures.differing.files - (uploaded - fromMissing));
    figures.inRiak.files += uploaded;
    figures.inRiak.bytes = Math.min(
      figures.seen.bytes,
      figures.inRiak.bytes + since.uploaded.bytes,
    );
    // A rescan deletes nothing, so it sees no copy kept in use: the pass's count of them stands.
    figures.keptActive = { ...(current.tally.keptActive ?? { files: 0, bytes: 0 }) };
    // The rescan saw those deleted since in SOURCE, and counted them in the tree already.
    figures.deleted.files += since.deleted.files;
    figures.deleted.bytes += since.deleted.bytes;
    addDelta(figures, drainedDelta(last.drainedEarlier ?? { files: 0, bytes: 0 }));
    // The rescan looked at the whole tree after the pass's earlier runs.
    return { figures, estimated: since.seen.files > 0, passUnfinished: false };
  }
  if (last.kind === "rescan" && last.startedAt > current.startedAt) {
    // Made during this pass by an earlier build, which kept no account of the pass then:
    // its figures, without what the pass's runs may have done since.
    addTally(figures, last.tally);
    return { figures, estimated: true, passUnfinished: false };
  }
  // What the last pass drained is no longer in SOURCE, where this pass walks: the pass in
  // progress starts with it (drainedEarlier), and covers a share of the rest.
  const before = emptyTally();
  addTally(before, last.tally);
  addDelta(before, drainedDelta({ ...before.deleted }), -1);
  const covered = before.seen.files > 0
    ? Math.min(1, current.tally.seen.files / before.seen.files)
    : 1;
  for (const key of TALLY_KEYS) {
    const now = current.tally[key] ?? { files: 0, bytes: 0 };
    figures[key].files = Math.round(now.files + before[key].files * (1 - covered));
    figures[key].bytes = Math.round(now.bytes + before[key].bytes * (1 - covered));
  }
  addDelta(figures, drainedDelta(current.drainedEarlier ?? { files: 0, bytes: 0 }));
  return { figures, estimated: true, passUnfinished: true };
}

/**
 * Counts the files the last whole-tree verify found differing or missing in Riak as differing,
 * and so not in Riak, where the pass figures (which compare sizes and mtimes only) have fewer:
 * they stand until a verify finds them gone. Files newer in Riak are among verify's
 * differences (the local copy is the older one), and stay in Riak; so are the files a rescan
 * found missing, which are not in Riak already.
 */
function withVerifyDifferences(figures: PassTally, verify: VerifyRecord): void {
  const known = {
    files: figures.differing.files + figures.newerInRiak.files + figures.missing.files,
    bytes: figures.differing.bytes + figures.newerInRiak.bytes + figures.missing.bytes,
  };
  const extra = {
    files: Math.min(figures.inRiak.files, verify.differing - known.files),
    bytes: Math.min(figures.inRiak.bytes, (verify.differingBytes ?? 0) - known.bytes),
  };
  if (extra.files <= 0) return;
  figures.differing.files += extra.files;
  figures.differing.bytes += Math.max(0, extra.bytes);
  figures.inRiak.files -= extra.files;
  figures.inRiak.bytes -= Math.max(0, extra.bytes);
}

/** What `now` counts beyond `then`, per category (never below zero). */
function tallySince(now: PassTally, then: PassTally): PassTally {
  const since = emptyTally();
  for (const key of TALLY_KEYS) {
    since[key].files = Math.max(0, (now[key]?.files ?? 0) - (then[key]?.files ?? 0));
    since[key].bytes = Math.max(0, (now[key]?.bytes ?? 0) - (then[key]?.bytes ?? 0));
  }
  return since;
}

/** The tree by a count of its `files`, with bytes at the mean size of the files `seen`. */
function estimatedTree(files: number, seen: Tally): Tally {
  const counted = Math.max(files, seen.files);
  const meanSize = seen.files > 0 ? seen.bytes / seen.files : 0;
  return {
    files: counted,
    bytes: Math.max(seen.bytes, Math.round(seen.bytes + (counted - seen.files) * meanSize)),
  };
}

/** `part`'s share of `whole`: by bytes, by files where `whole` has none; undefined if empty. */
function shareOf(part: Tally, whole: Tally): number | undefined {
  if (whole.bytes > 0) return part.bytes / whole.bytes;
  return whole.files > 0 ? part.files / whole.files : undefined;
}

/** A rescan that could not check every file: nothing of it is recorded. */
export class RescanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RescanError";
  }
}

/**
 * Walks the whole tree read-only (a dry-run pre-warm: one head-only get per file) and
 * records the result as the latest complete pass, then reports. A file it could not check
 * (Riak unreachable, say) fails it with {@link RescanError}, recording nothing.
 */
export async function rescan(
  options: Pick<PrewarmOptions, "source" | "store" | "state" | "filter" | "concurrency">,
  keptByMount?: Tally,
): Promise<ProgressReport> {
  const startedAt = new Date().toISOString();
  // One run at a time, as for a pre-warm: its state save and this one must not cross.
  options.state.ensure();
  const lock = options.state.lock();
  try {
    const saved = options.state.loadState();
    // A total of other files than the runs move would make figures and ETA of another tree.
    const filter = options.filter ?? recordedFilter(saved) ?? new PathFilter();
    const result = await runPrewarm({ ...options, filter, dryRun: true });
    if (failedEntries(result.tally) > 0) {
      // A Riak that could not be asked would record every file as missing from it.
      const first = result.failures[0];
      throw new RescanError(
        `rescan could not check ${failedEntries(result.tally)} file(s) or directories` +
          (first ? ` (${first.path}: ${first.error})` : "") + "; what was recorded is kept",
      );
    }
    const before = saved.lastCompletePass;
    saved.lastCompletePass = {
      kind: "rescan",
      startedAt,
      endedAt: result.endedAt,
      tally: result.tally,
      globs: filter.globs,
      // Not in SOURCE, where it walks, but in Riak: what drains deleted stays in the tree.
      drainedEarlier: drainedSoFar(saved),
    };
    if (saved.currentPass) {
      saved.lastCompletePass.passInProgress = {
        startedAt: saved.currentPass.startedAt,
        tally: structuredClone(saved.currentPass.tally),
      };
    } else if (before?.tally.keptActive) {
      // A rescan deletes nothing, so it sees no copy kept in use: the last pass's count of
      // them stands until a drain's pass counts them again (during a pass, see passFigures).
      saved.lastCompletePass.tally.keptActive = { ...before.tally.keptActive };
    }
    try {
      options.state.saveState(saved);
    } catch (error) {
      if (!isNoRoomError(error)) throw error;
      throw new RescanError(
        `rescan counted the tree but could not record it in ${options.state.path}: ` +
          `${(error as Error).message} (its disk is full: give --state-dir on another ` +
          "filesystem, or free some room first)",
      );
    }
  } finally {
    lock.release();
  }
  return progressFromState(options.state, keptByMount);
}

/**
 * The globs of the pre-warm runs: those of the pass in progress, else those of the last
 * complete pass; undefined when none are recorded (states of earlier builds).
 */
export function recordedFilter(saved: MigrationState): PathFilter | undefined {
  const globs = saved.cursorHex !== undefined
    ? saved.cursorGlobs ?? saved.currentPass?.globs
    : saved.lastCompletePass?.globs;
  return globs && new PathFilter(globs.include, globs.exclude);
}

/** Bytes and files per calendar day (UTC) over the last days with pre-warm runs. */
export function dailyRate(
  history: readonly RunRecord[],
): { bytes: number; files: number; days: number } | undefined {
  const perDay = new Map<string, { bytes: number; files: number }>();
  for (const run of history) {
    if (run.command !== "prewarm" || run.dryRun) continue;
    const day = run.startedAt.slice(0, 10);
    const sum = perDay.get(day) ?? { bytes: 0, files: 0 };
    sum.bytes += run.tally.uploaded.bytes;
    sum.files += run.tally.uploaded.files;
    perDay.set(day, sum);
  }
  const days = [...perDay.keys()].sort().slice(-RATE_WINDOW_DAYS);
  if (days.length === 0) return undefined;
  let bytes = 0;
  let files = 0;
  for (const day of days) {
    bytes += perDay.get(day)!.bytes;
    files += perDay.get(day)!.files;
  }
  return { bytes: bytes / days.length, files: files / days.length, days: days.length };
}

/** Days to move `pending` at `rate`; 0 when nothing is pending, undefined if nothing moves. */
export function etaDays(
  pending: Tally,
  rate: { bytes: number; files: number },
): number | undefined {
  if (pending.files === 0) return 0;
  const byBytes = pending.bytes === 0 ? 0 : rate.bytes > 0 ? pending.bytes / rate.bytes : Infinity;
  const byFiles = rate.files > 0 ? pending.files / rate.files : Infinity;
  const days = Math.max(byBytes, byFiles);
  return Number.isFinite(days) ? days : undefined;
}
