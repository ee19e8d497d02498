/**
 * `riakfs gc`: finds chunks no manifest references, and directory entries with nothing stored
 * behind them, and, with `--delete`, removes them.
 * Dry run by default. Lists the chunk bucket's keys: an administrative scan of the cluster.
 *
 * @module
 */
import type { Command } from "commander";
import { DEFAULT_GC_MIN_AGE_MS } from "../store/defaults.ts";
import { decimal } from "./numbers.ts";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs gc`. */
export function installGc(program: Command): void {
  const command = program.command("gc")
    .description(
      "find (and with --delete remove) chunks no file references, and entries naming nothing",
    )
    .option("--delete", "delete what was found (default: only report)")
    .option(
      "--min-age <seconds>",
      "leave generations younger than this alone (uploads and renames in progress)",
      String(DEFAULT_GC_MIN_AGE_MS / 1000),
    )
    .option("--json", "print JSON");
  addRiakOptions(command).action(async (opts: Record<string, unknown>) => {
    const minAge = decimal(String(opts.minAge), { fraction: true });
    if (!Number.isFinite(minAge) || minAge < 0) {
      command.error(
        `riakfs: --min-age must be a number of seconds, got ${JSON.stringify(opts.minAge)}`,
        { exitCode: 2 },
      );
    }
    const { collectGarbageCommand } = await import("./gc_action.ts");
    await collectGarbageCommand(command, minAge, opts);
  });
}
