/**
 * Where a path's file is: the mount's write sessions, the jobs on their way to Riak, what it
 * knows of Riak (and saw of it for an outage) and the source, asked in the order the mode
 * says, and the attributes shown for what was found there. Every FUSE request that names a
 * path (LOOKUP, GETATTR, OPEN, CREATE, the changes of names) starts here.
 *
 * @module
 */

import type { Attr } from "../fuse/filesystem.ts";
import { Errno, fail } from "../fuse/filesystem.ts";
import { lstatIfExists, storedAttributes } from "../migration/file_identity.ts";
import type { FileStat } from "../store/store.ts";
import { fileAttr, riakAttr, rootStat, seenFileStat } from "./attributes.ts";
import type { DirectoryTimes } from "./directory_times.ts";
import { isOutageError, type RiakHealth } from "./health.ts";
import type { LocalWriters } from "./local_writers.ts";
import type { Located } from "./located.ts";
import { type MountMode, stagesWrites, usesSource, writesLocal, writesRiak } from "./modes.ts";
import type { NodeTable } from "./node_table.ts";
import { isNotFound } from "./not_found.ts";
import { attrOf } from "./passthrough.ts";
import type { RiakCalls } from "./riak_calls.ts";
import type { RiakKnowledge } from "./riak_knowledge.ts";
import type { SessionTable, WriteSession } from "./session_table.ts";
import type { ShownToKernel } from "./shown_to_kernel.ts";
import type { SourceTree } from "./source_tree.ts";
import type { Spool } from "./spool.ts";
import type { UploadQueue } from "./upload_queue.ts";
import type { WhileAway } from "./while_away.ts";

/**
 * A name that Riak's cached answer and the source both lacked this recently (ms) is taken as
 * absent without asking Riak again (see {@link Locator.locate}): the CREATE right after its
 * LOOKUP.
 */
const ABSENT_BOTH_TRUSTED_MS = 100;

/**
 * What {@link Locator} reads, all held by reference: the mount's mode, source and owners,
 * the queues whose work is on its way to Riak, and the overlay's tables.
 */
export interface LocatorOptions {
  mode: MountMode;
  /** The source directory, in modes that have one. */
  source: string | undefined;
  sourceTree: Pick<SourceTree, "lstat" | "lstatAt">;
  spool: Pick<Spool, "pathOf">;
  uploads: Pick<UploadQueue, "newToRiak" | "pendingFor">;
  health: Pick<RiakHealth, "reachable">;
  riak: Pick<RiakCalls, "stat" | "settled">;
  knowledge: Pick<
    RiakKnowledge,
    | "cached"
    | "uncache"
    | "riakDirectory"
    | "replayedDirectoryStat"
    | "forgetReplayed"
    | "fileSeen"
    | "isKnownInRiak"
    | "rememberInRiak"
    | "rememberFileSeen"
    | "markUnseen"
    | "forgetUnseen"
    | "unseenMark"
  >;
  sessions: Pick<SessionTable, "get" | "has" | "inSession">;
  localWriters: Pick<LocalWriters, "localIsNewest">;
  whileAway: Pick<WhileAway, "madeWhileAway" | "directoryMovedWhileAway" | "movedWhileAway">;
  nodes: Pick<NodeTable, "inoOf">;
  directoryTimes: Pick<DirectoryTimes, "mtimeOf">;
  shown: Pick<ShownToKernel, "attrOf">;
  /** Owner reported for Riak objects riakfs did not write. */
  defaultUid?: number;
  defaultGid?: number;
  /** Milliseconds since the epoch, as the knowledge's cache expiries are measured. */
  now: () => number;
  /** When the mount started, in ns: its root's mtime where Riak keeps none. */
  startedNs: bigint;
  /**
   * Once Riak is back, waits for the move of a directory renamed while it was away whose
   * old or new name is at or above `path` (the overlay's, shared with its listings).
   */
  directoryMoveSettled(path: string): Promise<void>;
}

/** Finds where the overlay's paths live, and the attributes it shows for them. */
export class Locator {
  readonly #o: LocatorOptions;
  readonly #mode: MountMode;
  readonly #knowledge: LocatorOptions["knowledge"];
  readonly #sessions: LocatorOptions["sessions"];
  readonly #nodes: LocatorOptions["nodes"];
  readonly #directoryTimes: LocatorOptions["directoryTimes"];
  readonly #shown: LocatorOptions["shown"];
  readonly #now: () => number;
  readonly #startedNs: bigint;

  /** `options`: the mount's; held by reference. */
  constructor(options: LocatorOptions) {
    this.#o = options;
    this.#mode = options.mode;
    this.#knowledge = options.knowledge;
    this.#sessions = options.sessions;
    this.#nodes = options.nodes;
    this.#directoryTimes = options.directoryTimes;
    this.#shown = options.shown;
    this.#now = options.now;
    this.#startedNs = options.startedNs;
  }

  /**
   * Finds the newest copy of `path`; ENOENT when there is none, EIO when it needs Riak.
   * `withContent`: a small file found in Riak brings its bytes along (into the chunk cache).
   * `pastSession`: where the bytes are, not the write session open on it (one not staged yet).
   */
  async locate(
    path: string,
    withContent = false,
    { pastSession = false }: { pastSession?: boolean } = {},
  ): Promise<Located> {
    if (path === "/" && usesSource(this.#mode)) {
      // Paced as every other look at the source: each create in the root of a mode that
      // reads Riak first looks at it (its group), and a pool round trip cost it ~100 us.
      const stats = await this.#o.sourceTree.lstatAt(this.#o.source!);
      if (stats === undefined) throw fail(Errno.ENOENT, `${this.#o.source}: source is gone`);
      return { where: "local", stats };
    }
    const session = pastSession ? undefined : this.#sessions.get(path);
    if (session) return { where: "open", session };
    const made = stagesWrites(this.#mode) ? this.#o.whileAway.madeWhileAway(path) : undefined;
    if (made) return { where: "riak", stat: made };
    const movedDirectory = stagesWrites(this.#mode)
      ? this.#o.whileAway.directoryMovedWhileAway(path)
      : undefined;
    if (movedDirectory && !this.#o.health.reachable) return { where: "riak", stat: movedDirectory };
    await this.#o.directoryMoveSettled(path);
    const moved = stagesWrites(this.#mode) ? this.#o.whileAway.movedWhileAway(path) : undefined;
    if (moved) {
      // Not in Riak under this name yet: shown as it was, until Riak is back and has it.
      if (!this.#o.health.reachable) {
        return { where: "riak", stat: seenFileStat(path, moved), stale: true };
      }
      await this.#o.riak.settled(path);
    }
    if (this.#mode.reads !== "local" && this.#o.localWriters.localIsNewest(path)) {
      const local = await this.#o.sourceTree.lstat(path);
      if (!local) throw fail(Errno.ENOENT, `${path}: no such file`);
      return { where: "local", stats: local };
    }
    if (writesRiak(this.#mode)) {
      const upload = this.#o.uploads.pendingFor(path);
      if (upload) {
        const stats = await lstatIfExists(this.#o.spool.pathOf(upload.staged));
        if (stats) return { where: "spool", upload, stats };
      }
    }
    if (this.#mode.reads === "local") {
      const local = await this.#o.sourceTree.lstat(path);
      if (!local) throw fail(Errno.ENOENT, `${path}: no such file`);
      return { where: "local", stats: local };
    }
    const cached = this.#knowledge.cached(path);
    const absenceWasCached = cached !== undefined && cached.stat === undefined &&
      cached.expires > this.#now();
    // Where the source keeps a copy of every file (writes go there too, and nothing is deleted
    // after its transfer), a name it lacks is most likely new: Riak is asked for a file, a
    // directory and an index of it at once, not one after the other.
    const likelyAbsent = this.#mode.afterTransfer === "keep" && writesLocal(this.#mode) &&
      !(cached !== undefined && cached.expires > this.#now()) &&
      await this.#o.sourceTree.lstat(path).catch(() => undefined) === undefined;
    let remote: FileStat | undefined;
    try {
      remote = await this.#o.riak.stat(path, { withContent, likelyAbsent });
    } catch (error) {
      if (!isOutageError(error)) throw error;
      // Riak is down: what still exists locally is served from there.
      const local = this.#mode.reads === "riak" ? undefined : await this.#o.sourceTree.lstat(path);
      if (local) return { where: "local", stats: local, unverified: true };
      // The mount's root is there whatever Riak answers: its listing is what fails.
      if (path === "/") return { where: "riak", stat: rootStat(this.#startedNs) };
      // A directory Riak was seen to hold is taken to be there still, its cached stat past
      // its time: new files can be made in it, their uploads waiting in the journal.
      const stale = this.#knowledge.cached(path)?.stat ?? this.#knowledge.riakDirectory(path) ??
        this.#knowledge.replayedDirectoryStat(path);
      if (stale?.type === "directory") return { where: "riak", stat: stale };
      // A file Riak was seen to hold is shown as it was: it can be removed (not opened).
      const seen = this.#knowledge.fileSeen(path);
      if (seen) return { where: "riak", stat: seenFileStat(path, seen), stale: true };
      if (!this.#knowledge.isKnownInRiak(path) && writesRiak(this.#mode)) {
        this.#knowledge.markUnseen(path);
        throw fail(Errno.ENOENT, `${path}: not found locally, Riak unreachable`);
      }
      throw error;
    }
    this.#knowledge.rememberInRiak(path, remote !== undefined);
    this.#knowledge.rememberFileSeen(path, remote);
    // Nothing of it is pending or open here: Riak's answer stands.
    this.#knowledge.forgetUnseen(path);
    this.#knowledge.forgetReplayed(path);
    if (remote) {
      const unattributed = remote.type === "directory" && !remote.managed && remote.mtimeNs === 0n;
      return {
        where: "riak",
        stat: unattributed ? await this.unattributedDirectory(path, remote) : remote,
      };
    }
    if (path === "/") {
      return { where: "riak", stat: rootStat(this.#startedNs) };
    }
    const local = this.#mode.reads === "riak" ? undefined : await this.#o.sourceTree.lstat(path);
    const absentBothJustNow = cached?.localAbsentAt !== undefined &&
      this.#now() - cached.localAbsentAt < ABSENT_BOTH_TRUSTED_MS;
    // likelyAbsent: the source was looked at, and lacked the name, before Riak was asked.
    let askedAfterSource = likelyAbsent;
    // Not where reads never look at the source (riak): nothing can leave it for Riak there.
    if (!local && absenceWasCached && !absentBothJustNow && this.#mode.reads !== "riak") {
      // Gone locally while Riak's absence was remembered: a pre-warm with --delete-local (or
      // another host) may just have moved it into Riak. Ask once more before ENOENT, all at
      // once. Not when the look just before found no local file either: mostly the LOOKUP
      // of a name about to be created, then its CREATE.
      this.#knowledge.uncache(path);
      const fresh = await this.#o.riak.stat(path, { quiet: true, withContent, likelyAbsent: true })
        .catch(() => undefined);
      this.#knowledge.rememberInRiak(path, fresh !== undefined);
      this.#knowledge.rememberFileSeen(path, fresh);
      if (fresh) return { where: "riak", stat: fresh };
      askedAfterSource = true;
    }
    if (!local) {
      // Trusted only where Riak was asked after the source lacked the name: asked before, a
      // file moved from the source into Riak in between (upload, then unlink) is in neither.
      const absence = this.#knowledge.cached(path);
      if (askedAfterSource && absence?.stat === undefined && absence !== undefined) {
        absence.localAbsentAt = this.#now();
      }
      throw fail(Errno.ENOENT, `${path}: no such file`);
    }
    return { where: "local", stats: local };
  }

  /**
   * Whether anything exists at `path`. While Riak is unreachable a mode with a source
   * answers from the local side, so new files can still be created during an outage.
   * `forNewFile`: a file is about to be made there, and an absence Riak answered for is
   * remembered ({@link NewToRiak}), for its removal to know that Riak held nothing.
   */
  async exists(path: string, forNewFile = false): Promise<boolean> {
    // Where the look asks Riak (the local file is not the newest, Riak was not away), an
    // absence is Riak's answer, remembered until the mount changes Riak's path.
    const newToRiak = this.#o.uploads.newToRiak;
    const look =
      forNewFile && this.#mode.reads !== "local" && !this.#o.localWriters.localIsNewest(path) &&
        this.#knowledge.unseenMark(path).unseen === undefined
        ? newToRiak.look()
        : undefined;
    try {
      await this.locate(path);
      return true;
    } catch (error) {
      if (isNotFound(error)) {
        // Whoever asks is about to create it: the absence just cached would hide it.
        this.#knowledge.uncache(path);
        // Not if Riak was away after all, or a job of the path was queued meanwhile.
        if (
          look !== undefined && !this.#o.localWriters.localIsNewest(path) &&
          this.#knowledge.unseenMark(path).unseen === undefined
        ) newToRiak.absent(path, look);
        return false;
      }
      if (isOutageError(error) && usesSource(this.#mode)) {
        return this.#sessions.has(path) || await this.#o.sourceTree.lstat(path) !== undefined;
      }
      throw error;
    }
  }

  /** Fails with EEXIST when anything exists at `path` (see {@link exists}). */
  async refuseExisting(path: string): Promise<void> {
    if (await this.exists(path)) throw fail(Errno.EEXIST, `${path}: already exists`);
  }

  /**
   * The attributes of `path` where `located` found it, with a ctime that never goes back
   * ({@link ShownToKernel.attrOf}).
   */
  async attrOf(path: string, located: Located): Promise<Attr> {
    const attr = await this.attrWhereLocated(path, located);
    return this.#shown.attrOf(path, attr, located.where === "local");
  }

  /**
   * The attributes of `path` where `located` found it, as that place says (a Riak directory
   * with the mtime its entries' changes here gave it); see {@link attrOf} for the ones shown.
   */
  async attrWhereLocated(path: string, located: Located): Promise<Attr> {
    const ino = this.#nodes.inoOf(path);
    switch (located.where) {
      case "local":
        return { ...attrOf(located.stats), ino };
      case "riak": {
        const changedNs = located.stat.type === "directory"
          ? this.#directoryTimes.mtimeOf(path)
          : undefined;
        const stat = changedNs !== undefined && changedNs > located.stat.mtimeNs
          ? { ...located.stat, mtimeNs: changedNs }
          : located.stat;
        return riakAttr(stat, ino, this.#o.defaultUid ?? 0, this.#o.defaultGid ?? 0);
      }
      case "spool": {
        const { upload, stats } = located;
        return fileAttr(
          ino,
          Number(stats.size),
          upload.mode,
          upload.uid,
          upload.gid,
          BigInt(upload.mtimeNs),
          upload.atimeNs === undefined ? undefined : BigInt(upload.atimeNs),
        );
      }
      case "open": {
        const session = located.session;
        const held = await this.#sessions.inSession(
          session,
          async () =>
            session.closed
              ? undefined
              : { stats: await session.handle.stat({ bigint: true }), unstaged: session.unstaged },
        );
        // Let go meanwhile (its last commit is on its way): where the file is now.
        if (!held) return await this.attrOf(path, await this.locate(path));
        const { stats, unstaged } = held;
        return fileAttr(
          ino,
          unstaged?.size ?? Number(stats.size),
          session.mode,
          session.uid,
          session.gid,
          session.mtimeNs ?? stats.mtimeNs,
          session.atimeNs,
        );
      }
    }
  }

  /**
   * Where a reader of `path` finds its bytes: a write session not staged yet has them where
   * they were, read there (and returned as `unstaged`: once it stages them, they move).
   */
  async locateForReading(
    path: string,
    withContent = true,
  ): Promise<{ located: Located; unstaged?: WriteSession }> {
    const located = await this.locate(path, withContent);
    if (located.where !== "open" || !located.session.unstaged) return { located };
    return {
      located: await this.locate(path, withContent, { pastSession: true }),
      unstaged: located.session,
    };
  }

  /**
   * The attributes shown for a directory Riak keeps none for (the root, a riak-fuse folder):
   * its local directory's mode, owner and time where it has one (riak-fuse served it from
   * there), else 0755 with the mount's default owner, dating from the mount's start.
   */
  async unattributedDirectory(path: string, remote: FileStat): Promise<FileStat> {
    const local = usesSource(this.#mode)
      ? await this.#o.sourceTree.lstat(path).catch(() => undefined)
      : undefined;
    if (local?.isDirectory()) return { ...remote, ...storedAttributes(local), managed: true };
    return {
      ...remote,
      uid: this.#o.defaultUid ?? 0,
      gid: this.#o.defaultGid ?? 0,
      mtimeNs: this.#startedNs,
      managed: true,
    };
  }
}
