/**
 * What `riakfs umount` does (src/cli/umount.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { probeMount, readMounts, unmount } from "../fuse/mod.ts";
import {
  type DrainOutcome,
  NotServingError,
  requestDrain,
  runtimePaths,
} from "../overlay/control.ts";
import { MOUNT_SUBTYPE } from "./mount.ts";
import { mountpointPath } from "./mountpoint_path.ts";
import { removeStaleRunFiles } from "./stale_run_files.ts";
import { EXIT_UPLOADS_PENDING, type UmountFlags } from "./umount.ts";

/**
 * Drains the riakfs mount at `mountpoint` (at most `drainTimeoutMs`, undefined = the
 * mount's own timeout) and unmounts it; sets the exit code when uploads stay pending.
 */
export async function unmountDrained(
  mountpoint: string,
  flags: UmountFlags,
  drainTimeoutMs: number | undefined,
): Promise<void> {
  // Not realpath: it would stat through the mount, which may be dead or hung.
  const path = await mountpointPath(mountpoint);
  const mount = (await readMounts()).find((m) => m.mountpoint === path);
  if (!mount || !mount.fstype.startsWith("fuse.")) {
    throw new Error(`${path} is not a FUSE mount`);
  }
  const outcome = await drainIfServing(path, flags.runDir, drainTimeoutMs);
  if (
    !outcome && mount.fstype === `fuse.${MOUNT_SUBTYPE}` && await probeMount(path, 2000) === "live"
  ) {
    // Its process serves, but its control socket is in another run directory: unmounted
    // now, it would upload what is pending after this command said nothing was.
    throw new Error(
      `${path} is served by a riakfs process whose control socket is not in ${flags.runDir} ` +
        "(mounted with another --run-dir? give the same one, or RIAKFS_RUN_DIR); not " +
        "unmounted, since its pending uploads would not be waited for",
    );
  }
  let takenElsewhere = false;
  try {
    await unmount(path, flags.lazy ?? false);
  } catch (error) {
    const message = (error as Error).message;
    if (outcome && !(await readMounts()).some((m) => m.device === mount.device)) {
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
  await removeStaleRunFiles(runtimePaths(path, flags.runDir));
  if (!outcome) return;
  const others = notDrained(outcome);
  const unmounted = takenElsewhere
    ? `${path} was unmounted meanwhile (by another riakfs umount, or a signal)`
    : `unmounted ${path}`;
  if (outcome.pending > 0) {
    const ended = [`${outcome.drained} drained`, ...others].join(", ");
    const when = takenElsewhere ? "" : ` after the ${outcome.timeoutMs} ms drain timeout`;
    const why = outcome.riak ? `${outcome.riak}; ` : "";
    process.stderr.write(
      `riakfs: ${unmounted}; ${outcome.pending} upload(s) still pending${when} (${ended}); ` +
        `${why}they are safe ` +
        `in the journal${
          outcome.spool ? ` in ${outcome.spool}` : ""
        } and go to Riak when it is mounted again with this spool and namespace\n`,
    );
    process.exitCode = EXIT_UPLOADS_PENDING;
    return;
  }
  const uploads = `riakfs: drained ${outcome.drained} upload(s)${
    others.length > 0 ? ` (${others.join(", ")})` : ""
  }`;
  process.stdout.write(
    flags.lazy
      ? `${uploads}, then detached ${path} (files still open are served until they are ` +
        "closed, then the mount's process ends)\n"
      : `${uploads}, then ${unmounted}\n`,
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
 * Drains the uploads of the riakfs mount at `path` while it keeps serving; undefined when
 * no riakfs process answers on its control socket (then a plain unmount is all there is).
 */
async function drainIfServing(
  path: string,
  runDirectory: string,
  timeoutMs: number | undefined,
): Promise<DrainOutcome | undefined> {
  const { controlSocket } = runtimePaths(path, runDirectory);
  let announced = false;
  try {
    return await requestDrain(path, controlSocket, timeoutMs, (pending) => {
      if (pending > 0 && !announced) {
        process.stderr.write(`riakfs: waiting for ${pending} upload(s) to reach Riak\n`);
      }
      announced ||= pending > 0;
    });
  } catch (error) {
    if (!(error instanceof NotServingError)) throw error;
    // No socket: a passthrough-era or stale mount. A socket that does not answer: say so.
    if (!/not found/.test(error.message)) {
      process.stderr.write(`riakfs: ${error.message}; unmounting without draining\n`);
    }
    return undefined;
  }
}
