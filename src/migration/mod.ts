/**
 * Migration of a local tree into Riak, above src/store: the pre-warm run, progress,
 * verification, and the pieces the mount's overlay reuses (the verified-deletion rule, the
 * torn-read-proof local reader, file identities, the tree walker).
 *
 * @example
 * ```ts
 * import { runPrewarm, StateDirectory } from "./src/migration/mod.ts";
 * const result = await runPrewarm({ source: "/srv/data", store, state: new StateDirectory("/tmp/s") });
 * process.exitCode = result.exitCode;
 * ```
 *
 * @module
 */
export {
  currentIdentity,
  FileChangedError,
  type FileIdentity,
  identityOf,
  lstatIfExists,
  sameIdentity,
} from "./file_identity.ts";
export { PathFilter } from "./glob.ts";
export { parseDuration, RunLimits, type StopReason } from "./limits.ts";
export {
  changedTooRecently,
  hashBytes,
  isFileChanged,
  RACY_WINDOW_MS,
  readSmallUnchanged,
  readUnchanged,
  type ReadUnchangedOptions,
} from "./local_file.ts";
export { acquireLock, type HeldLock, LockedError } from "../util/lock.ts";
export { SmallFileReaders } from "./small_file_readers.ts";
export { DEFAULT_CONCURRENCY, DEFAULT_STATE_ROOT } from "./defaults.ts";
export {
  EXIT_COMPLETE,
  EXIT_FAILED,
  EXIT_LOCKED,
  EXIT_PARTIAL,
  FAILED_LIST_FILE,
  type FailedPath,
  type LiveRun,
  type PrewarmEvent,
  type PrewarmOptions,
  type PrewarmResult,
  RETRY_MORE_PREFIX,
  runPrewarm,
} from "./prewarm.ts";
export { progressFromState, type ProgressReport, rescan, RescanError } from "./progress.ts";
export { ProgressReporter, type ProgressSnapshot } from "./progress_reporter.ts";
export { type ByteGate, RateLimiter } from "./rate_limiter.ts";
export {
  type MigrationState,
  type PassTally,
  type RunMarker,
  type RunRecord,
  StateDirectory,
} from "./state.ts";
export { hashStoredFile, type MigrationStore } from "./stored_file.ts";
export { deleteIfVerified, type DeleteOutcome, type HashedVersion } from "./verified_delete.ts";
export { compareFile, type FileComparison, type VerifySummary, verifyTree } from "./verify.ts";
export { compareWalkOrder, type EntryKind, type WalkEntry, walkTree } from "./walk.ts";
