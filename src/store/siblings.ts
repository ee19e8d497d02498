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
  /**
   * The sibling's usermeta pairs and content type: the tie-break after the value, so two
   * siblings of the same bytes and mtime that differ in attributes (owner, mode, rename marks)
   * still have one winner on every host, whatever order Riak returns them in.
   */
  usermeta?: readonly { key: string; value: string }[];
  contentType?: string;
  /** The sibling itself. */
  item: T;
}

/**
 * Picks the winner: the newest mtime; on a tie, the greatest sha256 (hex order), then the
 * greatest stored value (byte order), then usermeta and content type, which are arbitrary but
 * the same everywhere: two siblings of one file's same bytes in two generations, or with other
 * owners, still have one winner on every host.
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
          (candidate.sha256 === best.sha256 && compareRest(candidate, best) > 0)))
    ) best = candidate;
  }
  return best.item;
}

/** Orders siblings of one mtime and sha256: by value, then usermeta, then content type. */
function compareRest<T>(a: SiblingCandidate<T>, b: SiblingCandidate<T>): number {
  return compareBytes(a.value, b.value) || compareText(describe(a), describe(b));
}

/** The usermeta pairs (sorted: their order carries no meaning) and the content type. */
function describe<T>(candidate: SiblingCandidate<T>): string {
  const pairs = (candidate.usermeta ?? []).map((pair) => JSON.stringify([pair.key, pair.value]));
  return JSON.stringify([pairs.sort(compareText), candidate.contentType ?? ""]);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  return Buffer.compare(Buffer.from(a ?? []), Buffer.from(b ?? []));
}
