/**
 * `riakfs verify SOURCE [PATH...]`: compares local files with their Riak copies byte for
 * byte (sha256 of both sides, streamed), lists every difference, exits 1 if there is any.
 *
 * @module
 */
import type { Command } from "commander";
import { addMigrationOptions, concurrencyLevel, positiveInteger } from "./migration-options.ts";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs verify`. */
export function installVerify(program: Command): void {
  const command = program.command("verify")
    .description("compare local files with Riak byte for byte (sha256); exit 1 on any difference")
    .argument("<source>", "the local directory being migrated")
    .argument("[paths...]", "files or directories relative to the source (default: all)")
    .option("--sample <n>", "verify n files chosen at random", positiveInteger)
    .option("--seed <n>", "seed of the random sample (reproducible)", positiveInteger)
    .option("--concurrency <n>", "files compared at once", concurrencyLevel, 4)
    .option("--json", "print a JSON summary");
  addMigrationOptions(command);
  addRiakOptions(command).action(
    async (sourceArg: string, paths: string[], opts: Record<string, unknown>) => {
      const { verifyCommand } = await import("./verify_action.ts");
      await verifyCommand(command, sourceArg, paths, opts);
    },
  );
}
