/**
 * `riakfs demo`: the whole job on one machine in a few seconds. It creates a small legacy
 * tree, starts the embedded Riak server in this process, mounts the tree in migrate mode,
 * reads and writes through the mount like an application would, shows what moved into
 * Riak, then unmounts and removes everything it created. Needs root (FUSE mounting).
 *
 * @module
 */
import type { Command } from "commander";

/** The flags of `riakfs demo`, as commander parses them. */
export interface DemoFlags {
  keep?: boolean;
}

/** Installs `riakfs demo`. */
export function installDemo(program: Command): void {
  program.command("demo")
    .description(
      "show a migration end to end: sample tree, embedded Riak, migrate-mode mount (needs root)",
    )
    .option("--keep", "leave the demo directory in place afterwards (for a look around)")
    .action(async (flags: DemoFlags) => {
      const { runDemo } = await import("./demo_action.ts");
      process.exitCode = await runDemo(flags, (line) => process.stdout.write(line + "\n"));
    });
}
