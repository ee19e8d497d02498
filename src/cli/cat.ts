/**
 * `riakfs cat PATH`: streams a file from Riak to stdout, verifying every chunk's sha256;
 * a mismatch ends the output and the command with a non-zero exit.
 *
 * @module
 */
import type { Command } from "commander";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs cat`. */
export function installCat(program: Command): void {
  const command = program.command("cat")
    .description("write a file from Riak to stdout, verifying its checksums")
    .argument("<path>", "file relative to the migrated root")
    .option("--json", "print {path, size, sha256, base64} instead of the raw bytes");
  addRiakOptions(command).action(async (path: string, opts: Record<string, unknown>) => {
    const { catFile } = await import("./cat_action.ts");
    await catFile(command, path, opts);
  });
}
