/**
 * What a drain leaves of a directory another host removed from Riak since. A drain deletes
 * the local files it verified in Riak and leaves their directories, empty; another host
 * removing such a directory in Riak (its files first) leaves this host's empty one, which
 * the next `prewarm --delete-local` would otherwise make in Riak again, for every host.
 *
 * An empty directory an application made must still be uploaded, so only one Riak provably
 * held goes: made before the last complete pass began (its birth time; that pass walked it,
 * and made it in Riak or found it there), holding nothing but such directories (a file, a
 * symlink, a special file or a mount's own entry keeps it), each taking part by itself with
 * the run's globs (an excluded one was never made in Riak), on SOURCE's filesystem, and
 * unchanged within the quiet period (an application about to write into it). A filesystem
 * that keeps no birth time keeps every such directory, as before. The pre-warm also asks
 * Riak: nothing is there now, and the directory's index is, emptied (its files were there).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BigIntStats } from "node:fs";
import { rmdir } from "node:fs/promises";
import { lstatIfExists } from "./file_identity.ts";
import type { PathFilter } from "./glob.ts";
import { RACY_WINDOW_MS } from "./local_file.ts";
import { isMountsOwnEntry } from "./mount_entries.ts";
import { forEachName } from "./walk.ts";

/** What a directory must meet to be taken for a drain's leftover (see the module). */
export interface EmptiedBounds {
  /** The start of the last complete pass, walked with the run's globs (ms since the epoch). */
  passStartMs: number;
  /** Now less the quiet period (ms since the epoch): a directory changed since is kept. */
  quietSinceMs: number;
  /** The run's globs: a directory not taking part by itself was never made in Riak. */
  filter?: PathFilter;
  /** SOURCE's device: a directory of another one is a mount point. */
  device: bigint;
}

/** Most directories a subtree taken for a drain's leftover may hold: a larger one is kept. */
export const EMPTIED_SUBTREE_LIMIT = 1000;

/**
 * The directories of the subtree at `path` (relative to `root`), deepest first, when it is
 * all a drain's leftover (see the module); undefined when anything in it is to be kept.
 *
 * @example
 * ```ts
 * const bounds = { passStartMs, quietSinceMs: Date.now() - 60_000, device: rootStats.dev };
 * await emptiedSubtree(Buffer.from("/srv/data"), Buffer.from("old/cache"), bounds);
 * // [<old/cache/2019>, <old/cache>]
 * ```
 */
export async function emptiedSubtree(
  root: Buffer,
  path: Buffer,
  bounds: EmptiedBounds,
): Promise<Buffer[] | undefined> {
  const found: Buffer[] = [];
  const toLook = [path];
  while (toLook.length > 0) {
    const directory = toLook.pop()!;
    if (found.length >= EMPTIED_SUBTREE_LIMIT) return undefined;
    if (!(bounds.filter?.selectsDirectory(directory) ?? true)) return undefined;
    const absolute = Buffer.concat([root, Buffer.from("/"), directory]);
    const stats = await lstatIfExists(absolute).catch(() => undefined);
    if (!stats?.isDirectory() || stats.dev !== bounds.device || !walkedAndQuiet(stats, bounds)) {
      return undefined;
    }
    const parent = directory.toString("latin1");
    const listed = await forEachName(absolute, 64, (name, kind) => {
      if (kind !== "directory" || isMountsOwnEntry(parent, name)) return false;
      toLook.push(Buffer.from(`${parent}/${name}`, "latin1"));
      return true;
    });
    if (listed !== true) return undefined;
    found.push(directory);
  }
  // Found parents first: reversed, each comes after everything below it.
  return found.reverse();
}

/**
 * Removes `directories` (relative to `root`, deepest first, from {@link emptiedSubtree}) with
 * rmdir(2), which refuses one not empty: false when one was (something was put there since),
 * and the rest stay.
 */
export async function removeEmptied(root: Buffer, directories: Buffer[]): Promise<boolean> {
  for (const directory of directories) {
    try {
      await rmdir(Buffer.concat([root, Buffer.from("/"), directory]));
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Born before the pass began (by more than a tick of the filesystem's clock, which stamps a
 * directory made just after the start a little before it), and unchanged within the quiet
 * period. A birth time of 0 is none (the filesystem keeps none).
 */
function walkedAndQuiet(stats: BigIntStats, bounds: EmptiedBounds): boolean {
  const bornNs = stats.birthtimeNs;
  const changedNs = stats.ctimeNs > stats.mtimeNs ? stats.ctimeNs : stats.mtimeNs;
  return bornNs > 0n && bornNs < BigInt(bounds.passStartMs - RACY_WINDOW_MS) * 1_000_000n &&
    changedNs < BigInt(bounds.quietSinceMs) * 1_000_000n;
}
