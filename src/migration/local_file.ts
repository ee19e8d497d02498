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

/**
 * How long after the time it shows a change may have come on a filesystem that keeps whole
 * seconds (ext3, ext4 with 128-byte inodes, NFS from them: one; FAT: two): a rewrite within
 * that second leaves size, mtime and ctime as they were, and a read taken for whole would be
 * torn. A file whose mtime and ctime are both whole seconds is taken to be on one.
 */
export const COARSE_TIMESTAMP_MS = 2000;

/** Options of {@link readUnchanged}. */
export interface ReadUnchangedOptions {
  /** Bytes per read; default {@link DEFAULT_READ_SIZE}. */
  readSize?: number;
  /** Paces the reads (`--max-rate`). */
  gate?: ByteGate;
  /** Shown in errors instead of the absolute path (e.g. the path relative to the source). */
  displayName?: string;
  /** Ends the stream with the signal's reason, checked before every read. */
  signal?: AbortSignal;
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
    // Never blocks on a FIFO or follows a symlink put in the file's place since it was
    // looked at; the identity check below then refuses what is not that file. Leaves the
    // access time alone where allowed (the owner, or root): a nightly pre-warm would
    // otherwise make every legacy file look used to atime-based clean-ups.
    const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
    handle = await open(absolutePath, flags | constants.O_NOATIME).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
      return open(absolutePath, flags);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP") throw new FileChangedError(name);
    throw error;
  }
  try {
    if (!sameIdentity(identityOf(await handle.stat({ bigint: true })), expected)) {
      throw new FileChangedError(name);
    }
    let position = 0;
    for (;;) {
      options.signal?.throwIfAborted();
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
 * calls: open, fstat, one read, fstat, lstat, close ({@link readSmallRaw}). On the calling
 * thread: see {@link SmallFileReaders} for reads that must not block an event loop.
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
  return checkSmallRead(
    readSmallRaw(
      { closeSync, constants, fstatSync, lstatSync, openSync, readSync },
      absolutePath,
      Number(expected.size),
    ),
    expected,
    name,
  );
}

/** The system calls {@link readSmallRaw} makes: node:fs's, passed in (see there). */
export type SmallReadCalls = Pick<
  typeof import("node:fs"),
  "closeSync" | "constants" | "fstatSync" | "lstatSync" | "openSync" | "readSync"
>;

/** Identity fields of a stat, in {@link FileIdentity}'s order: size, mtime, ctime, ino, dev. */
export type RawIdentity = [bigint, bigint, bigint, bigint, bigint];

/** What {@link readSmallRaw} saw: nothing at the path, or the bytes and the identities around them. */
export type RawSmallRead =
  | { missing: true }
  | {
    missing?: false;
    /** Identity of the open file before the read, after it, and of the path after it. */
    before: RawIdentity;
    after: RawIdentity;
    atPath: RawIdentity | null;
    /** Up to `size + 1` bytes read (one more than expected shows a file that grew). */
    bytes: Uint8Array;
    length: number;
  };

/**
 * The system calls of a small file's read, and nothing else, so that a worker thread can run
 * them (its source is this function's text: self-contained, node:fs passed in as `fs`). Never
 * blocks on a FIFO or follows a symlink put in the file's place since the walk saw it
 * (O_NONBLOCK, O_NOFOLLOW); {@link checkSmallRead} then refuses what is not the file.
 */
export function readSmallRaw(
  fs: SmallReadCalls,
  path: Buffer | string,
  size: number,
): RawSmallRead {
  const c = fs.constants;
  let fd: number;
  try {
    // O_NOATIME where allowed (the owner, or root): see readUnchanged.
    const flags = c.O_RDONLY | c.O_NONBLOCK | c.O_NOFOLLOW;
    try {
      fd = fs.openSync(path, flags | c.O_NOATIME);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
      fd = fs.openSync(path, flags);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP") return { missing: true };
    throw error;
  }
  const identity = (s: import("node:fs").BigIntStats): [bigint, bigint, bigint, bigint, bigint] => [
    s.size,
    s.mtimeNs,
    s.ctimeNs,
    s.ino,
    s.dev,
  ];
  try {
    const before = identity(fs.fstatSync(fd, { bigint: true }));
    const bytes = new Uint8Array(size + 1);
    let length = 0;
    if (before[0] === BigInt(size)) {
      for (;;) {
        const read = fs.readSync(fd, bytes, length, bytes.length - length, length);
        if (read === 0) break;
        length += read;
        if (length === bytes.length) break;
      }
    }
    const after = identity(fs.fstatSync(fd, { bigint: true }));
    const now = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return { before, after, atPath: now ? identity(now) : null, bytes, length };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The content {@link readSmallRaw} read, when it is the whole version `expected` and
 * nothing else.
 *
 * @throws {FileChangedError} when the file is not, or not any more, that version.
 */
export function checkSmallRead(raw: RawSmallRead, expected: FileIdentity, name: string): Buffer {
  if (raw.missing === true) throw new FileChangedError(name);
  const asIdentity = ([size, mtimeNs, ctimeNs, ino, dev]: RawIdentity): FileIdentity => ({
    size,
    mtimeNs,
    ctimeNs,
    ino,
    dev,
  });
  if (!sameIdentity(asIdentity(raw.before), expected)) throw new FileChangedError(name);
  const atPath = raw.atPath === null ? undefined : asIdentity(raw.atPath);
  if (!readWholeVersion(raw.length, asIdentity(raw.after), atPath, expected)) {
    throw new FileChangedError(name);
  }
  const bytes = raw.bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, raw.length);
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

/**
 * sha256 (hex) and size of a stream of bytes; `hashed`, when given, gets each piece once it is
 * hashed (nothing here uses it afterwards).
 */
export async function hashBytes(
  stream: AsyncIterable<Uint8Array>,
  hashed?: (piece: Uint8Array) => void,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const piece of stream) {
    hash.update(piece);
    size += piece.length;
    hashed?.(piece);
  }
  return { sha256: hash.digest("hex"), size };
}

/**
 * True when the version's last change is within {@link RACY_WINDOW_MS} of now (on a filesystem
 * of whole seconds, within {@link COARSE_TIMESTAMP_MS} more).
 */
export function changedTooRecently(identity: FileIdentity): boolean {
  return racyForMs(identity) > 0;
}

const SECOND_NS = 1_000_000_000n;

/**
 * Whether this runtime reports a file's ctime below the second, as Node (the shipped binary)
 * does: Deno's node:fs gives whole seconds, so there the times cannot tell a filesystem of
 * whole seconds.
 */
const CTIME_BELOW_THE_SECOND = !("Deno" in globalThis);

/**
 * How much longer (ms) the version stays racy ({@link changedTooRecently}); 0 or less when it
 * no longer is. `wholeSecondsMeanCoarse`: an mtime and ctime both of whole seconds are taken
 * for a filesystem of whole seconds (where the runtime reports ctime below the second).
 */
export function racyForMs(
  identity: FileIdentity,
  nowMs: number = Date.now(),
  wholeSecondsMeanCoarse: boolean = CTIME_BELOW_THE_SECOND,
): number {
  const nowNs = BigInt(nowMs) * 1_000_000n;
  // mtime too, since some runtimes (Deno) report ctime to the second only; but not an mtime
  // in the future (set by a tool or a skewed clock), which would hold the file back forever.
  const mtime = identity.mtimeNs <= nowNs ? identity.mtimeNs : 0n;
  const lastChange = identity.ctimeNs > mtime ? identity.ctimeNs : mtime;
  const coarse = wholeSecondsMeanCoarse && identity.mtimeNs % SECOND_NS === 0n &&
    identity.ctimeNs % SECOND_NS === 0n;
  const windowMs = RACY_WINDOW_MS + (coarse ? COARSE_TIMESTAMP_MS : 0);
  return Number(lastChange + BigInt(windowMs) * 1_000_000n - nowNs) / 1e6;
}

/**
 * Waits out {@link RACY_WINDOW_MS} before retrying a file that was changing, or, given the
 * version seen, until it is no longer racy ({@link changedTooRecently}); rejects with the
 * signal's reason once `signal` is aborted.
 */
export function waitOutRacyWindow(signal?: AbortSignal, seen?: FileIdentity): Promise<void> {
  const waitMs = Math.max(RACY_WINDOW_MS, Math.ceil(seen ? racyForMs(seen) : 0));
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const aborted = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }, waitMs);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

/** True when `error` is, or was caused by, a {@link FileChangedError}. */
export function isFileChanged(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof FileChangedError) return true;
  }
  return false;
}
