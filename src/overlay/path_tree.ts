/**
 * A set of mount paths that finds those directly in a directory, or at and below one, by
 * looking only at that directory's part of the tree: the upload queue asks it for every
 * listing and fsync of a directory, with tens of thousands of paths pending elsewhere after
 * an outage, where a look at each of them cost milliseconds per request.
 *
 * @module
 */
import { parentOf } from "./node_table.ts";

/**
 * Paths (`/`-separated, starting with `/`), with, for each directory above one of them, the
 * names in it that lead to one, each with how many paths it leads to. Lists come in the
 * order the paths were added, as a Map's keys do.
 *
 * @example
 * ```ts
 * const tree = new PathTree();
 * tree.add("/a/b/c");
 * [...tree.namesIn("/a")]; // [] (b holds none itself)
 * [...tree.atOrBelow("/a")]; // ["/a/b/c"]
 * ```
 */
export class PathTree {
  /** Path -> when it was added. */
  readonly #paths = new Map<string, number>();
  #added = 0;
  /** Directory -> name in it -> paths held at or below that name. */
  readonly #leadingTo = new Map<string, Map<string, number>>();

  /** Paths held. */
  get size(): number {
    return this.#paths.size;
  }

  /** Whether `path` is held. */
  has(path: string): boolean {
    return this.#paths.has(path);
  }

  /** Adds `path`; O(its depth). */
  add(path: string): void {
    if (this.#paths.has(path)) return;
    this.#paths.set(path, this.#added++);
    for (let at = path; at !== "/"; at = parentOf(at)) {
      const directory = parentOf(at);
      const names = this.#leadingTo.get(directory) ?? new Map<string, number>();
      const name = nameIn(directory, at);
      names.set(name, (names.get(name) ?? 0) + 1);
      this.#leadingTo.set(directory, names);
    }
  }

  /** Removes `path`; O(its depth). */
  delete(path: string): void {
    if (!this.#paths.delete(path)) return;
    for (let at = path; at !== "/"; at = parentOf(at)) {
      const directory = parentOf(at);
      const names = this.#leadingTo.get(directory)!;
      const name = nameIn(directory, at);
      const left = names.get(name)! - 1;
      if (left > 0) names.set(name, left);
      else if (names.delete(name) && names.size === 0) this.#leadingTo.delete(directory);
    }
  }

  /**
   * Names directly in `directory` whose paths are held, in the order they were added;
   * O(n log n) in the names leading anywhere from it.
   */
  namesIn(directory: string): string[] {
    directory = withoutTrailingSlash(directory);
    const held: [name: string, added: number][] = [];
    for (const name of this.#leadingTo.get(directory)?.keys() ?? []) {
      const added = this.#paths.get(pathIn(directory, name));
      if (added !== undefined) held.push([name, added]);
    }
    return held.sort((a, b) => a[1] - b[1]).map(([name]) => name);
  }

  /** Paths held at or below `path`, in the order they were added; O(n log n) in them. */
  allAtOrBelow(path: string): string[] {
    return [...this.atOrBelow(path)].sort((a, b) => this.#paths.get(a)! - this.#paths.get(b)!);
  }

  /**
   * Paths held at or below `path`, parents before what they hold; O(what it yields), so a
   * look for one of them stops early.
   */
  *atOrBelow(path: string): Generator<string> {
    path = withoutTrailingSlash(path);
    if (this.#paths.has(path)) yield path;
    const directories = [path];
    while (directories.length > 0) {
      const directory = directories.pop()!;
      for (const name of this.#leadingTo.get(directory)?.keys() ?? []) {
        const below = pathIn(directory, name);
        if (this.#paths.has(below)) yield below;
        if (this.#leadingTo.has(below)) directories.push(below);
      }
    }
  }

  /** Whether a path below `path` (not `path` itself) is held; O(1). */
  hasBelow(path: string): boolean {
    return this.#leadingTo.has(withoutTrailingSlash(path));
  }
}

/** `/a/` as `/a`: callers name a directory either way. */
function withoutTrailingSlash(path: string): string {
  return path !== "/" && path.endsWith("/") ? path.slice(0, -1) : path;
}

function nameIn(directory: string, path: string): string {
  return path.slice(directory === "/" ? 1 : directory.length + 1);
}

function pathIn(directory: string, name: string): string {
  return directory === "/" ? `/${name}` : `${directory}/${name}`;
}
