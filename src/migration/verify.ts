/**
 * Byte-exact comparison of local files with their Riak copies: sha256 of both sides,
 * streaming (a chunk at a time on each side), for the whole tree, some paths, or a random
 * sample of the tree chosen in one pass with constant memory (reservoir sampling).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Stats } from "node:fs";
import { lstat, readlink } from "node:fs/promises";
import {
  ChecksumMismatchError,
  CorruptObjectError,
  NotFoundError,
  StoreError,
} from "../store/errors.ts";
import { displayBytes, displayPath, normalizePath, type StorePath } from "../store/path.ts";
import { identityOf, storedAttributes } from "./file_identity.ts";
import { describeAttributeDifference } from "./verified_delete.ts";
import type { PathFilter } from "./glob.ts";
import { hashBytes, isFileChanged, readUnchanged, waitOutRacyWindow } from "./local_file.ts";
import { reasonOf } from "./failure_list.ts";
import { hashStoredFile, type MigrationStore } from "./stored_file.ts";
import { specialType, walkTree } from "./walk.ts";
import { seededRandom } from "../util/random.ts";
import { RunLimits } from "./limits.ts";

/** How one file compared. */
export interface FileComparison {
  path: string;
  status: "match" | "differs" | "missing" | "changed-while-reading" | "error";
  /** Why it does not match. */
  detail?: string;
  size: number;
}

/** Options of {@link verifyTree}. */
export interface VerifyOptions {
  source: string;
  store: MigrationStore;
  /** Paths (relative to the source) of files or directories; default: the whole tree. */
  paths?: StorePath[];
  filter?: PathFilter;
  /** Verify this many files chosen at random instead of all. */
  sample?: number;
  /** Seed of the sample's random choice (reproducible samples). */
  seed?: number;
  /** Files compared at once; default 4. */
  concurrency?: number;
  /** Called with each comparison as it finishes. */
  onFile?: (comparison: FileComparison) => void;
  /** Called with each special file met (see {@link VerifySummary.special}) and what it is. */
  onSpecial?: (path: string, type: string) => void;
  /**
   * How long files must keep failing with no Riak node answering (50 of them at least)
   * before the verification stops; default 30 s, as for the pre-warm.
   */
  unreachableStopMs?: number;
  /** Called with each mount point met (see {@link VerifySummary.mountPoints}). */
  onMountPoint?: (path: string) => void;
}

/** Totals of a verification. */
export interface VerifySummary {
  checked: number;
  bytes: number;
  matched: number;
  matchedBytes: number;
  /** Files that differ, are missing in Riak, or could not be compared. */
  differences: FileComparison[];
  /** Files that changed while being read: neither a match nor a difference. */
  changed: number;
  /**
   * FIFOs, sockets and devices met: Riak holds only files, symlinks and directories (the
   * pre-warm leaves them too), so they are not compared; neither a match nor a difference.
   */
  special: number;
  /**
   * Directories where another filesystem is mounted below SOURCE: not walked (the pre-warm
   * does not cross them either); neither a match nor a difference.
   */
  mountPoints: number;
  /**
   * "riak-unreachable": files kept failing with no Riak node answering, and the rest were
   * not compared (they would only fail the same way, each after the client's timeouts).
   */
  stopReason?: "riak-unreachable";
}

/**
 * Verifies files and returns the totals; differences are listed (also through `onFile`).
 *
 * @example
 * ```ts
 * const summary = await verifyTree({ source: "/srv/data", store, sample: 100 });
 * if (summary.differences.length > 0) process.exitCode = 1;
 * ```
 */
export async function verifyTree(options: VerifyOptions): Promise<VerifySummary> {
  const summary: VerifySummary = {
    checked: 0,
    bytes: 0,
    matched: 0,
    matchedBytes: 0,
    differences: [],
    changed: 0,
    special: 0,
    mountPoints: 0,
  };
  const noteSpecial = (path: Buffer, type: string) => {
    summary.special++;
    options.onSpecial?.(displayPath(path), type);
  };
  const limits = new RunLimits({ unreachableStopMs: options.unreachableStopMs });
  const limit = Math.max(1, options.concurrency ?? 4);
  const inFlight = new Set<Promise<void>>();
  const start = async (path: Buffer) => {
    while (inFlight.size >= limit) await Promise.race(inFlight);
    const promise = compareFile(options, path).then((comparison) => {
      inFlight.delete(promise);
      if (comparison.status === "error") limits.entryFailed(failureOf.get(comparison));
      else limits.entryDone();
      summary.checked++;
      summary.bytes += comparison.size;
      if (comparison.status === "match") {
        summary.matched++;
        summary.matchedBytes += comparison.size;
      } else if (comparison.status === "changed-while-reading") summary.changed++;
      else summary.differences.push(comparison);
      options.onFile?.(comparison);
    });
    inFlight.add(promise);
  };
  const noteMountPoint = (path: Buffer) => {
    summary.mountPoints++;
    options.onMountPoint?.(displayPath(path));
  };
  const candidates = candidatePaths(options, noteSpecial, noteMountPoint);
  if (options.sample !== undefined) {
    for (const path of await reservoir(candidates, options.sample, options.seed)) {
      if (limits.reached()) break;
      await start(path);
    }
  } else {
    for await (const path of candidates) {
      if (limits.reached()) break;
      await start(path);
    }
  }
  await Promise.all(inFlight);
  if (limits.reached() === "riak-unreachable") summary.stopReason = "riak-unreachable";
  return summary;
}

/** Why a comparison ended in "error" (kept apart: the summary is printed as JSON). */
const failureOf = new WeakMap<FileComparison, unknown>();

/** Tries at comparing a file that keeps changing while it is read. */
const CHANGED_RETRIES = 3;

/** Compares one file, never throwing: problems become a status. */
export async function compareFile(
  options: Pick<VerifyOptions, "source" | "store">,
  path: Buffer,
): Promise<FileComparison> {
  const notRead = unreadable.get(path);
  if (notRead !== undefined) {
    return { path: displayPath(path), status: "error", detail: `not read: ${notRead}`, size: 0 };
  }
  for (let attempt = 1;; attempt++) {
    const comparison = await compareOnce(options, path);
    if (comparison.status !== "changed-while-reading" || attempt >= CHANGED_RETRIES) {
      return comparison;
    }
    await waitOutRacyWindow();
  }
}

async function compareOnce(
  options: Pick<VerifyOptions, "source" | "store">,
  path: Buffer,
): Promise<FileComparison> {
  const shown = displayPath(path);
  const absolute = Buffer.concat([Buffer.from(options.source), Buffer.from("/"), path]);
  let size = 0;
  try {
    const stats = await lstat(absolute, { bigint: true });
    size = Number(stats.size);
    if (stats.isSymbolicLink()) return await compareSymlink(options, path, absolute);
    const local = await hashBytes(
      readUnchanged(absolute, identityOf(stats), { displayName: shown }),
    );
    let remote: { sha256: string; size: number };
    try {
      remote = await hashStoredFile(options.store, path);
    } catch (error) {
      if (error instanceof NotFoundError) {
        return { path: shown, status: "missing", detail: "not in Riak", size };
      }
      if (error instanceof ChecksumMismatchError || error instanceof CorruptObjectError) {
        return { path: shown, status: "differs", detail: reasonOf(error, shown), size };
      }
      // A directory or a symlink under the name in Riak (the store's own wording of it).
      if (error instanceof StoreError && (error.code === "EISDIR" || error.code === "EINVAL")) {
        const held = error.code === "EISDIR" ? "a directory" : "a symlink";
        return { path: shown, status: "differs", detail: `Riak holds ${held}`, size };
      }
      throw error;
    }
    if (remote.size !== local.size || remote.sha256 !== local.sha256) {
      const difference = remote.size !== local.size
        ? `size differs: local ${local.size}, Riak ${remote.size}`
        : `sha256 differs: local ${local.sha256}, Riak ${remote.sha256}`;
      const newer = await newerInRiak(options.store, path, stats.mtimeNs);
      return { path: shown, status: "differs", detail: difference + newer, size };
    }
    // Same bytes with another mode or owner is no finished migration either: a drain would
    // delete the only copy that has them.
    const held = await options.store.tryStat(path, { fileOnly: true });
    const difference = held &&
      describeAttributeDifference(held, storedAttributes(stats));
    if (difference) return { path: shown, status: "differs", detail: difference, size };
    return { path: shown, status: "match", size };
  } catch (error) {
    if (isFileChanged(error)) return { path: shown, status: "changed-while-reading", size };
    const comparison: FileComparison = {
      path: shown,
      status: "error",
      detail: reasonOf(error, shown),
      size,
    };
    failureOf.set(comparison, error);
    return comparison;
  }
}

/**
 * `; Riak's copy is the newer one (...)` where the copy Riak holds of `path` has a later mtime
 * than the local file's (written through a mount, or by riak-fuse, since): a difference the
 * pre-warm leaves as it is, not damage; else nothing.
 */
async function newerInRiak(
  store: VerifyOptions["store"],
  path: Buffer,
  localMtimeNs: bigint,
): Promise<string> {
  const held = await store.tryStat(path, { fileOnly: true });
  if (held === undefined || held.mtimeNs <= localMtimeNs) return "";
  const shown = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString();
  return `; Riak's copy is the newer one (mtime ${shown(held.mtimeNs)}, local ` +
    `${shown(localMtimeNs)}): the pre-warm leaves it`;
}

/** Compares a symlink's target with the one Riak holds. */
async function compareSymlink(
  options: Pick<VerifyOptions, "store">,
  path: Buffer,
  absolute: Buffer,
): Promise<FileComparison> {
  const shown = displayPath(path);
  const target = await readlink(absolute, { encoding: "buffer" });
  const size = target.length;
  const remote = await options.store.tryStat(path);
  if (remote === undefined) return { path: shown, status: "missing", detail: "not in Riak", size };
  if (remote.type !== "symlink") {
    return { path: shown, status: "differs", detail: `Riak holds a ${remote.type}`, size };
  }
  const stored = await options.store.readlink(path);
  if (!stored.equals(target)) {
    const detail = `target differs: local ${displayBytes(target)}, Riak ${displayBytes(stored)}`;
    return { path: shown, status: "differs", detail, size };
  }
  return { path: shown, status: "match", size };
}

/** The files to verify: the given paths (files, or directories walked), or the whole tree. */
/** Directories the walk could not read, by path: compared, they report as errors. */
const unreadable = new WeakMap<Buffer, string>();

async function* candidatePaths(
  options: VerifyOptions,
  noteSpecial: (path: Buffer, type: string) => void,
  noteMountPoint: (path: Buffer) => void,
): AsyncGenerator<Buffer> {
  const roots = options.paths === undefined || options.paths.length === 0
    ? [Buffer.alloc(0)]
    : options.paths.map((path) => normalizePath(path));
  for (const root of roots) {
    const absolute = Buffer.concat([Buffer.from(options.source), Buffer.from("/"), root]);
    const link = await symlinkOnTheWay(options.source, root);
    if (link !== undefined) {
      // Read through it, the PATH would name a file outside SOURCE (/etc/passwd by way of
      // `etc -> /etc`), which the walk never reaches either.
      unreadable.set(root, `/${link} is a symlink; not followed`);
      yield root;
      continue;
    }
    let stats: Stats;
    try {
      stats = await lstat(absolute);
    } catch {
      yield root; // reported as an error by compareFile
      continue;
    }
    if (stats.isFile() || stats.isSymbolicLink()) {
      yield root;
      continue;
    }
    if (!stats.isDirectory()) {
      noteSpecial(root, specialType(stats));
      continue;
    }
    // Walked from SOURCE's root (below `root`): globs with a `/`, the mount's own entries
    // and the filesystem not crossed are SOURCE's, as for the pre-warm.
    const walk = walkTree(options.source, {
      filter: options.filter,
      under: root.length === 0 ? undefined : root,
    });
    for await (const entry of walk) {
      const path = entry.path;
      if (entry.kind === "unreadable") {
        // Never "identical" for a tree it could not read: the directory is a difference.
        unreadable.set(path, entry.error.message);
        yield path;
      } else if (entry.kind === "mount-point") noteMountPoint(path);
      else if (entry.kind === "file" || entry.kind === "symlink") yield path;
      else if (entry.kind === "other") {
        // Typed by the listing, looked at now: gone or replaced since is not special.
        const now = await lstat(Buffer.concat([Buffer.from(options.source), SLASH, path])).catch(
          () => undefined,
        );
        if (now === undefined) continue;
        if (now.isFile() || now.isSymbolicLink()) yield path;
        else if (!now.isDirectory()) noteSpecial(path, specialType(now));
      }
    }
  }
}

/**
 * The first directory on the way to `path` (relative to `source`) that is a symlink, as a
 * path relative to `source`; undefined when there is none (`path` itself may be one: it is
 * then compared as the symlink it is). A missing component ends the search: the file is then
 * reported missing, as it is.
 *
 * @example
 * ```ts
 * // With /srv/data/etc -> /etc:
 * await symlinkOnTheWay("/srv/data", Buffer.from("etc/passwd")); // "etc"
 * ```
 */
export async function symlinkOnTheWay(
  source: string,
  path: Buffer,
): Promise<string | undefined> {
  const components = splitComponents(path);
  for (let depth = 1; depth < components.length; depth++) {
    const leading = Buffer.concat(
      components.slice(0, depth).flatMap((name, i) => i === 0 ? [name] : [SLASH, name]),
    );
    const stats = await lstat(Buffer.concat([Buffer.from(source), SLASH, leading])).catch(() =>
      undefined
    );
    if (stats === undefined || !(stats.isDirectory() || stats.isSymbolicLink())) return undefined;
    if (stats.isSymbolicLink()) return displayBytes(leading);
  }
  return undefined;
}

const SLASH = Buffer.from("/");

/** `path`'s names, split at each `/` (bytes: a name need not be UTF-8). */
function splitComponents(path: Buffer): Buffer[] {
  const names: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      if (i > start) names.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  return names;
}

/** Picks `n` items uniformly from a stream of unknown length, keeping only `n` in memory. */
export async function reservoir<T>(
  items: AsyncIterable<T>,
  n: number,
  seed: number = Math.floor(Math.random() * 2 ** 32),
): Promise<T[]> {
  const random = seededRandom(seed);
  const kept: T[] = [];
  let seen = 0;
  for await (const item of items) {
    seen++;
    if (kept.length < n) kept.push(item);
    else {
      const slot = Math.floor(random() * seen);
      if (slot < n) kept[slot] = item;
    }
  }
  return kept;
}
