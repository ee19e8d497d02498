/**
 * The cluster: several nodes behind one entry point. This is the one place that decides
 * which node serves a request and whether a failed request is tried again.
 *
 * Retry rule. A failure is retried (on another node when there is one, after an exponential
 * backoff with jitter, at most `maxAttempts` tries in all) when it is transient:
 * connection refused/reset/closed, a timeout, or Riak's `overload` answer (Riak's own
 * `timeout` and `insufficient_vnodes` answers too, for idempotent requests). But a request that
 * reached a node before the failure may have been applied there; it is tried again blindly
 * only when the operation is idempotent. Reads, deletes, bucket-property writes and listings
 * are idempotent. Plain puts and counter updates are not: sending a put again after it was
 * applied makes a sibling (or, for a counter, counts twice). A put with a key is verified
 * instead (`verifyApplied`): a read on another node shows whether its content is stored; if
 * so the put succeeds with what Riak holds, if not it is sent again. Requests that cannot be
 * verified (counter increments, puts without a key) fail with the error, whose
 * `maybeApplied` is true, and the caller decides. A put opts in to blind retries with
 * `idempotent: true` when repeating it is harmless, e.g. to a last-write-wins bucket.
 *
 * A request on a node found hung (see node.ts: it waited `stallCheckAfterMs`, then a ping went
 * unanswered for `pingTimeoutMs`) is given up at once with a {@link ConnectionError} whose
 * `maybeApplied` is true, and goes through the same rules: a read is retried on another node
 * within the caller's patience, not after the request timeout, while the hung node is out of
 * rotation until a ping answers.
 *
 * The cluster keeps a node in rotation as long as one answers at all: a node that does not
 * answer in time never leaves rotation as the last one in it (its requests wait for their own
 * timeout: a busy node is not a dead one), and when the last one leaves because it refuses
 * connections, the node that answered last of those out only for their silence comes back.
 * Only when every node refuses do requests fail at once ("every Riak node is down").
 *
 * When every connection of every usable node is busy, requests wait in a bounded FIFO queue
 * (`queueLimit`, default 1024) for at most `queueTimeoutMs`.
 *
 * @example
 * ```ts
 * const cluster = new RiakCluster({ nodes: "10.0.0.1:8087,10.0.0.2:8087" });
 * const pong = await cluster.execute(
 *   (connection) => connection.request(MessageCode.PingReq, {}, MessageCode.PingResp),
 *   { idempotent: true },
 * );
 * await cluster.close();
 * ```
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";
import type { Connection } from "./connection.ts";
import {
  ClosedError,
  ConnectionError,
  ProtocolError,
  QueueFullError,
  type RequestLabel,
  RiakError,
  TimeoutError,
} from "./errors.ts";
import { type NodeOptions, type NodeState, parseNodeList, RiakNode } from "./node.ts";

/** How the cluster picks a node for each request. */
export type NodeSelection = "round-robin" | "least-busy";

/** Default number of tries of one request (first try included). */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Default first retry delay; it doubles per try up to {@link DEFAULT_RETRY_MAX_DELAY_MS}. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 50;
/** Default largest retry delay. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;
/** Default bound on requests waiting for a connection. */
export const DEFAULT_QUEUE_LIMIT = 1024;
/**
 * Default longest wait for the answer to a write given up on (see
 * {@link ClusterOptions.lateAnswerMs}): Riak's own default put timeout.
 */
export const DEFAULT_LATE_ANSWER_MS = 60_000;

/** Cluster settings; pool and connection settings apply to every node. */
export interface ClusterOptions extends NodeOptions {
  /** `host:port,host:port,...` or a list of them. */
  nodes: string | readonly string[];
  /** Node choice per request; default `round-robin`. */
  selection?: NodeSelection;
  /** Tries per request, first included; default {@link DEFAULT_MAX_ATTEMPTS}. */
  maxAttempts?: number;
  /** First retry delay; default {@link DEFAULT_RETRY_BASE_DELAY_MS}. */
  retryBaseDelayMs?: number;
  /** Largest retry delay; default {@link DEFAULT_RETRY_MAX_DELAY_MS}. */
  retryMaxDelayMs?: number;
  /** Requests allowed to wait for a connection; default {@link DEFAULT_QUEUE_LIMIT}. */
  queueLimit?: number;
  /** Longest wait for a connection; default: the request timeout (30 s). */
  queueTimeoutMs?: number;
  /** Random source in [0,1) for the backoff jitter (tests pass a seeded one). */
  random?: () => number;
  /** Told each time a node goes down or comes back up (an operator wants to hear of it). */
  onNodeStateChange?: (node: NodeStatus) => void;
  /**
   * How long a put or data type update with a key that timed out, or whose node was given up
   * on, keeps its connection open for the answer still owed (ms; see {@link RiakCluster.lateWritesSettled});
   * default {@link DEFAULT_LATE_ANSWER_MS}.
   */
  lateAnswerMs?: number;
}

/** How one operation may be retried. */
export interface ExecuteOptions<T = unknown> {
  /** Whether sending the request again after it may have been applied is harmless. */
  idempotent: boolean;
  /** What the request is, for error texts. */
  label?: RequestLabel;
  /**
   * For an operation that is not idempotent but whose effect can be recognised: reads (on the
   * connection given, of another node when there is one) whether the operation was applied,
   * and returns the result to report if it was, undefined if not. Asked after a failure in
   * which the operation may have been applied; the operation is repeated only when not.
   */
  verifyApplied?: (connection: Connection) => Promise<T | undefined>;
}

/** One node's health and load, as {@link RiakCluster.status} reports it. */
export interface NodeStatus {
  /** `host:port`. */
  address: string;
  state: NodeState;
  /** Requests running on it now. */
  inUse: number;
  openConnections: number;
  /** Why it last failed, if it did. */
  lastFailure?: string;
  /**
   * In rotation only as the last resort: it left for not answering in time, and came back
   * because every other node left too; nothing answered since.
   */
  lastResort: boolean;
}

/** A connection taken from a node's pool, to be released to that node. */
interface Lease {
  node: RiakNode;
  connection: Connection;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The key of a write in {@link RiakCluster}'s late writes: its bucket type, bucket and key. */
function lateWriteKey(label: RequestLabel): string {
  return JSON.stringify([label.type ?? "default", label.bucket, label.key]);
}

/** Several Riak nodes, their pools, node selection, retries and the wait queue. */
export class RiakCluster {
  /** The nodes, in the order given. */
  readonly nodes: readonly RiakNode[];
  private readonly selection: NodeSelection;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly queueLimit: number;
  private readonly queueTimeoutMs: number;
  private readonly random: () => number;
  private readonly waiters: Waiter[] = [];
  /** Callers of {@link whenReachable}, woken whenever a node may have come back. */
  private readonly reachabilityWaiters = new Set<() => void>();
  private nextIndex = 0;
  private closed = false;
  /** See {@link ClusterOptions.lateAnswerMs}. */
  readonly lateAnswerMs: number;
  /** Connections waiting for the answer to a write given up on, by the write's key. */
  private readonly lateWrites = new Map<string, Set<Connection>>();

  constructor(options: ClusterOptions) {
    const {
      nodes,
      selection,
      maxAttempts,
      retryBaseDelayMs,
      retryMaxDelayMs,
      queueLimit,
      queueTimeoutMs,
      random,
      onNodeStateChange,
      lateAnswerMs,
      ...nodeOptions
    } = options;
    this.lateAnswerMs = lateAnswerMs ?? DEFAULT_LATE_ANSWER_MS;
    this.nodes = parseNodeList(nodes).map(({ host, port }) =>
      new RiakNode(host, port, nodeOptions)
    );
    this.selection = selection ?? "round-robin";
    this.maxAttempts = Math.max(1, maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.retryBaseDelayMs = retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
    this.retryMaxDelayMs = retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS;
    this.queueLimit = queueLimit ?? DEFAULT_QUEUE_LIMIT;
    this.queueTimeoutMs = queueTimeoutMs ?? options.requestTimeoutMs ?? 30_000;
    this.random = random ?? Math.random;
    for (const node of this.nodes) {
      node.onAvailable = () => this.pump();
      node.othersInRotation = () =>
        this.nodes.some((other) => other !== node && other.state === "up");
      node.onStateChange = () => {
        onNodeStateChange?.(statusOf(node));
        if (node.state === "down") this.keepOneInRotation();
      };
      node.warmUp();
    }
  }

  /**
   * Runs `operation` on a connection of a chosen node, retrying transient failures as the
   * module documentation describes. The connection is returned to its pool afterwards
   * (or dropped if the operation broke it).
   *
   * @throws {RiakError} Riak's answer when it is not transient (or tries are exhausted).
   * @throws {ConnectionError} / {TimeoutError} when tries are exhausted or retrying is unsafe.
   * @throws {QueueFullError} when too many requests already wait for a connection.
   */
  async execute<T>(
    operation: (connection: Connection) => Promise<T>,
    options: ExecuteOptions<T>,
  ): Promise<T> {
    return await this.executeAvoiding(undefined, operation, options);
  }

  /** {@link execute}, preferring for the first try a node other than `avoid`. */
  private async executeAvoiding<T>(
    avoid: RiakNode | undefined,
    operation: (connection: Connection) => Promise<T>,
    options: ExecuteOptions<T>,
  ): Promise<T> {
    const tried: RiakNode[] = avoid ? [avoid] : [];
    for (let attempt = 1;; attempt++) {
      let lease: Lease | undefined;
      let maybeApplied: unknown;
      try {
        lease = await this.acquire(tried);
        tried.push(lease.node);
        const result = await operation(lease.connection);
        lease.node.answered();
        return result;
      } catch (error) {
        if (lease) reportFailure(lease.node, error);
        if (lease?.connection.lateAnswer && options.label) {
          this.awaitLateAnswer(options.label, lease.connection);
        }
        if (this.canVerify(error, options)) maybeApplied = error;
        else if (!this.shouldRetry(error, options.idempotent, attempt)) {
          throw afterAttempts(error, attempt);
        }
      } finally {
        lease?.node.release(lease.connection);
      }
      if (maybeApplied !== undefined) {
        // even after the last try: "it was applied" still completes the request
        const result = await this.verifyApplied(maybeApplied, tried.at(-1), options);
        if (result !== undefined) return result;
        if (attempt >= this.maxAttempts || this.closed) throw maybeApplied;
        continue; // the verification already waited out a backoff
      }
      await this.backoff(attempt);
    }
  }

  /**
   * Whether a failure may have applied a request that is not idempotent but can be
   * verified: the connection broke or timed out after the request was sent, or Riak gave up
   * on it (its own `timeout`, too few vnodes) after maybe writing some replicas.
   */
  private canVerify<T>(error: unknown, options: ExecuteOptions<T>): boolean {
    if (options.idempotent || options.verifyApplied === undefined || this.closed) return false;
    if (error instanceof RiakError) return error.isTransient && !error.isOverload;
    if (error instanceof ConnectionError || error instanceof TimeoutError) {
      return error.maybeApplied;
    }
    return false;
  }

  /**
   * Runs the verification read after a backoff, preferring a node other than the one that
   * failed, retried like any read. When it cannot be run, the request's own failure (with
   * `maybeApplied`) is what the caller gets.
   */
  private async verifyApplied<T>(
    failure: unknown,
    failedNode: RiakNode | undefined,
    options: ExecuteOptions<T>,
  ): Promise<T | undefined> {
    await this.backoff(1);
    try {
      return await this.executeAvoiding(failedNode, options.verifyApplied!, {
        idempotent: true,
        label: options.label,
      });
    } catch {
      throw failure;
    }
  }

  /**
   * Runs a streaming operation. Before its first item the stream is retried like
   * {@link execute} (streams are reads, hence idempotent); once an item was yielded a
   * failure ends the stream with the error, since items cannot be taken back.
   */
  async *stream<T>(operation: (connection: Connection) => AsyncIterable<T>): AsyncGenerator<T> {
    const tried: RiakNode[] = [];
    for (let attempt = 1;; attempt++) {
      let lease: Lease | undefined;
      let yielded = false;
      try {
        lease = await this.acquire(tried);
        tried.push(lease.node);
        for await (const item of operation(lease.connection)) {
          yielded = true;
          yield item;
        }
        lease.node.answered();
        return;
      } catch (error) {
        if (lease) reportFailure(lease.node, error);
        if (yielded || !this.shouldRetry(error, true, attempt)) throw error;
        await this.backoff(attempt);
      } finally {
        lease?.node.release(lease.connection);
      }
    }
  }

  /** Each node's health and load, for status output. */
  status(): NodeStatus[] {
    return this.nodes.map(statusOf);
  }

  /**
   * Resolves once every write of the key `label` names that was given up on while Riak may
   * still apply it (a put or data type update that timed out, or whose node stopped answering)
   * was answered after all, or its connection closed, or its wait ended
   * ({@link ClusterOptions.lateAnswerMs}). A removal of the key waits for this: before, a put
   * landing late would bring back what it removed (and a set's add, a member it removed).
   */
  lateWritesSettled(label: RequestLabel): Promise<void> {
    const waiting = this.lateWrites.get(lateWriteKey(label));
    if (waiting === undefined) return Promise.resolve();
    return Promise.all([...waiting].map((connection) => connection.lateAnswer)).then(() => {});
  }

  /** Whether a write of the key `label` names awaits its late answer ({@link lateWritesSettled}). */
  awaitsLateWrites(label: RequestLabel): boolean {
    return this.lateWrites.has(lateWriteKey(label));
  }

  /** Remembers `connection`, which waits for the late answer to the write `label` names. */
  private awaitLateAnswer(label: RequestLabel, connection: Connection): void {
    const key = lateWriteKey(label);
    const waiting = this.lateWrites.get(key) ?? new Set<Connection>();
    this.lateWrites.set(key, waiting);
    waiting.add(connection);
    void connection.lateAnswer!.then(() => {
      waiting.delete(connection);
      if (waiting.size === 0 && this.lateWrites.get(key) === waiting) this.lateWrites.delete(key);
    });
  }

  /** Closes every node; waiting requests fail with {@link ClosedError}. */
  close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.lateWrites.values()) {
      for (const connection of waiting) connection.destroy();
    }
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new ClosedError("Riak cluster client"));
    }
    for (const node of this.nodes) node.close();
    for (const wake of [...this.reachabilityWaiters]) wake();
    return Promise.resolve();
  }

  private shouldRetry(error: unknown, idempotent: boolean, attempt: number): boolean {
    if (attempt >= this.maxAttempts || this.closed) return false;
    if (error instanceof RiakError) return error.isOverload || (idempotent && error.isTransient);
    if (error instanceof ProtocolError) return idempotent; // a broken peer: try another node
    if (error instanceof ConnectionError || error instanceof TimeoutError) {
      if (error instanceof TimeoutError && error.phase === "queue") return false;
      return idempotent || !error.maybeApplied;
    }
    return false;
  }

  private backoff(attempt: number): Promise<void> {
    const ceiling = Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** (attempt - 1));
    // "equal jitter": half fixed, half random, so retries of many clients spread out
    const delay = ceiling / 2 + this.random() * ceiling / 2;
    return new Promise((resolve) => setTimeout(resolve, delay));
  }

  /**
   * Picks a node with capacity (preferring one the request has not `tried` yet) and takes a
   * connection of it; waits in the queue while every connection is busy. Choosing and
   * reserving happen in one synchronous step, so concurrent requests never overcommit a pool.
   */
  private async acquire(tried: readonly RiakNode[]): Promise<Lease> {
    // one deadline for the whole wait, however often the request is woken and re-queued
    const deadline = Date.now() + this.queueTimeoutMs;
    let woken = false;
    while (true) {
      if (this.closed) throw new ClosedError("Riak cluster client");
      // first come, first served: a new request does not overtake the waiting ones
      if (woken || this.waiters.length === 0) {
        const node = this.choose(tried);
        if (node !== undefined) return { node, connection: await node.acquire() };
      }
      if (!this.nodes.some((n) => n.state === "up")) {
        // Why each node went down, not which request of another caller found out.
        const reasons = this.nodes.map((n) => {
          const failure = n.lastFailure;
          const why = failure instanceof ConnectionError || failure instanceof TimeoutError
            ? failure.reason
            : failure?.message ?? n.state;
          return `${n.address}: ${why}`;
        });
        throw new ConnectionError(`every Riak node is down (${reasons.join("; ")})`, "cluster");
      }
      // woken but overtaken (the connection went to another request meanwhile): back to the front
      await this.wait(deadline, woken);
      woken = true;
    }
  }

  /**
   * A node for the next try of a request that tried `tried` (in order): one it has not tried
   * yet, else one other than its last. Avoiding only the last let a third try go back to the
   * first node, so two broken nodes of three (answering garbage, cutting answers: they stay
   * in rotation, accepting connections) failed a read that the third would have answered.
   */
  private choose(tried: readonly RiakNode[]): RiakNode | undefined {
    const candidates = this.nodes.filter((node) => node.hasCapacity);
    if (candidates.length === 0) return undefined;
    const untried = candidates.filter((node) => !tried.includes(node));
    const notLast = candidates.filter((node) => node !== tried.at(-1));
    const preferred = untried.length > 0 ? untried : notLast.length > 0 ? notLast : candidates;
    if (this.selection === "least-busy") {
      return preferred.reduce((best, node) => (node.inUse < best.inUse ? node : best));
    }
    for (let i = 0; i < this.nodes.length; i++) {
      const node = this.nodes[(this.nextIndex + i) % this.nodes.length];
      if (preferred.includes(node)) {
        this.nextIndex = (this.nextIndex + i + 1) % this.nodes.length;
        return node;
      }
    }
    return preferred[0];
  }

  private wait(deadline: number, front: boolean): Promise<void> {
    if (!front && this.waiters.length >= this.queueLimit) {
      return Promise.reject(new QueueFullError(this.queueLimit));
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      return Promise.reject(new TimeoutError("cluster", "queue", this.queueTimeoutMs));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(new TimeoutError("cluster", "queue", this.queueTimeoutMs));
        }, remaining),
      };
      if (front) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
    });
  }

  /**
   * Resolves true once some node is up (at once when one is), false after `timeoutMs` or on
   * close. The nodes that are down are pinged now, not at their next interval: a caller about
   * to retry what failed while Riak was away need not wait for the background pings.
   */
  async whenReachable(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (let first = true;; first = false) {
      if (this.nodes.some((node) => node.state === "up")) return true;
      const remaining = deadline - Date.now();
      if (this.closed || remaining <= 0) return false;
      if (first) { for (const node of this.nodes) node.checkNow(); }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.reachabilityWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.reachabilityWaiters.add(wake);
      });
    }
  }

  /**
   * When the last node in rotation left it, takes back the one that answered last of the
   * nodes out only for not answering in time (see the module documentation).
   */
  private keepOneInRotation(): void {
    if (this.closed || this.nodes.some((node) => node.state === "up")) return;
    const silent = this.nodes.filter((node) => node.silentlyDown);
    if (silent.length === 0) return;
    silent.reduce((best, node) => node.lastAnsweredAt > best.lastAnsweredAt ? node : best)
      .reinstate();
  }

  /** Wakes as many waiting requests as there are free slots (they then choose again). */
  private pump(): void {
    for (const wake of [...this.reachabilityWaiters]) wake();
    if (this.waiters.length === 0) return;
    // every node down: wake everyone, they fail fast
    const anyUp = this.nodes.some((node) => node.state === "up");
    const slots = anyUp
      ? this.nodes.reduce((sum, node) => sum + node.freeSlots, 0)
      : this.waiters.length;
    for (const waiter of this.waiters.splice(0, slots)) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}

/** One node's health and load. */
function statusOf(node: RiakNode): NodeStatus {
  return {
    address: node.address,
    state: node.state,
    inUse: node.inUse,
    openConnections: node.openConnections,
    lastFailure: node.lastFailure?.message,
    lastResort: node.lastResort,
  };
}

/**
 * `error`, its message saying how many attempts it ended (a request that timed out three
 * times took three timeouts, not the one its message names).
 */
function afterAttempts(error: unknown, attempts: number): unknown {
  if (attempts > 1 && (error instanceof TimeoutError || error instanceof ConnectionError)) {
    error.message += ` (after ${attempts} attempts)`;
  }
  return error;
}

/**
 * Tells `node` whether a request that failed on its connection was answered at all: a request
 * that timed out was not (a cut connection is the node's restart, which its next connect
 * tells); an error answer was. An answer that breaks the protocol (another service on the
 * port, a broken proxy) takes the node out as a refused connect does: it stayed in rotation,
 * and with other broken nodes a request's tries could all go to them.
 */
function reportFailure(node: RiakNode, error: unknown): void {
  if (error instanceof TimeoutError && error.phase === "request") node.unanswered(error);
  else if (error instanceof ProtocolError) node.markDown(error);
  else if (error instanceof RiakError) node.answered();
}
