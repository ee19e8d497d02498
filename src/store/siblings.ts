/**
 * Deterministic sibling resolution: every host that reads the same siblings picks the same
 * winner, so writing the winner back converges instead of flapping.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** What the resolution looks at for one sibling. */
export interface SiblingCandidate<T> {
  /** Modification time in nanoseconds (usermeta, or Riak's last-modified time). */
  mtimeNs: bigint;
  /** sha256 (hex) of the sibling's content as stored (the value, or the manifest's digest). */
  sha256: string;
  /**
   * The stored value's bytes (a small file's content, a chunked file's manifest, which names
   * its generation): the last tie-break, so two uploads of the same bytes still order.
   */
  value?: Uint8Array;
  /** The sibling itself. */
  item: T;
}

/**
 * Picks the winner: the newest mtime; on a tie, the greatest sha256 (hex order), then the
 * greatest stored value (byte order), which are arbitrary but the same everywhere: two
 * siblings of one file's same bytes in two generations still have one winner on every host.
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
      (candidate.mtimeNs === best.mtimeNs &&
        (candidate.sha256 > best.sha256 ||
          (candidate.sha256 === best.sha256 && compareBytes(candidate.value, best.value) > 0)))
    ) best = candidate;
  }
  return best.item;
}

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  return Buffer.compare(Buffer.from(a ?? []), Buffer.from(b ?? []));
}
