/**
 * The overlay's side of the source directory: where a mount path is in it (never through a
 * symlinked directory), and the calls the overlay makes on its files and directories, paced
 * as the mount's other calls on the source (blocking while quick, on the pool once slow).
 *
 * @module
 */

import { type BigIntStats, constants as fsConstants, unlinkSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { basename } from "node:path";
import { Errno, fail } from "../fuse/filesystem.ts";
import { lstatIfExistsPaced } from "../migration/file_identity.ts";
import { SOURCE_TEMPORARY_PREFIX } from "../migration/mount_entries.ts";
import type { FileStat } from "../store/store.ts";
import type { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { utimesSeconds } from "../util/utimes.ts";
import { S_IFLNK, S_IFMT } from "./attributes.ts";
import { localPathBeneath } from "./local_path.ts";
import type { Logger } from "./log.ts";
import { childPath, parentOf } from "./node_table.ts";
import { isMissing } from "./not_found.ts";
import type { Spool } from "./spool.ts";

/** Mode of a source directory made where Riak keeps none for it. */
export const DEFAULT_LOCAL_DIRECTORY_MODE = 0o755;
/** Local opens never follow a symlink in the last component (as in the passthrough). */
const { O_NOFOLLOW, O_RDONLY, O_WRONLY } = fsConstants;
/** Files this large (bytes) or larger are unlinked on the pool, never blocking. */
const BLOCKING_UNLINK_MAX_BYTES = 64n * 1024n * 1024n;

/** What a {@link SourceTree} is built from: the mount's source, its pace, spool and owners. */
export interface SourceTreeOptions {
  /** The legacy directory; undefined where the mode reads only Riak. */
  source?: string;
  /** The pace of the source's calls, shared with the overlay's opens and the mount's jobs. */
  sourcePace: BlockingWhileFast;
  /** Where the temporary files a crash left in the source are recorded. */
  spool: Pick<Spool, "publishRecords" | "forgetPublish">;
  logger: Logger;
  /** Owner given to a directory made for one Riak keeps but riakfs did not write. */
  defaultUid?: number;
  defaultGid?: number;
  /**
   * Riak's stat of `path` (may throw, e.g. during an outage): a source directory made for a
   * directory Riak holds takes its mode, owner and mtime ({@link SourceTree.makeLocalParents}).
   */
  riakStat: (path: string) => Promise<FileStat | undefined>;
}

/** The source directory as the overlay reads and changes it, by mount path. */
export class SourceTree {
  readonly #o: SourceTreeOptions;

  /** `options`: the mount's; held by reference. */
  constructor(options: SourceTreeOptions) {
    this.#o = options;
  }

  /** Where `path` is in the source; never through a symlinked directory (see local_path.ts). */
  async localPath(path: string, options?: { directory?: boolean }): Promise<string> {
    if (this.#o.source === undefined) throw fail(Errno.EIO, "this mode has no source directory");
    return await localPathBeneath(this.#o.source, path, { ...options, pace: this.#o.sourcePace });
  }

  /**
   * Makes the source's missing directories above `path`, each with the mode, owner and mtime
   * Riak keeps for it (a directory Riak alone held so far): not 0777 and root's, which
   * migrate would take back to Riak as the directory's attributes.
   */
  async makeLocalParents(path: string): Promise<void> {
    const missing: string[] = [];
    for (let at = parentOf(path); at !== "/" && !(await this.lstat(at)); at = parentOf(at)) {
      missing.unshift(at);
    }
    const made: Array<{ local: string; mtimeNs: bigint }> = [];
    for (const directory of missing) {
      const local = await this.localPath(directory);
      const remote = await this.#o.riakStat(directory).catch(() => undefined);
      const kept = remote?.type === "directory" ? remote : undefined;
      const mode = kept ? kept.mode & 0o7777 : DEFAULT_LOCAL_DIRECTORY_MODE;
      try {
        await fsp.mkdir(local, mode);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") continue; // Made meanwhile.
        throw error;
      }
      await fsp.chmod(local, mode); // Exactly, whatever our umask.
      if (kept === undefined) continue;
      // Objects riakfs did not write carry no owner: the mount's default one, as stat shows.
      await fsp.lchown(
        local,
        kept.managed ? kept.uid : this.#o.defaultUid ?? 0,
        kept.managed ? kept.gid : this.#o.defaultGid ?? 0,
      );
      made.push({ local, mtimeNs: kept.mtimeNs });
    }
    // Deepest first: making a directory moved its parent's mtime.
    for (const { local, mtimeNs } of made.reverse()) {
      const seconds = Number(mtimeNs) / 1e9;
      await fsp.utimes(local, seconds, seconds);
    }
  }

  /** lstat(2) of `path` in the source; undefined where it is not there (or there is none). */
  async lstat(path: string): Promise<BigIntStats | undefined> {
    if (this.#o.source === undefined) return undefined;
    return await this.lstatAt(await this.localPath(path));
  }

  /** lstat(2) of `local`, a path in the source's filesystem, at the source's pace. */
  lstatAt(local: string): Promise<BigIntStats | undefined> {
    return lstatIfExistsPaced(local, this.#o.sourcePace);
  }

  /** unlink(2) of `path` in the source, at its pace (a large file on the pool). */
  async unlink(path: string): Promise<void> {
    const local = await this.localPath(path);
    // Freeing a large file's blocks can take a filesystem a while: that one goes to the pool.
    const size = (await this.lstatAt(local).catch(() => undefined))?.size ?? 0n;
    if (size >= BLOCKING_UNLINK_MAX_BYTES) return await fsp.unlink(local);
    await this.#o.sourcePace.run(() => unlinkSync(local), () => fsp.unlink(local));
  }

  /** truncate(2) of the source file, never through a symlink put in its place. */
  async truncate(path: string, size: number): Promise<void> {
    const file = await fsp.open(await this.localPath(path), O_WRONLY | O_NOFOLLOW);
    try {
      await file.truncate(size);
    } finally {
      await file.close();
    }
  }

  /** Applies chmod/chown/utimens changes to the local file at `path` (lstat: `local`). */
  async setAttributes(
    path: string,
    local: BigIntStats,
    attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
    atimeNs: bigint | undefined,
  ): Promise<void> {
    const file = await this.localPath(path);
    // chown(2) clears the set-user-ID and set-group-ID bits: a mode asked for goes on after.
    if (attributes.uid !== undefined || attributes.gid !== undefined) {
      await fsp.lchown(file, attributes.uid ?? -1, attributes.gid ?? -1);
    }
    if (attributes.mode !== undefined && (Number(local.mode) & S_IFMT) !== S_IFLNK) {
      if (local.isFile() || local.isDirectory()) {
        // fchmod of what was opened without following a symlink swapped in since the lstat.
        const opened = await fsp.open(file, O_RDONLY | O_NOFOLLOW);
        try {
          await opened.chmod(attributes.mode);
        } finally {
          await opened.close();
        }
      } else await fsp.chmod(file, attributes.mode); // Opening a fifo or a device would block.
    }
    if (attributes.mtimeNs !== undefined || atimeNs !== undefined) {
      await fsp.lutimes(
        file,
        utimesSeconds(atimeNs ?? local.atimeNs),
        utimesSeconds(attributes.mtimeNs ?? local.mtimeNs),
      );
    }
  }

  /**
   * The files, symlinks and directories at or below `path` in the source (mount paths;
   * directories parents first).
   */
  async treeBelow(
    path: string,
    tree: { files: string[]; directories: string[] } = { files: [], directories: [] },
  ): Promise<{ files: string[]; directories: string[] }> {
    const stats = await this.lstat(path);
    if (stats?.isFile() || stats?.isSymbolicLink()) tree.files.push(path);
    if (!stats?.isDirectory()) return tree;
    tree.directories.push(path);
    const entries = await fsp.readdir(await this.localPath(path, { directory: true }), {
      withFileTypes: true,
    });
    for (const entry of entries) {
      const child = childPath(path, entry.name);
      if (entry.isDirectory()) await this.treeBelow(child, tree);
      else if (entry.isFile() || entry.isSymbolicLink()) tree.files.push(child);
    }
    return tree;
  }

  /**
   * Renames `from` to `to` in the source, making `to`'s missing parents; where `from` is not
   * there, a file at `to` goes (what is renamed over it lives elsewhere).
   */
  async rename(from: string, to: string): Promise<void> {
    const local = await this.lstat(from);
    if (local) {
      await this.makeLocalParents(to);
      await fsp.rename(await this.localPath(from), await this.localPath(to));
    } else if ((await this.lstat(to))?.isFile()) {
      await fsp.unlink(await this.localPath(to));
    }
  }

  /**
   * Removes the temporary files a crash (kill -9 while a file was fetched into SOURCE) left
   * there, as the spool recorded them: each only where the file at its recorded path is the
   * one recorded (same device and inode, a regular file, not reached through a symlink), so
   * never anyone else's. Run before serving; returns how many went.
   */
  async removeLeftoverPublishes(): Promise<number> {
    if (this.#o.source === undefined) return 0;
    let removed = 0;
    for (const record of await this.#o.spool.publishRecords()) {
      try {
        const local = await this.localPath(record.path);
        const stats = await fsp.lstat(local, { bigint: true });
        if (
          basename(record.path) === `${SOURCE_TEMPORARY_PREFIX}${record.id}` && stats.isFile() &&
          stats.dev === record.dev && stats.ino === record.ino
        ) {
          await fsp.unlink(local);
          removed++;
        }
      } catch (error) {
        // A path that no longer leads there (a directory gone, or now a link) holds nothing.
        const code = (error as NodeJS.ErrnoException).code;
        if (!isMissing(error) && code !== "ENOTDIR" && code !== "ELOOP") {
          this.#o.logger.warn("a temporary file a crash left in the source could not be removed", {
            path: record.path,
            error: (error as Error).message,
          });
          continue; // Its record stays: tried again at the next start.
        }
      }
      await this.#o.spool.forgetPublish(record.id);
    }
    return removed;
  }
}
