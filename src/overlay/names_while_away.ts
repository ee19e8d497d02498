/**
 * The changes of names while Riak is away, in modes that write Riak only: what a mkdir,
 * unlink, rmdir or rename must leave in Riak is journaled (durable before it answers) and
 * done once Riak is back, where the mount knows enough of Riak's state of the names (the
 * files on their way, what it saw Riak hold); anything else fails with EIO, changing nothing.
 * A directory's rename then holds back, through {@link NamesWhileAway.gated}, what else is
 * made, removed or renamed at or below its names.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { Errno, fail, type RequestContext } from "../fuse/filesystem.ts";
import { currentIdentity, type FileIdentity, sameIdentity } from "../migration/file_identity.ts";
import type { DirectoryTimes } from "./directory_times.ts";
import type { RiakHealth } from "./health.ts";
import {
  goingOver,
  type HeldInRiak,
  identityFromJournal,
  isMirror,
  journaledIdentity,
  type NewEntry,
  type NewUpload,
  type PendingMirror,
  type SeenFile,
} from "./journal.ts";
import { LISTED_NAMES_PER_DIRECTORY } from "./listed_in_riak.ts";
import type { Locator } from "./locator.ts";
import type { Logger } from "./log.ts";
import { type MountMode, stagesWrites } from "./modes.ts";
import { childPath, isAtOrBelow, parentOf } from "./node_table.ts";
import { ignoreMissing } from "./not_found.ts";
import type { RemovedWhileOpen } from "./removed_copies.ts";
import type { RiakKnowledge } from "./riak_knowledge.ts";
import type { SessionTable, WriteSession } from "./session_table.ts";
import type { SourceTree } from "./source_tree.ts";
import type { UnionListing } from "./union_listing.ts";
import type { UploadQueue } from "./upload_queue.ts";
import type { WhileAway } from "./while_away.ts";

/**
 * What {@link NamesWhileAway} reads and changes, all held by reference: the mount's mode and
 * source, the upload queue (its journal), the overlay's tables, and the overlay's own steps
 * that a change of names shares with the ones made while Riak is up (callbacks).
 */
export interface NamesWhileAwayOptions {
  mode: MountMode;
  /** The source directory, in modes that have one (drain). */
  source: string | undefined;
  sourceTree: Pick<SourceTree, "lstat" | "localPath" | "unlink">;
  uploads: Pick<
    UploadQueue,
    "submitTogether" | "pendingFor" | "newestOf" | "pendingPathsBelow" | "hasPending"
  >;
  health: Pick<RiakHealth, "reachable">;
  knowledge: Pick<
    RiakKnowledge,
    | "isKnownInRiak"
    | "fileSeen"
    | "riakDirectory"
    | "listed"
    | "unseenMark"
    | "atOrBelow"
    | "moved"
  >;
  sessions: Pick<
    SessionTable,
    "get" | "startedAtOrBelow" | "atOrBelow" | "holding" | "detach" | "superseded"
  >;
  whileAway: Pick<
    WhileAway,
    | "movedWhileAway"
    | "removalWhileAway"
    | "removalRenamedOver"
    | "versionRenamedOver"
    | "uploadMovedTo"
    | "awayMark"
  >;
  locator: Pick<Locator, "locate" | "exists">;
  listing: Pick<UnionListing, "namesOnTheirWay">;
  removedWhileOpen: Pick<RemovedWhileOpen, "copyOpenContent">;
  directoryTimes: Pick<DirectoryTimes, "forget">;
  logger: Logger;
  /** The mount's clock, in ms. */
  now: () => number;
  /** Drops what the mount remembers of Riak's state of `path` and below (the overlay's). */
  changed(path: string): void;
  /** Forgets all the mount remembered of the removed `path` (the overlay's fan-out). */
  forgetPath(path: string): void;
  /** The entries of `directories` changed through the mount (their mtimes move). */
  entriesChanged(...directories: string[]): void;
  /** What the mount remembers of `from` goes to `to` (the overlay's fan-out). */
  renamed(from: string, to: string): void;
  /** Moves `session` to `to`, with its write handles. */
  moveSession(session: WriteSession, to: string): void;
  /** Renames the source's file or directory, in modes with a source. */
  renameLocally(from: string, to: string): Promise<void>;
  /** Open local files move along with a rename. */
  moveOpenFiles(from: string, to: string): Promise<void>;
  /** Refuses a rename of `from` over `to` that cannot be (a directory over a file, say). */
  refuseRenameOver(from: string, to: string): Promise<void>;
  /** unlink of `path` the usual way (EIO where it needs Riak). */
  unlinkNow(path: string, ctx: RequestContext): Promise<void>;
  /** Stages the bytes of `session` not staged yet, for its handles to read on. */
  keepBytesOf(session: WriteSession): Promise<void>;
  /** Stages the bytes of `session` now. */
  stageNow(session: WriteSession): Promise<void>;
  /** The upload of what `session` holds now to `path`, ready to journal. */
  uploadOf(
    session: WriteSession,
    path: string,
    supersedes: FileIdentity | undefined,
    replaces: HeldInRiak | undefined,
  ): Promise<NewUpload>;
}

/** The overlay's changes of names while Riak is away (see the module's doc). */
export class NamesWhileAway {
  readonly #o: NamesWhileAwayOptions;
  readonly #mode: MountMode;
  readonly #knowledge: NamesWhileAwayOptions["knowledge"];
  readonly #sessions: NamesWhileAwayOptions["sessions"];
  readonly #logger: Logger;
  readonly #now: () => number;
  /**
   * Directories being renamed while Riak is away, by old name, with the new name and the
   * rename's end: what is made, removed, renamed or opened for writing at or below either
   * name waits for it, then finds its paths again ({@link gated}).
   */
  readonly #directoryRenamesAway = new Map<string, { to: string; ended: Promise<void> }>();
  /** Operations under way that {@link gated} let through, each with its paths. */
  readonly #gatedUnderWay = new Set<{ paths: string[]; ended: Promise<void> }>();

  /** `options`: the mount's; held by reference. */
  constructor(options: NamesWhileAwayOptions) {
    this.#o = options;
    this.#mode = options.mode;
    this.#knowledge = options.knowledge;
    this.#sessions = options.sessions;
    this.#logger = options.logger;
    this.#now = options.now;
  }

  /**
   * mkdir while Riak is away: journaled (durable before it answers) and made in Riak once it
   * is back; meanwhile the journal's entry is the directory
   * ({@link WhileAway.madeWhileAway}). Only where Riak was not seen to hold the name: EIO
   * where it was (what it holds is unknown).
   */
  async mkdirWhileAway(
    path: string,
    attributes: { mode: number; uid: number; gid: number },
  ): Promise<void> {
    if (this.#knowledge.isKnownInRiak(path)) {
      throw fail(Errno.EIO, `${path}: Riak holds this name and is unreachable`);
    }
    const mtimeNs = (BigInt(this.#now()) * 1_000_000n).toString();
    await this.#o.uploads.submitTogether([{
      path,
      mirror: "directory",
      set: { ...attributes, mtimeNs },
      ...this.#knowledge.unseenMark(path),
    }]);
    this.#o.changed(path);
  }

  /**
   * unlink while Riak is away, of a file whose bytes are in the spool (its uploads, an open
   * session): the removal from Riak is journaled, and stands in for the uploads not gone yet
   * (a removal took away whatever an upload left). A file only Riak holds is removed as
   * {@link #removeSeenWhileAway} says; any other goes the usual way (EIO).
   */
  async unlinkWhileAway(path: string, ctx: RequestContext): Promise<void> {
    await this.#sessions.startedAtOrBelow([path]);
    const open = this.#sessions.get(path);
    if (!open && !this.#o.uploads.pendingFor(path)) {
      if (await this.#removeSeenWhileAway(path)) return;
      return await this.#o.unlinkNow(path, ctx);
    }
    await this.#sessions.holding(open ? [open] : [], async () => {
      if (open) await this.#o.keepBytesOf(open); // drain: maybe from the local copy dropped next.
      await this.#dropSupersededLocalCopy(path, open);
      await this.#o.uploads.submitTogether([this.#o.whileAway.removalWhileAway(path, open)]);
      if (open) this.#sessions.detach(open);
    });
    this.#sessions.superseded.delete(path);
    this.#o.forgetPath(path);
    this.#o.entriesChanged(parentOf(path));
  }

  /**
   * unlink while Riak is away of a file only Riak holds whose version this mount saw there
   * (looked up, or uploaded, since it started), with no local copy (drain): its removal is
   * journaled with that version (durable before it answers), the name is gone at once, and
   * Riak follows once back, removing that version only ({@link PendingMirror.removes}: one
   * written elsewhere meanwhile is set aside). False, having done nothing, for any other
   * name (unseen, not a file, the source's copy beside it): Riak's state of it is unknown.
   */
  async #removeSeenWhileAway(path: string): Promise<boolean> {
    const seen = await this.#onlyInRiakAsSeen(path);
    if (seen === undefined) return false;
    // Handles reading it keep what can be kept (see RemovedWhileOpen.copyOpenContent): Riak's
    // copy goes later.
    await this.#o.removedWhileOpen.copyOpenContent(path);
    const removes = { size: seen.size, mtimeNs: seen.mtimeNs };
    await this.#o.uploads.submitTogether([{ path, mirror: "remove", removes }]);
    this.#o.forgetPath(path);
    this.#o.entriesChanged(parentOf(path));
    return true;
  }

  /**
   * While Riak is away, what the mount saw of `path`, a file only Riak holds (moved there while
   * Riak was away, or looked up or uploaded since the mount started) with no local copy
   * (drain); undefined where it knows no such file.
   */
  async #onlyInRiakAsSeen(path: string): Promise<SeenFile | undefined> {
    if (this.#o.health.reachable) return undefined;
    const seen = this.#o.whileAway.movedWhileAway(path) ?? this.#knowledge.fileSeen(path);
    if (seen === undefined) return undefined;
    if (this.#o.source !== undefined && await this.#o.sourceTree.lstat(path)) return undefined;
    return seen;
  }

  /**
   * rmdir while Riak is away of a directory Riak was seen to hold whose whole listing this
   * mount read ({@link RiakKnowledge.listed}): empty, once the names removed through the
   * mount since are left out, and with nothing of the mount's own on its way into it, its
   * removal is journaled (durable before it answers) and Riak's directory goes once Riak is
   * back and the removals below it ran (one that holds entries only Riak has by then stays,
   * with a warning). ENOTEMPTY where the listing still holds names. False, having done
   * nothing, where the mount knows too little (EIO the usual way).
   */
  async rmdirSeenWhileAway(path: string): Promise<boolean> {
    if (this.#o.health.reachable || path === "/" || !this.#knowledge.riakDirectory(path)) {
      return false;
    }
    const listed = this.#knowledge.listed.namesIn(path);
    if (listed === undefined) return false;
    const left = [...listed].filter((name) => {
      const newest = this.#o.uploads.newestOf(childPath(path, name));
      return newest === undefined || !isMirror(newest) || newest.mirror !== "remove";
    });
    if (left.length > 0 || this.#o.listing.namesOnTheirWay(path).size > 0) {
      throw fail(Errno.ENOTEMPTY, `${path}: directory not empty`);
    }
    await this.#o.directoryTimes.forget(path);
    // drain: the source's directory first (it must be empty too); a crash before the line
    // leaves Riak's, which the mount shows again: the rmdir was not answered.
    if (this.#o.source !== undefined) {
      await ignoreMissing(fsp.rmdir(await this.#o.sourceTree.localPath(path, { directory: true })));
    }
    await this.#o.uploads.submitTogether([{ path, mirror: "remove", directory: true }]);
    this.#o.forgetPath(path);
    this.#o.entriesChanged(parentOf(path));
    return true;
  }

  /**
   * rename while Riak is away, of a file whose bytes are in the spool (the editor's save
   * through a temporary file, a file moved into place): the upload under the new name (of
   * the staged file of the newest upload under the old one) and the removal of the old name
   * are journaled in one line, so a crash keeps both or neither; the removal stands in for
   * the old name's uploads not gone yet. An open session moves along. Anything else (a
   * directory, a file only Riak or the source holds, whose state in Riak is unknown) is
   * refused with EIO, changing nothing.
   */
  async renameWhileAway(
    from: string,
    to: string,
    ctx: RequestContext,
    ungate: () => void,
  ): Promise<void> {
    await this.#sessions.startedAtOrBelow([from, to]);
    const moving = this.#sessions.get(from);
    const replaced = this.#sessions.get(to);
    if (!moving && await this.#isDirectoryWhileAway(from)) {
      // Directories' renames wait for one another ahead of the gate, and for what it let
      // through: counted among those, it would wait for itself.
      ungate();
      return await this.#renameDirectoryWhileAway(from, to, ctx);
    }
    if (!moving && !this.#o.uploads.pendingFor(from)) {
      const seen = await this.#onlyInRiakAsSeen(from);
      if (seen) return await this.#moveSeenWhileAway(from, to, seen, ctx);
      throw fail(Errno.EIO, `${from}: not in the spool, and Riak is unreachable`);
    }
    await this.#o.refuseRenameOver(from, to);
    const sessions = [moving, replaced].filter((session) => session !== undefined);
    let letGo = false;
    await this.#sessions.holding(sessions, async () => {
      // Closed while the rename looked: its name holds no session any more (its last commit
      // journaled), and one moved would take no commit under the new name.
      letGo = sessions.some((session) => session.closed);
      if (letGo) return;
      ctx.commit();
      const newest = this.#o.uploads.pendingFor(from);
      if (!moving && !newest) throw fail(Errno.ENOENT, `${from}: no such file`);
      // No upload journaled here carries the file's bytes to the new name: the session's
      // commit does, so they are staged (before drain's local copy goes), or nothing changes.
      if (moving?.unstaged && !newest) await this.#o.stageNow(moving);
      if (replaced && replaced !== moving) await this.#o.keepBytesOf(replaced);
      await this.#dropSupersededLocalCopy(from, moving);
      // The local file renamed over (drain): it goes once Riak holds the new one.
      const replacedLocal = this.#o.source === undefined
        ? undefined
        : await currentIdentity(await this.#o.sourceTree.localPath(to));
      const replacedInRiak = this.#o.whileAway.versionRenamedOver(to, replaced);
      const entries = this.#o.whileAway.removalRenamedOver(to, replaced);
      if (newest) {
        // The bytes go to the new name; what the old one's upload went over stays behind.
        const {
          id: _i,
          path: _p,
          unseen: _u,
          supersedes: _s,
          replaces: _r,
          creates: _c,
          away: _a,
          ours: _o,
          ...bytes
        } = newest;
        entries.push({
          ...bytes,
          path: to,
          ...this.#knowledge.unseenMark(to),
          ...this.#o.whileAway.awayMark(),
          ...(replacedLocal ? { supersedes: journaledIdentity(replacedLocal) } : {}),
          ...goingOver(replacedInRiak),
        });
      }
      // Nothing journaled carries its bytes to the new name: the session's upload, in the
      // same line as the old name's removal (a crash before its close would lose both).
      const carried = moving && !newest
        ? await this.#o.uploadOf(moving, to, replacedLocal, replacedInRiak)
        : undefined;
      if (carried) entries.push(carried);
      entries.push(this.#o.whileAway.removalWhileAway(from, moving));
      await this.#o.uploads.submitTogether(entries, {
        handedOver: carried ? [carried.staged] : [],
      });
      if (replaced && replaced !== moving) this.#sessions.detach(replaced);
      if (moving) {
        this.#o.moveSession(moving, to);
        // Riak's file under the old name is not moved (it goes): the new name's is replaced.
        moving.inRiak = replacedInRiak;
        moving.supersedes = replacedLocal;
        if (!newest) {
          moving.dirty = false;
          moving.committed = true;
        }
      }
      this.#sessions.superseded.delete(from);
      if (replacedLocal) this.#sessions.superseded.set(to, replacedLocal);
      else this.#sessions.superseded.delete(to);
    });
    if (letGo) return await this.renameWhileAway(from, to, ctx, ungate);
    await this.#o.moveOpenFiles(from, to);
    this.#o.renamed(from, to);
  }

  async #isDirectoryWhileAway(path: string): Promise<boolean> {
    const located = await this.#o.locator.locate(path).catch(() => undefined);
    if (located?.where === "local") return located.stats.isDirectory();
    return located?.where === "riak" && located.stat.type === "directory";
  }

  /**
   * rename while Riak is away of directory `from`, where the mount knows all it holds: made
   * while Riak was away (Riak holds nothing of it), or seen in Riak with the whole listing of
   * it and of every directory below it read (and each name known to be a directory, with its
   * listing, or no directory). One journal line (durable before it answers) says what Riak
   * must end up with: what the mount has on its way below `from` (uploads, directories made)
   * goes under the new names, its old names removed as a file's rename does; Riak's own
   * directory is renamed with the store's directory rename ({@link PendingMirror.movesDirectory})
   * once the jobs journaled before it ran. Anything else (a directory the source holds, a file
   * in it open for writing, a listing not read, a name taken at `to`) is refused with EIO and
   * a warning, changing nothing: Riak may hold more of it than the mount knows.
   */
  async #renameDirectoryWhileAway(from: string, to: string, ctx: RequestContext): Promise<void> {
    // One at a time in a tree: the names one of them looks at must not move meanwhile.
    for (
      let other = this.#directoryRenameNear(from);
      other;
      other = this.#directoryRenameNear(from)
    ) {
      await other;
    }
    let ended!: () => void;
    this.#directoryRenamesAway.set(from, {
      to,
      ended: new Promise<void>((resolve) => ended = resolve),
    });
    try {
      // What started at or below either name before the gate closed ends first: journaled
      // after the rename's line, it would land under the old name, making the old directory
      // again, or make the new name again over the moved directory.
      const near = (path: string) => isAtOrBelow(path, from) || isAtOrBelow(path, to);
      await Promise.all(
        [...this.#gatedUnderWay].filter(({ paths }) => paths.some(near)).map(({ ended }) => ended),
      );
      await this.#sessions.startedAtOrBelow([from]);
      await this.#renameDirectoryWhileAwayGated(from, to, ctx);
    } finally {
      this.#directoryRenamesAway.delete(from);
      ended();
    }
  }

  async #renameDirectoryWhileAwayGated(
    from: string,
    to: string,
    ctx: RequestContext,
  ): Promise<void> {
    const refuse = (why: string) => {
      this.#logger.warn("directory not renamed during the outage (EIO): " + why, { from, to });
      return fail(Errno.EIO, `${from}: ${why}, and Riak is unreachable`);
    };
    // drain: the source's directories left behind by the files' moves into Riak go along; a
    // file there has not reached Riak, and nothing journaled would carry it to the new name.
    const skeleton = this.#o.source !== undefined &&
      await this.#o.sourceTree.lstat(from) !== undefined;
    if (skeleton && !await this.#holdsDirectoriesOnly(from)) {
      throw refuse("the source holds files in it");
    }
    if (this.#o.source !== undefined && await this.#o.sourceTree.lstat(to) !== undefined) {
      throw refuse("the source holds the new name");
    }
    if (await this.#o.locator.exists(to).catch(() => true)) {
      throw refuse("the new name is taken, or Riak's state of it is unknown");
    }
    if (this.#sessions.atOrBelow(from).length > 0) {
      throw refuse("a file in it is open for writing");
    }
    const made = this.#o.uploads.newestOf(from);
    const madeHere = made !== undefined && isMirror(made) && made.mirror === "directory";
    // Renamed here while Riak was away: Riak's directory moves on once its first move ran
    // (the queue runs a directory's move after those journaled before it on its names).
    const movedHere = made !== undefined && isMirror(made) && made.movesDirectory !== undefined;
    const inRiak = madeHere ? undefined : this.#knowledge.riakDirectory(from);
    if (!madeHere && (inRiak === undefined || (made !== undefined && !movedHere))) {
      throw refuse("Riak's directory is not known well enough to be renamed");
    }
    const moved = (path: string) => to + path.slice(from.length);
    // Journaled before the directory's move (their old names go first), and after it.
    const before: NewEntry[] = [];
    const after: NewEntry[] = [];
    for (const path of this.#o.uploads.pendingPathsBelow(from)) {
      if (path === from) continue;
      const newest = this.#o.uploads.newestOf(path)!;
      if (!isMirror(newest) && newest.supersedes === undefined) {
        after.push(this.#o.whileAway.uploadMovedTo(newest, moved(path)));
        before.push(this.#o.whileAway.removalWhileAway(path, undefined));
      } else if (isMirror(newest) && newest.mirror === "directory") {
        after.push({
          path: moved(path),
          mirror: "directory",
          ...(newest.set ? { set: newest.set } : {}),
          ...this.#knowledge.unseenMark(moved(path)),
        });
        before.push({
          path,
          mirror: "remove",
          directory: true,
          ...this.#knowledge.unseenMark(path),
        });
      } else if (!isMirror(newest) || newest.mirror !== "remove") {
        throw refuse(`${path}, in it, is on its way to Riak in a way that cannot follow it`);
      }
    }
    if (inRiak) {
      for (const directories = [from], seen = new Set(directories); directories.length > 0;) {
        const directory = directories.pop()!;
        const names = this.#knowledge.listed.namesIn(directory);
        if (names === undefined) throw refuse(`Riak's listing of ${directory} was not read`);
        for (const name of names) {
          const path = childPath(directory, name);
          // Gone, or on its way under the new name (above).
          if (this.#o.uploads.hasPending(path)) continue;
          if (this.#knowledge.listed.namesIn(path) !== undefined && !seen.has(path)) {
            seen.add(path);
            directories.push(path);
          } else if (!this.#knowledge.fileSeen(path) && !this.#knowledge.listed.isFile(path)) {
            throw refuse(`Riak's listing of ${path}, a directory maybe, was not read`);
          }
        }
      }
    }
    const entries: NewEntry[] = [...before];
    if (inRiak) {
      entries.push({
        path: to,
        mirror: "move",
        movesDirectory: {
          from,
          mode: inRiak.mode,
          uid: inRiak.uid,
          gid: inRiak.gid,
          mtimeNs: String(inRiak.mtimeNs),
        },
      });
      // The name its first move made goes, after this move (the mount shows it no more): an
      // empty directory's removal, which finds nothing there once the move ran.
      if (movedHere) entries.push({ path: from, mirror: "remove", directory: true });
    } else {
      // Riak holds nothing of it: made again under the new name, the old one removed.
      const { set } = made as PendingMirror;
      entries.push({
        path: from,
        mirror: "remove",
        directory: true,
        ...this.#knowledge.unseenMark(from),
      });
      entries.push({
        path: to,
        mirror: "directory",
        ...(set ? { set } : {}),
        ...this.#knowledge.unseenMark(to),
      });
    }
    entries.push(...after);
    ctx.commit();
    // A crash before the journal's line leaves the directories here under the new name, Riak's
    // under the old one: not renamed, nothing lost.
    if (skeleton) await this.#o.renameLocally(from, to);
    try {
      await this.#o.uploads.submitTogether(entries);
    } catch (error) {
      if (skeleton) await this.#o.renameLocally(to, from).catch(() => {});
      throw error;
    }
    const known = inRiak ? this.#knowledge.atOrBelow(from) : undefined;
    await this.#o.moveOpenFiles(from, to);
    this.#o.renamed(from, to);
    if (known) this.#knowledge.moved(from, to, known);
    await this.#carryArrivalsBelow(from, to);
  }

  /**
   * What reached `from` while its rename while away journaled goes to the new name `to` too:
   * the kernel does not hold back the making of a file in a directory being renamed, and its
   * session (and upload, journaled after the directory's move) kept the old name, so the
   * upload landed there once the move ran, in a directory made again under the old name, and
   * the file was missing under the new one. Carried as a rename while away carries a file:
   * the upload under the new name (same staged file) and the old name's removal in one line.
   */
  async #carryArrivalsBelow(from: string, to: string): Promise<void> {
    const moved = (path: string) => to + path.slice(from.length);
    await this.#sessions.startedAtOrBelow([from]);
    const sessions = this.#sessions.atOrBelow(from);
    await this.#sessions.holding(sessions, async () => {
      for (const session of sessions) {
        if (!session.closed) this.#o.moveSession(session, moved(session.path));
      }
      const entries: NewEntry[] = [];
      for (const path of this.#o.uploads.pendingPathsBelow(from)) {
        const newest = this.#o.uploads.newestOf(path);
        if (newest === undefined || isMirror(newest) || newest.supersedes !== undefined) continue;
        entries.push(this.#o.whileAway.uploadMovedTo(newest, moved(path)));
        entries.push(this.#o.whileAway.removalWhileAway(path, undefined));
      }
      if (entries.length === 0) return;
      await this.#o.uploads.submitTogether(entries).catch((error) => {
        // Landed meanwhile (Riak back): under the old name, where the move left it.
        this.#logger.warn("a file written during a directory's rename stays under the old name", {
          from,
          to,
          error: (error as Error).message,
        });
      });
    });
  }

  /**
   * Whether the source's directory `path` holds directories only, at every level (at most
   * {@link LISTED_NAMES_PER_DIRECTORY} entries in all: more is not looked through).
   */
  async #holdsDirectoriesOnly(path: string): Promise<boolean> {
    const directories = [await this.#o.sourceTree.localPath(path, { directory: true })];
    let entries = 0;
    while (directories.length > 0) {
      const directory = directories.pop()!;
      for (const entry of await fsp.readdir(directory, { withFileTypes: true })) {
        if (!entry.isDirectory() || ++entries > LISTED_NAMES_PER_DIRECTORY) return false;
        directories.push(join(directory, entry.name));
      }
    }
    return true;
  }

  /**
   * rename while Riak is away of `from`, a file only Riak holds as the mount saw it
   * (`seen`): journaled in one line (durable before it answers) as the move of Riak's file to
   * `to` ({@link PendingMirror.moves}) and the removal of `from`, done once Riak is back; `to`
   * shows the file as seen meanwhile. What `to` held goes as a rename over it does.
   */
  async #moveSeenWhileAway(
    from: string,
    to: string,
    seen: SeenFile,
    ctx: RequestContext,
  ): Promise<void> {
    await this.#o.refuseRenameOver(from, to);
    const replaced = this.#sessions.get(to);
    await this.#sessions.holding(replaced ? [replaced] : [], async () => {
      ctx.commit();
      // Its open handles read on what it held (drain: maybe from the local copy dropped next).
      if (replaced) await this.#o.keepBytesOf(replaced);
      // drain: a local file renamed over goes only where a write through the mount superseded
      // it (else EIO): left, the union would show it again once the move is done.
      await this.#dropSupersededLocalCopy(to, replaced);
      const entries = this.#o.whileAway.removalRenamedOver(to, replaced);
      entries.push({
        path: to,
        mirror: "move",
        moves: { ...seen, from },
        ...this.#knowledge.unseenMark(to),
      });
      entries.push({
        path: from,
        mirror: "remove",
        removes: { size: seen.size, mtimeNs: seen.mtimeNs },
        movedAway: true,
      });
      await this.#o.uploads.submitTogether(entries);
      if (replaced) this.#sessions.detach(replaced);
      this.#sessions.superseded.delete(to);
    });
    await this.#o.moveOpenFiles(from, to);
    this.#o.renamed(from, to);
  }

  /**
   * drain: the local file at `path` whose bytes a write through the mount superseded (its
   * upload would have deleted it) goes before its name is renamed or removed while Riak is
   * away: left, the union would show it again under the old name. Any other local file there
   * (changed outside the mount) is not this mount's to remove: EIO, changing nothing.
   */
  async #dropSupersededLocalCopy(path: string, session: WriteSession | undefined): Promise<void> {
    if (this.#o.source === undefined || !await this.#o.sourceTree.lstat(path)) return;
    const journaled = this.#o.uploads.pendingFor(path)?.supersedes;
    const superseded = this.#sessions.superseded.get(path) ?? session?.supersedes ??
      (journaled && identityFromJournal(journaled));
    const file = await this.#o.sourceTree.localPath(path);
    if (superseded === undefined || !sameIdentity(await currentIdentity(file), superseded)) {
      throw fail(Errno.EIO, `${path}: the source holds another copy, and Riak is unreachable`);
    }
    await this.#o.sourceTree.unlink(path);
  }

  /**
   * Runs `operation` (a making, removal or rename of a name, an open for writing) on the paths
   * `pathsNow` gives, once no directory at or above one of them is being renamed while Riak is
   * away, from or to: the kernel does not hold back an operation in a directory being renamed,
   * and one that found its paths before the rename would journal under the old name after the
   * rename's line (the old directory made again in Riak once back), or make the new name again
   * over the moved directory. Looked up again after waiting: the rename moved them. A rename
   * waits for those under way at or below its names, but for those that called the `ungate`
   * given to them (itself).
   */
  async gated<T>(
    pathsNow: () => string[],
    operation: (paths: string[], ungate: () => void) => Promise<T>,
  ): Promise<T> {
    if (!this.#renamesDirectoriesWhileAway()) return await operation(pathsNow(), () => {});
    let paths = pathsNow();
    for (let renaming = this.#directoryRenameOver(paths); renaming;) {
      this.#logger.debug("waits for the rename of a directory during the outage", {
        paths: paths.join(" "),
      });
      await renaming;
      paths = pathsNow();
      renaming = this.#directoryRenameOver(paths);
    }
    let ungate!: () => void;
    const underWay = { paths, ended: new Promise<void>((resolve) => ungate = resolve) };
    this.#gatedUnderWay.add(underWay);
    const left = () => {
      this.#gatedUnderWay.delete(underWay);
      ungate();
    };
    try {
      return await operation(paths, left);
    } finally {
      left();
    }
  }

  /**
   * Whether a directory may be renamed while Riak is away ({@link #renameDirectoryWhileAway}),
   * the only thing {@link gated} holds operations back for or records them for: only modes
   * that stage writes journal a rename during an outage (the others rename in Riak or fail).
   * Elsewhere the gate neither waits nor records, so it costs the operations nothing. True
   * while Riak answers too: an operation under way as an outage begins must be known to a
   * directory's rename made then.
   */
  #renamesDirectoriesWhileAway(): boolean {
    return stagesWrites(this.#mode);
  }

  #directoryRenameOver(paths: string[]): Promise<void> | undefined {
    for (const [from, { to, ended }] of this.#directoryRenamesAway) {
      if (paths.some((path) => isAtOrBelow(path, from) || isAtOrBelow(path, to))) return ended;
    }
    return undefined;
  }

  #directoryRenameNear(path: string): Promise<void> | undefined {
    for (const [from, { ended }] of this.#directoryRenamesAway) {
      if (isAtOrBelow(path, from) || isAtOrBelow(from, path)) return ended;
    }
    return undefined;
  }
}
