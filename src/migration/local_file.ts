/**
 * Reading a local file as a stream of chunks that is guaranteed not torn: the file's
 * identity (size, mtime, ctime, inode) is taken before, checked on the open descriptor and
 * checked again after the last byte; any difference throws {@link FileChangedError} from
 * the stream, so a consumer that stores what it read (the store's upload) aborts instead of
 * keeping a mix of two versions. Memory: one chunk at a time.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { displayPath } from "../store/path.ts";
import {
  currentIdentity,
  FileChangedError,
  type FileIdentity,
  identityOf,
  sameIdentity,
} from "./file_identity.ts";
import { type ByteGate, UNLIMITED } from "./rate_limiter.ts";

/** Default read size: 1 MiB, the store's default chunk size. */
export const DEFAULT_READ_SIZE = 1024 * 1024;

/**
 * Files changed less than this long ago are not read yet. Linux stamps mtime/ctime from a
 * coarse clock (one tick, up to 10 ms): a second write within the tick of the previous one
 * leaves both unchanged, so a read is only provably whole once the last change is older
 * than a tick ("racy" files, as git calls them). Waiting this long before a retry suffices.
 */
export const RACY_WINDOW_MS = 50;

/** Options of {@link readUnchanged}. */
export interface ReadUnchangedOptions {
  /** Bytes per read; default {@link DEFAULT_READ_SIZE}. */
  readSize?: number;
  /** Paces the reads (`--max-rate`). */
  gate?: ByteGate;
  /** Shown in errors instead of the absolute path (e.g. the path relative to the source). */
  displayName?: string;
}

/**
 * Streams the file at `absolutePath`, which must still be the version `expected`.
 *
 * @example
 * ```ts
 * const before = await currentIdentity(file);
 * await store.writeFile("a/b", readUnchanged(file, before!));
 * ```
 */
export async function* readUnchanged(
  absolutePath: Buffer | string,
  expected: FileIdentity,
  options: ReadUnchangedOptions = {},
): AsyncGenerator<Buffer> {
  const name = options.displayName ?? displayPath(Buffer.from(absolutePath));
  const gate = options.gate ?? UNLIMITED;
  const readSize = options.readSize ?? DEFAULT_READ_SIZE;
  if (changedTooRecently(expected)) throw new FileChangedError(name);
  let handle;
  try {
    handle = await open(absolutePath, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new FileChangedError(name);
    throw error;
  }
  try {
    if (!sameIdentity(identityOf(await handle.stat({ bigint: true })), expected)) {
      throw new FileChangedError(name);
    }
    let position = 0;
    for (;;) {
      const buffer = Buffer.allocUnsafe(readSize);
      const { bytesRead } = await handle.read(buffer, 0, readSize, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      await gate.take(bytesRead);
      if (BigInt(position) > expected.size) throw new FileChangedError(name);
      yield bytesRead === readSize ? buffer : buffer.subarray(0, bytesRead);
    }
    const after = identityOf(await handle.stat({ bigint: true }));
    if (!readWholeVersion(position, after, await currentIdentity(absolutePath), expected)) {
      throw new FileChangedError(name);
    }
  } finally {
    await handle.close();
  }
}

/**
 * A small file's whole content, under the same rule as {@link readUnchanged}, with blocking
 * calls: open, fstat, one read, fstat, lstat, close. For a batch process such as the pre-warm,
 * where a few microseconds of a blocked event loop cost less than six thread-pool round trips
 * per file; never for the mount, whose event loop must not wait on a disk.
 *
 * @throws {FileChangedError} when the file is not, or not any more, the version `expected`.
 */
export function readSmallUnchanged(
  absolutePath: Buffer | string,
  expected: FileIdentity,
  options: { displayName?: string } = {},
): Buffer {
  const name = options.displayName ?? displayPath(Buffer.from(absolutePath));
  if (changedTooRecently(expected)) throw new FileChangedError(name);
  let fd: number;
  try {
    // Never blocks on a FIFO or follows a symlink put in the file's place since the walk
    // saw it; the identity check below then refuses what is not the expected file.
    fd = openSync(absolutePath, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP") throw new FileChangedError(name);
    throw error;
  }
  try {
    if (!sameIdentity(identityOf(fstatSync(fd, { bigint: true })), expected)) {
      throw new FileChangedError(name);
    }
    // One byte more than expected: a file that grew shows here, not only in the fstat after.
    const buffer = Buffer.allocUnsafe(Number(expected.size) + 1);
    let position = 0;
    for (;;) {
      const bytesRead = readSync(fd, buffer, position, buffer.length - position, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      if (position === buffer.length) throw new FileChangedError(name);
    }
    const after = identityOf(fstatSync(fd, { bigint: true }));
    const now = lstatSync(absolutePath, { bigint: true, throwIfNoEntry: false });
    if (!readWholeVersion(position, after, now && identityOf(now), expected)) {
      throw new FileChangedError(name);
    }
    return buffer.subarray(0, position);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether `bytesRead` bytes are the whole version `expected`: as many bytes, the open file
 * still that version after the last read (`after`), and the path still naming it (`atPath`).
 */
function readWholeVersion(
  bytesRead: number,
  after: FileIdentity,
  atPath: FileIdentity | undefined,
  expected: FileIdentity,
): boolean {
  return BigInt(bytesRead) === expected.size && sameIdentity(after, expected) &&
    sameIdentity(atPath, expected);
}

/** sha256 (hex) and size of a stream of bytes. */
export async function hashBytes(
  stream: AsyncIterable<Uint8Array>,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const piece of stream) {
    hash.update(piece);
    size += piece.length;
  }
  return { sha256: hash.digest("hex"), size };
}

/** True when the version's last change is within {@link RACY_WINDOW_MS} of now. */
export function changedTooRecently(identity: FileIdentity): boolean {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  // mtime too, since some runtimes (Deno) report ctime to the second only; but not an mtime
  // in the future (set by a tool or a skewed clock), which would hold the file back forever.
  const mtime = identity.mtimeNs <= nowNs ? identity.mtimeNs : 0n;
  const lastChange = identity.ctimeNs > mtime ? identity.ctimeNs : mtime;
  return lastChange > nowNs - BigInt(RACY_WINDOW_MS) * 1_000_000n;
}

/** Waits out {@link RACY_WINDOW_MS} before retrying a file that was changing. */
export function waitOutRacyWindow(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS));
}

/** True when `error` is, or was caused by, a {@link FileChangedError}. */
export function isFileChanged(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof FileChangedError) return true;
  }
  return false;
}
