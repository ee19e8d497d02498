/**
 * Whether this process may mount or unmount: riakfs opens /dev/fuse and runs mount(8) and
 * umount(8) itself (no fusermount3, whose descriptor passing Node cannot receive), which
 * needs root or CAP_SYS_ADMIN. Told in one line before anything else is tried: otherwise a
 * user without it met whatever failed first (the log file or control socket in /run/riakfs,
 * /dev/fuse; for umount, a control socket "not in" the run directory it was in).
 *
 * @module
 */
import { readFileSync } from "node:fs";

/** Bit of CAP_SYS_ADMIN in the capability masks of /proc/PID/status. */
const CAP_SYS_ADMIN = 21n;

/**
 * Why a process whose /proc/self/status is `status` cannot do `action` ("mounting",
 * "unmounting"), or undefined when it can (or its capabilities cannot be read: mount(8)
 * then tells).
 */
export function mountPrivilegeProblem(
  action: "mounting" | "unmounting",
  status: string = ownStatus(),
): string | undefined {
  const effective = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status)?.[1];
  if (effective === undefined || (BigInt(`0x${effective}`) >> CAP_SYS_ADMIN) & 1n) {
    return undefined;
  }
  const uid = /^Uid:\s*\d+\s+(\d+)/m.exec(status)?.[1] ?? "?";
  return `${action} needs root or CAP_SYS_ADMIN, which this process (uid ${uid}) lacks ` +
    "(unprivileged mounting through fusermount3 is not supported)";
}

function ownStatus(): string {
  try {
    return readFileSync("/proc/self/status", "utf8");
  } catch {
    return "";
  }
}
