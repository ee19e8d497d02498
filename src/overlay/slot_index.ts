/**
 * A hash index of slots (small integers naming the rows of a table kept in typed arrays),
 * held in one Int32Array: 4 to 8 bytes per entry where a `Map` costs about 37, and no object
 * per entry for the garbage collector to trace. The table it indexes owns the keys; the index
 * asks it for a slot's hash and whether a slot matches what is looked for.
 *
 * Open addressing with linear probing; a removal shifts the entries after it back, so no
 * tombstones pile up in a table whose entries come and go for months.
 *
 * @module
 */

/** No slot: what {@link SlotIndex.find} answers when nothing matches. */
export const NO_SLOT = -1;

/** Buckets of an empty index; it never shrinks below this. */
const FIRST_BUCKETS = 64;

/**
 * Slots by a hash of their key.
 *
 * @example
 * ```ts
 * const keys = [10, 20];
 * const index = new SlotIndex((slot) => hashNumber(keys[slot]));
 * index.add(0);
 * index.add(1);
 * index.find(hashNumber(20), (slot) => keys[slot] === 20); // 1
 * ```
 */
export class SlotIndex {
  /** Slot + 1 per bucket; 0 is an empty bucket. Its length is a power of two. */
  #buckets = new Int32Array(FIRST_BUCKETS);
  #count = 0;
  readonly #hashOf: (slot: number) => number;

  /** `hashOf(slot)`: the hash of the key the table holds in `slot` now. */
  constructor(hashOf: (slot: number) => number) {
    this.#hashOf = hashOf;
  }

  /** Slots indexed. */
  get size(): number {
    return this.#count;
  }

  /** The indexed slot of hash `hash` that `matches`, else {@link NO_SLOT}. */
  find(hash: number, matches: (slot: number) => boolean): number {
    const mask = this.#buckets.length - 1;
    for (let at = hash & mask;; at = (at + 1) & mask) {
      const entry = this.#buckets[at];
      if (entry === 0) return NO_SLOT;
      if (matches(entry - 1)) return entry - 1;
    }
  }

  /** Indexes `slot` under the hash of its key now; it must not be indexed already. */
  add(slot: number): void {
    if ((this.#count + 1) * 2 > this.#buckets.length) this.#resize(this.#buckets.length * 2);
    this.#place(slot);
    this.#count++;
  }

  /** Removes `slot`, indexed under the hash of its key now (before the key changes). */
  delete(slot: number): void {
    const buckets = this.#buckets;
    const mask = buckets.length - 1;
    let hole = this.#hashOf(slot) & mask;
    while (buckets[hole] !== slot + 1) {
      if (buckets[hole] === 0) return;
      hole = (hole + 1) & mask;
    }
    buckets[hole] = 0;
    this.#count--;
    // The entries after the hole that probing would no longer reach move back into it.
    for (let at = (hole + 1) & mask; buckets[at] !== 0; at = (at + 1) & mask) {
      const home = this.#hashOf(buckets[at] - 1) & mask;
      const reachable = hole <= at ? hole < home && home <= at : hole < home || home <= at;
      if (reachable) continue;
      buckets[hole] = buckets[at];
      buckets[at] = 0;
      hole = at;
    }
    if (this.#count * 8 < buckets.length && buckets.length > FIRST_BUCKETS) {
      this.#resize(buckets.length / 2);
    }
  }

  /** Indexes exactly `slots` again, under the hashes of their keys now. */
  rebuild(slots: Iterable<number>, count: number): void {
    let size = FIRST_BUCKETS;
    while (count * 2 > size) size *= 2;
    this.#buckets = new Int32Array(size);
    this.#count = count;
    for (const slot of slots) this.#place(slot);
  }

  #place(slot: number): void {
    const buckets = this.#buckets;
    const mask = buckets.length - 1;
    let at = this.#hashOf(slot) & mask;
    while (buckets[at] !== 0) at = (at + 1) & mask;
    buckets[at] = slot + 1;
  }

  #resize(size: number): void {
    const old = this.#buckets;
    this.#buckets = new Int32Array(size);
    for (const entry of old) if (entry !== 0) this.#place(entry - 1);
  }
}

/** Mixes the bits of a 32-bit hash (MurmurHash3's finalizer): buckets are its low bits. */
function mix(hash: number): number {
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

/** A hash of a non-negative integer of up to 53 bits (node ids, inode numbers). */
export function hashNumber(value: number): number {
  return mix((value >>> 0) ^ Math.imul((value / 0x1_0000_0000) >>> 0, 0x9e3779b1));
}

/**
 * A hash of `text.slice(start, end)` under `parent` (FNV-1a over its UTF-16 code units), read
 * in place: a component of a path is hashed without being cut out of it.
 */
export function hashName(parent: number, text: string, start = 0, end = text.length): number {
  let hash = 0x811c9dc5 ^ Math.imul(parent, 0x9e3779b1);
  for (let at = start; at < end; at++) hash = Math.imul(hash ^ text.charCodeAt(at), 0x01000193);
  return mix(hash);
}
