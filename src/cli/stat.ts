/**
 * `riakfs stat PATH`: what Riak holds at a path (one head-only get for a file), with the
 * Riak location, so an operator can fetch it with plain tools.
 *
 * @module
 */
import type { Command } from "commander";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs stat`. */
export function installStat(program: Command): void {
  const command = program.command("stat")
    .description("show the attributes and Riak location of a path")
    .argument("<path>", "path relative to the migrated root")
    .option("--json", "print JSON");
  addRiakOptions(command).action(async (path: string, opts: Record<string, unknown>) => {
    const { showStat } = await import("./stat_action.ts");
    await showStat(command, path, opts);
  });
}
