/**
 * `riakfs umount MOUNTPOINT`: asks a riakfs overlay mount, over its control socket, to drain
 * its upload queue while it keeps serving (with a timeout), then unmounts it; its serving
 * process then exits. A mount without a control socket (a stale mount, another run
 * directory) is unmounted plainly.
 *
 * Exit codes: 0 unmounted with every upload in Riak; {@link EXIT_UPLOADS_PENDING} unmounted,
 * but the drain timed out and uploads wait in the journal for the next mount; 1 not
 * unmounted.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { readMounts, unmount } from "../fuse/mod.ts";
import {
  DEFAULT_RUN_DIRECTORY,
  type DrainOutcome,
  NotServingError,
  requestDrain,
  runtimePaths,
} from "../overlay/control.ts";

/** Exit code when the mount is gone but uploads are still pending (safe in its journal). */
export const EXIT_UPLOADS_PENDING = 3;

interface UmountFlags {
  lazy?: boolean;
  runDir: string;
  drainTimeout?: string;
}

/** Registers `riakfs umount`. */
export function installUmount(program: Command): void {
  program.command("umount")
    .description(
      "drain a riakfs mount's pending uploads, then unmount it; its serving process exits",
    )
    .argument("<mountpoint>", "where riakfs is mounted")
    .option("-l, --lazy", "detach now even if busy; it goes when its last user does")
    .option(
      "--drain-timeout <ms>",
      "how long to wait for pending uploads (default: the mount's --drain-timeout)",
    )
    .option(
      "--run-dir <dir>",
      "directory of the mounts' pid files and control sockets",
      process.env.RIAKFS_RUN_DIR ?? DEFAULT_RUN_DIRECTORY,
    )
    .action(async (mountpoint: string, flags: UmountFlags, command: Command) => {
      const drainTimeoutMs = flags.drainTimeout === undefined
        ? undefined
        : Number(flags.drainTimeout);
      if (
        drainTimeoutMs !== undefined &&
        !(Number.isSafeInteger(drainTimeoutMs) && drainTimeoutMs >= 0)
      ) {
        command.error(
          `--drain-timeout needs a whole number of ms >= 0, got ${flags.drainTimeout}`,
          { exitCode: 2, code: "riakfs.usage" },
        );
      }
      // Not realpath: it would stat through the mount, which may be dead or hung.
      const path = resolve(mountpoint);
      const mount = (await readMounts()).find((m) => m.mountpoint === path);
      if (!mount || !mount.fstype.startsWith("fuse.")) {
        throw new Error(`${path} is not a FUSE mount`);
      }
      const outcome = await drainIfServing(path, flags.runDir, drainTimeoutMs);
      try {
        await unmount(path, flags.lazy ?? false);
      } catch (error) {
        const message = (error as Error).message;
        if (/busy/i.test(message) && !flags.lazy) {
          throw new Error(
            `${path} is busy (files open or a process inside); close them or use --lazy`,
          );
        }
        throw error;
      }
      if (!outcome) return;
      if (outcome.pending > 0) {
        process.stderr.write(
          `riakfs: unmounted ${path}; ${outcome.pending} upload(s) still pending after the ` +
            `${outcome.timeoutMs} ms drain timeout (${outcome.drained} drained); they are safe ` +
            `in the journal${
              outcome.spool ? ` in ${outcome.spool}` : ""
            } and go to Riak when it is mounted again\n`,
        );
        process.exitCode = EXIT_UPLOADS_PENDING;
        return;
      }
      process.stdout.write(
        `riakfs: drained ${outcome.drained} upload(s), then unmounted ${path}\n`,
      );
    });
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
