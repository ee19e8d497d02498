/**
 * Where the overlay found a file (a write session, a pending upload, Riak, the source), and
 * what each place says of it.
 *
 * @module
 */

import type { BigIntStats } from "node:fs";
import { Errno, fail } from "../fuse/filesystem.ts";
import type { FileStat } from "../store/store.ts";
import type { PendingUpload } from "./journal.ts";
import type { WriteSession } from "./session_table.ts";

/** Where a path's file is, as {@link Locator.locate} finds it. */
export type Located =
  | { where: "open"; session: WriteSession }
  | { where: "spool"; upload: PendingUpload; stats: BigIntStats }
  /** `stale`: Riak could not be asked; `stat` is what it held when last seen. */
  | { where: "riak"; stat: FileStat; stale?: true }
  /** `unverified`: served locally only because Riak could not be asked (it may be newer). */
  | { where: "local"; stats: BigIntStats; unverified?: true };

/** The mode, owner and access time of the regular file `located` found. */
export function attributesOf(
  located: Located,
): { mode: number; uid: number; gid: number; atimeNs?: bigint } {
  switch (located.where) {
    case "open": {
      const { mode, uid, gid, atimeNs } = located.session;
      return { mode, uid, gid, atimeNs };
    }
    case "spool": {
      const { mode, uid, gid, atimeNs } = located.upload;
      return { mode, uid, gid, atimeNs: atimeNs === undefined ? undefined : BigInt(atimeNs) };
    }
    case "riak":
      return {
        mode: located.stat.mode,
        uid: located.stat.uid,
        gid: located.stat.gid,
        atimeNs: located.stat.atimeNs,
      };
    case "local":
      if (!located.stats.isFile()) throw fail(Errno.EISDIR, "not a regular file");
      return {
        mode: Number(located.stats.mode) & 0o7777,
        uid: Number(located.stats.uid),
        gid: Number(located.stats.gid),
      };
  }
}

/** The size of the file `located` found past any write session (which knows its own). */
export function sizeWhereLocated(located: Located): number {
  switch (located.where) {
    case "riak":
      return located.stat.size;
    case "local":
    case "spool":
      return Number(located.stats.size);
    case "open":
      throw new Error(`${located.session.path}: a write session's size is its staged file's`);
  }
}

/** The access and modification times of what `located` found (a file in Riak has one time). */
export function timesOf(located: Located): { atimeNs: bigint; mtimeNs: bigint } | undefined {
  switch (located.where) {
    case "riak":
      return {
        atimeNs: located.stat.atimeNs ?? located.stat.mtimeNs,
        mtimeNs: located.stat.mtimeNs,
      };
    case "local":
      return { atimeNs: located.stats.atimeNs, mtimeNs: located.stats.mtimeNs };
    case "spool": {
      const mtimeNs = BigInt(located.upload.mtimeNs);
      const { atimeNs } = located.upload;
      return { atimeNs: atimeNs === undefined ? mtimeNs : BigInt(atimeNs), mtimeNs };
    }
    case "open":
      return undefined;
  }
}
