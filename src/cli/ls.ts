/**
 * `riakfs ls PATH`: the entries of a directory as Riak holds them, read shard by shard.
 *
 * @module
 */
import type { Command } from "commander";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs ls`. */
export function installLs(program: Command): void {
  const command = program.command("ls")
    .description("list a directory in Riak (a file: itself, as ls does)")
    .argument("[path]", "directory (or file) relative to the migrated root", "")
    .option("-l, --long", "show type, mode, owner, size and mtime of each entry")
    .option("--json", "print a JSON array");
  addRiakOptions(command).action(async (path: string, opts: Record<string, unknown>) => {
    const { listDirectory } = await import("./ls_action.ts");
    await listDirectory(command, path, opts);
  });
}
