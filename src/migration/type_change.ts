/**
 * A path whose type changed in SOURCE since Riak got it (a directory replaced by a file, a file
 * by a directory, either by a symlink, or back): Riak's entry of the old type is removed, so
 * the pre-warm can store the new one, only where SOURCE shows all it holds as gone and
 * replaced. Where Riak's entry may hold what exists nowhere else, it stays and the path fails
 * with a reason that says what to do.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { childPath, displayPath } from "../store/path.ts";
import type { FileStat, Store } from "../store/store.ts";

/** The store operations the decision needs. */
export type TypeChangeStore = Pick<Store, "list" | "tryStat" | "remove">;

/** SOURCE's entry at the path now. */
export interface LocalEntry {
  type: "file" | "symlink" | "directory";
  mtimeNs: bigint;
}

/**
 * Riak's entry at a path holds what SOURCE does not show replaced: it stays, and the path
 * fails with this (one line) until the operator moves one of the two aside.
 */
export class ReplacedTypeKeptError extends Error {
  constructor(path: Buffer, remote: FileStat, local: LocalEntry, why: string) {
    const kind = remote.type;
    super(
      `${displayPath(path)}: Riak holds a ${kind} where SOURCE now has a ${local.type}, ` +
        `left in Riak (${why}): rename the local ${local.type}, or move Riak's ${kind} aside ` +
        `through a riakfs mount, then run again`,
    );
    this.name = "ReplacedTypeKeptError";
  }
}

/**
 * Removes Riak's entry `remote` at `path`, of another type than SOURCE's `local`, or throws
 * {@link ReplacedTypeKeptError} and leaves it. Removed only where all it holds is shown by
 * SOURCE as replaced: nothing in it is newer than the local entry (written since, through a
 * mount or by another host); and, where SOURCE is drained (`drain`: by this run, an earlier
 * one or a mount), it is a symlink or an empty directory (files only are drained: a file, or a
 * directory's files, may be the only copy of a file drained from SOURCE before). With
 * `dryRun` only the decision is made.
 *
 * Removed first, then the caller stores the new entry: a crash between the two loses nothing,
 * as SOURCE still holds the new entry (a drain deletes it only once Riak's copy is verified)
 * and Riak's old one held nothing SOURCE did not replace.
 */
export async function removeReplacedEntry(
  store: TypeChangeStore,
  path: Buffer,
  remote: FileStat,
  local: LocalEntry,
  options: { drain: boolean; dryRun: boolean },
): Promise<void> {
  const kept = (why: string) => new ReplacedTypeKeptError(path, remote, local, why);
  // riak-fuse's objects and folders: nothing says where they came from.
  if (!remote.managed) throw kept("not written by riakfs");
  const isDirectory = remote.type === "directory";
  // A directory's own mtime moves with its entries: what is below it tells, file by file.
  if (!isDirectory && remote.mtimeNs > local.mtimeNs) {
    throw kept(`newer than the local ${local.type}`);
  }
  if (options.drain) {
    if (remote.type === "file") throw kept("SOURCE is drained: it may be a drained file");
    if (isDirectory && await hasEntries(store, path)) {
      throw kept("SOURCE is drained: it may hold drained files");
    }
  } else if (isDirectory) {
    const newer = await newerBelow(store, path, local.mtimeNs);
    if (newer) throw kept(`${displayPath(newer)} in it is newer than the local ${local.type}`);
  }
  if (options.dryRun) return;
  // In a drain only an empty directory gets here: one filled since is refused (ENOTEMPTY).
  await store.remove(path, { recursive: isDirectory && !options.drain });
}

async function hasEntries(store: TypeChangeStore, directory: Buffer): Promise<boolean> {
  for await (const _entry of store.list(directory)) return true;
  return false;
}

/**
 * The first file or symlink below `directory` whose mtime is later than `mtimeNs`, if any:
 * written after SOURCE's replacement, so not what SOURCE replaced.
 */
async function newerBelow(
  store: TypeChangeStore,
  directory: Buffer,
  mtimeNs: bigint,
): Promise<Buffer | undefined> {
  for await (const entry of store.list(directory)) {
    const path = childPath(directory, entry.name);
    if (entry.type === "directory") {
      const newer = await newerBelow(store, path, mtimeNs);
      if (newer) return newer;
      continue;
    }
    const found = await store.tryStat(path, { fileOnly: true });
    if (found && found.mtimeNs > mtimeNs) return path;
  }
  return undefined;
}
