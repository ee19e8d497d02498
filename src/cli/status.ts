/**
 * `riakfs status MOUNTPOINT`: asks the running mount, over its control socket, for its
 * counters (operations, bytes read locally and from Riak, copy-on-read queue, uploads,
 * errors, cache hit ratio) and prints them for people or as JSON.
 *
 * @module
 */
import type { Command } from "commander";
import { DEFAULT_STATUS_TIMEOUT_MS } from "../overlay/defaults.ts";
import { MAX_TIMER_MS } from "../util/timers.ts";
import { decimal } from "./numbers.ts";
import { requireTextPath } from "./raw_args.ts";
import { runDirOption } from "./run_dir_option.ts";

/** The flags of `riakfs status`, as commander parses them. */
export interface StatusFlags {
  json?: boolean;
  runDir: string;
  timeout: string;
}

/** Exit code when no mount answers. */
export const EXIT_NOT_SERVING = 1;

/** Installs `riakfs status`. */
export function installStatus(program: Command): void {
  program.command("status")
    .description("show the counters of a running mount")
    .argument("<mountpoint>", "where riakfs is mounted")
    .option("--json", "print JSON")
    .addOption(runDirOption())
    .option(
      "--timeout <ms>",
      "how long to wait for the mount's answer",
      String(DEFAULT_STATUS_TIMEOUT_MS),
    )
    .action(async (mountpoint: string, flags: StatusFlags, command: Command) => {
      requireTextPath(command, "MOUNTPOINT", mountpoint);
      const timeout = decimal(flags.timeout);
      if (!Number.isSafeInteger(timeout) || timeout <= 0 || timeout > MAX_TIMER_MS) {
        command.error(
          `riakfs: --timeout must be a whole number of ms from 1 to ${MAX_TIMER_MS}, got ${
            JSON.stringify(flags.timeout)
          }`,
          {
            exitCode: 2,
            code: "riakfs.usage",
          },
        );
      }
      const { showStatus } = await import("./status_action.ts");
      await showStatus(mountpoint, flags, timeout);
    });
}
