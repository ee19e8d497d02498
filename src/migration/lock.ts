/**
 * The run lock: one pre-warm (or rescan) per source and namespace at a time, so two
 * overlapping cron runs never race on the same files.
 *
 * The lock is a file created with O_EXCL holding the holder's PID. A lock whose PID is no
 * longer alive (the holder was killed) is stale and taken over.
 *
 * @module
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { isProcessAlive } from "../util/process.ts";

/** Another live process holds the lock. */
export class LockedError extends Error {
  /** The lock file. */
  readonly lockFile: string;
  /** PID of the holder, as written in the lock file (undefined if unreadable). */
  readonly holderPid: number | undefined;

  constructor(lockFile: string, holderPid: number | undefined) {
    super(
      `another run holds the lock ${lockFile}` +
        (holderPid === undefined ? "" : ` (pid ${holderPid})`) +
        "; it is still running, so this run stops",
    );
    this.name = "LockedError";
    this.lockFile = lockFile;
    this.holderPid = holderPid;
  }
}

/** A held lock. */
export interface HeldLock {
  readonly file: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/**
 * Takes the lock at `file` for this process or throws {@link LockedError}.
 *
 * @example
 * ```ts
 * const lock = acquireLock(join(stateDir, "lock"));
 * try { await run(); } finally { lock.release(); }
 * ```
 */
export function acquireLock(file: string, pid: number = process.pid): HeldLock {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readHolder(file);
      if (holder !== undefined && holder !== pid && isProcessAlive(holder)) {
        throw new LockedError(file, holder);
      }
      if (holder === undefined && attempt === 0) {
        // The holder may be between creating and writing the file: look once more.
        continue;
      }
      // Stale: its holder died without releasing it.
      try {
        unlinkSync(file);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== "ENOENT") throw unlinkError;
      }
      continue;
    }
    try {
      writeSync(fd, `${pid}\n`);
    } finally {
      closeSync(fd);
    }
    return heldLock(file, pid);
  }
  throw new LockedError(file, readHolder(file));
}

function heldLock(file: string, pid: number): HeldLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    if (readHolder(file) === pid) {
      try {
        unlinkSync(file);
      } catch {
        // Already gone.
      }
    }
  };
  process.on("exit", release);
  return { file, release };
}

function readHolder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
