/**
 * What a spool was written for, kept beside its journal (`SPOOL/namespace`): the Riak
 * namespace its entries land in, and the mode and mountpoint of the mount that wrote it. A
 * journal replayed by a mount of another namespace would put writes close() acknowledged
 * into another bucket, and leave the one they were written for without them: such a mount
 * refuses the spool while its journal holds pending entries, and takes over one whose journal
 * holds none. A spool of an older riakfs has no record and is used as it was.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { syncDirectory } from "../util/directories.ts";
import { isNoRoomError } from "../util/no_room.ts";
import { pendingInJournal } from "./journal.ts";
import type { Logger } from "./log.ts";
import { describeMode, type MountMode, parseModeFlags, presetOf } from "./modes.ts";
import { spoolJournalFile } from "./spool.ts";

/** The record's file name in the spool. */
const RECORD_NAME = "namespace";

/** Names shown for every namespace in messages, the others only where two differ. */
const ALWAYS_SHOWN = ["bucket-type", "bucket", "sets-bucket-type", "layout"];

/** What a spool was written for. */
export interface SpoolRecord {
  /** The names that decide where its entries land in Riak (the store's `placementNames`). */
  namespace: Record<string, string>;
  /** The mode of the mount that wrote it, as flags ({@link modeFlags}). */
  mode: string;
  /** The mountpoint of the mount that wrote it (absolute). */
  mountpoint: string;
}

/** `--preset NAME`, or the five knobs as flags where the mode is no preset. */
export function modeFlags(mode: MountMode): string {
  const preset = presetOf(mode);
  return preset === undefined ? describeMode(mode) : `--preset ${preset}`;
}

/**
 * The record of spool `directory`; undefined where there is none (a spool of an older riakfs,
 * or none at all) or it is not one (changed by hand): the spool's writer is then unknown.
 */
export function readSpoolRecord(directory: string): SpoolRecord | undefined {
  let parsed: Partial<SpoolRecord>;
  try {
    parsed = JSON.parse(readFileSync(join(directory, RECORD_NAME), "utf8"));
  } catch {
    return undefined;
  }
  const { namespace, mode, mountpoint } = parsed ?? {};
  if (
    typeof namespace !== "object" || namespace === null || typeof mode !== "string" ||
    typeof mountpoint !== "string"
  ) return undefined;
  return { namespace, mode, mountpoint };
}

/**
 * Writes the record of spool `directory` (a temporary file, fsync'd, renamed into place, the
 * directory fsync'd), before any entry is journaled for it. On a disk without room for it,
 * this returns false, and an old record of another namespace is removed (which needs none):
 * a spool without a record is taken as an older riakfs's, never as written for a namespace
 * it was not. An old record of the same namespace stays (its mode and mountpoint may be
 * stale): removed, it would leave the entries journaled under it to any namespace.
 */
export function writeSpoolRecord(directory: string, record: SpoolRecord): boolean {
  const file = join(directory, RECORD_NAME);
  const temporary = `${file}.new`;
  try {
    const fd = openSync(temporary, "w", 0o600);
    try {
      const text = Buffer.from(JSON.stringify(record) + "\n");
      for (let at = 0; at < text.length;) at += writeSync(fd, text, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
    syncDirectory(directory);
    return true;
  } catch (error) {
    rmSync(temporary, { force: true });
    if (!isNoRoomError(error)) throw error;
    const old = readSpoolRecord(directory);
    // Its namespace still guards the entries journaled under it; only a wrong one must go.
    if (old === undefined || !sameNamespace(old.namespace, record.namespace)) {
      rmSync(file, { force: true });
    }
    return false;
  }
}

/** Whether two records name the same namespace. */
function sameNamespace(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => a[key] === b[key]);
}

/** `namespace` as `name=value` words: the usual names, and those that differ from `other`. */
function describeNamespace(
  namespace: Record<string, string>,
  other: Record<string, string>,
): string {
  const shown = Object.keys({ ...namespace, ...other }).filter((key) =>
    ALWAYS_SHOWN.includes(key) || namespace[key] !== other[key]
  );
  return shown.map((key) => `${key}=${namespace[key] ?? "(default)"}`).join(" ");
}

/**
 * Where the record of spool `directory` names another namespace than `namespace` (a store's
 * `placementNames`): both, as `name=value` words; undefined when they are the same or the
 * spool has no record.
 *
 * @example
 * ```ts
 * recordedNamespaceOtherThan("/srv/data/.riakfs-spool", placementNames(store.namespace));
 * // { recorded: "bucket-type=default bucket=s14 ...", given: "bucket-type=default bucket=s14-typo ..." }
 * ```
 */
export function recordedNamespaceOtherThan(
  directory: string,
  namespace: Record<string, string>,
): { recorded: string; given: string } | undefined {
  const record = readSpoolRecord(directory);
  if (record === undefined || sameNamespace(record.namespace, namespace)) return undefined;
  return {
    recorded: describeNamespace(record.namespace, namespace),
    given: describeNamespace(namespace, record.namespace),
  };
}

/**
 * Why the mount recorded in spool `directory` would lose sight of files whose local copies a
 * drain deletes (its mode reads or lists the source alone, as riak-fuse's line without `-dell`
 * translates), with that mode; undefined when it would not, or the record names no mode.
 *
 * @example
 * ```ts
 * recordedModeHidingDrained("/srv/data/.riakfs-spool");
 * // { mode: "--preset shadow", reason: "it reads and lists the local files alone" }
 * ```
 */
export function recordedModeHidingDrained(
  directory: string,
): { mode: string; reason: string } | undefined {
  const record = readSpoolRecord(directory);
  const mode = record && parseModeFlags(record.mode);
  if (mode === undefined) return undefined;
  const alone = [mode.reads === "local" && "reads", mode.listings === "local" && "lists"]
    .filter((verb) => verb !== false);
  if (alone.length === 0) return undefined;
  return { mode: record!.mode, reason: `it ${alone.join(" and ")} the local files alone` };
}

/**
 * Whether the mount recorded in spool `directory` deletes local copies once they are in Riak
 * (`--after-transfer delete`, as drain): SOURCE's files it drained exist only in Riak.
 *
 * @example
 * ```ts
 * recordedModeDeletingLocal("/srv/data/.riakfs-spool"); // true after a drain mount
 * ```
 */
export function recordedModeDeletingLocal(directory: string): boolean {
  const record = readSpoolRecord(directory);
  return record !== undefined && parseModeFlags(record.mode)?.afterTransfer === "delete";
}

/** A spool holds entries journaled for another namespace than the mount's. */
export class SpoolNamespaceError extends Error {
  constructor(directory: string, pending: number, recorded: SpoolRecord, mount: SpoolRecord) {
    const theirs = describeNamespace(recorded.namespace, mount.namespace);
    super(
      `the spool ${directory} holds ${pending} upload(s) journaled for ${theirs}, not for ` +
        `this mount's ${describeNamespace(mount.namespace, recorded.namespace)}: mount again ` +
        `with ${theirs} so they land there (riakfs umount once they are drained), then mount ` +
        "with the new namespace; nothing was replayed",
    );
    this.name = "SpoolNamespaceError";
  }
}

/**
 * Makes spool `directory` this mount's, as `record` describes it, before its journal is
 * opened: throws a {@link SpoolNamespaceError} (nothing read back, replayed or removed) when
 * its record names another namespace and its journal holds pending entries; else (nothing
 * pending, the same namespace, or no record yet) records `record`.
 */
export async function claimSpool(
  directory: string,
  record: SpoolRecord,
  logger: Logger,
): Promise<void> {
  const recorded = readSpoolRecord(directory);
  if (recorded !== undefined && !sameNamespace(recorded.namespace, record.namespace)) {
    const pending = await pendingInJournal(spoolJournalFile(directory));
    if (pending > 0) throw new SpoolNamespaceError(directory, pending, recorded, record);
    logger.info(
      "the spool was written for another namespace and holds nothing pending: taken over",
      {
        spool: directory,
        was: describeNamespace(recorded.namespace, record.namespace),
      },
    );
  }
  if (JSON.stringify(recorded) === JSON.stringify(record)) return;
  if (!writeSpoolRecord(directory, record)) {
    logger.warn(
      "no room on its disk to record the spool's namespace: it is used without one, as an older riakfs's",
      { spool: directory },
    );
  }
}
