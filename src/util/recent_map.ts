/**
 * Maps used as bounded recency tables: insertion order is recency (a Map iterates in the
 * order keys were first set), so setting a key again moves it to the end and the first key
 * is the one unused longest.
 *
 * @module
 */

/**
 * Sets `key` to `value` as the newest entry of `map` (moved to the end if it was there),
 * then drops the oldest entry if `map` holds more than `limit`, and returns it. Memory stays
 * bounded for a mount that runs for months, and what goes first is what was set longest ago.
 *
 * @example
 * ```ts
 * const ctimes = new Map<string, bigint>();
 * setAsNewest(ctimes, "/a", 1n, 2);
 * setAsNewest(ctimes, "/b", 2n, 2);
 * setAsNewest(ctimes, "/a", 3n, 2); // "/a" is now the newest
 * setAsNewest(ctimes, "/c", 4n, 2); // drops "/b"
 * ```
 */
export function setAsNewest<K, V>(
  map: Map<K, V>,
  key: K,
  value: V,
  limit: number,
): [K, V] | undefined {
  map.delete(key);
  map.set(key, value);
  if (map.size <= limit) return undefined;
  const oldest = map.entries().next().value!;
  map.delete(oldest[0]);
  return oldest;
}
