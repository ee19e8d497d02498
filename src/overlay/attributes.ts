/**
 * Conversions between the attributes Riak, the journal and the source keep and those FUSE
 * shows: pure functions of their arguments, shared by the overlay's parts.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Attr, Timespec } from "../fuse/filesystem.ts";
import type { FileStat } from "../store/store.ts";
import type { FileVersion } from "./chunk_cache.ts";
import type { SeenFile } from "./journal.ts";

/** The file type bits of `st_mode`. */
export const S_IFMT = 0o170000;
/** File type bits of a regular file in `st_mode`. */
export const S_IFREG = 0o100000;
/** File type bits of a directory in `st_mode`. */
export const S_IFDIR = 0o040000;
/** File type bits of a symlink in `st_mode`. */
export const S_IFLNK = 0o120000;

/**
 * The attributes the kernel is shown for what Riak holds as `stat`; a file Riak holds no owner
 * for (not written through a mount) gets the mount's default owner.
 */
export function riakAttr(
  stat: FileStat,
  ino: number,
  defaultUid: number,
  defaultGid: number,
): Attr {
  const type = stat.type === "directory" ? S_IFDIR : stat.type === "symlink" ? S_IFLNK : S_IFREG;
  const time = timespecOf(stat.mtimeNs);
  return {
    ino,
    size: stat.size,
    blocks: Math.ceil(stat.size / 512),
    atime: stat.atimeNs === undefined ? time : timespecOf(stat.atimeNs),
    mtime: time,
    ctime: time,
    mode: type | (stat.mode & 0o7777),
    nlink: stat.type === "directory" ? 2 : 1,
    uid: stat.managed ? stat.uid : defaultUid,
    gid: stat.managed ? stat.gid : defaultGid,
    rdev: 0,
    blksize: 4096,
  };
}

/** The attributes of a regular file from its parts (a write session's, a pending upload's). */
export function fileAttr(
  ino: number,
  size: number,
  mode: number,
  uid: number,
  gid: number,
  mtimeNs: bigint,
  atimeNs?: bigint,
): Attr {
  const time = timespecOf(mtimeNs);
  return {
    ino,
    size,
    blocks: Math.ceil(size / 512),
    atime: atimeNs === undefined ? time : timespecOf(atimeNs),
    mtime: time,
    ctime: time,
    mode: S_IFREG | (mode & 0o7777),
    nlink: 1,
    uid,
    gid,
    rdev: 0,
    blksize: 4096,
  };
}

/**
 * The mount's root where Riak keeps no attributes for it: a directory of root's, 0755, last
 * changed when the mount started (as a new tmpfs shows its creation), not at the epoch.
 */
export function rootStat(mtimeNs: bigint): FileStat {
  return {
    path: Buffer.alloc(0),
    type: "directory",
    storage: "inline",
    size: 0,
    sha256: "",
    contentType: "",
    location: { bucketType: "", bucket: Buffer.alloc(0), key: Buffer.alloc(0) },
    managed: true,
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtimeNs,
  };
}

/** The stat shown for `path`, a file Riak held as `seen`, while Riak cannot be asked. */
export function seenFileStat(path: string, seen: SeenFile): FileStat {
  return {
    ...rootStat(BigInt(seen.mtimeNs)),
    path: Buffer.from(path.slice(1)),
    type: "file",
    size: seen.size,
    mode: seen.mode,
    uid: seen.uid,
    gid: seen.gid,
    ...(seen.atimeNs === undefined ? {} : { atimeNs: BigInt(seen.atimeNs) }),
  };
}

/**
 * Nanoseconds since the epoch as FUSE's seconds and nanoseconds, the nanoseconds always within
 * 0..999,999,999 as `struct timespec` has them: a time before 1970 is rounded down to its
 * second (-1.5 s is -2 s and 500,000,000 ns), where bigint division truncates toward zero.
 */
export function timespecOf(nanoseconds: bigint): Timespec {
  const sec = nanoseconds / 1_000_000_000n;
  const nsec = nanoseconds % 1_000_000_000n;
  return nsec < 0n
    ? { sec: Number(sec - 1n), nsec: Number(nsec + 1_000_000_000n) }
    : { sec: Number(sec), nsec: Number(nsec) };
}

/** A SETATTR time in nanoseconds since the epoch; `now` is the mount's clock. */
export function toNs(time: Timespec | "now" | undefined): bigint | undefined {
  if (time === undefined) return undefined;
  if (time === "now") return BigInt(Date.now()) * 1_000_000n;
  return BigInt(time.sec) * 1_000_000_000n + BigInt(time.nsec);
}

/** `value` without its undefined properties, so spreading it keeps what they would hide. */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The chunk cache's name for the version of `path` a stat describes. */
export function versionOf(path: string, stat: FileStat): FileVersion {
  return { path, version: stat.sha256, size: stat.size };
}

/** A local version's identity for {@link OverlayFileSystem.mirrored}. */
export function mirroredKey(version: { size: bigint; mtimeNs: bigint }): string {
  return `${version.size}:${version.mtimeNs}`;
}
