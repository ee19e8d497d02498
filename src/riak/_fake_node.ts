/**
 * Test helper: a scripted TCP peer for fault tests (frames cut in half, garbage, silence).
 * Each received frame is handed to `onFrame`, which answers through the socket as it likes.
 *
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { encodeMessage } from "./codec.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";

/** A running scripted peer. */
export interface FakeNode {
  port: number;
  /** `127.0.0.1:port`. */
  address: string;
  /** Frames received so far, by code. */
  received: number[];
  /** Closes the listener and every accepted socket. */
  close(): Promise<void>;
}

/** Encodes one answer frame. */
export function answer(code: number, message: object = {}): Uint8Array {
  return encodeFrame(code, encodeMessage(code, message));
}

/** Starts a scripted peer on an ephemeral port of 127.0.0.1. */
export async function startFakeNode(
  onFrame: (code: number, body: Uint8Array, socket: Socket) => void,
): Promise<FakeNode> {
  const sockets = new Set<Socket>();
  const received: number[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const decoder = new FrameDecoder();
    socket.on("data", (chunk) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy(); // not our protocol (e.g. a TLS hello after StartTls)
        return;
      }
      for (const frame of frames) {
        received.push(frame.code);
        onFrame(frame.code, frame.body, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
