/**
 * Reproducible pseudo-random numbers (not for secrets: use node:crypto for those).
 *
 * @module
 */

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence on
 * every run and platform, so samples and fuzz inputs can be reproduced from the seed alone.
 * Each call returns a number in [0, 1).
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * const index = Math.floor(random() * items.length);
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
