/**
 * What identifies one version of a local file: size, mtime, ctime, inode and device, to
 * the nanosecond. Equal identities before and after reading a file mean nobody changed it
 * meanwhile (a write always moves ctime), so what was read is not torn.
 *
 * @module
 */
import { type BigIntStats, lstatSync } from "node:fs";
import { lstat, realpath } from "node:fs/promises";
import type { BlockingWhileFast } from "../util/blocking_while_fast.ts";

/** One version of a local file. */
export interface FileIdentity {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
}

/**
 * The permission bits, owner and mtime of a local file or directory, as the store keeps them
 * with its copy in Riak.
 *
 * @example
 * ```ts
 * await store.writeFile(path, bytes, { ...storedAttributes(stats), previous: null });
 * ```
 */
export function storedAttributes(
  stats: BigIntStats,
): { mode: number; uid: number; gid: number; mtimeNs: bigint } {
  return {
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    mtimeNs: stats.mtimeNs,
  };
}

/** The identity of an lstat result. */
export function identityOf(stats: BigIntStats): FileIdentity {
  return {
    size: stats.size,
    mtimeNs: stats.mtimeNs,
    ctimeNs: stats.ctimeNs,
    ino: stats.ino,
    dev: stats.dev,
  };
}

/**
 * lstat of a path (bytes or text) with nanosecond times; undefined when it does not exist,
 * also because a directory on its way is no directory now (ENOTDIR): a path left to retry
 * below a directory since replaced by a file is gone, not a failure for every run to come.
 */
export async function lstatIfExists(path: string | Buffer): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (error) {
    if (isNoSuchPath(error)) return undefined;
    throw error;
  }
}

/** {@link lstatIfExists} as a blocking call. */
export function lstatIfExistsSync(path: string | Buffer): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (error) {
    if (isNoSuchPath(error)) return undefined;
    throw error;
  }
}

function isNoSuchPath(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * {@link lstatIfExists}, as a blocking call while `pace` finds the source quick: a missing
 * file then costs neither a thread-pool round trip nor a thrown error.
 */
export function lstatIfExistsPaced(
  path: string,
  pace: BlockingWhileFast | undefined,
): Promise<BigIntStats | undefined> {
  if (pace === undefined) return lstatIfExists(path);
  return pace.run(() => lstatIfExistsSync(path), () => lstatIfExists(path));
}

/** lstat's identity of a path (bytes or text); undefined when it no longer exists. */
export async function currentIdentity(path: string | Buffer): Promise<FileIdentity | undefined> {
  const stats = await lstatIfExists(path);
  return stats && identityOf(stats);
}

/** True when both describe the same, unchanged version of the file. */
export function sameIdentity(a: FileIdentity | undefined, b: FileIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.size === b.size && a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}

/** The local file changed while it was being read (uploaded or hashed). */
export class FileChangedError extends Error {
  /** The file, as shown to operators. */
  readonly path: string;

  constructor(path: string) {
    super(`${path} changed while it was being read; its copy was not kept`);
    this.name = "FileChangedError";
    this.path = path;
  }
}

/**
 * Whether directory `relative` of `root` (bytes, `/`-separated; empty: the root) is still
 * that directory: no component of the way to it was replaced by a symlink since it was
 * listed (which would lead a later open or unlink out of `root`).
 */
export async function isDirectoryBeneath(root: Uint8Array, relative: Uint8Array): Promise<boolean> {
  const rootBytes = Buffer.from(root);
  const at = relative.length === 0
    ? rootBytes
    : Buffer.concat([rootBytes, Buffer.from("/"), Buffer.from(relative)]);
  try {
    const [realRoot, realAt] = await Promise.all([
      realpath(rootBytes, { encoding: "buffer" }),
      realpath(at, { encoding: "buffer" }),
    ]);
    const expected = relative.length === 0 ? realRoot : Buffer.concat([
      realRoot,
      Buffer.from(realRoot.length === 1 ? "" : "/"),
      Buffer.from(relative),
    ]);
    return realAt.equals(expected);
  } catch {
    return false;
  }
}
