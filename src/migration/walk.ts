/**
 * A streaming walk of a local tree in a stable order.
 *
 * Depth-first, pre-order, with the names of each directory sorted by their bytes, so two
 * walks of an unchanged tree yield the same sequence and a run stopped by its budget can
 * resume after the last path it finished. A directory's handle is closed as soon as its
 * names are read; memory is bounded by the names of the directories on the current path
 * (the largest directory dominates), never by the size of the tree.
 *
 * Paths are bytes relative to the root (no leading `/`), as src/store expects: Linux
 * names need not be UTF-8. A mount's own entries in the tree (its spool, its temporary
 * files: see mount_entries.ts) are left out. The walk stays on the root's filesystem (as
 * `find -xdev`): a directory where another one is mounted (a share, a riakfs mount nested in
 * SOURCE) is yielded as a "mount-point" and not entered, so a drain never deletes through it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BigIntStats, Stats } from "node:fs";
import { lstat, opendir, readFile, realpath, stat } from "node:fs/promises";
import { isDirectoryBeneath, lstatIfExists } from "./file_identity.ts";
import type { PathFilter } from "./glob.ts";
import { isMountsOwnEntry, isSetAsideName } from "./mount_entries.ts";
import { type Restored, restoreSetAside } from "./set_aside.ts";
import { unescapeMountinfo } from "../util/mountinfo.ts";

/** What an entry is (symlinks are not followed). */
export type EntryKind = "file" | "directory" | "symlink" | "other";

/**
 * What a special file (an entry of kind "other") is, as an operator would call it: Riak
 * holds only files, symlinks and directories, so the commands name what they leave alone.
 *
 * @example
 * ```ts
 * specialType(fs.lstatSync("/srv/data/pipe")); // "FIFO"
 * ```
 */
export function specialType(stats: Stats | BigIntStats): string {
  if (stats.isFIFO()) return "FIFO";
  if (stats.isSocket()) return "socket";
  if (stats.isCharacterDevice()) return "character device";
  if (stats.isBlockDevice()) return "block device";
  return "special file";
}

/** One entry of the walk. */
export interface WalkEntry {
  /** Path relative to the root, as bytes; never empty (the root itself is not yielded). */
  path: Buffer;
  /** "mount-point": a directory on another filesystem than the root's, not entered. */
  kind: EntryKind | "mount-point";
}

/** A directory the walk could not read; the walk goes on without it. */
export interface WalkFailure {
  path: Buffer;
  kind: "unreadable";
  error: Error;
}

/** Options of {@link walkTree}. */
export interface WalkOptions {
  /** Prunes excluded directories and drops unselected files (directories are always yielded). */
  filter?: PathFilter;
  /** Yield only entries after this path in walk order (resuming). */
  startAfter?: Uint8Array;
  /** Stop after this path in walk order (inclusive). */
  endAt?: Uint8Array;
  /**
   * Walk only what is below this directory (relative to the root, paths still relative to
   * the root; the directory itself is not yielded). `startAfter` then lies below it too.
   */
  under?: Uint8Array;
  /** Entries read from the kernel per getdents call; default 256. */
  direntBatch?: number;
  /**
   * Given, the walk puts back what an interrupted local deletion left set aside in each
   * directory it reads (set_aside.ts) before it sorts its names, so it walks those files under
   * their own names, and tells this what it did (`directory`: relative, latin1).
   */
  onSetAsideRestored?: (directory: string, restored: Restored) => void;
}

interface Name {
  /** The name's bytes as a latin1 string: compact, and `<` compares it by bytes. */
  name: string;
  kind: EntryKind;
}

interface Frame {
  /** Relative path of the directory, latin1 (empty = root). */
  path: string;
  names: Name[];
  next: number;
}

/**
 * Walks `root` and yields its entries in walk order (see {@link compareWalkOrder}).
 *
 * @example
 * ```ts
 * for await (const entry of walkTree("/srv/data")) {
 *   if (entry.kind === "file") console.log(entry.path.toString());
 * }
 * ```
 */
export async function* walkTree(
  root: string | Uint8Array,
  options: WalkOptions = {},
): AsyncGenerator<WalkEntry | WalkFailure> {
  const rootBytes = Buffer.from(root);
  const startAfter = options.startAfter ? Buffer.from(options.startAfter).toString("latin1") : "";
  const endAt = options.endAt ? Buffer.from(options.endAt).toString("latin1") : undefined;
  const batch = options.direntBatch ?? 256;
  const stack: Frame[] = [];
  const under = options.under ? Buffer.from(options.under) : Buffer.alloc(0);
  if (under.length > 0 && !await isDirectoryBeneath(rootBytes, under)) {
    const error = new Error(`${under.toString()}: not a directory inside the tree`);
    yield { path: under, kind: "unreadable", error };
    return;
  }
  const filesystem = await filesystemCheck(rootBytes);
  if (under.length > 0 && !await filesystem.onRootsFilesystem(under)) {
    yield { path: under, kind: "mount-point" };
    return;
  }
  const listNames = async (relative: string): Promise<Name[] | Error> => {
    const directory = relative === ""
      ? rootBytes
      : Buffer.concat([rootBytes, Buffer.from(`/${relative}`, "latin1")]);
    const names = await readNames(directory, batch);
    const onRestored = options.onSetAsideRestored;
    if (names instanceof Error || onRestored === undefined) return names;
    return await withSetAsideRestored(
      directory,
      names,
      batch,
      (restored) => onRestored(relative, restored),
    );
  };
  const first = await listNames(under.toString("latin1"));
  if (first instanceof Error) {
    yield { path: under, kind: "unreadable", error: first };
    return;
  }
  stack.push({ path: under.toString("latin1"), names: first, next: 0 });
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next >= frame.names.length) {
      stack.pop();
      continue;
    }
    const { name, kind } = frame.names[frame.next++];
    if (isMountsOwnEntry(frame.path, name)) continue;
    const path = frame.path === "" ? name : `${frame.path}/${name}`;
    if (endAt !== undefined && compareWalkOrderText(path, endAt) > 0) return;
    const bytes = Buffer.from(path, "latin1");
    const afterCursor = startAfter === "" || compareWalkOrderText(path, startAfter) > 0;
    if (kind === "directory") {
      const holdsCursor = !afterCursor &&
        (startAfter === path || startAfter.startsWith(path + "/"));
      if (!afterCursor && !holdsCursor) continue;
      if (options.filter && !options.filter.walksInto(bytes)) continue;
      if (!await filesystem.onRootsFilesystem(bytes)) {
        if (afterCursor) yield { path: bytes, kind: "mount-point" };
        continue;
      }
      if (afterCursor) yield { path: bytes, kind };
      // Listed as a directory, maybe hours ago: replaced by a symlink since, it is not
      // followed out of the tree.
      if (!await isDirectoryBeneath(rootBytes, bytes)) {
        // Removed since it was listed (as a drain's empty leftover of a directory Riak no
        // longer holds is): nothing below it to walk, as for one gone before it is read.
        const absolute = Buffer.concat([rootBytes, Buffer.from(`/${path}`, "latin1")]);
        if (await lstatIfExists(absolute).catch(() => null) === undefined) continue;
        yield {
          path: bytes,
          kind: "unreadable",
          error: new Error(`${path}: replaced by a symlink or moved since it was listed`),
        };
        continue;
      }
      const names = await listNames(path);
      if (names instanceof Error) {
        if ((names as NodeJS.ErrnoException).code === "ENOENT") continue;
        yield { path: bytes, kind: "unreadable", error: names };
        continue;
      }
      stack.push({ path, names, next: 0 });
      continue;
    }
    if (!afterCursor) continue;
    if (options.filter && !options.filter.selects(bytes)) continue;
    yield { path: bytes, kind: filesystem.isMountPoint(path) ? "mount-point" : kind };
  }
}

/**
 * Compares two relative paths in walk order: segment by segment, each by its bytes. A
 * directory comes before everything below it. Negative when `a` comes first.
 */
export function compareWalkOrder(a: Uint8Array, b: Uint8Array): number {
  return compareWalkOrderText(
    Buffer.from(a).toString("latin1"),
    Buffer.from(b).toString("latin1"),
  );
}

function compareWalkOrderText(a: string, b: string): number {
  const as = a.split("/");
  const bs = b.split("/");
  const n = Math.min(as.length, bs.length);
  for (let i = 0; i < n; i++) {
    if (as[i] !== bs[i]) return as[i] < bs[i] ? -1 : 1;
  }
  return as.length - bs.length;
}

/** Options of {@link countTree}. */
export interface CountOptions {
  /** As {@link WalkOptions.filter}. */
  filter?: PathFilter;
  /** As {@link WalkOptions.startAfter}. */
  startAfter?: Uint8Array;
  /** Stops the count (it then resolves undefined). */
  signal?: AbortSignal;
}

/**
 * Counts the files and symlinks {@link walkTree} would yield with the same options, without
 * its order: names are neither sorted nor kept (only those of subdirectories, until they are
 * visited), so a directory of a million files costs no memory. Directories it cannot read
 * count as empty.
 */
export async function countTree(
  root: string | Uint8Array,
  options: CountOptions = {},
): Promise<number | undefined> {
  const rootBytes = Buffer.from(root);
  const startAfter = options.startAfter ? Buffer.from(options.startAfter).toString("latin1") : "";
  let count = 0;
  const filesystem = await filesystemCheck(rootBytes);
  /** Counts below `path` (latin1, "" for the root); false once stopped. */
  const visit = async (path: string): Promise<boolean> => {
    const directory = path === ""
      ? rootBytes
      : Buffer.concat([rootBytes, Buffer.from(`/${path}`, "latin1")]);
    const subdirectories: string[] = [];
    const read = await forEachName(directory, 256, (name, kind) => {
      if (options.signal?.aborted) return false;
      if (isMountsOwnEntry(path, name)) return true;
      const child = path === "" ? name : `${path}/${name}`;
      const bytes = Buffer.from(child, "latin1");
      const afterCursor = startAfter === "" || compareWalkOrderText(child, startAfter) > 0;
      if (kind === "directory") {
        const holdsCursor = !afterCursor &&
          (startAfter === child || startAfter.startsWith(child + "/"));
        if ((afterCursor || holdsCursor) && (options.filter?.walksInto(bytes) ?? true)) {
          subdirectories.push(child);
        }
      } else if (
        (kind === "file" || kind === "symlink") && afterCursor &&
        (options.filter?.selects(bytes) ?? true) && !filesystem.isMountPoint(child)
      ) count++;
      return true;
    });
    if (read === false) return false;
    for (const child of subdirectories) {
      // Replaced by a symlink since it was listed: not followed out of the tree.
      const bytes = Buffer.from(child, "latin1");
      if (!await isDirectoryBeneath(rootBytes, bytes)) continue;
      if (!await filesystem.onRootsFilesystem(bytes)) continue;
      if (!await visit(child)) return false;
    }
    return true;
  };
  return await visit("") ? count : undefined;
}

/** Whether entries of the tree (relative to its root) belong to the tree's filesystem. */
interface FilesystemCheck {
  /**
   * Whether a directory is on the root's filesystem, by st_dev (another filesystem mounted
   * there is not the tree's), and nothing is mounted on it. A directory that cannot be looked
   * at counts as on it (reading it reports the problem); so does everything when the root
   * cannot be.
   */
  onRootsFilesystem(relative: Buffer): Promise<boolean>;
  /**
   * Whether something is mounted at `relative` (latin1), by the mount table as the walk began:
   * a bind mount of a directory or file of the root's own filesystem has its st_dev, and a
   * drain through it deleted files outside SOURCE.
   */
  isMountPoint(relative: string): boolean;
}

async function filesystemCheck(root: Buffer): Promise<FilesystemCheck> {
  const rootDevice = await stat(root, { bigint: true }).then((stats) => stats.dev, () => undefined);
  const mounted = await mountPointsBelow(root);
  return {
    isMountPoint: (relative) => mounted.has(relative),
    onRootsFilesystem: async (relative) => {
      if (mounted.has(relative.toString("latin1"))) return false;
      if (rootDevice === undefined) return true;
      const at = Buffer.concat([root, Buffer.from("/"), relative]);
      const device = await lstat(at, { bigint: true }).then((stats) => stats.dev, () => undefined);
      return device === undefined || device === rootDevice;
    },
  };
}

/**
 * The mount points below `root` (relative to it, latin1), from /proc/self/mountinfo; none
 * where it cannot be read.
 */
async function mountPointsBelow(root: Buffer): Promise<Set<string>> {
  const below = new Set<string>();
  let table: string;
  let real: string;
  try {
    table = await readFile("/proc/self/mountinfo", "latin1");
    // Deno gives a string whatever the encoding (see forEachName).
    real = Buffer.from(await realpath(root, { encoding: "buffer" })).toString("latin1");
  } catch {
    return below;
  }
  const prefix = real === "/" ? "/" : `${real}/`;
  for (const line of table.split("\n")) {
    const escaped = line.split(" ")[4];
    if (escaped === undefined) continue;
    const point = unescapeMountinfo(escaped);
    if (point.length > prefix.length && point.startsWith(prefix)) {
      below.add(point.slice(prefix.length));
    }
  }
  return below;
}

/** Reads and sorts one directory's names, closing its handle before returning. */
async function readNames(directory: Buffer, batch: number): Promise<Name[] | Error> {
  const names: Name[] = [];
  const read = await forEachName(directory, batch, (name, kind) => {
    names.push({ name, kind });
    return true;
  });
  if (read instanceof Error) return read;
  names.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return names;
}

/**
 * `names` of `directory` with what a deletion left set aside in it put back (see
 * {@link WalkOptions.onSetAsideRestored}): read again once any was, for the kinds of the
 * names put back (a directory or symlink saved at the name is set aside too); the private
 * names stay listed (the walk leaves them out).
 */
async function withSetAsideRestored(
  directory: Buffer,
  names: Name[],
  batch: number,
  onRestored: (restored: Restored) => void,
): Promise<Name[]> {
  let putBack = false;
  for (const aside of names.filter((n) => isSetAsideName(n.name))) {
    const name = Buffer.from(aside.name, "latin1");
    const restored = await restoreSetAside(directory, name).catch(
      // Unreadable or read-only: it stays set aside (and hidden) until a later walk can.
      (): Restored => ({ aside: name, putBack: [], kept: [] }),
    );
    putBack ||= restored.putBack.length > 0;
    onRestored(restored);
  }
  if (!putBack) return names;
  const again = await readNames(directory, batch);
  return again instanceof Error ? names : again;
}

/**
 * Calls `onName` with each name of `directory` (latin1) and its kind, in the kernel's order,
 * until it returns false; resolves with false then, with the error if the directory cannot
 * be read, else true. The handle is closed before it resolves.
 */
export async function forEachName(
  directory: Buffer,
  batch: number,
  onName: (name: string, kind: EntryKind) => boolean,
): Promise<boolean | Error> {
  try {
    const dir = await opendir(directory, { encoding: "buffer", bufferSize: batch } as never);
    for await (const dirent of dir) {
      const raw = dirent.name as unknown;
      // Deno ignores encoding "buffer" and gives strings (UTF-8 names only there).
      const name = (Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).toString("latin1");
      let kind: EntryKind | undefined = dirent.isFile()
        ? "file"
        : dirent.isDirectory()
        ? "directory"
        : dirent.isSymbolicLink()
        ? "symlink"
        : undefined;
      if (kind === undefined) kind = await kindByLstat(directory, name, dirent);
      // Leaving the loop early closes the directory.
      if (!onName(name, kind)) return false;
    }
    return true;
  } catch (error) {
    return error as Error;
  }
}

/** Some filesystems report no type in getdents (DT_UNKNOWN): ask lstat. */
async function kindByLstat(
  directory: Buffer,
  name: string,
  dirent: { isFIFO(): boolean; isSocket(): boolean; isBlockDevice(): boolean },
): Promise<EntryKind> {
  if (dirent.isFIFO() || dirent.isSocket() || dirent.isBlockDevice()) return "other";
  try {
    const stats = await lstat(Buffer.concat([directory, Buffer.from("/" + name, "latin1")]));
    if (stats.isFile()) return "file";
    if (stats.isDirectory()) return "directory";
    if (stats.isSymbolicLink()) return "symlink";
  } catch {
    // Vanished meanwhile: reported as "other" and skipped by the caller.
  }
  return "other";
}
