/**
 * Small files read whole, with the blocking calls of {@link readSmallRaw} (open, fstat, one
 * read, fstat, lstat, close): on the caller's thread while they are quick (the page cache
 * answers: a read costs microseconds, a message to a thread and back costs more), on worker
 * threads once reads turn out slow (a cold legacy disk, an NFS source), so the event loop
 * never waits on the disk and `--concurrency` reads overlap. Measured (5,000 x 100 KiB, see
 * bench/README.md): from the page cache, reads always on threads cost 0.2 ms of CPU more per
 * file than blocking ones; through a source that answers each read in ~1 ms (a FUSE mount), a
 * pre-warm took 5.9-6.1 s against 8.3 s with blocking reads.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import { Worker } from "node:worker_threads";
import { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import {
  FileChangedError,
  type FileIdentity,
  lstatIfExists,
  lstatIfExistsSync,
} from "./file_identity.ts";
import {
  changedTooRecently,
  checkSmallRead,
  type RawSmallRead,
  readSmallRaw,
  readSmallUnchanged,
} from "./local_file.ts";

/** The most threads a pool starts, whatever it is asked for. */
const MAX_THREADS = 8;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const readSmallRaw = ${readSmallRaw.toString()};
parentPort.on("message", ({ id, path, size }) => {
  let result;
  try {
    result = readSmallRaw(fs, Buffer.from(path), size);
  } catch (error) {
    result = { failed: { code: error.code, message: String(error.message) } };
  }
  parentPort.postMessage({ id, result }, result.bytes ? [result.bytes.buffer] : []);
});
`;

type Reply = { id: number; result: RawSmallRead | { failed: { code?: string; message: string } } };

interface Waiting {
  path: Buffer;
  size: number;
  worker: number;
  resolve(raw: RawSmallRead): void;
  reject(error: Error): void;
}

/**
 * A pool of threads reading small files whole, started at the first read.
 *
 * @example
 * ```ts
 * const readers = new SmallFileReaders(4);
 * try {
 *   const bytes = await readers.read(Buffer.from("/srv/data/a.txt"), identity, "a.txt");
 * } finally {
 *   await readers.close();
 * }
 * ```
 */
export class SmallFileReaders {
  readonly #threads: number;
  #workers: Worker[] | undefined;
  /** Reads each worker has in flight, to send the next to the least busy. */
  #busy: number[] = [];
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 0;
  /** Workers could not be started (a runtime without them): reads block the caller. */
  #inline = false;
  /** Once blocking reads turn slow, they move to the threads for the rest of the pool's life. */
  readonly #pace: BlockingWhileFast;

  /** Whether reads run on the threads (false until reads turned out slow, or where none can run). */
  get onThreads(): boolean {
    return this.#workers !== undefined;
  }

  /**
   * `threads` reads at once at most once reads are slow (capped at 8). `slowReadMs`: a
   * blocking read slower than this is slow (default 1; 0 counts every read, for tests).
   * `blocking: false`: reads are on the threads from the start (a source on a network
   * filesystem, where one read can hang); a function is asked again now and then (see
   * `BlockingWhileFastOptions.allowed`).
   */
  constructor(
    threads: number,
    options: { slowReadMs?: number; blocking?: boolean | (() => boolean) } = {},
  ) {
    this.#threads = Math.max(1, Math.min(MAX_THREADS, threads));
    this.#pace = new BlockingWhileFast({ slowMs: options.slowReadMs, allowed: options.blocking });
  }

  /**
   * The whole content of the file at `absolutePath`, when it is the version `expected`.
   *
   * @throws {FileChangedError} when it is not, or not any more, that version.
   */
  async read(absolutePath: Buffer, expected: FileIdentity, name: string): Promise<Buffer> {
    if (changedTooRecently(expected)) throw new FileChangedError(name);
    const workers = this.#pace.blocking ? undefined : this.#start();
    if (workers === undefined) return this.#readHere(absolutePath, expected, name);
    let worker = 0;
    for (let i = 1; i < workers.length; i++) if (this.#busy[i] < this.#busy[worker]) worker = i;
    const id = this.#nextId++;
    const size = Number(expected.size);
    const raw = new Promise<RawSmallRead>((resolve, reject) => {
      this.#waiting.set(id, { path: absolutePath, size, worker, resolve, reject });
    });
    this.#busy[worker]++;
    if (this.#busy[worker] === 1) workers[worker].ref();
    workers[worker].postMessage({ id, path: absolutePath, size });
    return checkSmallRead(await raw, expected, name);
  }

  /**
   * lstat(2) of `absolutePath`, undefined when nothing is there. Blocking while reads are
   * fast (an lstat on the thread pool costs the event loop several times the call itself),
   * on the pool once they are slow.
   */
  lstat(absolutePath: Buffer): Promise<fs.BigIntStats | undefined> {
    return this.#pace.run(() => lstatIfExistsSync(absolutePath), () => lstatIfExists(absolutePath));
  }

  /** A blocking read on this thread, timed to tell a page cache from a disk. */
  #readHere(absolutePath: Buffer, expected: FileIdentity, name: string): Buffer {
    return this.#pace.timed(() =>
      readSmallUnchanged(absolutePath, expected, { displayName: name })
    );
  }

  /** Stops the threads; reads still in flight fail. */
  async close(): Promise<void> {
    const workers = this.#workers;
    this.#workers = undefined;
    this.#inline = true;
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new Error("the small-file readers were stopped"));
    }
    this.#waiting.clear();
    if (workers !== undefined) await Promise.all(workers.map((worker) => worker.terminate()));
  }

  #start(): Worker[] | undefined {
    if (this.#workers !== undefined || this.#inline) return this.#workers;
    try {
      this.#workers = Array.from({ length: this.#threads }, (_, index) => this.#spawn(index));
      this.#busy = this.#workers.map(() => 0);
    } catch {
      this.#inline = true;
    }
    return this.#workers;
  }

  #spawn(index: number): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Reads a file at a time into a buffer it hands over: a small heap does.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    worker.unref(); // Referenced only while it has reads in flight.
    worker.on("message", (reply: Reply) => this.#settle(index, reply));
    worker.on("error", (error) => this.#fail(index, error));
    worker.on("exit", (code) => this.#fail(index, new Error(`small-file reader exited (${code})`)));
    return worker;
  }

  #settle(index: number, { id, result }: Reply): void {
    const waiting = this.#waiting.get(id);
    if (!waiting) return;
    this.#waiting.delete(id);
    if (--this.#busy[index] === 0) this.#workers?.[index]?.unref();
    if ("failed" in result) {
      const error = new Error(result.failed.message) as NodeJS.ErrnoException;
      if (result.failed.code !== undefined) error.code = result.failed.code;
      waiting.reject(error);
    } else {
      waiting.resolve(result);
    }
  }

  /**
   * A worker died (or could not run here): what it had in flight is read by the caller's
   * thread instead, and so are later reads.
   */
  #fail(index: number, _error: Error): void {
    if (this.#workers !== undefined) {
      const workers = this.#workers;
      this.#workers = undefined;
      this.#inline = true;
      for (const worker of workers) void worker.terminate();
    }
    for (const [id, waiting] of this.#waiting) {
      if (waiting.worker !== index) continue;
      this.#waiting.delete(id);
      try {
        waiting.resolve(readSmallRaw(fs, waiting.path, waiting.size));
      } catch (error) {
        waiting.reject(error as Error);
      }
    }
  }
}
