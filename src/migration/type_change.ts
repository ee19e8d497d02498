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
import { DirectoryNotEmptyError, NotFoundError, WrongTypeError } from "../store/errors.ts";
import type { DirEntry, FileStat, Store } from "../store/store.ts";
import { mapAhead } from "../util/map_ahead.ts";

/** Requests under way at once while a directory is looked through, or removed. */
const IN_FLIGHT = 8;

/** The store operations the decision needs. */
export type TypeChangeStore = Pick<
  Store,
  "list" | "tryStat" | "remove" | "removeIfUnchanged" | "removeOrphanEntry"
>;

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
 * What the decision looked at in Riak's entry: the removal takes that and nothing else.
 */
interface Examined {
  /** Files and symlinks, as their stats found them. */
  files: FileStat[];
  /** Names listed with nothing stored at them (left by a crash). */
  orphans: Buffer[];
  /** Directories, each after those below it. */
  directories: Buffer[];
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
 * Only what the decision looked at is removed, each file only as it was then, and a directory
 * only once empty: a file written in it, or over it, since (a mount on another host, or on
 * this one, is not stopped by a pre-warm) stays, with what holds it, and the path fails.
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
  let examined: Examined = isDirectory
    ? { files: [], orphans: [], directories: [path] }
    : { files: [remote], orphans: [], directories: [] };
  if (options.drain) {
    if (remote.type === "file") throw kept("SOURCE is drained: it may be a drained file");
    if (isDirectory && await hasEntries(store, path)) {
      throw kept("SOURCE is drained: it may hold drained files");
    }
  } else if (isDirectory) {
    examined = await examine(store, path);
    const newer = examined.files.find((file) => file.mtimeNs > local.mtimeNs);
    if (newer) {
      throw kept(`${displayPath(newer.path)} in it is newer than the local ${local.type}`);
    }
  }
  if (options.dryRun) return;
  if (!await removeExamined(store, examined)) {
    throw kept("written to in Riak while being replaced");
  }
}

async function hasEntries(store: TypeChangeStore, directory: Buffer): Promise<boolean> {
  for await (const _entry of store.list(directory)) return true;
  return false;
}

/** Everything below `directory` (depth first, in listing order), and it. */
async function examine(store: TypeChangeStore, directory: Buffer): Promise<Examined> {
  const examined: Examined = { files: [], orphans: [], directories: [] };
  const visit = async (current: Buffer) => {
    const statOf = (entry: DirEntry) =>
      entry.type === "directory"
        ? Promise.resolve(undefined)
        : store.tryStat(childPath(current, entry.name), { fileOnly: true });
    for await (const [entry, found] of mapAhead(store.list(current), IN_FLIGHT, statOf)) {
      const path = childPath(current, entry.name);
      if (entry.type === "directory") await visit(path);
      else if (found) examined.files.push(found);
      else examined.orphans.push(path);
    }
    examined.directories.push(current);
  };
  await visit(directory);
  return examined;
}

/**
 * Removes what {@link examine} found, as it found it; false, leaving the rest, once something
 * is not: a file changed, or a directory holding what was not examined.
 */
async function removeExamined(store: TypeChangeStore, examined: Examined): Promise<boolean> {
  const removals = mapAhead(
    each(examined.files),
    IN_FLIGHT,
    (file) => store.removeIfUnchanged(file),
  );
  for await (const [, removed] of removals) {
    if (!removed) return false;
  }
  for (const orphan of examined.orphans) {
    await store.removeOrphanEntry(orphan);
    if (await store.tryStat(orphan)) return false;
  }
  for (const directory of examined.directories) {
    try {
      await store.remove(directory, { directoryOnly: true });
    } catch (error) {
      // Filled since, or made a file or symlink since: not what was examined.
      if (error instanceof DirectoryNotEmptyError || error instanceof WrongTypeError) return false;
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  return true;
}

async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
