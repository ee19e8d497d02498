/**
 * The verified-deletion rule (drain mode, `prewarm --delete-local`, and the mount's
 * overlay): a local file is deleted only after its Riak copy was read back and its sha256
 * matched the local content, and only if the local file did not change since that content
 * was hashed (size, mtime, ctime, inode, device), no other process holds it open for writing
 * (/proc), and it did not change within the quiet period (a writer that opens the file for
 * each line holds it open only now and then).
 *
 * The deletion goes by identity, not by name (set_aside.ts): the file is renamed to a
 * private name beside it, `.riakfs-deleting.<random>.<name>`, and deleted there only if what
 * was moved is still the version hashed (device, inode, size, mtime; not ctime, which the
 * move itself sets). An application's atomic save (a rename over the name) just before the
 * move is put back under its name and reported `local-changed`; where the name holds yet
 * another version by then, the one moved stays under its private name (never deleted: it
 * may be the only copy of its version) and the detail says where. A crash between the move
 * and the last step leaves the private name: the next prewarm walk or mount listing of the
 * directory puts the file back (not one under way in another process, which holds it open).
 *
 * A writer that opens the file after the last look at /proc (at most a second before the
 * deletion) and writes after it can still lose that write; the mount closes that gap for
 * writes routed through itself.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ChecksumMismatchError, CorruptObjectError, NotFoundError } from "../store/errors.ts";
import {
  currentIdentity,
  type FileIdentity,
  isDirectoryBeneath,
  sameIdentity,
} from "./file_identity.ts";
import { OPEN_WRITERS, type OpenWriters } from "./open_writers.ts";
import { discardSetAside, putBack, setAside, setAsideSettled } from "./set_aside.ts";
import { hashStoredFile, type MigrationStore } from "./stored_file.ts";
import type { FileAttributes } from "../store/usermeta.ts";
import { displayBytes, displayPath } from "../store/path.ts";

/**
 * How Riak's mode and owner differ from the local ones, as an operator reads it; undefined
 * when they are the same. An object riakfs did not write (`managed: false`, riak-fuse's) holds
 * none: it is said so, not that Riak holds the mode and owner it is read with.
 *
 * @example
 * ```ts
 * describeAttributeDifference({ mode: 0o644, uid: 0, gid: 0 }, { mode: 0o600, uid: 0, gid: 0 });
 * // "Riak holds mode 0644, owner 0:0; local mode 0600, owner 0:0"
 * ```
 */
export function describeAttributeDifference(
  riak: Pick<FileAttributes, "mode" | "uid" | "gid"> & { managed?: boolean },
  local: Pick<FileAttributes, "mode" | "uid" | "gid">,
): string | undefined {
  if (riak.mode === local.mode && riak.uid === local.uid && riak.gid === local.gid) {
    return undefined;
  }
  const shown = (a: Pick<FileAttributes, "mode" | "uid" | "gid">) =>
    `mode ${a.mode.toString(8).padStart(4, "0")}, owner ${a.uid}:${a.gid}`;
  const held = riak.managed === false
    ? `no mode or owner (not written by riakfs: read as ${shown(riak)})`
    : shown(riak);
  return `Riak holds ${held}; local ${shown(local)}`;
}

/** What {@link deleteIfVerified} did. */
export type DeleteOutcome =
  | { deleted: true }
  | {
    deleted: false;
    /**
     * `riak-differs`: Riak's copy is intact and holds other bytes; `riak-damaged`: it does
     * not match its own recorded checksums; `riak-attributes-differ`: the bytes match, the
     * mode or owner does not.
     */
    reason:
      | "riak-differs"
      | "riak-damaged"
      | "riak-attributes-differ"
      | "riak-missing"
      | "local-changed"
      | "local-active";
    detail: string;
  };

/** What tells a file still in use (see {@link deleteIfVerified}). */
export interface ActivityCheck {
  /**
   * A file whose mtime or ctime is less than this old is kept (`local-active`); default 0:
   * the commands pass their `--delete-quiet-period` (DEFAULT_DELETE_QUIET_PERIOD_S).
   */
  quietPeriodMs?: number;
  /** Who holds files open for writing; default {@link OPEN_WRITERS}. */
  openWriters?: Pick<OpenWriters, "isOpenForWriting">;
  /** The clock, in ms since the epoch. */
  now?: () => number;
  /**
   * For tests: called right before each step of the deletion proper, after every check:
   * `set-aside` (the move of the file out of its name), `discard` (the unlink of the version
   * hashed, once moved), `put-back` (of a file found not to be the version hashed once moved).
   */
  beforeStep?: (step: "set-aside" | "discard" | "put-back") => Promise<void> | void;
}

/** The local version whose content was hashed (by the upload or by `--checksum`). */
export interface HashedVersion {
  identity: FileIdentity;
  /** sha256 (hex) of that version's content. */
  sha256: string;
  /**
   * That version's mode and owner, when Riak must hold them too: the local file may be the
   * only copy that has them (a chmod or chown after its upload).
   */
  attributes?: Pick<FileAttributes, "mode" | "uid" | "gid">;
}

/**
 * Deletes `localFile` if Riak's copy at `storePath` has exactly the content `hashed`
 * describes and the local file is still that version (and, given `within`, its directory
 * is still `within.directory` of `within.root`, not a symlink put in its place), unless the
 * file is in use (`activity`): open for writing by another process, or changed within the
 * quiet period. A file kept for that (`local-active`) is as Riak holds it; a later run or
 * read tries again.
 *
 * @example
 * ```ts
 * const written = await store.writeFile(path, readUnchanged(file, identity));
 * await deleteIfVerified(store, path, file, { identity, sha256: written.sha256 });
 * ```
 */
export async function deleteIfVerified(
  store: MigrationStore,
  storePath: Uint8Array,
  localFile: Buffer | string,
  hashed: HashedVersion,
  within?: { root: Uint8Array; directory: Uint8Array },
  activity: ActivityCheck = {},
): Promise<DeleteOutcome> {
  let remote: { sha256: string; size: number };
  try {
    remote = await hashStoredFile(store, storePath);
  } catch (error) {
    if (error instanceof NotFoundError) {
      return { deleted: false, reason: "riak-missing", detail: error.message };
    }
    if (error instanceof ChecksumMismatchError || error instanceof CorruptObjectError) {
      return { deleted: false, reason: "riak-damaged", detail: error.message };
    }
    throw error;
  }
  if (remote.sha256 !== hashed.sha256 || BigInt(remote.size) !== hashed.identity.size) {
    return {
      deleted: false,
      reason: "riak-differs",
      detail: `Riak holds sha256 ${remote.sha256} (${remote.size} bytes), ` +
        `local ${hashed.sha256} (${hashed.identity.size} bytes)`,
    };
  }
  if (hashed.attributes) {
    const held = await store.tryStat(storePath, { fileOnly: true });
    const difference = held && describeAttributeDifference(held, hashed.attributes);
    if (!held || difference) {
      return {
        deleted: false,
        reason: held ? "riak-attributes-differ" : "riak-missing",
        detail: difference ?? `${displayPath(storePath)}: not in Riak`,
      };
    }
  }
  if (!sameIdentity(await currentIdentity(localFile), hashed.identity)) {
    return changedSinceHashed(localFile);
  }
  if (within && !await isDirectoryBeneath(within.root, within.directory)) {
    return {
      deleted: false,
      reason: "local-changed",
      detail: `${shown(localFile)}: its directory was replaced by a symlink`,
    };
  }
  const inUse = await useOf(hashed.identity, activity);
  if (inUse !== undefined) {
    return {
      deleted: false,
      reason: "local-active",
      detail: `${shown(localFile)}: ${inUse}`,
    };
  }
  // Building the index of writers may have taken a while: changed since, it goes again.
  if (!sameIdentity(await currentIdentity(localFile), hashed.identity)) {
    return changedSinceHashed(localFile);
  }
  return await deleteByIdentity(localFile, hashed.identity, activity);
}

/**
 * Deletes the file at `localFile` if it is still version `identity`, by moving it aside
 * first (see the module's doc): a version saved over the name since the last look survives
 * (`local-changed`). The caller has made every other check; `activity` gives only its
 * `beforeStep`.
 *
 * @example
 * ```ts
 * if (sameIdentity(await currentIdentity(file), superseded)) await deleteByIdentity(file, superseded);
 * ```
 */
export async function deleteByIdentity(
  localFile: Buffer | string,
  identity: FileIdentity,
  activity: Pick<ActivityCheck, "beforeStep"> = {},
): Promise<DeleteOutcome> {
  await activity.beforeStep?.("set-aside");
  const aside = await setAside(Buffer.from(localFile));
  if (aside === undefined) return changedSinceHashed(localFile);
  try {
    const moved = await currentIdentity(aside.file);
    if (moved === undefined) return putBackElsewhere(localFile);
    // The move sets the ctime; the inode, size and mtime say whether it is the version hashed.
    if (sameIdentity({ ...moved, ctimeNs: identity.ctimeNs }, identity)) {
      await activity.beforeStep?.("discard");
      if (!await discardSetAside(aside)) return putBackElsewhere(localFile);
      // Linked back under its name by another process before the unlink: not deleted.
      const now = await currentIdentity(localFile);
      if (now && now.dev === moved.dev && now.ino === moved.ino) {
        return putBackElsewhere(localFile);
      }
      return { deleted: true };
    }
    await activity.beforeStep?.("put-back");
    const outcome = await putBack(aside);
    if (outcome === "gone") return putBackElsewhere(localFile);
    if (outcome === "put-back") return changedSinceHashed(localFile);
    return {
      deleted: false,
      reason: "local-changed",
      detail: `${shown(localFile)} changed since it was hashed, and again while it was put ` +
        `back: the newer version keeps the name, the one before is kept as ${shown(aside.file)}`,
    };
  } finally {
    await setAsideSettled(aside);
  }
}

/**
 * A file another process put back while this one was deleting it (one that could not see
 * the deletion under way: set_aside.ts): it is in use, kept, not deleted; a later run tries again.
 */
function putBackElsewhere(localFile: Buffer | string): DeleteOutcome {
  return {
    deleted: false,
    reason: "local-active",
    detail: `${shown(localFile)}: put back by another process while it was being deleted; kept`,
  };
}

/**
 * Why the file (at its hashed, still current `identity`) may still be being written, if it
 * may: last, right before the unlink, as the other checks ask Riak and take a while.
 */
async function useOf(
  identity: FileIdentity,
  activity: ActivityCheck,
): Promise<string | undefined> {
  const quietNs = BigInt(Math.round((activity.quietPeriodMs ?? 0) * 1e6));
  if (quietNs > 0n) {
    const nowNs = BigInt(Math.round((activity.now ?? Date.now)() * 1e6));
    // Not an mtime in the future (a skewed clock, a tool): the file would be kept for ever,
    // and a drain never end; its ctime is the kernel's.
    const mtimeNs = identity.mtimeNs <= nowNs ? identity.mtimeNs : 0n;
    const changedNs = mtimeNs > identity.ctimeNs ? mtimeNs : identity.ctimeNs;
    if (nowNs - changedNs < quietNs) {
      return `changed within the last ${
        Number(quietNs / 1_000_000n) / 1000
      } s (the quiet period); kept for now`;
    }
  }
  const writers = activity.openWriters ?? OPEN_WRITERS;
  if (await writers.isOpenForWriting(identity.dev, identity.ino, identity.ctimeNs)) {
    return "another process has it open for writing; kept";
  }
  return undefined;
}

function changedSinceHashed(localFile: Buffer | string): DeleteOutcome {
  return {
    deleted: false,
    reason: "local-changed",
    detail: `${shown(localFile)} changed since it was hashed`,
  };
}

/** The local file as an operator reads it: a newline or a byte that is not UTF-8 escaped. */
function shown(localFile: Buffer | string): string {
  return displayBytes(Buffer.from(localFile));
}
