/**
 * Which names directories' indexes hold, read shard by shard as names are asked about: a
 * caller deciding for many names of one directory in turn (the pre-warm) learns whether each
 * is listed with a fetch per shard, not a look-up per name, and without reading the whole of a
 * large directory. Shards are kept within a bound on the names held.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { DirectoryPlacement } from "./layout.ts";
import { normalizePath, splitParent, type StorePath } from "./path.ts";
import { shardIndex } from "./shards.ts";

/** Default of {@link ListedNamesOptions.namesHeld}: ~10-15 MB of names. */
export const DEFAULT_LISTED_NAMES_HELD = 150_000;
/** Default of {@link ListedNamesOptions.ttlMs}. */
export const DEFAULT_LISTED_NAMES_TTL_MS = 5_000;
/** Default of {@link ListedNamesOptions.directoriesKept}. */
export const DEFAULT_LISTED_DIRECTORIES_KEPT = 8;

/** Bounds of a {@link ListedNames}. */
export interface ListedNamesOptions {
  /**
   * Names held at most, over all directories (a fetch under way may pass it by a shard's
   * worth). A directory that needs more answers `undefined` for the names in shards it could
   * not keep.
   */
  namesHeld?: number;
  /** How long a shard read from Riak is trusted to tell that a name is absent. */
  ttlMs?: number;
  /** Directories kept at once (the least recently asked about go first). */
  directoriesKept?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

/** How {@link ListedNames} reaches a store's directories. */
export interface ListedNamesSource {
  placement(directory: Buffer): DirectoryPlacement;
  /** See {@link DirectoryIndex.shardNames}. */
  shardNames(
    directory: DirectoryPlacement,
    count: number,
    index: number,
  ): Promise<{ names: Set<string>; levels: number[] }>;
  /**
   * A name the directory lists without an entry of its own (a riak-fuse folder's images
   * folder, which riak-fuse's set alone may name): always answered as listed.
   */
  listedWithoutEntry(directory: Buffer, name: Buffer): boolean;
}

/** A shard's names (latin1); for a root shard, also the directory's levels. */
interface ShardRead {
  names: Set<string>;
  levels: number[];
}

interface Shard {
  /** Rejected fetches are dropped from the directory, so the next name asks again. */
  read: Promise<ShardRead>;
  at: number;
  /** Names counted against the bound once the fetch resolved. */
  held: number;
}

interface CachedDirectory {
  placement: DirectoryPlacement;
  /** By `<count>.<index>`; the root shard (`1.0`) also gives the levels. */
  shards: Map<string, Shard>;
  /** Made by the caller (see {@link ListedNames.madeEmpty}): every name is absent. */
  madeEmpty: boolean;
  /** Needed more names than the bound lets it hold: uncached shards are not fetched. */
  full: boolean;
}

/**
 * Whether directories' indexes name entries, for a caller that asks about many names of a
 * directory in turn. A name's answer takes the directory's root shard (its first level and
 * the list of levels) and the one shard of each further level the name hashes to
 * (docs/layout.md, "Shards"), each fetched once and kept while the bounds allow: "listed"
 * from a shard of any age, "absent" from shards younger than {@link ListedNamesOptions.ttlMs}
 * (older ones are read again first).
 *
 * An answer may be that old: a caller must act on it only where a stale answer is never
 * wrong (an absent name is put with `if_none_match`; a listed one is looked up).
 *
 * @example
 * ```ts
 * const listed = store.listedNames();
 * if (await listed.has("photos/a.jpg") === false) {
 *   // not listed: a put with if_none_match finds out whether it is there after all
 * }
 * ```
 */
export class ListedNames {
  readonly #source: ListedNamesSource;
  readonly #namesHeld: number;
  readonly #ttlMs: number;
  readonly #directoriesKept: number;
  readonly #now: () => number;
  /** By latin1 of the path, least recently asked about first. */
  readonly #directories = new Map<string, CachedDirectory>();
  #held = 0;

  constructor(source: ListedNamesSource, options: ListedNamesOptions = {}) {
    this.#source = source;
    this.#namesHeld = options.namesHeld ?? DEFAULT_LISTED_NAMES_HELD;
    this.#ttlMs = options.ttlMs ?? DEFAULT_LISTED_NAMES_TTL_MS;
    this.#directoriesKept = options.directoriesKept ?? DEFAULT_LISTED_DIRECTORIES_KEPT;
    this.#now = options.now ?? Date.now;
  }

  /** Names held now, over all directories (for tests and benchmarks). */
  get held(): number {
    return this.#held;
  }

  /**
   * Whether the index of `path`'s directory names it (as any type); undefined when that is
   * not known without holding more names than allowed. Rejects when Riak does.
   *
   * A name a kept shard names is answered listed however old the shard: a caller looks such a
   * name up anyway. Absence is answered from shards younger than the TTL only, as a caller
   * acts on it without a look-up.
   */
  async has(path: StorePath): Promise<boolean | undefined> {
    const p = normalizePath(path);
    if (p.length === 0) return true; // the root is no directory's entry
    const { parent, name } = splitParent(p);
    if (this.#source.listedWithoutEntry(parent, name)) return true;
    const directory = this.#directory(parent);
    if (directory.madeEmpty) return false;
    const kept = await this.#lookup(directory, name, false);
    return kept === "stale"
      ? await this.#lookup(directory, name, true) as boolean | undefined
      : kept;
  }

  /**
   * Looks for `name` in the root shard and the one shard per level it hashes to; "stale" when
   * none of them names it and one was older than the TTL (never with `fresh`, which reads
   * such shards again).
   */
  async #lookup(
    directory: CachedDirectory,
    name: Buffer,
    fresh: boolean,
  ): Promise<boolean | undefined | "stale"> {
    const id = name.toString("latin1");
    const root = await this.#shard(directory, 1, 0, fresh);
    if (root === undefined) return undefined;
    if (root.read.names.has(id)) return true;
    let stale = root.stale;
    for (const count of root.read.levels) {
      if (count === 1) continue;
      const shard = await this.#shard(directory, count, shardIndex(name, count), fresh);
      if (shard === undefined) return undefined;
      if (shard.read.names.has(id)) return true;
      stale ||= shard.stale;
    }
    return stale ? "stale" : false;
  }

  /**
   * Notes that the caller just made `directory` where nothing was: its index holds only what
   * the caller adds itself, and other writers' names added since. Every name is answered
   * absent, without a fetch, for as long as the directory is kept: re-reading would read back
   * the caller's own names, more and more of them in a large directory. An answer gone stale
   * that way is one for a name another writer made in a directory that did not exist moments
   * before, which the caller's put with `if_none_match` still finds (a file or link); only a
   * directory of that name goes unseen, as when two hosts create one name at once.
   */
  madeEmpty(directory: StorePath): void {
    const p = normalizePath(directory);
    this.#forget(p.toString("latin1"));
    const cached = this.#directory(p);
    cached.madeEmpty = true;
  }

  /** The cached directory, made the most recently used; others beyond the bound go. */
  #directory(p: Buffer): CachedDirectory {
    const key = p.toString("latin1");
    let cached = this.#directories.get(key);
    if (cached) {
      this.#directories.delete(key);
    } else {
      cached = {
        placement: this.#source.placement(p),
        shards: new Map(),
        madeEmpty: false,
        full: false,
      };
    }
    this.#directories.set(key, cached);
    for (const other of this.#directories.keys()) {
      if (this.#directories.size <= this.#directoriesKept) break;
      this.#forget(other);
    }
    return cached;
  }

  /**
   * A shard's names: the one kept (`stale` when older than the TTL), unless `fresh` asks for
   * one younger; else fetched. Undefined when the directory cannot hold more.
   */
  async #shard(
    directory: CachedDirectory,
    count: number,
    index: number,
    fresh: boolean,
  ): Promise<{ read: ShardRead; stale: boolean } | undefined> {
    const key = `${count}.${index}`;
    const kept = directory.shards.get(key);
    const stale = kept !== undefined && this.#now() - kept.at >= this.#ttlMs;
    if (kept && !(stale && fresh)) return { read: await kept.read, stale };
    if (!kept && directory.full) return undefined;
    const shard: Shard = {
      read: this.#source.shardNames(directory.placement, count, index),
      at: this.#now(),
      held: 0,
    };
    this.#drop(directory, key);
    directory.shards.set(key, shard);
    let read: ShardRead;
    try {
      read = await shard.read;
    } catch (error) {
      if (directory.shards.get(key) === shard) directory.shards.delete(key);
      throw error;
    }
    // Replaced or forgotten since: answered all the same.
    if (directory.shards.get(key) !== shard) return { read, stale: false };
    shard.held = read.names.size;
    this.#held += shard.held;
    this.#makeRoom(directory);
    if (this.#held > this.#namesHeld) {
      // This directory alone needs more: answered once, not kept; what it holds stays.
      this.#drop(directory, key);
      directory.full = true;
    }
    return { read, stale: false };
  }

  /**
   * Forgets other directories holding names, least recently asked about first, until the
   * bound is kept (one made empty holds none: forgetting it would only cost a read later).
   */
  #makeRoom(keep: CachedDirectory): void {
    for (const [key, other] of this.#directories) {
      if (this.#held <= this.#namesHeld) return;
      if (other !== keep && other.shards.size > 0) this.#forget(key);
    }
  }

  #drop(directory: CachedDirectory, key: string): void {
    const shard = directory.shards.get(key);
    if (!shard) return;
    this.#held -= shard.held;
    directory.shards.delete(key);
  }

  #forget(key: string): void {
    const directory = this.#directories.get(key);
    if (!directory) return;
    for (const shard of directory.shards.keys()) this.#drop(directory, shard);
    this.#directories.delete(key);
  }
}
