/**
 * The ways a file moves into Riak from the mount: the upload of a staged file (the write
 * path of modes that write Riak first, driven by the journal), the mirror of a local file
 * written through the mount (the write path of modes whose local file is the truth, also
 * journaled), and the copy of a local file an application read completely (copy-on-read),
 * followed, when the mode says so, by the verified deletion of the local copy under
 * src/migration's rule. All use the store's `writeFile`; none knows about queues.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { type BigIntStats, createReadStream } from "node:fs";
import { readlink } from "node:fs/promises";
import {
  identityOf,
  lstatIfExists,
  lstatIfExistsPaced,
  storedAttributes,
} from "../migration/file_identity.ts";
import {
  changedTooRecently,
  hashBytes,
  isFileChanged,
  readUnchanged,
  waitOutRacyWindow,
} from "../migration/local_file.ts";
import type { MigrationStore } from "../migration/stored_file.ts";
import type { FileStat, Store, WriteOptions } from "../store/store.ts";
import {
  type ActivityCheck,
  deleteIfVerified,
  type DeleteOutcome,
} from "../migration/verified_delete.ts";
import type { KeptCopyRecorder } from "../migration/kept_copies.ts";
import { normalizePath } from "../store/path.ts";
import type { CopyKind, FileCopier } from "./copy_on_read.ts";
import { localPathBeneath, OutsideSourceError } from "./local_path.ts";
import type { RiakHealth } from "./health.ts";
import { heldBefore, type PendingMirror, type PendingUpload, type RiakVersion } from "./journal.ts";
import type { Logger } from "./log.ts";
import { SILENT_LOGGER } from "./log.ts";
import type { MountMetrics } from "./metrics.ts";
import type { AfterTransfer } from "./modes.ts";
import { type Mirrorer, NotYetError, type Uploader, UploadWithheldError } from "./upload_queue.ts";
import { AlreadyExistsError, NewerVersionError, StoreError } from "../store/errors.ts";
import { parentOf } from "./node_table.ts";
import { emptiedOfOrphans, removeOrphanEntrySaid } from "./orphan_entries.ts";
import type { BlockingWhileFast } from "../util/blocking_while_fast.ts";

/**
 * An {@link Uploader} that puts a staged file into Riak with the journaled attributes.
 * Resolves once Riak acknowledged every chunk and the manifest (the store's w/dw).
 */
export function stagedFileUploader(
  store: MigrationStore & Pick<Store, "namespace" | "rename">,
  health?: RiakHealth,
  logger: Logger = SILENT_LOGGER,
  source?: string,
): Uploader {
  const write = async (
    upload: PendingUpload,
    stagedPath: string,
    signal: AbortSignal,
    progress?: () => void,
  ) => {
    /** What the look below found in Riak; undefined until it looked. */
    let previous: FileStat | null | undefined;
    try {
      signal.throwIfAborted();
      if (upload.unseen) {
        await setAsideUnseen(
          store,
          upload.path,
          () => sha256OfEntry(stagedPath),
          logger,
          upload.ours,
        );
      }
      // A small file's put carries its bytes, and without a stat the store puts with
      // if_none_match, which an overwrite would answer only after the bytes were sent: look
      // first. A chunked file's conditional put is its small manifest, so no look is needed.
      previous = upload.size <= store.namespace.chunkSize
        ? (await store.tryStat(upload.path, { fileOnly: true })) ?? null
        : undefined;
      // Found here by the look, or by the store's put where it made none: another host's file
      // written meanwhile is set aside, not overwritten, where the mount knew what Riak held.
      const setAside = setAsideUnexpected(store, upload, logger);
      if (previous && await setAside?.(previous)) previous = null;
      await store.writeFile(upload.path, { file: stagedPath }, {
        mode: upload.mode,
        uid: upload.uid,
        gid: upload.gid,
        keepFoundAttributes: upload.attributesAsSeen,
        mtimeNs: BigInt(upload.mtimeNs),
        ...(upload.atimeNs === undefined ? {} : { atimeNs: BigInt(upload.atimeNs) }),
        previous,
        ...(setAside ? { setAside } : {}),
        parentAttributes: source === undefined ? undefined : sourceDirectoryAttributes({ source }),
        chunkStored: progress,
        signal,
      });
    } catch (error) {
      // Called off before the store put anything under the path (the store says so by
      // rejecting with the signal's reason): nothing of it reached Riak.
      if (!signal.aborted || !causedBy(error, signal.reason)) throw error;
      const riakHeld = previous === undefined ? undefined : previous ? "file" : "nothing";
      throw new UploadWithheldError(upload.path, riakHeld);
    }
  };
  return async (upload, stagedPath, signal, progress) => {
    try {
      await write(upload, stagedPath, signal, progress);
    } catch (error) {
      // Called off: no answer of Riak's, which the health tracker must not take as one.
      if (!(error instanceof UploadWithheldError)) health?.failed(error);
      throw error;
    }
    health?.succeeded();
  };
}

/** Whether `error` is `reason` or was caused by it, however deep. */
function causedBy(error: unknown, reason: unknown): boolean {
  for (let at = error; at !== undefined && at !== null; at = (at as Error).cause) {
    if (at === reason) return true;
  }
  return false;
}

/** Options of {@link localFileCopier}. */
export interface LocalCopyOptions {
  store: MigrationStore & Pick<Store, "ensureListed">;
  /** The source directory paths are relative to. */
  source: string;
  /** The pace of the source's calls (src/util/blocking_while_fast.ts); default: never blocking. */
  pace?: BlockingWhileFast;
  /** `delete`: remove the local copy once Riak's copy is verified (drain, --delete-local). */
  afterTransfer: AfterTransfer;
  /**
   * What keeps a verified local copy from deletion as still in use (another process writing
   * it, a change within the quiet period): it stays, and a later read copies and tries again.
   */
  inUse?: ActivityCheck;
  health?: RiakHealth;
  metrics?: MountMetrics;
  logger?: Logger;
  /**
   * Told when Riak holds exactly the local version of `path` (uploaded now or found there):
   * reading that version again needs no copy (where the local copy stays).
   */
  onMirrored?: (path: string, version: MirroredVersion) => void;
  /** See {@link CopyKind.freeOnly}: only the verified deletion, where Riak holds a file. */
  freeOnly?: boolean;
  /** Told of each local copy kept after its transfer, and of one deleted after all. */
  keptCopies?: KeptCopyRecorder;
}

/** A local file's version by size and mtime, the way a copy compares it with Riak's. */
export interface MirroredVersion {
  size: bigint;
  mtimeNs: bigint;
  /** The local file's ctime then: Riak keeps none, and the mount's must not go back. */
  ctimeNs: bigint;
}

/** What {@link copyLocalFile} did. */
export type CopyOutcome = "uploaded" | "already-in-riak" | "newer-in-riak" | "not-a-file";

/**
 * Copies the local file at mount path `path` into Riak unless Riak already holds that
 * version (same size and mtime) or a newer one (a later mtime); with `evenIfStored`, a file
 * written through the mount, whose size and mtime may be the old ones again, is copied
 * anyway. Then applies `afterTransfer`. A file that changes while it is read is not stored
 * (src/migration's readUnchanged aborts the upload). `progress` is called for each chunk of
 * it Riak acknowledged.
 */
export async function copyLocalFile(
  options: LocalCopyOptions,
  path: string,
  signal?: AbortSignal,
  evenIfStored = false,
  progress?: () => void,
): Promise<CopyOutcome> {
  for (let attempt = 1;; attempt++) {
    try {
      return await copyOnce(options, path, signal, evenIfStored, progress);
    } catch (error) {
      // A file being written right now is retried after the racy window, as pre-warm does.
      if (!isFileChanged(error) || attempt >= COPY_ATTEMPTS) throw error;
      await waitOutRacyWindow(signal);
    }
  }
}

/** Attempts of {@link copyLocalFile} while the file keeps changing. */
const COPY_ATTEMPTS = 3;

async function copyOnce(
  options: LocalCopyOptions,
  path: string,
  signal: AbortSignal | undefined,
  evenIfStored: boolean,
  progress: (() => void) | undefined,
): Promise<CopyOutcome> {
  const absolute = await sourcePathOf(options, path);
  if (absolute === undefined) return "not-a-file"; // Never copied from outside.
  let stats = await lstatPresent(absolute, options.pace);
  if (!stats?.isFile()) return "not-a-file";
  if (changedTooRecently(identityOf(stats))) {
    await waitOutRacyWindow(signal, identityOf(stats));
    const again = await lstatPresent(absolute, options.pace);
    if (!again?.isFile()) return "not-a-file";
    stats = again;
  }
  const identity = identityOf(stats);
  signal?.throwIfAborted();
  // One head-only get; the write reuses what it found instead of looking again.
  let remote = await observed(options, options.store.tryStat(path, { fileOnly: true }));
  if (evenIfStored && remote?.type === "symlink") {
    // The source's file replaced the link (a file renamed over it): the file is the truth.
    await observed(options, options.store.remove(path));
    remote = undefined;
  }
  // An object riakfs did not write (riak-fuse's) has no mtime of the file, only the time Riak
  // stored it: the same bytes are the same file, whatever the times say, and it is left as
  // riak-fuse wrote it (a rewrite would make a large one a manifest riak-fuse cannot read).
  const foreignSha256 = !evenIfStored && remote?.type === "file" && !remote.managed &&
      BigInt(remote.size) === stats.size
    ? (await hashBytes(readUnchanged(absolute, identity, { displayName: path }))).sha256
    : undefined;
  const sameForeign = foreignSha256 !== undefined && foreignSha256 === remote!.sha256;
  if (options.freeOnly && (remote?.type !== "file" || BigInt(remote.size) !== stats.size)) {
    // Another size cannot be Riak's bytes: kept with none read. Not a file in Riak any more
    // (removed or replaced since its copy was read): that change is newer than the read.
    if (remote?.type === "file") {
      countDeletion(options, path, {
        deleted: false,
        reason: "riak-differs",
        detail: `Riak holds ${remote.size} bytes, local ${stats.size}`,
      });
    }
    return "newer-in-riak";
  }
  if (
    !evenIfStored && !options.freeOnly && !sameForeign && remote?.type === "file" &&
    remote.mtimeNs > stats.mtimeNs
  ) {
    // Written elsewhere since (another host, a run in another mode): older bytes never go
    // over it, and the local copy is not Riak's to delete.
    return "newer-in-riak";
  }
  let outcome: CopyOutcome;
  let sha256: string;
  if (
    options.freeOnly || sameForeign ||
    (!evenIfStored && remote && remote.type === "file" && remote.managed &&
      BigInt(remote.size) === stats.size && remote.mtimeNs === stats.mtimeNs)
  ) {
    outcome = "already-in-riak";
    // A copy cut off between the object and its entry (Riak gone, a crash) left it unlisted:
    // listed now, before the local copy may go.
    await observed(
      options,
      options.store.ensureListed(path, { parentAttributes: sourceDirectoryAttributes(options) }),
    );
    // The deletion rule needs the local content's own hash, never Riak's word for it.
    sha256 = foreignSha256 ??
      (options.afterTransfer === "delete"
        ? (await hashBytes(readUnchanged(absolute, identity, { displayName: path }))).sha256
        : remote!.sha256);
  } else {
    let written: Awaited<ReturnType<MigrationStore["writeFile"]>>;
    try {
      written = await observed(
        options,
        options.store.writeFile(
          path,
          readUnchanged(absolute, identity, { displayName: path, signal }),
          {
            ...storedAttributes(stats),
            mtimeNs: exactMtime(stats.mtimeNs, remote),
            previous: remote ?? null,
            parentAttributes: sourceDirectoryAttributes(options),
            // A copy of what the source holds never goes over a version written since the
            // look above (another host's write): only a write through the mount does.
            keepNewer: !evenIfStored,
            chunkStored: progress,
          },
        ),
      );
    } catch (error) {
      if (error instanceof NewerVersionError) return "newer-in-riak";
      throw error;
    }
    outcome = "uploaded";
    sha256 = written.sha256;
    // A write through the mount (the mirrors'): its bytes count with the uploads'.
    if (evenIfStored && options.metrics) {
      options.metrics.value.uploads.bytesUploaded += written.size;
    }
  }
  // Called off while Riak stored it: whatever comes next about this path decides.
  signal?.throwIfAborted();
  if (options.afterTransfer === "delete") {
    const deletion = await observed(
      options,
      deleteIfVerified(
        options.store,
        normalizePath(path),
        absolute,
        { identity, sha256 },
        undefined,
        options.inUse,
      ),
    );
    countDeletion(options, path, deletion);
    // Not taken as mirrored: the next read of it copies, and so tries the deletion again.
    if (!deletion.deleted && deletion.reason === "local-active") return outcome;
  }
  // Freeing alone: Riak holds its own version, which says nothing of the local one's.
  if (options.freeOnly) return outcome;
  options.onMirrored?.(path, {
    size: identity.size,
    mtimeNs: identity.mtimeNs,
    ctimeNs: identity.ctimeNs,
  });
  return outcome;
}

/** Counts what became of the local copy of `path`, and logs why one is kept. */
function countDeletion(options: LocalCopyOptions, path: string, deletion: DeleteOutcome): void {
  const counters = options.metrics?.value.localDeletion;
  if (deletion.deleted) {
    if (counters) counters.deleted++;
    options.keptCopies?.gone(path);
    return;
  }
  if (counters) counters.kept++;
  options.keptCopies?.kept(path, deletion.reason);
  (options.logger ?? SILENT_LOGGER).info("local copy kept", {
    path,
    reason: deletion.reason,
    detail: deletion.detail,
  });
}

/** A {@link FileCopier} for the copy-on-read queue over {@link copyLocalFile}. */
export function localFileCopier(options: LocalCopyOptions): FileCopier {
  const freeing = { ...options, freeOnly: true };
  return async (path: string, signal: AbortSignal, kind: CopyKind) => {
    await copyLocalFile(kind.freeOnly ? freeing : options, path, signal);
  };
}

/** What {@link localPathMirrorer} needs: a copy's options and a store that sets attributes. */
export type MirrorOptions = LocalCopyOptions & {
  store: MigrationStore & Pick<Store, "setAttributes" | "rename" | "list" | "removeOrphanEntry">;
  /**
   * Whether jobs of paths below `path` are still queued or running: a directory's removal
   * waits for them (its entries' removals) before it decides Riak's directory stays.
   */
  jobsBelow?: (path: string) => boolean;
};

/**
 * A {@link Mirrorer} over {@link copyLocalFile}: the local file as it is now goes to Riak
 * (always: `cp -p` writes new bytes of the same size and then sets the old mtime), a local
 * directory goes as a directory with its attributes; a path
 * the mount removed is removed from Riak too, unless something is back under that name
 * locally; changed attributes are set on Riak's copy (a file Riak lacks is copied).
 */
export function localPathMirrorer(options: MirrorOptions): Mirrorer {
  return async (mirror: PendingMirror, signal: AbortSignal, progress?: () => void) => {
    if (mirror.mirror === "attributes") return await mirrorAttributes(options, mirror, progress);
    if (mirror.mirror === "directory") {
      return await observed(
        options,
        makeDirectory(options.store, mirror, options.logger, sourceDirectoryAttributes(options)),
      );
    }
    if (mirror.mirror === "move") {
      const move = mirror.movesDirectory ? moveDirectoryInRiak : moveInRiak;
      return await observed(
        options,
        move(options.store, mirror, options.logger, sourceDirectoryAttributes(options)),
      );
    }
    const local = await localEntry(options, mirror.path);
    if (mirror.unseen) {
      await observed(
        options,
        setAsideUnseen(
          options.store,
          mirror.path,
          async () =>
            local === undefined || local === "outside"
              ? undefined
              : await sha256OfEntry(local.absolute),
          options.logger ?? SILENT_LOGGER,
          mirror.ours,
        ),
      );
    }
    if (mirror.removes || mirror.created) {
      await observed(options, setAsideChanged(options.store, mirror, options.logger));
    }
    if (mirror.snapshot) {
      return await observed(options, snapshotLocalFile(options, mirror.path, progress));
    }
    // Reached through a symlink: never this mount's to copy into Riak. A removal still runs:
    // the mount removed (or renamed away) that name while it was the source's own, and a
    // symlink made in a directory's place since must not keep Riak's old entries below it.
    if (local === "outside" && mirror.mirror !== "remove") return;
    const here = local === "outside" ? undefined : local;
    if (mirror.directory) {
      // A directory back in the source: its files have their own mirrors. (A file put there
      // instead needs Riak's directory gone first: its copy is queued after this.)
      if (here?.stats.isDirectory()) return;
      return await observed(options, removeDirectoryFromRiak(options, mirror.path));
    }
    if (mirror.mirror === "copy" && here?.stats.isDirectory()) {
      return await observed(options, mirrorDirectory(options, mirror.path, !mirror.unseen));
    }
    // A link is the source's truth whether its name was copied or removed and made again
    // (a link renamed over it may be in Riak already: it is not removed).
    if (here?.stats.isSymbolicLink()) {
      return await observed(options, mirrorSymlink(options, mirror.path, here.absolute));
    }
    // A file removed and back under the name is copied; a directory made there since has
    // its own copy queued behind this removal, which clears the way for it.
    if (mirror.mirror === "copy" || here?.stats.isFile()) {
      await copyLocalFile(options, mirror.path, signal, true, progress);
      return;
    }
    await observed(options, removeFileFromRiak(options.store, mirror.path, mirror, options.logger));
  };
}

/** What {@link riakNameMirrorer} needs. */
export interface RiakNameMirrorOptions {
  store: MigrationStore & Pick<Store, "setAttributes" | "rename" | "list" | "removeOrphanEntry">;
  health?: RiakHealth;
  logger?: Logger;
  /** As {@link MirrorOptions.jobsBelow}. */
  jobsBelow?: (path: string) => boolean;
}

/**
 * A {@link Mirrorer} for a mount without a source (the riak preset): it does the changes of
 * names journaled while Riak was away, which need no local file: a removal (of a file, or of
 * a directory once empty) and a directory's making. Copies and attributes of local files are
 * not for it ({@link isRiakNameMirror}).
 */
export function riakNameMirrorer(options: RiakNameMirrorOptions): Mirrorer {
  const logger = options.logger ?? SILENT_LOGGER;
  return async (mirror: PendingMirror) => {
    if (!isRiakNameMirror(mirror)) throw new Error(`${mirror.path}: no source to mirror from`);
    const observe = <T>(request: Promise<T>) =>
      options.health ? options.health.observe(request) : request;
    if (mirror.mirror === "directory") {
      return await observe(makeDirectory(options.store, mirror, logger));
    }
    if (mirror.mirror === "move") {
      const move = mirror.movesDirectory ? moveDirectoryInRiak : moveInRiak;
      return await observe(move(options.store, mirror, logger));
    }
    if (mirror.unseen) {
      await observe(
        setAsideUnseen(
          options.store,
          mirror.path,
          () => Promise.resolve(undefined),
          logger,
          mirror.ours,
        ),
      );
    }
    if (mirror.removes || mirror.created) {
      await observe(setAsideChanged(options.store, mirror, logger));
    }
    if (mirror.directory) {
      return await observe(removeDirectoryFromRiak(options, mirror.path));
    }
    await observe(removeFileFromRiak(options.store, mirror.path, mirror, logger));
  };
}

/** Whether `stat` is of a file at `version`. */
function isVersion(stat: FileStat | undefined, version: RiakVersion): boolean {
  return stat?.type === "file" && stat.size === version.size &&
    stat.mtimeNs === BigInt(version.mtimeNs);
}

/** Whether {@link riakNameMirrorer} does `mirror`: a removal, a directory's making, a move. */
export function isRiakNameMirror(mirror: PendingMirror): boolean {
  return mirror.mirror === "remove" || mirror.mirror === "directory" || mirror.mirror === "move";
}

/**
 * Renames in Riak the file only Riak held that was renamed through the mount while Riak was
 * away (`mirror: "move"`), while Riak holds the version the mount showed under the old name:
 * another one there (written elsewhere meanwhile) is not moved (the old name's removal,
 * journaled with the move, sets it aside), and neither is nothing (removed elsewhere), with a
 * warning. What Riak holds under a new name the mount could not look at is set aside first.
 */
async function moveInRiak(
  store: MigrationStore & Pick<Store, "rename">,
  mirror: PendingMirror,
  logger: Logger = SILENT_LOGGER,
  parentAttributes?: WriteOptions["parentAttributes"],
): Promise<void> {
  const { path } = mirror;
  const version = mirror.moves!;
  const { from } = version;
  const stillToMove = await isStillToMove({ from, to: path }, logger, {
    stat: (name) => store.tryStat(name, { fileOnly: true }),
    isShown: (stat) => isVersion(stat, version),
    // Riak's rename leaves nothing under the old name: another version there is not a replay.
    mayBeMoved: (old) => old === undefined,
    notMoved: "a file renamed during an outage was not in Riak as the mount showed it; not moved",
  });
  if (!stillToMove) return;
  if (mirror.unseen) {
    await setAsideUnseen(store, path, () => Promise.resolve(undefined), logger);
  }
  await makeMissingDirectories(store, parentOf(path), parentAttributes);
  await store.rename(from, path);
}

/**
 * Renames in Riak the directory renamed through the mount while Riak was away
 * (`movesDirectory`), with the store's directory rename (which also carries along what
 * other hosts added to it meanwhile). Nothing is put over what Riak holds under the new name
 * (a name the mount could not look at, written elsewhere): the directory stays under its old
 * name, with a warning; so it does, with a warning, where Riak holds no directory under the
 * old name (removed elsewhere), unless it is under the new one already (a replay after a
 * crash that came after the rename). A replay after a crash in the rename goes on with it.
 */
async function moveDirectoryInRiak(
  store: Pick<Store, "tryStat" | "mkdir" | "rename">,
  mirror: PendingMirror,
  logger: Logger = SILENT_LOGGER,
  parentAttributes?: WriteOptions["parentAttributes"],
): Promise<void> {
  const { path } = mirror;
  const { from } = mirror.movesDirectory!;
  const stillToMove = await isStillToMove({ from, to: path }, logger, {
    stat: (name) => store.tryStat(name),
    isShown: (stat) => stat?.type === "directory",
    mayBeMoved: () => true,
    notMoved: "a directory renamed during an outage was not in Riak; nothing moved",
  });
  if (!stillToMove) return;
  await makeMissingDirectories(store, parentOf(path), parentAttributes);
  try {
    // A replay after a crash cut Riak's rename short finishes it.
    await store.rename(from, path, { resume: true });
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    if (!["ENOTEMPTY", "ENOTDIR", "EEXIST"].includes(error.code)) throw error;
    logger.warn(
      "a directory renamed during an outage stays under its old name: Riak holds another entry under the new one",
      { from, to: path, error: error.message },
    );
  }
}

/** How {@link isStillToMove} knows in Riak the entry a move journaled during an outage renames. */
interface MovedEntry {
  /** Riak's stat of a name, as the move looks at it. */
  stat(path: string): Promise<FileStat | undefined>;
  /** Whether `stat` is of the entry as the mount showed it under the old name. */
  isShown(stat: FileStat | undefined): boolean;
  /**
   * Whether, with `old` under the old name, the move may be done already: only then is the
   * new name looked at.
   */
  mayBeMoved(old: FileStat | undefined): boolean;
  /** The warning where the move is neither to do nor done. */
  notMoved: string;
}

/**
 * Whether a move journaled during an outage is still to do in Riak: Riak holds under the old
 * name the entry as the mount showed it there. Where it does not, the move is not done, with
 * a warning (the entry was changed or removed elsewhere meanwhile, so what the mount showed
 * under the new name is not in Riak); but quietly where the new name holds the entry already:
 * the journal's line, replayed after a crash that came after Riak's rename, was done before.
 */
async function isStillToMove(
  move: { from: string; to: string },
  logger: Logger,
  entry: MovedEntry,
): Promise<boolean> {
  const old = await entry.stat(move.from);
  if (entry.isShown(old)) return true;
  const movedAlready = entry.mayBeMoved(old) && entry.isShown(await entry.stat(move.to));
  if (!movedAlready) logger.warn(entry.notMoved, move);
  return false;
}

/**
 * Makes the directory made through the mount while Riak was away (`mirror: "directory"`)
 * with the attributes asked for; a file Riak holds under a name the mount could not look at
 * then is set aside first. A directory there already (made by the upload of a file written
 * into it, say) takes those attributes; missing parents are made (with `parentAttributes`'
 * attributes, else the defaults: one made the same way has its own job, which sets its own).
 */
async function makeDirectory(
  store: MigrationStore & Pick<Store, "setAttributes" | "rename">,
  mirror: PendingMirror,
  logger: Logger = SILENT_LOGGER,
  parentAttributes?: WriteOptions["parentAttributes"],
): Promise<void> {
  const { path, set = {} } = mirror;
  const attributes = {
    ...(set.mode === undefined ? {} : { mode: set.mode }),
    ...(set.uid === undefined ? {} : { uid: set.uid }),
    ...(set.gid === undefined ? {} : { gid: set.gid }),
    ...(set.mtimeNs === undefined ? {} : { mtimeNs: BigInt(set.mtimeNs) }),
  };
  if (mirror.unseen) {
    await setAsideUnseen(store, path, () => Promise.resolve(undefined), logger);
  }
  await makeMissingDirectories(store, parentOf(path), parentAttributes);
  try {
    await store.mkdir(path, attributes);
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
    if ((await store.tryStat(path))?.type !== "directory") throw error;
    await store.setAttributes(path, attributes);
  }
}

/** Makes directory `path` and those above it that Riak lacks. */
async function makeMissingDirectories(
  store: Pick<Store, "tryStat" | "mkdir">,
  path: string,
  attributesOf?: WriteOptions["parentAttributes"],
): Promise<void> {
  if (path === "/" || (await store.tryStat(path))?.type === "directory") return;
  await makeMissingDirectories(store, parentOf(path), attributesOf);
  const attributes = (await attributesOf?.(Buffer.from(path.slice(1)))) ?? {};
  await store.mkdir(path, attributes).catch((error) => {
    if (!(error instanceof AlreadyExistsError)) throw error;
  });
}

/** `request`, recorded by the mount's Riak health (outages logged once) when there is one. */
function observed<T>(options: LocalCopyOptions, request: Promise<T>): Promise<T> {
  return options.health ? options.health.observe(request) : request;
}

/**
 * What is at `path` in `source`: undefined when nothing is, "outside" when the path leads
 * out of the source through a symlink.
 */
async function localEntry(
  options: LocalCopyOptions,
  path: string,
): Promise<{ absolute: string; stats: BigIntStats } | "outside" | undefined> {
  const absolute = await sourcePathOf(options, path);
  if (absolute === undefined) return "outside";
  const stats = await lstatPresent(absolute, options.pace);
  return stats && { absolute, stats };
}

/**
 * The source's lstat of `absolute`; undefined when nothing is there, also below what is now a
 * file or a link (ENOTDIR: a mirror journaled below a directory that a file then replaced, or
 * moved by a rename below a name that is a file now). Thrown, ENOTDIR was taken for Riak's
 * refusal: retried with backoff, then given up with "mirror refused by Riak".
 */
async function lstatPresent(
  absolute: string,
  pace: BlockingWhileFast | undefined,
): Promise<BigIntStats | undefined> {
  try {
    return await lstatIfExistsPaced(absolute, pace);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw error;
  }
}

/** Gives Riak the source's symlink at `path` (a link made while Riak was away). */
async function mirrorSymlink(
  options: MirrorOptions,
  path: string,
  absolute: string,
): Promise<void> {
  let target: Buffer;
  try {
    target = await readlink(absolute, { encoding: "buffer" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EINVAL") return; // Gone, or replaced by a file since.
    throw error;
  }
  const stats = await lstatIfExists(absolute);
  const remote = await options.store.tryStat(path, { fileOnly: true });
  const same = remote?.type === "symlink" &&
    remote.sha256 === createHash("sha256").update(target).digest("hex");
  if (same) return;
  // The source's link is the newer entry: a file or other link Riak holds there goes.
  if (remote && remote.type !== "directory") await options.store.remove(path);
  await options.store.symlink(path, target, {
    uid: Number(stats?.uid ?? 0n),
    gid: Number(stats?.gid ?? 0n),
    // A legacy directory it is the first entry of in Riak keeps its mode there too.
    parentAttributes: sourceDirectoryAttributes(options),
  });
}

/**
 * Gives Riak the source's directory at `path` with its attributes, and its missing parents
 * with theirs: a directory made or moved while Riak was away, an empty one too. With
 * `replaceOld` (the mirror of `path` itself, of a name the mount has seen), a file or link
 * Riak still holds at `path` is replaced; never one at a parent, which its own job handles
 * (setting aside a file the mount never saw, say): until then this is refused.
 */
async function mirrorDirectory(
  options: MirrorOptions,
  path: string,
  replaceOld = false,
): Promise<void> {
  const absolute = await sourcePathOf(options, path);
  const local = absolute === undefined ? undefined : await lstatPresent(absolute, options.pace);
  if (!local?.isDirectory()) return; // Gone again: its removal follows.
  const parent = parentOf(path);
  if (parent !== "/" && (await options.store.tryStat(parent))?.type !== "directory") {
    await mirrorDirectory(options, parent);
  }
  const attributes = storedAttributes(local);
  try {
    await options.store.mkdir(path, attributes);
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
    const remote = await options.store.tryStat(path);
    if (replaceOld && remote !== undefined && remote.type !== "directory") {
      // The source's directory is the newer entry: the file or link that the mount removed
      // there goes now (its removal is queued behind this older copy of the name, journaled
      // while it was a file, which finds the directory already).
      await options.store.remove(path).catch((removal) => {
        if (!(removal instanceof StoreError && removal.code === "ENOENT")) throw removal;
      });
      await options.store.mkdir(path, attributes);
      return;
    }
    // Made already (by a copy of a file below it, with default attributes): the source's
    // attributes are the ones to keep.
    if (remote?.type !== "directory") throw error;
    await options.store.setAttributes(path, attributes);
  }
}

/** Where mount path `path` is in `source`; undefined when it leads out of it (a symlink). */
async function sourcePathOf(
  options: Pick<LocalCopyOptions, "source" | "pace">,
  path: string,
): Promise<string | undefined> {
  try {
    return await localPathBeneath(options.source, path, { pace: options.pace });
  } catch (error) {
    if (error instanceof OutsideSourceError) return undefined;
    throw error;
  }
}

/**
 * Gives Riak's copy of the mirror's path the attributes set on the local file (a file Riak
 * lacks is copied whole).
 */
async function mirrorAttributes(
  options: MirrorOptions,
  mirror: PendingMirror,
  progress: (() => void) | undefined,
): Promise<void> {
  const path = mirror.path;
  const absolute = await sourcePathOf(options, path);
  const local = absolute === undefined ? undefined : await lstatPresent(absolute, options.pace);
  if (local === undefined) return; // Gone (its removal is journaled after this), or outside.
  let remote = await observed(options, options.store.tryStat(path));
  if (remote === undefined) {
    if (!local.isFile()) return;
    // The copy takes the local attributes; the ones asked for (an mtime to the nanosecond,
    // which the local file holds to the microsecond at best) are set on it below.
    await copyLocalFile(options, path, undefined, true, progress);
    if (mirror.set === undefined) return;
    remote = await observed(options, options.store.tryStat(path));
    if (remote === undefined) return;
  }
  const set = mirror.set ?? {};
  await observed(
    options,
    options.store.setAttributes(path, {
      mode: set.mode ?? Number(local.mode & 0o7777n),
      uid: set.uid ?? Number(local.uid),
      gid: set.gid ?? Number(local.gid),
      mtimeNs: set.mtimeNs === undefined ? local.mtimeNs : BigInt(set.mtimeNs),
      // Only one set explicitly: the source's moves with every read of it.
      ...(set.atimeNs === undefined ? {} : { atimeNs: BigInt(set.atimeNs) }),
    }),
  );
}

/**
 * Puts the local file at `path` into Riak as it is, without waiting for it to stop
 * changing: bytes written while it is read may or may not be in the copy.
 */
async function snapshotLocalFile(
  options: MirrorOptions,
  path: string,
  progress: (() => void) | undefined,
): Promise<void> {
  const absolute = await sourcePathOf(options, path);
  if (absolute === undefined) return; // Never copied from outside.
  const stats = await lstatPresent(absolute, options.pace);
  if (!stats?.isFile()) return;
  const remote = await options.store.tryStat(path, { fileOnly: true });
  const written = await options.store.writeFile(path, { file: absolute }, {
    ...storedAttributes(stats),
    mtimeNs: exactMtime(stats.mtimeNs, remote),
    previous: remote ?? null,
    parentAttributes: sourceDirectoryAttributes(options),
    chunkStored: progress,
  });
  if (options.metrics) options.metrics.value.uploads.bytesUploaded += written.size;
}

/**
 * The attributes of the source's directories, for the store to make a missing parent with
 * (a legacy directory of mode 0700 stays 0700 in Riak); undefined where the source has none.
 */
function sourceDirectoryAttributes(
  options: Pick<LocalCopyOptions, "source" | "pace">,
): WriteOptions["parentAttributes"] {
  return async (directory) => {
    const absolute = await sourcePathOf(options, `/${directory.toString()}`);
    const stats = absolute === undefined
      ? undefined
      : await lstatIfExists(absolute).catch(() => undefined);
    return stats?.isDirectory() ? storedAttributes(stats) : undefined;
  };
}

/**
 * The mtime to store for a local file whose lstat says `localNs`: Riak's own when the local
 * one is it, cut to what the runtime's utimes(2) can set. utimens(2) through the mount keeps
 * the exact time asked for in Riak; the local file gets it to the microsecond under Node
 * (a double of seconds), to the millisecond under Deno, never later than asked.
 */
function exactMtime(localNs: bigint, remote: { mtimeNs: bigint } | undefined): bigint {
  if (remote === undefined) return localNs;
  const gap = localNs - remote.mtimeNs;
  return gap > -1_000_000n && gap < 1000n ? remote.mtimeNs : localNs;
}

/**
 * Removes the file at `path` from Riak, if Riak holds one (a directory stays). The removal
 * of a name whose file was moved away while Riak was away (`mirror`'s
 * {@link PendingMirror.movedAway}) keeps the version moved, found still there: its move was
 * given up.
 */
async function removeFileFromRiak(
  store: MigrationStore,
  path: string,
  mirror?: PendingMirror,
  logger: Logger = SILENT_LOGGER,
): Promise<void> {
  // A put of it that may still land would bring it back after a look that found nothing (and
  // an add of its entry, its name).
  logLateWriteWait(store, path, logger);
  await store.lateWritesSettled?.(path);
  // One head-only get: most files removed soon after their creation never reached Riak.
  const stat = await store.tryStat(path, { fileOnly: true });
  if (stat === undefined || stat.type === "directory") return;
  if (mirror?.movedAway && mirror.removes && isVersion(stat, mirror.removes)) {
    logger.warn(
      "a file renamed during an outage was not moved in Riak; kept under its old name",
      { path },
    );
    return;
  }
  await store.remove(path).catch((error) => {
    if (!(error instanceof StoreError && error.code === "ENOENT")) throw error;
  });
}

/**
 * Tells the operator why the removal of `path` in Riak takes a while (up to Riak's put
 * timeout), where it waits for a write of the name that may still land.
 */
function logLateWriteWait(store: MigrationStore, path: string, logger: Logger): void {
  if (!store.awaitsLateWrites?.(path)) return;
  logger.info(
    "removal waits for the answer to a put of the file or an add of its entry that may still land",
    { path },
  );
}

/**
 * Removes Riak's directory at `path` once it is empty. Entries still there wait for the
 * removals queued below it ({@link NotYetError}); with none queued, orphan entries go if they
 * are all it lists (as an rmdir through a mount showing Riak's listing removes them, see
 * {@link emptiedOfOrphans}); anything else is files only Riak holds (another host's, say),
 * and the directory stays for them.
 */
async function removeDirectoryFromRiak(
  options: Pick<RiakNameMirrorOptions, "store" | "jobsBelow" | "logger">,
  path: string,
): Promise<void> {
  const { store, jobsBelow } = options;
  const logger = options.logger ?? SILENT_LOGGER;
  // Only a directory: whatever else Riak holds under the name is not what the source removed.
  if ((await store.tryStat(path))?.type !== "directory") return;
  // Its entry's add that may still land would list it again (store.remove waits for it).
  logLateWriteWait(store, path, logger);
  if (!await keptNotEmpty(store, path)) return;
  if (jobsBelow?.(path)) throw new NotYetError(`${path}: entries still being removed`);
  const emptied = await emptiedOfOrphans(path, {
    listing: (directory) => namesInRiak(store, directory),
    hasEntries: async (directory) => !(await store.list(directory).next()).done,
    // The source's directory is gone: only what Riak stores is there, which stays.
    exists: async (entry) => await store.tryStat(entry) !== undefined,
    removeOrphanEntry: (entry) => removeOrphanEntrySaid(store, entry, logger),
    changed: () => {}, // Nothing of Riak's is remembered here.
  });
  if (emptied && !await keptNotEmpty(store, path)) return;
  logger.warn(
    "directory removed through the mount kept in Riak: it holds entries the mount did not remove",
    { path },
  );
}

/** The names Riak lists in `directory`. */
async function* namesInRiak(
  store: Pick<Store, "list">,
  directory: string,
): AsyncGenerator<{ name: string }> {
  for await (const entry of store.list(directory)) yield { name: entry.name.toString() };
}

/**
 * Removes Riak's directory at `path`; true when it stays for the entries it lists (ENOTEMPTY).
 * Gone already, or no directory, is done.
 */
async function keptNotEmpty(store: MigrationStore, path: string): Promise<boolean> {
  try {
    await store.remove(path);
    return false;
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    if (error.code === "ENOENT" || error.code === "ENOTDIR") return false;
    if (error.code !== "ENOTEMPTY") throw error;
    return true;
  }
}

/**
 * Runs before the first upload of a file created while Riak could not say whether its name
 * was taken. A different file Riak holds under that name is one the mount never showed
 * anybody: it is renamed to `<name>.riakfs-conflict-<time>-<random>` beside it, never
 * overwritten. `ours` hashes what is about to be uploaded (undefined: nothing is); Riak
 * holding the same bytes is this upload, repeated after a crash.
 */
export async function setAsideUnseen(
  store: Pick<Store, "tryStat" | "rename">,
  path: string,
  ours: () => Promise<string | undefined>,
  logger: Logger,
  oursAlso: PendingMirror["ours"] = [],
): Promise<void> {
  await setAsideUnless(
    store,
    path,
    oursAlso,
    ours,
    logger,
    // Not only in an outage: Riak answering the look with an error (a sets bucket type
    // never created, say) leaves the name unseen too.
    "Riak held another file under a name created while Riak could not say whether it was taken; kept aside",
  );
}

/**
 * Runs before the removal of a file only Riak held, removed while Riak was away
 * ({@link PendingMirror.removes}), or of one the mount created where Riak held none
 * ({@link PendingMirror.created}): Riak holding another version than the one the mount
 * showed (or than its own uploads stored) means someone wrote it elsewhere meanwhile, after
 * what the application removed. It is renamed to `<name>.riakfs-conflict-<time>-<random>`
 * beside it, never removed: the name ends as the application saw it (gone, or what it made
 * there since), nothing written elsewhere is lost, and a warning says where it went.
 */
export async function setAsideChanged(
  store: Pick<Store, "tryStat" | "rename">,
  mirror: PendingMirror,
  logger: Logger = SILENT_LOGGER,
): Promise<void> {
  await setAsideUnless(
    store,
    mirror.path,
    [...(mirror.removes ? [mirror.removes] : []), ...(mirror.ours ?? [])],
    () => Promise.resolve(undefined),
    logger,
    "Riak held a newer file under a name removed during an outage; kept aside",
  );
}

/**
 * Renames the file or link Riak holds at `path` to a conflict name beside it, with `warning`
 * logged, unless it is a file of one of the versions `expected` or holding the bytes
 * `sha256` hashes.
 */
async function setAsideUnless(
  store: Pick<Store, "tryStat" | "rename">,
  path: string,
  expected: readonly RiakVersion[],
  sha256: () => Promise<string | undefined>,
  logger: Logger,
  warning: string,
): Promise<void> {
  const remote = await store.tryStat(path, { fileOnly: true });
  await setAsideFound(store, path, remote, expected, sha256, logger, warning);
}

/**
 * {@link setAsideUnless} with `remote`, what Riak holds at `path` as just looked at: true when
 * it was set aside.
 */
async function setAsideFound(
  store: Pick<Store, "rename">,
  path: string,
  remote: FileStat | undefined,
  expected: readonly RiakVersion[],
  sha256: () => Promise<string | undefined>,
  logger: Logger,
  warning: string,
): Promise<boolean> {
  // A directory is not replaced by a file anyway (the upload is refused); a symlink is.
  if (remote === undefined || remote.type === "directory") return false;
  const isExpected = (version: RiakVersion) => isVersion(remote, version);
  if (remote.type === "file" && (expected.some(isExpected) || remote.sha256 === await sha256())) {
    return false;
  }
  const aside = conflictPath(path);
  await store.rename(path, aside);
  logger.warn(warning, { path, keptAs: aside });
  return true;
}

/**
 * For the upload of a file written while Riak was away ({@link PendingUpload.away}) over what
 * the mount knew Riak held ({@link heldBefore}: a version, or nothing where it created the
 * file): sets aside a file Riak holds under the name that is neither that version nor this
 * upload (an attempt of it that landed before a crash), as {@link setAsideChanged} does, and
 * says whether it did. Undefined for any other upload, which goes over whatever Riak holds,
 * as any write through the mount while Riak answers does (the last writer's bytes win).
 */
function setAsideUnexpected(
  store: Pick<Store, "rename">,
  upload: PendingUpload,
  logger: Logger,
): ((found: FileStat | undefined) => Promise<boolean>) | undefined {
  const held = upload.away ? heldBefore(upload) : undefined;
  if (held === undefined) return undefined;
  const expected = [
    ...(held === "nothing" ? [] : [held]),
    ...upload.ours ?? [],
    { size: upload.size, mtimeNs: upload.mtimeNs },
  ];
  return (found) =>
    setAsideFound(
      store,
      upload.path,
      found,
      expected,
      () => Promise.resolve(undefined),
      logger,
      "Riak held another file under a name written during an outage; kept aside",
    );
}

/** A fresh name beside `path` for a file set aside by {@link setAsideUnseen}. */
export function conflictPath(path: string, now = new Date()): string {
  const time = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${path}.riakfs-conflict-${time}-${randomBytes(3).toString("hex")}`;
}

/**
 * The sha256 Riak would hold for the entry at `absolute`: a file's content, a symlink's
 * target (never followed: it may lead anywhere, to a FIFO say); undefined for anything else
 * or nothing.
 */
async function sha256OfEntry(absolute: string): Promise<string | undefined> {
  try {
    const stats = await lstatIfExists(absolute);
    if (stats?.isSymbolicLink()) {
      return createHash("sha256").update(await readlink(absolute, { encoding: "buffer" }))
        .digest("hex");
    }
    if (!stats?.isFile()) return undefined;
    return (await hashBytes(createReadStream(absolute))).sha256;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
    throw error;
  }
}
