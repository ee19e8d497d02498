// The connection against Riak's recorded answers: a scripted peer plays back, for every
// recorded step, exactly the frames (and the close) a real Riak KV 3.2.2 sent, and the
// connection must turn them into the recorded result: one answer, a stream up to `done`, a
// RiakError with Riak's text, and a discarded connection where Riak closed it.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { startFakeNode } from "./_fake_node.ts";
import { Connection } from "./connection.ts";
import { ConnectionError, RiakError } from "./errors.ts";
import { encodeMessage } from "./codec.ts";
import { encodeFrame } from "./frame.ts";
import {
  bytesToHex,
  digestLargeBytes,
  type GoldenResponse,
  type GoldenStep,
  goldenToMessage,
  hexToBytes,
  loadGoldenTranscripts,
} from "./golden.ts";
import type { MessageCodeValue } from "./messages.ts";

/** The answer code of each request code (GetBucketType is answered by GetBucketResp). */
const ANSWER_CODE: Record<number, MessageCodeValue> = {
  1: 2,
  3: 4,
  5: 6,
  7: 8,
  9: 10,
  11: 12,
  13: 14,
  15: 16,
  17: 18,
  19: 20,
  21: 22,
  25: 26,
  29: 30,
  31: 20,
  32: 22,
  50: 51,
  52: 53,
  80: 81,
  82: 83,
  253: 254,
  255: 255,
};

/** Steps a byte-exact playback can serve: structured requests whose answers were recorded whole. */
function playable(step: GoldenStep): boolean {
  const request = step.request;
  if (request.raw || typeof request.hex !== "string" || typeof request.code !== "number") {
    return false;
  }
  if (step.collect.mode !== "one" && step.collect.mode !== "stream") return false;
  return step.responses.every((r) => r.event === "closed" || frameBytes(r) !== undefined);
}

/**
 * A recorded frame's bytes. Long error frames were recorded without hex (their text held
 * local build paths, shown as `<riak-src>/`): those are rebuilt from their fields.
 */
function frameBytes(response: GoldenResponse): Uint8Array | undefined {
  if (typeof response.hex === "string") return hexToBytes(response.hex);
  const errmsg = response.fields?.errmsg as { utf8?: string } | undefined;
  if (response.code !== 0 || typeof errmsg?.utf8 !== "string") return undefined;
  return encodeFrame(0, encodeMessage(0, goldenToMessage(response.fields) as object));
}

Deno.test("the connection handles every recorded Riak answer as Riak meant it", async () => {
  let current: GoldenStep | undefined;
  let mismatch: string | undefined;
  const node = await startFakeNode((code, body, socket: Socket) => {
    const step = current!;
    const sent = bytesToHex(encodeFrame(code, body));
    if (sent !== step.request.hex) {
      mismatch = `${step.id}: sent ${sent}, Riak got ${step.request.hex}`;
    }
    for (const response of step.responses) {
      if (response.event === "closed") socket.end();
      else socket.write(frameBytes(response)!);
    }
  });
  let checked = 0;
  let closedByRiak = 0;
  try {
    for (const transcript of loadGoldenTranscripts()) {
      for (const step of transcript.steps.filter(playable)) {
        current = step;
        const where = `${transcript.file} ${step.id}`;
        const request = step.request;
        const frames = step.responses.filter((r) => r.event === undefined);
        const error = frames.find((r) => r.code === 0);
        const connection = await Connection.open({
          host: "127.0.0.1",
          port: node.port,
          requestTimeoutMs: 5_000,
        });
        try {
          const message = goldenToMessage(request.fields) as never;
          const answerCode = ANSWER_CODE[request.code!];
          const run = step.collect.mode === "stream"
            ? (async () => {
              const got: object[] = [];
              for await (
                const frame of connection.stream(request.code as 17, message, answerCode, (f) =>
                  (f as { done?: boolean }).done === true)
              ) {
                got.push(frame);
              }
              return got;
            })()
            : connection.request(request.code as 1, message, answerCode).then((one) => [one]);
          if (error !== undefined) {
            const errmsg = (error.fields!.errmsg as { utf8: string }).utf8;
            await assert.rejects(
              run,
              (e: unknown) => e instanceof RiakError && e.errmsg === errmsg,
              where,
            );
          } else {
            const got = await run;
            assert.deepEqual(
              got.map(digestLargeBytes),
              frames.map((f) => goldenToMessage(f.fields)),
              where,
            );
          }
          assert.equal(mismatch, undefined);
          if (step.responses.some((r) => r.event === "closed")) {
            // Riak dropped the connection: the client must notice and never reuse it
            const deadline = Date.now() + 5_000;
            while (!connection.dead && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 5));
            }
            assert.equal(connection.dead, true, `${where}: closed by Riak`);
            closedByRiak++;
            await assert.rejects(connection.request(1, {}, 2), ConnectionError);
          } else {
            assert.equal(connection.usable, true, where);
          }
          checked++;
        } finally {
          connection.destroy();
        }
      }
    }
  } finally {
    await node.close();
  }
  assert.ok(checked > 200, `checked ${checked} steps`);
  assert.equal(closedByRiak, 3, "the three recorded errors after which Riak closed the connection");
});
