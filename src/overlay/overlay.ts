/**
 * The migrating overlay: one filesystem that serves a legacy local directory and a Riak
 * namespace as one tree, following the mount's {@link MountMode} knobs. Nodes are named by
 * path (a file that lives only in Riak has no local inode). Reads come from the newest
 * place: an open write session, a staged file whose upload is pending, then Riak or the
 * local file as the mode says. Where writes go to the local file too (shadow, migrate), they
 * go to it as in the passthrough (a file only Riak holds is first fetched into the source),
 * and each file opened for writing is journaled to be mirrored into Riak once closed;
 * fsync waits for Riak's acknowledgement. Where writes go to Riak only (drain),
 * they go to a staged file in the spool; close() journals it for upload, durable before
 * close returns.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import {
  type BigIntStats,
  constants as fsConstants,
  createReadStream,
  fstatSync,
  futimesSync,
} from "node:fs";
import * as fsp from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  type Attr,
  type AttrReply,
  type Created,
  type DirectorySink,
  directWritesInvalidateCache,
  type Entry,
  Errno,
  fail,
  type FileSystem,
  FuseError,
  type LocalNodes,
  type Opened,
  type RequestContext,
  rootAccess,
  type SetattrChanges,
  type StatfsOut,
} from "../fuse/filesystem.ts";
import { ReadBlocks } from "../fuse/read_blocks.ts";
import {
  currentIdentity,
  type FileIdentity,
  identityOf,
  sameIdentity,
} from "../migration/file_identity.ts";
import { hashBytes } from "../migration/local_file.ts";
import { isMountsOwnEntry, SOURCE_TEMPORARY_PREFIX } from "../migration/mount_entries.ts";
import { hashStoredFile } from "../migration/stored_file.ts";
import { type ActivityCheck, deleteByIdentity } from "../migration/verified_delete.ts";
import type { KeptCopyRecorder } from "../migration/kept_copies.ts";
import { AlreadyExistsError, StoreError } from "../store/errors.ts";
import type { FileStat, Store } from "../store/store.ts";
import type { FileAttributes } from "../store/usermeta.ts";
import type { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { setAsNewest } from "../util/recent_map.ts";
import { openSourceFile, type SourceFile, sourcePace, writeWhole } from "./source_file.ts";
import { utimesSeconds } from "../util/utimes.ts";
import { attrOf, statfsOf } from "./passthrough.ts";
import {
  definedOnly,
  mirroredKey,
  riakAttr,
  S_IFMT,
  S_IFREG,
  toNs,
  versionOf,
} from "./attributes.ts";
import { attributesOf, type Located, sizeWhereLocated, timesOf } from "./located.ts";
import type { ChunkCache } from "./chunk_cache.ts";
import { ContentPrefetch } from "./content_prefetch.ts";
import { type Handle, HandleTable, type RiakHandle } from "./handle_table.ts";
import { DirectoryStream, direntOf, type Listed } from "./directory_stream.ts";
import { copyBetween, readAll, readAt } from "./file_bytes.ts";
import { absentBelowFile, ignoreMissing, isMissing, isNotFound } from "./not_found.ts";
import { DirectoryTimes } from "./directory_times.ts";
import { type CopyOnReadQueue, ReadCoverage } from "./copy_on_read.ts";
import { isOutageError, type RiakHealth } from "./health.ts";
import {
  goingOver,
  heldBefore,
  type HeldInRiak,
  identityFromJournal,
  isMirror,
  journaledIdentity,
  type JournalEntry,
  type NewEntry,
  type NewUpload,
  type PendingMirror,
  type PendingUpload,
  type RiakVersion,
  type SeenFile,
} from "./journal.ts";
import { ListedInRiak } from "./listed_in_riak.ts";
import { LocalWriters } from "./local_writers.ts";
import { Locator } from "./locator.ts";
import { NamesWhileAway } from "./names_while_away.ts";
import { emptiedOfOrphans, removeOrphanEntrySaid } from "./orphan_entries.ts";
import { ReaderOffers } from "./reader_offers.ts";
import { ShownToKernel } from "./shown_to_kernel.ts";
import { RiakCalls, type RiakStatOptions } from "./riak_calls.ts";
import { RiakKnowledge } from "./riak_knowledge.ts";
import { RemovedWhileOpen } from "./removed_copies.ts";
import { SourceTree } from "./source_tree.ts";
import { UnionListing } from "./union_listing.ts";
import { WhileAway } from "./while_away.ts";
import { isNoRoomError } from "../util/no_room.ts";
import { type Logger, SILENT_LOGGER } from "./log.ts";
import type { MountMetrics } from "./metrics.ts";
import {
  copiesMoveFiles,
  mirrorsWrites,
  type MountMode,
  stagesWrites,
  usesRiak as modeUsesRiak,
  usesSource,
  writesLocal,
  writesRiak,
} from "./modes.ts";
import { childPath, inodeOf, NodeTable, parentOf } from "./node_table.ts";
import {
  holdsNothingWritten,
  SessionTable,
  takeAttributes,
  type WriteSession,
} from "./session_table.ts";
import { ReadPattern, SequentialReader } from "./sequential_reader.ts";
import type { Spool } from "./spool.ts";
import { fallocateDescriptor } from "./system_tools.ts";
import { type MirroredVersion, setAsideUnseen } from "./transfer.ts";
import type { UploadQueue, WithheldUploads } from "./upload_queue.ts";

/** The store operations the overlay uses. */
export type OverlayStore =
  & Pick<
    Store,
    | "tryStat"
    | "writeFile"
    | "mkdir"
    | "symlink"
    | "readRange"
    | "releaseRead"
    | "readlink"
    | "remove"
    | "rename"
    | "setAttributes"
    | "list"
    | "removeOrphanEntry"
  >
  & Partial<Pick<Store, "awaitsLateWrites">>;

/** Default seconds the kernel may cache entries and attributes. */
export const DEFAULT_ENTRY_TIMEOUT_S = 1;

/**
 * Entries the overlay's tables by path hold at most, whatever their entries' timeouts: a walk
 * over millions of names (`ls -l`, `find`, rsync) leaves these behind once the kernel forgot
 * its nodes, not an entry per name.
 */
export interface TableLimits {
  /**
   * Riak's answers cached for the entry timeout (LOOKUP, OPEN and GETATTR of one file share
   * one), and the directories Riak was seen to hold (for an outage).
   */
  stats: number;
  /**
   * What is remembered of files by path: seen in Riak (for an outage), ctimes shown, versions
   * mirrored and served, names answered absent during an outage.
   */
  paths: number;
}

/** The {@link TableLimits} of a mount. */
export const DEFAULT_TABLE_LIMITS: TableLimits = { stats: 10_000, paths: 100_000 };

/** What the overlay is built from. */
export interface OverlayOptions {
  mode: MountMode;
  /** The legacy directory; required unless the mode reads only Riak. */
  source?: string;
  store: OverlayStore;
  spool: Spool;
  uploads: UploadQueue;
  copies: CopyOnReadQueue;
  cache: ChunkCache;
  health: RiakHealth;
  metrics: MountMetrics;
  logger?: Logger;
  /** A request that needs Riak fails with EIO after this many milliseconds. */
  riakTimeoutMs: number;
  /** Seconds the kernel may cache entries and attributes; default 1. */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Owner reported for Riak objects riakfs did not write. */
  defaultUid?: number;
  defaultGid?: number;
  /** Milliseconds since the epoch; the entry timeout of cached stats is measured on it. */
  now?: () => number;
  /** How many entries the tables this mount keeps by path hold at most (tests set fewer). */
  tableLimits?: TableLimits;
  /** `-o direct_io`: every open bypasses the page cache (reads arrive as applications ask). */
  directIo?: boolean;
  /** The pace of the source's calls, shared with the mount's jobs; default {@link sourcePace}. */
  sourcePace?: BlockingWhileFast;
  /** How long changes to a Riak directory's entries gather before its mtime is written. */
  directoryTimeDelayMs?: number;
  /**
   * Tests: runs once a file fetched into the source (for a write) is in place and before that
   * write is journaled, where a crash leaves the source as it then is.
   */
  fetchedIntoSource?: (path: string) => Promise<void>;
  /** Told of each local copy a drain keeps after an upload, and of one deleted after all. */
  keptCopies?: KeptCopyRecorder;
  /** Tests: each step of the deletion of a local copy an upload superseded (verified_delete.ts). */
  supersededDeletionSteps?: ActivityCheck["beforeStep"];
}

/** Set-group-ID: on a directory, its new entries take its group (and new directories the bit). */
const S_ISGID = 0o2000;
const O_ACCMODE = 3;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
/**
 * How much older than Riak's copy the empty file a truncation fetches into the source is
 * dated until the truncation is journaled (see `#fetchNow`): more than utimes(2) through a
 * double can round.
 */
const TRUNCATED_PLACEHOLDER_AGE_NS = 1_000_000_000n;
const O_APPEND = 0o2000;
/** Local opens never follow a symlink in the last component (as in the passthrough). */
const { O_CREAT, O_NOFOLLOW, O_RDONLY, O_RDWR, O_WRONLY } = fsConstants;
const WRITE_ONLY_DIRECT_IO = directWritesInvalidateCache();
/**
 * A file last changed this long before it is opened gets a new ctime from any write through
 * the handle (the kernel's clock for ctime ticks in milliseconds); twice a second where times
 * come in whole seconds (Deno).
 */
const CTIME_SETTLED_NS = 100_000_000n;
const WHOLE_SECOND_CTIME_SETTLED_NS = 2_000_000_000n;

/** Whether `version`'s last change was {@link CTIME_SETTLED_NS} before `nowMs`. */
function settledLongAgo(version: FileIdentity, nowMs: number): boolean {
  const wholeSeconds = version.ctimeNs % 1_000_000_000n === 0n;
  const since = BigInt(nowMs) * 1_000_000n - version.ctimeNs;
  return since > (wholeSeconds ? WHOLE_SECOND_CTIME_SETTLED_NS : CTIME_SETTLED_NS);
}
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
/** Entries of one READDIRPLUS looked up at once (their local lstats run in parallel). */
const READDIRPLUS_BATCH = 64;
/** Entries a READDIR takes from its listing at a time (a reply holds about a hundred). */
const READDIR_BATCH = 128;

/** A change of attributes of Riak's file: its stat before the change, and the one it made. */
interface RiakChange {
  before: FileStat;
  after: FileStat;
}

/**
 * The overlay filesystem for every mode except plain passthrough.
 *
 * @example
 * ```ts
 * const fs = new OverlayFileSystem({ mode: resolveMode("migrate"), source, store, spool,
 *   uploads, copies, cache, health, metrics, riakTimeoutMs: 10_000 });
 * await serveFileSystem(fs, { mountpoint });
 * ```
 */
export class OverlayFileSystem implements FileSystem {
  readonly #o: OverlayOptions;
  readonly #mode: MountMode;
  readonly #logger: Logger;
  readonly #nodes = new NodeTable();
  readonly #handles = new HandleTable();
  /** The write sessions open and being started, and the local files they superseded. */
  readonly #sessions = new SessionTable();
  /** The latest ctimes shown and the Riak versions served, by path. */
  readonly #shown: ShownToKernel;
  /** Requests to Riak and waits for the mount's work on its way there. */
  readonly #riakCalls: RiakCalls;
  /** Local files open for writing through the mount, and their write opens. */
  readonly #localWriters: LocalWriters;
  /** Renames in progress, and the paths whose mirrors were queued meanwhile (see rename). */
  #renames = 0;
  readonly #mirroredDuringRenames = new Set<string>();
  /** See {@link SessionTable.superseded}. */
  get #superseded(): Map<string, FileIdentity> {
    return this.#sessions.superseded;
  }
  /**
   * The Riak and local versions of each file whose local copy a read of Riak's copy queued
   * to be freed, by path (bounded): a local copy that differs is hashed, kept and logged
   * once, not at every read.
   */
  readonly #freeingQueued = new Map<string, string>();
  /** What the mount knows of Riak's state: cached answers, and what it saw for an outage. */
  readonly #knowledge: RiakKnowledge;
  /** See {@link RiakKnowledge.listed}. */
  get #listedInRiak(): ListedInRiak {
    return this.#knowledge.listed;
  }
  /**
   * The source's metadata calls (realpath, lstat, unlink, open and close) block the event
   * loop while they are quick: on the pool each costs a request a thread hop or two, most of
   * what a small file's CREATE or UNLINK takes. A slow source goes to the pool, retried every
   * few seconds; a source on a network filesystem, where one call can hang, never blocks.
   */
  readonly #sourcePace: BlockingWhileFast;
  /** The source directory's files, at {@link #sourcePace}. */
  readonly #sourceTree: SourceTree;
  /** When the mount started, in ns: its root's mtime where Riak keeps none. */
  readonly #startedNs = BigInt(Date.now()) * 1_000_000n;
  /** The spool copies of Riak files removed while open, for their open handles. */
  readonly #removedWhileOpen: RemovedWhileOpen;
  /** What the changes of names while Riak is away ask of the jobs on their way and of Riak. */
  readonly #whileAway: WhileAway;
  /** The directory listings: the source's and Riak's entries, and the names on their way. */
  readonly #unionListing: UnionListing;
  /** Where a path's file is (a write session, a job on its way, Riak, the source). */
  readonly #locator: Locator;
  /** The changes of names while Riak is away, and the gate of directories renamed then. */
  readonly #namesWhileAway: NamesWhileAway;
  /** Whether lookups fetch small files' bytes along (see content_prefetch.ts). */
  readonly #prefetch = new ContentPrefetch();
  /** Mtimes of Riak directories whose entries changed here, until written to Riak. */
  readonly #directoryTimes: DirectoryTimes;
  readonly #entryTimeout: number;
  readonly #attrTimeout: number;
  readonly #now: () => number;
  readonly #limits: TableLimits;
  /**
   * The FUSE reader threads, which serve the reads of every handle opened with a `localFd`
   * (a staged file read before its upload) in every mode, also without a source.
   */
  #readerThreads?: LocalNodes;
  /** Nodes the reader threads answer GETATTR for (see {@link offerToReaders}). */
  readonly #offers: ReaderOffers;
  /**
   * READDIRPLUS, in modes with a source only (see {@link readdirplusEntries}): a listing then
   * brings its entries' lookups along instead of one LOOKUP request per entry. Left out for
   * Riak-only modes, whose lookups fetch small files' bytes along (content_prefetch.ts).
   */
  readonly readdirplus?: FileSystem["readdirplus"];

  constructor(options: OverlayOptions) {
    if (usesSource(options.mode) && options.source === undefined) {
      throw new RangeError("the overlay needs a source directory for this mode");
    }
    this.#o = options;
    this.#mode = options.mode;
    this.#sourcePace = options.sourcePace ?? sourcePace(options.source);
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#sourceTree = new SourceTree({
      source: options.source,
      sourcePace: this.#sourcePace,
      spool: options.spool,
      logger: this.#logger,
      defaultUid: options.defaultUid,
      defaultGid: options.defaultGid,
      riakStat: (path) => this.#riakStat(path),
    });
    this.#entryTimeout = options.entryTimeout ?? DEFAULT_ENTRY_TIMEOUT_S;
    this.#attrTimeout = options.attrTimeout ?? DEFAULT_ENTRY_TIMEOUT_S;
    this.#offers = new ReaderOffers(this.#nodes, this.#attrTimeout, options.mode);
    this.#now = options.now ?? Date.now;
    this.#limits = options.tableLimits ?? DEFAULT_TABLE_LIMITS;
    this.#knowledge = new RiakKnowledge({
      mode: options.mode,
      limits: this.#limits,
      entryTimeout: this.#entryTimeout,
      now: this.#now,
      startedNs: this.#startedNs,
      uploads: options.uploads,
      defaultUid: options.defaultUid,
      defaultGid: options.defaultGid,
    });
    this.#localWriters = new LocalWriters(options.mode, options.uploads);
    this.#shown = new ShownToKernel(this.#limits.paths);
    this.#riakCalls = new RiakCalls({
      store: options.store,
      health: options.health,
      uploads: options.uploads,
      copies: options.copies,
      logger: this.#logger,
      riakTimeoutMs: options.riakTimeoutMs,
      cache: options.cache,
      knowledge: this.#knowledge,
      now: this.#now,
    });
    this.#removedWhileOpen = new RemovedWhileOpen({
      spool: options.spool,
      store: options.store,
      riak: this.#riakCalls,
      handles: this.#handles,
    });
    this.#whileAway = new WhileAway({
      mode: options.mode,
      uploads: options.uploads,
      health: options.health,
      knowledge: this.#knowledge,
      startedNs: this.#startedNs,
    });
    this.#unionListing = new UnionListing({
      mode: options.mode,
      source: options.source,
      sourceTree: this.#sourceTree,
      store: options.store,
      uploads: options.uploads,
      copies: options.copies,
      riak: this.#riakCalls,
      knowledge: this.#knowledge,
      sessions: this.#sessions,
      localWriters: this.#localWriters,
      whileAway: this.#whileAway,
      limits: this.#limits,
      directoryMoveSettled: (path) => this.#directoryMoveSettled(path),
      seenInRiak: (path) => this.#seenInRiak(path),
    });
    this.#directoryTimes = new DirectoryTimes({
      write: (path, mtimeNs) => this.#writeDirectoryTime(path, mtimeNs),
      delayMs: options.directoryTimeDelayMs,
    });
    this.#locator = new Locator({
      mode: options.mode,
      source: options.source,
      sourceTree: this.#sourceTree,
      spool: options.spool,
      uploads: options.uploads,
      health: options.health,
      riak: this.#riakCalls,
      knowledge: this.#knowledge,
      sessions: this.#sessions,
      localWriters: this.#localWriters,
      whileAway: this.#whileAway,
      nodes: this.#nodes,
      directoryTimes: this.#directoryTimes,
      shown: this.#shown,
      defaultUid: options.defaultUid,
      defaultGid: options.defaultGid,
      now: this.#now,
      startedNs: this.#startedNs,
      directoryMoveSettled: (path) => this.#directoryMoveSettled(path),
    });
    this.#namesWhileAway = new NamesWhileAway({
      mode: options.mode,
      source: options.source,
      sourceTree: this.#sourceTree,
      uploads: options.uploads,
      health: options.health,
      knowledge: this.#knowledge,
      sessions: this.#sessions,
      whileAway: this.#whileAway,
      locator: this.#locator,
      listing: this.#unionListing,
      removedWhileOpen: this.#removedWhileOpen,
      directoryTimes: this.#directoryTimes,
      logger: this.#logger,
      now: this.#now,
      changed: (path) => this.#changed(path),
      forgetPath: (path) => this.#forgetPath(path),
      entriesChanged: (...directories) => this.#entriesChanged(...directories),
      renamed: (from, to) => this.#renamed(from, to),
      moveSession: (session, to) => this.#moveSession(session, to),
      renameLocally: (from, to) => this.#renameLocally(from, to),
      moveOpenFiles: (from, to) => this.#moveOpenFiles(from, to),
      refuseRenameOver: (from, to) => this.#refuseRenameOver(from, to),
      unlinkNow: (path, ctx) => this.#unlinkNow(path, ctx),
      keepBytesOf: (session) => this.#keepBytesOf(session),
      stageNow: (session) => this.#stageNow(session),
      uploadOf: (session, path, supersedes, replaces) =>
        this.#uploadOf(session, path, supersedes, replaces),
    });
    options.metrics.onSnapshot(() =>
      options.metrics.value.directoryTimesPending = this.#directoryTimes.pendingCount
    );
    if (usesSource(options.mode)) {
      this.readdirplus = (_ctx, nodeid, fh, offset, sink) =>
        this.#readdirplusEntries(nodeid, fh, offset, sink);
    }
  }

  /**
   * Lets the FUSE reader threads answer GETATTR of nodes whose answer here is the local
   * file's lstat(2) (with the overlay's inode number), and, where the local directory is
   * the whole namespace, LOOKUP of missing names; see {@link offerToReaders}.
   */
  attachLocalNodes(nodes: LocalNodes): void {
    // They must be told to stop serving a handle whose file moves, whatever else they do.
    this.#readerThreads = nodes;
    if (!nodes.supported || this.#o.source === undefined || !this.#usesLocal()) return;
    this.#offers.attach(nodes, this.#o.source);
  }

  /** Writes the directory mtimes not written to Riak yet (before unmounting, say). */
  async settleDirectoryTimes(): Promise<void> {
    await this.#directoryTimes.settledBelow("/");
  }

  /** Nodes the kernel holds references to (for tests and status). */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  /**
   * Entries of the tables this mount keeps by path (for tests): each is bounded, and what a
   * removed name left goes with it, so a mount making and removing names for months keeps
   * only what its live files need.
   */
  get tableSizes(): Record<string, number> {
    return {
      nodes: this.#nodes.size,
      ctimes: this.#shown.ctimeCount,
      freeingQueued: this.#freeingQueued.size,
      served: this.#shown.servedCount,
      ...this.#knowledge.sizes(),
      offered: this.#offers.size,
      superseded: this.#superseded.size,
      localWriters: this.#localWriters.size,
      sessions: this.#sessions.size,
      handles: this.#handles.size,
    };
  }

  // ---- lookups and attributes ----

  /** @inheritdoc */
  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const parentPath = this.#nodes.pathOf(parent);
    if (isMountsOwnEntry(parentPath.slice(1), name)) throw fail(Errno.ENOENT);
    const path = childPath(parentPath, name);
    const located = await this.#locate(path, this.#prefetch.wanted());
    if (located.where === "riak" && located.stat.type === "file") this.#prefetch.lookedUp();
    const attr = await this.#attrOf(path, located);
    const nodeid = this.#nodes.reference(path);
    if (located.where === "local") this.#offerToReaders(path, nodeid, located.stats);
    return this.#entry(nodeid, attr);
  }

  /** @inheritdoc */
  forget(nodeid: number, nlookup: number): void {
    this.#nodes.forget(nodeid, nlookup);
    this.#offers.forgotten(nodeid);
  }

  /** @inheritdoc */
  async getattr(_ctx: RequestContext, nodeid: number, fh: number | undefined): Promise<AttrReply> {
    const path = this.#nodes.pathOf(nodeid);
    const handle = fh === undefined ? undefined : this.#handles.get(fh);
    if (this.#nodes.isDetached(nodeid)) {
      // Its name holds another file now, or none: only what it has open answers for it.
      const open = this.#handles.openOn(nodeid, handle);
      if (open === undefined) throw fail(Errno.ENOENT, `${path}: removed`);
      return { attr: await this.#unlinkedAttr(path, open), attrTimeout: 0 };
    }
    let located: Located;
    try {
      located = handle?.kind === "write"
        ? { where: "open", session: handle.session }
        : await this.#locate(path);
    } catch (error) {
      // Removed while open: the open file's attributes, with no link left, as on a local disk.
      const open = handle ?? this.#handles.openAt(path);
      if (!isNotFound(error) || open === undefined) throw error;
      return { attr: await this.#unlinkedAttr(path, open), attrTimeout: 0 };
    }
    const attr = await this.#attrOf(path, located);
    if (located.where === "local") this.#offerToReaders(path, nodeid, located.stats);
    return { attr, attrTimeout: this.#attrTimeout };
  }

  /** See {@link RemovedWhileOpen.copyOpenContent}. */
  #copyOpenContent(path: string): Promise<void> {
    return this.#removedWhileOpen.copyOpenContent(path);
  }

  /**
   * This mount begins to change the bytes of the file at `path` where its reading handles do
   * not look (a write session staged in the spool, a local writer of a file read from Riak):
   * they look again before their next read (`OpenedOn.stale`, handle_table.ts). The reader
   * threads stop serving such handles' reads from their descriptors, which would show the old
   * bytes.
   */
  #contentMoving(path: string, options: { riakOnly?: boolean } = {}): void {
    // Every write open asks (each create in shadow and migrate): mostly nothing reads Riak.
    if (options.riakOnly && this.#handles.riakHandlesOpen === 0) return;
    for (const [fh, handle] of this.#handles.readingAt(path)) {
      if (options.riakOnly && handle.kind !== "riak") continue;
      if (handle.nodeid !== undefined && this.#nodes.isDetached(handle.nodeid)) continue;
      handle.stale = true;
      this.#readerThreads?.unserveHandle(fh);
    }
  }

  /** Points a stale reading handle at where its file's bytes are now. */
  async #follow(handle: Handle): Promise<void> {
    if (handle.nodeid !== undefined && this.#nodes.isDetached(handle.nodeid)) return;
    // Staged meanwhile, its handle (open already) is marked stale again by #contentMoving.
    const { located } = await this.#locateForReading(handle.path, false);
    // Riak's copy is still the one it reads: nothing moved after all (a writer let go unused).
    if (
      located.where === "riak" && handle.kind === "riak" && handle.follows === undefined &&
      located.stat.sha256 === handle.stat.sha256
    ) return;
    const opened = await this.#openForReading(handle.path, located);
    const previous = handle.follows;
    handle.follows = opened.fh;
    this.#handles.get(opened.fh)!.nodeid = handle.nodeid;
    // One internal handle at a time, however often the file changes while it is open.
    if (previous !== undefined) await this.#release(previous);
  }

  /**
   * The path of a name to be made (or renamed to) in directory `parent`; the mount's own
   * entries (its spool) are hidden from lookups and listings, and cannot be made either.
   */
  #newEntryPath(parent: number, name: string): string {
    const parentPath = this.#nodes.pathOf(parent);
    if (isMountsOwnEntry(parentPath.slice(1), name)) {
      throw fail(Errno.EPERM, `${name}: reserved for riakfs's own files`);
    }
    return childPath(parentPath, name);
  }

  /** The attributes of the file `handle` has open, whose name is gone. */
  async #unlinkedAttr(path: string, handle: Handle): Promise<Attr> {
    // The number the kernel knows it by, not the one a file now under the name gets.
    const ino = (handle.nodeid === undefined ? undefined : this.#nodes.inoOfNode(handle.nodeid)) ??
      inodeOf(path);
    const attr = handle.kind === "local"
      ? { ...attrOf(await handle.file.stat({ bigint: true })), ino }
      : handle.kind === "riak"
      ? riakAttr(handle.stat, ino, this.#o.defaultUid ?? 0, this.#o.defaultGid ?? 0)
      : await this.#attrOf(path, { where: "open", session: handle.session });
    return { ...attr, nlink: 0 };
  }

  /** @inheritdoc */
  async setattr(ctx: RequestContext, nodeid: number, changes: SetattrChanges): Promise<AttrReply> {
    const path = this.#nodes.pathOf(nodeid);
    const handle = changes.fh === undefined ? undefined : this.#handles.get(changes.fh);
    if (this.#nodes.isDetached(nodeid)) return await this.#setDetachedAttr(path, nodeid, changes);
    if (handle?.kind === "write") {
      return await this.#setAttr(ctx, nodeid, path, changes, handle, handle.session);
    }
    // truncate(2) by path where writes are staged: a short write session of its own, through
    // which it goes as through a descriptor (to the size the file has: its times alone; to a
    // smaller one: only the bytes kept are copied), not the file's bytes all staged first.
    // So does a chmod, chown or utimes by path of a file whose bytes wait in the spool while
    // Riak is away (rsync's, cp -a's, tar's, after the close): staged again with them, as
    // through a descriptor, instead of waiting for an upload that cannot go (EIO).
    const waitsInSpool = this.#stagesWrites() && !this.#o.health.reachable &&
      this.#o.uploads.pendingFor(path) !== undefined;
    if ((changes.size !== undefined || waitsInSpool) && this.#stagesWrites()) {
      const session = await this.#session(path, changes.size === 0);
      try {
        return await this.#setAttr(ctx, nodeid, path, changes, handle, session);
      } finally {
        await this.#leave(session);
      }
    }
    return await this.#setAttr(ctx, nodeid, path, changes, handle, this.#sessions.get(path));
  }

  /**
   * {@link setattr} of `path`, not detached, through `handle` (if any), whose write session
   * (if any; always one for a truncate where writes are staged) is `session`.
   */
  async #setAttr(
    ctx: RequestContext,
    nodeid: number,
    path: string,
    changes: SetattrChanges,
    handle: Handle | undefined,
    session: WriteSession | undefined,
  ): Promise<AttrReply> {
    // A truncate to the size a session holding nothing written already has changes no byte
    // (ftruncate to the current size, `truncate -s` of what is there): it moves the mtime
    // alone, as on a local disk, instead of staging the file's bytes to cut none of them.
    const sizeKept = changes.size !== undefined && await this.#keepsSize(session, changes.size);
    if (changes.size !== undefined && !sizeKept) {
      if (session) await this.#truncateInSession(session, changes.size);
      else await this.#truncate(path, changes.size, handle);
    }
    const mtimeNs = toNs(changes.mtime) ?? (sizeKept ? toNs("now") : undefined);
    const atimeNs = toNs(changes.atime);
    const attributes = {
      mode: changes.mode === undefined ? undefined : changes.mode & 0o7777,
      uid: changes.uid,
      gid: changes.gid,
      mtimeNs,
    };
    const changesAttributes = Object.values(attributes).some((value) => value !== undefined) ||
      atimeNs !== undefined;
    let inSession = false;
    /** The source file's ctime once the change went to it (see the end). */
    let changedLocallyNs: bigint | undefined;
    if (session && changesAttributes) {
      // Between commits: one running now reads the attributes it journals.
      await this.#inSession(session, async () => {
        if (session.closed) return; // Let go meanwhile: to the file, below.
        if (holdsNothingWritten(session) || await this.#landedAsIs(session)) {
          changedLocallyNs = await this.#setUnwrittenAttributes(ctx, session, attributes, atimeNs);
          inSession = true;
          return;
        }
        // Clean: every write was committed, as after a close whose RELEASE has not come yet.
        // Nothing later would journal this change then, and a crash would lose it.
        const clean = !session.dirty;
        takeAttributes(session, attributes, atimeNs);
        session.dirty = true;
        inSession = true;
        if (clean && !session.detached) await this.#commitNow(session);
      });
    }
    // Otherwise (no session, or one let go meanwhile) the change goes to the file itself.
    if (!inSession && changesAttributes) {
      const { changedLocally } = await this.#setAttributesWhereFileIs(
        ctx,
        path,
        attributes,
        atimeNs,
      );
      changedLocallyNs = changedLocally?.ctimeNs;
    }
    this.#shown.forgetServed(path);
    this.#changed(path);
    // A change of attributes moves the ctime, also where Riak keeps none. Where it went to
    // the source file, the kernel moved that file's ctime, which lstat(2) (and so the reader
    // threads) show from then on: noting the clock's later reading instead would keep the
    // file from the threads, or make the two answers differ (tar's "file changed as we read
    // it").
    this.#noteCtime(path, changedLocallyNs ?? BigInt(this.#now()) * 1_000_000n);
    return this.getattr(ctx, nodeid, changes.fh);
  }

  /**
   * Changes `path`'s attributes where the file is (the source, Riak), not in a session, with
   * no copy-on-read of it under way: drain's deletes the local copy it moved, which the
   * change could otherwise find and then miss (a directory's leave the copies below it
   * alone). `before`: the source's entry as found before the change.
   */
  async #setAttributesWhereFileIs(
    ctx: RequestContext,
    path: string,
    attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
    atimeNs: bigint | undefined,
  ): Promise<{ before?: BigIntStats; changedLocally?: BigIntStats; changedInRiak?: RiakChange }> {
    // An mtime set explicitly (tar's, after the directory's files) stays the last.
    await this.#directoryTimes.settled(path);
    const before = this.#usesLocal() ? await this.#lstatLocal(path) : undefined;
    const change = () => this.#setFileAttributes(ctx, path, attributes, atimeNs, before);
    return {
      before,
      ...await (before?.isDirectory()
        ? change()
        : this.#holdingCopies(`setattr ${path}`, [path], change, { requeued: true })),
    };
  }

  /**
   * Whether `session` (if any) holds nothing written and already has size `size`: a truncate
   * to it would change no byte. Asked in the session's queue, after what is queued before.
   */
  async #keepsSize(session: WriteSession | undefined, size: number): Promise<boolean> {
    if (!session) return false;
    return await this.#inSession(session, async () => {
      if (session.closed || !holdsNothingWritten(session)) return false;
      const held = session.unstaged?.size ?? Number((await session.handle.stat()).size);
      return held === size;
    });
  }

  /**
   * Whether Riak holds what `session` holds, as its file: committed (an fsync), nothing
   * written since, and that upload landed, its after-step (drain's removal of the local copy)
   * done. A change of attributes then goes to Riak's metadata, as by path after a close,
   * instead of uploading every byte again. Only inside {@link #inSession}.
   */
  async #landedAsIs(session: WriteSession): Promise<boolean> {
    if (!session.committed || session.dirty || session.detached) return false;
    const inRiak = session.inRiak;
    if (this.#o.uploads.hasPending(session.path) || !inRiak || inRiak === "nothing") return false;
    // The version the session's last upload stored (see #uploadOf), not another's since.
    const stats = await session.handle.stat({ bigint: true });
    return inRiak.size === Number(stats.size) &&
      inRiak.mtimeNs === String(session.mtimeNs ?? stats.mtimeNs);
  }

  /**
   * A change of attributes (fchmod, fchown, futimens: `touch`) through a session that holds
   * nothing written (or nothing Riak does not hold as it is: see {@link #landedAsIs}) goes
   * where the file is, as a change by path does (Riak's metadata, the source's file), not
   * into a commit: that would stage the file's bytes and upload them again, all of a large
   * file for a touch. The session takes the attributes over, so a later write's commit
   * keeps them. Resolves to the source file's ctime where the change went to it. Only
   * inside {@link #inSession}.
   */
  async #setUnwrittenAttributes(
    ctx: RequestContext,
    session: WriteSession,
    attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
    atimeNs: bigint | undefined,
  ): Promise<bigint | undefined> {
    const path = session.path;
    const changed = await this.#setAttributesWhereFileIs(ctx, path, attributes, atimeNs)
      .catch((error) => {
        if (!isOutageError(error)) throw error;
        return undefined;
      });
    // Not made (Riak away, or the file gone from where it was): the session's commit carries
    // the change once its bytes are staged, as for a session written, from SOURCE or the
    // spool (uploaded once Riak is back); a file only Riak holds cannot be, and the change
    // fails with EIO here, changing nothing, as by path.
    const made = changed !== undefined &&
      (changed.changedLocally !== undefined || changed.changedInRiak);
    if (!made) await this.#writable(session);
    const before = changed?.before;
    // drain: the local file this session's upload deletes is still that file, its ctime moved.
    if (session.supersedes && sameIdentity(before && identityOf(before), session.supersedes)) {
      session.supersedes = await currentIdentity(await this.#localPath(path));
    }
    takeAttributes(session, attributes, atimeNs);
    // Riak's version is known by its mtime too (a removal during an outage removes that one),
    // where the change went to the version the session knows: one another host wrote since
    // (of the same size, say) stays unknown, set aside by such a removal, not removed.
    const inRiak = changed?.changedInRiak;
    if (
      inRiak && session.inRiak && session.inRiak !== "nothing" && changedAt(inRiak, session.inRiak)
    ) {
      session.inRiak = versionOfStat(inRiak.after);
    }
    if (!made) {
      session.dirty = true;
      await this.#commitNow(session);
    }
    return changed?.changedLocally?.ctimeNs;
  }

  /**
   * setattr of a file whose name is gone (fchmod, ftruncate of a descriptor of a file removed
   * or renamed over): the change goes to what the handles have open, never to the file now
   * under the name. A Riak file's open copy keeps no attributes: they are left as they were.
   */
  async #setDetachedAttr(
    path: string,
    nodeid: number,
    changes: SetattrChanges,
  ): Promise<AttrReply> {
    const given = changes.fh === undefined ? undefined : this.#handles.get(changes.fh);
    const open = this.#handles.openOn(nodeid, given);
    if (open === undefined) throw fail(Errno.ENOENT, `${path}: removed`);
    if (open.kind === "write") {
      const session = open.session;
      await this.#inSession(session, async () => {
        if (changes.size !== undefined) await this.#truncateSession(session, changes.size);
        if (changes.mode !== undefined) session.mode = changes.mode & 0o7777;
        if (changes.uid !== undefined) session.uid = changes.uid;
        if (changes.gid !== undefined) session.gid = changes.gid;
        const mtimeNs = toNs(changes.mtime);
        if (mtimeNs !== undefined) session.mtimeNs = mtimeNs;
      });
    } else if (open.kind === "local") {
      const file = open.file;
      if (changes.size !== undefined) await file.truncate(changes.size);
      if (changes.uid !== undefined || changes.gid !== undefined) {
        await file.chown(changes.uid ?? -1, changes.gid ?? -1);
      }
      if (changes.mode !== undefined) await file.chmod(changes.mode & 0o7777);
      if (changes.atime !== undefined || changes.mtime !== undefined) {
        const now = await file.stat({ bigint: true });
        const seconds = (ns: bigint | undefined, current: bigint) => Number(ns ?? current) / 1e9;
        futimesSync(
          file.fd,
          seconds(toNs(changes.atime), now.atimeNs),
          seconds(toNs(changes.mtime), now.mtimeNs),
        );
      }
    }
    return { attr: await this.#unlinkedAttr(path, open), attrTimeout: 0 };
  }

  /**
   * Changes `path`'s attributes where the file is: the source, Riak, or both. `lstatBefore`:
   * the source's entry as setattr found it. Resolves to the source's entry after the change,
   * where the change went to it, and whether Riak held the file and took the change.
   */
  async #setFileAttributes(
    ctx: RequestContext,
    path: string,
    attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
    atimeNs: bigint | undefined,
    lstatBefore: BigIntStats | undefined,
  ): Promise<{ changedLocally?: BigIntStats; changedInRiak?: RiakChange }> {
    // Riak keeps an access time only once one is set explicitly (utimens, touch -a).
    const riakAttributes = definedOnly({ ...attributes, atimeNs });
    const changesAttributes = Object.keys(riakAttributes).length > 0;
    // Looked at again unless it is a directory (whose copies below went on): a copy of the
    // file may have moved it between that look and the hold.
    let local = lstatBefore?.isDirectory()
      ? lstatBefore
      : this.#usesLocal()
      ? await this.#lstatLocal(path)
      : undefined;
    if (local?.isFile() && this.#mirrorsWrites() && this.#mode.reads !== "local") {
      // Riak may hold a newer copy: into the source first, as before a write, or the older
      // local attributes (its mtime among them) would go over it and hide it.
      await this.#oneWriteOpenAtATime(path, () => this.#fetchIntoSource(path, false));
      local = await this.#lstatLocal(path);
    }
    // Where the local file is the truth its jobs run in order: nothing to wait for.
    if (!(local && this.#mirrorsWrites())) {
      await this.#settled(path, ctx);
      // drain deletes a local copy an upload superseded, which it may just have done.
      if (local) local = await this.#lstatLocal(path);
    }
    // Where the local file is the truth, Riak takes its attributes over in the background
    // (journaled first), as it takes its bytes.
    const mirrored = local && changesAttributes && this.#mirrorsWrites()
      ? await this.#o.uploads.reserve({
        path,
        mirror: "attributes",
        set: definedOnly({
          ...attributes,
          mtimeNs: attributes.mtimeNs?.toString(),
          atimeNs: atimeNs?.toString(),
        }),
      })
      : undefined;
    // Elsewhere Riak is asked first, so that an outage changes nothing (the change fails
    // with EIO) instead of the local copy alone; and again after the local change, afresh:
    // an upload below a legacy directory may make it in Riak meanwhile, from the local
    // attributes as they were (an absence remembered from a lookup is old news then too).
    const inRiakToo = changesAttributes && this.#writesRiak() && !mirrored;
    if (inRiakToo && local) {
      this.#knowledge.uncache(path);
      await this.#riakStat(path, { quiet: true });
    }
    let changedLocally: BigIntStats | undefined;
    try {
      if (local) {
        await this.#setLocalAttributes(path, local, attributes, atimeNs);
        changedLocally = await this.#lstatLocal(path);
      }
    } finally {
      if (mirrored) this.#o.uploads.start(mirrored);
    }
    let changedInRiak: RiakChange | undefined;
    if (inRiakToo) {
      this.#knowledge.uncache(path);
      const before = await this.#riakStat(path, { quiet: true });
      if (before) {
        const after = await this.#riak(
          `setattr ${path}`,
          () => this.#o.store.setAttributes(path, riakAttributes),
        );
        changedInRiak = { before, after };
      }
    }
    return { changedLocally, changedInRiak };
  }

  /** See {@link SourceTree.truncate}. */
  #truncateLocal(path: string, size: number): Promise<void> {
    return this.#sourceTree.truncate(path, size);
  }

  /** See {@link SourceTree.setAttributes}. */
  #setLocalAttributes(
    path: string,
    local: BigIntStats,
    attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
    atimeNs: bigint | undefined,
  ): Promise<void> {
    return this.#sourceTree.setAttributes(path, local, attributes, atimeNs);
  }

  // ---- names ----

  /** @inheritdoc */
  async readlink(_ctx: RequestContext, nodeid: number): Promise<string> {
    const path = this.#nodes.pathOf(nodeid);
    const located = await this.#locate(path);
    if (located.where === "riak") {
      return (await this.#riak(`readlink ${path}`, () => this.#o.store.readlink(path))).toString();
    }
    if (located.where !== "local") throw fail(Errno.EINVAL, `${path} is not a symlink`);
    return await fsp.readlink(await this.#localPath(path));
  }

  /** @inheritdoc */
  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry> {
    const path = this.#newEntryPath(parent, name);
    await this.#refuseExisting(path);
    const followsSource = await this.#inRiakUnlessOutage(path, async () => {
      await this.#ensureRiakDirectory(parentOf(path));
      await this.#riak(
        `symlink ${path}`,
        () => this.#o.store.symlink(path, target, { uid: ctx.uid, gid: ctx.gid }),
      );
    });
    await this.#inSourceThenFollowing(path, followsSource, async () => {
      const file = await this.#localPath(path);
      await this.#makeLocalParents(path);
      await fsp.symlink(target, file);
      await fsp.lchown(file, ctx.uid, ctx.gid);
    }, () => this.#removeFromRiak(path));
    this.#entriesChanged(parentOf(path));
    return this.#entry(
      this.#nodes.reference(path),
      await this.#attrOf(path, await this.#locate(path)),
    );
  }

  /** @inheritdoc */
  async mkdir(
    ctx: RequestContext,
    parent: number,
    name: string,
    mode: number,
    _umask: number,
  ): Promise<Entry> {
    return await this.#gated(
      () => [this.#newEntryPath(parent, name)],
      ([path]) => this.#mkdir(ctx, path, mode),
    );
  }

  async #mkdir(ctx: RequestContext, path: string, mode: number): Promise<Entry> {
    await this.#refuseExisting(path);
    const inherited = await this.#inheritedGroup(parentOf(path), ctx.gid);
    const attributes = {
      mode: (mode & 0o7777) | (inherited.setgid ? S_ISGID : 0),
      uid: ctx.uid,
      gid: inherited.gid,
    };
    if (this.#journalsNames(path)) {
      await this.#mkdirWhileAway(path, attributes);
      this.#entriesChanged(parentOf(path));
      return this.#entry(
        this.#nodes.reference(path),
        await this.#attrOf(path, await this.#locate(path)),
      );
    }
    const followsSource = await this.#inRiakUnlessOutage(path, async () => {
      await this.#mkdirInRiak(path, attributes);
      // Made now: empty, as far as this mount knows (for an rmdir while Riak is away).
      if (this.#stagesWrites()) this.#listedInRiak.listed(path, []);
    });
    await this.#inSourceThenFollowing(path, followsSource, async () => {
      const directory = await this.#localPath(path);
      await this.#makeLocalParents(path);
      await fsp.mkdir(directory, attributes.mode);
      await fsp.chmod(directory, attributes.mode); // Exactly as asked, whatever our umask.
      await fsp.lchown(directory, ctx.uid, attributes.gid);
    }, () => this.#removeEmptyDirectoryFromRiak(path));
    this.#entriesChanged(parentOf(path));
    return this.#entry(
      this.#nodes.reference(path),
      await this.#attrOf(path, await this.#locate(path)),
    );
  }

  /** @inheritdoc */
  async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.#gated(
      () => [childPath(this.#nodes.pathOf(parent), name)],
      ([path]) => this.#unlink(ctx, path),
    );
  }

  async #unlink(ctx: RequestContext, path: string): Promise<void> {
    if (this.#mirrorsWrites()) {
      if (await this.#unlinkNewToRiak(path)) return;
      // The local file goes, and Riak's copy follows in the background. Journaled first: a
      // crash in between finds the file still there and copies it instead.
      let reserved: PendingMirror;
      try {
        reserved = await this.#o.uploads.reserve({
          path,
          mirror: "remove",
          ...this.#unseenMark(path),
        });
      } catch (error) {
        // No room for the journal's line on the disk that filled up, where a removal is what
        // makes room: removed as where nothing is journaled, Riak's copy first.
        if (!isNoRoomError(error)) throw error;
        return await this.#unlinkNow(path, ctx);
      }
      try {
        await this.#unlinkLocal(path);
      } catch (error) {
        // Riak unreachable (EIO) as much as a refusal: the removal did not happen.
        const onlyInRiak = await this.#onlyInRiak(path, error).catch(async (reason) => {
          await this.#o.uploads.cancel(reserved);
          throw reason;
        });
        if (!onlyInRiak) {
          await this.#o.uploads.cancel(reserved);
          throw error;
        }
      }
      this.#forgetPath(path);
      await this.#copyOpenContent(path);
      this.#o.uploads.start(reserved);
      this.#entriesChanged(parentOf(path));
      return;
    }
    if (this.#journalsNames(path)) return await this.#unlinkWhileAway(path, ctx);
    await this.#unlinkNow(path, ctx);
  }

  /**
   * Removes a file Riak holds nothing of, nor held when it was created, and whose copies have
   * not started (see {@link UploadQueue.withdrawNew}): the local file goes, and its copies with
   * it, with no removal journaled or sent to Riak. A crash before their lines are done replays
   * the copies, which find no file. False, having done nothing, where that cannot be.
   */
  async #unlinkNewToRiak(path: string): Promise<boolean> {
    // A put of it that may still land makes it anything but new to Riak.
    if (this.#putMayLand(path)) return false;
    const unsent = this.#o.uploads.withdrawNew(path);
    if (unsent === undefined) return false;
    // No copy-on-read of it starts meanwhile (none runs: it would count as a change).
    const copiesHeld = this.#o.copies.hold(path);
    try {
      await copiesHeld;
      await this.#unlinkLocal(path);
    } catch {
      // Gone from the source meanwhile, say: the usual way sorts it out.
      unsent.release();
      return false;
    } finally {
      void copiesHeld.then((release) => release(), () => {});
    }
    await unsent.drop();
    this.#forgetPath(path);
    this.#entriesChanged(parentOf(path));
    return true;
  }

  /** See {@link RiakCalls.putMayLand}. */
  #putMayLand(path: string): boolean {
    return this.#riakCalls.putMayLand(path);
  }

  /**
   * Removes `path` from Riak, then from the source, before answering: if Riak cannot be
   * asked nothing changes, instead of the file coming back from Riak later. Its staged
   * uploads that sent Riak nothing yet are called off and dropped with it (journaled done
   * only once the rest succeeded) instead of being sent only to be removed: Riak is then
   * asked nothing when their look found no file there (a file made and removed before its
   * upload went out, a temporary file), else only to remove the older file it holds.
   */
  async #unlinkNow(path: string, ctx: RequestContext): Promise<void> {
    // A session open on it writes for nobody from now on: its commits would bring it back.
    await this.#sessionsStarted([path]);
    const open = this.#sessions.get(path);
    if (open) {
      await this.#holdingSessions([open], async () => {
        await this.#keepBytesOf(open);
        this.#detach(open);
      });
    }
    const withheld = this.#stagesWrites() ? await this.#withheldUploads(path) : undefined;
    try {
      if (!withheld) await this.#settled(path, ctx);
      // A file still being written exists as its session alone until its first commit.
      let found = open !== undefined || withheld !== undefined;
      await this.#copyOpenContent(path);
      await this.#holdingCopies(`remove ${path}`, [path], async () => {
        // Riak first: if it is unreachable nothing changes, instead of the file coming back.
        // The look that found no file there is no answer while a put of it may still land.
        if (this.#usesRiak() && (!withheld?.riakHadNone || this.#putMayLand(path))) {
          found = await this.#removeFromRiak(path) || found;
        }
        if (this.#usesLocal()) {
          found = await ignoreMissing(this.#unlinkLocal(path)) || found;
        }
      });
      if (!found) throw fail(Errno.ENOENT, `${path}: no such file`);
    } catch (error) {
      withheld?.release();
      throw error;
    }
    if (withheld) {
      await withheld.drop();
      // No upload lands to delete the local copy it superseded: the unlink removed that.
      this.#superseded.delete(path);
    }
    this.#forgetPath(path);
    this.#entriesChanged(parentOf(path));
  }

  /**
   * {@link UploadQueue.withhold} of `path`'s uploads, waited for (an upload under way first
   * hears back from Riak) at most the Riak deadline: past it the unlink fails (EIO), changing
   * nothing, and a withhold that comes later lets go of the uploads at once. Not a request
   * to Riak of its own: Riak's health hears of the upload's, not of this.
   */
  async #withheldUploads(path: string): Promise<WithheldUploads | undefined> {
    if (!this.#o.uploads.hasPending(path)) return undefined;
    const withholding = this.#o.uploads.withhold(path);
    try {
      return await this.#withinRiakDeadline(`upload ${path}`, withholding);
    } catch (error) {
      void withholding.then((late) => late?.release(), () => {});
      throw error;
    }
  }

  /**
   * Makes `path` in Riak with `change`, in the modes that write Riak. Where SOURCE is written
   * too, an outage does not fail it: the copy of SOURCE's `path` is journaled instead (and
   * returned, for {@link #inSourceThenFollowing}), and Riak follows once back.
   */
  async #inRiakUnlessOutage(
    path: string,
    change: () => Promise<void>,
  ): Promise<PendingMirror | undefined> {
    if (!this.#writesRiak()) return undefined;
    const journaled = () =>
      this.#o.uploads.reserve({ path, mirror: "copy", ...this.#unseenMark(path) });
    // A job of the name or of a directory above still queued (a removal: Riak may still hold
    // the old file; a directory made during an outage) goes first; journaled, the new entry's
    // copy is queued behind it, with no wait for Riak.
    if (this.#mirrorsWrites() && this.#pendingAtOrAbove(path)) return await journaled();
    const changed = this.#o.uploads.newToRiak.changing(path);
    try {
      await change();
      return undefined;
    } catch (error) {
      if (!this.#mirrorsWrites() || !isOutageError(error)) throw error;
      return await journaled();
    } finally {
      changed();
    }
  }

  /** Whether a job of `path` or of a directory above it is queued or running. */
  #pendingAtOrAbove(path: string): boolean {
    for (let at = path; at !== "/"; at = parentOf(at)) {
      if (this.#o.uploads.hasPending(at)) return true;
    }
    return false;
  }

  /**
   * Makes the change of `path` in SOURCE (where written), then lets a journaled copy of it
   * start. When SOURCE refuses it (a full disk has no block for a directory) after Riak made
   * it, `undo` takes Riak's back: the application was told the entry is not there.
   */
  async #inSourceThenFollowing(
    path: string,
    followsSource: PendingMirror | undefined,
    change: () => Promise<void>,
    undo: () => Promise<unknown>,
  ): Promise<void> {
    if (this.#writesLocal()) {
      try {
        await change();
      } catch (error) {
        if (followsSource) await this.#o.uploads.cancel(followsSource);
        else if (this.#writesRiak() && await this.#lstatLocal(path) === undefined) {
          await undo().catch((reason) =>
            this.#logger.warn("an entry SOURCE refused stays in Riak", {
              error: (error as Error).message,
              undo: (reason as Error).message,
            })
          );
        }
        throw error;
      }
    }
    if (followsSource) this.#o.uploads.start(followsSource);
  }

  /**
   * The group a new entry of `parent` gets, and whether a new directory there is
   * set-group-ID: a set-group-ID directory hands down its group (and, to directories, the
   * bit), as Linux does; else the caller's group.
   */
  async #inheritedGroup(parent: string, gid: number): Promise<{ gid: number; setgid: boolean }> {
    try {
      // The source's directory where it is what the mount shows (one lstat, on every
      // create's path); where Riak is read first, Riak's directory hides the source's (one
      // renamed over an empty legacy directory, say, which the source still holds).
      const local = this.#mode.reads === "local" ? await this.#lstatLocal(parent) : undefined;
      const { mode, gid: parentGid } = local
        ? { mode: Number(local.mode), gid: Number(local.gid) }
        : await this.#attrOf(parent, await this.#locate(parent));
      if (mode & S_ISGID) return { gid: parentGid, setgid: true };
    } catch {
      // Not to be looked at (Riak away, say): the caller's group.
    }
    return { gid, setgid: false };
  }

  async #mkdirInRiak(path: string, attributes: Partial<FileAttributes>): Promise<void> {
    await this.#ensureRiakDirectory(parentOf(path));
    await this.#riak(`mkdir ${path}`, () => this.#o.store.mkdir(path, attributes)).catch(
      async (error) => {
        // Where listings are the source's, an empty directory Riak kept (a rename Riak could
        // not follow left it) is nobody's: it is taken as the new one.
        if (!(error instanceof AlreadyExistsError) || this.#mode.listings !== "local") {
          throw error;
        }
        const found = await this.#riak(`mkdir ${path}`, () => this.#o.store.tryStat(path));
        if (found?.type !== "directory") throw error;
        await this.#riak(`mkdir ${path}`, () => this.#o.store.setAttributes(path, attributes));
      },
    );
  }

  /** @inheritdoc */
  async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.#gated(
      () => [childPath(this.#nodes.pathOf(parent), name)],
      ([path]) => this.#rmdir(ctx, path),
    );
  }

  async #rmdir(ctx: RequestContext, path: string): Promise<void> {
    // Riak's listing cannot be read now: what the mount knows of it answers.
    if (
      this.#stagesWrites() && !this.#madeWhileAway(path) && await this.#rmdirSeenWhileAway(path)
    ) return;
    if (!await this.#emptiedForRmdir(path)) {
      throw fail(Errno.ENOTEMPTY, `${path}: directory not empty`);
    }
    // Going away: its mtime is not written (not under its removal either).
    await this.#directoryTimes.forget(path);
    if (this.#mirrorsWrites() && this.#mode.reads === "local") {
      // The source is the whole truth: the local directory goes, and Riak's follows in the
      // background once its entries' removals ran (also after an outage, or a restart).
      const reserved = await this.#o.uploads.reserve({ path, mirror: "remove", directory: true });
      try {
        await fsp.rmdir(await this.#localPath(path, { directory: true }));
      } catch (error) {
        await this.#o.uploads.cancel(reserved);
        throw error;
      }
      this.#forgetPath(path);
      this.#o.uploads.start(reserved);
      this.#entriesChanged(parentOf(path));
      return;
    }
    if (this.#stagesWrites() && this.#madeWhileAway(path)) {
      // Made while Riak was away, not in Riak yet: its removal follows its making there.
      await this.#o.uploads.submitTogether([
        { path, mirror: "remove", directory: true, ...this.#unseenMark(path) },
      ]);
      this.#forgetPath(path);
      this.#entriesChanged(parentOf(path));
      return;
    }
    // Removals of its files still on their way to Riak go first.
    if (this.#mirrorsWrites()) await this.#settledBelow(path, ctx);
    let found = false;
    await this.#holdingCopies(`remove ${path}`, [path], async () => {
      if (this.#usesRiak()) found = await this.#removeFromRiak(path) || found;
      if (this.#usesLocal()) {
        found = await ignoreMissing(fsp.rmdir(await this.#localPath(path))) || found;
      }
    });
    if (!found) throw fail(Errno.ENOENT, `${path}: no such directory`);
    this.#forgetPath(path);
    this.#entriesChanged(parentOf(path));
  }

  /** @inheritdoc */
  async rename(
    ctx: RequestContext,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void> {
    if (flags & RENAME_EXCHANGE) {
      throw fail(Errno.EINVAL, "RENAME_EXCHANGE is not supported by the overlay");
    }
    await this.#gated(
      () => [childPath(this.#nodes.pathOf(parent), name), this.#newEntryPath(newParent, newName)],
      ([from, to], ungate) => this.#rename(ctx, from, to, flags, ungate),
    );
  }

  /**
   * {@link rename} of `from` to `to`, let through by {@link #gated}; `ungate` leaves the gate's
   * count of operations under way, as a directory's rename while away does (it waits for them).
   */
  async #rename(
    ctx: RequestContext,
    from: string,
    to: string,
    flags: number,
    ungate: () => void,
  ): Promise<void> {
    await this.#locate(from);
    if (flags & RENAME_NOREPLACE && await this.#exists(to)) {
      throw fail(Errno.EEXIST, `${to}: already exists`);
    }
    // A late write of a moved directory's mtime would make its attributes object again.
    await this.#directoryTimes.settledBelow(from);
    await this.#directoryTimes.forget(to); // An empty directory renamed over goes.
    this.#renames++;
    try {
      await this.#renameNow(from, to, ctx, ungate);
    } finally {
      if (--this.#renames === 0) this.#mirroredDuringRenames.clear();
    }
    this.#entriesChanged(parentOf(from), parentOf(to));
  }

  /** Renames once nothing is on its way; `ctx.commit()` before the first change. */
  async #renameNow(
    from: string,
    to: string,
    ctx: RequestContext,
    ungate: () => void,
  ): Promise<void> {
    if (this.#mirrorsWrites() && await this.#lstatLocal(from)) {
      return await this.#renameMirrored(from, to, ctx);
    }
    // Only while Riak is away: once back, a rename waits for the jobs of the name instead.
    if (this.#stagesWrites() && !this.#o.health.reachable) {
      return await this.#renameWhileAway(from, to, ctx, ungate);
    }
    // Over a directory only when it is empty in the union: one empty in the source may hold
    // files in Riak, which the rename would otherwise take away with it.
    await this.#refuseRenameOver(from, to);
    // Write sessions: those at or below `from` move along, one at `to` is renamed over.
    // Held while Riak renames: no commit of theirs lands under a name that is going away.
    await this.#sessionsStarted([from, to]);
    const moving = this.#sessionsAtOrBelow(from);
    const replaced = this.#sessions.get(to);
    await this.#holdingSessions([...moving, ...(replaced ? [replaced] : [])], async () => {
      // Uploads of either name still on their way would land after the rename.
      await this.#settledBelow(from, ctx);
      await this.#settledBelow(to, ctx);
      if (replaced && !moving.includes(replaced)) await this.#keepBytesOf(replaced);
      await this.#holdingCopies(`rename ${from}`, [from, to], async () => {
        await this.#copyOpenContent(to); // Renamed over while open: readable still.
        ctx.commit();
        await this.#renameInRiak(from, to);
        // Only once renamed over: a rename that failed leaves its writer writing the file.
        if (replaced && !moving.includes(replaced)) this.#detach(replaced);
        await this.#renameLocally(from, to);
      });
      for (const session of moving) {
        this.#moveSession(session, to + session.path.slice(from.length));
      }
    });
    await this.#moveOpenFiles(from, to);
    this.#renamed(from, to);
  }

  // ---- changes of names while Riak is away (modes that write Riak only) ----

  /** See {@link WhileAway.journalsNames}. */
  #journalsNames(path: string): boolean {
    return this.#whileAway.journalsNames(path);
  }

  /** See {@link WhileAway.madeWhileAway}. */
  #madeWhileAway(path: string): FileStat | undefined {
    return this.#whileAway.madeWhileAway(path);
  }

  /** See {@link NamesWhileAway.mkdirWhileAway}. */
  #mkdirWhileAway(
    path: string,
    attributes: { mode: number; uid: number; gid: number },
  ): Promise<void> {
    return this.#namesWhileAway.mkdirWhileAway(path, attributes);
  }

  /** See {@link NamesWhileAway.unlinkWhileAway}. */
  #unlinkWhileAway(path: string, ctx: RequestContext): Promise<void> {
    return this.#namesWhileAway.unlinkWhileAway(path, ctx);
  }

  /** See {@link WhileAway.movedWhileAway}. */
  #movedWhileAway(path: string): SeenFile | undefined {
    return this.#whileAway.movedWhileAway(path);
  }

  /** See {@link NamesWhileAway.rmdirSeenWhileAway}. */
  #rmdirSeenWhileAway(path: string): Promise<boolean> {
    return this.#namesWhileAway.rmdirSeenWhileAway(path);
  }

  /** See {@link NamesWhileAway.renameWhileAway}. */
  #renameWhileAway(
    from: string,
    to: string,
    ctx: RequestContext,
    ungate: () => void,
  ): Promise<void> {
    return this.#namesWhileAway.renameWhileAway(from, to, ctx, ungate);
  }

  /**
   * Once Riak is back, waits for the move of a directory renamed while it was away whose old
   * or new name is at or above `path`: until it ran, Riak shows there what was before.
   */
  async #directoryMoveSettled(path: string): Promise<void> {
    if (!this.#stagesWrites() || !this.#o.health.reachable) return;
    const move = this.#o.uploads.directoryMoveOver(path);
    if (move) await this.#settled(move.path);
  }

  /** See {@link WhileAway.uploadMovedTo}. */
  #uploadMovedTo(upload: PendingUpload, to: string): NewEntry {
    return this.#whileAway.uploadMovedTo(upload, to);
  }

  /** See {@link WhileAway.directoryMovedWhileAway}. */
  #directoryMovedWhileAway(path: string): FileStat | undefined {
    return this.#whileAway.directoryMovedWhileAway(path);
  }

  /** See {@link WhileAway.removalRenamedOver}. */
  #removalRenamedOver(to: string, replaced: WriteSession | undefined): NewEntry[] {
    return this.#whileAway.removalRenamedOver(to, replaced);
  }

  /** See {@link WhileAway.versionRenamedOver}. */
  #versionRenamedOver(to: string, replaced: WriteSession | undefined): HeldInRiak | undefined {
    return this.#whileAway.versionRenamedOver(to, replaced);
  }

  /** See {@link WhileAway.versionInRiak}. */
  #versionInRiak(path: string, session: WriteSession | undefined): HeldInRiak | undefined {
    return this.#whileAway.versionInRiak(path, session);
  }

  /** See {@link WhileAway.removalWhileAway}. */
  #removalWhileAway(path: string, session: WriteSession | undefined): NewEntry {
    return this.#whileAway.removalWhileAway(path, session);
  }

  /** See {@link NamesWhileAway.gated}. */
  #gated<T>(
    pathsNow: () => string[],
    operation: (paths: string[], ungate: () => void) => Promise<T>,
  ): Promise<T> {
    return this.#namesWhileAway.gated(pathsNow, operation);
  }

  /** See {@link SessionTable.startedAtOrBelow}. */
  #sessionsStarted(paths: string[]): Promise<void> {
    return this.#sessions.startedAtOrBelow(paths);
  }

  /** See {@link SessionTable.atOrBelow}. */
  #sessionsAtOrBelow(path: string): WriteSession[] {
    return this.#sessions.atOrBelow(path);
  }

  /** See {@link SessionTable.holding}. */
  #holdingSessions<T>(sessions: WriteSession[], body: () => Promise<T>): Promise<T> {
    return this.#sessions.holding(sessions, body);
  }

  /** See {@link SessionTable.detach}. */
  #detach(session: WriteSession): void {
    this.#sessions.detach(session);
  }

  /** See {@link SessionTable.move}; the session's write handles move with it. */
  #moveSession(session: WriteSession, to: string): void {
    const from = session.path;
    this.#sessions.move(session, to);
    this.#handles.repath(session, from, to);
  }

  /**
   * Renames a local file or directory where the local file is the truth. What Riak must end
   * up with is journaled first: for every file at or below `from`, the removal of its old
   * name and the copy (with any attributes still on their way, exactly) of its new one. Then
   * the source is renamed (a rename it refuses changes nothing), then Riak's copy. When Riak
   * renamed it, only the removals still run (a copy-on-read may have brought an old name
   * back); when it could not (unreachable), the journal catches Riak up. Nothing waits for
   * queued uploads: the jobs of a path run in order, and files closed during the rename are
   * copied again once Riak's rename is done.
   */
  async #renameMirrored(from: string, to: string, ctx: RequestContext): Promise<void> {
    if (this.#mode.reads !== "local") await this.#refuseBlindRename(from);
    await this.#refuseRenameOver(from, to);
    // Jobs of the target's name still queued (the removal of a file there, say), or the
    // removal of a file a directory above it replaced (Riak still holds that file: ENOTDIR),
    // go first: Riak's rename would meet what they remove, so the journal renames, behind them.
    const targetBusy = this.#o.uploads.pendingPathsBelow(to).length > 0 ||
      this.#o.uploads.fileRemovalPendingAbove(to);
    await this.#copyOpenContent(to); // Renamed over while open: readable still.
    // Walking and journaling a large tree may take a while; nothing has changed yet.
    ctx.commit();
    const below = `${from}/`;
    const moved = (path: string) => to + path.slice(from.length);
    const queued = new Map(
      this.#o.uploads.pendingPathsBelow(from).map((path) => [
        path,
        this.#o.uploads.pendingMirrorsOf(path),
      ]),
    );
    const removals: PendingMirror[] = [];
    const copies: PendingMirror[] = [];
    /** Copies that run even when Riak renamed: their bytes or attributes were not there. */
    const needed = new Set<PendingMirror>();
    const follow = async (path: string, copyAnyway: boolean) => {
      const pending = queued.get(path) ?? this.#o.uploads.pendingMirrorsOf(path);
      removals.push(
        await this.#o.uploads.reserve({ path, mirror: "remove", ...this.#unseenMark(path) }),
      );
      const copy = await this.#o.uploads.reserve({
        path: moved(path),
        mirror: "copy",
        ...(pending.some((entry) => entry.unseen)
          ? { unseen: true }
          : this.#unseenMark(moved(path))),
      });
      copies.push(copy);
      if (copyAnyway) needed.add(copy);
      for (const { mirror, set } of pending) {
        if (mirror !== "attributes") continue;
        const attributes = await this.#o.uploads.reserve({ path: moved(path), mirror, set });
        copies.push(attributes);
        needed.add(attributes);
      }
    };
    const tree = await this.#localTreeBelow(from);
    await this.#riakCopiesIntoSource(tree.files);
    const files = new Set([...tree.files, ...queued.keys()]);
    for (const path of files) await follow(path, queued.has(path));
    // Directories are made under their new names with their attributes, empty ones too.
    for (const directory of tree.directories) {
      copies.push(
        await this.#o.uploads.reserve({
          path: moved(directory),
          mirror: "copy",
          ...this.#unseenMark(moved(directory)),
        }),
      );
    }
    // Riak's old directories go once their files' removals emptied them, deepest first.
    for (const directory of tree.directories.toReversed()) {
      removals.push(
        await this.#o.uploads.reserve({ path: directory, mirror: "remove", directory: true }),
      );
    }
    try {
      await this.#renameLocally(from, to);
    } catch (error) {
      for (const entry of [...removals, ...copies]) await this.#o.uploads.cancel(entry);
      throw error;
    }
    await this.#moveOpenFiles(from, to);
    this.#renamed(from, to);
    // The same when the removal of what `from` was before is still queued (a directory that
    // a file replaced, say): Riak's rename would carry that old entry to the new name.
    const fromReplaced = queued.get(from)?.some((entry) => entry.mirror === "remove") ?? false;
    let renamedInRiak = false;
    try {
      if (!targetBusy && !fromReplaced) {
        await this.#holdingCopies(`rename ${from}`, [from, to], async () => {
          // Entries below `from` removed through the mount, their removal from Riak still
          // queued: Riak's rename would carry them to the new names, where nothing removes
          // them (the copy of a new name finds no local file). They go from Riak first: files
          // and links, then directories, deepest first, those that are empty by then. So do
          // those made again since (a file where a directory was): their copies, queued,
          // follow the rename, and would meet the old entry carried along (EISDIR).
          const directories: string[] = [];
          for (const [path, pending] of queued) {
            const removal = pending.findLast((entry) => entry.mirror === "remove");
            if (path === from || removal === undefined) continue;
            const madeAgain = pending[pending.length - 1] !== removal;
            // A file (or link) may have taken the place of a directory on the way to the new
            // name: nothing is below it (ENOTDIR), and the entry goes from Riak.
            if (!madeAgain && await this.#lstatLocal(moved(path)).catch(absentBelowFile)) continue;
            if (removal.directory) directories.push(path);
            else await this.#removeFromRiak(path);
          }
          for (const path of directories.sort((a, b) => b.length - a.length)) {
            await this.#removeEmptyDirectoryFromRiak(path);
          }
          await this.#renameInRiak(from, to);
        });
        renamedInRiak = true;
      }
    } catch (error) {
      if (!isOutageError(error)) {
        // Riak refuses (not merely unreachable): the source goes back as it was.
        await this.#renameLocally(to, from).catch(() => {});
        await this.#moveOpenFiles(to, from);
        this.#renamed(to, from);
        for (const entry of [...removals, ...copies]) await this.#o.uploads.cancel(entry);
        throw error;
      }
      // Debug: the outage itself is logged once, not once per request it fails.
      this.#logger.debug("rename not done in Riak yet; it follows the source in the background", {
        from,
        to,
        error: (error as Error).message,
      });
    }
    // Closed during the rename: under the old names (released before the handles moved) or
    // the new ones (copied while Riak renamed, which may have written the old bytes over).
    const toBelow = `${to}/`;
    for (const path of this.#mirroredDuringRenames) {
      if (path === from || path.startsWith(below)) {
        await follow(path, true);
      } else if (path === to || path.startsWith(toBelow)) {
        const copy = await this.#o.uploads.reserve({
          path,
          mirror: "copy",
          ...this.#unseenMark(path),
        });
        copies.push(copy);
        needed.add(copy);
      }
    }
    for (const entry of removals) this.#o.uploads.start(entry);
    for (const entry of copies) {
      if (renamedInRiak && !needed.has(entry)) await this.#o.uploads.cancel(entry);
      else this.#o.uploads.start(entry);
    }
  }

  /**
   * Where reads come from Riak first, Riak's copies of `files` that differ from the source's
   * (the ones the mount shows) are brought into SOURCE before a rename journals them (as
   * before a write): the removal of the old names and the copy of the new ones, replayed
   * after a crash that came before Riak's rename, would otherwise remove Riak's bytes and
   * copy the source's other ones.
   */
  async #riakCopiesIntoSource(files: readonly string[]): Promise<void> {
    if (this.#mode.reads === "local") return;
    for (const file of files) {
      const local = await this.#lstatLocal(file);
      // The newest already (nor, in an outage, is Riak asked).
      if (
        !local?.isFile() || this.#localIsNewest(file) ||
        this.#knowledge.holdsMirrored(file, local)
      ) continue;
      if ((await this.#riakStat(file))?.type !== "file") continue;
      await this.#oneWriteOpenAtATime(file, () => this.#fetchIntoSource(file, false));
    }
  }

  /**
   * Where reads come from Riak first, a rename Riak cannot be asked about (an outage) is
   * refused with EIO unless `from` is a file whose local version is the newest: written
   * through this mount, or the version Riak was seen to hold. Anything else may have a newer
   * copy in Riak, or entries below it only Riak holds, which the journal could not move.
   */
  async #refuseBlindRename(from: string): Promise<void> {
    const local = await this.#lstatLocal(from);
    if (
      local?.isFile() &&
      (this.#localIsNewest(from) || this.#knowledge.holdsMirrored(from, local))
    ) return;
    await this.#riak(`rename ${from}`, () => this.#o.store.tryStat(from));
  }

  /**
   * Refuses a rename the union of source and Riak does not allow, before anything changes:
   * over a non-empty directory (ENOTEMPTY), a directory over a file (ENOTDIR), a file over a
   * directory (EISDIR). A directory listing orphan entries only is empty, as to rmdir: they go.
   */
  async #refuseRenameOver(from: string, to: string): Promise<void> {
    const target = await this.#locate(to).catch((error) => {
      if (isOutageError(error)) throw error;
      return undefined;
    });
    if (target === undefined) return;
    const source = await this.#locate(from);
    const isDirectory = (located: Located) =>
      located.where === "riak"
        ? located.stat.type === "directory"
        : located.where === "local" && located.stats.isDirectory();
    if (isDirectory(target)) {
      if (!isDirectory(source)) throw fail(Errno.EISDIR, `${to}: is a directory`);
      if (!await this.#emptiedForRmdir(to)) throw fail(Errno.ENOTEMPTY, `${to}: not empty`);
    } else if (isDirectory(source)) throw fail(Errno.ENOTDIR, `${to}: not a directory`);
  }

  /** See {@link SourceTree.treeBelow}. */
  #localTreeBelow(path: string): Promise<{ files: string[]; directories: string[] }> {
    return this.#sourceTree.treeBelow(path);
  }

  async #renameInRiak(from: string, to: string): Promise<void> {
    if (!this.#usesRiak()) return;
    if (this.#unseenMark(from).unseen) {
      // What Riak holds under a name created during an outage is not what is renamed.
      await this.#riak(
        `rename ${from}`,
        () => setAsideUnseen(this.#o.store, from, () => Promise.resolve(undefined), this.#logger),
      );
      this.#changed(from);
    }
    const remote = await this.#riakStat(from, { quiet: true });
    if (remote) {
      await this.#ensureRiakDirectory(parentOf(to));
      // An absence seen below `to` while it goes on is no longer Riak's once it is done.
      const newToRiak = this.#o.uploads.newToRiak;
      newToRiak.changed(to, { below: true });
      try {
        // Not abandoned at a deadline while it goes on (a directory's takes a while); each of
        // its Riak requests has the client's own timeout.
        this.#logLateWriteWait("rename", from);
        await this.#o.health.observe(this.#o.store.rename(from, to));
      } finally {
        newToRiak.changed(to, { below: true });
      }
    } else if (await this.#riakStat(to, { quiet: true })) {
      // The target's old Riak copy would otherwise shadow what is renamed over it.
      await this.#removeFromRiak(to);
    }
  }

  /** {@link SourceTree.rename} in modes that use the source. */
  #renameLocally(from: string, to: string): Promise<void> {
    return this.#usesLocal() ? this.#sourceTree.rename(from, to) : Promise.resolve();
  }

  /** Open local files move along: a mirror or a copy-on-read takes the new name. */
  async #moveOpenFiles(from: string, to: string): Promise<void> {
    for (const [fh, handle] of this.#handles.atOrBelow(from)) {
      if (handle.kind === "write") continue; // Sessions move with #moveSession.
      const previous = handle.path;
      const moved = to + previous.slice(from.length);
      this.#handles.move(fh, handle, moved);
      if (handle.kind === "riak") {
        handle.version = { ...handle.version, path: moved };
        continue;
      }
      if (handle.mirror) {
        this.#forgetWriter(previous);
        this.#addWriter(moved);
        // Journaled under the new name: a crash before its release mirrors that name.
        const old = handle.mirror;
        handle.mirror = await this.#o.uploads.reserve({
          path: moved,
          mirror: "copy",
          ...(old.unseen ? { unseen: true } : this.#unseenMark(moved)),
        });
        await this.#o.uploads.cancel(old);
      }
    }
  }

  /** What this mount remembers of `from` and `to` after a rename. */
  #renamed(from: string, to: string): void {
    this.#o.cache.invalidate(from);
    this.#o.cache.invalidate(to);
    this.#knowledge.renamed(from, to);
    // The rest of #changed of both names (the knowledge's part is in its renamed).
    for (const path of [from, to]) {
      this.#o.uploads.newToRiak.changed(path);
      this.#withdraw(path);
    }
    for (const path of [from, to]) this.#o.uploads.newToRiak.changed(path, { below: true });
    this.#shown.renamed(from, to);
    this.#nodes.rename(from, to);
  }

  /** @inheritdoc */
  async fallocate(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void> {
    const handle = this.#handles.require(fh);
    if (handle.kind === "write") {
      const session = handle.session;
      await this.#inSession(session, async () => {
        await this.#writable(session);
        await fallocateDescriptor(session.handle.fd, offset, length, mode);
        session.dirty = true;
        session.mtimeNs = undefined; // As a write.
      });
      return;
    }
    // A local file opened for writing: its mirror copies what it holds once released.
    if (handle.kind === "local" && handle.mirror) {
      return await fallocateDescriptor(handle.file.fd, offset, length, mode);
    }
    throw fail(Errno.EBADF, `${handle.path}: not open for writing`);
  }

  /** @inheritdoc */
  link(): Promise<Entry> {
    // A hard link cannot be expressed in Riak: say so honestly rather than copy.
    return Promise.reject(fail(Errno.EPERM, "hard links are not supported in Riak-backed modes"));
  }

  // ---- files ----

  /** @inheritdoc */
  async open(ctx: RequestContext, nodeid: number, flags: number): Promise<Opened> {
    const opened = await this.#openNode(ctx, nodeid, flags);
    this.#handles.get(opened.fh)!.nodeid = nodeid;
    return opened;
  }

  async #openNode(_ctx: RequestContext, nodeid: number, flags: number): Promise<Opened> {
    const path = this.#nodes.pathOf(nodeid);
    // Linux truncates on O_TRUNC even with O_RDONLY, and ATOMIC_O_TRUNC leaves that to us.
    const writable = (flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0;
    if (writable && !this.#stagesWrites()) {
      return await this.#oneWriteOpenAtATime(path, async () => {
        const truncating = (flags & O_TRUNC) !== 0;
        if (!this.#mirrorsWrites()) {
          const file = await fsp.open(
            await this.#localPath(path),
            (flags & (O_ACCMODE | O_TRUNC | O_APPEND)) | O_NOFOLLOW,
          );
          return await this.#openWriter(path, file, flags, false);
        }
        const emptied = await this.#fetchIntoSource(path, truncating) && truncating;
        // Truncated only once its mirror is journaled (#openWriter): an open the journal
        // refuses (its disk full) leaves the file as it was. Writable for that, also where
        // it was asked for with O_RDONLY.
        const access = truncating && (flags & O_ACCMODE) === O_RDONLY ? O_RDWR : flags & O_ACCMODE;
        return await this.#journaledOrUnfetched(path, emptied, async () => {
          const file = await fsp.open(
            await this.#localPath(path),
            access | (flags & O_APPEND) | O_NOFOLLOW,
          );
          return await this.#openWriter(path, file, flags, false, truncating);
        });
      });
    }
    if (writable) {
      // Gated: a session started under a name whose directory's rename while away journaled
      // finds no file there (its old name is removed).
      return await this.#gated(() => [this.#nodes.pathOf(nodeid)], async ([path]) => {
        const session = await this.#session(path, (flags & O_TRUNC) !== 0);
        return this.#open({ kind: "write", path, session });
      });
    }
    for (let attempt = 0;; attempt++) {
      const { located, unstaged } = await this.#locateForReading(path);
      if (located.where === "riak") this.#prefetch.opened();
      try {
        const opened = await this.#openForReading(path, located);
        // Staged meanwhile: its bytes are the session's now, not what was opened.
        if (unstaged && !unstaged.unstaged) {
          await this.#release(opened.fh);
          continue;
        }
        return opened;
      } catch (error) {
        // Gone meanwhile: the pending upload finished and its staged file went away, or (in a
        // mode that reads Riak) the local copy moved into Riak (drain). Look again.
        const moved = located.where === "spool" ||
          (located.where === "local" && this.#mode.reads !== "local");
        if (!moved || attempt > 0 || !isMissing(error)) throw error;
      }
    }
  }

  /** @inheritdoc */
  async read(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    size: number,
  ): Promise<Uint8Array> {
    const handle = this.#handles.require(fh);
    if (handle.stale) {
      // Reads arriving meanwhile (the kernel's read-ahead) wait for the same look.
      handle.stale = false;
      handle.following = this.#follow(handle).finally(() => handle.following = undefined);
    }
    if (handle.following) await handle.following;
    if (handle.follows !== undefined) {
      return await this.read(_ctx, _nodeid, handle.follows, offset, size);
    }
    const metrics = this.#o.metrics.value;
    if (handle.kind === "riak") {
      const bytes = handle.removedCopy
        ? await readAt(handle.removedCopy.file, offset, size)
        : this.#o.cache.peek(handle.version, offset, size) ??
          await this.#readRiak(handle, offset, size);
      metrics.bytesReadRiak += bytes.length;
      if (!handle.reads?.record(offset, size, bytes.length)) {
        handle.coverage?.add(offset, bytes.length);
      }
      return bytes;
    }
    const buffer = Buffer.allocUnsafe(size);
    const { bytesRead } = handle.kind === "write"
      ? await this.#inSession(handle.session, async () => {
        if (handle.session.unstaged) await this.#stageNow(handle.session);
        return await handle.session.handle.read(buffer, 0, size, offset);
      })
      : await handle.file.read(buffer, 0, size, offset);
    metrics.bytesReadLocal += bytesRead;
    if (handle.kind === "local" && !handle.reads?.record(offset, size, bytesRead)) {
      handle.coverage?.add(offset, bytesRead);
    }
    return buffer.subarray(0, bytesRead);
  }

  /**
   * Bytes of a Riak file the chunk cache does not hold: a read that starts the file or
   * continues a sequential run is served from the handle's stream, pulled ahead of it;
   * other reads fetch the blocks they span into the cache.
   */
  #readRiak(handle: RiakHandle, offset: number, size: number): Promise<Uint8Array> {
    const end = Math.min(offset + size, handle.version.size);
    if (offset >= end) return Promise.resolve(new Uint8Array(0));
    const sequential = handle.pattern.observe(offset, end - offset) || offset === 0;
    const stream = handle.sequential;
    if (stream.follows(offset) || (sequential && stream.canServe(offset))) {
      return stream.read(offset, end - offset);
    }
    return this.#o.cache.read(
      handle.version,
      offset,
      size,
      (at, length) =>
        this.#riak(
          `read ${handle.path}`,
          () => readAll(this.#o.store.readRange(handle.path, at, length)),
        ),
    );
  }

  /** @inheritdoc */
  async write(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    const handle = this.#handles.require(fh);
    let written: number;
    if (handle.kind === "write") {
      const session = handle.session;
      written = await this.#inSession(session, async () => {
        await this.#writable(session);
        const { bytesWritten } = await session.handle.write(data, 0, data.length, offset);
        session.dirty = true;
        session.mtimeNs = undefined; // A write moves the mtime, also past one set before.
        return bytesWritten;
      });
    } else if (handle.kind === "local") {
      ({ bytesWritten: written } = await handle.file.write(data, 0, data.length, offset));
    } else {
      throw fail(Errno.EBADF, `${handle.path} is open for reading`);
    }
    this.#o.metrics.value.bytesWritten += written;
    return written;
  }

  /** @inheritdoc */
  async flush(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    const handle = this.#handles.get(fh);
    if (handle?.kind === "write") await this.#commit(handle.session, { atFlush: true });
  }

  /** @inheritdoc */
  release(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    return this.#release(fh);
  }

  async #release(fh: number): Promise<void> {
    const handle = this.#handles.remove(fh);
    if (!handle) return;
    if (handle.follows !== undefined) await this.#release(handle.follows);
    if (handle.kind === "riak") {
      await this.#removedWhileOpen.released(handle);
      if (handle.coverage?.covers(handle.version.size, handle.reads)) {
        await this.#freeLocalCopy(handle);
      }
      return handle.sequential.close();
    }
    if (handle.kind === "local") {
      if (handle.mirror) {
        // Opened for writing, never written (a database opened read-write, say): no upload.
        const unchanged = handle.openedVersion !== undefined && sameIdentity(
          identityOf(fstatSync(handle.file.fd, { bigint: true })),
          handle.openedVersion,
        );
        try {
          if (unchanged) await this.#o.uploads.cancel(handle.mirror);
          else {
            // Queued before anything else can happen: a rename or rmdir arriving now waits
            // for it; one already running sees it when it ends.
            this.#o.uploads.start(handle.mirror, { justWritten: true });
            if (this.#renames > 0) this.#mirroredDuringRenames.add(handle.path);
          }
        } finally {
          this.#forgetWriter(handle.path);
          await handle.file.close();
        }
        return;
      }
      await handle.file.close();
      // The kernel sends RELEASE after every READ of the handle was answered: the reader
      // threads' record is complete here. It does not wait for its answer either: the name
      // read may be gone by now (`cat a; rm a`), and a copy of it queued would list it (a
      // name on its way) until its turn came.
      const detached = handle.nodeid !== undefined && this.#nodes.isDetached(handle.nodeid);
      if (!detached && handle.coverage?.covers(handle.size, handle.reads)) {
        this.#o.copies.enqueue(handle.path, handle.size);
      }
      return;
    }
    await this.#leave(handle.session);
  }

  /**
   * Queues the verified deletion of the local copy of a file read whole from Riak's copy
   * (drain): a file Riak held before this mount read it (pre-warmed, or copied by a shadow or
   * migrate mount) has its local copy freed too, not only one read from the source.
   */
  async #freeLocalCopy(handle: Handle & RiakHandle): Promise<void> {
    const local = await this.#lstatLocal(handle.path).catch(() => undefined);
    // Looked at after the lstat: the name read may be gone by now (see #release).
    if (!local?.isFile() || handle.removedCopy) return;
    if (handle.nodeid !== undefined && this.#nodes.isDetached(handle.nodeid)) return;
    const versions = `${handle.version.version}|${mirroredKey(local)}`;
    if (this.#freeingQueued.get(handle.path) === versions) return;
    if (this.#o.copies.enqueue(handle.path, Number(local.size), { freeOnly: true })) {
      setAsNewest(this.#freeingQueued, handle.path, versions, this.#limits.paths);
    }
  }

  /** @inheritdoc */
  async fsync(
    ctx: RequestContext,
    _nodeid: number,
    fh: number,
    _datasync: boolean,
  ): Promise<void> {
    const handle = this.#handles.require(fh);
    if (handle.kind === "local") await handle.file.sync();
    // Where the local file is the truth, its copy on its way to Riak is what fsync waits for:
    // sent as the file is now (even if another handle keeps writing it), also through a
    // descriptor that only reads (`sync FILE` opens the file read-only; in migrate, one
    // reading Riak's copy while another writes the source's), since fsync(2) makes the whole
    // file durable whatever the descriptor.
    if (
      this.#mirrorsWrites() && (handle.kind === "local" || this.#localIsNewest(handle.path))
    ) {
      // Nothing on its way, nor written through another handle still open (its mirror is
      // queued only once it is released): Riak holds the file as it is.
      if (
        !(handle.kind === "local" && handle.mirror) && !this.#o.uploads.hasPending(handle.path) &&
        !this.#localIsNewest(handle.path)
      ) return;
      // Renamed while its snapshot waited: the snapshot found nothing there, so the file is
      // sent again under its new name (a few times at most, against a rename loop).
      for (let attempt = 0; attempt < 3; attempt++) {
        const path = handle.path;
        const ticket = await this.#o.uploads.submitMirror({
          path,
          mirror: "copy",
          snapshot: true,
          ...this.#unseenMark(path),
        });
        this.#o.uploads.hurry(path);
        await this.#uploaded(`upload ${path}`, () => ticket.uploaded, ctx);
        if (handle.path === path) break;
      }
      return;
    }
    if (handle.kind === "write") {
      await this.#commit(handle.session);
      await this.#settled(handle.path, ctx);
      return;
    }
    // A descriptor that only reads: what other descriptors wrote (committed, or still in an
    // open session) reaches Riak before this answers, as fsync(2) flushes the whole file.
    const session = this.#sessions.get(handle.path);
    if (session) await this.#commit(session);
    await this.#settled(handle.path, ctx);
  }

  /** @inheritdoc */
  async create(
    ctx: RequestContext,
    parent: number,
    name: string,
    flags: number,
    mode: number,
    umask: number,
  ): Promise<Created> {
    return await this.#gated(
      () => [this.#newEntryPath(parent, name)],
      ([path]) => this.#create(ctx, path, { parent, name, flags, mode, umask }),
    );
  }

  async #create(
    ctx: RequestContext,
    path: string,
    { parent, name, flags, mode, umask }: {
      parent: number;
      name: string;
      flags: number;
      mode: number;
      umask: number;
    },
  ): Promise<Created> {
    const permissions = mode & ~umask & 0o7777;
    const created = this.#stagesWrites()
      ? (await this.#exists(path) ? undefined : await this.#createStaged(ctx, path, permissions))
      : await this.#createLocal(ctx, path, flags, permissions);
    if (created) {
      this.#handles.get(created.opened.fh)!.nodeid = created.entry.nodeid;
      this.#entriesChanged(parentOf(path));
      return created;
    }
    if (flags & O_EXCL) throw fail(Errno.EEXIST, `${path}: already exists`);
    const entry = await this.lookup(ctx, parent, name);
    // Created meanwhile by someone else: opened as open(2) with O_CREAT opens an existing file.
    return { entry, opened: await this.open(ctx, entry.nodeid, flags) };
  }

  /**
   * mknod(2): a regular file is created as by open(2) with O_CREAT|O_EXCL; FIFOs, sockets and
   * devices have no form in Riak (EPERM, as file systems without them answer).
   */
  async mknod(
    ctx: RequestContext,
    parent: number,
    name: string,
    mode: number,
    _rdev: number,
    umask: number,
  ): Promise<Entry> {
    if ((mode & S_IFMT) !== S_IFREG) {
      throw fail(Errno.EPERM, `${name}: only regular files, directories and symlinks are kept`);
    }
    const { entry, opened } = await this.create(ctx, parent, name, O_WRONLY | O_EXCL, mode, umask);
    await this.release(ctx, entry.nodeid, opened.fh);
    return entry;
  }

  /** Creates `path` in the source and opens it; undefined when it exists already. */
  async #createLocal(
    ctx: RequestContext,
    path: string,
    flags: number,
    permissions: number,
  ): Promise<Created | undefined> {
    // Unless the source is the whole namespace, Riak may hold the name.
    if (this.#mode.reads !== "local" && await this.#exists(path, true)) return undefined;
    const localFile = await this.#localPath(path);
    let file: SourceFile;
    try {
      const create = () =>
        openSourceFile(localFile, O_RDWR | O_CREAT | O_EXCL, permissions, this.#sourcePace);
      file = await create().catch(async (error) => {
        // A directory only Riak holds so far is made in the source too.
        if (!isMissing(error) || this.#mode.reads === "local") throw error;
        await this.#makeLocalParents(path);
        return await create();
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return undefined;
      throw error;
    }
    let stats: BigIntStats;
    try {
      // An open descriptor's inode is in memory: fstat(2) never waits for the disk.
      stats = fstatSync(file.fd, { bigint: true });
      const { gid } = await this.#inheritedGroup(parentOf(path), ctx.gid);
      if (stats.uid !== BigInt(ctx.uid) || stats.gid !== BigInt(gid)) {
        await file.chown(ctx.uid, gid);
        stats = fstatSync(file.fd, { bigint: true });
      }
    } catch (error) {
      // The create failed: the empty file it made goes too (nothing journaled it).
      await file.close();
      await ignoreMissing(fsp.unlink(localFile));
      throw error;
    }
    let opened: Opened;
    try {
      opened = await this.#openWriter(path, file, flags, true);
    } catch (error) {
      // Its journal line refused (no room for it on the full disk): the create failed, and
      // the empty file it made must not stay in SOURCE, where Riak would never get it.
      await ignoreMissing(fsp.unlink(localFile));
      throw error;
    }
    const nodeid = this.#nodes.reference(path);
    this.#offerToReaders(path, nodeid, stats);
    return {
      entry: this.#entry(nodeid, await this.#attrOf(path, { where: "local", stats })),
      opened,
    };
  }

  /**
   * A handle of local `file`, just opened for writing at `path`; where the mode mirrors
   * writes, journaled to be mirrored once released. `truncate` (O_TRUNC): emptied once that
   * is journaled. Closes `file` when that fails: the write would reach Riak only by chance.
   */
  async #openWriter(
    path: string,
    file: SourceFile,
    flags: number,
    created: boolean,
    truncate = false,
  ): Promise<Opened> {
    // Readers of Riak's copy follow to the local file; local readers share its inode.
    this.#contentMoving(path, { riakOnly: true });
    let mirror: PendingMirror | undefined;
    if (this.#mirrorsWrites()) {
      try {
        mirror = await this.#o.uploads.reserve({ path, mirror: "copy", ...this.#unseenMark(path) });
      } catch (error) {
        await file.close();
        throw error;
      }
      try {
        if (truncate) await file.truncate(0);
      } catch (error) {
        await this.#o.uploads.cancel(mirror);
        await file.close();
        throw error;
      }
      this.#addWriter(path);
    }
    let openedVersion: FileIdentity | undefined;
    if (mirror && !created) {
      const version = identityOf(fstatSync(file.fd, { bigint: true }));
      if (settledLongAgo(version, this.#now())) openedVersion = version;
    }
    return this.#open({ kind: "local", path, file, size: 0, mirror, openedVersion }, flags);
  }

  /** Creates `path` as a write session staged in the spool, and opens it. */
  /** Creates `path` as an empty session; undefined when one is open or starting there. */
  async #createStaged(
    ctx: RequestContext,
    path: string,
    permissions: number,
  ): Promise<Created | undefined> {
    if (this.#sessions.has(path) || this.#sessions.startingAt(path) !== undefined) return undefined;
    const { gid } = await this.#inheritedGroup(parentOf(path), ctx.gid);
    const attributes = { mode: permissions, uid: ctx.uid, gid };
    // create() found nothing here: Riak answered so, unless it could not be asked (unseen).
    const riakHeldNothing = this.#unseenMark(path).unseen === undefined;
    const session = await this.#starting(path, async () => {
      const session = await this.#newSession(path, attributes, { contentMoves: true });
      if (riakHeldNothing) session.inRiak = "nothing";
      return session;
    });
    const opened = this.#open({ kind: "write", path, session });
    const attr = await this.#attrOf(path, { where: "open", session });
    return { entry: this.#entry(this.#nodes.reference(path), attr), opened };
  }

  // ---- directories ----

  /** @inheritdoc */
  async opendir(_ctx: RequestContext, nodeid: number): Promise<Opened> {
    const path = this.#nodes.pathOf(nodeid);
    const stream = new DirectoryStream(() => this.#listing(path));
    // Its first entry: a directory that cannot be listed fails opendir(3), not readdir(3).
    await stream.entriesAt(0, 1);
    const fh = this.#handles.addDirectory(stream);
    return { fh };
  }

  /** @inheritdoc */
  async readdir(
    _ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void> {
    const stream = this.#listed(fh);
    const path = this.#nodes.pathOf(nodeid);
    for (let index = offset;;) {
      const batch = await stream.entriesAt(index, READDIR_BATCH);
      if (batch.length === 0) return;
      for (const entry of batch) {
        if (!sink.add(direntOf(this.#nodes, path, entry, index))) return;
        index++;
      }
    }
  }

  /** The listing of open directory handle `fh`; EBADF when it is not open. */
  #listed(fh: number): DirectoryStream {
    const stream = this.#handles.directory(fh);
    if (!stream) throw fail(Errno.EBADF, `directory handle ${fh} is not open`);
    return stream;
  }

  /**
   * Lists entries with their lookups: each entry is located and its attributes taken as
   * LOOKUP would, a batch at a time in parallel. An entry that cannot be looked up now (Riak
   * unreachable) is listed without its lookup, as READDIR lists it; the kernel looks it up
   * itself when asked. One whose lookup answers ENOENT is left out: removed since it was
   * listed, or an orphan entry in Riak (listed, nothing stored: `riakfs gc` removes those),
   * it would show in `ls -l` as an error line and a row of question marks.
   */
  async #readdirplusEntries(
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void> {
    const stream = this.#listed(fh);
    const path = this.#nodes.pathOf(nodeid);
    for (let index = offset;;) {
      const batch = await stream.entriesAt(index, READDIRPLUS_BATCH);
      if (batch.length === 0) return;
      const found = await Promise.all(batch.map(async ({ name }) => {
        if (name === "." || name === "..") return undefined;
        const child = childPath(path, name);
        try {
          const located = await this.#locate(child);
          return { path: child, located, attr: await this.#attrOf(child, located) };
        } catch (error) {
          return error instanceof FuseError && error.errno === Errno.ENOENT ? "absent" : undefined;
        }
      }));
      for (let i = 0; i < batch.length; i++, index++) {
        const entry = found[i];
        if (entry === "absent") continue;
        const dirent = direntOf(this.#nodes, path, batch[i], index);
        if (entry === undefined) {
          if (!sink.addPlus(dirent, undefined)) return;
          continue;
        }
        const child = this.#nodes.reference(entry.path);
        if (!sink.addPlus(dirent, this.#entry(child, entry.attr))) {
          this.forget(child, 1); // Not sent: the kernel holds no reference.
          return;
        }
        if (entry.located.where === "local") {
          this.#offerToReaders(entry.path, child, entry.located.stats);
        }
      }
    }
  }

  /** @inheritdoc */
  async releasedir(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    const stream = this.#handles.removeDirectory(fh);
    if (stream === undefined) return;
    await stream.close();
  }

  /** Writes the directory's mtime that {@link DirectoryTimes} still holds back. */
  async fsyncdir(_ctx: RequestContext, nodeid: number): Promise<void> {
    await this.#directoryTimes.settled(this.#nodes.pathOf(nodeid));
  }

  /** @inheritdoc */
  async access(ctx: RequestContext, nodeid: number, mask: number): Promise<void> {
    const { attr } = await this.getattr(ctx, nodeid, undefined);
    rootAccess(attr.mode, mask);
  }

  /** @inheritdoc */
  async statfs(): Promise<StatfsOut> {
    // Riak has no useful free-space figure for one namespace: report the local disk.
    return statfsOf(await fsp.statfs(this.#o.source ?? this.#o.spool.directory));
  }

  /**
   * Called once Riak acknowledged an upload. In drain mode the local file the upload
   * superseded is deleted once Riak's copy, read back, matches the staged file, unless the
   * local file changed since the write began (then it is kept, like any local change the
   * mount did not make).
   */
  async afterUpload(upload: JournalEntry): Promise<void> {
    if (upload.unseen) this.#knowledge.forgetUnseen(upload.path); // Riak's own file was set aside.
    // Riak holds a new version now (what is read locally does not care).
    if (isMirror(upload)) {
      if (upload.mirror === "remove") this.#rememberInRiak(upload.path, false);
      if (this.#mode.reads !== "local") this.#uploadedTo(upload.path);
      if (upload.movesDirectory) this.#rememberInRiak(upload.path, true);
      if (upload.moves) {
        const { from: _from, ...moved } = upload.moves;
        this.#rememberInRiak(upload.path, true);
        this.#rememberFileSeen(upload.path, moved);
      }
      return;
    }
    this.#uploadedTo(upload.path);
    this.#rememberInRiak(upload.path, true);
    if (this.#stagesWrites()) {
      const { size, mtimeNs, mode, uid, gid, atimeNs } = upload;
      this.#rememberFileSeen(upload.path, { size, mtimeNs, mode, uid, gid, atimeNs });
      const session = this.#sessions.get(upload.path);
      if (session) session.inRiak = { size, mtimeNs };
      // Those journaled while this one was on its way go over it now: a removal of the name
      // during an outage removes this version, the mount's own, instead of setting it aside
      // (and sets aside one written elsewhere, where they knew of none). In memory only: after
      // a restart they go over the version journaled, and this one is known as the mount's
      // own only to the next upload, whose journal line the queue gave it (`ours`).
      for (const later of this.#o.uploads.pendingUploadsOf(upload.path)) {
        if (later.id > upload.id) {
          later.replaces = { size, mtimeNs };
          delete later.creates; // Riak holds a file under the name now: this one.
        }
      }
    }
    // Replayed after a restart, the upload alone remembers what it superseded.
    const before = this.#superseded.get(upload.path) ??
      (upload.supersedes && identityFromJournal(upload.supersedes));
    // A newer version still on its way handles it when it lands.
    const newest = this.#o.uploads.pendingFor(upload.path);
    if (!before || (newest !== undefined && newest.id !== upload.id)) return;
    this.#superseded.delete(upload.path);
    const counters = this.#o.metrics.value.localDeletion;
    const file = await this.#localPath(upload.path);
    if (!sameIdentity(await currentIdentity(file), before)) {
      if (await currentIdentity(file) !== undefined) {
        counters.kept++;
        this.#o.keptCopies?.kept(upload.path, "local-changed");
        this.#logger.info("local copy kept: it changed outside the mount", { path: upload.path });
      }
      return;
    }
    // The older local copy goes only once Riak's copy, read back, is the bytes uploaded.
    const [stored, staged] = await Promise.all([
      hashStoredFile(this.#o.store, Buffer.from(upload.path)),
      hashBytes(createReadStream(this.#o.spool.pathOf(upload.staged))),
    ]);
    if (stored.sha256 !== staged.sha256) {
      counters.kept++;
      this.#o.keptCopies?.kept(upload.path, "riak-differs");
      this.#logger.warn("local copy kept: Riak's copy read back is not what was uploaded", {
        path: upload.path,
      });
      return;
    }
    if (!sameIdentity(await currentIdentity(file), before)) return;
    // By identity: an atomic save outside the mount landing now must not go with it.
    const deletion = await deleteByIdentity(file, before, {
      beforeStep: this.#o.supersededDeletionSteps,
    });
    if (deletion.deleted) {
      counters.deleted++;
      this.#o.keptCopies?.gone(upload.path);
    } else if (await currentIdentity(file) !== undefined) {
      counters.kept++;
      this.#o.keptCopies?.kept(upload.path, "local-changed");
      this.#logger.info("local copy kept: it changed outside the mount", { path: upload.path });
    }
  }

  /**
   * Riak holds `version` of the local file at `path`: opens of that version are read by the
   * FUSE reader threads, with no copy-on-read to watch for.
   */
  mirrored(path: string, version: MirroredVersion): void {
    // A copy that read the file before its unlink (or rename) landed after it: the name is
    // gone, and what it held is not worth remembering.
    if (this.#o.uploads.pendingMirrorsOf(path).at(-1)?.mirror === "remove") return;
    // Known to be in Riak: during an outage it is EIO, not absent, once the local copy went.
    this.#rememberInRiak(path, true);
    this.#noteCtime(path, version.ctimeNs);
    this.#knowledge.rememberMirrored(path, version);
  }

  /**
   * Called when a copy-on-read of `path` ended: Riak may hold it now, and the directories
   * above it that the copy made there.
   */
  afterCopy(path: string): void {
    this.#uploadedTo(path);
  }

  // ---- helpers: where a path lives ----

  /** See {@link Locator.locate}. */
  #locate(
    path: string,
    withContent = false,
    options: { pastSession?: boolean } = {},
  ): Promise<Located> {
    return this.#locator.locate(path, withContent, options);
  }

  /** See {@link Locator.exists}. */
  #exists(path: string, forNewFile = false): Promise<boolean> {
    return this.#locator.exists(path, forNewFile);
  }

  /** See {@link Locator.refuseExisting}. */
  #refuseExisting(path: string): Promise<void> {
    return this.#locator.refuseExisting(path);
  }

  /** See {@link Locator.attrOf}. */
  #attrOf(path: string, located: Located): Promise<Attr> {
    return this.#locator.attrOf(path, located);
  }

  /** See {@link ShownToKernel.noteCtime}. */
  #noteCtime(path: string, ctimeNs: bigint): void {
    this.#shown.noteCtime(path, ctimeNs);
  }

  #entry(nodeid: number, attr: Attr): Entry {
    // The node's number, which a rename in the meantime may have kept from `attr`'s path.
    const ino = this.#nodes.inoOfNode(nodeid) ?? attr.ino;
    return {
      nodeid,
      entryTimeout: this.#entryTimeout,
      attrTimeout: this.#attrTimeout,
      attr: { ...attr, ino },
    };
  }

  /** See {@link RiakCalls.stat}. */
  #riakStat(path: string, options?: RiakStatOptions): Promise<FileStat | undefined> {
    return this.#riakCalls.stat(path, options);
  }

  /** See {@link RiakCalls.run}. */
  #riak<T>(operation: string, request: () => Promise<T>): Promise<T> {
    return this.#riakCalls.run(operation, request);
  }

  /** See {@link UnionListing.entries}. */
  #listing(path: string): AsyncGenerator<Listed> {
    return this.#unionListing.entries(path);
  }

  /**
   * Whether the mount saw Riak hold `path` (a lookup of it during the outage answers from
   * what it saw, or fails with EIO): a name it never saw there looks absent, as in #locate.
   */
  #seenInRiak(path: string): boolean {
    return this.#knowledge.isKnownInRiak(path) ||
      this.#knowledge.riakDirectory(path) !== undefined ||
      this.#knowledge.cached(path)?.stat !== undefined ||
      (this.#stagesWrites() && this.#directoryMovedWhileAway(path) !== undefined) ||
      this.#knowledge.replayedDirectoryStat(path) !== undefined;
  }

  /** See {@link UnionListing.namesOnTheirWay}. */
  #namesOnTheirWay(path: string): Map<string, number> {
    return this.#unionListing.namesOnTheirWay(path);
  }

  /** Whether a copy-on-read moves a file from the source into Riak, deleting the local copy. */
  #copiesMoveFiles(): boolean {
    return copiesMoveFiles(this.#mode);
  }

  /** See {@link UnionListing.hasEntries}. */
  #hasEntries(path: string): Promise<boolean> {
    return this.#unionListing.hasEntries(path);
  }

  /**
   * Whether directory `path` lists nothing, for its rmdir or a rename over it. Where Riak's
   * listing is shown, orphan entries (see {@link emptiedOfOrphans}) go, if they are all it lists.
   */
  async #emptiedForRmdir(path: string): Promise<boolean> {
    if (this.#mode.listings === "local") return !await this.#hasEntries(path);
    return await emptiedOfOrphans(path, {
      listing: (directory) => this.#listing(directory),
      hasEntries: (directory) => this.#hasEntries(directory),
      exists: (entry) => this.#exists(entry),
      removeOrphanEntry: (entry) =>
        this.#riak(
          `remove orphan entry ${entry}`,
          () => removeOrphanEntrySaid(this.#o.store, entry, this.#logger),
        ),
      changed: (entry) => this.#changed(entry),
    });
  }

  // ---- helpers: opening ----

  /** `flags`: open(2)'s, for a local file opened for writing. */
  #open(handle: Handle, flags = 0): Opened {
    const fh = this.#handles.add(handle);
    if (handle.kind === "riak") {
      // Another descriptor still reads the version it opened (another host wrote the file
      // since): the pages it reads into the kernel's one cache of the file must neither mix
      // into this one's reads nor be kept for the opens after it.
      const { path, version: { version } } = handle;
      if (this.#handles.readsOtherVersion(path, version, (id) => this.#nodes.isDetached(id))) {
        this.#shown.forgetServed(path);
        return { fh, keepCache: false, directIo: true, noFlush: true };
      }
      const keepCache = this.#shown.servedKeepsCache(handle.path, handle.version.version);
      // flush commits write sessions only: a reading handle needs none.
      return { fh, keepCache, directIo: this.#o.directIo, noFlush: true };
    }
    // A local file is read and written by the FUSE reader threads on its descriptor, without
    // the event loop, unless copy-on-read must watch reads the threads cannot record.
    const served = handle.kind === "local" &&
      (handle.coverage === undefined || handle.reads !== undefined);
    return {
      fh,
      keepCache: false,
      // Nothing reads through a write-only handle: its writes skip the page cache (see
      // directWritesInvalidateCache), as in the passthrough.
      directIo: this.#o.directIo ||
        (WRITE_ONLY_DIRECT_IO && handle.kind === "local" && (flags & O_ACCMODE) === O_WRONLY),
      noFlush: handle.kind === "local",
      localFd: served ? handle.file.fd : undefined,
      readBlocks: served ? handle.reads : undefined,
    };
  }

  /** See {@link Locator.locateForReading}. */
  #locateForReading(
    path: string,
    withContent = true,
  ): Promise<{ located: Located; unstaged?: WriteSession }> {
    return this.#locator.locateForReading(path, withContent);
  }

  async #openForReading(path: string, located: Located): Promise<Opened> {
    switch (located.where) {
      case "open":
        located.session.refs++;
        return this.#open({ kind: "write", path, session: located.session });
      case "spool": {
        const file = await fsp.open(this.#o.spool.pathOf(located.upload.staged), "r");
        return this.#open({ kind: "local", path, file, size: Number(located.stats.size) });
      }
      case "riak": {
        if (located.stat.type === "directory") throw fail(Errno.EISDIR, `${path}: is a directory`);
        // Drain: a read of the whole file frees its local copy (#freeLocalCopy).
        const frees = this.#mode.copyOnRead && this.#copiesMoveFiles() && this.#usesLocal();
        // Reads follow the handle's path: a rename moves it along (#moveOpenFiles).
        const handle: RiakHandle = {
          kind: "riak",
          path,
          coverage: frees ? new ReadCoverage() : undefined,
          reads: frees && ReadBlocks.fits(located.stat.size)
            ? new ReadBlocks(located.stat.size)
            : undefined,
          stat: located.stat,
          version: versionOf(path, located.stat),
          pattern: new ReadPattern(),
          sequential: new SequentialReader(
            (at) => this.#o.store.readRange(handle.path, at)[Symbol.asyncIterator](),
            {
              aheadBytes: this.#o.cache.readAheadBlocks * this.#o.cache.blockSize,
              run: (step) => this.#riak(`read ${handle.path}`, step),
              onPulledAhead: () => this.#o.metrics.value.cache.readAheadChunks++,
              // The stream's chunks go nowhere else (not into the chunk cache): once the
              // replies made from them are written, their memory is freed without a GC.
              release: (bytes) => this.#o.store.releaseRead(bytes),
            },
          ),
        };
        return this.#open(handle);
      }
      case "local": {
        const local = await this.#localPath(path);
        const file = located.stats.isFile()
          ? await openSourceFile(local, O_RDONLY | O_NOFOLLOW, 0, this.#sourcePace)
          : await fsp.open(local, O_RDONLY | O_NOFOLLOW);
        const size = Number(located.stats.size);
        // Written through the mount and not in Riak yet: its mirror copies it, not a read.
        // Served during an outage: Riak's copy, which could not be compared, may be newer.
        const watched = this.#mode.copyOnRead && located.stats.isFile() && !located.unverified &&
          !this.#knowledge.holdsMirrored(path, located.stats) && !this.#localIsNewest(path);
        return this.#open({
          kind: "local",
          path,
          file,
          size,
          coverage: watched ? new ReadCoverage() : undefined,
          reads: watched && ReadBlocks.fits(size) ? new ReadBlocks(size) : undefined,
        });
      }
    }
  }

  /**
   * The write session of `path`: the open one (joined), or a new one, emptied when `truncate`,
   * else with the current content staged once something needs it ({@link WriteSession}'s
   * `unstaged`). At most one per path: an open arriving while another starts one waits for it
   * and joins, and the copy of the content runs in the session's queue, so nobody writes into
   * a half-copied file.
   */
  async #session(path: string, truncate: boolean): Promise<WriteSession> {
    for (;;) {
      const starting = this.#sessions.startingAt(path);
      if (starting) {
        await starting.catch(() => {});
        continue;
      }
      const open = this.#sessions.get(path);
      if (open) {
        open.refs++;
        if (truncate) {
          try {
            await this.#inSession(open, async () => {
              await this.#emptied(open);
              open.dirty = true;
            });
          } catch (error) {
            await this.#leave(open);
            throw error;
          }
        }
        return open;
      }
      return await this.#starting(path, () => this.#stagedSession(path, truncate));
    }
  }

  /** See {@link SessionTable.starting}. */
  #starting(path: string, start: () => Promise<WriteSession>): Promise<WriteSession> {
    return this.#sessions.starting(path, start, () => {
      this.#withdraw(path); // Its attributes are the session's now.
    });
  }

  async #stagedSession(path: string, truncate: boolean): Promise<WriteSession> {
    const located = await this.#locate(path, !truncate, { pastSession: true });
    if (located.where === "riak" && located.stat.type !== "file") {
      throw fail(Errno.EISDIR, `${path}: not a regular file`);
    }
    if (located.where === "riak" && located.stale) {
      // Riak may hold a newer copy than the one last seen: not written over unseen.
      throw fail(Errno.EIO, `${path}: Riak holds this file and is unreachable`);
    }
    // Emptied at once, the file's bytes move into the session now; else only once needed.
    const session = await this.#newSession(path, attributesOf(located), {
      contentMoves: truncate,
    });
    // Riak's copy hides a local file it is not a copy of (one that differs, left by another
    // tool): the upload of this session replaces Riak's copy, never that local file, which
    // stays for verify and the pre-warm to report instead of being deleted unseen.
    const local = session.supersedes;
    if (
      local && located.where === "riak" &&
      !(located.stat.managed && BigInt(located.stat.size) === local.size &&
        located.stat.mtimeNs === local.mtimeNs)
    ) session.supersedes = undefined;
    if (located.where === "riak" && !located.stale) {
      session.inRiak = { size: located.stat.size, mtimeNs: String(located.stat.mtimeNs) };
    }
    if (
      located.where === "riak" || (located.where === "spool" && located.upload.attributesAsSeen)
    ) {
      session.attributesAsSeen = true;
    }
    // Until the pending upload lands, Riak holds what it goes over.
    if (located.where === "spool") session.inRiak = heldBefore(located.upload);
    if (truncate) return session;
    session.unstaged = { size: sizeWhereLocated(located) };
    // Opened, not yet written: its times are the file's (touch -a opens it for writing).
    session.mtimeNs = timesOf(located)?.mtimeNs;
    session.dirty = false;
    return session;
  }

  /**
   * A session of `path` with an empty staged file. `contentMoves`: the file's bytes are the
   * session's from now on (a new or emptied file), not only once staged.
   */
  async #newSession(
    path: string,
    attributes: { mode: number; uid: number; gid: number; atimeNs?: bigint },
    { contentMoves }: { contentMoves: boolean },
  ): Promise<WriteSession> {
    const staged = await this.#o.spool.create();
    if (contentMoves) this.#contentMoving(path);
    const session: WriteSession = {
      path,
      staged: staged.name,
      handle: staged.handle,
      refs: 1,
      dirty: true,
      committed: false,
      queue: Promise.resolve(),
      detached: false,
      ...attributes,
    };
    try {
      if (this.#mode.writes === "riak" && this.#o.source !== undefined) {
        session.supersedes = await currentIdentity(await this.#localPath(path));
      }
    } catch (error) {
      await staged.handle.close();
      await this.#o.spool.remove(staged.name);
      throw error;
    }
    return session;
  }

  /** See {@link SessionTable.inSession}. */
  #inSession<T>(session: WriteSession, operation: () => Promise<T>): Promise<T> {
    return this.#sessions.inSession(session, operation);
  }

  /**
   * One open of `session` ends: the last one commits what it holds (unless detached) and
   * closes it; a staged file never handed to the queue is scrap.
   */
  async #leave(session: WriteSession): Promise<void> {
    if (--session.refs > 0) return;
    try {
      await this.#commit(session); // After whatever is still queued on it.
    } finally {
      // Let go in its own queue: a chmod or utimens queued before is in the last commit, one
      // after finds it closed. Until then the name keeps it: an open joins it, not the bytes
      // of a commit before.
      await this.#inSession(session, async () => {
        if (session.refs > 0) return; // Joined again while it committed: open for the newcomer.
        try {
          if (session.dirty && !session.detached) await this.#commitNow(session);
        } finally {
          if (session.refs === 0) {
            if (session.heldAt !== undefined) this.#o.uploads.letGo(session.heldAt);
            session.heldAt = undefined;
            this.#sessions.close(session);
            await session.handle.close();
            if (!session.committed) await this.#o.spool.remove(session.staged);
          }
        }
      });
    }
  }

  /**
   * Copies the current content of `path` into a staged file; `upTo`: only its first bytes
   * (a truncate keeps no more), read from Riak as a range.
   */
  async #stageContent(
    path: string,
    located: Located,
    into: SourceFile,
    upTo = Infinity,
  ): Promise<void> {
    if (located.where === "riak") {
      if (located.stat.type !== "file") throw fail(Errno.EISDIR, `${path}: not a regular file`);
      const length = Math.min(located.stat.size, upTo);
      // A small file's bytes usually came with its stat: no second get.
      const cached = this.#o.cache.peek(versionOf(path, located.stat), 0, located.stat.size);
      if (cached) {
        await writeWhole(into, cached, 0, Math.min(cached.length, length), 0);
        return;
      }
      let position = 0;
      const pieces = this.#o.store.readRange(path, 0, length)[Symbol.asyncIterator]();
      for (;;) {
        const next = await this.#riak(`read ${path}`, () => pieces.next());
        if (next.done) break;
        await writeWhole(into, next.value, 0, next.value.length, position);
        position += next.value.length;
        this.#o.store.releaseRead(next.value);
      }
      return;
    }
    const from = located.where === "local"
      ? await this.#localPath(path)
      : located.where === "spool"
      ? this.#o.spool.pathOf(located.upload.staged)
      : undefined;
    if (from === undefined) return;
    const source = await fsp.open(from, O_RDONLY | O_NOFOLLOW);
    try {
      await copyBetween(source, into, upTo);
    } finally {
      await source.close();
    }
  }

  /**
   * The session's staged file, ready to be changed: holding the file's bytes (staged now if
   * they were not yet), and its own (a committed one belongs to the upload queue: a fresh
   * copy). Only inside {@link #inSession}.
   */
  async #writable(session: WriteSession): Promise<WriteSession> {
    if (session.unstaged) await this.#stageNow(session);
    else if (session.committed) await this.#restage(session);
    return session;
  }

  /**
   * Copies the file's bytes into the session's empty staged file from where they are now:
   * since the open an upload may have taken them from the spool into Riak, or drain a local
   * copy. `upTo`: only the first bytes, for a truncate that keeps no more (the staged file
   * is then the file cut there). Only inside {@link #inSession}, or holding the session.
   */
  async #stageNow(session: WriteSession, upTo = Infinity): Promise<void> {
    const path = session.path;
    // Its name went before they could be staged (see #keepBytesOf): what holds it now is
    // another file, or none.
    if (session.detached) throw fail(Errno.EIO, `${path}: its bytes went with its name`);
    for (let attempt = 0;; attempt++) {
      const located = await this.#locate(path, true, { pastSession: true }).catch((error) => {
        throw isNotFound(error) ? bytesGone(path) : error;
      });
      try {
        await this.#stageContent(path, located, session.handle, upTo);
        break;
      } catch (error) {
        // Cut short (the disk full, Riak away): the part copied gives its room back, and the
        // next need tries again.
        await session.handle.truncate(0);
        // Riak's object went after the look (or the look was a cached answer): asked afresh.
        if (located.where === "riak" && isNotFound(error)) {
          if (attempt > 0) throw bytesGone(path);
          this.#knowledge.uncache(path);
          continue;
        }
        // Gone meanwhile: the pending upload finished and took its staged file along, or (in
        // a mode that reads Riak) the local copy moved into Riak (drain). Look again.
        const moved = located.where === "spool" ||
          (located.where === "local" && this.#mode.reads !== "local");
        if (!moved || attempt > 0 || !isMissing(error)) throw error;
      }
    }
    session.unstaged = undefined;
    this.#contentMoving(path);
  }

  /**
   * The session's file becomes empty: none of its bytes is copied for that, neither staged
   * from where they are nor out of a committed staged file. Only inside {@link #inSession}.
   */
  async #emptied(session: WriteSession): Promise<void> {
    if (session.committed) await this.#restage(session, { upTo: 0 });
    else await session.handle.truncate(0);
    if (session.unstaged) {
      session.unstaged = undefined;
      // A detached one's name holds another file now, whose readers look where they did.
      if (!session.detached) this.#contentMoving(session.path);
    }
  }

  /**
   * truncate(2) of the session's file. Of the file's bytes it copies only those kept: `truncate
   * -s` of a large file to a smaller size reads no more of Riak, and needs no more room.
   * Only inside {@link #inSession}.
   */
  async #truncateSession(session: WriteSession, size: number): Promise<void> {
    if (size === 0) return await this.#emptied(session);
    if (session.unstaged) await this.#stageNow(session, size);
    else if (session.committed) await this.#restage(session, { upTo: size });
    await session.handle.truncate(size);
  }

  /**
   * Before `session`'s name goes (unlinked, renamed over), its bytes are staged for its open
   * handles, as a removed file stays readable on a local disk. Where they cannot be (the
   * disk full, Riak away) the removal goes on all the same; the handles' reads and writes
   * answer EIO then (a truncate to 0 still works). Only holding the session.
   */
  async #keepBytesOf(session: WriteSession): Promise<void> {
    if (!session.unstaged) return;
    try {
      await this.#stageNow(session);
    } catch (error) {
      this.#logger.warn("a file open for writing lost its bytes with its name", {
        path: session.path,
        error: (error as Error).message,
      });
    }
  }

  /**
   * Moves what the session holds into a fresh staged file of its own; `upTo`: only its first
   * bytes (the file is being cut there; 0: emptied).
   */
  async #restage(
    session: WriteSession,
    { upTo = Infinity }: { upTo?: number } = {},
  ): Promise<void> {
    const fresh = await this.#o.spool.create();
    try {
      if (upTo > 0) await copyBetween(session.handle, fresh.handle, upTo);
    } catch (error) {
      // Cut short (the disk full): the session keeps what it holds, and the copy goes, or it
      // would take its room (and a descriptor) until the mount ends, then be set aside for
      // good as a write cut off.
      await fresh.handle.close();
      await this.#o.spool.remove(fresh.name);
      throw error;
    }
    await session.handle.close();
    session.handle = fresh.handle;
    session.staged = fresh.name;
    session.committed = false;
  }

  /**
   * A staged file removed from the spool while open (the spool deleted while mounted, which
   * {@link Spool.ensure} makes again) still holds the session's bytes through its handle:
   * they are staged again, since a journal entry naming the removed file would upload
   * nothing, and close() would have acknowledged a lost write.
   */
  async #restagedIfRemoved(session: WriteSession): Promise<void> {
    this.#o.spool.ensure();
    if ((await session.handle.stat()).nlink > 0) return;
    this.#logger.warn("a file being written lost its staged copy from the spool; staged again", {
      path: session.path,
    });
    await this.#restage(session);
  }

  /**
   * Makes what the session holds durable: the staged file is synced and journaled for
   * upload. After this, close() may return: a crash from here on replays the upload.
   */
  async #commit(session: WriteSession, { atFlush = false } = {}): Promise<void> {
    // After the writes queued before it, alone (flush, fsync and release may overlap).
    await this.#inSession(session, async () => {
      if (session.dirty && !session.detached) await this.#commitNow(session, { atFlush });
    });
  }

  /**
   * `atFlush`: a FLUSH, its handle still open. The first commit of a session that holds an
   * empty file then is journaled (close() acknowledged it) but held back: a shell's redirect
   * (`cmd > file`) opens with O_TRUNC and closes its first descriptor before the command
   * writes, and the write's commit supersedes the held upload before it starts (one put, no
   * window in which Riak holds the file empty, no empty version landing where Riak then
   * refuses the real one). Only an empty first version: a file that is written while open
   * for long still reaches Riak at each FLUSH, and the RELEASE (or anything waiting for the
   * path's uploads, or a drain) lets a held one go; a crash replays it from the journal.
   */
  async #commitNow(session: WriteSession, { atFlush = false } = {}): Promise<void> {
    const upload = await this.#uploadOf(
      session,
      session.path,
      session.supersedes,
      session.inRiak,
    );
    if (session.supersedes) this.#superseded.set(session.path, session.supersedes);
    const held = atFlush && !session.committed && upload.size === 0;
    await this.#o.uploads.submit(upload, { held });
    // After the newer upload's submission, which supersedes a held one not started.
    if (session.heldAt !== undefined) this.#o.uploads.letGo(session.heldAt);
    session.heldAt = held ? session.path : undefined;
    // Only once journaled: a commit that failed leaves the session dirty, to commit again.
    session.dirty = false;
    session.committed = true;
    this.#o.cache.invalidate(session.path);
    this.#changed(session.path);
    this.#shown.forgetServed(session.path);
  }

  /**
   * The upload of what `session` holds now to `path`, ready to journal: its staged file
   * synced, which the upload owns once journaled (the session is `committed` then). Only
   * inside {@link #inSession}, or holding the session.
   */
  async #uploadOf(
    session: WriteSession,
    path: string,
    supersedes: FileIdentity | undefined,
    replaces: HeldInRiak | undefined,
  ): Promise<NewUpload> {
    // Every submission owns its staged file: the queue deletes it once uploaded or replaced.
    await this.#writable(session);
    await this.#restagedIfRemoved(session);
    await session.handle.sync();
    await this.#o.spool.sync(); // The staged file's name, not only its bytes.
    const stats = await session.handle.stat({ bigint: true });
    const mtimeNs = session.mtimeNs ?? stats.mtimeNs;
    return {
      path,
      staged: session.staged,
      mode: session.mode,
      uid: session.uid,
      gid: session.gid,
      ...(session.attributesAsSeen ? { attributesAsSeen: true } : {}),
      mtimeNs: mtimeNs.toString(),
      ...(session.atimeNs === undefined ? {} : { atimeNs: session.atimeNs.toString() }),
      size: Number(stats.size),
      ...this.#unseenMark(path),
      ...this.#awayMark(),
      ...(supersedes ? { supersedes: journaledIdentity(supersedes) } : {}),
      ...goingOver(replaces),
    };
  }

  /** truncate(2) where the local file is the truth (the modes that stage no writes). */
  async #truncate(path: string, size: number, handle: Handle | undefined): Promise<void> {
    this.#contentMoving(path, { riakOnly: true });
    // A handle open for writing is mirrored when released; else the truncate is journaled
    // before it happens and mirrored after.
    if (handle?.kind === "local" && (handle.mirror || !this.#mirrorsWrites())) {
      await handle.file.truncate(size);
      return;
    }
    await this.#oneWriteOpenAtATime(path, async () => {
      if (!this.#mirrorsWrites()) return await this.#truncateLocal(path, size);
      const emptied = await this.#fetchIntoSource(path, size === 0) && size === 0;
      const reserved = await this.#journaledOrUnfetched(
        path,
        emptied,
        () =>
          this.#o.uploads.reserve({
            path,
            mirror: "copy",
            ...this.#unseenMark(path),
          }),
      );
      try {
        await this.#truncateLocal(path, size);
      } finally {
        this.#o.uploads.start(reserved);
      }
    });
  }

  /** truncate(2) of the file `session` holds, in its queue: a write. */
  async #truncateInSession(session: WriteSession, size: number): Promise<void> {
    await this.#inSession(session, async () => {
      await this.#truncateSession(session, size);
      session.dirty = true;
      session.mtimeNs = undefined; // As a write.
    });
  }

  // ---- helpers: Riak side ----

  /** Creates `path` and its missing parents in Riak, copying local attributes when known. */
  async #ensureRiakDirectory(path: string): Promise<void> {
    if (path === "/") return;
    const remote = await this.#riakStat(path);
    if (remote) {
      if (remote.type !== "directory") throw fail(Errno.ENOTDIR, `${path}: not a directory`);
      return;
    }
    await this.#ensureRiakDirectory(parentOf(path));
    const local = this.#o.source === undefined ? undefined : await this.#lstatLocal(path);
    const attributes = local
      ? { mode: Number(local.mode) & 0o7777, uid: Number(local.uid), gid: Number(local.gid) }
      : {};
    await this.#riak(`mkdir ${path}`, () => this.#o.store.mkdir(path, attributes)).catch(
      (error) => {
        if (!(error instanceof StoreError && error.code === "EEXIST")) throw error;
      },
    );
    this.#knowledge.uncache(path);
    this.#withdraw(path); // Riak's attributes of the directory count from now on.
  }

  /**
   * Whether `path`, which removing from the source failed with `error`, is a file only Riak
   * holds (its removal then goes to Riak alone).
   */
  async #onlyInRiak(path: string, error: unknown): Promise<boolean> {
    if (!isMissing(error) || this.#mode.reads === "local") return false;
    const located = await this.#locate(path).catch((reason) => {
      if (isOutageError(reason)) throw reason; // EIO: Riak may hold it.
      return undefined;
    });
    return located?.where === "riak";
  }

  /**
   * Removes Riak's directory at `path` if it is one and empty; one that still holds entries
   * (only Riak's, or removals still queued) stays, as its queued removal would leave it.
   */
  async #removeEmptyDirectoryFromRiak(path: string): Promise<void> {
    const remote = await this.#riak(`remove ${path}`, () => this.#o.store.tryStat(path));
    if (remote?.type !== "directory") return;
    await this.#removeFromRiak(path).catch((error) => {
      if (!(error instanceof StoreError && error.code === "ENOTEMPTY")) throw error;
    });
  }

  /** See {@link RiakCalls.logLateWriteWait}. */
  #logLateWriteWait(change: string, path: string): void {
    this.#riakCalls.logLateWriteWait(change, path);
  }

  /** Removes `path` from Riak; false when it was not there. */
  async #removeFromRiak(path: string): Promise<boolean> {
    this.#logLateWriteWait("removal", path);
    try {
      await this.#riak(`remove ${path}`, () => this.#o.store.remove(path));
      this.#changed(path);
      return true;
    } catch (error) {
      if (error instanceof StoreError && error.code === "ENOENT") return false;
      throw error;
    }
  }

  /** See {@link RiakCalls.holdingCopies}. */
  #holdingCopies<T>(
    operation: string,
    paths: string[],
    body: () => Promise<T>,
    options: { requeued?: boolean } = {},
  ): Promise<T> {
    return this.#riakCalls.holdingCopies(operation, paths, body, options);
  }

  /** See {@link RiakCalls.withinDeadline}. */
  #withinRiakDeadline<T>(operation: string, waiting: Promise<T>): Promise<T> {
    return this.#riakCalls.withinDeadline(operation, waiting);
  }

  /** See {@link RiakCalls.settled}. */
  #settled(path: string, ctx?: RequestContext): Promise<void> {
    return this.#riakCalls.settled(path, ctx);
  }

  /** See {@link RiakCalls.settledBelow}. */
  #settledBelow(path: string, ctx?: RequestContext): Promise<void> {
    return this.#riakCalls.settledBelow(path, ctx);
  }

  /** See {@link RiakCalls.uploaded}. */
  #uploaded(operation: string, wait: () => Promise<void>, ctx?: RequestContext): Promise<void> {
    return this.#riakCalls.uploaded(operation, wait, ctx);
  }

  /** See {@link RiakKnowledge.rememberInRiak}. */
  #rememberInRiak(path: string, present: boolean): void {
    this.#knowledge.rememberInRiak(path, present);
  }

  /** See {@link RiakKnowledge.rememberFileSeen}. */
  #rememberFileSeen(path: string, seen: FileStat | SeenFile | undefined): void {
    this.#knowledge.rememberFileSeen(path, seen);
  }

  /**
   * An upload (or a copy-on-read) to `path` landed: what is remembered of it is old news,
   * and so is what is remembered of the directories above it unless it is a directory (the
   * store made the missing ones in Riak; a cached "absent" would hide them, and a rename of
   * one would then leave Riak's copy behind). A directory's stat stays: the next create in
   * it would ask Riak for it again (its group), one round trip per file. A directory not
   * known to Riak is no longer the reader threads' either: they would go on answering the
   * source's (whose mtime drain's removal of the local copy then moves) where the overlay
   * now answers Riak's.
   */
  #uploadedTo(path: string): void {
    this.#changed(path);
    const newToRiak = this.#o.uploads.newToRiak;
    for (let at = parentOf(path); at !== "/"; at = parentOf(at)) {
      // Maybe made in Riak just now: a listing of its parent whose shards were read before
      // must not remember it absent (RiakKnowledge.rememberAbsent).
      newToRiak.changed(at);
      if (this.#knowledge.cached(at)?.stat?.type === "directory") continue;
      this.#knowledge.uncache(at);
      this.#withdraw(at);
    }
  }

  /**
   * The entries of `directories` changed through the mount. Where Riak's attributes of a
   * directory are what the mount shows, its mtime moves, as on a local disk, and is written
   * to Riak shortly after ({@link DirectoryTimes}); elsewhere the source's directory moved.
   */
  #entriesChanged(...directories: string[]): void {
    if (this.#mode.reads === "local" || !this.#writesRiak()) return;
    const nowNs = BigInt(this.#now()) * 1_000_000n;
    for (const directory of directories) {
      // The root of a mount with a source is the source directory itself (#locate).
      if (directory === "/" && this.#usesLocal()) continue;
      this.#directoryTimes.changed(directory, nowNs);
    }
  }

  /** Writes a directory mtime {@link DirectoryTimes} gathered, unless Riak's is later. */
  async #writeDirectoryTime(path: string, mtimeNs: bigint): Promise<void> {
    this.#knowledge.uncache(path);
    try {
      if (this.#mirrorsWrites() && (await this.#lstatLocal(path))?.isDirectory()) {
        // Through the journal, after the changes of its attributes journaled before (a utimes
        // of it, say). The time shown, not the source directory's: a change of Riak's
        // entries alone (a file only Riak held, removed) does not move that one.
        this.#o.uploads.start(
          await this.#o.uploads.reserve({
            path,
            mirror: "attributes",
            set: { mtimeNs: String(mtimeNs) },
          }),
        );
        return;
      }
      const stat = await this.#riakStat(path);
      if (stat?.type !== "directory" || stat.mtimeNs >= mtimeNs) return;
      // A directory Riak keeps no attributes for (the root, a riak-fuse folder) keeps the
      // ones shown for it.
      let attributes: { mode?: number; uid?: number; gid?: number; mtimeNs: bigint } = { mtimeNs };
      if (!stat.managed) {
        const { mode, uid, gid } = await this.#unattributedDirectory(path, stat);
        attributes = { mode, uid, gid, mtimeNs };
      }
      await this.#riak(`setattr ${path}`, () => this.#o.store.setAttributes(path, attributes));
    } catch (error) {
      this.#logger.debug("directory mtime not written to Riak", { path, error: String(error) });
    } finally {
      this.#knowledge.uncache(path);
    }
  }

  /**
   * Drops what this mount remembers of Riak's state of `path` and everything below it,
   * and what the reader threads answer for them.
   */
  #changed(path: string): void {
    this.#o.uploads.newToRiak.changed(path);
    this.#knowledge.changed(path);
    this.#withdraw(path);
  }

  // ---- helpers: the FUSE reader threads ----

  /**
   * Lets the reader threads answer GETATTR of `path` (node `nodeid`, just found local with
   * `stats`) with lstat(2) while that is provably what {@link getattr} answers: no write
   * session and no pending upload of it (checked now, synchronously; both withdraw it
   * when they begin), and in modes that read Riak first, Riak's absence cached (the
   * threads stop answering when that cache entry expires, and every change this mount
   * makes to Riak's state withdraws it through #changed). See {@link ReaderOffers.offer}.
   */
  #offerToReaders(path: string, nodeid: number, stats: BigIntStats): void {
    if (!this.#offers.attached) return;
    if (this.#sessions.has(path)) return;
    if (this.#writesRiak() && this.#o.uploads.pendingFor(path)) return;
    // The threads answer lstat(2)'s ctime, never the later one #attrOf may show.
    const shownCtimeNs = this.#shown.latestCtime(path);
    if (shownCtimeNs !== undefined && shownCtimeNs > stats.ctimeNs) return;
    let expiresAt: number | undefined;
    if (this.#mode.reads !== "local") {
      const cached = this.#knowledge.cached(path);
      const now = this.#now();
      if (cached === undefined || cached.stat !== undefined || cached.expires <= now) return;
      expiresAt = Date.now() + (cached.expires - now); // The threads' clock is Date.now.
    }
    this.#offers.offer(path, nodeid, stats, expiresAt);
  }

  /** See {@link ReaderOffers.withdraw}. */
  #withdraw(path: string): void {
    this.#offers.withdraw(path);
  }

  #forgetPath(path: string): void {
    this.#changed(path);
    this.#knowledge.forget(path);
    // What was remembered of the removed file: a file made there later is another one (and
    // a mount creating and removing fresh names would fill these tables with dead ones).
    this.#shown.forgetCtime(path);
    this.#nodes.unbind(path);
    this.#o.cache.invalidate(path);
    this.#shown.forgetServed(path);
  }

  // ---- helpers: knobs ----

  #usesLocal(): boolean {
    return usesSource(this.#mode);
  }

  #usesRiak(): boolean {
    return modeUsesRiak(this.#mode);
  }

  #writesRiak(): boolean {
    return writesRiak(this.#mode);
  }

  /** File contents are written to a staged file in the spool, then uploaded. */
  #stagesWrites(): boolean {
    return stagesWrites(this.#mode);
  }

  /** File contents are written to the local file, then mirrored into Riak. */
  #mirrorsWrites(): boolean {
    return mirrorsWrites(this.#mode);
  }

  #addWriter(path: string): void {
    this.#localWriters.add(path);
  }

  #forgetWriter(path: string): void {
    this.#localWriters.forget(path);
  }

  /** See {@link LocalWriters.localIsNewest}. */
  #localIsNewest(path: string): boolean {
    return this.#localWriters.localIsNewest(path);
  }

  /** See {@link WhileAway.awayMark}. */
  #awayMark(): Pick<PendingUpload, "away"> {
    return this.#whileAway.awayMark();
  }

  /** See {@link RiakKnowledge.unseenMark}. */
  #unseenMark(path: string): { unseen?: true } {
    return this.#knowledge.unseenMark(path);
  }

  /** See {@link LocalWriters.oneWriteOpenAtATime}. */
  #oneWriteOpenAtATime<T>(path: string, body: () => Promise<T>): Promise<T> {
    return this.#localWriters.oneWriteOpenAtATime(path, body);
  }

  /**
   * `journal`s the change of `path` (its mirror's line) after {@link #fetchIntoSource} made
   * the source's file an empty one (`emptied`): where that fails (the journal's disk full),
   * the empty file goes again: nothing journaled it, and it is not the file's content (dated
   * before Riak's copy, a pre-warm keeps Riak's; see `#fetchNow`).
   */
  async #journaledOrUnfetched<T>(
    path: string,
    emptied: boolean,
    journal: () => Promise<T>,
  ): Promise<T> {
    try {
      return await journal();
    } catch (error) {
      if (emptied) await ignoreMissing(this.#unlinkLocal(path));
      throw error;
    }
  }

  /**
   * Before a write of `path` where the local file is written first (under
   * {@link oneWriteOpenAtATime}): when Riak holds a version the source does not, it is
   * fetched into the source (temp file + rename, with Riak's attributes; only its
   * attributes when `truncating`), and this resolves true. While Riak is unreachable it
   * fails with EIO (unless Riak's answer is still cached): Riak's copy may be the newer one.
   */
  async #fetchIntoSource(path: string, truncating: boolean): Promise<boolean> {
    if (this.#mode.reads === "local" || this.#localIsNewest(path)) return false;
    // A staged upload from a run in another mode holds the newest bytes: Riak first.
    if (this.#o.uploads.pendingFor(path)) await this.#settled(path);
    // While Riak is unreachable this fails (EIO): its copy may be newer than the local one.
    const stat = await this.#riakStat(path, { withContent: !truncating });
    if (stat === undefined) return false;
    if (stat.type !== "file") throw fail(Errno.EISDIR, `${path}: not a regular file`);
    const local = await this.#lstatLocal(path);
    // utimes(2) through a double sets a local mtime to within a microsecond of Riak's.
    const mtimeGap = local === undefined ? undefined : local.mtimeNs - stat.mtimeNs;
    if (local?.size === BigInt(stat.size) && mtimeGap! > -1000n && mtimeGap! < 1000n) {
      return false;
    }
    await this.#fetchNow(path, { where: "riak", stat }, truncating);
    await this.#o.fetchedIntoSource?.(path);
    return true;
  }

  async #fetchNow(
    path: string,
    located: Located & { where: "riak" },
    truncating: boolean,
  ): Promise<void> {
    const target = await this.#localPath(path);
    await this.#makeLocalParents(path);
    const id = randomBytes(6).toString("hex");
    const name = `${SOURCE_TEMPORARY_PREFIX}${id}`;
    const temporary = join(dirname(target), name);
    const { mode } = attributesOf(located);
    // Objects riakfs did not write carry no owner: the mount's default one, as stat shows.
    const uid = located.stat.managed ? located.stat.uid : this.#o.defaultUid ?? 0;
    const gid = located.stat.managed ? located.stat.gid : this.#o.defaultGid ?? 0;
    // Refused when a file has the name already: not this call's to remove.
    const out = await fsp.open(temporary, "wx", mode);
    let recorded = false;
    try {
      try {
        // A crash from here on leaves the file: the next mount knows it for its own.
        const { dev, ino } = await out.stat({ bigint: true });
        await this.#o.spool.recordPublish(id, childPath(parentOf(path), name), { dev, ino });
        recorded = true;
        if (!truncating) await this.#stageContent(path, located, out);
        // chown(2) clears the set-user-ID and set-group-ID bits: the mode goes on after it.
        await out.chown(uid, gid);
        await out.chmod(mode);
      } finally {
        await out.close();
      }
      // Riak's version identity (size, mtime): its mirror finds Riak holds it already. Emptied
      // for a truncation, it lands before the truncation is journaled: dated before Riak's
      // copy until then (the truncation's ftruncate dates it now), a crash in between leaves a
      // file any pre-warm takes for older than Riak's copy, not for a newer version to upload
      // over it. Journaling first would not do: a crash before the rename would then upload
      // the source's old bytes over Riak's copy.
      const mtimeNs = truncating
        ? located.stat.mtimeNs - TRUNCATED_PLACEHOLDER_AGE_NS
        : located.stat.mtimeNs;
      const time = utimesSeconds(mtimeNs);
      await fsp.utimes(temporary, time, time);
      await fsp.rename(temporary, target);
    } catch (error) {
      await ignoreMissing(fsp.unlink(temporary));
      throw error;
    } finally {
      // Left behind, the record names a path no file of its identity is at: dropped later.
      if (recorded) await this.#o.spool.forgetPublish(id).catch(() => {});
    }
    this.#withdraw(path);
  }

  /**
   * Removes the temporary files a crash left in the source (see
   * {@link SourceTree.removeLeftoverPublishes}). Run before serving; returns how many went.
   */
  removeLeftoverPublishes(): Promise<number> {
    return this.#sourceTree.removeLeftoverPublishes();
  }

  #writesLocal(): boolean {
    return writesLocal(this.#mode);
  }

  /** See {@link SourceTree.localPath}. */
  #localPath(path: string, options?: { directory?: boolean }): Promise<string> {
    return this.#sourceTree.localPath(path, options);
  }

  /** See {@link SourceTree.makeLocalParents}. */
  #makeLocalParents(path: string): Promise<void> {
    return this.#sourceTree.makeLocalParents(path);
  }

  /** See {@link SourceTree.lstat}. */
  #lstatLocal(path: string): Promise<BigIntStats | undefined> {
    return this.#sourceTree.lstat(path);
  }

  /** See {@link Locator.unattributedDirectory}. */
  #unattributedDirectory(path: string, remote: FileStat): Promise<FileStat> {
    return this.#locator.unattributedDirectory(path, remote);
  }

  /** See {@link SourceTree.lstatAt}. */
  #lstatAt(local: string): Promise<BigIntStats | undefined> {
    return this.#sourceTree.lstatAt(local);
  }

  /** See {@link SourceTree.unlink}. */
  #unlinkLocal(path: string): Promise<void> {
    return this.#sourceTree.unlink(path);
  }
}

/**
 * Whether `change` went to Riak's file at `version`: its stat before was of that version,
 * and the file it changed held the same bytes (no other written between the two).
 */
function changedAt(change: RiakChange, version: RiakVersion): boolean {
  const { before, after } = change;
  return before.type === "file" && before.size === version.size &&
    String(before.mtimeNs) === version.mtimeNs && after.sha256 === before.sha256;
}

/** The {@link RiakVersion} of Riak's file `stat`. */
function versionOfStat(stat: FileStat): RiakVersion {
  return { size: stat.size, mtimeNs: String(stat.mtimeNs) };
}

/**
 * The error of a write session's first need of its file's bytes (a read, a write, a truncate
 * to a size > 0) once nothing holds them any more: another host removed or renamed the file
 * after the open, before any byte was copied. ESTALE, as NFS answers a descriptor whose file
 * another client removed: the version opened is nowhere, and writing into nothing would put
 * back a file of zeros up to the write's offset (an append's is the old size).
 */
function bytesGone(path: string): FuseError {
  return fail(
    Errno.ESTALE,
    `${path}: removed or renamed by another host before its bytes were copied`,
  );
}
