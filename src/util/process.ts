/**
 * Facts about other processes of this machine.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import process from "node:process";

/**
 * True when a process with this PID exists and has not ended. EPERM counts as alive: the
 * process exists but belongs to another user, which is exactly the case a stale-lock check
 * must not take over. A zombie (ended, not yet reaped by its parent: a container without an
 * init that reaps) answers signals but holds nothing any more, so it counts as gone.
 *
 * @example
 * ```ts
 * if (!isProcessAlive(holderPid)) takeOverStaleLock();
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  return !hasEnded(pid);
}

/** Whether /proc shows `pid` as ended but not reaped (zombie or dead); false without /proc. */
function hasEnded(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The name (field 2) is in parentheses and may hold spaces: the state follows its end.
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state === "Z" || state === "X";
  } catch {
    return false;
  }
}

/**
 * Resolves true once the process `pid` has ended (see {@link isProcessAlive}), false when it
 * still runs after `timeoutMs`. Polled: Node can wait only for its own children.
 */
export async function processEnded(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, PROCESS_END_POLL_MS));
  }
  return true;
}

/** How often {@link processEnded} looks. */
const PROCESS_END_POLL_MS = 20;

/** The ids of the processes `procRoot` (/proc) lists; none where it cannot be read. */
export function processIds(procRoot = "/proc"): string[] {
  try {
    return readdirSync(procRoot).filter((name) => /^[0-9]+$/.test(name));
  } catch {
    return [];
  }
}

/** One open descriptor of a process: its number and what its /proc link names, as bytes. */
export interface OpenDescriptor {
  /** The descriptor's number, as /proc/PID/fd lists it. */
  fd: string;
  /** The link's target: a path (a file's, which follows renames) or e.g. `socket:[1234]`. */
  target: Buffer;
}

/**
 * The descriptors process `pid` holds open, read from `procRoot`/PID/fd without following the
 * links (a stat through one of a file on a riakfs mount, from the mount's own thread, would
 * never get an answer). None where the process ended or its entries cannot be read (another
 * user's); a descriptor closed while they are read is left out.
 */
export function openDescriptors(pid: string, procRoot = "/proc"): OpenDescriptor[] {
  const directory = `${procRoot}/${pid}/fd`;
  let descriptors: string[];
  try {
    descriptors = readdirSync(directory);
  } catch {
    return [];
  }
  const open: OpenDescriptor[] = [];
  for (const fd of descriptors) {
    try {
      // Buffer.from: Deno's node:fs hands a plain Uint8Array back for the "buffer" encoding.
      const target = Buffer.from(readlinkSync(`${directory}/${fd}`, { encoding: "buffer" }));
      open.push({ fd, target });
    } catch {
      // Closed meanwhile, or the process ended.
    }
  }
  return open;
}
