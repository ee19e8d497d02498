/**
 * The pid file and control socket a mount's process leaves in the run directory when it dies
 * without a clean shutdown (kill -9, OOM), removed once it is certain they are nobody's.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { lstat, unlink } from "node:fs/promises";
import { connect } from "node:net";
import type { RuntimePaths } from "../overlay/control.ts";
import { isProcessAlive } from "../util/process.ts";

/**
 * Removes the pid file and control socket of `paths` when the process the pid file names is
 * gone, the socket only while nothing listens on it. Those of a live process stay, also of one
 * that merely reuses the PID: the pid file records the PID alone, and keeping is the safe
 * side. Without a pid file nothing is removed (a mount starting up has its socket first).
 */
export async function removeStaleRunFiles(paths: RuntimePaths): Promise<void> {
  const pid = pidIn(paths.pidFile);
  if (pid === undefined || isProcessAlive(pid)) return;
  const socket = await lstat(paths.controlSocket).catch(() => undefined);
  if (socket?.isSocket() && await nobodyListens(paths.controlSocket)) {
    // A mount started there since has replaced it (a new inode): that one stays.
    const now = await lstat(paths.controlSocket).catch(() => undefined);
    if (now?.ino === socket.ino) await unlink(paths.controlSocket).catch(() => {});
  }
  // Read again: a mount started meanwhile writes its own PID there.
  if (pidIn(paths.pidFile) === pid) await unlink(paths.pidFile).catch(() => {});
}

/** The PID a pid file names; undefined when there is none or it says something else. */
function pidIn(pidFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, "utf8").trim();
  } catch {
    return undefined;
  }
  return /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
}

/** Whether connecting to the unix socket `path` is refused: no process listens there. */
function nobodyListens(path: string): Promise<boolean> {
  return new Promise((done) => {
    const client = connect(path);
    client.on("connect", () => {
      client.destroy();
      done(false);
    });
    client.on("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED"));
  });
}
