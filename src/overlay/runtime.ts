/**
 * Starting and stopping everything a mount of the overlay runs besides the FUSE session:
 * the spool and its journal (replayed into the upload queue before serving), the
 * copy-on-read queue, the chunk cache, Riak health tracking, the control socket for
 * `riakfs status` and the optional Prometheus endpoint. `riakfs mount` and `riakfs demo`
 * both start a mount through {@link startOverlay}.
 *
 * @module
 */
import { type Dir, existsSync, opendirSync } from "node:fs";
import { basename } from "node:path";
import type { FileSystem } from "../fuse/filesystem.ts";
import type { Store } from "../store/store.ts";
import { ChunkCache } from "./chunk_cache.ts";
import {
  type ControlServer,
  type DrainOutcome,
  type NodePing,
  riakTrouble,
  runtimePaths,
  startControlServer,
  type StatusReport,
} from "./control.ts";
import { CopyOnReadQueue } from "./copy_on_read.ts";
import { RiakHealth } from "./health.ts";
import { instrument } from "./instrument.ts";
import { NoRoomReport } from "./no_room_report.ts";
import { isMirror, type JournalEntry, stagedNames, UploadJournal } from "./journal.ts";
import type { Logger } from "./log.ts";
import { MountMetrics, toPrometheus } from "./metrics.ts";
import { type MetricsServer, startMetricsServer } from "./metrics_server.ts";
import { describeMode, presetOf, usesRiak } from "./modes.ts";
import type { OverlaySettings } from "./mount_options.ts";
import { OverlayFileSystem, type OverlayOptions, type TableLimits } from "./overlay.ts";
import { Spool, spoolLockFile } from "./spool.ts";
import {
  claimSpool,
  modeFlags,
  readSpoolRecord,
  type SpoolRecord,
  writeSpoolRecord,
} from "./spool_record.ts";
import { chooseSpoolDirectory, refuseStrandedSpools } from "./stranded_spools.ts";
import { placementNames } from "../store/layout.ts";
import { sourcePace } from "./source_file.ts";
import {
  isRiakNameMirror,
  localFileCopier,
  localPathMirrorer,
  type MirrorOptions,
  riakNameMirrorer,
  stagedFileUploader,
} from "./transfer.ts";
import { type JobsEnded, UploadQueue } from "./upload_queue.ts";
import { makeOptionDirectory } from "../util/directories.ts";
import { KeptCopies } from "../migration/kept_copies.ts";
import { acquireLock, type HeldLock, LockedError } from "../util/lock.ts";
import { isNoRoomError } from "../util/no_room.ts";

/** A refusal this recent still explains uploads pending: they retry at least every 30 s. */
const REFUSAL_RECENT_MS = 60_000;

/**
 * How long a status report waits for the pings of Riak's nodes while the mount is in an
 * outage (its own probes go on meanwhile): a node back answers within it.
 */
const OUTAGE_PING_TIMEOUT_MS = 500;

/** What {@link startOverlay} needs. */
export interface OverlayStartOptions {
  settings: OverlaySettings;
  /** The legacy directory (absolute); undefined for the riak preset. */
  source?: string;
  /**
   * SOURCE as given to the mount where {@link source} is undefined (the riak preset reads
   * none): a spool another preset left in it with pending entries refuses the mount.
   */
  sourceArgument?: string;
  /** The mountpoint (absolute), for the control socket and status. */
  mountpoint: string;
  /** The store; required when the mode uses Riak. */
  store?: Store;
  /** Riak nodes as `host:port`, for status output. */
  riakNodes: string[];
  /**
   * Pings every Riak node now, for `riakfs status`: the mount's own view of Riak comes from
   * its last request, which says nothing of a node gone silent since. A node that has not
   * answered within `timeoutMs` (default: the mount's own ping timeout) did not answer.
   */
  pingRiak?: (timeoutMs?: number) => Promise<NodePing[]>;
  /**
   * Whether Riak answers the mount's own requests again within `timeoutMs` (default: the
   * mount's own ping timeout), asked before an outage is declared over (and before a
   * request's timeout declares one); default: whether a node answers {@link pingRiak}.
   */
  riakAnswers?: (timeoutMs?: number) => Promise<boolean>;
  /**
   * Why the last {@link riakAnswers} found no node answering (each node's ping failure), for
   * the warning of a mount that starts while Riak does not answer.
   */
  whyRiakUnanswered?: () => string | undefined;
  logger: Logger;
  /**
   * The filesystem for modes without Riak (the passthrough preset); its `close`, if any,
   * runs when the mount stops (after the unmount).
   */
  localFileSystem?: () => Promise<FileSystem & { close?(): Promise<void> }>;
  /** Seconds the kernel may cache entries and attributes. */
  entryTimeout?: number;
  attrTimeout?: number;
  /** The clock cached Riak stats expire by (tests); default Date.now. */
  now?: () => number;
  /** The overlay's {@link TableLimits} (tests); default `DEFAULT_TABLE_LIMITS` (overlay.ts). */
  tableLimits?: TableLimits;
  /** `-o direct_io` for the Riak-backed modes: opens bypass the page cache. */
  directIo?: boolean;
  /** How long changes to a Riak directory's entries gather before its mtime is written. */
  directoryTimeDelayMs?: number;
  /** Where the spools of mounts without a source go (tests); default /var/lib/riakfs. */
  systemSpoolRoot?: string;
  /** See {@link OverlayOptions.fetchedIntoSource} (tests). */
  fetchedIntoSource?: OverlayOptions["fetchedIntoSource"];
  /** See {@link OverlayOptions.supersededDeletionSteps} (tests). */
  supersededDeletionSteps?: OverlayOptions["supersededDeletionSteps"];
}

/** A started overlay: the filesystem to serve and how to stop what runs beside it. */
export interface OverlayRuntime {
  /** The filesystem, with every operation counted. */
  fileSystem: FileSystem;
  metrics: MountMetrics;
  /** The control socket `riakfs status` talks to. */
  controlSocket: string;
  /** The Prometheus endpoint's port, when `--metrics` was given. */
  metricsPort?: number;
  /** Uploads not yet acknowledged by Riak. */
  pendingUploads(): number;
  /**
   * Drains the upload queue while the mount keeps serving (new writes are accepted and
   * drained too), for at most `timeoutMs` (default `--drain-timeout`); the outcome is
   * logged. Unmount after it: what is still pending stays journaled.
   */
  drainUploads(timeoutMs?: number, progress?: (pending: number) => void): Promise<DrainOutcome>;
  /** Waits until the background queues are empty (tests, demo). */
  settle(timeoutMs: number): Promise<number>;
  /** Entries of the overlay's tables by path, by table (tests); none in a local mode. */
  tableSizes(): Record<string, number>;
  /**
   * Drains the upload queue for at most `drainTimeoutMs` (default: what is left of the
   * last {@link OverlayRuntime.drainUploads}' timeout, else `--drain-timeout`), then stops
   * everything. Resolves with the uploads still pending (they stay journaled).
   */
  stop(drainTimeoutMs?: number): Promise<number>;
}

/**
 * Opens the spool, replays the journal into the upload queue, and starts the queues, the
 * control socket and (when asked) the metrics endpoint.
 */
export async function startOverlay(options: OverlayStartOptions): Promise<OverlayRuntime> {
  const { settings, logger } = options;
  const riakBacked = usesRiak(settings.mode);
  const spoolDirectory = riakBacked
    ? await chooseSpoolDirectory(
      settings.spool,
      options.source,
      options.mountpoint,
      logger,
      options.systemSpoolRoot,
    )
    : undefined;
  // Before anything is made or replayed: a refused mount leaves every spool as it was.
  await refuseStrandedSpools({
    source: options.source ?? options.sourceArgument,
    mountpoint: options.mountpoint,
    spool: spoolDirectory,
    mode: settings.mode,
    logger,
    systemRoot: options.systemSpoolRoot,
  });
  const metrics = new MountMetrics();
  const pingRiak = options.pingRiak;
  const health = new RiakHealth(
    logger,
    Date.now,
    options.riakAnswers ??
      (pingRiak &&
        (async (timeoutMs?: number) =>
          (await pingRiak(timeoutMs)).some((ping) => ping.ms !== undefined))),
    { overWithinMs: settings.riakReadTimeoutMs },
  );
  metrics.onSnapshot(() => {
    const snapshot = health.snapshot();
    metrics.value.riak = { reachable: snapshot.reachable ? 1 : 0, outages: snapshot.outages };
  });
  // Asked while the journal is replayed: a start with Riak up waits for nothing more, one
  // with Riak hung at most the ping's timeout.
  const answering = riakBacked ? health.answers() : undefined;
  let parts: MountParts;
  try {
    parts = riakBacked
      ? await startRiakParts(options, spoolDirectory!, metrics, health)
      : await localPartsOf(options);
  } catch (error) {
    // Refused (a spool in use or written for another namespace): nothing may keep probing.
    health.close();
    throw error;
  }
  if (answering !== undefined && !await answering) {
    health.unreachableAtStart(options.whyRiakUnanswered?.());
  }

  const startedAt = new Date().toISOString();
  const report = async (): Promise<StatusReport> => {
    const riak = health.snapshot();
    // The pings go out while the spool is counted, not before: a hung node takes the whole
    // ping timeout. During an outage the mount knows already that Riak is away; what waits
    // in the spool is what the operator asks about then, and it must not wait behind them.
    const pinging = options.pingRiak?.(riak.reachable ? undefined : OUTAGE_PING_TIMEOUT_MS);
    const spool = parts.spool && {
      directory: parts.spool.directory,
      ...await parts.spool.usage(parts.journal?.stagedSizes()),
    };
    return {
      mountpoint: options.mountpoint,
      source: options.source,
      pid: process.pid,
      startedAt,
      preset: presetOf(settings.mode),
      mode: settings.mode,
      riak: { ...riak, nodes: options.riakNodes, pings: await pinging },
      spool,
      metrics: metrics.snapshot(),
    };
  };
  /** When the last drain's timeout runs out: stopping afterwards does not wait it again. */
  let drainDeadline: number | undefined;
  /** The last drain's timeout, for the log of what it left (not the 0 ms left of it). */
  let lastDrainTimeoutMs: number | undefined;
  /** What a stop leaves journaled, from when it began: see the end of a drain. */
  let leftByStop: Promise<number> | undefined;
  const drainUploads = async (
    timeoutMs = settings.drainTimeoutMs,
    progress: (pending: number) => void = () => {},
  ): Promise<DrainOutcome> => {
    const uploads = parts.uploads;
    const endedBefore = { ...uploads?.ended };
    const began = Date.now();
    drainDeadline = began + timeoutMs;
    lastDrainTimeoutMs = timeoutMs;
    logger.info("draining uploads; still serving", {
      pending: uploads?.pendingCount ?? 0,
      timeout_ms: timeoutMs,
    });
    let pending = 0;
    if (uploads) {
      progress(uploads.pendingCount);
      const ticker = setInterval(() => progress(uploads.pendingCount), 250);
      try {
        pending = await uploads.drain(timeoutMs);
        // Stopped meanwhile (unmounted by another `riakfs umount` or a signal): the stopped
        // queue holds nothing, but what it held stays journaled, pending, not drained.
        if (leftByStop) pending = await leftByStop;
      } finally {
        clearInterval(ticker);
      }
    }
    // Counted as they leave the queue, as `pending` is: a job uploaded and still in its
    // after-upload step (drain's removal of the local copy, retried through an outage) is
    // pending, not drained as well.
    const ended = (key: keyof JobsEnded) => (uploads?.ended[key] ?? 0) - (endedBefore[key] ?? 0);
    const outcome: DrainOutcome = {
      drained: ended("uploaded"),
      unneeded: ended("unneeded"),
      givenUp: ended("givenUp"),
      pending,
      timeoutMs,
      spool: parts.spool?.directory,
      // Since the drain began: a refusal of long ago is no reason now.
      riak: pending > 0 ? riakTrouble(health.snapshot(), began - REFUSAL_RECENT_MS) : undefined,
      pid: process.pid,
    };
    // Log fields are snake_case, as everywhere else in the log.
    const fields = {
      drained: outcome.drained,
      unneeded: outcome.unneeded,
      given_up: outcome.givenUp,
      pending,
      timeout_ms: timeoutMs,
      spool: outcome.spool,
    };
    if (pending > 0) {
      logger.warn("drain timed out; pending uploads stay journaled for the next mount", fields);
    } else {
      logger.info("upload queue drained", fields);
    }
    return outcome;
  };
  const { controlSocket } = runtimePaths(options.mountpoint, settings.runDirectory);
  makeOptionDirectory("--run-dir", settings.runDirectory, 0o755);
  let control: ControlServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    control = await startControlServer(controlSocket, report, drainUploads);
    if (settings.metrics !== undefined) {
      metricsServer = await startMetricsServer(
        settings.metrics,
        () => toPrometheus(metrics.snapshot(), { mountpoint: options.mountpoint }),
      );
    }
  } catch (error) {
    health.close();
    await control?.close();
    await parts.stopQueues(0);
    throw error;
  }
  logger.info("overlay ready", {
    mountpoint: options.mountpoint,
    mode: describeMode(settings.mode),
    spool: parts.spool?.directory,
    replayed: parts.replayed,
    // The port is the one bound (`--metrics HOST:0` picks a free one).
    metrics: metricsServer && `port ${metricsServer.port}`,
  });

  let stopped: Promise<number> | undefined;
  const noRoom = new NoRoomReport(logger);
  return {
    fileSystem: instrument(parts.fileSystem, metrics, noRoom),
    metrics,
    controlSocket,
    metricsPort: metricsServer?.port,
    pendingUploads: () => parts.uploads?.pendingCount ?? 0,
    tableSizes: () => parts.tableSizes?.() ?? {},
    drainUploads,
    settle: async (timeoutMs) => {
      await parts.settleDirectoryTimes?.();
      await parts.copies?.idle();
      return await parts.uploads?.drain(timeoutMs) ?? 0;
    },
    stop: (
      drainTimeoutMs = drainDeadline === undefined
        ? settings.drainTimeoutMs
        : Math.max(0, drainDeadline - Date.now()),
    ) =>
      stopped ??= (async () => {
        leftByStop = parts.stopQueues(drainTimeoutMs);
        const left = await leftByStop;
        if (left > 0) {
          logger.warn("uploads still pending at unmount; they stay journaled for the next mount", {
            pending: left,
            spool: parts.spool?.directory,
            drain_timeout_ms: lastDrainTimeoutMs ?? drainTimeoutMs,
          });
        }
        health.close();
        noRoom.close();
        await control?.close();
        await metricsServer?.close();
        return left;
      })(),
  };
}

/** What runs beside a Riak-backed filesystem. */
interface MountParts {
  fileSystem: FileSystem;
  spool?: Spool;
  journal?: UploadJournal;
  uploads?: UploadQueue;
  copies?: CopyOnReadQueue;
  replayed?: number;
  /** Drains uploads for at most `drainTimeoutMs`, stops the queues; resolves with what is left. */
  stopQueues(drainTimeoutMs: number): Promise<number>;
  /** Writes the directory mtimes changed and not yet written to Riak. */
  settleDirectoryTimes?(): Promise<void>;
  /** The overlay's {@link OverlayFileSystem.tableSizes}. */
  tableSizes?(): Record<string, number>;
}

async function localPartsOf(options: OverlayStartOptions): Promise<MountParts> {
  if (!options.localFileSystem) throw new RangeError("a local mode needs its filesystem");
  const fileSystem = await options.localFileSystem();
  // Nothing queued in a local mode: stopping is closing what the filesystem runs (its
  // xattr helper), once nothing is served any more.
  return { fileSystem, stopQueues: async () => (await fileSystem.close?.(), 0) };
}

/** The spool, journal (replayed), queues, cache and the overlay itself. */
async function startRiakParts(
  options: OverlayStartOptions,
  spoolDirectory: string,
  metrics: MountMetrics,
  health: RiakHealth,
): Promise<MountParts> {
  const { settings } = options;
  if (!options.store) throw new RangeError(`mode ${settings.preset} needs a store`);
  const store = options.store;
  const record: SpoolRecord = {
    namespace: placementNames(store.namespace),
    mode: modeFlags(settings.mode),
    mountpoint: options.mountpoint,
  };
  let spool: Spool;
  let made = true;
  const removable = removedWhenIdle(options, spoolDirectory);
  try {
    spool = Spool.open(spoolDirectory);
  } catch (error) {
    // No room for its directory on the disk that filled up: the mount serves all the same
    // (reads drain it) and makes the spool once there is room; only where no journal waits
    // to be replayed.
    spool = Spool.notMadeYet(spoolDirectory);
    made = false;
    if (!isNoRoomError(error) || existsSync(spool.journalFile)) {
      throw new Error(`--spool ${spoolDirectory}: cannot make it: ${(error as Error).message}`);
    }
  }
  let lock = made ? lockSpool(spool) : undefined;
  let started = false;
  try {
    if (made) await claimSpool(spool.directory, record, options.logger);
    const parts = await startOnSpool(options, metrics, health, store, spool, made, () => {
      // Its lock file went with it, or was never made: taken (again), unless another mount
      // took the spool meanwhile; its record too, before the journal is written again.
      lock?.release();
      lock = lockSpool(spool);
      writeSpoolRecord(spool.directory, record);
    });
    started = true;
    const { stopQueues } = parts;
    return {
      ...parts,
      stopQueues: async (drainTimeoutMs) => {
        try {
          const left = await stopQueues(drainTimeoutMs);
          if (left === 0 && removable()) {
            await removeIdleSpool(spool, () => lock?.release(), options);
          }
          return left;
        } finally {
          lock?.release();
        }
      },
    };
  } finally {
    if (!started) lock?.release();
  }
}

/**
 * Whether the mount removes its spool at a clean stop, once nothing in it waits
 * ({@link Spool.removeIfIdle}); asked at the stop. Never one the operator named (`--spool`).
 * The default one under /var/lib/riakfs is riakfs's own, named for this mountpoint: removed
 * whoever made it (an earlier mount's, replayed now). SOURCE/.riakfs-spool only once SOURCE
 * holds nothing else: a drain ends in an emptied directory to delete, which a spool left behind
 * keeps from being empty; before that, the spool keeps its reserved journal room for the next
 * mount over a disk that may fill up again.
 */
function removedWhenIdle(
  options: OverlayStartOptions,
  spoolDirectory: string,
): () => boolean {
  if (options.settings.spool !== undefined) return () => false;
  const { source } = options;
  if (source === undefined) return () => true;
  return () => holdsOnly(source, basename(spoolDirectory));
}

/** Whether `directory` holds `name` and nothing else (reads at most two entries). */
function holdsOnly(directory: string, name: string): boolean {
  let listing: Dir | undefined;
  try {
    listing = opendirSync(directory);
    const first = listing.readSync();
    return first?.name === name && listing.readSync() === null;
  } catch {
    return false;
  } finally {
    listing?.closeSync();
  }
}

/**
 * Removes the spool of a mount that stopped with nothing pending, where
 * {@link removedWhenIdle} allows it, and says so in the log (also when removing it failed).
 * Never fails the stop: a spool left behind is only untidy.
 */
async function removeIdleSpool(
  spool: Spool,
  releaseLock: () => void,
  { logger }: OverlayStartOptions,
): Promise<void> {
  try {
    if (await spool.removeIfIdle(releaseLock)) {
      logger.info("removed the spool: nothing in it was pending", { spool: spool.directory });
    }
  } catch (error) {
    logger.warn("the spool stays: removing it failed", {
      spool: spool.directory,
      error: (error as Error).message,
    });
  }
}

/**
 * Takes the spool for this mount alone: a second mount writing the same journal would
 * replace it, and the first one's acknowledged writes, journaled into the replaced file,
 * would be lost at the next replay.
 */
function lockSpool(spool: Spool): HeldLock {
  const file = spoolLockFile(spool.directory);
  try {
    return acquireLock(file);
  } catch (error) {
    if (isNoRoomError(error)) {
      // A lock needs no byte, but an inode: a disk of many small files can have none left.
      throw new Error(
        `cannot take the spool's lock ${file}: ${(error as Error).message} (its disk has no ` +
          "room left, not even an inode: free a few files there first, say with riakfs " +
          "prewarm --delete-local --state-dir DIR SOURCE, DIR on another filesystem)",
        { cause: error },
      );
    }
    if (!(error instanceof LockedError)) throw error;
    // Not "give this mount a spool of its own": that let a second mount serve the same
    // source beside the first, two drains deleting under each other.
    const holder = readSpoolRecord(spool.directory)?.mountpoint ?? "MOUNTPOINT";
    throw new Error(
      `the spool ${spool.directory} is in use by another riakfs mount` +
        (error.holderPid === undefined ? "" : ` (pid ${error.holderPid})`) +
        `; unmount that one first: riakfs umount ${holder}`,
    );
  }
}

async function startOnSpool(
  options: OverlayStartOptions,
  metrics: MountMetrics,
  health: RiakHealth,
  store: Store,
  spool: Spool,
  made: boolean,
  relock: () => void,
): Promise<MountParts> {
  const { settings, logger } = options;
  const { journal, pending } = made
    ? await UploadJournal.open(spool.journalFile)
    : { journal: UploadJournal.notMadeYet(spool.journalFile), pending: [] };
  /** When the last failure to make the spool was logged: every write tries it again. */
  let failureLoggedAt = -Infinity;
  spool.whenRemoved(() => {
    try {
      relock();
      journal.recreate();
    } catch (error) {
      if (Date.now() - failureLoggedAt >= 60_000) {
        failureLoggedAt = Date.now();
        logger.error("the spool cannot be made (again): writes fail", {
          spool: spool.directory,
          error: (error as Error).message,
        });
      }
      throw error;
    }
    if (!made) {
      made = true;
      logger.info("the spool is made now that its disk has room: writes are taken again", {
        spool: spool.directory,
      });
      return;
    }
    logger.error(
      "the spool was removed while mounted: made again; the writes it held that had not " +
        "reached Riak yet are lost with it (each upload abandoned is logged)",
      { spool: spool.directory, pending: journal.pendingCount },
    );
  });
  if (!made) {
    logger.warn(
      "no room on its disk for the spool: the mount serves, reads drain files into Riak, " +
        "and writes answer ENOSPC until there is room for it",
      { spool: spool.directory },
    );
  }
  const { removed, setAside, leftInPlace } = made
    ? await spool.setAsideUnreferenced(stagedNames(pending))
    : { removed: [], setAside: [], leftInPlace: [] };
  if (removed.length > 0) {
    logger.info("removed empty staged files no journal entry names", { files: removed.length });
  }
  if (setAside.length > 0) {
    logger.warn(
      "staged files no journal entry names (writes cut off before close() answered, or lost " +
        "from a damaged journal) are set aside, not uploaded: look at them",
      { files: setAside.length, directory: spool.unreferencedDirectory },
    );
  }
  if (leftInPlace.length > 0) {
    logger.warn(
      "staged files no journal entry names stay among the staged ones, not uploaded: the disk " +
        "has no room to set them aside; the next mount with room does",
      { files: leftInPlace.length, spool: spool.directory },
    );
  }
  // The queue exists before the overlay it reports back to and the copies it calls off.
  const late: { overlay?: OverlayFileSystem; copies?: CopyOnReadQueue; uploads?: UploadQueue } = {};
  /**
   * A job of the upload queue carries newer news of its path, and of the paths below it,
   * than any copy-on-read. Changed attributes are news of the path alone: the copies below
   * go on (called off, they would not be made again until the next read), and the job waits
   * for those running, which may be making the directory in Riak from its older attributes.
   */
  const withdrawCopies = async (entry: JournalEntry) => {
    const copies = late.copies;
    if (copies === undefined) return;
    const attributesOnly = isMirror(entry) && entry.mirror === "attributes";
    await copies.withdraw(entry.path, { below: !attributesOnly });
    if (attributesOnly) await copies.runningBelow(entry.path);
  };
  const pace = sourcePace(options.source);
  const jobsBelow = (path: string) => late.uploads?.findPendingBelow(path) !== undefined;
  // For `riakfs progress`, which knows only what the pre-warm runs recorded otherwise.
  const keptCopies = options.source !== undefined && settings.mode.afterTransfer === "delete"
    ? new KeptCopies(
      spool.directory,
      options.source,
      (error) =>
        logger.warn("cannot record the local copies kept for riakfs progress", {
          spool: spool.directory,
          error: error.message,
        }),
    )
    : undefined;
  const localCopies: MirrorOptions | undefined = options.source === undefined ? undefined : {
    store,
    source: options.source,
    pace,
    afterTransfer: settings.mode.afterTransfer,
    inUse: { quietPeriodMs: settings.deleteQuietPeriodMs },
    health,
    metrics,
    logger,
    onMirrored: (path, version) => late.overlay?.mirrored(path, version),
    jobsBelow,
    keptCopies,
  };
  const uploads = late.uploads = new UploadQueue({
    spool,
    journal,
    upload: after(withdrawCopies, stagedFileUploader(store, health, logger, options.source)),
    // Without a source, the changes of names made while Riak was away are mirrored alone.
    mirror: after(
      withdrawCopies,
      localCopies
        ? localPathMirrorer(localCopies)
        : riakNameMirrorer({ store, health, logger, jobsBelow }),
    ),
    mirrorable: localCopies ? undefined : isRiakNameMirror,
    concurrency: settings.uploadConcurrency,
    afterUpload: (upload) => late.overlay?.afterUpload(upload) ?? Promise.resolve(),
    deletesLocalCopies: settings.mode.afterTransfer === "delete",
    metrics,
    logger,
  });
  // Replayed before the first request is served: reads of these paths see the spool.
  uploads.resume(pending);
  // Replayed ones too: an outage found as the mount starts is declared after this.
  health.onUnreachable(() => uploads.outageBegan());
  const copier = localCopies && localFileCopier(localCopies);
  const copies = late.copies = new CopyOnReadQueue({
    copy: copier === undefined
      ? () => Promise.resolve()
      // Written, renamed or removed through the mount since it was read: the upload queue's.
      : (path, signal, kind) => {
        if (uploads.hasPending(path)) return Promise.resolve();
        const ended = uploads.newToRiak.changing(path);
        return copier(path, signal, kind).finally(() => {
          ended();
          late.overlay?.afterCopy(path);
        });
      },
    concurrency: settings.copyConcurrency,
    metrics,
    logger,
  });
  health.onReachableAgain(() => {
    uploads.nudge();
    copies.retryAfterOutage();
  });
  const cache = new ChunkCache({
    maxBytes: settings.cacheBytes,
    readAheadBlocks: settings.readAheadBlocks,
    metrics,
  });
  const overlay = late.overlay = new OverlayFileSystem({
    mode: settings.mode,
    source: options.source,
    store,
    spool,
    uploads,
    copies,
    cache,
    health,
    metrics,
    logger,
    riakTimeoutMs: settings.riakReadTimeoutMs,
    entryTimeout: options.entryTimeout,
    attrTimeout: options.attrTimeout,
    now: options.now,
    tableLimits: options.tableLimits,
    fetchedIntoSource: options.fetchedIntoSource,
    supersededDeletionSteps: options.supersededDeletionSteps,
    directoryTimeDelayMs: options.directoryTimeDelayMs,
    directIo: options.directIo,
    sourcePace: pace,
    defaultUid: settings.defaultUid,
    defaultGid: settings.defaultGid,
    keptCopies,
  });
  const leftovers = await overlay.removeLeftoverPublishes();
  if (leftovers > 0) {
    logger.info("removed temporary files a crash left in the source", { files: leftovers });
  }
  return {
    fileSystem: overlay,
    spool,
    journal,
    uploads,
    copies,
    replayed: pending.length,
    settleDirectoryTimes: () => overlay.settleDirectoryTimes(),
    tableSizes: () => overlay.tableSizes,
    stopQueues: async (drainTimeoutMs) => {
      await overlay.settleDirectoryTimes();
      await copies.stop();
      const left = await uploads.drain(drainTimeoutMs);
      await uploads.stop();
      keptCopies?.close();
      await journal.close();
      return left;
    },
  };
}

/** `job`, started once `first` of the same entry resolved. */
function after<Entry extends JournalEntry, Rest extends unknown[]>(
  first: (entry: Entry) => Promise<void>,
  job: (entry: Entry, ...rest: Rest) => Promise<void>,
): (entry: Entry, ...rest: Rest) => Promise<void> {
  return async (entry, ...rest) => {
    await first(entry);
    await job(entry, ...rest);
  };
}
