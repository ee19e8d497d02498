/**
 * One Riak node and its connection pool: between `minConnections` and `maxConnections`
 * connections, idle ones expire after `idleTimeoutMs`. A node that fails to connect is taken
 * out (`down`) and pinged in the background every `healthCheckIntervalMs` until it answers,
 * then it is back `up`.
 *
 * A hung node (a frozen process, a stalled link: connections are accepted, nothing is
 * answered) is found by its requests: one that waits `stallCheckAfterMs` without an answer,
 * while the node answered nothing else meanwhile, makes the node pinged on a connection of
 * its own. No answer within `pingTimeoutMs` takes the node down at once and gives up its
 * requests in flight, which the cluster retries elsewhere as its rules allow. A request that
 * is only slow keeps waiting: its node answers the ping.
 *
 * A node that does not answer in time (a ping, requests timing out in a row, a connect
 * timing out) leaves rotation only while another node is in it. The last one stays, and its
 * requests wait for their own timeout: a busy node (a long listing, a compaction, a garbage
 * collection, a loaded machine) answers late but answers, and taking the last node out would
 * fail at once every request it would have answered. A refused or reset connection, or an
 * answer that breaks the protocol (the cluster tells), still takes any node out: nothing is
 * waited for there.
 *
 * @module
 */
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import { isIPv6 } from "node:net";
import { isHostName } from "../util/host.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { ClosedError, ConnectionError, TimeoutError } from "./errors.ts";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_STALL_CHECK_AFTER_MS,
} from "./defaults.ts";
import { MessageCode } from "./messages.ts";

/** Default largest number of connections per node. */
export const DEFAULT_MAX_CONNECTIONS = 16;
/** Default number of connections kept open per node even when idle. */
export const DEFAULT_MIN_CONNECTIONS = 1;
/** Default time an idle connection above the minimum stays open. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Default period of the background ping of a node that is down. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 1_000;
/**
 * Requests in a row that time out unanswered before a node is taken out of rotation: a node
 * that accepts connections but never answers (frozen, stalled) would otherwise keep its
 * share of requests, each waiting out its deadline.
 */
export const FAILURES_BEFORE_DOWN = 3;
/** Default Riak protocol-buffers port. */
export const DEFAULT_RIAK_PORT = 8087;

/** Health of a node: `up` takes requests, `down` is being pinged, `closed` is gone for good. */
export type NodeState = "up" | "down" | "closed";

/** Pool settings, and the settings of every connection the pool opens. */
export interface NodeOptions
  extends Omit<ConnectionOptions, "host" | "port" | "stallAfterMs" | "onStall"> {
  /** Connections kept open even when idle; default {@link DEFAULT_MIN_CONNECTIONS}. */
  minConnections?: number;
  /** Largest number of connections; default {@link DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Idle time after which a connection above the minimum is closed; default 60 s. */
  idleTimeoutMs?: number;
  /** Period of the background ping while the node is down; default 1 s. */
  healthCheckIntervalMs?: number;
  /**
   * Wait for an answer after which the node is pinged to tell slow from hung; default
   * {@link DEFAULT_STALL_CHECK_AFTER_MS}. 0 turns the check off.
   */
  stallCheckAfterMs?: number;
  /** Bound on each ping that checks the node, connect included; default 2 s. */
  pingTimeoutMs?: number;
}

/**
 * Parses `host:port,host:port,...` (port defaults to 8087; IPv6 as `[::1]:8087`).
 *
 * @example
 * ```ts
 * parseNodeList("10.0.0.1:8087,10.0.0.2"); // [{host:"10.0.0.1",port:8087},{host:"10.0.0.2",port:8087}]
 * ```
 * @throws {TypeError} naming the entry that is not `host[:port]`.
 */
export function parseNodeList(list: string | readonly string[]): { host: string; port: number }[] {
  const entries =
    (typeof list === "string" ? list.split(",") : list.flatMap((item) => item.split(",")))
      .map((entry) => entry.trim());
  if (entries.every((entry) => entry === "")) {
    throw new TypeError("no Riak node given (expected host:port[,host:port...])");
  }
  if (entries.includes("")) {
    // Often a variable that was empty (`$NODE1,$NODE2`): dropping it would run on fewer
    // nodes than meant, unnoticed.
    const shown = typeof list === "string" ? list : list.join(",");
    throw new TypeError(
      `empty entry in the Riak node list '${shown}' (expected host:port[,host:port...])`,
    );
  }
  return entries.map((entry) => {
    const match = /^(?:\[([^\]]+)\]|([^:\[\]]+))(?::(\d+))?$/.exec(entry);
    const port = match?.[3] === undefined ? DEFAULT_RIAK_PORT : Number(match[3]);
    const hostOk = match !== null &&
      (match[1] !== undefined ? isIPv6(match[1]) : isHostName(match[2]));
    if (!hostOk || !Number.isInteger(port) || port < 1 || port > 65535) {
      const ipv6 = entry.split(":").length > 2 && !entry.startsWith("[");
      throw new TypeError(
        `bad Riak node '${entry}' (expected host:port${
          ipv6 ? "; an IPv6 address in brackets: [::1]:8087" : ""
        })`,
      );
    }
    return { host: match![1] ?? match![2], port };
  });
}

/** One node with its pool. The cluster decides which node serves a request. */
export class RiakNode {
  /** `host:port`. */
  readonly address: string;
  private readonly connectionOptions: ConnectionOptions;
  /** A ping's connection: no stall checks of its own, everything bounded by the ping timeout. */
  private readonly probeOptions: ConnectionOptions;
  private readonly stallCheckAfterMs: number;
  private readonly pingTimeoutMs: number;
  private readonly minConnections: number;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly healthCheckIntervalMs: number;
  private readonly idle: Connection[] = [];
  /** Connections lent out to requests. */
  private readonly busy = new Set<Connection>();
  private openingCount = 0;
  private currentState: NodeState = "up";
  private healthTimer?: ReturnType<typeof setTimeout>;
  /** The ping on its way, if one is: what it found, an error if the node did not answer. */
  private probing?: Promise<Error | undefined>;
  /** The connection of that ping, destroyed if the node closes meanwhile. */
  private probeConnection?: Connection;
  /** When the node last answered a request or a ping (ms since the epoch). */
  private lastAnswerAt = 0;
  private readonly expiryTimer: ReturnType<typeof setInterval>;
  /** Called whenever a connection frees up or the node comes back: the cluster's queue pump. */
  onAvailable: () => void = () => {};
  /** Called when the node goes down or comes back up. */
  onStateChange: () => void = () => {};
  /**
   * Whether another node of the cluster is in rotation (the cluster sets it): a node that
   * does not answer in time leaves rotation only then. Alone, it is the last one.
   */
  othersInRotation: () => boolean = () => false;
  /** Why the node went down last (for errors and status). */
  lastFailure?: Error;
  /** Requests in a row that timed out on a connection of this node (see FAILURES_BEFORE_DOWN). */
  private failuresInARow = 0;
  /** Out of rotation because it did not answer in time, not because it refused. */
  private outForSilence = false;
  /** Back in rotation by {@link reinstate}, and not heard from since. */
  private lastResortOnly = false;

  constructor(host: string, port: number, options: NodeOptions = {}) {
    this.address = `${host}:${port}`;
    const {
      minConnections,
      maxConnections,
      idleTimeoutMs,
      healthCheckIntervalMs,
      stallCheckAfterMs,
      pingTimeoutMs,
      ...connection
    } = options;
    this.stallCheckAfterMs = stallCheckAfterMs ?? DEFAULT_STALL_CHECK_AFTER_MS;
    this.pingTimeoutMs = pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.connectionOptions = {
      ...connection,
      host,
      port,
      ...(this.stallCheckAfterMs > 0 &&
        { stallAfterMs: this.stallCheckAfterMs, onStall: () => this.stalled() }),
    };
    this.probeOptions = {
      ...connection,
      host,
      port,
      connectTimeoutMs: Math.min(
        connection.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        this.pingTimeoutMs,
      ),
      requestTimeoutMs: this.pingTimeoutMs,
    };
    this.maxConnections = Math.max(1, maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.minConnections = Math.min(
      this.maxConnections,
      Math.max(0, minConnections ?? DEFAULT_MIN_CONNECTIONS),
    );
    this.idleTimeoutMs = idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.healthCheckIntervalMs = healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;
    this.expiryTimer = setInterval(
      () => this.expireIdle(),
      Math.max(1_000, this.idleTimeoutMs / 2),
    );
    this.expiryTimer.unref();
  }

  /** Current health. */
  get state(): NodeState {
    return this.currentState;
  }

  /** Requests running on this node now (for least-busy selection). */
  get inUse(): number {
    return this.busy.size + this.openingCount;
  }

  /** Open connections, idle or busy. */
  get openConnections(): number {
    return this.idle.length + this.busy.size;
  }

  /**
   * Whether the node is out of rotation only for not answering in time (a ping, requests,
   * a connect): the cluster's last resort when every other node is out.
   */
  get silentlyDown(): boolean {
    return this.currentState === "down" && this.outForSilence;
  }

  /** When the node last answered a request or a ping (ms since the epoch; 0: never). */
  get lastAnsweredAt(): number {
    return this.lastAnswerAt;
  }

  /**
   * Whether the node is in rotation only as the last resort (see {@link reinstate}) and has
   * answered nothing since.
   */
  get lastResort(): boolean {
    return this.lastResortOnly;
  }

  /** Whether {@link acquire} can start at once: up, and an idle connection or room for one. */
  get hasCapacity(): boolean {
    return this.freeSlots > 0;
  }

  /** Requests it could start now: idle connections plus room for new ones (0 unless up). */
  get freeSlots(): number {
    if (this.currentState !== "up") return 0;
    return Math.max(0, this.maxConnections - this.busy.size - this.openingCount);
  }

  /** Opens the minimum number of connections in the background (failures take the node down). */
  warmUp(): void {
    const missing = this.minConnections - (this.idle.length + this.busy.size + this.openingCount);
    for (let i = 0; i < missing; i++) {
      this.openingCount++;
      Connection.open(this.connectionOptions).then(
        (connection) => {
          this.openingCount--;
          this.giveBack(connection);
        },
        (error) => {
          this.openingCount--;
          this.connectFailed(error);
        },
      );
    }
  }

  /**
   * Takes an idle connection or opens a new one. Call only when {@link hasCapacity}.
   *
   * @throws {ConnectionError} / {TimeoutError} when a new connection fails (the node goes down).
   */
  async acquire(): Promise<Connection> {
    if (this.currentState === "closed") throw new ClosedError(`Riak node ${this.address}`);
    while (this.idle.length > 0) {
      const connection = this.idle.pop()!;
      if (connection.usable) {
        this.busy.add(connection);
        return connection;
      }
    }
    if (this.currentState !== "up") {
      throw new ConnectionError("node is down", this.address, { cause: this.lastFailure });
    }
    this.openingCount++;
    try {
      const connection = await Connection.open(this.connectionOptions);
      this.busy.add(connection);
      return connection;
    } catch (error) {
      this.connectFailed(error as Error);
      throw error;
    } finally {
      this.openingCount--;
    }
  }

  /** Returns a connection after a request; a dead one is dropped. */
  release(connection: Connection): void {
    this.busy.delete(connection);
    this.giveBack(connection);
  }

  private giveBack(connection: Connection): void {
    if (this.currentState === "closed") connection.close();
    else if (connection.usable) this.idle.push(connection);
    this.onAvailable();
  }

  /** A request on one of its connections got an answer (an error answer too). */
  answered(): void {
    this.failuresInARow = 0;
    this.lastAnswerAt = Date.now();
    this.lastResortOnly = false;
  }

  /**
   * A request on one of its connections timed out unanswered; after
   * {@link FAILURES_BEFORE_DOWN} in a row the node goes down until a ping answers again
   * (unless it is the last node in rotation: see the module documentation).
   */
  unanswered(error: Error): void {
    if (++this.failuresInARow < FAILURES_BEFORE_DOWN) return;
    this.failuresInARow = 0;
    this.notAnswering(error);
  }

  /** A new connection failed: timed out, the node did not answer; refused or reset, it is down. */
  private connectFailed(error: Error): void {
    if (error instanceof TimeoutError) this.notAnswering(error);
    else this.markDown(error);
  }

  /**
   * The node did not answer in time: it leaves rotation unless no other node is in it (see
   * the module documentation). Whether it left.
   */
  private notAnswering(error: Error): boolean {
    if (this.currentState === "up" && !this.othersInRotation()) return false;
    this.markDown(error, true);
    return true;
  }

  /**
   * Takes the node out of rotation and pings it in the background until it answers.
   * `silence`: for not answering in time (the cluster may take it back as its last resort).
   */
  markDown(error: Error, silence = false): void {
    this.lastFailure = error;
    if (this.currentState === "closed") return;
    this.outForSilence = silence; // a down node that now refuses is no last resort
    if (this.currentState !== "up") return;
    this.currentState = "down";
    this.lastResortOnly = false;
    for (const connection of this.idle.splice(0)) connection.close();
    this.scheduleHealthCheck();
    this.onStateChange();
    this.onAvailable(); // waiting requests re-choose: another node, or fail fast if none is up
  }

  /**
   * Puts a node that left rotation for not answering in time back in it, as the cluster's
   * last resort once every other node is out too: its requests wait for their own timeout
   * rather than all failing at once. It leaves again when a ping goes unanswered while
   * another node is back.
   */
  reinstate(): void {
    if (!this.silentlyDown) return;
    clearTimeout(this.healthTimer);
    this.currentState = "up";
    this.lastResortOnly = true;
    this.onStateChange();
    this.onAvailable();
  }

  /** Pings a down node now rather than at its next interval (nothing while one is out). */
  checkNow(): void {
    if (this.currentState !== "down" || this.probing !== undefined) return;
    clearTimeout(this.healthTimer);
    void this.healthCheck();
  }

  /**
   * A request on one of its connections has waited `stallCheckAfterMs` for its answer: slow,
   * or hung? Unless the node answered something else meanwhile, a ping tells (see the module
   * documentation).
   */
  private stalled(): void {
    if (this.currentState === "closed") return;
    if (this.currentState === "up" && Date.now() - this.lastAnswerAt < this.stallCheckAfterMs) {
      return;
    }
    void this.probe();
  }

  /**
   * Pings the node on a connection of its own (one ping at a time; a caller during one gets
   * its outcome). Answered, a down node is back up with that connection; unanswered, the node
   * goes down and its requests in flight are given up: they wait on a node that answers
   * nothing, and the cluster retries them elsewhere. Resolves with the ping's error, if any.
   */
  private probe(): Promise<Error | undefined> {
    this.probing ??= this.ping().then((failure) => {
      this.probing = undefined;
      if (this.currentState === "closed") return failure;
      if (failure === undefined) return undefined;
      const reason = `not answering: a ping ${
        failure instanceof ConnectionError || failure instanceof TimeoutError
          ? failure.reason
          : failure.message
      }`;
      const error = new ConnectionError(reason, this.address, { cause: failure });
      if (!(failure instanceof TimeoutError)) this.markDown(error);
      // The last node in rotation stays, its requests waiting on: see the module documentation.
      else if (!this.notAnswering(error)) return failure;
      for (const connection of [...this.busy]) connection.abandon(reason);
      return failure;
    });
    return this.probing;
  }

  /** One ping; a down node it finds answering is back up. */
  private async ping(): Promise<Error | undefined> {
    let connection: Connection | undefined;
    try {
      connection = await Connection.open(this.probeOptions);
      if (this.currentState === "closed") throw new ClosedError(`Riak node ${this.address}`);
      this.probeConnection = connection;
      await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
    } catch (error) {
      connection?.destroy();
      return error as Error;
    } finally {
      this.probeConnection = undefined;
    }
    this.lastAnswerAt = Date.now();
    this.lastResortOnly = false;
    if (this.currentState === "down") {
      this.currentState = "up";
      this.idle.push(connection);
      this.onStateChange();
      this.onAvailable();
    } else connection.close();
    return undefined;
  }

  private scheduleHealthCheck(): void {
    this.healthTimer = setTimeout(() => this.healthCheck(), this.healthCheckIntervalMs);
    this.healthTimer.unref();
  }

  private async healthCheck(): Promise<void> {
    if (this.currentState !== "down") return;
    const failure = await this.probe(); // unanswered, it names the failure (lastFailure)
    if (failure === undefined || this.currentState !== "down") return;
    this.scheduleHealthCheck();
  }

  private expireIdle(): void {
    const cutoff = Date.now() - this.idleTimeoutMs;
    // idle is used as a stack (most recent last), so the oldest connections sit at the front
    while (this.idle.length > 0 && this.idle.length + this.busy.size > this.minConnections) {
      const oldest = this.idle[0];
      if (oldest.usable && oldest.lastUsedAt > cutoff) break;
      this.idle.shift()!.close();
    }
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (!this.idle[i].usable) this.idle.splice(i, 1);
    }
  }

  /** Closes every idle connection and stops the timers; busy ones close when released. */
  close(): void {
    this.currentState = "closed";
    clearInterval(this.expiryTimer);
    clearTimeout(this.healthTimer);
    this.probeConnection?.destroy(new ClosedError(`Riak node ${this.address}`));
    for (const connection of this.idle.splice(0)) connection.close();
  }
}
