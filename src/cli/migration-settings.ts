/**
 * Resolves the options of src/cli/migration-options.ts when `prewarm`, `progress` or
 * `verify` runs: the source directory, the glob filter and the state directory.
 *
 * @module
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { PathFilter } from "../migration/glob.ts";
import { StateDirectory } from "../migration/state.ts";
import type { Namespace } from "../store/layout.ts";

/** The state directory for a source and namespace (or `--state-dir`). */
export function stateDirectoryFor(
  source: string,
  namespace: Namespace,
  opts: Record<string, unknown>,
): StateDirectory {
  if (typeof opts.stateDir === "string") return new StateDirectory(opts.stateDir);
  const key = [namespace.bucketType, namespace.bucket, namespace.preset].join("\0");
  return StateDirectory.for(source, key);
}

/** The globs as a filter; a bad glob is a usage error. */
export function filterFromOptions(command: Command, opts: Record<string, unknown>): PathFilter {
  try {
    return new PathFilter(opts.include as string[], opts.exclude as string[]);
  } catch (error) {
    command.error(`riakfs: ${(error as Error).message}`, { exitCode: 2 });
  }
}

/** The source as an absolute path; not a directory is a usage error. */
export function sourceDirectory(command: Command, source: string): string {
  const absolute = resolve(source);
  let ok = false;
  try {
    ok = statSync(absolute).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) command.error(`riakfs: ${source} is not a directory`, { exitCode: 2 });
  return absolute;
}
