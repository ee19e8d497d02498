/**
 * Include/exclude globs of `prewarm` and `verify`, on paths relative to the source root.
 *
 * A pattern without `/` matches a name at any depth (`*.tmp`, `.cache`); a pattern with
 * `/` matches the whole relative path (`logs/**\/*.gz`), the way rsync and .gitignore
 * users expect. A pattern ending in `/` (`cache/`, `logs/old/`) matches a directory and
 * everything below it, as in rsync and .gitignore (otherwise nothing matched it: no relative
 * path ends in `/`). Matching itself is node:path `matchesGlob` (Node 22+, Deno 2).
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

  /** The globs, as given (recorded with a pass's cursor). */
  get globs(): { include: string[]; exclude: string[] } {
    return { include: [...this.#include], exclude: [...this.#exclude] };
  }

  /** Whether `other` selects the same (the same globs, in any order). */
  sameGlobs(other: { include: readonly string[]; exclude: readonly string[] }): boolean {
    const same = (a: readonly string[], b: readonly string[]) =>
      a.length === b.length && [...a].sort().every((glob, i) => glob === [...b].sort()[i]);
    return same(this.#include, other.include) && same(this.#exclude, other.exclude);
  }

  /** The globs as the flags that give them (`--exclude "*.tmp"`); "" when there are none. */
  static flags(globs: { include?: readonly string[]; exclude?: readonly string[] }): string {
    return [
      ...(globs.include ?? []).map((glob) => `--include ${JSON.stringify(glob)}`),
      ...(globs.exclude ?? []).map((glob) => `--exclude ${JSON.stringify(glob)}`),
    ].join(" ");
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
    return !this.#excludesDirectory(relativePath);
  }

  #excludesDirectory(relativePath: Uint8Array): boolean {
    return this.#exclude.some((pattern) => matches(relativePath, pattern, "directory"));
  }

  /**
   * True when a directory takes part by itself, empty or not: no include is given, or one
   * naming directories (`cache/`) covers it; and it is walked into. Another one is needed
   * only as the way to something selected below it.
   */
  selectsDirectory(relativePath: Uint8Array): boolean {
    if (this.#excludesDirectory(relativePath)) return false;
    return this.#include.length === 0 ||
      this.#include.some((pattern) =>
        pattern.endsWith("/") && matches(relativePath, pattern, "directory")
      );
  }

  /** True when a file takes part: matches an include (if any) and no exclude. */
  selects(relativePath: Uint8Array): boolean {
    if (this.#exclude.some((pattern) => matches(relativePath, pattern, "file"))) return false;
    return this.#include.length === 0 ||
      this.#include.some((pattern) => matches(relativePath, pattern, "file"));
  }
}

function matches(relativePath: Uint8Array, pattern: string, kind: "file" | "directory"): boolean {
  const text = Buffer.from(relativePath).toString("utf8");
  if (!pattern.endsWith("/")) return matchesEntry(text, pattern);
  // A directory pattern: the path is that directory (a file of the name is not), or lies
  // below one (a file named in a retry list, or a PATH given to verify, is not walked to).
  const directory = pattern.replace(/\/+$/, "");
  const names = text.split("/");
  const last = kind === "directory" ? names.length : names.length - 1;
  for (let depth = 1; depth <= last; depth++) {
    if (matchesEntry(names.slice(0, depth).join("/"), directory)) return true;
  }
  return false;
}

/** Whether the entry at `text` matches `pattern` (one with no trailing `/`). */
function matchesEntry(text: string, pattern: string): boolean {
  if (pattern.includes("/")) return matchesWithDots(text, pattern.replace(/^\/+/, ""));
  const slash = text.lastIndexOf("/");
  return matchesWithDots(slash < 0 ? text : text.slice(slash + 1), pattern);
}

/** Put before every name, so that no name starts with a dot (see {@link matchesWithDots}). */
const NAME_START = "\u0001";

/**
 * `matchesGlob`, whose wildcards (`*`, `?`, `[...]`, `**`) also match a name starting with a
 * dot, as rsync's and .gitignore's do: matchesGlob skips such names (`*.swp` let vim's
 * `.notes.swp` through), and has no option to include them. Every name of both sides gets
 * {@link NAME_START} first, a `**` of the pattern excepted, so none starts with a dot.
 */
function matchesWithDots(text: string, pattern: string): boolean {
  const startNames = (path: string, keep: (name: string) => boolean) =>
    path.split("/").map((name) => keep(name) ? name : NAME_START + name).join("/");
  return matchesGlob(
    startNames(text, () => false),
    startNames(pattern, (name) => name === "**"),
  );
}
