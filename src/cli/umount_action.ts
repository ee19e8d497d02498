/**
 * What `riakfs umount` does (src/cli/umount.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { isStillMounted, probeMount, readMounts, unmount } from "../fuse/mod.ts";
import {
  DrainInterruptedError,
  type DrainOutcome,
  NotServingError,
  requestDrain,
  runtimePaths,
} from "../overlay/control.ts";
import { DEFAULT_STATUS_TIMEOUT_MS } from "../overlay/defaults.ts";
import { STOP_GRACE_MS } from "../overlay/upload_queue.ts";
import { isProcessAlive, processEnded } from "../util/process.ts";
import { MOUNT_SUBTYPE } from "./mount.ts";
import { mountpointPath } from "./mountpoint_path.ts";
import { mountPrivilegeProblem } from "./mount_privilege.ts";
import { removeStaleRunFiles } from "./stale_run_files.ts";
import { EXIT_UPLOADS_PENDING, type UmountFlags } from "./umount.ts";

/**
 * How the mount's control socket took the drain request: answered with the outcome, stayed
 * silent (a stuck process), ended before the outcome (taken down meanwhile), or never took it
 * (no socket, nobody listening, an answer not understood).
 */
type DrainAnswer =
  | { outcome: DrainOutcome }
  | { silent: NotServingError }
  | { interrupted: DrainInterruptedError }
  | { unanswered: NotServingError };

/**
 * Drains the riakfs mount at `mountpoint` (at most `drainTimeoutMs`, undefined = the
 * mount's own timeout) and unmounts it; sets the exit code when uploads stay pending.
 */
export async function unmountDrained(
  mountpoint: string,
  flags: UmountFlags,
  drainTimeoutMs: number | undefined,
): Promise<void> {
  const privilege = mountPrivilegeProblem("unmounting");
  if (privilege !== undefined) throw new Error(privilege);
  // Not realpath: it would stat through the mount, which may be dead or hung.
  const path = await mountpointPath(mountpoint);
  const mount = (await readMounts()).find((m) => m.mountpoint === path);
  if (!mount || !mount.fstype.startsWith("fuse.")) {
    throw new Error(`${path} is not a FUSE mount`);
  }
  const paths = runtimePaths(path, flags.runDir);
  const answer = await drainIfServing(path, paths.controlSocket, drainTimeoutMs);
  if ("unanswered" in answer) {
    if (mount.fstype === `fuse.${MOUNT_SUBTYPE}` && await probeMount(path, 2000) === "live") {
      // Its process serves, but its control socket is in another run directory: unmounted
      // now, it would upload what is pending after this command said nothing was.
      throw new Error(
        `${path} is served by a riakfs process whose control socket is not in ${flags.runDir} ` +
          "(mounted with another --run-dir? give the same one, or RIAKFS_RUN_DIR); not " +
          "unmounted, since its pending uploads would not be waited for",
      );
    }
    // No socket: a passthrough-era or stale mount. A socket that does not answer: say so.
    if (answer.unanswered.kind !== "absent") {
      process.stderr.write(`riakfs: ${answer.unanswered.message}; unmounting without draining\n`);
    }
  }
  let takenElsewhere = false;
  try {
    await unmount(path, flags.lazy ?? false);
  } catch (error) {
    const message = (error as Error).message;
    if (!("unanswered" in answer) && !isStillMounted(mount, await readMounts())) {
      // Gone while this command's drain waited: another `riakfs umount` (with a shorter
      // drain timeout) or a signal to the mount took it down, and the drain ended with it.
      // Said as it is, with what the drain left, not as a failed unmount.
      takenElsewhere = true;
    } else if (/busy/i.test(message) && !flags.lazy) {
      throw new Error(
        `${path} is busy (files open or a process inside); close them or use --lazy`,
      );
    } else throw error;
  }
  await removeStaleRunFiles(paths);
  const stopping = "outcome" in answer && !flags.lazy ? await stillStopping(answer.outcome) : "";
  const unmounted =
    (takenElsewhere
      ? `${path} was unmounted meanwhile (by another riakfs umount, or a signal)`
      : flags.lazy
      ? `detached ${path}`
      : `unmounted ${path}`) + stopping;
  if ("silent" in answer) return reportSilent(unmounted, paths.controlSocket, paths.pidFile);
  if ("interrupted" in answer) return reportInterrupted(unmounted, answer.interrupted);
  if (!("outcome" in answer)) return;
  const { outcome } = answer;
  const others = notDrained(outcome);
  if (outcome.pending > 0) {
    const ended = [`${outcome.drained} drained`, ...others].join(", ");
    const when = takenElsewhere ? "" : ` after the ${outcome.timeoutMs} ms drain timeout`;
    const why = outcome.riak ? `${outcome.riak}; ` : "";
    reportPending(
      `${unmounted}; ${outcome.pending} upload(s) still pending${when} (${ended}); ${why}`,
      outcome.spool,
    );
    return;
  }
  const uploads = `riakfs: drained ${outcome.drained} upload(s)${
    others.length > 0 ? ` (${others.join(", ")})` : ""
  }`;
  process.stdout.write(
    flags.lazy && !takenElsewhere
      ? `${uploads}, then detached ${path} (files still open are served until they are ` +
        "closed, then the mount's process ends)\n"
      : `${uploads}, then ${unmounted}\n`,
  );
}

/**
 * Waits for the drained mount's process to end once unmounted: until then it holds the spool,
 * and a mount of it (`riakfs umount; riakfs mount` in a script, a service restart) was refused
 * as "in use by another riakfs mount", while an upload stuck on a hung Riak node used up its
 * grace. What to add to the report when it still runs after {@link PROCESS_END_WAIT_MS}.
 */
async function stillStopping(outcome: DrainOutcome): Promise<string> {
  if (outcome.pid === undefined || await processEnded(outcome.pid, PROCESS_END_WAIT_MS)) return "";
  return ` (its process ${outcome.pid} still stopping after ${PROCESS_END_WAIT_MS} ms: ` +
    "a mount of its spool is refused until it ends)";
}

/**
 * How long `riakfs umount` waits for an unmounted mount's process to end: its uploads still
 * running get {@link STOP_GRACE_MS}, then it closes its spool and exits.
 */
const PROCESS_END_WAIT_MS = STOP_GRACE_MS + 3_000;

/** Says where the pending uploads wait (what `said` began) and exits 3. */
function reportPending(said: string, spool: string | undefined): void {
  process.stderr.write(
    `riakfs: ${said}they are safe in the journal${
      spool ? ` in ${spool}` : ""
    } and go to Riak when it is mounted again with this spool and namespace\n`,
  );
  process.exitCode = EXIT_UPLOADS_PENDING;
}

/**
 * A mount whose control socket stayed silent (its event loop stuck, or the process stopped)
 * was unmounted undrained: what it had not uploaded is in its journal, and it may still run.
 */
function reportSilent(unmounted: string, socket: string, pidFile: string): void {
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim()) || undefined;
  } catch {
    // No pid file: the process is not named.
  }
  const stuck = pid !== undefined && isProcessAlive(pid)
    ? `; its process ${pid} still runs, stuck: see its log, then end it (kill ${pid}, or kill -9 ${pid})`
    : "";
  reportPending(
    `${unmounted} without draining: it did not answer on its control socket ${socket} within ` +
      `${DEFAULT_STATUS_TIMEOUT_MS} ms${stuck}; what it had not uploaded is pending: `,
    undefined,
  );
}

/**
 * The mount's process ended before it answered this drain (another `riakfs umount` whose
 * drain ended first, or a signal): what it last reported stands for what is pending.
 */
function reportInterrupted(unmounted: string, interrupted: DrainInterruptedError): void {
  const pending = interrupted.lastPending;
  if (pending === 0) {
    process.stdout.write(
      `riakfs: ${unmounted}; no upload was pending when its process last reported\n`,
    );
    return;
  }
  const ended = "its process ended before its drain's outcome";
  reportPending(
    pending === undefined
      ? `${unmounted}; ${ended}, not saying what is pending: `
      : `${unmounted}; ${pending} upload(s) still pending (${ended}, the count as it last reported); `,
    undefined,
  );
}

/**
 * The uploads the drain waited for that neither reached Riak nor are still pending: with
 * those, as many as `waiting for N upload(s)` announced (and the writes made meanwhile).
 */
function notDrained(outcome: DrainOutcome): string[] {
  return [
    ...outcome.unneeded
      ? [`${outcome.unneeded} no longer needed after a later change of their file`]
      : [],
    ...outcome.givenUp ? [`${outcome.givenUp} given up (see the mount's log)`] : [],
  ];
}

/**
 * Drains the uploads of the riakfs mount at `path` while it keeps serving, through its
 * control socket `socket`; says how the socket took it when no outcome came.
 */
async function drainIfServing(
  path: string,
  socket: string,
  timeoutMs: number | undefined,
): Promise<DrainAnswer> {
  let announced = false;
  try {
    const outcome = await requestDrain(path, socket, timeoutMs, (pending) => {
      if (pending > 0 && !announced) {
        process.stderr.write(`riakfs: waiting for ${pending} upload(s) to reach Riak\n`);
      }
      announced ||= pending > 0;
    });
    return { outcome };
  } catch (error) {
    if (error instanceof DrainInterruptedError) return { interrupted: error };
    if (!(error instanceof NotServingError)) throw error;
    return error.kind === "silent" ? { silent: error } : { unanswered: error };
  }
}
