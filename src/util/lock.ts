/**
 * A lock file for one process at a time: one pre-warm (or rescan) per source and namespace,
 * so two overlapping cron runs never race on the same files; one mount per spool, so two
 * mounts never share (and overwrite) one upload journal.
 *
 * The lock is a file created whole (a hard link of a written file, which fails if the lock
 * exists) holding the holder's PID, its start time, and where that PID means something: the
 * boot and the PID namespace. On a full filesystem, where no file can get a byte, it is a
 * symlink whose target says the same in short (the place as a digest): a short symlink
 * lives in its inode, so a mount over the disk that filled up (its spool and lock on that
 * disk) still starts and drains it. A lock whose process is gone (the holder was killed; a PID
 * reused since has another start time) is stale and taken over, by one run only. A holder
 * in another PID namespace or boot (a container sharing the state directory, another host
 * over NFS) cannot be looked up: its lock is alive while the holder keeps touching it
 * ({@link LOCK_HEARTBEAT_MS}), and stale once untouched for {@link LOCK_STALE_MS}.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import {
  linkSync,
  lstatSync,
  lutimesSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { isNoRoomError } from "./no_room.ts";
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
  const started = startTimeOf(pid) ?? "-";
  const mine = {
    whole: [pid, started, ...thisPlace()].join(" "),
    short: `${pid} ${started} ${placeDigest()}`,
  };
  removeLeftTemporaries(file);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createHolding(file, mine)) return heldLock(file, pid, heartbeatMs);
    const holder = readHolder(file);
    if (holder === undefined) continue; // Released or taken over meanwhile: look again.
    const ours = holder.pid === pid && (holder.place === undefined || isHere(holder.place));
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
  /**
   * Boot id and PID namespace the PID belongs to, or their {@link placeDigest} (a lock made
   * on a full filesystem); absent in locks of older versions.
   */
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

/** A temporary file of {@link createHolding} lives for microseconds; one this old was left. */
const LEFT_TEMPORARY_MS = 60_000;

/**
 * Removes the temporary files of {@link createHolding} that a process killed in between (or
 * an older version, on a full disk) left beside `file`: they take room, and on the disk that
 * filled up every block counts.
 */
function removeLeftTemporaries(file: string): void {
  const prefix = `${basename(file)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return; // Reported by the attempt to take the lock.
  }
  for (const name of names) {
    const rest = name.slice(prefix.length);
    if (!name.startsWith(prefix) || !/^(takeover\.)?\d+\.[0-9a-f]{8}$/.test(rest)) continue;
    const path = join(dirname(file), name);
    try {
      if (Date.now() - lstatSync(path).mtimeMs > LEFT_TEMPORARY_MS) unlinkSync(path);
    } catch {
      // Gone meanwhile.
    }
  }
}

/** {@link thisPlace} in few bytes, for a lock that must fit in a symlink's inode. */
function placeDigest(): string {
  const digest = createHash("sha256").update(thisPlace().join(" ")).digest("hex");
  return `@${digest.slice(0, 16)}`;
}

/** Whether a holder's recorded place (either form) is this boot and PID namespace. */
function isHere(place: string): boolean {
  return place === (place.startsWith("@") ? placeDigest() : thisPlace().join(" "));
}

/**
 * Creates `file` holding `content` in one step, so nobody ever reads a lock without its
 * holder: a hard link of a complete file, or where the filesystem has no room for the file's
 * bytes, a symlink to the short form (made whole in one call, in the inode). False when
 * `file` exists.
 */
function createHolding(file: string, content: { whole: string; short: string }): boolean {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    writeFileSync(temporary, `${content.whole}\n`, { mode: 0o644 });
    linkSync(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    if (!isNoRoomError(error)) throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
  try {
    symlinkSync(content.short, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/**
 * Removes the lock `file` of dead `stale`. The takeover holds a lock of its own, so two runs
 * that both found the lock stale cannot both remove it: the second would remove the lock the
 * first has just taken. A takeover whose process died is cleared for the next attempt.
 */
function takeOver(file: string, stale: Holder): void {
  const token = `${file}.takeover`;
  if (!createHolding(token, { whole: `${process.pid}`, short: `${process.pid}` })) {
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
      lutimesSync(file, now, now);
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
  const text = lockText(file);
  if (text === undefined) return undefined;
  const [pidText, startTime, bootId, pidNamespace] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  // Unreadable content is nobody's: the holder is dead, as far as anyone can tell.
  if (!Number.isSafeInteger(pid) || pid <= 0) return { pid: 0 };
  const holder: Holder = { pid };
  if (startTime !== undefined && startTime !== "-") holder.startTime = startTime;
  const place = pidNamespace === undefined
    ? bootId?.startsWith("@") ? bootId : undefined
    : `${bootId} ${pidNamespace}`;
  if (place !== undefined) {
    holder.place = place;
    try {
      holder.touchedMs = lstatSync(file).mtimeMs;
    } catch {
      return undefined; // Released meanwhile.
    }
  }
  return holder;
}

/** What a lock says: a symlink's target (made on a full disk), else the file's content. */
function lockText(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EINVAL") return undefined;
  }
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Whether `holder` still runs: its PID is alive and, when known, started when it did; a
 * holder whose PID means nothing here, while it keeps touching its lock.
 */
function isAlive(holder: Holder): boolean {
  if (holder.place !== undefined && !isHere(holder.place)) {
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
