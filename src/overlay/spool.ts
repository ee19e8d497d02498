/**
 * The spool: a directory on local disk where files opened for writing are staged until Riak
 * acknowledged them, plus the upload journal that lists them. By default it lives on the
 * source's own filesystem (`<source>/.riakfs-spool`, hidden from listings) so moving a
 * staged file into the source is a rename; mounts without a source use /var/lib/riakfs.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  access,
  type FileHandle,
  lstat,
  open,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  unlink,
} from "node:fs/promises";
import { basename, join } from "node:path";
import { makeDirectories } from "../util/directories.ts";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";
import { KEPT_COPIES_NAME } from "../migration/kept_copies.ts";
import { isNoRoomError } from "../util/no_room.ts";
import { pendingInJournal } from "./journal.ts";

/** Where mounts without a source keep their spools. */
export const SYSTEM_SPOOL_ROOT = "/var/lib/riakfs";

/**
 * The default spool directory of a mount: inside the source when there is one, else under
 * `systemRoot` (tests give another) named after the mountpoint ({@link systemSpoolName}).
 */
export function defaultSpoolDirectory(
  source: string | undefined,
  mountpoint: string,
  systemRoot = SYSTEM_SPOOL_ROOT,
): string {
  if (source !== undefined) return join(source, SPOOL_DIRECTORY_NAME);
  return join(systemRoot, systemSpoolName(mountpoint));
}

/**
 * The name of the spool under /var/lib/riakfs of a mount without a source: `spool` and the
 * mountpoint with `/` and every character but `[A-Za-z0-9.-]` made `_`. Where that lost
 * something (the mountpoint holds a `_` or another such character), so that two mountpoints
 * could share it (`/x/y/m` and `/x_y/m`), a hash of the whole mountpoint follows a `+`, which
 * no name without one holds.
 */
export function systemSpoolName(mountpoint: string): string {
  const name = formerSystemSpoolName(mountpoint);
  if (!/[^A-Za-z0-9./-]/.test(mountpoint)) return name;
  return `${name}+${createHash("sha256").update(mountpoint).digest("hex").slice(0, 12)}`;
}

/**
 * The spool directory older riakfs versions gave a mount without a source under
 * /var/lib/riakfs, where {@link defaultSpoolDirectory} names another now: a journal left
 * there by an upgrade is found and replayed, not stranded. Undefined where they agree.
 */
export function formerSystemSpoolDirectory(
  mountpoint: string,
  systemRoot = SYSTEM_SPOOL_ROOT,
): string | undefined {
  const name = formerSystemSpoolName(mountpoint);
  return name === systemSpoolName(mountpoint) ? undefined : join(systemRoot, name);
}

function formerSystemSpoolName(mountpoint: string): string {
  return "spool" + mountpoint.replace(/[^A-Za-z0-9._-]/g, "_");
}

/** The upload journal's file in spool `directory`. */
export function spoolJournalFile(directory: string): string {
  return join(directory, "journal");
}

/** The lock file in spool `directory`, held by the one mount that uses it. */
export function spoolLockFile(directory: string): string {
  return join(directory, "lock");
}

/**
 * What a spool holds for its own bookkeeping besides its lock: files, and directories that
 * go with it only when empty. Anything else found in it (staged files set aside, a file an
 * operator put there) keeps the spool.
 */
const BOOKKEEPING_FILES = ["journal", "journal.room", "namespace", KEPT_COPIES_NAME];
const BOOKKEEPING_DIRECTORIES = ["staged", "publishing"];

/**
 * The spool was removed while the mount served, and could not be made again: what was to be
 * staged or journaled in it is refused (EIO) rather than written where no restart finds it.
 */
export class SpoolRemovedError extends Error {
  /** EIO, what the application is answered. */
  readonly code = "EIO";

  constructor(directory: string, reason: string, cause?: unknown) {
    super(`the spool ${directory} was removed while mounted and cannot be made again: ${reason}`, {
      cause,
    });
    this.name = "SpoolRemovedError";
  }
}

/** What a read of a directory that is not there means here: no entry. */
function absentAsEmpty(error: NodeJS.ErrnoException): string[] {
  if (error.code === "ENOENT") return [];
  throw error;
}

/** A staged file just created, open for writing. */
export interface StagedFile {
  /** Name inside the spool (what the journal records). */
  name: string;
  /** Absolute path. */
  path: string;
  handle: FileHandle;
}

/** A temporary file the mount made in SOURCE, as {@link Spool.recordPublish} recorded it. */
export interface PublishRecord {
  /** The random part of its name. */
  id: string;
  /** The path inside the mount. */
  path: string;
  /** Its device and inode when it was made: a file at the path with others is not it. */
  dev: bigint;
  ino: bigint;
}

/** Disk use of the spool, for status output. */
export interface SpoolUsage {
  files: number;
  bytes: number;
}

/**
 * A spool directory.
 *
 * @example
 * ```ts
 * const spool = Spool.open("/srv/data/.riakfs-spool");
 * const staged = await spool.create();
 * await staged.handle.writeFile("hello");
 * await staged.handle.sync();
 * await staged.handle.close();
 * ```
 */
export class Spool {
  /** The spool directory. */
  readonly directory: string;
  /** The upload journal's file. */
  readonly journalFile: string;
  readonly #stagedDirectory: string;

  private constructor(directory: string) {
    this.directory = directory;
    this.journalFile = spoolJournalFile(directory);
    this.#stagedDirectory = join(directory, "staged");
  }

  /** Opens (creating, mode 0700) a spool directory. */
  static open(directory: string): Spool {
    const spool = new Spool(directory);
    makeDirectories(spool.#stagedDirectory, 0o700);
    return spool;
  }

  /**
   * A spool whose directory its disk has no room for yet (a full ext4 has no block for a
   * new directory): {@link ensure} makes it once there is room.
   */
  static notMadeYet(directory: string): Spool {
    return new Spool(directory);
  }

  /** Absolute path of staged file `name`. */
  pathOf(name: string): string {
    if (name.includes("/") || name === "" || name === "." || name === "..") {
      throw new RangeError(`not a staged file name: ${JSON.stringify(name)}`);
    }
    return join(this.#stagedDirectory, name);
  }

  /** Whether staged file `name` is still there (false only when it is gone: ENOENT). */
  async holds(name: string): Promise<boolean> {
    try {
      await access(this.pathOf(name));
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== "ENOENT";
    }
  }

  /**
   * What the mount does when it finds its spool removed while it serves (an operator's
   * `rm -rf`): take its lock again and write its journal again (see runtime.ts), once the
   * directories are made again here. Until one is given, a removed spool is not looked for.
   */
  whenRemoved(restore: () => void): void {
    this.#restore = restore;
  }

  #restore: (() => void) | undefined;

  /**
   * Makes sure the spool is there before something is staged or journaled in it: a journal
   * line written into a removed journal file, or a staged file named in a removed directory,
   * would be lost at the next start, after close() had answered. A removed spool (or one
   * not made yet) is made ({@link whenRemoved}); when its disk has no room, the error says
   * so (ENOSPC, as a full local disk answers), else this throws a {@link SpoolRemovedError}
   * (EIO). Two stat(2)s when all is well.
   */
  ensure(): void {
    if (this.#restore === undefined) return;
    if (existsSync(this.#stagedDirectory) && existsSync(this.journalFile)) return;
    try {
      makeDirectories(this.#stagedDirectory, 0o700);
      this.#restore();
    } catch (error) {
      if (isNoRoomError(error)) throw error;
      throw new SpoolRemovedError(this.directory, (error as Error).message, error);
    }
  }

  /** Creates a new, empty staged file (exclusive, mode 0600). */
  async create(): Promise<StagedFile> {
    try {
      return await this.#create();
    } catch (error) {
      // The spool removed meanwhile: made again, or an error that says so (not ENOENT).
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.ensure();
      return await this.#create();
    }
  }

  async #create(): Promise<StagedFile> {
    const name = `${Date.now().toString(36)}-${randomBytes(8).toString("hex")}`;
    const path = this.pathOf(name);
    const handle = await open(path, "wx+", 0o600);
    return { name, path, handle };
  }

  /**
   * Makes the staged files' names durable (fsync of their directory): a journal entry must
   * never outlive a power cut that took the file it names.
   */
  async sync(): Promise<void> {
    this.ensure();
    const directory = await open(this.#stagedDirectory, "r");
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  /** Removes a staged file; a missing one is not an error. */
  async remove(name: string): Promise<void> {
    try {
      await unlink(this.pathOf(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }

  /**
   * Staged files no journal entry names: an empty one (a write cut off before anything was
   * written) is removed; one with bytes is moved to {@link Spool.unreferencedDirectory} and
   * never deleted: it may be a write cut off before close() answered, or one whose journal
   * line a damaged journal lost. On a disk too full to make that directory they stay where
   * they are (`leftInPlace`), unreferenced, to be set aside at a start with room. Returns
   * the lists.
   */
  async setAsideUnreferenced(
    referenced: ReadonlySet<string>,
  ): Promise<{ removed: string[]; setAside: string[]; leftInPlace: string[] }> {
    const removed: string[] = [];
    const setAside: string[] = [];
    const leftInPlace: string[] = [];
    for (const name of await readdir(this.#stagedDirectory)) {
      if (referenced.has(name)) continue;
      if ((await stat(this.pathOf(name))).size === 0) {
        await this.remove(name);
        removed.push(name);
        continue;
      }
      try {
        makeDirectories(this.unreferencedDirectory, 0o700);
        await rename(this.pathOf(name), join(this.unreferencedDirectory, name));
        setAside.push(name);
      } catch (error) {
        if (!isNoRoomError(error)) throw error;
        leftInPlace.push(name);
      }
    }
    return { removed, setAside, leftInPlace };
  }

  /**
   * Records that the mount made temporary file `path` (inside the mount, `/`-separated) in
   * SOURCE, with its device and inode, before it writes anything into it: a crash (kill -9)
   * before the file is renamed into place leaves it behind, and the next mount removes it
   * ({@link Spool.publishRecords}) knowing it for its own. The record is a symlink named
   * after the file's random part, `id`.
   */
  async recordPublish(id: string, path: string, file: { dev: bigint; ino: bigint }): Promise<void> {
    makeDirectories(this.#publishingDirectory, 0o700);
    await symlink(`${file.dev}:${file.ino}:${path}`, this.#publishRecord(id));
  }

  /** Forgets the record of {@link recordPublish}: the file was renamed into place, or removed. */
  async forgetPublish(id: string): Promise<void> {
    await unlink(this.#publishRecord(id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }

  /** The records {@link recordPublish} made and no {@link forgetPublish} removed (a crash). */
  async publishRecords(): Promise<PublishRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#publishingDirectory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const records: PublishRecord[] = [];
    for (const id of names) {
      const match = /^(\d+):(\d+):(\/.*)$/s.exec(await readlink(this.#publishRecord(id)));
      // Not one of ours: an operator's file in the spool, left alone.
      if (match === null) continue;
      records.push({ id, dev: BigInt(match[1]), ino: BigInt(match[2]), path: match[3] });
    }
    return records;
  }

  get #publishingDirectory(): string {
    return join(this.directory, "publishing");
  }

  #publishRecord(id: string): string {
    if (!/^[0-9a-f]+$/.test(id)) throw new RangeError(`not a publish id: ${JSON.stringify(id)}`);
    return join(this.#publishingDirectory, id);
  }

  /**
   * Removes the spool of a mount that stopped, while that mount still holds its lock, when
   * nothing in it waits: no pending journal entry, no staged file, no file of a publish under
   * way, nothing set aside ({@link unreferencedDirectory}) and nothing riakfs did not put
   * there. Its lock goes last (`releaseLock`), then the directory itself, unless another mount
   * took the spool in between. Resolves with whether it is gone; a spool that is a symlink
   * stays, as does one where anything waits.
   */
  async removeIfIdle(releaseLock: () => void): Promise<boolean> {
    const found = await lstat(this.directory).catch(() => undefined);
    if (!found?.isDirectory()) return false;
    if (await pendingInJournal(this.journalFile) > 0) return false;
    const own = [
      ...BOOKKEEPING_FILES,
      ...BOOKKEEPING_DIRECTORIES,
      basename(spoolLockFile(this.directory)),
    ];
    if ((await readdir(this.directory)).some((name) => !own.includes(name))) return false;
    for (const name of BOOKKEEPING_DIRECTORIES) {
      if ((await readdir(join(this.directory, name)).catch(absentAsEmpty)).length > 0) {
        return false;
      }
    }
    for (const name of BOOKKEEPING_FILES) await rm(join(this.directory, name), { force: true });
    for (const name of BOOKKEEPING_DIRECTORIES) {
      await rmdir(join(this.directory, name)).catch(absentAsEmpty);
    }
    releaseLock();
    await rmdir(this.directory);
    return true;
  }

  /** Where staged files no journal entry names are kept, for the operator to look at. */
  get unreferencedDirectory(): string {
    return join(this.directory, "unreferenced");
  }

  /**
   * Staged files and their bytes. Those in `journaled` (name to size: the staged files of
   * uploads still pending, never written after they were journaled) count at that size
   * without a stat: after a long outage the spool holds tens of thousands of them, and a
   * stat of each, one after the other on a loop busy uploading, kept `riakfs status` from
   * answering within its timeout. The others (files being written) are looked at.
   */
  async usage(journaled: ReadonlyMap<string, number> = new Map()): Promise<SpoolUsage> {
    let files = 0;
    let bytes = 0;
    const names = await readdir(this.#stagedDirectory).catch((error) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return []; // Not made (yet).
      throw error;
    });
    for (const name of names) {
      const size = journaled.get(name);
      if (size !== undefined) {
        bytes += size;
        files++;
        continue;
      }
      try {
        bytes += (await stat(this.pathOf(name))).size;
        files++;
      } catch {
        // Removed while counting.
      }
    }
    return { files, bytes };
  }
}
