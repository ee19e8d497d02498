/**
 * The options `prewarm`, `progress` and `verify` share (state directory, globs) and their
 * number parser. This module only declares them, so that `--help` loads no migration code;
 * src/cli/migration-settings.ts resolves them when a command runs.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { DEFAULT_STATE_ROOT } from "../migration/defaults.ts";

/** Adds `--state-dir`, `--include` and `--exclude`, shared by prewarm, progress and verify. */
export function addMigrationOptions(command: Command): Command {
  return command
    .option(
      "--state-dir <dir>",
      `where lock, state and history live (default ${DEFAULT_STATE_ROOT}/<hash of source and namespace>)`,
    )
    .option("--include <glob>", "only files matching (repeatable)", collect, [] as string[])
    .option(
      "--exclude <glob>",
      "skip files and directories matching (repeatable)",
      collect,
      [] as string[],
    );
}

/** commander parser: a whole number >= 1. */
export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError("must be a whole number of at least 1");
  }
  return number;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
