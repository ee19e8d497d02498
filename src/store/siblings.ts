/**
 * Deterministic sibling resolution: every host that reads the same siblings picks the same
 * winner, so writing the winner back converges instead of flapping.
 *
 * @module
 */

/** What the resolution looks at for one sibling. */
export interface SiblingCandidate<T> {
  /** Modification time in nanoseconds (usermeta, or Riak's last-modified time). */
  mtimeNs: bigint;
  /** sha256 (hex) of the sibling's content as stored (the value, or the manifest's digest). */
  sha256: string;
  /** The sibling itself. */
  item: T;
}

/**
 * Picks the winner: the newest mtime; on a tie, the greatest sha256 (hex order), which is
 * arbitrary but the same everywhere. Identical candidates are equivalent.
 *
 * @example
 * ```ts
 * chooseSibling([{ mtimeNs: 1n, sha256: "aa", item: "old" }, { mtimeNs: 2n, sha256: "00", item: "new" }]);
 * // "new"
 * ```
 */
export function chooseSibling<T>(candidates: readonly SiblingCandidate<T>[]): T {
  if (candidates.length === 0) throw new RangeError("chooseSibling needs at least one sibling");
  let best = candidates[0];
  for (const candidate of candidates.slice(1)) {
    if (
      candidate.mtimeNs > best.mtimeNs ||
      (candidate.mtimeNs === best.mtimeNs && candidate.sha256 > best.sha256)
    ) best = candidate;
  }
  return best.item;
}
