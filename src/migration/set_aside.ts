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
 * Another process lists the directory meanwhile (a mount while a pre-warm deletes, or the
 * other way round): it must not take a deletion under way for a leftover, or it puts the file
 * back while the deletion checks and unlinks it. So the deleting process holds the file open
 * (read-only) from before its move until the deletion settled, and a private name some process
 * holds open (/proc) is left alone; a crash closes every handle, so its leftover goes back at
 * the next listing or walk (one a reader still holds open: once it closed it). A process that
 * cannot read the other's /proc entries (another user, another host) may still put the file
 * back: the deleting side then finds its private name gone, and keeps the file, in use.
 *
 * @module
 */
import { Buffer, isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  rename,
  rmdir,
  unlink,
} from "node:fs/promises";
import { basename } from "node:path";
import { lstatIfExists } from "./file_identity.ts";
import { isSetAsideName, SET_ASIDE_PREFIX } from "./mount_entries.ts";
import { openDescriptors, processIds } from "../util/process.ts";

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
  /**
   * The file as opened before the move, held until the deletion settled: it tells other
   * processes the deletion is under way (see the module's doc).
   */
  held?: FileHandle;
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
  // Not a regular file by now (a symlink, a FIFO saved at the name): moved unheld, and put
  // back once its identity is looked at.
  const held = await open(
    asPath(original),
    constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
  ).catch((error) => (error as NodeJS.ErrnoException).code === "ENOENT" ? null : undefined);
  if (held === null) return undefined;
  const aside = {
    file: directory ? Buffer.concat([directory, Buffer.from("/"), name]) : within(flat),
    original,
    directory,
    held,
  };
  underWay.add(tag);
  try {
    if (directory) await mkdir(asPath(directory), 0o700);
    await rename(original, aside.file);
    return aside;
  } catch (error) {
    underWay.delete(tag);
    await held?.close();
    if (directory) await rmdir(directory).catch(() => {});
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** A path of bytes as fs calls take it: Deno's take no bytes, and a UTF-8 name is the same as text. */
function asPath(bytes: Buffer): Buffer | string {
  return isUtf8(bytes) ? bytes.toString() : bytes;
}

/**
 * Ends the deletion of `aside` (done, or given up): from now on a listing takes what is left
 * of it for a leftover.
 */
export async function setAsideSettled(aside: SetAside): Promise<void> {
  await aside.held?.close();
  underWay.delete(tagOf(Buffer.from(basename((aside.directory ?? aside.file).toString("latin1")))));
}

/**
 * Whether some process holds a file under private name `tag` open: a deletion under way in
 * another process (see the module's doc). Read from /proc/PID/fd links, which follow renames;
 * nothing is stat'ed (a stat of a file on a riakfs mount from the mount's own thread never
 * gets an answer). A process whose entries cannot be read is passed over.
 */
function heldOpen(tag: string): boolean {
  const marker = `/${tag}`;
  for (const pid of processIds()) {
    for (const { target } of openDescriptors(pid)) {
      const path = target.toString("latin1");
      const at = path.indexOf(marker);
      const after = path[at + marker.length];
      if (at !== -1 && (after === undefined || after === "." || after === "/")) return true;
    }
  }
  return false;
}

/** `.riakfs-deleting.<random>` of a private name (either form). */
function tagOf(privateName: Buffer): string {
  return privateName.subarray(0, TAG_LENGTH).toString("latin1");
}

/**
 * Deletes a file set aside, and its private directory; false when it was gone (put back by a
 * process that could not see this one's deletion under way).
 */
export async function discardSetAside(aside: SetAside): Promise<boolean> {
  try {
    await unlink(aside.file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return false;
  } finally {
    if (aside.directory) await removeIfEmpty(aside.directory);
  }
  return true;
}

/**
 * Puts a file set aside back under its original name, never over anything: `link` fails
 * where the name holds a file again (an application saved once more meanwhile). That one is
 * newer, and the one set aside may be the only copy of its own version: it is then left
 * where it is, as is (no data is deleted on a guess), and the answer says so. A name that
 * holds the very file set aside (a put back killed between its link and its unlink) only
 * loses its private second name. A directory moved aside goes back by a rename. `gone`: the
 * private name was gone already (put back by another process).
 *
 * @example
 * ```ts
 * if (await putBack(aside) === "name-taken") log(`kept as ${aside.file}`);
 * ```
 */
export async function putBack(aside: SetAside): Promise<"put-back" | "name-taken" | "gone"> {
  const found = await lstatIfExists(aside.file);
  if (found === undefined) return "gone";
  if (found.isDirectory()) {
    if (!await renameDirectoryIfFree(aside.file, aside.original)) return "name-taken";
  } else {
    try {
      await link(aside.file, aside.original);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (!await sameFile(aside.file, aside.original)) return "name-taken";
    }
    // Gone meanwhile: another process put it back too, and unlinked the private name.
    await unlink(aside.file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
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
  if (heldOpen(tagOf(name))) return restored; // Another process's deletion under way.
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
    if (outcome === "gone") continue; // Its deletion ended, or another put it back.
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
