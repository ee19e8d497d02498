/**
 * Facts about other processes of this machine.
 *
 * @module
 */
import process from "node:process";

/**
 * True when a process with this PID exists. EPERM counts as alive: the process exists but
 * belongs to another user, which is exactly the case a stale-lock check must not take over.
 *
 * @example
 * ```ts
 * if (!isProcessAlive(holderPid)) takeOverStaleLock();
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
