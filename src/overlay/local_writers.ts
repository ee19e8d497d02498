/**
 * The local files a mount writes first (modes that mirror writes): which are open for writing
 * through it, and the write opens of a path that must run one at a time.
 *
 * @module
 */

import { mirrorsWrites, type MountMode } from "./modes.ts";
import type { UploadQueue } from "./upload_queue.ts";

/**
 * Local files open for writing through the mount, by path (modes that mirror writes): until
 * their mirror reached Riak, the local file is the newest copy.
 */
export class LocalWriters {
  readonly #mode: MountMode;
  readonly #uploads: Pick<UploadQueue, "newestIsMirror">;
  readonly #localWriters = new Map<string, number>();
  /** The last write open of each path in progress (see {@link oneWriteOpenAtATime}). */
  readonly #writeOpens = new Map<string, Promise<void>>();

  /** `uploads` tells which paths' newest job is a mirror still on its way. */
  constructor(mode: MountMode, uploads: Pick<UploadQueue, "newestIsMirror">) {
    this.#mode = mode;
    this.#uploads = uploads;
  }

  /** Paths open for writing (the memory held, for `tableSizes`). */
  get size(): number {
    return this.#localWriters.size;
  }

  /** Counts one more handle open for writing on the local file at `path`. */
  add(path: string): void {
    this.#localWriters.set(path, (this.#localWriters.get(path) ?? 0) + 1);
  }

  /** Counts one handle fewer open for writing on the local file at `path`. */
  forget(path: string): void {
    const writers = (this.#localWriters.get(path) ?? 1) - 1;
    if (writers > 0) this.#localWriters.set(path, writers);
    else this.#localWriters.delete(path);
  }

  /**
   * Whether the local file at `path` is newer than what Riak holds: open for writing
   * through the mount, or its mirror (or removal) still on its way and newer than any staged
   * upload of it (a mirror replayed from a run in a mode that mirrors counts in drain too,
   * until a write staged here comes after it).
   */
  localIsNewest(path: string): boolean {
    return this.#localWriters.has(path) || this.#uploads.newestIsMirror(path);
  }

  /**
   * Runs `body` (which opens `path` for writing, fetching it from Riak first if need be)
   * after every earlier one for `path` finished, where a fetch is possible: two writers
   * fetching at once would each rename a copy into place, one of them then writing into a
   * file the other replaced.
   */
  async oneWriteOpenAtATime<T>(path: string, body: () => Promise<T>): Promise<T> {
    if (this.#mode.reads === "local" || !mirrorsWrites(this.#mode)) return await body();
    const run = (this.#writeOpens.get(path) ?? Promise.resolve()).then(body);
    const settled = run.then(() => {}, () => {});
    this.#writeOpens.set(path, settled);
    try {
      return await run;
    } finally {
      if (this.#writeOpens.get(path) === settled) this.#writeOpens.delete(path);
    }
  }
}
