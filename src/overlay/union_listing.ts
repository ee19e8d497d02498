/**
 * A directory's listing as the overlay shows it: the union (or the one side, by the mount's
 * listing knob) of the source's entries and Riak's, with the names on their way to Riak, the
 * names changed through the mount left out of Riak's, and what the listing saw remembered
 * for the outage. The order of the takes before Riak's listing begins is a race fix: a file
 * that moves meanwhile (an upload or copy landing) must be in one of the listings.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Dir } from "node:fs";
import * as fsp from "node:fs/promises";
import { Errno, fail } from "../fuse/filesystem.ts";
import { isMountsOwnEntry, isSetAsideName } from "../migration/mount_entries.ts";
import { restoreSetAside } from "../migration/set_aside.ts";
import { StoreError } from "../store/errors.ts";
import type { DirEntry, Store } from "../store/store.ts";
import { S_IFDIR, S_IFREG } from "./attributes.ts";
import type { CopyOnReadQueue } from "./copy_on_read.ts";
import { direntType, type Listed, listedType } from "./directory_stream.ts";
import { isOutageError } from "./health.ts";
import { LISTED_NAMES_PER_DIRECTORY, type ListedInRiak } from "./listed_in_riak.ts";
import type { LocalWriters } from "./local_writers.ts";
import { copiesMoveFiles, type MountMode, stagesWrites, writesRiak } from "./modes.ts";
import { childPath, parentOf } from "./node_table.ts";
import type { RiakCalls } from "./riak_calls.ts";
import type { RiakKnowledge } from "./riak_knowledge.ts";
import type { SessionTable } from "./session_table.ts";
import type { SourceTree } from "./source_tree.ts";
import type { UploadQueue } from "./upload_queue.ts";
import type { WhileAway } from "./while_away.ts";

/**
 * What {@link UnionListing} reads, all held by reference: the mount's mode and source, the
 * store, the queues whose work is on its way to Riak, and the overlay's tables.
 */
export interface UnionListingOptions {
  mode: MountMode;
  /** The source directory, in modes that have one. */
  source: string | undefined;
  sourceTree: Pick<SourceTree, "localPath">;
  store: Pick<Store, "list">;
  uploads: Pick<
    UploadQueue,
    | "newToRiak"
    | "mirroredNamesIn"
    | "directoriesMovedOutOf"
    | "pendingNamesIn"
    | "directoriesMadeIn"
    | "filesMovedIn"
  >;
  copies: Pick<CopyOnReadQueue, "watchNamesIn" | "namesIn">;
  riak: Pick<RiakCalls, "run">;
  knowledge: Pick<RiakKnowledge, "rememberAbsent" | "listed">;
  sessions: Pick<SessionTable, "values">;
  localWriters: Pick<LocalWriters, "localIsNewest">;
  whileAway: Pick<WhileAway, "madeWhileAway">;
  /** The bound on the names a listing remembers as absent from Riak. */
  limits: { stats: number };
  /**
   * Once Riak is back, waits for the move of a directory renamed while it was away whose
   * old or new name is at or above `path` (the overlay's, shared with its lookups).
   */
  directoryMoveSettled(path: string): Promise<void>;
  /** Whether the mount saw Riak hold `path`, for a listing while Riak is away. */
  seenInRiak(path: string): boolean;
}

/**
 * The overlay's directory listings (READDIR and READDIRPLUS read them through
 * {@link DirectoryStream}; rmdir and a rename over a directory ask {@link hasEntries}).
 */
export class UnionListing {
  readonly #o: UnionListingOptions;
  readonly #mode: MountMode;
  readonly #knowledge: UnionListingOptions["knowledge"];
  readonly #limits: { stats: number };
  readonly #sessions: UnionListingOptions["sessions"];

  /** `options`: the mount's; held by reference. */
  constructor(options: UnionListingOptions) {
    this.#o = options;
    this.#mode = options.mode;
    this.#knowledge = options.knowledge;
    this.#limits = options.limits;
    this.#sessions = options.sessions;
  }

  /**
   * A directory's entries, `.` and `..` first: the union (or the one side) of the source's
   * and Riak's, by the listing knob, and the files on their way to Riak. They come as they are
   * read, never all at once: of the union, only the source's names are held, to leave them
   * out of Riak's (the source's listing comes first). What cannot begin (no such directory,
   * Riak unreachable for a listing that needs it) throws before the first entry.
   */
  async *entries(path: string): AsyncGenerator<Listed> {
    await this.#o.directoryMoveSettled(path);
    let found = path === "/";
    let local: Dir | undefined;
    if (this.#mode.listings !== "riak" && this.#o.source !== undefined) {
      try {
        local = await fsp.opendir(await this.#o.sourceTree.localPath(path, { directory: true }));
        found = true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR") throw fail(Errno.ENOTDIR, `${path}: not a directory`);
        if (code !== "ENOENT") throw error;
      }
    }
    let riak: AsyncGenerator<DirEntry> | undefined;
    // Names removed (or changed) through the mount whose change is still on its way to Riak,
    // as Riak's listing begins: its shards are read, and their entries passed on, later, maybe
    // once the change landed, when the name no longer looks changed.
    let changedLocally = new Set<string>();
    // When Riak's listing began: what the mount changed in Riak since, it may not show.
    const look = this.#o.uploads.newToRiak.look();
    const listedLook = this.#listedInRiak.look();
    let riakAway = false;
    // Taken before Riak's listing begins: a file that moves from the spool or the source into
    // Riak meanwhile (its upload or copy landing, the copy it left removed) may be in neither
    // listing, Riak's read before it landed and the other after it went.
    const onTheirWay = this.namesOnTheirWay(path);
    // Copies queued from now on, until the source's directory is read, may move a file the
    // same way (see CopyOnReadQueue.watchNamesIn).
    const copiesQueued = copiesMoveFiles(this.#mode)
      ? this.#o.copies.watchNamesIn(path)
      : undefined;
    try {
      let step: IteratorResult<DirEntry> | undefined;
      if (this.#mode.listings !== "local") {
        changedLocally = new Set([
          ...this.#o.uploads.mirroredNamesIn(path),
          ...this.#o.uploads.directoriesMovedOutOf(path),
        ]);
        riak = this.#o.store.list(path);
        try {
          step = await this.#riak(`list ${path}`, () => riak!.next());
          found = true;
        } catch (error) {
          riak = undefined;
          if (!this.#listsWithoutRiak(path, error, found)) throw error;
          riakAway = isOutageError(error);
        }
      }
      if (
        onTheirWay.size > 0 || (stagesWrites(this.#mode) && this.#o.whileAway.madeWhileAway(path))
      ) {
        found = true;
      }
      // A directory only Riak holds, as the mount saw it: its entries are Riak's to say. Absent
      // (ENOENT), `rm -rf` would report it removed and `ls` the directory stat shows missing.
      if (!found && riakAway && this.#o.seenInRiak(path)) {
        throw fail(Errno.EIO, `${path}: Riak holds this directory and is unreachable`);
      }
      if (!found) throw fail(Errno.ENOENT, `${path}: no such directory`);
      yield { name: ".", type: S_IFDIR };
      yield { name: "..", type: S_IFDIR };
      const localNames = new Set<string>();
      for await (const dirent of local ?? []) {
        if (isSetAsideName(dirent.name)) {
          // What a deletion killed halfway left set aside goes back under its name.
          for (const { name, type } of await this.#putBackSetAside(path, dirent.name)) {
            if (localNames.has(name)) continue;
            localNames.add(name);
            onTheirWay.delete(name);
            yield { name, type };
          }
          continue;
        }
        if (isMountsOwnEntry(path.slice(1), dirent.name)) continue;
        if (localNames.has(dirent.name)) continue; // Put back above, and read again.
        localNames.add(dirent.name);
        onTheirWay.delete(dirent.name);
        yield { name: dirent.name, type: direntType(dirent) };
      }
      local = undefined; // Closed by the loop.
      for (const name of copiesQueued?.names ?? []) {
        if (!localNames.has(name)) onTheirWay.set(name, S_IFREG);
      }
      copiesQueued?.end();
      const notInRiak = riak !== undefined && localNames.size <= this.#limits.stats
        ? new Set(localNames)
        : undefined;
      // Riak's own names, for an rmdir while it is away (one too many says: too many to keep).
      const riakNames = riak !== undefined && stagesWrites(this.#mode) ? [] as string[] : undefined;
      // Which of them are no directories: a directory renamed while Riak is away must know.
      const riakFiles: string[] = [];
      try {
        for (; step?.done === false; step = await this.#riak(`list ${path}`, () => riak!.next())) {
          const name = step.value.name.toString();
          notInRiak?.delete(name);
          if (riakNames && riakNames.length <= LISTED_NAMES_PER_DIRECTORY) {
            riakNames.push(name);
            if (step.value.type !== "directory") riakFiles.push(name);
          }
          if (localNames.has(name)) continue;
          // Removed through the mount, its removal from Riak on its way (or landed meanwhile).
          if (
            changedLocally.has(name) || this.#o.localWriters.localIsNewest(childPath(path, name))
          ) continue;
          onTheirWay.delete(name);
          yield { name, type: listedType(step.value.type) };
        }
        if (notInRiak !== undefined) this.#knowledge.rememberAbsent(path, [...notInRiak], look);
        if (riakNames !== undefined) {
          this.#listedInRiak.listed(path, riakNames, listedLook, riakFiles);
        }
      } catch (error) {
        // Listings degrade to local while Riak is unreachable (riak-only listings cannot).
        if (this.#mode.listings === "riak" || !isOutageError(error)) throw error;
      }
      for (const [name, type] of onTheirWay) yield { name, type };
    } finally {
      copiesQueued?.end();
      await local?.close().catch(() => {});
      // Not awaited: a step cut off by its deadline may still be waiting for a hung node.
      riak?.return(undefined).catch(() => {});
    }
  }

  /**
   * Whether a listing goes on without Riak's entries after `error` began Riak's listing:
   * Riak has no such directory, or (with `found` in the source) holds the file that the
   * source's directory replaced, or is unreachable and the listing can be the source's.
   */
  #listsWithoutRiak(path: string, error: unknown, found: boolean): boolean {
    if (error instanceof StoreError && error.code === "ENOENT") return true;
    // A directory the source holds where Riak still has the file (or link) it replaced,
    // whose removal from Riak is queued: the source's listing is the newest, as its
    // lstat is in Locator.locate (the directory's copy into Riak follows that removal).
    if (
      error instanceof StoreError && error.code === "ENOTDIR" && found &&
      this.#mode.reads !== "local" && this.#o.localWriters.localIsNewest(path)
    ) return true;
    if (!isOutageError(error)) return false;
    // Listings degrade to local while Riak is unreachable (riak-only listings cannot), but
    // a directory made while Riak was away holds only what is on its way there.
    return this.#mode.listings !== "riak" ||
      (stagesWrites(this.#mode) && this.#o.whileAway.madeWhileAway(path) !== undefined);
  }

  /**
   * Names in `path` of files staged or being written, of files a copy-on-read that deletes
   * the local copy is moving, and of directories made while Riak was away, that Riak may not
   * list yet, with their types.
   */
  namesOnTheirWay(path: string): Map<string, number> {
    const names = new Map<string, number>();
    if (!writesRiak(this.#mode)) return names;
    for (const name of this.#o.uploads.pendingNamesIn(path)) names.set(name, S_IFREG);
    if (copiesMoveFiles(this.#mode)) {
      for (const name of this.#o.copies.namesIn(path)) names.set(name, S_IFREG);
    }
    if (stagesWrites(this.#mode)) {
      for (const name of this.#o.uploads.directoriesMadeIn(path)) names.set(name, S_IFDIR);
      for (const name of this.#o.uploads.filesMovedIn(path)) names.set(name, S_IFREG);
    }
    for (const session of this.#sessions.values()) {
      if (parentOf(session.path) === path && session.path !== "/") {
        names.set(session.path.slice(path === "/" ? 1 : path.length + 1), S_IFREG);
      }
    }
    return names;
  }

  /** Whether a directory lists anything (rmdir, a rename over it): its first entry is read. */
  async hasEntries(path: string): Promise<boolean> {
    for await (const entry of this.entries(path)) {
      if (entry.name !== "." && entry.name !== "..") return true;
    }
    return false;
  }

  get #listedInRiak(): ListedInRiak {
    return this.#knowledge.listed;
  }

  #riak<T>(operation: string, request: () => Promise<T>): Promise<T> {
    return this.#o.riak.run(operation, request);
  }

  /**
   * Puts back what a local deletion killed halfway left under private name `setAside` in
   * directory `path` (set_aside.ts) where its name is free; the names put back, with their
   * types (a directory or symlink saved at the name is set aside too). One it cannot (a
   * read-only source, the name taken) stays hidden, for `riakfs prewarm` to report.
   */
  async #putBackSetAside(
    path: string,
    setAside: string,
  ): Promise<{ name: string; type: number }[]> {
    try {
      const directory = Buffer.from(await this.#o.sourceTree.localPath(path, { directory: true }));
      const restored = await restoreSetAside(directory, Buffer.from(setAside));
      const within = (name: Buffer) => Buffer.concat([directory, Buffer.from("/"), name]);
      return await Promise.all(restored.putBack.map(async (name) => ({
        name: name.toString(),
        type: direntType(await fsp.lstat(within(name))),
      })));
    } catch {
      return [];
    }
  }
}
