/**
 * A bare protocol connection for the embedded server's own tests: writes frames, hands back
 * every frame and the close as events. Not a Riak client (that is src/riak); tests use it
 * to send exactly the bytes they mean, including broken ones.
 *
 * @module
 */
import { connect, type Socket } from "node:net";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { connect as connectTls } from "node:tls";
import { encodeFrame, type Frame, FrameDecoder } from "../riak/frame.ts";
import { MessageCode } from "../riak/messages.ts";

/** What a connection receives: a frame, its close, or nothing within the wait. */
export type ConnectionEvent = Frame | "closed" | "timeout";

/** A decoded answer frame. */
export interface Answer {
  code: number;
  message: Record<string, unknown>;
}

/** One TCP connection to a server under test. */
export class TestConnection {
  private socket: Socket;
  private readonly decoder = new FrameDecoder();
  private readonly events: ConnectionEvent[] = [];
  private wake: (() => void) | undefined;
  /** Set once the server (or we) closed the connection. */
  closed = false;

  constructor(port: number, host = "127.0.0.1") {
    this.socket = connect(port, host);
    this.attach(this.socket);
  }

  private attach(socket: Socket): void {
    socket.on("data", (chunk) => {
      for (const frame of this.decoder.push(chunk)) this.push(frame);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.push("closed");
    });
  }

  /**
   * Sends RpbStartTls and, once the server answered it, continues over TLS on the same
   * socket (the server's certificate is not verified: tests use self-signed ones).
   *
   * @throws {Error} when the server answers something else (e.g. security is off).
   */
  async startTls(): Promise<void> {
    const answer = await this.call(MessageCode.StartTls);
    if (answer.code !== MessageCode.StartTls) throw new Error(`StartTls answered ${answer.code}`);
    const plain = this.socket;
    plain.removeAllListeners("data");
    const secure = connectTls({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** Resolves once connected; rejects if the connection is refused. */
  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) return resolve();
      this.socket.once("connect", () => resolve());
      this.socket.once("error", reject);
    });
  }

  private push(event: ConnectionEvent): void {
    this.events.push(event);
    this.wake?.();
  }

  /** Writes raw bytes. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Writes one request frame. */
  send(code: number, message: object = {}): void {
    this.write(encodeFrame(code, encodeMessage(code, message)));
  }

  /** The next frame or close, or "timeout" after `ms` milliseconds. */
  async next(ms = 10000): Promise<ConnectionEvent> {
    const deadline = Date.now() + ms;
    while (this.events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return "timeout";
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.events.shift()!;
  }

  /** The next answer frame, decoded. @throws {Error} on close or timeout. */
  async answer(ms = 10000): Promise<Answer> {
    const event = await this.next(ms);
    if (typeof event !== "object") throw new Error(`no answer: ${event}`);
    return {
      code: event.code,
      message: decodeMessage(event.code, event.body) as Record<string, unknown>,
    };
  }

  /** Sends a request and waits for its (single-frame) answer. */
  call(code: number, message: object = {}, ms = 10000): Promise<Answer> {
    this.send(code, message);
    return this.answer(ms);
  }

  /** Closes the connection. */
  destroy(): void {
    this.socket.destroy();
  }
}
