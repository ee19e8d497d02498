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
import { setAsNewest } from "../util/recent_map.ts";
import { hashName, hashNumber, NO_SLOT, SlotIndex } from "./slot_index.ts";

/** Paths given another number than their own at once, at most (the oldest go first). */
const OTHER_NUMBERS_LIMIT = 10_000;
/** Slots of an empty table; the table grows by doubling, and never shrinks below this. */
const FIRST_SLOTS = 1024;
const ROOT_SLOT = 0;
/** {@link NodeTable}'s flags of a slot. */
const IN_USE = 1;
/** Its name was removed or renamed over: only open handles still reach its node. */
const DETACHED = 2;

/**
 * Node ids <-> mount paths (`/`, `/a`, `/a/b`), with the kernel's lookup counts.
 *
 * After `ls -l` of a directory of millions of entries the kernel holds a node of each, so a
 * node costs little: a slot in typed arrays (its id, inode number, lookup count, parent slot,
 * the number of slots below it) and its own name, found through indexes of slots by id, by
 * inode number and by parent and name ({@link SlotIndex}); about 100 bytes where an object
 * with its whole path, in maps by path, id and number, took about 280. A rename changes the
 * renamed slot alone: what is below it follows, as it names its parent, not its path.
 *
 * A directory the kernel forgot stays as a slot without a node while slots below it need
 * it for their paths. Slots are reused, and once three quarters of them are free the table
 * moves what is left together and gives the rest back: a walk over millions of names leaves
 * nothing behind once the kernel forgot them.
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
  /** Slots made so far; those below it are in use or on the free list. */
  #made = 0;
  #inUse = 0;
  /** The first free slot; each free slot's `#parents` entry names the next. */
  #free = NO_SLOT;
  /** The node id in the slot; 0 where the kernel holds no node (a directory above nodes). */
  #ids = new Float64Array(FIRST_SLOTS);
  /** The inode number its node reports while it lives, whatever path it moves to. */
  #inos = new Float64Array(FIRST_SLOTS);
  #lookups = new Float64Array(FIRST_SLOTS);
  /** The slot of its parent directory (NO_SLOT for the root and detached slots). */
  #parents = new Int32Array(FIRST_SLOTS);
  /** Slots whose parent it is: it stays while they need it for their paths. */
  #children = new Int32Array(FIRST_SLOTS);
  #flags = new Uint8Array(FIRST_SLOTS);
  /** Its name in its parent, a string of its own (not a slice holding a whole path). */
  #names: (string | undefined)[] = [];
  /** The path a detached slot had (for messages, and for the paths of slots below it). */
  readonly #detachedPaths = new Map<number, string>();
  readonly #byId = new SlotIndex((slot) => hashNumber(this.#ids[slot]));
  /** Live nodes (detached ones too) by the inode number they report. */
  readonly #byIno = new SlotIndex((slot) => hashNumber(this.#inos[slot]));
  /** Slots with a name (all but the root and detached ones) by parent and name. */
  readonly #byName = new SlotIndex((slot) => hashName(this.#parents[slot], this.#names[slot]!));
  /** Paths whose own number a node moved or detached away holds: the number they get. */
  readonly #otherNumbers = new Map<string, number>();
  #nextId = ROOT_NODE_ID + 1;

  constructor() {
    const root = this.#newSlot(NO_SLOT, "");
    this.#ids[root] = ROOT_NODE_ID;
    this.#inos[root] = inodeOf("/");
    this.#lookups[root] = 1;
    this.#byId.add(root);
    this.#byIno.add(root);
  }

  /**
   * The inode number `path` reports: its node's, else its own ({@link inodeOf}) unless a
   * live node of another file holds that (renamed from `path`, or removed while open),
   * then another one, the same until the holder is forgotten.
   */
  inoOf(path: string): number {
    const slot = this.#walk(path, false);
    return slot !== NO_SLOT && this.#ids[slot] !== 0 ? this.#inos[slot] : this.#numberFor(path);
  }

  /** The inode number node `id` reports; undefined once forgotten. */
  inoOfNode(id: number): number | undefined {
    const slot = this.#slotOf(id);
    return slot === NO_SLOT ? undefined : this.#inos[slot];
  }

  #numberFor(path: string): number {
    const own = inodeOf(path);
    if (!this.#held(own)) {
      this.#otherNumbers.delete(path);
      return own;
    }
    const given = this.#otherNumbers.get(path);
    if (given !== undefined && !this.#held(given)) return given;
    let other = own;
    for (let attempt = 1; this.#held(other); attempt++) {
      other = inodeOf(`${path}\0${attempt}`);
    }
    setAsNewest(this.#otherNumbers, path, other, OTHER_NUMBERS_LIMIT);
    return other;
  }

  /** Whether a live node reports inode number `ino`. */
  #held(ino: number): boolean {
    return this.#byIno.find(hashNumber(ino), (slot) => this.#inos[slot] === ino) !== NO_SLOT;
  }

  /** Nodes currently known (the root included). */
  get size(): number {
    return this.#byId.size;
  }

  /** Slots the table has room for (for tests: it gives them back once mostly free). */
  get capacity(): number {
    return this.#ids.length;
  }

  /** The path of a node; ESTALE when the kernel names a node it was told to forget. */
  pathOf(id: number): string {
    const path = this.pathIfKnown(id);
    if (path === undefined) throw fail(Errno.ESTALE, `node ${id} is no longer known`);
    return path;
  }

  /** The path of a node, or undefined when it is not (or no longer) known. */
  pathIfKnown(id: number): string | undefined {
    const slot = this.#slotOf(id);
    return slot === NO_SLOT ? undefined : this.#pathOfSlot(slot);
  }

  /** The node id of `path`, taking one lookup reference (an entry reply follows). */
  reference(path: string): number {
    const slot = this.#walk(path, true);
    if (this.#ids[slot] === 0) {
      this.#inos[slot] = this.#numberFor(path);
      this.#otherNumbers.delete(path);
      this.#ids[slot] = this.#nextId++;
      this.#byId.add(slot);
      this.#byIno.add(slot);
    }
    this.#lookups[slot]++;
    return this.#ids[slot];
  }

  /** Drops `count` lookup references; at zero the node is freed (the root never is). */
  forget(id: number, count: number): void {
    const slot = this.#slotOf(id);
    if (slot === NO_SLOT || slot === ROOT_SLOT) return;
    this.#lookups[slot] -= count;
    if (this.#lookups[slot] > 0) return;
    this.#byId.delete(slot);
    this.#byIno.delete(slot);
    this.#ids[slot] = 0;
    this.#lookups[slot] = 0;
    this.#release(slot);
    this.#compactIfSparse();
  }

  /**
   * Whether the node's name was removed or renamed over since the kernel learnt it: its
   * path names another file now (or none), so only its open handles can answer for it.
   */
  isDetached(id: number): boolean {
    const slot = this.#slotOf(id);
    return slot !== NO_SLOT && (this.#flags[slot] & DETACHED) !== 0;
  }

  /** Moves the node at `from` and every node below it to `to`; the node at `to` is detached. */
  rename(from: string, to: string): void {
    if (from === to) return;
    // The kernel refuses it (EINVAL) before asking: a directory would become its own parent.
    if (to.startsWith(`${from}/`) || from === "/") {
      throw fail(Errno.EINVAL, `${from} cannot move below itself`);
    }
    const replaced = this.#walk(to, false);
    if (replaced !== NO_SLOT) this.#detach(replaced, to);
    const slot = this.#walk(from, false);
    if (slot === NO_SLOT) return;
    const oldParent = this.#parents[slot];
    const newParent = this.#walk(parentOf(to), true);
    this.#byName.delete(slot);
    this.#parents[slot] = newParent;
    this.#names[slot] = ownCopy(to.slice(to.lastIndexOf("/") + 1));
    this.#byName.add(slot);
    this.#children[newParent]++;
    this.#children[oldParent]--;
    this.#release(oldParent);
    this.#compactIfSparse();
  }

  /**
   * Detaches the node of a removed entry (it lives on until forgotten, reachable only by its
   * id). A directory is removed empty: what was below it was detached before.
   */
  unbind(path: string): void {
    const slot = this.#walk(path, false);
    if (slot === NO_SLOT || slot === ROOT_SLOT || this.#ids[slot] === 0) return;
    this.#detach(slot, path);
    this.#compactIfSparse();
  }

  /**
   * Takes `slot` (at `path`) out of the tree: its node, and any below it, keep the paths they
   * had; another file may take the name.
   */
  #detach(slot: number, path: string): void {
    this.#byName.delete(slot);
    this.#flags[slot] |= DETACHED;
    this.#detachedPaths.set(slot, path);
    const parent = this.#parents[slot];
    this.#parents[slot] = NO_SLOT;
    this.#children[parent]--;
    this.#release(parent);
    this.#release(slot);
  }

  #slotOf(id: number): number {
    return this.#byId.find(hashNumber(id), (slot) => this.#ids[slot] === id);
  }

  /**
   * The slot of `path`, its components read in place; NO_SLOT when one has none, unless
   * `make`: then those are made, without a node.
   */
  #walk(path: string, make: boolean): number {
    let slot = ROOT_SLOT;
    for (let start = 1; start < path.length;) {
      const slash = path.indexOf("/", start);
      const end = slash < 0 ? path.length : slash;
      const parent = slot;
      slot = this.#byName.find(hashName(parent, path, start, end), (child) => {
        const name = this.#names[child]!;
        return this.#parents[child] === parent && name.length === end - start &&
          path.startsWith(name, start);
      });
      if (slot === NO_SLOT) {
        if (!make) return NO_SLOT;
        slot = this.#newSlot(parent, ownCopy(path.slice(start, end)));
        this.#byName.add(slot);
        this.#children[parent]++;
      }
      start = end + 1;
    }
    return slot;
  }

  #pathOfSlot(slot: number): string {
    if (slot === ROOT_SLOT) return "/";
    const names: string[] = [];
    for (let at = slot; at !== ROOT_SLOT; at = this.#parents[at]) {
      if (this.#flags[at] & DETACHED) {
        return names.length === 0
          ? this.#detachedPaths.get(at)!
          : `${this.#detachedPaths.get(at)}/${names.reverse().join("/")}`;
      }
      names.push(this.#names[at]!);
    }
    return `/${names.reverse().join("/")}`;
  }

  #newSlot(parent: number, name: string): number {
    let slot = this.#free;
    if (slot !== NO_SLOT) {
      this.#free = this.#parents[slot];
    } else {
      if (this.#made === this.#ids.length) this.#resize(this.#ids.length * 2);
      slot = this.#made++;
    }
    this.#inUse++;
    this.#ids[slot] = 0;
    this.#inos[slot] = 0;
    this.#lookups[slot] = 0;
    this.#parents[slot] = parent;
    this.#children[slot] = 0;
    this.#flags[slot] = IN_USE;
    this.#names[slot] = name;
    return slot;
  }

  /** Frees `slot` once no node and no slot below it needs it, then its parent likewise. */
  #release(slot: number): void {
    while (
      slot !== ROOT_SLOT && slot !== NO_SLOT && this.#ids[slot] === 0 && this.#children[slot] === 0
    ) {
      const parent = this.#parents[slot];
      if (this.#flags[slot] & DETACHED) this.#detachedPaths.delete(slot);
      else this.#byName.delete(slot);
      this.#flags[slot] = 0;
      this.#names[slot] = undefined;
      this.#parents[slot] = this.#free;
      this.#free = slot;
      this.#inUse--;
      if (parent !== NO_SLOT) this.#children[parent]--;
      slot = parent;
    }
  }

  /**
   * Once three quarters of the slots are free, moves the slots in use to the front (in their
   * order) and gives the rest back: after the kernel forgot the million nodes of an `ls -l`
   * the table holds what is left, not room for a million.
   */
  #compactIfSparse(): void {
    if (this.#inUse * 4 >= this.#ids.length || this.#ids.length <= FIRST_SLOTS) return;
    const moved = new Int32Array(this.#made).fill(NO_SLOT);
    let next = 0;
    for (let slot = 0; slot < this.#made; slot++) {
      if (this.#flags[slot] & IN_USE) moved[slot] = next++;
    }
    const old = {
      ids: this.#ids,
      inos: this.#inos,
      lookups: this.#lookups,
      parents: this.#parents,
      children: this.#children,
      flags: this.#flags,
      names: this.#names,
    };
    let size = FIRST_SLOTS;
    while (size < this.#inUse * 2) size *= 2;
    this.#allocate(size);
    this.#names = [];
    for (let slot = 0; slot < this.#made; slot++) {
      const to = moved[slot];
      if (to === NO_SLOT) continue;
      this.#ids[to] = old.ids[slot];
      this.#inos[to] = old.inos[slot];
      this.#lookups[to] = old.lookups[slot];
      this.#parents[to] = old.parents[slot] === NO_SLOT ? NO_SLOT : moved[old.parents[slot]];
      this.#children[to] = old.children[slot];
      this.#flags[to] = old.flags[slot];
      this.#names[to] = old.names[slot];
    }
    const detached = [...this.#detachedPaths];
    this.#detachedPaths.clear();
    for (const [slot, path] of detached) this.#detachedPaths.set(moved[slot], path);
    this.#made = next;
    this.#free = NO_SLOT;
    const inUse = Array.from({ length: next }, (_, slot) => slot);
    const named = inUse.filter((slot) => slot !== ROOT_SLOT && !(this.#flags[slot] & DETACHED));
    const withNodes = inUse.filter((slot) => this.#ids[slot] !== 0);
    this.#byName.rebuild(named, named.length);
    this.#byId.rebuild(withNodes, withNodes.length);
    this.#byIno.rebuild(withNodes, withNodes.length);
  }

  /** Grows the slots to `size`, keeping what they hold. */
  #resize(size: number): void {
    const old = [this.#ids, this.#inos, this.#lookups, this.#parents, this.#children, this.#flags];
    this.#allocate(size);
    this.#ids.set(old[0]);
    this.#inos.set(old[1]);
    this.#lookups.set(old[2]);
    this.#parents.set(old[3]);
    this.#children.set(old[4]);
    this.#flags.set(old[5]);
  }

  #allocate(size: number): void {
    this.#ids = new Float64Array(size);
    this.#inos = new Float64Array(size);
    this.#lookups = new Float64Array(size);
    this.#parents = new Int32Array(size);
    this.#children = new Int32Array(size);
    this.#flags = new Uint8Array(size);
  }
}

/**
 * A copy of `name` that holds nothing else: V8 makes a slice of 13 characters or more a
 * view of the whole string it was cut from (a path), which would live as long as the name.
 * A JSON round trip builds a string of its own in every runtime (Deno's structuredClone
 * hands the slice back), exact for any string, lone surrogates included.
 */
function ownCopy(name: string): string {
  return name.length < 13 ? name : JSON.parse(JSON.stringify(name));
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

/** Whether `path` is `directory` or below it. */
export function isAtOrBelow(path: string, directory: string): boolean {
  if (path === directory || directory === "/") return true;
  return path.startsWith(`${directory}/`);
}

/** The parent path of a non-root path. */
export function parentOf(path: string): string {
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}
