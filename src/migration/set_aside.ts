/**
 * Deleting a local file by identity, not by name: an unlink goes by the name, and an
 * application that saves atomically (writes `f.tmp`, then renames it over `f`) between the
 * last look at `f` and the unlink would lose its new version, never uploaded. So the file is
 * first renamed to a private name in its own directory, `.riakfs-deleting.<random>.<name>`
 * (the same filesystem: the rename is atomic, and takes no inode, so a disk without a free
 * inode still drains); what was moved is then looked at, deleted if it is the version hashed,
 * else put back. A name too long to be kept whole in that form (NAME_MAX) goes into a
 * private directory of its own instead, `.riakfs-deleting.<random>/<name>`: that one takes
 * an inode, so such a file waits (ENOSPC) until the deletions of others freed one.
 *
 * A crash between the move and the last step leaves that private name: it says it is
 * riakfs's (hidden from the mount's listings, never walked or uploaded: mount_entries.ts) and
 * holds the original name, and {@link restoreSetAside} puts the file back under it unless that
 * name is taken (then it stays where it is, and is reported each time).
 *
 * @module
 */
import { Buffer, isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import { link, lstat, mkdir, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { basename } from "node:path";
import { lstatIfExists } from "./file_identity.ts";
import { isSetAsideName, SET_ASIDE_PREFIX } from "./mount_entries.ts";

/**
 * The `.riakfs-deleting.<random>` of this process's deletions under way: a listing of their
 * directory meanwhile (the mount's, a walk's) does not take them for leftovers.
 */
const underWay = new Set<string>();
/** Linux's longest name of a directory entry, in bytes. */
const NAME_MAX = 255;
/** Length of `.riakfs-deleting.<random>`, the start of every private name. */
const TAG_LENGTH = SET_ASIDE_PREFIX.length + 12;

/** A file moved aside to be deleted. */
export interface SetAside {
  /** Its private name. */
  file: Buffer;
  /** Where it was. */
  original: Buffer;
  /** The private directory it is in, for a name too long for a private name of its own. */
  directory?: Buffer;
}

/**
 * Moves `original` to a new private name beside it (see the module's doc); undefined when
 * nothing was there (gone since it was looked at).
 *
 * @example
 * ```ts
 * const aside = await setAside(Buffer.from("/srv/data/report.txt"));
 * ```
 */
export async function setAside(original: Buffer): Promise<SetAside | undefined> {
  const slash = original.lastIndexOf(0x2f);
  const parent = slash === -1 ? Buffer.from(".") : original.subarray(0, slash);
  const name = original.subarray(slash + 1);
  const tag = `${SET_ASIDE_PREFIX}${randomBytes(6).toString("hex")}`;
  const within = (entry: Buffer) => Buffer.concat([parent, Buffer.from("/"), entry]);
  const flat = Buffer.concat([Buffer.from(`${tag}.`), name]);
  const directory = flat.length > NAME_MAX ? within(Buffer.from(tag)) : undefined;
  const aside = {
    file: directory ? Buffer.concat([directory, Buffer.from("/"), name]) : within(flat),
    original,
    directory,
  };
  underWay.add(tag);
  try {
    // Deno's mkdir takes no bytes; a name that is UTF-8 is the same as text.
    if (directory) await mkdir(isUtf8(directory) ? directory.toString() : directory, 0o700);
    await rename(original, aside.file);
    return aside;
  } catch (error) {
    underWay.delete(tag);
    if (directory) await rmdir(directory).catch(() => {});
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Ends the deletion of `aside` (done, or given up): from now on a listing takes what is left
 * of it for a leftover.
 */
export function setAsideSettled(aside: SetAside): void {
  underWay.delete(tagOf(Buffer.from(basename((aside.directory ?? aside.file).toString("latin1")))));
}

/** `.riakfs-deleting.<random>` of a private name (either form). */
function tagOf(privateName: Buffer): string {
  return privateName.subarray(0, TAG_LENGTH).toString("latin1");
}

/** Deletes a file set aside, and its private directory. */
export async function discardSetAside(aside: SetAside): Promise<void> {
  await unlink(aside.file);
  if (aside.directory) await rmdir(aside.directory);
}

/**
 * Puts a file set aside back under its original name, never over anything: `link` fails
 * where the name holds a file again (an application saved once more meanwhile). That one is
 * newer, and the one set aside may be the only copy of its own version: it is then left
 * where it is, as is (no data is deleted on a guess), and the answer says so. A name that
 * holds the very file set aside (a put back killed between its link and its unlink) only
 * loses its private second name. A directory moved aside goes back by a rename.
 *
 * @example
 * ```ts
 * if (await putBack(aside) === "name-taken") log(`kept as ${aside.file}`);
 * ```
 */
export async function putBack(aside: SetAside): Promise<"put-back" | "name-taken"> {
  if ((await lstat(aside.file)).isDirectory()) {
    if (!await renameDirectoryIfFree(aside.file, aside.original)) return "name-taken";
  } else {
    try {
      await link(aside.file, aside.original);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (!await sameFile(aside.file, aside.original)) return "name-taken";
    }
    await unlink(aside.file);
  }
  if (aside.directory) await removeIfEmpty(aside.directory);
  return "put-back";
}

/**
 * Renames directory `from` (one an application made at the name just before it was moved
 * aside: no link can name a directory) to `to` where nothing is there. rename(2) cannot be
 * told not to replace: it fails over a file or a directory that holds anything, so an empty
 * directory made at `to` in the moment since the look is the most it can replace.
 */
async function renameDirectoryIfFree(from: Buffer, to: Buffer): Promise<boolean> {
  if (await lstatIfExists(to)) return false;
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR" || code === "ENOTEMPTY" || code === "EEXIST") return false;
    throw error;
  }
}

/** Whether both paths are names of one file (device and inode). */
async function sameFile(one: Buffer, other: Buffer): Promise<boolean> {
  const [a, b] = await Promise.all([lstatIfExists(one), lstatIfExists(other)]);
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** What {@link restoreSetAside} did with a private name a deletion left. */
export interface Restored {
  /** The private name. */
  aside: Buffer;
  /** Names (bytes) put back into the parent directory. */
  putBack: Buffer[];
  /**
   * What stays set aside, relative to the parent directory: its name is taken by another
   * file (or it is no file riakfs set aside). The operator's to look at.
   */
  kept: Buffer[];
}

/**
 * Restores what a deletion interrupted (a crash) left in `parent` as private name `name`
 * (see the module's doc): its file goes back under its own name where that name is free (a
 * private directory goes once empty). Nothing is deleted but an empty private directory.
 *
 * @example
 * ```ts
 * const { putBack, kept } = await restoreSetAside(Buffer.from("/srv/data"), Buffer.from(".riakfs-deleting.1f2e3d4c5b6a.report.txt"));
 * ```
 */
export async function restoreSetAside(parent: Buffer, name: Buffer): Promise<Restored> {
  const restored: Restored = { aside: name, putBack: [], kept: [] };
  if (underWay.has(tagOf(name))) return restored;
  if (!isSetAsideName(name.toString("latin1"))) {
    restored.kept.push(name); // Not a name riakfs makes: someone else's, left alone.
    return restored;
  }
  const flat = name.length > TAG_LENGTH;
  const within = (entry: Buffer) => Buffer.concat([parent, Buffer.from("/"), entry]);
  const directory = flat ? undefined : within(name);
  const asides: { entry: Buffer; aside: SetAside }[] = flat
    ? [{
      entry: name,
      aside: { file: within(name), original: within(name.subarray(TAG_LENGTH + 1)) },
    }]
    : (await readdir(directory!, { encoding: "buffer" }) as unknown[]).map((raw) => {
      // Deno ignores encoding "buffer" and gives strings (UTF-8 names only there).
      const entry = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
      const file = Buffer.concat([directory!, Buffer.from("/"), entry]);
      return { entry, aside: { file, original: within(entry), directory } };
    });
  for (const { entry, aside } of asides) {
    // Whatever was at the name when it was moved aside: a directory or symlink saved there too.
    const outcome = await putBack(aside).catch(() => "name-taken");
    if (outcome === "put-back") restored.putBack.push(aside.original.subarray(parent.length + 1));
    else restored.kept.push(flat ? name : Buffer.concat([name, Buffer.from("/"), entry]));
  }
  if (directory) await removeIfEmpty(directory);
  return restored;
}

/** Removes a private directory once nothing is left in it (gone already: fine). */
async function removeIfEmpty(directory: Buffer): Promise<void> {
  try {
    await rmdir(directory);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOENT") throw error;
  }
}
