/**
 * How the overlay asks Riak and waits on what goes to Riak: every request under the mount's
 * deadline and outage tracking, waits for its own uploads and copies bounded the same way.
 *
 * @module
 */

import type { RequestContext } from "../fuse/filesystem.ts";
import type { FileStat, StatOptions, Store } from "../store/store.ts";
import { versionOf } from "./attributes.ts";
import type { ChunkCache } from "./chunk_cache.ts";
import type { CopyOnReadQueue } from "./copy_on_read.ts";
import { isOutageError, type RiakHealth, RiakTimeoutError } from "./health.ts";
import type { Logger } from "./log.ts";
import type { RiakKnowledge } from "./riak_knowledge.ts";
import type { UploadQueue } from "./upload_queue.ts";

/** How the overlay asks Riak for a stat (see {@link RiakCalls.stat}). */
export interface RiakStatOptions extends Pick<StatOptions, "withContent" | "likelyAbsent"> {
  /** An outage answers undefined instead of throwing. */
  quiet?: boolean;
}

/**
 * What {@link RiakCalls} is built from: the mount's store, queues, health and deadline, and
 * where Riak's answers are kept.
 */
export interface RiakCallsOptions {
  store: Pick<Store, "tryStat"> & Partial<Pick<Store, "awaitsLateWrites">>;
  health: Pick<RiakHealth, "run">;
  uploads: Pick<UploadQueue, "hasPending" | "hurry" | "settled" | "settledBelow" | "acknowledged">;
  copies: Pick<CopyOnReadQueue, "hold" | "pause">;
  logger: Logger;
  /** A request that needs Riak fails with EIO after this many milliseconds. */
  riakTimeoutMs: number;
  /** Where the bytes of small files a stat fetched along go. */
  cache: Pick<ChunkCache, "prime">;
  /** Where Riak's stats are cached and remembered. */
  knowledge: Pick<RiakKnowledge, "cached" | "rememberStat">;
  /** The mount's clock, in ms (that of {@link knowledge}). */
  now: () => number;
}

/** The overlay's requests to Riak and its waits for its own work that goes to Riak. */
export class RiakCalls {
  readonly #o: RiakCallsOptions;

  /** `options`: the mount's; held by reference. */
  constructor(options: RiakCallsOptions) {
    this.#o = options;
  }

  /** Runs a Riak request under the mount's deadline and outage tracking. */
  run<T>(operation: string, request: () => Promise<T>): Promise<T> {
    return this.#o.health.run(operation, this.#o.riakTimeoutMs, request);
  }

  /**
   * Riak's stat of `path`, cached for the entry timeout. A small file's bytes fetched
   * `withContent` go to the chunk cache (bounded there), so opening and reading it next
   * needs no other request.
   */
  async stat(
    path: string,
    { quiet = false, withContent = false, likelyAbsent = false }: RiakStatOptions = {},
  ): Promise<FileStat | undefined> {
    const cached = this.#o.knowledge.cached(path);
    const now = this.#o.now();
    if (cached && cached.expires > now) return cached.stat;
    try {
      const fetched = await this.run(
        `stat ${path}`,
        () => this.#o.store.tryStat(path, { withContent, likelyAbsent }),
      );
      if (fetched?.content !== undefined) {
        this.#o.cache.prime(versionOf(path, fetched), fetched.content);
      }
      // A copy without the bytes: the cache holds them within its bound, and the store keeps
      // the fetched object (its whole value) alive for as long as the stat it returned lives.
      const stat = fetched && { ...fetched, content: undefined };
      this.#o.knowledge.rememberStat(path, stat, now);
      return stat;
    } catch (error) {
      if (quiet && !isOutageError(error)) return undefined;
      throw error;
    }
  }

  /**
   * `waiting` (for work of the mount's own that waits on Riak), failing with EIO once the
   * Riak deadline passed. Riak's health is not told: nothing was asked of it here.
   */
  async withinDeadline<T>(operation: string, waiting: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RiakTimeoutError(operation, this.#o.riakTimeoutMs)),
        this.#o.riakTimeoutMs,
      );
    });
    try {
      return await Promise.race([waiting, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `body`, which changes `paths` in Riak, with their copy-on-reads called off and none
   * started meanwhile (a copy landing after it would bring an old name or old bytes back).
   * A copy whose put hangs on an unreachable Riak is waited for at most the Riak deadline,
   * then `body` does not run (EIO); Riak's health is not told, nothing was asked of it.
   * `requeued`: the change leaves the files where they are (their attributes), so the copies
   * called off are queued again after it ({@link CopyOnReadQueue.pause}).
   */
  async holdingCopies<T>(
    operation: string,
    paths: string[],
    body: () => Promise<T>,
    { requeued = false }: { requeued?: boolean } = {},
  ): Promise<T> {
    const holds = paths.map((path) =>
      requeued ? this.#o.copies.pause(path) : this.#o.copies.hold(path)
    );
    try {
      await this.withinDeadline(operation, Promise.all(holds));
      return await body();
    } finally {
      for (const hold of holds) void hold.then((release) => release(), () => {});
    }
  }

  /**
   * Waits (see {@link uploaded}) until pending uploads of `path` reached Riak, moved ahead
   * of the backlog: the request is blocked on them.
   */
  async settled(path: string, ctx?: RequestContext): Promise<void> {
    if (!this.#o.uploads.hasPending(path)) return;
    this.#o.uploads.hurry(path);
    await this.uploaded(`upload ${path}`, () => this.#o.uploads.settled(path), ctx);
  }

  /** {@link settled} of everything at or below `path`. */
  async settledBelow(path: string, ctx?: RequestContext): Promise<void> {
    this.#o.uploads.hurry(path, true);
    await this.uploaded(`upload below ${path}`, () => this.#o.uploads.settledBelow(path), ctx);
  }

  /**
   * Waits for uploads, failing (EIO) only once Riak acknowledged none of the queue's uploads
   * for the Riak deadline: those ahead of them and they themselves may take much longer than
   * the deadline (each is a few round trips, a large file many), and a Riak that answers is
   * no outage. With the request's `ctx`, the request's own deadline (--request-timeout) is
   * held off meanwhile: this one bounds the wait, and the fixed one would answer EIO behind
   * a backlog that moves all along (an interrupt still ends the wait).
   */
  uploaded(operation: string, wait: () => Promise<void>, ctx?: RequestContext): Promise<void> {
    const bounded = () =>
      this.#o.health.run(
        operation,
        this.#o.riakTimeoutMs,
        wait,
        () => this.#o.uploads.acknowledged,
      );
    return ctx ? ctx.withoutDeadline(bounded) : bounded();
  }

  /** Whether a put of `path` that failed may still land in Riak (its answer is awaited). */
  putMayLand(path: string): boolean {
    return this.#o.store.awaitsLateWrites?.(path) ?? false;
  }

  /**
   * Tells the operator why a `change` ("removal", "rename") of `path` in Riak takes a while
   * (up to Riak's put timeout), where it waits for a write of the name that may still land.
   */
  logLateWriteWait(change: string, path: string): void {
    if (!this.putMayLand(path)) return;
    this.#o.logger.info(
      `${change} waits for the answer to a put of the file or an add of its entry that may still land`,
      { path },
    );
  }
}
