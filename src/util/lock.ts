/**
 * A lock file for one process at a time: one pre-warm (or rescan) per source and namespace,
 * so two overlapping cron runs never race on the same files; one mount per spool, so two
 * mounts never share (and overwrite) one upload journal.
 *
 * The lock is a file created whole (a hard link of a written file, which fails if the lock
 * exists) holding the holder's PID, its start time, and where that PID means something: the
 * boot and the PID namespace. A lock whose process is gone (the holder was killed; a PID
 * reused since has another start time) is stale and taken over, by one run only. A holder
 * in another PID namespace or boot (a container sharing the state directory, another host
 * over NFS) cannot be looked up: its lock is alive while the holder keeps touching it
 * ({@link LOCK_HEARTBEAT_MS}), and stale once untouched for {@link LOCK_STALE_MS}.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import {
  linkSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { isProcessAlive } from "./process.ts";

/** How often a holder touches its lock file, for holders that cannot look its PID up. */
export const LOCK_HEARTBEAT_MS = 30_000;
/** A lock from another PID namespace or boot, untouched this long, is stale. */
export const LOCK_STALE_MS = 10 * 60_000;

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
export function acquireLock(
  file: string,
  pid: number = process.pid,
  heartbeatMs = LOCK_HEARTBEAT_MS,
): HeldLock {
  const mine = [pid, startTimeOf(pid) ?? "-", ...thisPlace()].join(" ");
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createHolding(file, `${mine}\n`)) return heldLock(file, pid, heartbeatMs);
    const holder = readHolder(file);
    if (holder === undefined) continue; // Released or taken over meanwhile: look again.
    const ours = holder.pid === pid &&
      (holder.place === undefined || holder.place === thisPlace().join(" "));
    if (!ours && isAlive(holder)) throw new LockedError(file, holder.pid);
    takeOver(file, holder); // Stale: its holder died without releasing it.
  }
  throw new LockedError(file, readHolder(file)?.pid);
}

/**
 * The PID in the lock at `file` while its holder runs (judged as {@link acquireLock} judges
 * it), else undefined: a run killed with SIGKILL leaves its lock file behind.
 */
export function liveHolderPid(file: string): number | undefined {
  const holder = readHolder(file);
  return holder !== undefined && isAlive(holder) ? holder.pid : undefined;
}

/** Who holds a lock: the PID and, where /proc tells it, when that process started. */
interface Holder {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/PID/stat): a reused PID has another. */
  startTime?: string;
  /** Boot id and PID namespace the PID belongs to (absent in locks of older versions). */
  place?: string;
  /** When the lock file was last touched (ms since the epoch). */
  touchedMs?: number;
}

/** This boot's id and this process's PID namespace, as the lock file records them. */
function thisPlace(): [string, string] {
  const read = (read: () => string) => {
    try {
      return read().trim().replaceAll(" ", "_") || "-";
    } catch {
      return "-";
    }
  };
  return [
    read(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")),
    read(() => readlinkSync("/proc/self/ns/pid")),
  ];
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
    if (
      current?.pid !== stale.pid || current.startTime !== stale.startTime ||
      current.place !== stale.place || current.touchedMs !== stale.touchedMs
    ) return;
    try {
      unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  } finally {
    rmSync(token, { force: true });
  }
}

function heldLock(file: string, pid: number, heartbeatMs: number): HeldLock {
  let released = false;
  // Holders elsewhere (another PID namespace or host) judge the lock by this touch.
  const heartbeat = setInterval(() => {
    if (readHolder(file)?.pid !== pid) return;
    const now = new Date();
    try {
      utimesSync(file, now, now);
    } catch {
      // Gone meanwhile: release() has nothing left to do either.
    }
  }, heartbeatMs);
  (heartbeat as { unref?: () => void }).unref?.();
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(heartbeat);
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
  const [pidText, startTime, bootId, pidNamespace] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  // Unreadable content is nobody's: the holder is dead, as far as anyone can tell.
  if (!Number.isSafeInteger(pid) || pid <= 0) return { pid: 0 };
  const holder: Holder = { pid };
  if (startTime !== undefined && startTime !== "-") holder.startTime = startTime;
  if (bootId !== undefined && pidNamespace !== undefined) {
    holder.place = `${bootId} ${pidNamespace}`;
    try {
      holder.touchedMs = statSync(file).mtimeMs;
    } catch {
      return undefined; // Released meanwhile.
    }
  }
  return holder;
}

/**
 * Whether `holder` still runs: its PID is alive and, when known, started when it did; a
 * holder whose PID means nothing here, while it keeps touching its lock.
 */
function isAlive(holder: Holder): boolean {
  if (holder.place !== undefined && holder.place !== thisPlace().join(" ")) {
    return Date.now() - (holder.touchedMs ?? 0) < LOCK_STALE_MS;
  }
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
