/**
 * The run lock: one pre-warm (or rescan) per source and namespace at a time, so two
 * overlapping cron runs never race on the same files.
 *
 * The lock is a file created whole (a hard link of a written file, which fails if the lock
 * exists) holding the holder's PID and its start time. A lock whose process is gone (the
 * holder was killed; a PID reused since, after a reboot say, has another start time) is
 * stale and taken over, by one run only.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
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
  const mine = [pid, startTimeOf(pid)].filter((part) => part !== undefined).join(" ");
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createHolding(file, `${mine}\n`)) return heldLock(file, pid);
    const holder = readHolder(file);
    if (holder === undefined) continue; // Released or taken over meanwhile: look again.
    if (holder.pid !== pid && isAlive(holder)) throw new LockedError(file, holder.pid);
    takeOver(file, holder); // Stale: its holder died without releasing it.
  }
  throw new LockedError(file, readHolder(file)?.pid);
}

/** Who holds a lock: the PID and, where /proc tells it, when that process started. */
interface Holder {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/PID/stat): a reused PID has another. */
  startTime?: string;
}

/**
 * Creates `file` holding `content` in one step (a hard link of a complete file), so nobody
 * ever reads a lock without its holder. False when `file` exists.
 */
function createHolding(file: string, content: string): boolean {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  writeFileSync(temporary, content, { mode: 0o644 });
  try {
    linkSync(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/**
 * Removes the lock `file` of dead `stale`. The takeover holds a lock of its own, so two runs
 * that both found the lock stale cannot both remove it: the second would remove the lock the
 * first has just taken. A takeover whose process died is cleared for the next attempt.
 */
function takeOver(file: string, stale: Holder): void {
  const token = `${file}.takeover`;
  if (!createHolding(token, `${process.pid}\n`)) {
    const taker = readHolder(token);
    if (taker !== undefined && !isAlive(taker)) rmSync(token, { force: true });
    return;
  }
  try {
    const current = readHolder(file);
    if (current?.pid !== stale.pid || current.startTime !== stale.startTime) return;
    try {
      unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  } finally {
    rmSync(token, { force: true });
  }
}

function heldLock(file: string, pid: number): HeldLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    if (readHolder(file)?.pid === pid) {
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

function readHolder(file: string): Holder | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const [pidText, startTime] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  // Unreadable content is nobody's: the holder is dead, as far as anyone can tell.
  if (!Number.isSafeInteger(pid) || pid <= 0) return { pid: 0 };
  return startTime === undefined ? { pid } : { pid, startTime };
}

/** Whether `holder` still runs: its PID is alive and, when known, started when it did. */
function isAlive(holder: Holder): boolean {
  if (holder.pid <= 0 || !isProcessAlive(holder.pid)) return false;
  return holder.startTime === undefined || startTimeOf(holder.pid) === holder.startTime;
}

/** When process `pid` started (clock ticks since boot), where /proc says; else undefined. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The name (field 2) is in parentheses and may hold spaces: count after its end.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
