/**
 * An open directory's entries, read from their source as the kernel asks for them: a listing
 * of a million entries is never held whole (the kernel reads a few dozen per READDIR), and
 * its first entries reach `ls` or `find` while the rest are still being read from Riak.
 *
 * The kernel reads a directory handle front to back, each READDIR starting at the offset the
 * last entry it took named. Entries read ahead and not taken yet (a reply that filled up, a
 * READDIRPLUS batch looked up in parallel) wait here for the next READDIR. An offset before
 * them (rewinddir, a seekdir back) starts the listing again and skips to it, as POSIX lets a
 * rewound directory stream show the directory as it is now.
 *
 * @module
 */

import type { DirEntryIn } from "../fuse/filesystem.ts";
import type { DirEntry } from "../store/store.ts";
import { S_IFDIR, S_IFLNK, S_IFREG } from "./attributes.ts";
import { childPath, type NodeTable } from "./node_table.ts";

/** An entry of a listing: its name and its file type bits (S_IFDIR, S_IFREG, S_IFLNK). */
export interface Listed {
  name: string;
  type: number;
}

/**
 * The entries of one open directory handle, by offset (0 is the first entry of the listing).
 * Reading the first entry when the directory is opened reports a listing that cannot begin
 * (no such directory) to opendir(3) rather than to the first readdir(3).
 *
 * @example
 * ```ts
 * const stream = new DirectoryStream(() => listEntries(path));
 * const batch = await stream.entriesAt(0, 64); // up to 64 entries from offset 0
 * await stream.close();
 * ```
 */
export class DirectoryStream {
  readonly #start: () => AsyncIterator<Listed>;
  #iterator: AsyncIterator<Listed> | undefined;
  /** Entries read and not yet passed by the kernel; the first is at {@link #bufferOffset}. */
  #buffer: Listed[] = [];
  #bufferOffset = 0;
  #ended = false;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();

  /** `start` begins a listing (again, after a seek back). */
  constructor(start: () => AsyncIterator<Listed>) {
    this.#start = start;
  }

  /**
   * Up to `count` entries from `offset` on (fewer at the end of the listing). Entries before
   * `offset` are let go: the kernel asks for an offset only once it took what came before.
   * Calls run one after the other (the kernel sends one READDIR per handle at a time anyway).
   */
  entriesAt(offset: number, count: number): Promise<Listed[]> {
    const result = this.#queue.then(() => this.#entriesAt(offset, count));
    this.#queue = result.then(() => {}, () => {});
    return result;
  }

  async #entriesAt(offset: number, count: number): Promise<Listed[]> {
    if (this.#closed) return [];
    if (offset < this.#bufferOffset) await this.#restart();
    const passed = Math.min(offset - this.#bufferOffset, this.#buffer.length);
    this.#buffer.splice(0, passed);
    this.#bufferOffset += passed;
    // An offset past what was read (a seekdir forward): read on to it.
    while (this.#bufferOffset < offset && await this.#readOne() !== undefined) {
      this.#buffer.shift();
      this.#bufferOffset++;
    }
    while (this.#buffer.length < count && await this.#readOne() !== undefined);
    return this.#buffer.slice(0, count);
  }

  /** Ends the listing (the handle is released): what it holds open is let go. */
  async close(): Promise<void> {
    const iterator = this.#iterator;
    this.#iterator = undefined;
    this.#buffer = [];
    this.#ended = true;
    this.#closed = true;
    await iterator?.return?.();
  }

  async #readOne(): Promise<Listed | undefined> {
    if (this.#ended) return undefined;
    this.#iterator ??= this.#start();
    let step: IteratorResult<Listed>;
    try {
      step = await this.#iterator.next();
    } catch (error) {
      // A listing that failed (Riak's step timed out) is over: read on, it would say it ended.
      // The kernel asks for the same offset again when the application reads on: from anew.
      await this.#restart();
      throw error;
    }
    if (step.done) {
      this.#ended = true;
      return undefined;
    }
    this.#buffer.push(step.value);
    return step.value;
  }

  async #restart(): Promise<void> {
    const old = this.#iterator;
    this.#iterator = undefined;
    this.#buffer = [];
    this.#bufferOffset = 0;
    this.#ended = false;
    await old?.return?.();
  }
}

/** Entry `index` of the listing of directory `path`, as READDIR sends it. */
export function direntOf(nodes: NodeTable, path: string, entry: Listed, index: number): DirEntryIn {
  const dot = entry.name === "." || entry.name === "..";
  return {
    name: entry.name,
    ino: nodes.inoOf(dot ? path : childPath(path, entry.name)),
    mode: entry.type,
    nextOffset: index + 1,
  };
}

/** The file type bits of a store listing's entry type. */
export function listedType(type: DirEntry["type"]): number {
  return type === "directory" ? S_IFDIR : type === "symlink" ? S_IFLNK : S_IFREG;
}

/** The file type bits of a source directory's entry. */
export function direntType(dirent: { isDirectory(): boolean; isSymbolicLink(): boolean }): number {
  if (dirent.isDirectory()) return S_IFDIR;
  if (dirent.isSymbolicLink()) return S_IFLNK;
  return S_IFREG;
}
