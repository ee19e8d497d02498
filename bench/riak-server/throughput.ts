/**
 * Puts and gets per second against `dist/riakfs serve-riak` at concurrency 16 (16 connections,
 * one request in flight each), with 1 KiB and 100 KiB values, in memory and disk modes.
 *
 * Run: `deno run -A bench/riak-server/throughput.ts [seconds-per-case]` after `npm run build`.
 * The server runs as its own process, so the load generator does not share its thread.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageCode } from "../../src/riak/messages.ts";
import { encodeMessage } from "../../src/riak/codec.ts";
import { encodeFrame } from "../../src/riak/frame.ts";
import { TestConnection } from "../../src/riak-server/_test_connection.ts";
import { startEmbeddedServer } from "../_server.ts";

const CONCURRENCY = 16;
const KEYS_PER_CONNECTION = 64;
const seconds = Number(Deno.args[0] ?? 3);
const text = new TextEncoder();

/** Runs `frames(connection, i)` requests on 16 connections for the duration; ops per second. */
async function measure(port: number, frameFor: (connection: number, i: number) => Uint8Array) {
  const connections = Array.from({ length: CONCURRENCY }, () => new TestConnection(port));
  let operations = 0;
  const end = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(connections.map(async (connection, c) => {
    for (let i = 0; Date.now() < end; i++) {
      connection.write(frameFor(c, i));
      const event = await connection.next();
      if (typeof event !== "object" || event.code === MessageCode.ErrorResp) {
        throw new Error(`request failed: ${typeof event === "object" ? event.code : event}`);
      }
      operations++;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  for (const connection of connections) connection.destroy();
  return operations / elapsed;
}

/** Request frames for connection `c`, request `i`: 64 keys per connection, encoded once each. */
function framesByKey(
  encode: (key: Uint8Array) => Uint8Array,
): (c: number, i: number) => Uint8Array {
  const cache = new Map<string, Uint8Array>();
  return (c, i) => {
    const key = `c${c}-k${i % KEYS_PER_CONNECTION}`;
    let frame = cache.get(key);
    if (frame === undefined) cache.set(key, frame = encode(text.encode(key)));
    return frame;
  };
}

function putFrames(size: number): (c: number, i: number) => Uint8Array {
  const value = new Uint8Array(size).fill(0x61);
  return framesByKey((key) =>
    encodeFrame(
      MessageCode.PutReq,
      encodeMessage(MessageCode.PutReq, {
        bucket: text.encode("bench"),
        key,
        content: { value },
      }),
    )
  );
}

function getFrames(): (c: number, i: number) => Uint8Array {
  return framesByKey((key) =>
    encodeFrame(
      MessageCode.GetReq,
      encodeMessage(MessageCode.GetReq, { bucket: text.encode("bench"), key }),
    )
  );
}

const rows: string[] = [];
for (const mode of ["memory", "disk"] as const) {
  const dir = mkdtempSync(join(tmpdir(), "riak-bench-"));
  const server = await startEmbeddedServer(mode === "memory" ? ["--memory"] : ["--data", dir]);
  try {
    for (const size of [1024, 100 * 1024]) {
      const puts = await measure(server.port, putFrames(size));
      const gets = await measure(server.port, getFrames());
      const label = size === 1024 ? "1 KiB" : "100 KiB";
      rows.push(
        `| ${mode} | ${label} | ${Math.round(puts).toLocaleString("en")} | ${
          Math.round(gets).toLocaleString("en")
        } |`,
      );
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`| mode | value | puts/s | gets/s |\n|---|---|---|---|\n${rows.join("\n")}`);
