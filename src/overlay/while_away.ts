/**
 * What the overlay's changes of names while Riak is away (modes that write Riak only) ask of
 * the jobs still on their way to Riak and of what the mount saw Riak hold: whether a name's
 * change is journaled, what a directory made or a file or directory moved while Riak was away
 * shows, which version of Riak's file a removal or rename goes over, and the journal entries
 * that say so. Queries only: they read the upload queue, Riak's reachability and the mount's
 * memory of Riak, and change nothing.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { FileStat } from "../store/store.ts";
import { rootStat } from "./attributes.ts";
import type { RiakHealth } from "./health.ts";
import {
  heldBefore,
  type HeldInRiak,
  isMirror,
  type NewEntry,
  type PendingUpload,
  type SeenFile,
} from "./journal.ts";
import { type MountMode, stagesWrites } from "./modes.ts";
import type { RiakKnowledge } from "./riak_knowledge.ts";
import type { WriteSession } from "./session_table.ts";
import { DEFAULT_LOCAL_DIRECTORY_MODE } from "./source_tree.ts";
import type { UploadQueue } from "./upload_queue.ts";

/**
 * What {@link WhileAway} reads: the mount's mode, upload queue and Riak health, and what the
 * mount saw of Riak, all held by reference.
 */
export interface WhileAwayOptions {
  mode: MountMode;
  uploads: Pick<UploadQueue, "newestOf" | "pendingFor" | "pendingUploadsOf">;
  health: Pick<RiakHealth, "reachable">;
  /**
   * The last version of each file Riak was seen to hold (looked up, or uploaded by this
   * mount), and the names answered ENOENT during an outage only because Riak could not be
   * asked ({@link PendingMirror.unseen}).
   */
  knowledge: Pick<RiakKnowledge, "fileSeen" | "unseenMark">;
  /** When the mount started, in ns: the mtime of a directory made without one journaled. */
  startedNs: bigint;
}

/**
 * The overlay's queries for changes of names while Riak is away: over the jobs still on
 * their way to Riak (the newest of a name says what the mount shows there) and the versions
 * of Riak's files the mount knows.
 */
export class WhileAway {
  readonly #o: WhileAwayOptions;

  /** `options`: the mount's; held by reference. */
  constructor(options: WhileAwayOptions) {
    this.#o = options;
  }

  /**
   * Whether a change of `path`'s name is journaled for Riak to follow instead of made there
   * now: in modes that write Riak only, while Riak is unreachable, or while the newest job
   * of the name is such a change still on its way (Riak's state of the name is older).
   */
  journalsNames(path: string): boolean {
    if (!stagesWrites(this.#o.mode)) return false;
    if (!this.#o.health.reachable) return true;
    const newest = this.#o.uploads.newestOf(path);
    return newest !== undefined && isMirror(newest) &&
      (newest.mirror === "remove" || newest.mirror === "directory" || newest.mirror === "move");
  }

  /**
   * The stat shown for `path`, a directory made while Riak was away whose making has not
   * reached Riak yet (the newest job of the name), from the attributes journaled with it.
   */
  madeWhileAway(path: string): FileStat | undefined {
    const newest = this.#o.uploads.newestOf(path);
    if (newest === undefined || !isMirror(newest) || newest.mirror !== "directory") {
      return undefined;
    }
    const set = newest.set ?? {};
    return {
      ...rootStat(set.mtimeNs === undefined ? this.#o.startedNs : BigInt(set.mtimeNs)),
      path: Buffer.from(path.slice(1)),
      mode: set.mode ?? DEFAULT_LOCAL_DIRECTORY_MODE,
      uid: set.uid ?? 0,
      gid: set.gid ?? 0,
    };
  }

  /** The file renamed to `path` while Riak was away, while that is the newest job of the name. */
  movedWhileAway(path: string): SeenFile | undefined {
    const newest = this.#o.uploads.newestOf(path);
    if (newest === undefined || !isMirror(newest) || newest.moves === undefined) return undefined;
    const { from: _from, ...moved } = newest.moves;
    return moved;
  }

  /**
   * The stat shown for `path`, a directory renamed there while Riak was away whose move has
   * not reached Riak yet (the newest job of the name), from the attributes journaled with it.
   */
  directoryMovedWhileAway(path: string): FileStat | undefined {
    const newest = this.#o.uploads.newestOf(path);
    if (newest === undefined || !isMirror(newest) || !newest.movesDirectory) return undefined;
    const { mode, uid, gid, mtimeNs } = newest.movesDirectory;
    return {
      ...rootStat(BigInt(mtimeNs)),
      path: Buffer.from(path.slice(1)),
      mode,
      uid,
      gid,
    };
  }

  /**
   * The entries a rename over `to` while Riak is away starts with: where the mount knows the
   * version of Riak's file at `to` ({@link versionRenamedOver}), its removal at that version
   * (another written there meanwhile is set aside, not overwritten unseen).
   */
  removalRenamedOver(to: string, replaced: WriteSession | undefined): NewEntry[] {
    const removes = this.versionRenamedOver(to, replaced);
    if (removes === undefined) return [];
    // What is staged there (`replaced`, uploads pending) goes with the name.
    if (replaced || this.#o.uploads.pendingFor(to)) return [this.removalWhileAway(to, replaced)];
    // Nothing staged holds "nothing": only a session or an upload knows Riak held no file.
    return removes === "nothing" ? [] : [{ path: to, mirror: "remove", removes }];
  }

  /**
   * The version of Riak's file at `to` that a rename over it while Riak is away replaces, as
   * the mount knows it: where a write session (`replaced`) or an upload pending holds its
   * bytes, the version they go over (`"nothing"` where they create the file); else the file
   * only Riak holds as the mount saw it.
   */
  versionRenamedOver(to: string, replaced: WriteSession | undefined): HeldInRiak | undefined {
    if (replaced || this.#o.uploads.pendingFor(to)) return this.versionInRiak(to, replaced);
    const seen = this.movedWhileAway(to) ?? this.#o.knowledge.fileSeen(to);
    return seen && { size: seen.size, mtimeNs: seen.mtimeNs };
  }

  /**
   * The version of Riak's file under `path`, as the mount knows it, while what `session` (open
   * on it) or the uploads pending of `path` hold has not reached Riak: the version they go over
   * ({@link WriteSession.inRiak}, {@link PendingUpload.replaces}), or `"nothing"` where they
   * create the file ({@link PendingUpload.creates}).
   */
  versionInRiak(path: string, session: WriteSession | undefined): HeldInRiak | undefined {
    if (session) return session.inRiak;
    for (const upload of this.#o.uploads.pendingUploadsOf(path)) {
      const held = heldBefore(upload);
      if (held !== undefined) return held;
    }
    return undefined;
  }

  /**
   * The journal entry that removes `path`, a file renamed or removed while Riak was away,
   * from Riak: at the version Riak held as `session` (open on it) or the uploads pending
   * know it ({@link versionInRiak}; where they create the file, only what they stored), and
   * with the versions those uploads would have stored, where what Riak holds there is set
   * aside (a name the mount could not look at, or another version than that one): one of
   * them is the mount's own, or the one its upload that landed last stored.
   */
  removalWhileAway(path: string, session: WriteSession | undefined): NewEntry {
    const unseen = this.#o.knowledge.unseenMark(path);
    const held = this.versionInRiak(path, session);
    const ours = unseen.unseen || held
      ? this.#o.uploads.pendingUploadsOf(path).flatMap(({ size, mtimeNs, ours = [] }) => [
        ...ours,
        { size, mtimeNs },
      ])
      : [];
    // An upload of the name that landed after those pending were journaled (they go over
    // what Riak held before it): while uploads are pending, a look at the name finds them,
    // so Riak's version seen since their commit is the one that upload stored.
    const landed = ours.length > 0 ? this.#o.knowledge.fileSeen(path) : undefined;
    if (landed) ours.push({ size: landed.size, mtimeNs: landed.mtimeNs });
    return {
      path,
      mirror: "remove",
      ...unseen,
      ...(held === "nothing" ? { created: true } : held ? { removes: held } : {}),
      ...(ours.length > 0 ? { ours } : {}),
    };
  }

  /**
   * The upload of `upload`'s staged file under `to`, a name its directory was renamed to while
   * Riak was away (what the old name's upload went over stays behind, as in a file's rename).
   */
  uploadMovedTo(upload: PendingUpload, to: string): NewEntry {
    const {
      id: _id,
      path: _path,
      unseen: _u,
      supersedes: _s,
      replaces: _r,
      away: _a,
      ours: _o,
      ...bytes
    } = upload;
    return { ...bytes, path: to, ...this.#o.knowledge.unseenMark(to), ...this.awayMark() };
  }

  /**
   * {@link PendingUpload.away} for an upload journaled now: while Riak is away, what the mount
   * knows Riak holds may be stale by the time it lands, and another host's file found there
   * is set aside; while it answers, the upload follows the mount's look closely, and goes over
   * a file another host wrote in between, as a removal or rename then does too.
   */
  awayMark(): Pick<PendingUpload, "away"> {
    return this.#o.health.reachable ? {} : { away: true };
  }
}
