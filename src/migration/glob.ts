/**
 * Include/exclude globs of `prewarm` and `verify`, on paths relative to the source root.
 *
 * A pattern without `/` matches a name at any depth (`*.tmp`, `.cache`); a pattern with
 * `/` matches the whole relative path (`logs/**\/*.gz`), the way rsync and .gitignore
 * users expect. Matching itself is node:path `matchesGlob` (Node 22+, Deno 2).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { matchesGlob } from "node:path";

/** Decides which entries of a walked tree take part in a run. */
export class PathFilter {
  readonly #include: readonly string[];
  readonly #exclude: readonly string[];

  /** Empty `include` = every file; `exclude` wins over `include`. */
  constructor(include: readonly string[] = [], exclude: readonly string[] = []) {
    for (const pattern of [...include, ...exclude]) {
      if (pattern.length === 0) throw new RangeError("an include/exclude glob must not be empty");
    }
    this.#include = include;
    this.#exclude = exclude;
  }

  /** True when nothing is filtered out. */
  get isEmpty(): boolean {
    return this.#include.length === 0 && this.#exclude.length === 0;
  }

  /**
   * True when a directory is walked into: only exclusions prune directories, since an
   * include such as `logs/**\/*.gz` needs the walk to reach the files below.
   */
  walksInto(relativePath: Uint8Array): boolean {
    return !this.#exclude.some((pattern) => matches(relativePath, pattern));
  }

  /** True when a file takes part: matches an include (if any) and no exclude. */
  selects(relativePath: Uint8Array): boolean {
    if (this.#exclude.some((pattern) => matches(relativePath, pattern))) return false;
    return this.#include.length === 0 ||
      this.#include.some((pattern) => matches(relativePath, pattern));
  }
}

function matches(relativePath: Uint8Array, pattern: string): boolean {
  const text = Buffer.from(relativePath).toString("utf8");
  if (pattern.includes("/")) return matchesGlob(text, pattern.replace(/^\/+/, ""));
  const slash = text.lastIndexOf("/");
  return matchesGlob(slash < 0 ? text : text.slice(slash + 1), pattern);
}
