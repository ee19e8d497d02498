/**
 * `riakfs umount MOUNTPOINT`: asks a riakfs overlay mount, over its control socket, to drain
 * its upload queue while it keeps serving (with a timeout), then unmounts it; its serving
 * process then exits. A mount whose control socket does not answer (its process stuck) is
 * unmounted without draining; one whose process is gone (stale), or that is not riakfs's, is
 * unmounted plainly; a riakfs mount that serves but whose control socket is not in the run
 * directory given is not unmounted (its pending uploads would go unwaited).
 *
 * Exit codes: 0 unmounted with every upload in Riak; {@link EXIT_UPLOADS_PENDING} unmounted,
 * but the drain timed out, or the mount did not answer it, and uploads wait in the journal
 * for the next mount; 1 not unmounted.
 *
 * @module
 */
import type { Command } from "commander";
import { MAX_TIMER_MS } from "../util/timers.ts";
import { decimal } from "./numbers.ts";
import { requireTextPath } from "./raw_args.ts";
import { runDirOption } from "./run_dir_option.ts";

/** Exit code when the mount is gone but uploads are still pending (safe in its journal). */
export const EXIT_UPLOADS_PENDING = 3;

/** The flags of `riakfs umount`, as commander parses them. */
export interface UmountFlags {
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
    .addOption(runDirOption())
    .action(async (mountpoint: string, flags: UmountFlags, command: Command) => {
      requireTextPath(command, "MOUNTPOINT", mountpoint);
      const drainTimeoutMs = flags.drainTimeout === undefined
        ? undefined
        : decimal(flags.drainTimeout);
      if (
        drainTimeoutMs !== undefined &&
        !(Number.isSafeInteger(drainTimeoutMs) && drainTimeoutMs <= MAX_TIMER_MS)
      ) {
        command.error(
          `riakfs: --drain-timeout needs a whole number of ms from 0 to ${MAX_TIMER_MS}, got ${
            JSON.stringify(flags.drainTimeout)
          }`,
          { exitCode: 2, code: "riakfs.usage" },
        );
      }
      const { unmountDrained } = await import("./umount_action.ts");
      await unmountDrained(mountpoint, flags, drainTimeoutMs);
    });
}
