/**
 * Node ids by path for the overlay. A file that lives only in Riak has no local inode, so
 * the overlay names nodes by their path in the mount; a rename moves the node (and every
 * node below a renamed directory) to the new path, keeping its id, as the kernel expects.
 *
 * Inode numbers come from the path too ({@link inodeOf}), but a node keeps the one it was
 * given while the kernel knows it, as the kernel keeps the inode number it was first told:
 * a file renamed keeps its number, and a new file under its old name, while the renamed one
 * is known, gets another (`tail -F`, log shippers and `find` tell two files apart by it).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { Errno, fail } from "../fuse/filesystem.ts";

interface PathNode {
  id: number;
  /** Its path; once detached, the path it had (for messages only). */
  path: string;
  /** The inode number it reports while it lives, whatever path it moves to. */
  ino: number;
  lookups: number;
  /** Its name was removed or renamed over: only open handles still reach it. */
  detached?: boolean;
}

/** Paths given another number than their own at once, at most (the oldest go first). */
const OTHER_NUMBERS_LIMIT = 10_000;

/**
 * Node ids <-> mount paths (`/`, `/a`, `/a/b`), with the kernel's lookup counts.
 *
 * @example
 * ```ts
 * const nodes = new NodeTable();
 * const id = nodes.reference("/docs/a.txt"); // one lookup reference
 * nodes.pathOf(id); // "/docs/a.txt"
 * nodes.forget(id, 1);
 * ```
 */
export class NodeTable {
  readonly #byId = new Map<number, PathNode>();
  readonly #byPath = new Map<string, PathNode>();
  /** Live nodes (detached ones too) by the inode number they report. */
  readonly #byIno = new Map<number, PathNode>();
  /**
   * The paths below each path that have a node at or below them, by their parent's path: a
   * rename moves the nodes below it without a look at every node the kernel holds (after
   * `ls -l` of a big directory, a million).
   */
  readonly #childPaths = new Map<string, Set<string>>();
  /** Paths whose own number a node moved or detached away holds: the number they get. */
  readonly #otherNumbers = new Map<string, number>();
  #nextId = ROOT_NODE_ID + 1;

  constructor() {
    const root = { id: ROOT_NODE_ID, path: "/", ino: inodeOf("/"), lookups: 1 };
    this.#byId.set(root.id, root);
    this.#bind(root);
    this.#byIno.set(root.ino, root);
  }

  /**
   * The inode number `path` reports: its node's, else its own ({@link inodeOf}) unless a
   * live node of another file holds that (renamed from `path`, or removed while open),
   * then another one, the same until the holder is forgotten.
   */
  inoOf(path: string): number {
    return this.#byPath.get(path)?.ino ?? this.#numberFor(path);
  }

  /** The inode number node `id` reports; undefined once forgotten. */
  inoOfNode(id: number): number | undefined {
    return this.#byId.get(id)?.ino;
  }

  #numberFor(path: string): number {
    const own = inodeOf(path);
    if (!this.#byIno.has(own)) {
      this.#otherNumbers.delete(path);
      return own;
    }
    const given = this.#otherNumbers.get(path);
    if (given !== undefined && !this.#byIno.has(given)) return given;
    let other = own;
    for (let attempt = 1; this.#byIno.has(other); attempt++) {
      other = inodeOf(`${path}\0${attempt}`);
    }
    this.#otherNumbers.delete(path);
    this.#otherNumbers.set(path, other);
    if (this.#otherNumbers.size > OTHER_NUMBERS_LIMIT) {
      this.#otherNumbers.delete(this.#otherNumbers.keys().next().value!);
    }
    return other;
  }

  /** Nodes currently known (the root included). */
  get size(): number {
    return this.#byId.size;
  }

  /** The path of a node; ESTALE when the kernel names a node it was told to forget. */
  pathOf(id: number): string {
    const path = this.pathIfKnown(id);
    if (path === undefined) throw fail(Errno.ESTALE, `node ${id} is no longer known`);
    return path;
  }

  /** The path of a node, or undefined when it is not (or no longer) known. */
  pathIfKnown(id: number): string | undefined {
    return this.#byId.get(id)?.path;
  }

  /** The node id of `path`, taking one lookup reference (an entry reply follows). */
  reference(path: string): number {
    let node = this.#byPath.get(path);
    if (!node) {
      node = { id: this.#nextId++, path, ino: this.#numberFor(path), lookups: 0 };
      this.#otherNumbers.delete(path);
      this.#byId.set(node.id, node);
      this.#bind(node);
      this.#byIno.set(node.ino, node);
    }
    node.lookups++;
    return node.id;
  }

  /** Drops `count` lookup references; at zero the node is freed (the root never is). */
  forget(id: number, count: number): void {
    const node = this.#byId.get(id);
    if (!node || node.id === ROOT_NODE_ID) return;
    node.lookups -= count;
    if (node.lookups > 0) return;
    this.#byId.delete(id);
    if (this.#byPath.get(node.path) === node) this.#unbindPath(node.path);
    if (this.#byIno.get(node.ino) === node) this.#byIno.delete(node.ino);
  }

  /**
   * Whether the node's name was removed or renamed over since the kernel learnt it: its
   * path names another file now (or none), so only its open handles can answer for it.
   */
  isDetached(id: number): boolean {
    return this.#byId.get(id)?.detached === true;
  }

  /** Moves the node at `from` and every node below it to `to`; the node at `to` is detached. */
  rename(from: string, to: string): void {
    if (from === to) return;
    this.unbind(to);
    const moved: PathNode[] = [];
    for (const pending = [from]; pending.length > 0;) {
      const path = pending.pop()!;
      const node = this.#byPath.get(path);
      if (node) moved.push(node);
      for (const child of this.#childPaths.get(path) ?? []) pending.push(child);
    }
    for (const node of moved) this.#unbindPath(node.path);
    for (const node of moved) {
      node.path = to + node.path.slice(from.length);
      this.#bind(node);
    }
  }

  /**
   * Detaches the node of a removed entry (it lives on until forgotten, reachable only by its
   * id). A directory is removed empty: what was below it was detached before.
   */
  unbind(path: string): void {
    const node = this.#byPath.get(path);
    if (!node || node.id === ROOT_NODE_ID) return;
    node.detached = true;
    this.#unbindPath(path);
  }

  #bind(node: PathNode): void {
    this.#byPath.set(node.path, node);
    // A path is in its parent's set while a node is at it or below it.
    for (let path = node.path; path !== "/";) {
      const parent = parentOf(path);
      const children = this.#childPaths.get(parent);
      if (children) {
        children.add(path);
        return;
      }
      this.#childPaths.set(parent, new Set([path]));
      path = parent;
    }
  }

  #unbindPath(path: string): void {
    this.#byPath.delete(path);
    for (; path !== "/" && !this.#byPath.has(path) && !this.#childPaths.has(path);) {
      const parent = parentOf(path);
      const children = this.#childPaths.get(parent);
      children?.delete(path);
      if (children?.size !== 0) return;
      this.#childPaths.delete(parent);
      path = parent;
    }
  }
}

/** A stable inode number for a path (what `ls -i` and stat show; see {@link NodeTable}). */
export function inodeOf(path: string): number {
  if (path === "/") return 1;
  const digest = createHash("sha256").update(path).digest();
  // 48 bits: far from collisions for any real tree, and exact as a JavaScript number.
  return digest.readUIntBE(0, 6) || 2;
}

/** `parent` + `/` + `name`, refusing names that are not one path component. */
export function childPath(parent: string, name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw fail(Errno.EINVAL, `invalid name ${JSON.stringify(name)}`);
  }
  if (new TextEncoder().encode(name).length > 255) throw fail(Errno.ENAMETOOLONG);
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** The parent path of a non-root path. */
export function parentOf(path: string): string {
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}
