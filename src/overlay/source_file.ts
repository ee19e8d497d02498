/**
 * Files of the source opened by the overlay, as descriptors. `fs.promises.open` takes the
 * libuv pool twice per file (open, then close), which measured ~250 us for a create and its
 * close on the development VM against ~50 us for the same blocking calls, and there is no
 * FileHandle to be had for a descriptor opened otherwise. So the overlay's files are plain
 * descriptors behind the few calls it makes on them, opened and closed blocking while the
 * source is quick ({@link BlockingWhileFast}); reads, writes and the rest go to the pool.
 *
 * @module
 */
import type { BigIntStats } from "node:fs";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { BlockingWhileFast, isLocalFilesystem } from "../util/blocking_while_fast.ts";

const { O_NONBLOCK } = fs.constants;

/** After this long on the pool (ms), the source's calls are tried blocking again. */
const SOURCE_PACE_RETRY_MS = 10_000;

/**
 * The pace of the calls to `source`, one for everything of a mount that calls it (requests
 * and the jobs behind them): never blocking where the source, or anything mounted below it
 * (looked at again every few seconds: an NFS share mounted there later), is not a local
 * filesystem, or where there is no source.
 */
export function sourcePace(source: string | undefined): BlockingWhileFast {
  return new BlockingWhileFast({
    retryAfterMs: SOURCE_PACE_RETRY_MS,
    allowed: source === undefined ? false : () => isLocalFilesystem(source),
  });
}

/** What the overlay does with an open file of the source (a FileHandle does all of it too). */
export interface SourceFile {
  /** The descriptor (the FUSE reader threads read and write it for local handles). */
  readonly fd: number;
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }>;
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  stat(options: { bigint: true }): Promise<BigIntStats>;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  truncate(length?: number): Promise<void>;
  sync(): Promise<void>;
  /** Closes the descriptor; later calls do nothing. */
  close(): Promise<void>;
}

/**
 * Writes all `length` bytes of `buffer` from `offset` at `position`, or throws. write(2)
 * answers a short count when the disk fills in the middle of it (ENOSPC comes only with the
 * next call): a copy that took the count for the whole went on, and kept a hole of zeros, or
 * lost its end, as if it were the file (then uploaded, and the original deleted by a drain).
 *
 * @example
 * ```ts
 * await writeWhole(staged, chunk, 0, chunk.length, position);
 * ```
 */
export async function writeWhole(
  file: Pick<SourceFile, "write">,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesWritten } = await file.write(
      buffer,
      offset + done,
      length - done,
      position + done,
    );
    if (bytesWritten <= 0) {
      // Not what a regular file answers; looping would never end.
      throw Object.assign(new Error(`EIO: write of ${length - done} bytes wrote nothing`), {
        code: "EIO",
      });
    }
    done += bytesWritten;
  }
}

const readAt = promisify(fs.read);
const writeAt = promisify(fs.write);
const fstat = promisify(fs.fstat);
const fchmod = promisify(fs.fchmod);
const fchown = promisify(fs.fchown);
const ftruncate = promisify(fs.ftruncate);
const fsync = promisify(fs.fsync);
const closeAsync = promisify(fs.close);
const openAsync = promisify(fs.open);

/**
 * Opens `path` of the source with open(2) `flags` and `mode`: blocking while `pace` says the
 * source is quick, else on the pool. A blocking open never waits on a FIFO or a device: it
 * is made with O_NONBLOCK, and what turns out not to be a regular file is opened again on
 * the pool, as asked (a FIFO or a device opened twice: the first open had no effect).
 *
 * @example
 * ```ts
 * const file = await openSourceFile("/srv/legacy/a.txt", fs.constants.O_RDONLY, 0, pace);
 * try {
 *   await file.read(buffer, 0, buffer.length, 0);
 * } finally {
 *   await file.close();
 * }
 * ```
 */
export async function openSourceFile(
  path: string,
  flags: number,
  mode: number,
  pace: BlockingWhileFast,
): Promise<SourceFile> {
  if (pace.blocking) {
    const fd = openWithoutWaiting(path, flags, mode, pace);
    if (fd !== undefined) return new DescriptorFile(fd, pace);
  }
  return new DescriptorFile(await openAsync(path, flags, mode), pace);
}

/**
 * An open descriptor, closed once. As a FileHandle's, its close waits for the calls still
 * on the pool, and a call after it fails with EBADF: a number closed is handed to the next
 * file opened, which a late read, write or truncate would otherwise reach (a request the
 * session answered at its deadline goes on, and its RELEASE may come meanwhile).
 */
class DescriptorFile implements SourceFile {
  readonly #fd: number;
  readonly #pace: BlockingWhileFast;
  #closed = false;
  /** Calls not finished yet, and what the close waiting for them is told. */
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(fd: number, pace: BlockingWhileFast) {
    this.#fd = fd;
    this.#pace = pace;
  }

  get fd(): number {
    return this.#fd;
  }

  #use<T>(call: (fd: number) => Promise<T>): Promise<T> {
    if (this.#closed) {
      const error: NodeJS.ErrnoException = new Error("EBADF: bad file descriptor (closed)");
      error.code = "EBADF";
      return Promise.reject(error);
    }
    this.#inFlight++;
    return call(this.#fd).finally(() => {
      if (--this.#inFlight === 0) this.#idle?.();
    });
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number) {
    return this.#use(async (fd) => ({
      bytesRead: (await readAt(fd, buffer, offset, length, position)).bytesRead,
    }));
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number) {
    return this.#use(async (fd) => ({
      bytesWritten: (await writeAt(fd, buffer, offset, length, position)).bytesWritten,
    }));
  }

  stat(options: { bigint: true }): Promise<BigIntStats> {
    return this.#use((fd) => fstat(fd, options) as Promise<BigIntStats>);
  }

  chmod(mode: number): Promise<void> {
    return this.#use((fd) => fchmod(fd, mode));
  }

  chown(uid: number, gid: number): Promise<void> {
    return this.#use((fd) => fchown(fd, uid, gid));
  }

  truncate(length = 0): Promise<void> {
    return this.#use((fd) => ftruncate(fd, length));
  }

  sync(): Promise<void> {
    return this.#use((fd) => fsync(fd));
  }

  async close(): Promise<void> {
    // Once only: the number may belong to another file by the second time.
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle = resolve);
    await this.#pace.run(() => fs.closeSync(this.#fd), () => closeAsync(this.#fd));
  }
}

/**
 * A blocking open(2) that cannot wait: the descriptor of a regular file, else undefined (a
 * FIFO without a writer or reader, a device, a file under a lease), for the pool to open as
 * asked. O_NONBLOCK stays set on the descriptor: to a regular file's reads and writes it
 * means nothing, and nobody else sees it.
 */
function openWithoutWaiting(
  path: string,
  flags: number,
  mode: number,
  pace: BlockingWhileFast,
): number | undefined {
  let fd: number;
  try {
    fd = pace.timed(() => fs.openSync(path, flags | O_NONBLOCK, mode));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENXIO" || code === "EAGAIN" || code === "EWOULDBLOCK") return undefined;
    throw error;
  }
  let regular = false;
  try {
    regular = fs.fstatSync(fd).isFile();
  } finally {
    if (!regular) fs.closeSync(fd);
  }
  return regular ? fd : undefined;
}
