/**
 * One protocol-buffers connection to one Riak node: connect (with timeout), optional
 * StartTls + AuthReq, then one request at a time, answered by one frame or by a stream of
 * frames ending in `done`.
 *
 * A connection that saw a protocol violation, a timeout or an unexpected close is destroyed
 * and never reused ({@link Connection.usable} turns false); an RpbErrorResp only fails the
 * request (Riak keeps the connection open after it, unless it closes it itself). A write
 * given up on may ask to keep it open, unused, for its late answer
 * ({@link RequestOptions.awaitLateAnswerMs}): Riak may apply it still.
 *
 * @example
 * ```ts
 * const connection = await Connection.open({ host: "127.0.0.1", port: 8087 });
 * await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
 * connection.close();
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { decodeMessage, encodeMessageParts } from "./codec.ts";
import {
  ConnectionError,
  ProtocolError,
  type RequestLabel,
  RiakError,
  TimeoutError,
} from "./errors.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrameHeader,
  type Frame,
  FrameDecoder,
  FrameError,
  FrameReceiver,
} from "./frame.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from "./defaults.ts";
import { type MessageByCode, MessageCode, type MessageCodeValue, messageName } from "./messages.ts";

/** Streamed frames buffered ahead of a slow consumer before the socket is paused. */
const STREAM_HIGH_WATER_FRAMES = 32;

/** TLS settings for StartTls. Certificates are PEM; files are read when connecting. */
export interface TlsOptions {
  /** PEM file of the CA that signed Riak's certificate (default: the system CAs). */
  caFile?: string;
  /** PEM text of that CA, instead of a file. */
  ca?: string;
  /** Client certificate PEM file, for Riak's `certificate` security source. */
  certFile?: string;
  /** Client key PEM file. */
  keyFile?: string;
  /** Name Riak's certificate must carry; default: the host. */
  servername?: string;
}

/** User and password for AuthReq (sent only over TLS). */
export interface AuthOptions {
  user: string;
  password: string;
}

/** Options of one connection. */
export interface ConnectionOptions {
  host: string;
  port: number;
  /** Bound on TCP connect and on the TLS handshake; default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Bound on each request; default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Largest accepted frame; default {@link DEFAULT_MAX_FRAME_BYTES} (64 MiB). */
  maxFrameBytes?: number;
  /** Upgrade with StartTls after connecting. */
  tls?: TlsOptions;
  /** Authenticate after the TLS upgrade (requires `tls`). */
  auth?: AuthOptions;
  /**
   * A request that has waited this long for its node without a frame of its answer (a
   * stream's lagging consumer aside) is reported to `onStall`, and again after each further
   * such wait, so that the pool can ask whether the node answers at all: slow, or hung? Off
   * when undefined, and for requests whose own timeout is not longer.
   */
  stallAfterMs?: number;
  /** Told of each stall (see `stallAfterMs`). */
  onStall?: () => void;
}

/** Per-request settings. */
export interface RequestOptions {
  /** Overrides the connection's request timeout for this request. */
  timeoutMs?: number;
  /** What the request is, for error texts. */
  label?: RequestLabel;
  /**
   * For a write Riak may still apply after the request timed out or its node was given up
   * on (a timed-out request may or may not be applied, and a node that resumes works off
   * what it received): the request fails all the same, but the connection stays open, never
   * reused, for the answer still owed, at most this long (ms). {@link Connection.lateAnswer}
   * settles once that answer came, the node closed the connection, or this time passed.
   */
  awaitLateAnswerMs?: number;
}

interface Pending {
  label: RequestLabel;
  timeoutMs: number;
  awaitLateAnswerMs?: number;
  timer?: ReturnType<typeof setTimeout>;
  onFrame(frame: Frame): void;
  fail(error: Error): void;
}

/** A socket read with `onread`: where its reads go, and who is told of each. */
interface DirectReads {
  receiver: FrameReceiver;
  /** Called with the byte count of each read (set once the connection is attached). */
  deliver: (count: number) => void;
}

/** One connection to one Riak node. Not shareable: one request at a time. */
export class Connection {
  /** `host:port` of the node. */
  readonly node: string;
  private readonly options: ConnectionOptions;
  private socket: Socket | TLSSocket;
  private decoder: FrameDecoder;
  private pending?: Pending;
  private failure?: Error;
  private detach: () => void = () => {};
  /** Reading is paused because a stream's consumer lags (see STREAM_HIGH_WATER_FRAMES). */
  private pausedForConsumer = false;
  /** When the last request finished (ms since epoch); pools expire idle connections by it. */
  lastUsedAt = Date.now();
  /**
   * Set once a write given up on waits for its answer (see
   * {@link RequestOptions.awaitLateAnswerMs}): settles when the wait is over.
   */
  lateAnswer?: Promise<void>;
  /** Whether frames still go to the request given up on (see {@link lateAnswer}). */
  private awaitingLateAnswer = false;

  private constructor(socket: Socket, options: ConnectionOptions, reads?: DirectReads) {
    this.node = `${options.host}:${options.port}`;
    this.options = options;
    this.socket = socket;
    this.decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    });
    this.attach(socket, reads);
  }

  /**
   * Connects, then upgrades to TLS and authenticates when the options ask for it.
   *
   * @throws {TimeoutError} when connect or the handshake exceeds `connectTimeoutMs`.
   * @throws {ConnectionError} when the node refuses or resets the connection.
   * @throws {RiakError} when Riak refuses StartTls or the credentials.
   */
  static async open(options: ConnectionOptions): Promise<Connection> {
    if (options.auth && !options.tls) {
      throw new TypeError("Riak accepts credentials only over TLS: set tls together with auth");
    }
    const node = `${options.host}:${options.port}`;
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // Without TLS, answers are read straight into the frames' own memory (see FrameReceiver):
    // a value is not copied out of socket chunks, and no chunk is left as garbage. The TLS
    // upgrade takes the socket's reads over, so a connection that will use it reads chunks.
    const reads: DirectReads | undefined = options.tls ? undefined : {
      receiver: new FrameReceiver({
        maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      }),
      deliver: () => {},
    };
    const socket = netConnect({
      host: options.host,
      port: options.port,
      noDelay: true,
      ...(reads && {
        onread: {
          buffer: () => reads.receiver.nextBuffer(),
          callback: (count: number) => {
            reads.deliver(count);
            return true;
          },
        },
      }),
    });
    await settleWithin(
      socket,
      "connect",
      timeoutMs,
      () => new TimeoutError(node, "connect", timeoutMs),
      (error) => new ConnectionError(`cannot connect: ${error.message}`, node, { cause: error }),
    );
    if (socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress) {
      // TCP simultaneous open: with nothing listening on a local port of the ephemeral range
      // (a node restarting), a connect given that same port as its own reaches itself.
      socket.destroy();
      throw new ConnectionError("cannot connect: nothing listens (connected to itself)", node);
    }
    socket.setKeepAlive(true, 60_000);
    const connection = new Connection(socket, options, reads);
    try {
      if (options.tls) await connection.startTls(options.tls, timeoutMs);
      if (options.auth) {
        const encoder = new TextEncoder();
        await connection.request(MessageCode.AuthReq, {
          user: encoder.encode(options.auth.user),
          password: encoder.encode(options.auth.password),
        }, MessageCode.AuthResp);
      }
    } catch (error) {
      connection.destroy(error as Error);
      throw error;
    }
    return connection;
  }

  /** True while the connection can take a request: open, healthy and idle. */
  get usable(): boolean {
    return this.failure === undefined && this.pending === undefined;
  }

  /** True once the connection was destroyed or closed; it never comes back. */
  get dead(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Sends one request and waits for its one answer frame.
   *
   * @throws {RiakError} when Riak answers with an error (the connection stays usable).
   * @throws {TimeoutError} / {ConnectionError} / {ProtocolError}: the connection is destroyed.
   */
  request<C extends MessageCodeValue, R extends MessageCodeValue>(
    code: C,
    message: MessageByCode[C],
    responseCode: R,
    options: RequestOptions = {},
  ): Promise<MessageByCode[R]> {
    return new Promise((resolve, reject) => {
      this.send(code, message, options, {
        onFrame: (frame, finish) => {
          const decoded = this.decodeAnswer(frame, responseCode, finish.label);
          finish.done();
          if (decoded instanceof Error) reject(decoded);
          else resolve(decoded as MessageByCode[R]);
        },
        fail: reject,
      });
    });
  }

  /**
   * Sends one request whose answer is a stream of frames, and yields each decoded frame up
   * to and including the one for which `isLast` is true (Riak sets `done` on it). An
   * RpbErrorResp ends the stream with a {@link RiakError}. The request timeout bounds the
   * wait for each frame. Leaving the loop early destroys the connection (the rest of the
   * stream would still arrive on it).
   */
  stream<C extends MessageCodeValue, R extends MessageCodeValue>(
    code: C,
    message: MessageByCode[C],
    responseCode: R,
    isLast: (frame: MessageByCode[R]) => boolean,
    options: RequestOptions = {},
  ): AsyncIterableIterator<MessageByCode[R]> {
    const queue: MessageByCode[R][] = [];
    let ended = false;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const waiter = wake;
      wake = undefined;
      waiter?.();
    };
    this.send(code, message, options, {
      onFrame: (frame, finish) => {
        const decoded = this.decodeAnswer(frame, responseCode, finish.label);
        if (decoded instanceof Error) {
          error = decoded;
          finish.done();
        } else {
          queue.push(decoded as MessageByCode[R]);
          if (isLast(decoded as MessageByCode[R])) {
            ended = true;
            finish.done();
          } else if (queue.length >= STREAM_HIGH_WATER_FRAMES) {
            this.pausedForConsumer = true;
            this.socket.pause();
          }
        }
        notify();
      },
      fail: (failure) => {
        error = failure;
        notify();
      },
    });
    return this.drain(queue, () => ({ ended, error }), (resolve) => (wake = resolve));
  }

  private async *drain<T>(
    queue: T[],
    status: () => { ended: boolean; error?: Error },
    sleep: (wake: () => void) => void,
  ): AsyncGenerator<T> {
    let finished = false;
    try {
      while (true) {
        const { ended, error } = status();
        if (queue.length > 0) {
          const next = queue.shift()!;
          if (queue.length === 0 && this.pausedForConsumer) {
            this.pausedForConsumer = false;
            this.socket.resume();
            // The wait so far was the consumer's: the node gets a whole timeout from now. A
            // timer running out in this turn would fire before the socket reads what waits.
            if (this.pending !== undefined) this.armTimer(this.pending);
          }
          yield next;
          continue;
        }
        if (error !== undefined) {
          finished = true;
          throw error;
        }
        if (ended) {
          finished = true;
          return;
        }
        await new Promise<void>(sleep);
      }
    } finally {
      if (!finished) {
        const { ended, error } = status();
        if (!this.dead && (ended || error instanceof RiakError)) {
          // the whole answer is in (unread items are just dropped): the connection is clean,
          // but it may still be paused for this consumer and would never read the next answer
          if (this.pausedForConsumer) {
            this.pausedForConsumer = false;
            this.socket.resume();
          }
        } else {
          this.destroy(new ConnectionError("stream abandoned before its last frame", this.node));
        }
      }
    }
  }

  /** Closes the connection politely (no request may be in flight). */
  close(): void {
    if (this.failure !== undefined) return;
    this.failure = new ConnectionError("connection closed by the client", this.node);
    this.detach();
    this.socket.end();
    this.socket.destroySoon?.();
  }

  /** Destroys the connection at once, failing the request in flight with `error`. */
  destroy(error: Error = new ConnectionError("connection destroyed", this.node)): void {
    if (this.failure === undefined) this.failure = error;
    this.awaitingLateAnswer = false;
    this.detach();
    this.socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      pending.fail(error);
    }
  }

  /**
   * Gives up on the request in flight because its node stopped answering: it fails with a
   * {@link ConnectionError} saying `reason` (`maybeApplied`: it was sent), and the connection
   * is destroyed, as the answer could still arrive on it.
   */
  abandon(reason: string): void {
    const pending = this.pending;
    this.giveUp(
      pending,
      new ConnectionError(reason, this.node, {
        request: pending?.label,
        maybeApplied: pending !== undefined,
      }),
    );
  }

  /**
   * Fails `pending`, the request in flight, with `error`: destroys the connection, or, for a
   * write whose answer is still awaited ({@link RequestOptions.awaitLateAnswerMs}), keeps it
   * open for that answer alone.
   */
  private giveUp(pending: Pending | undefined, error: Error): void {
    if (pending?.awaitLateAnswerMs === undefined || this.awaitingLateAnswer) {
      return this.destroy(error);
    }
    this.failure ??= error;
    clearTimeout(pending.timer);
    this.awaitingLateAnswer = true;
    let settle!: () => void;
    this.lateAnswer = new Promise<void>((resolve) => settle = resolve);
    const timer = setTimeout(() => this.destroy(), pending.awaitLateAnswerMs);
    // The wait keeps no process alive: one ending meanwhile closes the socket all the same.
    (timer as { unref?: () => void }).unref?.();
    this.socket.unref();
    this.pending = {
      label: pending.label,
      timeoutMs: pending.timeoutMs,
      // Whatever the answer says, the write's fate is decided.
      onFrame: () => this.destroy(),
      fail: () => {
        clearTimeout(timer);
        settle();
      },
    };
    pending.fail(error);
  }

  private send(
    code: number,
    message: object,
    options: RequestOptions,
    handler: {
      onFrame(frame: Frame, finish: { label: RequestLabel; done(): void }): void;
      fail(error: Error): void;
    },
  ): void {
    const label = options.label ?? { name: messageName(code) };
    if (this.failure !== undefined) {
      handler.fail(
        new ConnectionError(`connection is unusable: ${this.failure.message}`, this.node, {
          request: label,
        }),
      );
      return;
    }
    if (this.pending !== undefined) {
      handler.fail(new Error(`connection to ${this.node} is busy: one request at a time`));
      return;
    }
    let body: Uint8Array[];
    try {
      body = encodeMessageParts(code, message);
    } catch (error) {
      handler.fail(error as Error);
      return;
    }
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ??
      DEFAULT_REQUEST_TIMEOUT_MS;
    const pending: Pending = {
      label,
      timeoutMs,
      awaitLateAnswerMs: options.awaitLateAnswerMs,
      onFrame: (frame) => {
        this.armTimer(pending);
        handler.onFrame(frame, {
          label,
          done: () => {
            clearTimeout(pending.timer);
            if (this.pending === pending) this.pending = undefined;
            this.lastUsedAt = Date.now();
          },
        });
      },
      fail: handler.fail,
    };
    this.pending = pending;
    this.armTimer(pending);
    const socket = this.socket;
    let bodyLength = 0;
    for (const part of body) bodyLength += part.length;
    // one writev for header and parts; large values are written from the caller's array
    socket.cork();
    socket.write(encodeFrameHeader(code, bodyLength));
    for (const part of body) socket.write(part);
    socket.uncork();
  }

  /**
   * Starts the wait for the request's next frame: one timer, which reports a stall after each
   * `stallAfterMs` (see ConnectionOptions) and ends the request once `timeoutMs` passed.
   */
  private armTimer(pending: Pending): void {
    clearTimeout(pending.timer);
    const { stallAfterMs, onStall } = this.options;
    const stallEveryMs = onStall !== undefined && stallAfterMs !== undefined &&
        stallAfterMs < pending.timeoutMs // the request's own timeout comes first otherwise
      ? stallAfterMs
      : undefined;
    const startedAt = performance.now();
    const waitFor = (ms: number) => {
      pending.timer = afterUnreadInput(ms, (timer) => pending.timer = timer, () => {
        if (this.pending !== pending) return;
        // paused for a slow stream consumer: the wait is the caller's, not the server's
        if (this.pausedForConsumer) return this.armTimer(pending);
        const leftMs = pending.timeoutMs - (performance.now() - startedAt);
        if (stallEveryMs === undefined || leftMs <= 0) {
          this.giveUp(
            pending,
            new TimeoutError(this.node, "request", pending.timeoutMs, {
              request: pending.label,
              maybeApplied: true,
            }),
          );
          return;
        }
        onStall!();
        waitFor(Math.min(stallEveryMs, leftMs));
      });
    };
    waitFor(stallEveryMs ?? pending.timeoutMs);
  }

  /** The decoded answer, or the error it stands for (a protocol error also destroys). */
  private decodeAnswer(frame: Frame, responseCode: number, label: RequestLabel): object | Error {
    try {
      if (frame.code === MessageCode.ErrorResp) {
        const error = decodeMessage(MessageCode.ErrorResp, frame.body);
        const riakError = new RiakError(
          new TextDecoder().decode(error.errmsg),
          error.errcode,
          this.node,
          label,
        );
        // Riak's close may arrive only after the next request went out: discard it now
        if (riakError.closesConnection) this.discardAfter(riakError);
        return riakError;
      }
      if (frame.code !== responseCode) {
        throw new ProtocolError(
          `expected ${messageName(responseCode)}, received ${messageName(frame.code)}`,
          this.node,
          { request: label, maybeApplied: true },
        );
      }
      return decodeMessage(frame.code, frame.body);
    } catch (error) {
      const failure = error instanceof ProtocolError ? error : new ProtocolError(
        `undecodable ${messageName(frame.code)}: ${(error as Error).message}`,
        this.node,
        { request: label, maybeApplied: true, cause: error },
      );
      this.discardAfter(failure);
      return failure;
    }
  }

  /**
   * Destroys the connection after an answer that ends its request with `error`, which the
   * caller fails the request with: the request is not failed twice, the connection not reused.
   */
  private discardAfter(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending) clearTimeout(pending.timer);
    this.destroy(error);
  }

  private attach(socket: Socket | TLSSocket, reads?: DirectReads): void {
    const onReceived = (decode: () => Frame[]) => {
      let frames: Frame[];
      try {
        frames = decode();
      } catch (error) {
        const cause = error as Error;
        this.destroy(
          new ProtocolError(
            cause instanceof FrameError ? cause.message : `bad frame: ${cause.message}`,
            this.node,
            {
              request: this.pending?.label,
              maybeApplied: this.pending !== undefined,
              cause,
            },
          ),
        );
        return;
      }
      for (const frame of frames) {
        if (this.failure !== undefined && !this.awaitingLateAnswer) return;
        const pending = this.pending;
        if (pending === undefined) {
          this.destroy(
            new ProtocolError(`unsolicited ${messageName(frame.code)} frame`, this.node),
          );
          return;
        }
        pending.onFrame(frame);
      }
    };
    let socketError: Error | undefined;
    const onError = (error: Error) => {
      socketError = error;
    };
    const onClose = () => {
      const pending = this.pending;
      const reason = socketError
        ? `connection failed: ${socketError.message}`
        : "connection closed by the server";
      this.destroy(
        new ConnectionError(
          pending ? `${reason} before the answer was complete` : reason,
          this.node,
          {
            request: pending?.label,
            maybeApplied: pending !== undefined,
            cause: socketError,
          },
        ),
      );
    };
    const onData = (chunk: Uint8Array) => onReceived(() => this.decoder.push(chunk));
    if (reads) reads.deliver = (count) => onReceived(() => reads.receiver.received(count));
    else socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    this.detach = () => {
      if (reads) reads.deliver = () => {};
      socket.off("data", onData);
      socket.off("close", onClose);
      // keep an error listener: a late socket error must not crash the process
      socket.off("error", onError);
      socket.on("error", () => {});
    };
  }

  private async startTls(options: TlsOptions, timeoutMs: number): Promise<void> {
    await this.request(MessageCode.StartTls, {}, MessageCode.StartTls);
    this.detach();
    const raw = this.socket as Socket;
    const secure = tlsConnect({
      socket: raw,
      ca: options.ca ?? (options.caFile ? readFileSync(options.caFile) : undefined),
      cert: options.certFile ? readFileSync(options.certFile) : undefined,
      key: options.keyFile ? readFileSync(options.keyFile) : undefined,
      // the certificate is checked against servername, else host; SNI takes no IP address
      host: this.options.host,
      servername: options.servername ?? (isIP(this.options.host) ? undefined : this.options.host),
      rejectUnauthorized: true,
    });
    this.socket = secure;
    this.decoder = new FrameDecoder({ maxFrameBytes: this.decoder.maxFrameBytes });
    await settleWithin(
      secure,
      "secureConnect",
      timeoutMs,
      () => new TimeoutError(this.node, "tls", timeoutMs),
      (error) =>
        new ConnectionError(`TLS handshake failed: ${error.message}`, this.node, { cause: error }),
    );
    this.attach(secure);
  }
}

/**
 * Runs `expire` once `ms` passed and what the sockets received meanwhile was read: a timer
 * runs before the socket reads of the same turn of the event loop, so after this process was
 * held up (a long synchronous task, a garbage collection, no CPU on a loaded machine) an
 * answer that came in time but was not read yet would count as none, and a node that answered
 * its ping would be taken for hung. The wait ends one turn later, after those reads.
 * `rearmed` is given the second timer, to be cleared in place of the first.
 */
function afterUnreadInput(
  ms: number,
  rearmed: (timer: ReturnType<typeof setTimeout>) => void,
  expire: () => void,
): ReturnType<typeof setTimeout> {
  return setTimeout(() => rearmed(setTimeout(expire, 0)), ms);
}

/** Waits for `event` on a fresh socket, bounded; on failure the socket is destroyed. */
function settleWithin(
  socket: Socket,
  event: string,
  timeoutMs: number,
  onTimeout: () => Error,
  onError: (error: Error) => Error,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, onEvent);
      socket.off("error", onFailure);
    };
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onFailure = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(onError(error));
    };
    let timer = afterUnreadInput(timeoutMs, (next) => timer = next, () => {
      cleanup();
      socket.on("error", () => {});
      socket.destroy();
      reject(onTimeout());
    });
    socket.on(event, onEvent);
    socket.on("error", onFailure);
  });
}
