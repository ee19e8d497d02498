/**
 * A TCP proxy in front of a Riak node whose {@link FaultInjector} acts as the embedded
 * server's does: requests wait while paused and for the latency, get a scripted error
 * instead of an answer, or lose their connection; answers are cut in the middle of a frame;
 * new connections are refused, open ones dropped. Tests that inject faults run against a
 * real node through it (`startTestRiak` puts one in front of each node of
 * `RIAKFS_TEST_RIAK`), with no change to the node.
 *
 * It relies on what the Riak client does: one request at a time on a connection, its
 * answer read whole before the next is sent. A connection whose bytes do not frame (a zero
 * length, a frame past 64 MiB) is dropped, as Riak drops it.
 *
 * @example
 * ```ts
 * const proxy = await startFaultProxy(["10.0.0.1:8087", "10.0.0.2:8087"]);
 * proxy.faults.pause(); // requests to proxy.addresses wait until proxy.faults.resume()
 * await proxy.close();
 * ```
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import * as net from "node:net";
import { encodeFrame, type Frame, FrameDecoder } from "../riak/frame.ts";
import { errorFrame } from "./engine.ts";
import { FaultInjector } from "./faults.ts";

/** A running {@link startFaultProxy}. */
export interface FaultProxy {
  /** `host:port` to connect to instead of each node, in the order of the nodes. */
  addresses: string[];
  /** The faults applied to what passes through, to every node at once. */
  faults: FaultInjector;
  /** Stops listening for good and drops every connection. */
  close(): Promise<void>;
}

/** Starts a proxy on a free port of 127.0.0.1 in front of each of `nodes` (`host:port`). */
export async function startFaultProxy(nodes: readonly string[]): Promise<FaultProxy> {
  const ports = nodes.map((node) => new ProxyPort(node));
  const faults = new FaultInjector({
    stopAccepting: () => {
      for (const port of ports) port.stopListening();
      return Promise.resolve();
    },
    resumeAccepting: async () => {
      for (const port of ports) await port.listen(faults);
    },
    dropConnections: () => {
      for (const port of ports) port.dropConnections();
    },
  });
  try {
    for (const port of ports) await port.listen(faults);
  } catch (error) {
    for (const port of ports) port.close();
    throw error;
  }
  return {
    addresses: ports.map((port) => port.address),
    faults,
    close() {
      faults.resume();
      for (const port of ports) port.close();
      return Promise.resolve();
    },
  };
}

/** One listening port of the proxy, and the links it accepted. */
class ProxyPort {
  readonly #host: string;
  readonly #port: number;
  readonly #links = new Set<Link>();
  #listener: net.Server | undefined;
  #boundPort = 0;
  #closed = false;

  constructor(node: string) {
    const separator = node.lastIndexOf(":");
    this.#host = node.slice(0, separator);
    this.#port = Number(node.slice(separator + 1));
  }

  /** `127.0.0.1:PORT`, the same across {@link stopListening} and {@link listen}. */
  get address(): string {
    return `127.0.0.1:${this.#boundPort}`;
  }

  async listen(faults: FaultInjector): Promise<void> {
    if (this.#listener !== undefined || this.#closed) return;
    const server = net.createServer({ noDelay: true }, (client) => {
      const node = net.connect({ port: this.#port, host: this.#host, noDelay: true });
      const link = new Link(client, node, faults);
      this.#links.add(link);
      client.once("close", () => this.#links.delete(link));
    });
    // Set at once: a stop or close while it binds closes it.
    this.#listener = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.#boundPort, "127.0.0.1", () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      if (this.#listener === server) this.#listener = undefined;
      throw error;
    }
    // A failed accept (EMFILE) is an 'error' event; the listener goes on, as the server's does.
    server.on("error", () => {});
    if (this.#listener !== server) {
      server.close();
      return;
    }
    this.#boundPort = (server.address() as net.AddressInfo).port;
  }

  /** Refuses new connections at once; open ones stay. */
  stopListening(): void {
    this.#listener?.close();
    this.#listener = undefined;
  }

  dropConnections(): void {
    for (const link of this.#links) link.destroy();
  }

  close(): void {
    this.#closed = true;
    this.stopListening();
    this.dropConnections();
  }
}

/** A client's connection and the proxy's own to the node. */
class Link {
  readonly #client: net.Socket;
  readonly #node: net.Socket;
  readonly #faults: FaultInjector;
  readonly #requests = new FrameDecoder();
  readonly #answers = new FrameDecoder();
  /** Requests go on in order: one waiting (paused, late) holds those behind it. */
  #sending: Promise<void> = Promise.resolve();
  /** Requests received and not yet forwarded (or answered in the proxy's place). */
  #waiting = 0;
  /** Whether the next frame from the node begins the answer to a request (for a cut). */
  #answerDue = false;

  constructor(client: net.Socket, node: net.Socket, faults: FaultInjector) {
    this.#client = client;
    this.#node = node;
    this.#faults = faults;
    client.on("data", (chunk: Buffer) => this.#fromClient(chunk));
    node.on("data", (chunk: Buffer) => this.#fromNode(chunk));
    client.on("close", () => this.#clientGone()).on("error", () => this.#clientGone());
    // What the node wrote before it closed (an answer, then the close) reaches the client.
    node.on("close", () => this.#client.end()).on("error", () => {});
  }

  /** Drops both connections at once. */
  destroy(): void {
    this.#client.destroy();
    this.#node.destroy();
  }

  /**
   * A request a pause held is still sent when its client hung up meanwhile, as a server
   * that received it still carries it out (a late write); the node's connection ends after.
   */
  #clientGone(): void {
    this.#client.destroy();
    if (this.#waiting === 0) this.#node.destroy();
  }

  /** Sends the client `last` (if any) and its end, and forgets the node. */
  #hangUp(last?: Uint8Array): void {
    if (last) this.#client.write(last);
    this.#client.end();
    this.#node.destroy();
  }

  /** `answer`, or half of it and the end of the connection if the faults cut it. */
  #answer(answer: Uint8Array): void {
    if (this.#faults.takeAnswerCut()) {
      this.#hangUp(answer.subarray(0, Math.max(1, answer.length >> 1)));
    } else this.#client.write(answer);
  }

  /** The whole frames `decoder` makes of `chunk`; none, and the link dropped, if it cannot. */
  #framesOf(decoder: FrameDecoder, chunk: Buffer): Uint8Array[] {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch {
      this.destroy(); // Broken framing (FrameError): the stream is out of step.
      return [];
    }
    return frames.map((frame) => encodeFrame(frame.code, frame.body));
  }

  #fromClient(chunk: Buffer): void {
    for (const request of this.#framesOf(this.#requests, chunk)) {
      this.#waiting++;
      this.#sending = this.#sending.then(() => this.#forward(request));
    }
  }

  async #forward(request: Uint8Array): Promise<void> {
    const admission = await this.#faults.admit();
    this.#waiting--;
    if (this.#node.destroyed) return;
    if (this.#client.destroyed) {
      if (admission.action === "process") this.#node.write(request);
      if (this.#waiting === 0) this.#node.end();
    } else if (admission.action === "close") this.#hangUp();
    else if (admission.action === "error") {
      this.#answer(errorFrame(admission.error.errmsg, admission.error.errcode));
    } else {
      this.#answerDue = true;
      this.#node.write(request);
    }
  }

  #fromNode(chunk: Buffer): void {
    if (this.#client.destroyed) return;
    for (const frame of this.#framesOf(this.#answers, chunk)) {
      if (!this.#answerDue) {
        this.#client.write(frame);
        continue;
      }
      this.#answerDue = false;
      this.#answer(frame);
      if (this.#client.destroyed || this.#client.writableEnded) return;
    }
  }
}
