/**
 * What Riak's listings of directories held, as a mount last read them whole and kept up with
 * its own changes since: while Riak is away, whether a directory it holds is empty (and may be
 * removed, its removal journaled) is known only from there.
 *
 * @module
 */
import { setAsNewest } from "../util/recent_map.ts";
import { parentOf } from "./node_table.ts";

/** Names a directory's listing may hold and still be remembered. */
export const LISTED_NAMES_PER_DIRECTORY = 1024;

/**
 * Riak's names in directories, by directory path, most recently listed last. Bounded by the
 * names held in all (the oldest listings go first); a listing of more than
 * {@link LISTED_NAMES_PER_DIRECTORY} names is not kept (a directory that large is not
 * emptied during an outage).
 *
 * @example
 * ```ts
 * const listed = new ListedInRiak(10_000);
 * listed.listed("/d", ["a", "b"]);
 * listed.removed("/d/a");
 * listed.namesIn("/d"); // Set { "b" }
 * ```
 */
export class ListedInRiak {
  readonly #listings = new Map<string, Set<string>>();
  /** The names of each listing held that Riak listed as no directory (a file, a link). */
  readonly #files = new Map<string, Set<string>>();
  readonly #limit: number;
  readonly #perDirectory: number;
  #names = 0;
  /** The number of the last change the mount made to a name in a directory. */
  #sequence = 0;
  /** The number of each directory's last change (bounded, oldest first). */
  readonly #lastChange = new Map<string, number>();
  /** The newest change forgotten to keep {@link #lastChange} bounded: older looks fail. */
  #forgottenUpTo = 0;

  /** `limit`: names held in all listings at most. */
  constructor(limit: number, perDirectory = LISTED_NAMES_PER_DIRECTORY) {
    this.#limit = limit;
    this.#perDirectory = perDirectory;
  }

  /** Directories whose listing is held (for tests: the table is bounded). */
  get size(): number {
    return this.#listings.size;
  }

  /**
   * Begins a listing of Riak: its names are kept only where the mount changed no name in
   * the directory since (see {@link listed}).
   */
  look(): number {
    return this.#sequence;
  }

  /**
   * Riak's whole listing of `directory` was read: `names`, or undefined when it held more
   * than may be kept. Given the listing's `look`, not kept where a name in the directory
   * changed since: its shards may have been read before an upload landed there (read as the
   * kernel asks), and it would lack that name. `files`: those of `names` Riak listed as no
   * directory.
   */
  listed(
    directory: string,
    names: readonly string[] | undefined,
    look?: number,
    files: readonly string[] = [],
  ): void {
    this.#drop(directory);
    if (names === undefined || names.length > this.#perDirectory) return;
    if (look !== undefined && this.#changedSince(directory, look)) return;
    this.#listings.set(directory, new Set(names));
    if (files.length > 0) this.#files.set(directory, new Set(files));
    this.#names += names.length;
    for (const [oldest] of this.#listings) {
      if (this.#names <= this.#limit) break;
      this.#drop(oldest);
    }
  }

  /** Riak holds `path` now (made, or found there): its directory's listing names it. */
  added(path: string): void {
    if (path === "/") return;
    const directory = parentOf(path);
    const held = this.#listings.get(directory);
    const name = nameOf(path);
    // What the listing held already (a lookup found it) changes nothing a listing reads.
    if (held?.has(name)) return;
    this.#changed(directory);
    if (held === undefined) return;
    if (held.size >= this.#perDirectory) return this.#drop(directory);
    held.add(name);
    this.#names++;
  }

  /** Riak holds `path` no more: its directory's listing loses it. */
  removed(path: string): void {
    if (path === "/") return;
    const held = this.#listings.get(parentOf(path));
    if (held !== undefined && !held.has(nameOf(path))) return;
    this.#changed(parentOf(path));
    this.#files.get(parentOf(path))?.delete(nameOf(path));
    if (held?.delete(nameOf(path))) this.#names--;
  }

  /** Whether the listing held of `path`'s directory named it as no directory. */
  isFile(path: string): boolean {
    return path !== "/" && this.#files.get(parentOf(path))?.has(nameOf(path)) === true;
  }

  /**
   * The listings of `from` and of the directories below it are those of `to` and below now
   * (a directory renamed while Riak was away): what Riak holds there follows it.
   */
  moved(from: string, to: string): void {
    const prefix = `${from}/`;
    const moving = [...this.#listings].filter(([directory]) =>
      directory === from || directory.startsWith(prefix)
    );
    this.forget(to);
    for (const [directory, names] of moving) {
      const files = this.#files.get(directory);
      this.#drop(directory);
      const renamed = to + directory.slice(from.length);
      this.#listings.set(renamed, names);
      if (files !== undefined) this.#files.set(renamed, files);
      this.#names += names.size;
    }
  }

  /** Forgets the listings of `path` and of the directories below it (renamed, removed). */
  forget(path: string): void {
    const prefix = path === "/" ? "/" : `${path}/`;
    for (const directory of [...this.#listings.keys()]) {
      if (directory === path || directory.startsWith(prefix)) this.#drop(directory);
    }
  }

  /** Riak's names in `directory`, if its listing is held. */
  namesIn(directory: string): ReadonlySet<string> | undefined {
    return this.#listings.get(directory);
  }

  #changed(directory: string): void {
    const dropped = setAsNewest(this.#lastChange, directory, ++this.#sequence, this.#limit);
    if (dropped === undefined) return;
    const [, forgotten] = dropped;
    this.#forgottenUpTo = Math.max(this.#forgottenUpTo, forgotten);
  }

  #changedSince(directory: string, look: number): boolean {
    return this.#forgottenUpTo > look || (this.#lastChange.get(directory) ?? 0) > look;
  }

  #drop(directory: string): void {
    const held = this.#listings.get(directory);
    if (held === undefined) return;
    this.#listings.delete(directory);
    this.#files.delete(directory);
    this.#names -= held.size;
  }
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
