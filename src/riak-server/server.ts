/**
 * The embedded Riak server's network side: a `node:net` listener speaking Riak's
 * protocol-buffers framing, answering each connection's requests in order (pipelining),
 * streaming multi-frame answers, upgrading to TLS on StartTls when security is configured,
 * and consulting the {@link FaultInjector} for every request.
 *
 * Bad input never stops the server: an unknown code or a body that does not decode is
 * answered as Riak answers it (see engine.ts); a frame that breaks the framing itself (zero
 * length, longer than the maximum) drops that connection only, as Riak does.
 *
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, type SecureContext, TLSSocket } from "node:tls";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { encodeFrame, type Frame, FrameDecoder, FrameError } from "../riak/frame.ts";
import { MessageCode, type RpbAuthReq } from "../riak/messages.ts";
import { errorFrame, type RiakEngine, type Session } from "./engine.ts";
import { FaultInjector } from "./faults.ts";

/** Largest frame accepted: above Riak's 50 MB object limit, so too-large puts get Riak's error. */
export const MAX_REQUEST_FRAME_BYTES = 64 * 1024 * 1024;
/** Frames queued per connection before the server stops reading from it (backpressure). */
const MAX_QUEUED_FRAMES = 128;
/**
 * Bytes of frames queued per connection before the server stops reading from it: 128 frames
 * of up to 64 MiB each would let one pipelining client take gigabytes of memory.
 */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

/** Security settings: with them, clients must StartTls and authenticate, as with Riak security on. */
export interface SecurityOptions {
  /** PEM certificate chain of the server. */
  cert: string | Buffer;
  /** PEM private key of the server. */
  key: string | Buffer;
  /** Accepted users and their passwords. */
  users: Record<string, string>;
}

/** Where and how a {@link RiakNetworkServer} listens. */
export interface NetworkOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  security?: SecurityOptions;
}

/** What answers one request: frames to write, then maybe close or switch to TLS. */
interface Answer {
  frames: Uint8Array[];
  close: boolean;
  startTls?: boolean;
}

/** Connection state with security on: first TLS, then authentication. */
type SecurityState = "needs-tls" | "needs-auth" | "ready";

/** Listens for Riak protocol clients and serves them with a {@link RiakEngine}. */
export class RiakNetworkServer {
  /** Faults injected into request handling (tests). */
  readonly faults: FaultInjector;
  private readonly engine: RiakEngine;
  private readonly options: NetworkOptions;
  private readonly secureContext: SecureContext | undefined;
  private readonly connections = new Set<Connection>();
  private listener: Server | undefined;
  private boundPort = 0;
  /** Set by {@link close}: the server never listens again (not even on `faults.clear()`). */
  private closed = false;

  constructor(engine: RiakEngine, options: NetworkOptions) {
    this.engine = engine;
    this.options = options;
    this.secureContext = options.security === undefined
      ? undefined
      : createSecureContext({ cert: options.security.cert, key: options.security.key });
    this.faults = new FaultInjector({
      stopAccepting: () => this.stopListening(),
      resumeAccepting: () => this.listen(),
      dropConnections: () => {
        for (const connection of this.connections) connection.destroy();
      },
    });
  }

  /** The port listened on (after {@link listen}). */
  get port(): number {
    return this.boundPort;
  }

  /** Starts listening (again); resolves once bound. */
  listen(): Promise<void> {
    if (this.listener !== undefined || this.closed) return Promise.resolve();
    const listener = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.listener = listener;
    return new Promise((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(this.boundPort || this.options.port, this.options.host, () => {
        listener.off("error", reject);
        // A failed accept (EMFILE, ENFILE) is an 'error' event that would otherwise crash the
        // process; node:net keeps listening after it, and that one client sees its connection
        // fail, as with any server out of descriptors.
        listener.on("error", () => {});
        const address = listener.address();
        if (address !== null && typeof address === "object") this.boundPort = address.port;
        resolve();
      });
    });
  }

  private stopListening(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    // close() stops accepting at once; its callback would wait for open connections to end
    listener?.close();
    return Promise.resolve();
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.closed = true;
    const stopped = this.stopListening();
    for (const connection of this.connections) connection.destroy();
    await stopped;
  }

  private accept(socket: Socket): void {
    const connection = new Connection(this, socket);
    this.connections.add(connection);
    socket.once("close", () => this.connections.delete(connection));
  }

  /** Answers one request of a connection: the frames to write and whether to close after. */
  async process(connection: Connection, frame: Frame): Promise<Answer> {
    const admission = await this.faults.admit();
    if (admission.action === "close") return { frames: [], close: true };
    if (admission.action === "error") {
      return {
        frames: [errorFrame(admission.error.errmsg, admission.error.errcode)],
        close: false,
      };
    }
    const security = this.securityAnswer(connection, frame);
    if (security !== undefined) return security;
    return await this.engine.handle(frame.code, frame.body, connection.session);
  }

  /**
   * With security on, StartTls and Auth are handled here, and nothing passes before them. The
   * texts are riak_api_pb_server.erl's (states wait_for_tls and wait_for_auth). Riak also waits
   * 5 s before answering a failed authentication, against brute force; this test server does not.
   */
  private securityAnswer(connection: Connection, frame: Frame): Answer | undefined {
    const security = this.options.security;
    if (security === undefined || connection.security === "ready") return undefined;
    if (connection.security === "needs-tls") {
      if (frame.code === MessageCode.StartTls) {
        return {
          frames: [encodeFrame(MessageCode.StartTls, new Uint8Array(0))],
          close: false,
          startTls: true,
        };
      }
      return { frames: [errorFrame("Security is enabled, please STARTTLS first")], close: false };
    }
    if (frame.code !== MessageCode.AuthReq) {
      return {
        frames: [errorFrame("Security is enabled, please authenticate first")],
        close: false,
      };
    }
    let request: RpbAuthReq;
    try {
      request = decodeMessage(MessageCode.AuthReq, frame.body);
    } catch {
      return { frames: [errorFrame("Authentication failed")], close: true };
    }
    const user = new TextDecoder().decode(request.user);
    const password = new TextDecoder().decode(request.password);
    if (Object.hasOwn(security.users, user) && security.users[user] === password) {
      connection.security = "ready";
      return {
        frames: [encodeFrame(MessageCode.AuthResp, encodeMessage(MessageCode.AuthResp, {}))],
        close: false,
      };
    }
    return { frames: [errorFrame("Authentication failed")], close: false };
  }

  /** Wraps a connection's socket in TLS after its StartTls answer was written. */
  upgradeToTls(socket: Socket): TLSSocket {
    return new TLSSocket(socket, { isServer: true, secureContext: this.secureContext });
  }

  /** The state a new connection starts in. */
  initialSecurity(): SecurityState {
    return this.options.security === undefined ? "ready" : "needs-tls";
  }
}

/** One client connection: frames in, answers out, strictly in order. */
class Connection {
  readonly session: Session = {};
  security: SecurityState;
  private readonly server: RiakNetworkServer;
  private socket: Socket;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: MAX_REQUEST_FRAME_BYTES });
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private working = false;
  private closed = false;

  constructor(server: RiakNetworkServer, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.security = server.initialSecurity();
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on("data", (chunk: Uint8Array) => this.receive(chunk));
    socket.on("error", () => this.destroy());
    socket.on("close", () => this.closed = true);
  }

  private receive(chunk: Uint8Array): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      // Riak drops a connection whose framing is broken (09-errors zero-length-frame).
      this.destroy();
      return;
    }
    for (const frame of frames) {
      this.queue.push(frame);
      this.queuedBytes += frame.body.length;
    }
    if (this.queue.length > MAX_QUEUED_FRAMES || this.queuedBytes > MAX_QUEUED_BYTES) {
      this.socket.pause();
    }
    if (!this.working) void this.work();
  }

  private async work(): Promise<void> {
    this.working = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.body.length;
        const answer = await this.server.process(this, frame);
        if (this.closed) return;
        if (answer.frames.length > 0 && this.server.faults.takeAnswerCut()) {
          const first = answer.frames[0];
          this.socket.write(first.subarray(0, Math.max(1, first.length >> 1)));
          this.socket.end();
          this.destroySoon();
          return;
        }
        for (const out of answer.frames) this.socket.write(out);
        if (answer.close) {
          // Riak answers, then closes (09-errors garbage-body-get): flush before closing.
          this.socket.end();
          this.destroySoon();
          return;
        }
        if (answer.startTls === true) {
          this.startTls();
          return;
        }
        if (this.socket.writableLength > 8 * 1024 * 1024) {
          await this.drained();
          if (this.closed) return;
        }
        if (
          this.queue.length <= MAX_QUEUED_FRAMES / 2 &&
          this.queuedBytes <= MAX_QUEUED_BYTES / 2 &&
          this.socket.isPaused()
        ) {
          this.socket.resume();
        }
      }
    } catch {
      // an engine fault must not take the server down: drop this connection only
      this.destroy();
    } finally {
      this.working = false;
    }
  }

  /** Settles once the socket's write buffer drained, or the socket closed (no drain comes then). */
  private drained(): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve) => {
      const done = () => {
        socket.off("drain", done);
        socket.off("close", done);
        resolve();
      };
      socket.on("drain", done);
      socket.on("close", done);
      if (socket.destroyed) done();
    });
  }

  private startTls(): void {
    const plain = this.socket;
    plain.removeAllListeners("data");
    const secure = this.server.upgradeToTls(plain);
    this.socket = secure;
    this.security = "needs-auth";
    this.attach(secure);
  }

  private destroySoon(): void {
    this.closed = true;
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
