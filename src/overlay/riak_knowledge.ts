/**
 * What the overlay knows of Riak's state: Riak's answers cached for the entry timeout, and,
 * for an outage, what it was seen to hold (names, files' versions, directories, whole
 * listings), the names answered absent only because it could not be asked, and the
 * directories the journal's uploads were written into. Every table is bounded (the oldest go
 * first), and what the mount changes in Riak is forgotten there.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { FileStat } from "../store/store.ts";
import { setAsNewest } from "../util/recent_map.ts";
import { mirroredKey, rootStat } from "./attributes.ts";
import type { SeenFile } from "./journal.ts";
import { ListedInRiak } from "./listed_in_riak.ts";
import { type MountMode, stagesWrites } from "./modes.ts";
import { childPath, parentOf } from "./node_table.ts";
import type { MirroredVersion } from "./transfer.ts";
import type { UploadQueue } from "./upload_queue.ts";

/** Riak's answer for a path, kept until `expires` (ms on the mount's clock). */
export interface CachedStat {
  stat: FileStat | undefined;
  expires: number;
  /**
   * When a look asked Riak after the source lacked the name, and both lacked it: the create
   * right after that lookup trusts the absence (see `Locator.locate`).
   */
  localAbsentAt?: number;
}

/**
 * What a mount knows of Riak's names at or below a directory, by path: what the directory's
 * rename while Riak is away carries to its new name ({@link RiakKnowledge.moved}).
 */
export interface RenamedTreeKnowledge {
  directories: [string, FileStat][];
  files: [string, SeenFile][];
  names: string[];
  /** Riak's listings held: directory, its names, those of them no directory. */
  listings: [string, string[], string[]][];
}

/** What {@link RiakKnowledge} is built from: the mount's. */
export interface RiakKnowledgeOptions {
  mode: MountMode;
  /** Entries the tables hold at most (the mount's `TableLimits`). */
  limits: { stats: number; paths: number };
  /** Seconds Riak's answers are cached (the kernel's entry timeout); 0 caches none. */
  entryTimeout: number;
  /** The mount's clock, in ms. */
  now: () => number;
  /** When the mount started, in ns: the mtime shown for a directory Riak was never asked for. */
  startedNs: bigint;
  uploads: Pick<UploadQueue, "newToRiak" | "pendingPathsBelow" | "pendingFor" | "findPendingBelow">;
  /** The owner shown for Riak's files that keep none (see `riakAttr`). */
  defaultUid?: number;
  /** The group shown for Riak's files that keep none (see `riakAttr`). */
  defaultGid?: number;
}

/**
 * The overlay's memory of Riak's state, one owner for the tables its lookups, listings,
 * changes of names and landings read and write.
 */
export class RiakKnowledge {
  readonly #o: RiakKnowledgeOptions;
  readonly #limits: { stats: number; paths: number };
  readonly #entryTimeout: number;
  /** Local versions Riak holds, by path (see the overlay's `mirrored`). */
  readonly #mirrored = new Map<string, string>();
  /**
   * Paths Riak was seen to hold, most recent last (bounded). While Riak is unreachable a
   * lookup of one of them fails with EIO (unless {@link #riakFilesSeen} holds it); any other
   * name answers ENOENT, so applications can still create files (they wait in the spool).
   */
  readonly #knownInRiak = new Map<string, true>();
  /**
   * In modes that write Riak only, the last version of each file Riak was seen to hold (looked
   * up, or uploaded by this mount), most recent last (bounded): during an outage a lookup of
   * one answers it (stale: opening it still needs Riak), so that it can be removed, its
   * removal journaled to remove that version only ({@link PendingMirror.removes}).
   */
  readonly #riakFilesSeen = new Map<string, SeenFile>();
  /**
   * Riak's listings of directories, read whole and kept up with the mount's changes (modes
   * that write Riak only): while Riak is away, an empty one may be removed.
   */
  readonly #listedInRiak: ListedInRiak;
  /**
   * Names answered ENOENT during an outage only because Riak could not be asked. What the
   * mount writes under them is journaled `unseen` (see {@link PendingMirror.unseen}): a file
   * Riak holds there is set aside, not replaced. Forgotten once Riak answers for the name
   * again, or once such an upload is done.
   */
  readonly #unseen = new Set<string>();
  /**
   * Riak's stats by path for `entryTimeout` seconds (the staleness the kernel's own entry
   * cache already allows), dropped on every change this mount makes to the path.
   */
  readonly #statCache = new Map<string, CachedStat>();
  /**
   * The last stat Riak gave of each directory seen, most recent last (bounded): during an
   * outage one is taken to be there still, so new files can be made in it. Kept apart from
   * {@link #statCache}, whose entries expire and are dropped at every change of the path
   * (each write of a directory's mtime): a directory the mount wrote into, the one its
   * applications use most, was forgotten a second after each write, and lookups of it
   * answered EIO for the whole outage.
   */
  readonly #riakDirectories = new Map<string, FileStat>();
  /**
   * The directories above the staged uploads the journal held when the mount started: those
   * files were written into them. A mount started (or restarted) during an outage never
   * saw them in Riak; until Riak answers for one, it is taken to be there while some of
   * those files are still in the spool, so they are read from there and new files are made
   * beside them, instead of the name looking absent.
   */
  readonly #replayedDirectories = new Set<string>();

  /**
   * `options`: the mount's, held by reference; the directories above the uploads the journal
   * holds now are taken to be Riak's ({@link replayedDirectoryStat}).
   */
  constructor(options: RiakKnowledgeOptions) {
    this.#o = options;
    this.#limits = options.limits;
    this.#entryTimeout = options.entryTimeout;
    this.#listedInRiak = new ListedInRiak(this.#limits.stats);
    for (const pending of options.uploads.pendingPathsBelow("/")) {
      if (options.uploads.pendingFor(pending) === undefined) continue;
      for (let at = parentOf(pending); at !== "/"; at = parentOf(at)) {
        this.#replayedDirectories.add(at);
      }
    }
  }

  /** Riak's listings of directories the mount read whole (see {@link ListedInRiak}). */
  get listed(): ListedInRiak {
    return this.#listedInRiak;
  }

  /** Entries of each table, by the overlay's `tableSizes` key (for tests: each is bounded). */
  sizes(): Record<string, number> {
    return {
      mirrored: this.#mirrored.size,
      knownInRiak: this.#knownInRiak.size,
      riakFilesSeen: this.#riakFilesSeen.size,
      listedInRiak: this.#listedInRiak.size,
      unseen: this.#unseen.size,
      statCache: this.#statCache.size,
      riakDirectories: this.#riakDirectories.size,
      replayedDirectories: this.#replayedDirectories.size,
    };
  }

  /**
   * Riak's answer for `path` cached, expired or not (the entry itself: a look may note on it
   * when the source lacked the name too).
   */
  cached(path: string): CachedStat | undefined {
    return this.#statCache.get(path);
  }

  /** Drops Riak's answer cached for `path`: the next look asks Riak. */
  uncache(path: string): void {
    this.#statCache.delete(path);
  }

  /**
   * Keeps Riak's answer for `path` (`stat`, undefined where it has no such name), asked at
   * `now`: cached for the entry timeout, a directory's remembered for an outage.
   */
  rememberStat(path: string, stat: FileStat | undefined, now: number): void {
    // Absence is cached too: in migrate mode every lookup, getattr and open of a file
    // that is only local would otherwise cost a Riak round trip. Writes through this
    // mount drop the entry (changed); others' writes show within the entry timeout,
    // like a found file's new version does.
    if (this.#entryTimeout > 0) this.#cacheStat(path, stat, now);
    else this.#rememberDirectory(path, stat);
  }

  /**
   * Local names a Riak listing of `directory` begun at `look` ({@link NewToRiak}) did not
   * hold are not in Riak: `ls -l` of a directory not yet migrated then costs no Riak round
   * trip per entry (for the entry timeout, like every cached stat). An object written before
   * its directory entry shows within that timeout. Not a name the mount changed in Riak
   * since: the listing's shards may have been read long before its end (read as the kernel
   * asks), before an upload of the name landed, whose landing dropped what was known of it.
   */
  rememberAbsent(directory: string, names: string[], look: number): void {
    if (this.#entryTimeout <= 0 || names.length > this.#limits.stats) return;
    const now = this.#o.now();
    const newToRiak = this.#o.uploads.newToRiak;
    for (const name of names) {
      const path = childPath(directory, name);
      if (newToRiak.unchangedSince(path, look)) this.#cacheStat(path, undefined, now);
    }
  }

  /**
   * Caches Riak's answer for `path` until the entry timeout, newest last (a directory's
   * also in {@link #riakDirectories}). Entries all live that long, so the expired ones are
   * the oldest, at the front: they go, and the cache holds what the last entry timeout
   * looked up, not the last ten thousand stats of a mount that ran for months (each change
   * walks the whole cache, see {@link changed}).
   */
  #cacheStat(path: string, stat: FileStat | undefined, now: number): void {
    this.#statCache.delete(path);
    this.#rememberDirectory(path, stat);
    this.#statCache.set(path, { stat, expires: now + this.#entryTimeout * 1000 });
    for (const [oldest, entry] of this.#statCache) {
      if (entry.expires > now && this.#statCache.size <= this.#limits.stats) break;
      this.#statCache.delete(oldest);
    }
  }

  /**
   * For an outage: the stat shown for `path`, one of {@link #replayedDirectories}, while
   * uploads journaled into it are still in the spool (owned by the writer of one of them;
   * Riak's own attributes are shown again once it answers).
   */
  replayedDirectoryStat(path: string): FileStat | undefined {
    if (!this.#replayedDirectories.has(path)) return undefined;
    const uploads = this.#o.uploads;
    const below = uploads.findPendingBelow(
      path,
      (pending) => uploads.pendingFor(pending) !== undefined,
    );
    if (below === undefined) {
      this.#replayedDirectories.delete(path);
      return undefined;
    }
    const { uid, gid } = uploads.pendingFor(below)!;
    return { ...rootStat(this.#o.startedNs), path: Buffer.from(path.slice(1)), uid, gid };
  }

  /** Riak answered for `path`: it is no longer taken to be one of the replayed directories. */
  forgetReplayed(path: string): void {
    this.#replayedDirectories.delete(path);
  }

  /** Keeps Riak's answer for `path` in {@link #riakDirectories} when it is a directory. */
  #rememberDirectory(path: string, stat: FileStat | undefined): void {
    this.#riakDirectories.delete(path);
    if (stat?.type !== "directory") return;
    setAsNewest(this.#riakDirectories, path, stat, this.#limits.stats);
  }

  /** The last stat Riak gave of `path`, a directory (kept for an outage). */
  riakDirectory(path: string): FileStat | undefined {
    return this.#riakDirectories.get(path);
  }

  /** Remembers whether Riak holds `path` (`present`), and keeps its listings up with it. */
  rememberInRiak(path: string, present: boolean): void {
    this.#knownInRiak.delete(path);
    if (!present) {
      this.#listedInRiak.removed(path);
      return;
    }
    this.#listedInRiak.added(path);
    setAsNewest(this.#knownInRiak, path, true, this.#limits.paths);
  }

  /** Whether Riak was seen to hold `path` (see {@link #knownInRiak}). */
  isKnownInRiak(path: string): boolean {
    return this.#knownInRiak.has(path);
  }

  /**
   * Keeps `seen` as the version of `path` Riak holds ({@link #riakFilesSeen}), in modes that
   * write Riak only; anything but a file (or nothing) there forgets it.
   */
  rememberFileSeen(path: string, seen: FileStat | SeenFile | undefined): void {
    this.#riakFilesSeen.delete(path);
    if (!stagesWrites(this.#o.mode) || seen === undefined) return;
    if ("type" in seen) {
      if (seen.type !== "file") return;
      const { size, mtimeNs, mode, uid, gid, atimeNs, managed } = seen;
      seen = {
        size,
        mtimeNs: String(mtimeNs),
        mode,
        // As shown (see riakAttr).
        uid: managed ? uid : this.#o.defaultUid ?? 0,
        gid: managed ? gid : this.#o.defaultGid ?? 0,
        ...(atimeNs === undefined ? {} : { atimeNs: String(atimeNs) }),
      };
    }
    setAsNewest(this.#riakFilesSeen, path, seen, this.#limits.stats);
  }

  /** The last version of the file `path` Riak was seen to hold (see {@link #riakFilesSeen}). */
  fileSeen(path: string): SeenFile | undefined {
    return this.#riakFilesSeen.get(path);
  }

  /**
   * `path` was answered ENOENT during an outage only because Riak could not be asked (see
   * {@link #unseen}); the oldest such name goes first.
   */
  markUnseen(path: string): void {
    this.#unseen.add(path);
    if (this.#unseen.size > this.#limits.paths) {
      this.#unseen.delete(this.#unseen.values().next().value!);
    }
  }

  /** Riak answered for `path`, or its file there was set aside: it is no longer unseen. */
  forgetUnseen(path: string): void {
    this.#unseen.delete(path);
  }

  /** `{ unseen: true }` when `path` or a directory above it is in {@link #unseen}. */
  unseenMark(path: string): { unseen?: true } {
    if (this.#unseen.size === 0) return {};
    for (let at = path;; at = parentOf(at)) {
      if (this.#unseen.has(at)) return { unseen: true };
      if (at === "/") return {};
    }
  }

  /** Remembers that Riak holds `version` of the local file at `path`. */
  rememberMirrored(path: string, version: MirroredVersion): void {
    setAsNewest(this.#mirrored, path, mirroredKey(version), this.#limits.paths);
  }

  /** Whether Riak holds `version` of the local file at `path` ({@link rememberMirrored}). */
  holdsMirrored(path: string, version: { size: bigint; mtimeNs: bigint }): boolean {
    return this.#mirrored.get(path) === mirroredKey(version);
  }

  /**
   * Drops what is remembered of Riak's state of `path` and everything below it: the version
   * of the file there, and Riak's stats (those of the directories too).
   */
  changed(path: string): void {
    // A file's version changed (the files below a directory did not: a rename forgets them).
    this.#riakFilesSeen.delete(path);
    const prefix = `${path}/`;
    for (const cache of [this.#statCache, this.#riakDirectories]) {
      for (const key of cache.keys()) {
        if (key === path || key.startsWith(prefix)) cache.delete(key);
      }
    }
  }

  /**
   * Forgets `path`, removed through the mount (after {@link changed}): a file made there later
   * is another one (and a mount creating and removing fresh names would fill these tables with
   * dead ones).
   */
  forget(path: string): void {
    this.#knownInRiak.delete(path);
    this.#riakFilesSeen.delete(path);
    this.#listedInRiak.removed(path);
    this.#listedInRiak.forget(path);
    this.#mirrored.delete(path);
  }

  /**
   * `from` was renamed to `to` through the mount: both {@link changed}, and what Riak held
   * under the old name it holds under the new one.
   */
  renamed(from: string, to: string): void {
    // What Riak held under the old name it holds under the new one: during an outage a
    // lookup of it must fail (EIO), not answer ENOENT as for a name Riak was never seen to
    // hold, which would let a new file be made over it. (Names below a renamed directory
    // are looked up again.)
    const fromKnown = this.#knownInRiak.has(from);
    const fromSeen = this.#riakFilesSeen.get(from);
    this.rememberInRiak(from, false);
    this.rememberInRiak(to, fromKnown);
    this.#listedInRiak.forget(from);
    this.#listedInRiak.forget(to);
    for (const path of [from, to]) forgetAtOrBelow(this.#riakFilesSeen, path);
    this.changed(from);
    this.changed(to);
    // Riak's file keeps its version under its new name.
    if (fromSeen) this.rememberFileSeen(to, fromSeen);
    // Riak holds the file under its new name once the rename's mirror landed, which says so.
    this.#mirrored.delete(from);
    this.#mirrored.delete(to);
  }

  /** What the mount knows of Riak's names at or below `path` (see {@link moved}). */
  atOrBelow(path: string): RenamedTreeKnowledge {
    const atOrBelow = (at: string) => at === path || at.startsWith(`${path}/`);
    const directories = [...this.#riakDirectories].filter(([at]) => atOrBelow(at));
    const listings: RenamedTreeKnowledge["listings"] = [];
    for (const directory of new Set([path, ...directories.map(([at]) => at)])) {
      const names = this.#listedInRiak.namesIn(directory);
      if (names === undefined) continue;
      const files = [...names].filter((name) =>
        this.#listedInRiak.isFile(childPath(directory, name))
      );
      listings.push([directory, [...names], files]);
    }
    return {
      directories,
      files: [...this.#riakFilesSeen].filter(([at]) => atOrBelow(at)),
      names: [...this.#knownInRiak.keys()].filter(atOrBelow),
      listings,
    };
  }

  /**
   * What the mount knew of Riak's names at or below `from` (`known`) it knows at or below `to`
   * now, a directory renamed while Riak was away: lookups there answer as Riak's own names do
   * (a file as last seen, to be removed or renamed; any other EIO, not absent), and the
   * directory may be renamed on or removed.
   */
  moved(
    from: string,
    to: string,
    known: RenamedTreeKnowledge,
  ): void {
    const moved = (path: string) => to + path.slice(from.length);
    // Taken before the rename forgot them: the directory may be renamed on.
    for (const [directory, names, files] of known.listings) {
      this.#listedInRiak.listed(moved(directory), names, undefined, files);
    }
    for (const [path, stat] of known.directories) {
      this.#rememberDirectory(moved(path), { ...stat, path: Buffer.from(moved(path).slice(1)) });
    }
    for (const path of known.names) {
      // A name made again under the old one is another: Riak's goes with the move first.
      this.#knownInRiak.delete(path);
      this.rememberInRiak(moved(path), true);
    }
    for (const [path, seen] of known.files) this.rememberFileSeen(moved(path), seen);
  }
}

/** Deletes the entries of `table` at `path` and below it. */
function forgetAtOrBelow(table: Map<string, unknown>, path: string): void {
  const prefix = path === "/" ? "/" : `${path}/`;
  for (const key of table.keys()) {
    if (key === path || key.startsWith(prefix)) table.delete(key);
  }
}
