/**
 * A TCP proxy between a mount and its Riak that can hold one request back until the test
 * lets it go: the test then acts at an exact point of the mount's conversation with Riak
 * (between an upload and its read-back, say), with no sleeps and no hooks in the binary.
 * Frames from the mount are cut with the client's own decoder and forwarded whole; answers
 * pass through untouched.
 *
 * @module
 */
import * as net from "node:net";
import { Buffer } from "node:buffer";
import { decodeMessage } from "../src/riak/codec.ts";
import { encodeFrame, type Frame, FrameDecoder } from "../src/riak/frame.ts";
import { MessageCode, type RpbGetReq, type RpbPutReq } from "../src/riak/messages.ts";

/** A request held back by the proxy. */
export interface HeldRequest {
  /** Resolves once the request arrived (it is not forwarded yet). */
  reached: Promise<void>;
  /** Forwards it, and what the connection sent after it. */
  release(): void;
}

/** A running proxy. */
export interface RiakProxy {
  /** `host:port` to give the mount instead of the server's. */
  node: string;
  /**
   * Holds the first get with the value (not head-only) of `key` in `bucket` that arrives
   * after a put of that key went through: an upload's read-back.
   */
  holdReadBackAfterPut(bucket: string, key: string): HeldRequest;
  /** Holds the first put of `key` in `bucket`. */
  holdPut(bucket: string, key: string): HeldRequest;
  /** Holds the first get with the value (not head-only) of `key` in `bucket`. */
  holdGet(bucket: string, key: string): HeldRequest;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

interface Watch {
  bucket: string;
  key: string;
  /**
   * The request held: the first put, the first get with the value after a put, or the first
   * get with the value.
   */
  holds: "put" | "read-back" | "get";
  putSeen: boolean;
  arrived: () => void;
  gate: Promise<void>;
}

/** Starts a proxy on a free local port in front of `upstream` (`host:port`). */
export async function startRiakProxy(upstream: string): Promise<RiakProxy> {
  const [host, port] = upstream.split(":");
  const sockets = new Set<net.Socket>();
  const watches: Watch[] = [];

  /** The gate `frame` must wait for, if a watch takes it. */
  const gateOf = (frame: Frame): Promise<void> | undefined => {
    if (frame.code !== MessageCode.PutReq && frame.code !== MessageCode.GetReq) {
      return undefined;
    }
    const request = decodeMessage(frame.code, frame.body) as RpbGetReq | RpbPutReq;
    const bucket = Buffer.from(request.bucket).toString();
    const key = request.key === undefined ? "" : Buffer.from(request.key).toString();
    for (const [index, watch] of watches.entries()) {
      if (watch.bucket !== bucket || watch.key !== key) continue;
      const isPut = frame.code === MessageCode.PutReq;
      const withValue = !isPut && !(request as RpbGetReq).head;
      if (isPut && watch.holds === "read-back") watch.putSeen = true;
      else if (
        isPut ? watch.holds === "put" : withValue && (watch.holds === "get" || watch.putSeen)
      ) {
        watches.splice(index, 1);
        watch.arrived();
        return watch.gate;
      }
    }
    return undefined;
  };

  const hold = (bucket: string, key: string, holds: Watch["holds"]): HeldRequest => {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => arrived = resolve);
    const gate = new Promise<void>((resolve) => release = resolve);
    watches.push({ bucket, key, holds, putSeen: false, arrived, gate });
    return { reached, release };
  };

  const server = net.createServer((client) => {
    const riak = net.connect(Number(port), host);
    sockets.add(client);
    sockets.add(riak);
    const decoder = new FrameDecoder();
    // Frames go out in order: once one waits, the ones after it wait behind it.
    let sending = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const bytes = encodeFrame(frame.code, frame.body.slice());
        const gate = gateOf(frame);
        sending = sending.then(async () => {
          if (gate) await gate;
          riak.write(bytes);
        });
      }
    });
    riak.on("data", (chunk: Buffer) => client.write(chunk));
    const closeBoth = () => {
      client.destroy();
      riak.destroy();
      sockets.delete(client);
      sockets.delete(riak);
    };
    client.on("close", closeBoth).on("error", closeBoth);
    riak.on("close", closeBoth).on("error", closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as net.AddressInfo;
  return {
    node: `127.0.0.1:${address.port}`,
    holdReadBackAfterPut: (bucket, key) => hold(bucket, key, "read-back"),
    holdPut: (bucket, key) => hold(bucket, key, "put"),
    holdGet: (bucket, key) => hold(bucket, key, "get"),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
