/**
 * Typed errors of the Riak client. Each carries what an operator needs: the node, the request,
 * Riak's own text, and whether the request may have been applied before it failed.
 *
 * @module
 */

/** What a failed request was, for error texts: `RpbPutReq` plus bucket type, bucket and key. */
export interface RequestLabel {
  /** Proto message name of the request (`RpbGetReq`). */
  name: string;
  type?: string;
  bucket?: string;
  key?: string;
}

function describe(request: RequestLabel | undefined): string {
  if (request === undefined) return "";
  const where = [request.type, request.bucket, request.key].filter((part) => part !== undefined);
  return where.length > 0 ? ` ${request.name} ${where.join("/")}` : ` ${request.name}`;
}

/** Riak answered the request with an RpbErrorResp. */
export class RiakError extends Error {
  /** Riak's error text (`notfound`, `modified`, `overload`, `{too_large,55000109}`, ...). */
  readonly errmsg: string;
  /** Riak's error code (0 for nearly every error). */
  readonly errcode: number;
  /** `host:port` of the node that answered. */
  readonly node: string;
  /** The request that failed. */
  readonly request?: RequestLabel;
  constructor(errmsg: string, errcode: number, node: string, request?: RequestLabel) {
    super(`Riak ${node}${describe(request)}: ${errmsg}`);
    this.name = "RiakError";
    this.errmsg = errmsg;
    this.errcode = errcode;
    this.node = node;
    this.request = request;
  }

  /** Riak refused the request because it is overloaded; nothing was applied, retry elsewhere. */
  get isOverload(): boolean {
    return /overload/i.test(this.errmsg);
  }

  /**
   * Riak's connection process crashed on the request, and Riak closes the connection after
   * this answer (riak_api_pb_server; golden 09-errors garbage-body-ping, 05-2i
   * eq-int-not-a-number, 08-crdt gset-add): the connection must not take another request.
   */
  get closesConnection(): boolean {
    return this.errmsg.startsWith("Error processing incoming message");
  }

  /**
   * Riak gave up on the request for a reason that may pass (its own `timeout`, too few
   * vnodes reachable): worth another try when repeating the request is harmless.
   */
  get isTransient(): boolean {
    return this.isOverload || /^timeout$|insufficient_vnodes|unavailable/.test(this.errmsg);
  }
}

/** The connection failed: refused, reset, closed, or the peer broke the protocol. */
export class ConnectionError extends Error {
  /** `host:port` of the node. */
  readonly node: string;
  /** The request in flight, if any. */
  readonly request?: RequestLabel;
  /** Whether the request reached the server before the failure (it may have been applied). */
  readonly maybeApplied: boolean;
  /** The system error code when there is one (`ECONNREFUSED`, `ECONNRESET`, ...). */
  readonly errno?: string;
  /** What went wrong, without the node and request the message starts with. */
  readonly reason: string;
  constructor(
    message: string,
    node: string,
    options: { request?: RequestLabel; maybeApplied?: boolean; cause?: unknown } = {},
  ) {
    super(`${node}${describe(options.request)}: ${message}`, { cause: options.cause });
    this.name = "ConnectionError";
    this.reason = message;
    this.node = node;
    this.request = options.request;
    this.maybeApplied = options.maybeApplied ?? false;
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") this.errno = code;
  }
}

/**
 * The peer sent something the protocol does not allow: a malformed or oversized frame, an
 * unknown or unexpected message code, an undecodable body. The connection is discarded.
 */
export class ProtocolError extends ConnectionError {
  constructor(
    message: string,
    node: string,
    options: { request?: RequestLabel; maybeApplied?: boolean; cause?: unknown } = {},
  ) {
    super(message, node, options);
    this.name = "ProtocolError";
  }
}

/** What timed out. */
export type TimeoutPhase = "connect" | "tls" | "request" | "queue";

/** A connect, a TLS handshake, a request, or a wait for a free connection took too long. */
export class TimeoutError extends Error {
  /** `host:port` of the node, or `cluster` for a queue wait. */
  readonly node: string;
  readonly phase: TimeoutPhase;
  /** The bound that was exceeded. */
  readonly timeoutMs: number;
  readonly request?: RequestLabel;
  /** Whether the request reached the server (it may have been applied). */
  readonly maybeApplied: boolean;
  /** What went wrong, without the node and request the message starts with. */
  readonly reason: string;
  constructor(
    node: string,
    phase: TimeoutPhase,
    timeoutMs: number,
    options: { request?: RequestLabel; maybeApplied?: boolean } = {},
  ) {
    const reason = `${phase} timed out after ${timeoutMs} ms`;
    super(`${node}${describe(options.request)}: ${reason}`);
    this.name = "TimeoutError";
    this.reason = reason;
    this.node = node;
    this.phase = phase;
    this.timeoutMs = timeoutMs;
    this.request = options.request;
    this.maybeApplied = options.maybeApplied ?? false;
  }
}

/** The client, a node or the cluster was closed while the request waited or ran. */
export class ClosedError extends Error {
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = "ClosedError";
  }
}

/** Every connection is busy and the wait queue is full: the caller is sending too much. */
export class QueueFullError extends Error {
  /** The queue bound. */
  readonly queueLimit: number;
  constructor(queueLimit: number) {
    super(`every Riak connection is busy and ${queueLimit} requests already wait`);
    this.name = "QueueFullError";
    this.queueLimit = queueLimit;
  }
}

/**
 * What a failed request got from Riak, from the first Riak client error in `error`'s cause
 * chain (the store wraps the client's errors): "error", a node answered with an error message
 * ({@link RiakError}); "garbled", something answered what the protocol does not allow
 * ({@link ProtocolError}); "none", no node answered (a connection refused, reset or cut, or a
 * connect, TLS, request or queue timeout); undefined, no Riak client error at all.
 *
 * @example
 * ```ts
 * riakAnswerOf(error) === "error"; // Riak said no ("overload", a full disk): it is reachable
 * ```
 */
export function riakAnswerOf(error: unknown): "error" | "garbled" | "none" | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof RiakError) return "error";
    if (e instanceof ProtocolError) return "garbled";
    if (e instanceof ConnectionError || e instanceof TimeoutError) return "none";
  }
  return undefined;
}

/**
 * Whether `error` means that no Riak node answered (see {@link riakAnswerOf}). False when a
 * node did answer, even with an error or garbled, and for any other error: counting those as
 * an outage would call a Riak that refuses a write unreachable.
 *
 * @example
 * ```ts
 * const outageGoesOn = noNodeAnswered(error); // a RiakError "overload" answer: false
 * ```
 */
export function noNodeAnswered(error: unknown): boolean {
  return riakAnswerOf(error) === "none";
}
