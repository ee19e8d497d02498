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
      nonEmpty,
    )
    .option("--include <glob>", "only files matching (repeatable)", collect, [] as string[])
    .option(
      "--exclude <glob>",
      "skip files and directories matching (repeatable; dir/ skips a directory and all below it)",
      collect,
      [] as string[],
    );
}

/** commander parser: a whole number >= 1, in digits (not `1e3`, `0x10` or ` 4`). */
export function positiveInteger(value: string): number {
  const number = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError(
      `must be a whole number of at least 1, got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

/** Most files handled at once that `--concurrency` takes. */
export const MAX_CONCURRENCY = 256;

/** commander parser of `--concurrency`: a whole number from 1 to {@link MAX_CONCURRENCY}. */
export function concurrencyLevel(value: string): number {
  const number = positiveInteger(value);
  if (number > MAX_CONCURRENCY) {
    throw new InvalidArgumentError(`must be at most ${MAX_CONCURRENCY}, got ${number}`);
  }
  return number;
}

/** commander parser: any text but the empty one (a path "" would be the current directory). */
export function nonEmpty(value: string): string {
  if (value === "") throw new InvalidArgumentError("must not be empty");
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
