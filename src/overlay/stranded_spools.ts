/**
 * Spools a mount would leave unreplayed. Each preset has its own default spool (drain,
 * migrate and shadow `SOURCE/.riakfs-spool`, the riak preset one under /var/lib/riakfs named
 * after the mountpoint), so a mount of the same SOURCE or MOUNTPOINT with another preset (or
 * `--spool`) never reads the journal the last one left: writes close() acknowledged would
 * never reach Riak, and the passthrough would serve SOURCE without them. A mount looks at
 * those spools as it starts (their journals' pending counts only) and refuses while one
 * holds pending entries.
 *
 * @module
 */
import { realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";
import { liveHolderPid } from "../util/lock.ts";
import { pendingInJournal } from "./journal.ts";
import type { Logger } from "./log.ts";
import { type MountMode, usesRiak } from "./modes.ts";
import {
  defaultSpoolDirectory,
  formerSystemSpoolDirectory,
  spoolJournalFile,
  spoolLockFile,
} from "./spool.ts";
import { modeFlags, readSpoolRecord } from "./spool_record.ts";

/** Where a mount looks for spools, and which one it uses. */
export interface SpoolSurroundings {
  /** SOURCE as given to the mount (also for the riak preset, which reads none). */
  source?: string;
  /** The mountpoint (absolute). */
  mountpoint: string;
  /** The spool the mount uses; undefined for a mode without one (the passthrough). */
  spool?: string;
  mode: MountMode;
  logger: Logger;
  /** Where spools of mounts without a source are kept; default /var/lib/riakfs (tests). */
  systemRoot?: string;
}

/** A spool another mount left holds pending entries this mount would not replay. */
export class StrandedSpoolError extends Error {
  constructor(directory: string, pending: number, writer: string, mount: string) {
    super(
      `${directory} holds ${pending} upload(s) not yet in Riak, which this mount (${mount}) ` +
        `would not replay: mount with ${writer} --spool ${directory} to replay them ` +
        "(riakfs umount once they are drained), then mount as you meant to",
    );
    this.name = "StrandedSpoolError";
  }
}

/**
 * The spool a mount of a Riak-backed mode uses: `--spool`, else its default; for a riak
 * preset mount whose default spool's name older riakfs versions gave another
 * ({@link formerSystemSpoolDirectory}), the spool under that name while it holds pending
 * entries left for this mountpoint and the new one holds none (then they are replayed, not
 * stranded).
 */
export async function chooseSpoolDirectory(
  spool: string | undefined,
  source: string | undefined,
  mountpoint: string,
  logger: Logger,
  systemRoot?: string,
): Promise<string> {
  if (spool !== undefined) return spool;
  const current = defaultSpoolDirectory(source, mountpoint, systemRoot);
  const former = source === undefined
    ? formerSystemSpoolDirectory(mountpoint, systemRoot)
    : undefined;
  if (former === undefined || await pendingIn(current, logger) !== 0) return current;
  if (await pendingLeftFor(former, mountpoint, logger) === 0) return current;
  logger.warn(
    "using the spool an older riakfs named for this mountpoint: its journal is replayed",
    { spool: former, new_name: current },
  );
  return former;
}

/**
 * Throws a {@link StrandedSpoolError} when a spool that a mount of the same SOURCE or
 * MOUNTPOINT with another preset uses by default, and this mount does not, holds pending
 * entries. A spool another mount serves from is not stranded and not looked at.
 */
export async function refuseStrandedSpools(surroundings: SpoolSurroundings): Promise<void> {
  const { source, mountpoint, spool, mode, logger, systemRoot } = surroundings;
  const used = spool === undefined ? undefined : realPath(spool);
  const former = formerSystemSpoolDirectory(mountpoint, systemRoot);
  // Who writes each by default: who wrote it, where an older riakfs recorded nothing.
  const candidates = [
    {
      directory: source === undefined ? undefined : join(source, SPOOL_DIRECTORY_NAME),
      writer: "the preset that wrote them (drain, migrate or shadow)",
    },
    {
      directory: defaultSpoolDirectory(undefined, mountpoint, systemRoot),
      writer: "--preset riak",
    },
    { directory: former, writer: "--preset riak" },
  ];
  for (const { directory, writer } of candidates) {
    if (directory === undefined || realPath(directory) === used) continue;
    const pending = directory === former
      ? await pendingLeftFor(directory, mountpoint, logger)
      : await pendingIn(directory, logger);
    if (pending === 0) continue;
    const mount = `${modeFlags(mode)}, ${
      usesRiak(mode) ? `spool ${spool}` : "which serves SOURCE as it is and has no spool"
    }`;
    const recorded = readSpoolRecord(directory)?.mode ?? writer;
    throw new StrandedSpoolError(directory, pending, recorded, mount);
  }
}

/** `path` with its symlinks resolved, as far as it exists: `--spool` may name a spool so. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * The pending entries of the journal in spool `directory` that no live mount holds; 0 when
 * there is none, or it cannot be read (said in the log: the mount it belongs to says more).
 */
async function pendingIn(directory: string, logger: Logger): Promise<number> {
  if (liveHolderPid(spoolLockFile(directory)) !== undefined) return 0;
  try {
    return await pendingInJournal(spoolJournalFile(directory));
  } catch (error) {
    logger.warn("cannot tell whether a spool holds pending uploads", {
      spool: directory,
      error: (error as Error).message,
    });
    return 0;
  }
}

/**
 * {@link pendingIn} of a spool under the former name of `mountpoint`'s, counted only where it
 * was left for this mountpoint: that name is the current one of another (`/x/y/m` and
 * `/x_y/m` had one), whose riakfs records it; an older riakfs recorded none.
 */
async function pendingLeftFor(
  directory: string,
  mountpoint: string,
  logger: Logger,
): Promise<number> {
  const record = readSpoolRecord(directory);
  if (record !== undefined && record.mountpoint !== mountpoint) return 0;
  return await pendingIn(directory, logger);
}
