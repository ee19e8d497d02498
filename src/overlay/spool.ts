/**
 * The spool: a directory on local disk where files opened for writing are staged until Riak
 * acknowledged them, plus the upload journal that lists them. By default it lives on the
 * source's own filesystem (`<source>/.riakfs-spool`, hidden from listings) so moving a
 * staged file into the source is a rename; mounts without a source use /var/lib/riakfs.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { makeDirectories } from "../util/directories.ts";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";

/** Where mounts without a source keep their spools. */
export const SYSTEM_SPOOL_ROOT = "/var/lib/riakfs";

/**
 * The default spool directory of a mount: inside the source when there is one, else under
 * /var/lib/riakfs named after the mountpoint.
 */
export function defaultSpoolDirectory(source: string | undefined, mountpoint: string): string {
  if (source !== undefined) return join(source, SPOOL_DIRECTORY_NAME);
  return join(SYSTEM_SPOOL_ROOT, "spool" + mountpoint.replace(/[^A-Za-z0-9._-]/g, "_"));
}

/** A staged file just created, open for writing. */
export interface StagedFile {
  /** Name inside the spool (what the journal records). */
  name: string;
  /** Absolute path. */
  path: string;
  handle: FileHandle;
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
    this.journalFile = join(directory, "journal");
    this.#stagedDirectory = join(directory, "staged");
  }

  /** Opens (creating, mode 0700) a spool directory. */
  static open(directory: string): Spool {
    const spool = new Spool(directory);
    makeDirectories(spool.#stagedDirectory, 0o700);
    return spool;
  }

  /** Absolute path of staged file `name`. */
  pathOf(name: string): string {
    if (name.includes("/") || name === "" || name === "." || name === "..") {
      throw new RangeError(`not a staged file name: ${JSON.stringify(name)}`);
    }
    return join(this.#stagedDirectory, name);
  }

  /** Creates a new, empty staged file (exclusive, mode 0600). */
  async create(): Promise<StagedFile> {
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
   * line a damaged journal lost. Returns both lists.
   */
  async setAsideUnreferenced(
    referenced: ReadonlySet<string>,
  ): Promise<{ removed: string[]; setAside: string[] }> {
    const removed: string[] = [];
    const setAside: string[] = [];
    for (const name of await readdir(this.#stagedDirectory)) {
      if (referenced.has(name)) continue;
      if ((await stat(this.pathOf(name))).size === 0) {
        await this.remove(name);
        removed.push(name);
        continue;
      }
      makeDirectories(this.unreferencedDirectory, 0o700);
      await rename(this.pathOf(name), join(this.unreferencedDirectory, name));
      setAside.push(name);
    }
    return { removed, setAside };
  }

  /** Where staged files no journal entry names are kept, for the operator to look at. */
  get unreferencedDirectory(): string {
    return join(this.directory, "unreferenced");
  }

  /** Staged files and their bytes. */
  async usage(): Promise<SpoolUsage> {
    let files = 0;
    let bytes = 0;
    for (const name of await readdir(this.#stagedDirectory)) {
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
