/**
 * The nodes the overlay offers the FUSE reader threads, which then answer GETATTR of them
 * (and, where the local directory is the whole namespace, LOOKUP of missing names) with
 * lstat(2) without a hop to the event loop. The overlay decides when a node's answer is
 * provably the local file's; this table keeps the offers consistent with the threads'
 * chain of parents and withdraws whole subtrees at once.
 *
 * @module
 */

import type { BigIntStats } from "node:fs";
import { type LocalNodes, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { type MountMode, writesLocal } from "./modes.ts";
import { type NodeTable, parentOf } from "./node_table.ts";

/**
 * The nodes offered to the reader threads, by path and by id, and the threads' node table
 * they were set in.
 */
export class ReaderOffers {
  readonly #nodes: Pick<NodeTable, "inoOf" | "pathIfKnown">;
  readonly #attrTimeout: number;
  readonly #mode: MountMode;
  /** The FUSE reader threads' node table, when they can answer for local nodes. */
  #localNodes?: LocalNodes;
  /**
   * Nodes the reader threads answer GETATTR for (see {@link offer}), by path and
   * by id; `directory`: its children may be offered too.
   */
  readonly #offered = new Map<string, { id: number; directory: boolean }>();
  readonly #offeredPaths = new Map<number, string>();

  /**
   * `nodes`: the overlay's node table (the inode numbers reported, and whether a node still
   * lives); `attrTimeout`: the seconds the threads' attribute replies carry; `mode`: whether
   * the local directory is the whole namespace.
   */
  constructor(
    nodes: Pick<NodeTable, "inoOf" | "pathIfKnown">,
    attrTimeout: number,
    mode: MountMode,
  ) {
    this.#nodes = nodes;
    this.#attrTimeout = attrTimeout;
    this.#mode = mode;
  }

  /** Nodes offered, the root included once attached (the memory held, for `tableSizes`). */
  get size(): number {
    return this.#offered.size;
  }

  /** Whether the reader threads take offers: nothing else offers or withdraws anything. */
  get attached(): boolean {
    return this.#localNodes !== undefined;
  }

  /**
   * Makes the reader threads answer for the root, the local directory `source`, so that
   * the nodes below it can be offered.
   */
  attach(nodes: LocalNodes, source: string): void {
    this.#localNodes = nodes;
    // The root is always the source directory itself (see Locator.locate).
    this.#offered.set("/", { id: ROOT_NODE_ID, directory: true });
    this.#offeredPaths.set(ROOT_NODE_ID, "/");
    nodes.set(
      ROOT_NODE_ID,
      0,
      source,
      this.#attrTimeout,
      undefined,
      false,
      this.#readerAnswers("/"),
    );
  }

  /**
   * Lets the reader threads answer GETATTR of `path` (node `nodeid`, just found local with
   * `stats`) with lstat(2), until `expiresAt` (Date.now's clock) if given; the caller has
   * checked that lstat(2) is what the overlay answers. Its parent must be offered: the
   * threads rebuild paths from the chain of parents. The inode number reported is the
   * overlay's, and the threads answer only while the path holds the inode seen here.
   */
  offer(
    path: string,
    nodeid: number,
    stats: Pick<BigIntStats, "ino" | "isDirectory">,
    expiresAt: number | undefined,
  ): void {
    if (this.#localNodes === undefined || path === "/") return;
    // The look that found `stats` awaited: a rename since may have moved the node.
    if (this.#nodes.pathIfKnown(nodeid) !== path) return;
    const parent = this.#offered.get(parentOf(path));
    if (parent === undefined || !parent.directory) return;
    const offered = this.#offered.get(path);
    if (offered !== undefined && offered.id !== nodeid) this.withdraw(path);
    const directory = stats.isDirectory();
    this.#offered.set(path, { id: nodeid, directory });
    this.#offeredPaths.set(nodeid, path);
    this.#localNodes.set(
      nodeid,
      parent.id,
      path.slice(path.lastIndexOf("/") + 1),
      this.#attrTimeout,
      Number(stats.ino),
      false,
      { ...this.#readerAnswers(path), expiresAt },
    );
  }

  /**
   * The kernel forgot some references to node `nodeid`: once the node table no longer
   * knows it, the threads forget it too.
   */
  forgotten(nodeid: number): void {
    const offered = this.#offeredPaths.get(nodeid);
    // The node is gone: so is the threads' copy.
    if (offered !== undefined && this.#nodes.pathIfKnown(nodeid) === undefined) {
      this.withdraw(offered);
    }
  }

  /** The reader threads stop answering for `path` and every offered node below it. */
  withdraw(path: string): void {
    // Only children of offered directories are offered: nothing offered, nothing below.
    const offered = this.#offered.get(path);
    if (offered === undefined) return;
    if (path !== "/") this.#forgetOffered(path, offered.id);
    if (!offered.directory) return;
    const prefix = path === "/" ? "/" : `${path}/`;
    for (const [below, node] of this.#offered) {
      if (below !== "/" && below.startsWith(prefix)) this.#forgetOffered(below, node.id);
    }
  }

  /**
   * What the reader threads may answer beyond GETATTR for an offered node: never
   * UNLINK or RMDIR (those change Riak too), and LOOKUP of a missing name only where the
   * local directory is the whole namespace (reads only local, new files made locally).
   */
  #readerAnswers(path: string): { reportedIno: number; missingNames: boolean; removals: false } {
    return {
      reportedIno: this.#nodes.inoOf(path),
      missingNames: this.#mode.reads === "local" && writesLocal(this.#mode),
      removals: false,
    };
  }

  #forgetOffered(path: string, nodeid: number): void {
    this.#offered.delete(path);
    this.#offeredPaths.delete(nodeid);
    this.#localNodes?.delete(nodeid);
  }
}
