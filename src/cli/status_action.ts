/**
 * What `riakfs status` does (src/cli/status.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { formatStatus, NotServingError, queryStatus, runtimePaths } from "../overlay/control.ts";
import { mountpointPath } from "./mountpoint_path.ts";
import { EXIT_NOT_SERVING, type StatusFlags } from "./status.ts";
import { printResult } from "./stdout.ts";

/** Prints the counters of the mount at `mountpoint`, waiting at most `timeoutMs` for them. */
export async function showStatus(
  argument: string,
  flags: StatusFlags,
  timeoutMs: number,
): Promise<void> {
  const mountpoint = await mountpointPath(argument);
  const { controlSocket } = runtimePaths(mountpoint, flags.runDir);
  try {
    const report = await queryStatus(mountpoint, controlSocket, timeoutMs);
    await printResult(
      "status",
      flags.json ? JSON.stringify(report) + "\n" : formatStatus(report) + "\n",
    );
  } catch (error) {
    if (!(error instanceof NotServingError)) throw error;
    process.stderr.write(`riakfs: ${error.message}\n`);
    process.exitCode = EXIT_NOT_SERVING;
  }
}
