/**
 * Orphan entries met by rmdir, by a rename over a directory, or by the queued removal of a
 * directory removed locally: names Riak lists in a directory with nothing stored behind them
 * (docs/layout.md, "Garbage"). LOOKUP answers ENOENT for such a name, so no UNLINK ever
 * reaches it: unless they are removed where they are all the directory lists, that directory
 * stays not empty until `riakfs gc --delete` runs.
 *
 * @module
 */

import type { Store } from "../store/store.ts";
import type { Listed } from "./directory_stream.ts";
import type { Logger } from "./log.ts";
import { childPath } from "./node_table.ts";

/**
 * The most names a directory may list for rmdir to take them all for orphan entries: each
 * costs a look at Riak while the rmdir waits; more is a case for `riakfs gc --delete`.
 */
export const ORPHAN_ENTRIES_PER_RMDIR = 100;

/** What {@link emptiedOfOrphans} reads and does, all of the mount's own. */
export interface OrphanRemoval {
  /** The directory's listing as the mount shows it (`.` and `..`, if any, are skipped). */
  listing(path: string): AsyncIterable<Pick<Listed, "name">>;
  /** Whether the listing of directory `path` holds a name besides `.` and `..`. */
  hasEntries(path: string): Promise<boolean>;
  /** Whether the mount finds anything at `path` (open, staged, local, or in Riak). */
  exists(path: string): Promise<boolean>;
  /**
   * Removes Riak's entry of `path` when nothing is stored there (Store.removeOrphanEntry);
   * false when something is, which stays listed.
   */
  removeOrphanEntry(path: string): Promise<boolean>;
  /** The mount changed Riak's `path`: what it remembers of it is old news. */
  changed(path: string): void;
}

/**
 * Whether directory `path` lists nothing once its orphan entries are gone. Every name it
 * lists must be absent wherever the mount looks (so not local, not on its way to Riak, not
 * open), and at most {@link ORPHAN_ENTRIES_PER_RMDIR}: only then are their entries removed,
 * each after Riak is asked once more, by every replica, that nothing is stored there. False
 * leaves every entry of a directory that lists something that is there; one stored after the
 * mount's look (another host's write) stays listed too, and the directory with it.
 */
export async function emptiedOfOrphans(path: string, mount: OrphanRemoval): Promise<boolean> {
  const orphans: string[] = [];
  for await (const { name } of mount.listing(path)) {
    if (name === "." || name === "..") continue;
    if (orphans.length === ORPHAN_ENTRIES_PER_RMDIR) return false;
    const entry = childPath(path, name);
    if (await mount.exists(entry)) return false;
    orphans.push(entry);
  }
  for (const entry of orphans) {
    const removed = await mount.removeOrphanEntry(entry);
    mount.changed(entry);
    if (!removed) return false;
  }
  // What was made in it meanwhile (through this mount, or on its way to Riak) is listed.
  return orphans.length === 0 || !await mount.hasEntries(path);
}

/**
 * Removes Riak's orphan entry at `path` (Store.removeOrphanEntry), saying so when it went;
 * false when something is stored there, which stays listed.
 */
export async function removeOrphanEntrySaid(
  store: Pick<Store, "removeOrphanEntry">,
  path: string,
  logger: Logger,
): Promise<boolean> {
  const removed = await store.removeOrphanEntry(path);
  if (removed) logger.info("orphan entry removed: nothing was stored at it", { path });
  return removed;
}
