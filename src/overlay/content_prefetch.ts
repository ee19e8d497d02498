/**
 * Whether a lookup should fetch a small file's bytes along with its attributes. Fetching
 * them costs nothing in round trips (the same get) and saves the read its own get, but it
 * moves the whole value: worth it while looked-up files are then read (`cat`, a web
 * server), wasted while they are only stat'ed (`ls -l`, `find`, rsync's comparison). So
 * the choice follows what the mount's clients did lately.
 *
 * @module
 */

/** Lookups remembered: counts are halved once this many were recorded. */
const WINDOW = 256;
/** Until this many lookups were seen, bytes are fetched (reading is the common case). */
const WARM_UP = 16;

/**
 * Counts Riak files looked up and Riak files opened for reading, over a sliding window, and
 * says to fetch contents while at least half of the looked-up files were opened.
 *
 * @example
 * ```ts
 * const prefetch = new ContentPrefetch();
 * const withContent = prefetch.wanted(); // at a LOOKUP
 * prefetch.lookedUp();                   // the LOOKUP found a Riak file
 * prefetch.opened();                     // an OPEN for reading of a Riak file
 * ```
 */
export class ContentPrefetch {
  #lookups = 0;
  #opens = 0;

  /** Whether the next lookup should fetch the file's bytes. */
  wanted(): boolean {
    return this.#lookups < WARM_UP || this.#opens * 2 >= this.#lookups;
  }

  /** A lookup found a file in Riak. */
  lookedUp(): void {
    this.#lookups++;
    if (this.#lookups >= WINDOW) {
      this.#lookups /= 2;
      this.#opens /= 2;
    }
  }

  /** A file in Riak was opened for reading. */
  opened(): void {
    this.#opens++;
  }
}
