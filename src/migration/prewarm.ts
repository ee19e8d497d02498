/**
 * The pre-warm run: walks the source tree and makes Riak hold every file, symlink and
 * directory, through the store's own upload code (the same as the mount's), so a file
 * copied here and the same file written through the mount end up identical in Riak.
 *
 * One run: take the lock, retry what failed last time, walk from where the last run
 * stopped (a pass over the tree may span several budget-limited runs), check each file
 * with one head-only get and upload what Riak lacks or holds in another version, then save
 * the cursor, the pass tallies and a history record.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BigIntStats } from "node:fs";
import { readlink } from "node:fs/promises";
import { createHash } from "node:crypto";
import { displayPath } from "../store/path.ts";
import type { FileStat } from "../store/store.ts";
import { type FileIdentity, identityOf, lstatIfExists } from "./file_identity.ts";
import type { PathFilter } from "./glob.ts";
import { RunLimits, type StopReason } from "./limits.ts";
import { acquireLock } from "./lock.ts";
import {
  changedTooRecently,
  DEFAULT_READ_SIZE,
  hashBytes,
  isFileChanged,
  readUnchanged,
  waitOutRacyWindow,
} from "./local_file.ts";
import { type ByteGate, RateLimiter, UNLIMITED } from "./rate_limiter.ts";
import {
  addTally,
  emptyTally,
  type MigrationState,
  type PassTally,
  pathFromHex,
  pathToHex,
  type RunRecord,
  type StateDirectory,
  type Tally,
} from "./state.ts";
import type { MigrationStore } from "./stored_file.ts";
import { deleteIfVerified } from "./verified_delete.ts";
import { walkTree } from "./walk.ts";

/** Exit codes of `prewarm` (2, a usage error, comes from the command line). */
export const EXIT_COMPLETE = 0;
/** Some files failed; they are listed. */
export const EXIT_FAILED = 1;
/** The budget (`--time-budget`, `--max-files`) ended the run; the next run resumes. */
export const EXIT_PARTIAL = 3;
/** Another run holds the lock. */
export const EXIT_LOCKED = 4;

/** Default files in flight. */
export const DEFAULT_CONCURRENCY = 4;
/** Default uploads of a file that keeps changing before it is skipped as busy. */
export const DEFAULT_CHANGE_RETRIES = 3;
/** Failed paths remembered for the next run to retry first. */
export const RETRY_LIST_LIMIT = 1000;
/** Wait before the end-of-run retry of failed paths. */
export const END_OF_RUN_RETRY_DELAY_MS = 1000;
/** Failed paths kept in the history record and the summary. */
export const LISTED_FAILURES_LIMIT = 1000;

/** Options of {@link runPrewarm}. */
export interface PrewarmOptions {
  /** The local tree (absolute path). */
  source: string;
  store: MigrationStore;
  state: StateDirectory;
  /** Files in flight; default {@link DEFAULT_CONCURRENCY}. */
  concurrency?: number;
  /** Upload rate limit, bytes per second. */
  maxBytesPerSecond?: number;
  budgetMs?: number;
  /** Most files uploaded by this run. */
  maxFiles?: number;
  /** Aborting it stops the run cleanly, as a reached budget does (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  filter?: PathFilter;
  /** Compare sha256 of files whose size and mtime match. */
  checksum?: boolean;
  /** Reports what would be uploaded; writes nothing to Riak or to the state. */
  dryRun?: boolean;
  /** Deletes each local file once Riak's copy is verified (drain). */
  deleteLocal?: boolean;
  /** Called for each action of a dry run, and each failure, as it happens. */
  onEvent?: (event: PrewarmEvent) => void;
  /** Called once the run has started, with a live view of its tallies. */
  onStart?: (live: LiveRun) => void;
  changeRetries?: number;
}

/** Something worth telling the operator while the run goes on. */
export type PrewarmEvent =
  | { kind: "would-upload"; path: string; bytes: number; reason: string }
  | { kind: "would-create-directory"; path: string }
  | { kind: "failed"; path: string; error: string }
  | { kind: "busy"; path: string };

/** A live view of a running pre-warm, for progress output. */
export interface LiveRun {
  readonly tally: PassTally;
  readonly startedAt: number;
  /** Files this run is expected to see, from the last complete pass. */
  readonly expectedFiles?: number;
}

/** A failed path and why. */
export interface FailedPath {
  path: string;
  error: string;
}

/** What a run did. */
export interface PrewarmResult {
  outcome: "complete" | "failed" | "partial";
  exitCode: number;
  stopReason?: StopReason;
  dryRun: boolean;
  startedAt: string;
  endedAt: string;
  tally: PassTally;
  /** Failed paths (at most {@link LISTED_FAILURES_LIMIT}; `tally.failed` has the count). */
  failures: FailedPath[];
  /** Paths skipped because they kept changing while being uploaded. */
  busy: string[];
}

interface FailedRecord {
  path: Buffer;
  error: string;
  /** What the entry added to `seen` before it failed (taken back when it is retried). */
  seen?: Tally;
  /** False for a directory the walk could not read: only the next run's walk retries it. */
  retryNow: boolean;
}

interface Pending {
  path: Buffer;
  done: boolean;
}

/**
 * Runs one pre-warm. Throws LockedError when another run holds the lock (exit code
 * {@link EXIT_LOCKED}); every per-file problem is counted and listed instead.
 */
export async function runPrewarm(options: PrewarmOptions): Promise<PrewarmResult> {
  const dryRun = options.dryRun === true;
  if (!dryRun) options.state.ensure();
  const lock = dryRun ? undefined : acquireLock(options.state.lockFile);
  try {
    return await new PrewarmRun(options).run();
  } finally {
    lock?.release();
  }
}

class PrewarmRun {
  readonly #o: PrewarmOptions;
  readonly #source: Buffer;
  readonly #tally = emptyTally();
  /** Failed paths (capped at {@link RETRY_LIST_LIMIT}): listed, retried at the end and next run. */
  readonly #failed: FailedRecord[] = [];
  /** Paths this run had no budget left for (from the retry list or the walk). */
  readonly #notRetried: string[] = [];
  readonly #busy: string[] = [];
  readonly #gate: ByteGate;
  readonly #limits: RunLimits;
  readonly #startedAt = Date.now();
  readonly #inFlight = new Set<Promise<void>>();
  /** Started entries in walk order; the cursor advances over the finished front. */
  readonly #pending: Pending[] = [];
  #cursor: Buffer | undefined;
  /** Some walked entry was left for the next run. */
  #deferred = false;
  readonly #state: MigrationState;

  constructor(options: PrewarmOptions) {
    this.#o = options;
    this.#source = Buffer.from(options.source);
    this.#gate = options.maxBytesPerSecond === undefined
      ? UNLIMITED
      : new RateLimiter(options.maxBytesPerSecond);
    this.#limits = new RunLimits({
      budgetMs: options.budgetMs,
      maxFiles: options.maxFiles,
      signal: options.signal,
    });
    this.#state = options.state.loadState();
  }

  async run(): Promise<PrewarmResult> {
    const dryRun = this.#o.dryRun === true;
    const resumeFrom = !dryRun && this.#state.cursorHex
      ? pathFromHex(this.#state.cursorHex)
      : undefined;
    this.#cursor = resumeFrom;
    const expected = this.#state.lastCompletePass?.tally.seen.files;
    const coveredAlready = resumeFrom ? (this.#state.currentPass?.tally.seen.files ?? 0) : 0;
    this.#o.onStart?.({
      tally: this.#tally,
      startedAt: this.#startedAt,
      expectedFiles: expected === undefined ? undefined : Math.max(0, expected - coveredAlready),
    });

    const retried = new Set<string>();
    let stopReason: StopReason | undefined;
    if (!dryRun) {
      for (const hex of this.#state.retryHex ?? []) {
        stopReason = this.#limits.reached();
        if (stopReason) break;
        retried.add(hex);
        await this.#retry(pathFromHex(hex));
      }
    }
    let walkedToEnd = false;
    if (!stopReason) {
      walkedToEnd = true;
      for await (
        const entry of walkTree(this.#o.source, {
          filter: this.#o.filter,
          startAfter: resumeFrom,
        })
      ) {
        stopReason = this.#limits.reached();
        if (stopReason) {
          walkedToEnd = false;
          break;
        }
        if (entry.kind === "unreadable") {
          this.#fail(entry.path, entry.error, undefined, false);
          continue;
        }
        if (retried.has(pathToHex(entry.path))) continue;
        if (entry.kind === "directory") {
          await this.#track(entry.path, () => this.#directory(entry.path));
        } else if (entry.kind === "file" || entry.kind === "symlink") {
          await this.#schedule(entry.path, entry.kind, true);
        }
      }
    }
    await Promise.all(this.#inFlight);
    if (!dryRun && this.#failed.some((f) => f.retryNow) && !this.#limits.reached()) {
      // One more try for what failed, once Riak had a moment (a node restarting, a blip).
      await new Promise((resolve) => setTimeout(resolve, END_OF_RUN_RETRY_DELAY_MS));
      for (const failure of this.#failed.splice(0)) {
        subtract(this.#tally.failed, { files: 1, bytes: failure.seen?.bytes ?? 0 });
        if (failure.seen) subtract(this.#tally.seen, failure.seen);
        if (!failure.retryNow || this.#limits.reached()) {
          this.#failed.push(failure);
          add(this.#tally.failed, { files: 1, bytes: failure.seen?.bytes ?? 0 });
          if (failure.seen) add(this.#tally.seen, failure.seen);
          continue;
        }
        await this.#retry(failure.path);
      }
      await Promise.all(this.#inFlight);
    }
    if (this.#deferred) {
      walkedToEnd = false;
      stopReason ??= this.#limits.reached();
    }
    return this.#finish(stopReason, walkedToEnd);
  }

  /** Starts one entry once a slot is free. */
  async #schedule(path: Buffer, kind: "file" | "symlink", inWalk: boolean): Promise<void> {
    const limit = this.#o.concurrency ?? DEFAULT_CONCURRENCY;
    while (this.#inFlight.size >= limit) await Promise.race(this.#inFlight);
    const work = kind === "file" ? () => this.#file(path) : () => this.#symlink(path);
    const task = inWalk ? this.#track(path, work) : work().catch((error) => {
      if (!(error instanceof DeferredSignal)) throw error;
      this.#notRetried.push(pathToHex(path));
    });
    const promise = task.finally(() => this.#inFlight.delete(promise));
    this.#inFlight.add(promise);
  }

  /** Tries a path again, whatever it is now (file, symlink or directory). */
  async #retry(path: Buffer): Promise<void> {
    const stats = await lstatIfExists(this.#absolute(path)).catch(() => undefined);
    if (stats?.isDirectory()) {
      await this.#directory(path);
    } else if (stats?.isSymbolicLink()) {
      await this.#schedule(path, "symlink", false);
    } else if (stats?.isFile()) {
      await this.#schedule(path, "file", false);
    }
  }

  /** Runs `work` for a walked entry and advances the cursor over finished entries. */
  async #track(path: Buffer, work: () => Promise<void>): Promise<void> {
    const pending: Pending = { path, done: false };
    this.#pending.push(pending);
    try {
      await work();
    } catch (error) {
      if (!(error instanceof DeferredSignal)) throw error;
      // Left for the next run, which retries it first; the cursor may pass it, so files
      // finished after it are not walked (and counted) again.
      this.#notRetried.push(pathToHex(path));
      this.#deferred = true;
    } finally {
      pending.done = true;
      while (this.#pending.length > 0 && this.#pending[0].done) {
        this.#cursor = this.#pending.shift()!.path;
      }
    }
  }

  async #file(path: Buffer): Promise<void> {
    const absolute = this.#absolute(path);
    const retries = this.#o.changeRetries ?? DEFAULT_CHANGE_RETRIES;
    let counted: Tally | undefined;
    try {
      for (let attempt = 1;; attempt++) {
        const stats = await lstatIfExists(absolute);
        if (!stats || !stats.isFile()) return; // vanished or replaced meanwhile
        const identity = identityOf(stats);
        if (!counted) {
          counted = { files: 1, bytes: Number(stats.size) };
          add(this.#tally.seen, counted);
        }
        if (changedTooRecently(identity) && attempt < retries) {
          // Being written right now: give the writer a moment before spending a transfer.
          await waitOutRacyWindow();
          continue;
        }
        try {
          await this.#fileVersion(path, absolute, stats, identity);
          return;
        } catch (error) {
          if (error instanceof DeferredSignal) {
            subtract(this.#tally.seen, counted);
            throw error;
          }
          if (!isFileChanged(error)) throw error;
          if (attempt >= retries) {
            add(this.#tally.busy, counted);
            this.#busy.push(displayPath(path));
            this.#o.onEvent?.({ kind: "busy", path: displayPath(path) });
            return;
          }
          await waitOutRacyWindow();
        }
      }
    } catch (error) {
      if (error instanceof DeferredSignal) throw error;
      this.#fail(path, error, counted);
    }
  }

  /** Counts a transfer against the budget, or defers the entry to the next run. */
  #startTransfer(): void {
    if (this.#limits.reached()) throw new DeferredSignal();
    this.#limits.startFile();
  }

  /** Brings one version of a file into Riak (or reports it, in a dry run). */
  async #fileVersion(
    path: Buffer,
    absolute: Buffer,
    stats: BigIntStats,
    identity: FileIdentity,
  ): Promise<void> {
    const bytes = { files: 1, bytes: Number(stats.size) };
    // One head-only get; a directory of the same name is caught by the write below.
    const remote = await this.#o.store.tryStat(path, { fileOnly: true });
    if (remote?.type === "file" && remote.mtimeNs > stats.mtimeNs) {
      // Written through the mount after the local copy: the older local bytes never
      // replace it, and the local copy is not Riak's content, so it is not deleted either.
      add(this.#tally.inRiak, bytes);
      add(this.#tally.newerInRiak, bytes);
      return;
    }
    let reason = describeDifference(remote, stats);
    let localSha256: string | undefined;
    if (reason === undefined && this.#o.checksum) {
      localSha256 = (await hashBytes(readUnchanged(absolute, identity, { gate: this.#gate })))
        .sha256;
      if (localSha256 !== remote!.sha256) reason = "content differs (sha256)";
    }
    if (reason === undefined) {
      add(this.#tally.inRiak, bytes);
      if (localSha256 !== undefined) add(this.#tally.verified, bytes);
      if (this.#o.deleteLocal && !this.#o.dryRun) {
        // The deletion rule needs the local content's own hash, never Riak's word for it.
        localSha256 ??= (await hashBytes(readUnchanged(absolute, identity, { gate: this.#gate })))
          .sha256;
        await this.#deleteLocal(path, absolute, identity, localSha256, bytes);
      }
      return;
    }
    if (this.#o.dryRun) {
      this.#wouldUpload(path, remote !== undefined, bytes, reason);
      return;
    }
    this.#startTransfer();
    const written = await this.#o.store.writeFile(
      path,
      readUnchanged(absolute, identity, {
        gate: this.#gate,
        displayName: displayPath(path),
        // A small file in one read into a buffer of its size: 1 MiB buffers for 100 KiB
        // files cost more in garbage collection than the upload itself.
        readSize: Number(
          stats.size < BigInt(DEFAULT_READ_SIZE) ? stats.size + 1n : DEFAULT_READ_SIZE,
        ),
      }),
      {
        mode: Number(stats.mode & 0o7777n),
        uid: Number(stats.uid),
        gid: Number(stats.gid),
        mtimeNs: stats.mtimeNs,
        previous: remote ?? null,
      },
    );
    add(this.#tally.inRiak, bytes);
    add(this.#tally.uploaded, bytes);
    if (this.#o.deleteLocal) {
      await this.#deleteLocal(path, absolute, identity, written.sha256, bytes);
    }
  }

  /** Dry run: counts and reports what a real run would upload. */
  #wouldUpload(path: Buffer, inRiak: boolean, bytes: Tally, reason: string): void {
    add(inRiak ? this.#tally.differing : this.#tally.missing, bytes);
    this.#o.onEvent?.({
      kind: "would-upload",
      path: displayPath(path),
      bytes: bytes.bytes,
      reason,
    });
  }

  async #deleteLocal(
    path: Buffer,
    absolute: Buffer,
    identity: FileIdentity,
    sha256: string,
    bytes: Tally,
  ): Promise<void> {
    const outcome = await deleteIfVerified(this.#o.store, path, absolute, { identity, sha256 });
    if (outcome.deleted) {
      add(this.#tally.verified, bytes);
      add(this.#tally.deleted, bytes);
      return;
    }
    if (outcome.reason === "local-changed") throw new LocalChangedSignal(outcome.detail);
    throw new Error(`not deleted: ${outcome.detail}`);
  }

  async #symlink(path: Buffer): Promise<void> {
    const absolute = this.#absolute(path);
    let target: Buffer;
    try {
      target = await readlink(absolute, { encoding: "buffer" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      this.#fail(path, error);
      return;
    }
    const bytes = { files: 1, bytes: target.length };
    add(this.#tally.seen, bytes);
    try {
      const remote = await this.#o.store.tryStat(path);
      const same = remote?.type === "symlink" &&
        remote.sha256 === createHash("sha256").update(target).digest("hex");
      if (same) {
        add(this.#tally.inRiak, bytes);
        return;
      }
      if (this.#o.dryRun) {
        this.#wouldUpload(
          path,
          remote !== undefined,
          bytes,
          remote ? "symlink differs" : "not in Riak",
        );
        return;
      }
      this.#startTransfer();
      if (remote) await this.#o.store.remove(path);
      await this.#o.store.symlink(path, target);
      add(this.#tally.inRiak, bytes);
      add(this.#tally.uploaded, bytes);
    } catch (error) {
      if (error instanceof DeferredSignal) {
        subtract(this.#tally.seen, bytes);
        throw error;
      }
      this.#fail(path, error, bytes);
    }
  }

  async #directory(path: Buffer): Promise<void> {
    try {
      const remote = await this.#o.store.tryStat(path);
      if (remote?.type === "directory") return;
      if (remote) throw new Error(`Riak holds a ${remote.type} where the source has a directory`);
      if (this.#o.dryRun) {
        this.#o.onEvent?.({ kind: "would-create-directory", path: displayPath(path) });
        return;
      }
      const stats = await lstatIfExists(this.#absolute(path));
      if (!stats) return;
      await this.#o.store.mkdir(path, {
        mode: Number(stats.mode & 0o7777n),
        uid: Number(stats.uid),
        gid: Number(stats.gid),
        mtimeNs: stats.mtimeNs,
      });
    } catch (error) {
      this.#fail(path, error);
    }
  }

  /** Counts and records a failure; `seen` is what the entry added to the seen tally. */
  #fail(path: Buffer, error: unknown, seen?: Tally, retryNow = true): void {
    const bytes = seen?.bytes ?? 0;
    if (error instanceof LocalChangedSignal) {
      // Uploaded and verified, but changed locally meanwhile: kept, and retried next time.
      this.#busy.push(displayPath(path));
      add(this.#tally.busy, { files: 1, bytes });
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    add(this.#tally.failed, { files: 1, bytes });
    if (this.#failed.length < RETRY_LIST_LIMIT) {
      this.#failed.push({ path, error: message, seen: seen && { ...seen }, retryNow });
    }
    this.#o.onEvent?.({ kind: "failed", path: displayPath(path), error: message });
  }

  #absolute(path: Buffer): Buffer {
    return Buffer.concat([this.#source, Buffer.from("/"), path]);
  }

  #finish(stopReason: StopReason | undefined, walkedToEnd: boolean): PrewarmResult {
    const failed = this.#tally.failed.files > 0;
    const outcome = failed ? "failed" : walkedToEnd ? "complete" : "partial";
    const exitCode = failed ? EXIT_FAILED : walkedToEnd ? EXIT_COMPLETE : EXIT_PARTIAL;
    const endedAt = new Date().toISOString();
    const startedAt = new Date(this.#startedAt).toISOString();
    const result: PrewarmResult = {
      outcome,
      exitCode,
      stopReason: walkedToEnd ? undefined : stopReason,
      dryRun: this.#o.dryRun === true,
      startedAt,
      endedAt,
      tally: this.#tally,
      failures: this.#failed.slice(0, LISTED_FAILURES_LIMIT).map((failure) => ({
        path: displayPath(failure.path),
        error: failure.error,
      })),
      busy: this.#busy,
    };
    if (this.#o.dryRun) return result;
    // Read again: `verify` and `progress --rescan` may have recorded results meanwhile.
    const state = this.#o.state.loadState();
    const resumed = this.#state;
    const pass = resumed.cursorHex && resumed.currentPass
      ? resumed.currentPass
      : { startedAt, kind: "prewarm" as const, tally: emptyTally() };
    addTally(pass.tally, this.#tally);
    if (walkedToEnd) {
      state.lastCompletePass = { ...pass, endedAt };
      delete state.currentPass;
      delete state.cursorHex;
    } else {
      state.currentPass = pass;
      state.cursorHex = this.#cursor ? pathToHex(this.#cursor) : undefined;
    }
    state.retryHex = [
      ...this.#failed.filter((failure) => failure.retryNow).map((f) => pathToHex(f.path)),
      ...this.#notRetried,
    ].slice(0, RETRY_LIST_LIMIT);
    this.#o.state.saveState(state);
    const record: RunRecord = {
      startedAt,
      endedAt,
      command: "prewarm",
      outcome,
      exitCode,
      dryRun: false,
      tally: this.#tally,
      failures: result.failures.map((failure) => failure.path),
    };
    this.#o.state.appendHistory(record);
    return result;
  }
}

/** The budget ran out before this entry's transfer: leave it to the next run. */
class DeferredSignal extends Error {}

/** Uploaded and verified, but the local file changed before it could be deleted. */
class LocalChangedSignal extends Error {}

/** Why Riak's copy is not the local version (by size and mtime), or undefined if it is. */
function describeDifference(remote: FileStat | undefined, local: BigIntStats): string | undefined {
  if (!remote) return "not in Riak";
  if (remote.type !== "file") return `Riak holds a ${remote.type}`;
  if (BigInt(remote.size) !== local.size) {
    return `size differs (Riak ${remote.size}, local ${local.size})`;
  }
  if (remote.mtimeNs !== local.mtimeNs) return "mtime differs";
  return undefined;
}

function subtract(from: Tally, less: Tally): void {
  from.files -= less.files;
  from.bytes -= less.bytes;
}

function add(into: Tally, more: Tally): void {
  into.files += more.files;
  into.bytes += more.bytes;
}
