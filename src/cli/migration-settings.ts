/**
 * Resolves the options of src/cli/migration-options.ts when `prewarm`, `progress` or
 * `verify` runs: the source directory, the glob filter and the state directory.
 *
 * @module
 */
import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { readMounts } from "../fuse/mount.ts";
import { PathFilter } from "../migration/glob.ts";
import { StateDirectory } from "../migration/state.ts";
import type { Namespace } from "../store/layout.ts";
import { requireTextPath } from "./raw_args.ts";

/** The state directory for a source and namespace (or `--state-dir`). */
export function stateDirectoryFor(
  source: string,
  namespace: Namespace,
  opts: Record<string, unknown>,
): StateDirectory {
  const warn = (message: string) => process.stderr.write(`riakfs: warning: ${message}\n`);
  if (typeof opts.stateDir === "string") return new StateDirectory(opts.stateDir, warn);
  const key = [namespace.bucketType, namespace.bucket, namespace.preset].join("\0");
  return StateDirectory.for(source, key, undefined, warn);
}

/** The globs as a filter; a bad glob is a usage error. */
export function filterFromOptions(command: Command, opts: Record<string, unknown>): PathFilter {
  try {
    return new PathFilter(opts.include as string[], opts.exclude as string[]);
  } catch (error) {
    command.error(`riakfs: ${(error as Error).message}`, { exitCode: 2 });
  }
}

/**
 * The source as an absolute path. Not a directory is a usage error, and so is a path inside
 * a riakfs mount: the migrated directory is the mount's source, and going through the mount
 * would copy what it serves from Riak back into Riak, and delete (`--delete-local`) through
 * it, which removes Riak's copies too. So is a path that is not UTF-8 ({@link requireTextPath}).
 */
export async function sourceDirectory(command: Command, source: string): Promise<string> {
  requireTextPath(command, "SOURCE", source, "give it by a symlink whose name is UTF-8");
  const absolute = resolve(source);
  let real: string | undefined;
  try {
    // The native one: the other reads each symlink as text, and so fails on the symlink
    // that stands for a directory whose name is not UTF-8 (see requireTextPath).
    if (statSync(absolute).isDirectory()) real = realpathSync.native(absolute);
  } catch {
    real = undefined;
  }
  if (real === undefined) command.error(`riakfs: ${source} is not a directory`, { exitCode: 2 });
  const mount = (await readMounts()).find((mounted) =>
    mounted.fstype === RIAKFS_FSTYPE &&
    (real === mounted.mountpoint || real.startsWith(`${mounted.mountpoint}/`))
  );
  if (mount) {
    command.error(
      `riakfs: ${source} is inside the riakfs mount at ${mount.mountpoint}; give the directory it mounts (its SOURCE)`,
      { exitCode: 2 },
    );
  }
  return absolute;
}

/** The type /proc/self/mountinfo shows for riakfs mounts (`-o subtype` changes it). */
const RIAKFS_FSTYPE = "fuse.riakfs";
