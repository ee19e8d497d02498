/**
 * `riakfs progress SOURCE`: how far the migration of a source has come, from what the
 * pre-warm runs recorded (cheap enough to run every minute), or recomputed with `--rescan`
 * (one head-only get per file).
 *
 * @module
 */
import type { Command } from "commander";
import { addMigrationOptions, concurrencyLevel } from "./migration-options.ts";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs progress`. */
export function installProgress(program: Command): void {
  const command = program.command("progress")
    .description("show how much of a source is in Riak, and the ETA at the nightly rate")
    .argument("<source>", "the local directory being migrated")
    .option("--rescan", "walk the tree and ask Riak instead of using what pre-warm recorded")
    .option("--concurrency <n>", "files checked at once by --rescan", concurrencyLevel, 8)
    .option(
      "--spool <dir>",
      "the spool drain mounts of SOURCE were given, for the copies they kept",
    )
    .option("--json", "print JSON");
  addMigrationOptions(command);
  addRiakOptions(command).action(async (sourceArg: string, opts: Record<string, unknown>) => {
    const { showProgress } = await import("./progress_action.ts");
    await showProgress(command, sourceArg, opts);
  });
}
