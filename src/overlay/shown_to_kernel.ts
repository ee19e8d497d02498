/**
 * What the overlay showed the kernel of each path, which later answers must agree with: the
 * latest ctime shown (a ctime never goes back) and the Riak version last served (its pages
 * stay in the kernel's cache while unchanged).
 *
 * @module
 */

import type { Attr } from "../fuse/filesystem.ts";
import { setAsNewest } from "../util/recent_map.ts";
import { timespecOf } from "./attributes.ts";

/**
 * The latest ctime and the served Riak version of each path, each table bounded to `limit`
 * paths (the oldest go first).
 */
export class ShownToKernel {
  readonly #limit: number;
  /** The latest ctime shown for a path, oldest first ({@link attrOf}). */
  readonly #ctimes = new Map<string, bigint>();
  /** sha256 last served per path: an unchanged file keeps the kernel's page cache. */
  readonly #served = new Map<string, string>();

  /** `limit`: the paths each table holds at most. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Paths with a ctime remembered (the memory held, for `tableSizes`). */
  get ctimeCount(): number {
    return this.#ctimes.size;
  }

  /** Paths with a served version remembered (the memory held, for `tableSizes`). */
  get servedCount(): number {
    return this.#served.size;
  }

  /**
   * `attr`, the attributes of `path` where it was found (`local`: in the source), with a
   * ctime that never goes back: Riak keeps no ctime (its copies show the mtime), so a file
   * seen locally, or changed through the mount, keeps the latest ctime shown for it while
   * this mount runs (tar, which compares a file's ctime before and after reading it, sees no
   * change when the file's copy reaches Riak meanwhile).
   */
  attrOf(path: string, attr: Attr, local: boolean): Attr {
    const shownNs = BigInt(attr.ctime.sec) * 1_000_000_000n + BigInt(attr.ctime.nsec);
    const latestNs = this.#ctimes.get(path);
    if (latestNs !== undefined && latestNs > shownNs) {
      return { ...attr, ctime: timespecOf(latestNs) };
    }
    if (local) this.noteCtime(path, shownNs);
    return attr;
  }

  /** The latest ctime shown for `path`, if remembered. */
  latestCtime(path: string): bigint | undefined {
    return this.#ctimes.get(path);
  }

  /** Remembers that `path` showed (or got, changed through the mount) ctime `ctimeNs`. */
  noteCtime(path: string, ctimeNs: bigint): void {
    const latest = this.#ctimes.get(path);
    if (latest !== undefined && latest >= ctimeNs) return;
    // The oldest go first: a file not looked at for that long is not being read by tar.
    setAsNewest(this.#ctimes, path, ctimeNs, this.#limit);
  }

  /** Forgets the ctime shown for `path`: a file made there later is another one. */
  forgetCtime(path: string): void {
    this.#ctimes.delete(path);
  }

  /**
   * Notes that Riak's version `version` of `path` is served now, and tells whether it is the
   * one served last, so the kernel may keep the pages it cached of it.
   */
  servedKeepsCache(path: string, version: string): boolean {
    const keepCache = this.#served.get(path) === version;
    // Forgetting an old entry only costs that file its page cache on the next open.
    setAsNewest(this.#served, path, version, this.#limit);
    return keepCache;
  }

  /** Forgets the version served for `path`: it changed, its cached pages are stale. */
  forgetServed(path: string): void {
    this.#served.delete(path);
  }

  /**
   * After a rename of `from` over `to`: the file keeps the ctime it showed; the name it left,
   * and the file it replaced, go, and neither name keeps its cached pages.
   */
  renamed(from: string, to: string): void {
    this.#served.delete(from);
    this.#served.delete(to);
    const ctimeNs = this.#ctimes.get(from);
    this.#ctimes.delete(from);
    this.#ctimes.delete(to);
    if (ctimeNs !== undefined) this.noteCtime(to, ctimeNs);
  }
}
