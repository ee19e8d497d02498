/**
 * The riakfs Riak client side by side with basho-riak-client (the official Node.js client):
 * puts/s and gets/s, p50/p99 latency and the client process's CPU time per operation
 * (process.cpuUsage) at concurrency 1, 16 and 64 with 1 KiB, 100 KiB and 1 MiB values,
 * against `dist/riakfs serve-riak --memory` running as its own process.
 *
 * Run `bash bench/riak-client/run.sh [seconds-per-case]`: it installs basho-riak-client into
 * .tmp/bench-deps (never into the project), bundles this file with esbuild and runs it on the
 * project's pinned Node. Both clients run in the same Node process, one after the other.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { RiakClient } from "../../src/riak/client.ts";

const SECONDS = Number(process.argv[2] ?? 2);
/** Value sizes; the third argument narrows them, e.g. `1024,102400`. */
const SIZES = process.argv[3]?.split(",").map(Number) ?? [1024, 100 * 1024, 1024 * 1024];
const CONCURRENCIES = [1, 16, 64];
const KEYS = 64;
const BUCKET = "bench-client";

interface Driver {
  name: string;
  put(key: string, value: Uint8Array): Promise<void>;
  get(key: string): Promise<void>;
  close(): Promise<void>;
}

function riakfsDriver(address: string, connections: number): Promise<Driver> {
  const client = new RiakClient({
    nodes: address,
    maxConnections: connections,
    minConnections: connections,
  });
  return Promise.resolve({
    name: "riakfs",
    put: async (key, value) => {
      await client.put({ bucket: BUCKET, key }, { value, contentType: "application/octet-stream" });
    },
    get: async (key) => {
      const result = await client.get({ bucket: BUCKET, key });
      if (!result.found) throw new Error(`riakfs: ${key} not found`);
    },
    close: () => client.close(),
  });
}

// basho-riak-client has no types; it is loaded from .tmp/bench-deps at run time.
// deno-lint-ignore no-explicit-any
type Any = any;

async function bashoDriver(address: string, connections: number): Promise<Driver> {
  const require = createRequire(join(process.cwd(), ".tmp/bench-deps/"));
  const Riak: Any = require("basho-riak-client");
  const nodes = Riak.Node.buildNodes([address], {
    minConnections: connections,
    maxConnections: connections,
  });
  const cluster = new Riak.Cluster({ nodes });
  let client: Any;
  // commands sent before the cluster started are lost by this client: wait for the start
  await new Promise<void>((resolve, reject) => {
    client = new Riak.Client(cluster, (error: unknown) => (error ? reject(error) : resolve()));
  });
  const call = (method: string, options: Any) =>
    new Promise<Any>((resolve, reject) =>
      client[method](
        options,
        (error: unknown, result: Any) => (error ? reject(error) : resolve(result)),
      )
    );
  return {
    name: "basho-riak-client",
    put: async (key, value) => {
      const object = new Riak.Commands.KV.RiakObject();
      object.setContentType("application/octet-stream");
      object.setValue(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      await call("storeValue", { bucket: BUCKET, key, value: object });
    },
    get: async (key) => {
      const result = await call("fetchValue", { bucket: BUCKET, key, convertToJs: false });
      if (result.isNotFound) throw new Error(`basho: ${key} not found`);
    },
    close: () => new Promise((resolve) => client.stop(() => resolve())),
  };
}

interface Figures {
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerOp: number;
}

async function measure(
  concurrency: number,
  operation: (worker: number, i: number) => Promise<void>,
): Promise<Figures> {
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      await operation(worker, i);
      latencies.push(performance.now() - t0);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    opsPerSecond: latencies.length / elapsed,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cpuUsPerOp: (cpu.user + cpu.system) / latencies.length,
  };
}

async function startServer(): Promise<{ address: string; stop(): void }> {
  const child = spawn("dist/riakfs", ["serve-riak", "--memory", "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(output);
      if (match !== null) resolve(match[1]);
    });
    child.once("exit", () => reject(new Error(`serve-riak exited: ${output}`)));
  });
  return { address, stop: () => child.kill("SIGTERM") };
}

const server = await startServer();
const rows: string[] = [];
try {
  for (const size of SIZES) {
    const value = new Uint8Array(size);
    for (let i = 0; i < size; i++) value[i] = (i * 31) & 0xff;
    for (const concurrency of CONCURRENCIES) {
      for (const make of [riakfsDriver, bashoDriver]) {
        const driver = await make(server.address, concurrency);
        try {
          const key = (worker: number, i: number) => `s${size}-k${(worker * 7 + i) % KEYS}`;
          for (let k = 0; k < KEYS; k++) await driver.put(`s${size}-k${k}`, value); // warm-up + data for gets
          const puts = await measure(concurrency, (w, i) => driver.put(key(w, i), value));
          const gets = await measure(concurrency, (w, i) => driver.get(key(w, i)));
          const label = `${
            size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`
          }`;
          for (const [op, f] of [["put", puts], ["get", gets]] as const) {
            const row = `| ${label} | ${concurrency} | ${op} | ${driver.name} | ${
              Math.round(f.opsPerSecond)
            } | ${f.p50Ms.toFixed(2)} | ${f.p99Ms.toFixed(2)} | ${Math.round(f.cpuUsPerOp)} |`;
            rows.push(row);
            console.log(row);
          }
        } finally {
          await driver.close();
        }
      }
    }
  }
} finally {
  server.stop();
}
console.log("\n| value | concurrency | op | client | ops/s | p50 ms | p99 ms | client CPU µs/op |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(row);
