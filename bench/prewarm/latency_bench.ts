/**
 * Pre-warm against a Riak whose every answer comes `latencyMs` late (default 2 ms, as over a
 * network), side by side with a plain put loop at the same concurrency. Here round trips, not
 * CPU, set the pace, as with a real cluster: the figure shows how many sequential round trips
 * a new file costs, which the CPU-bound `prewarm_bench.ts` on a 2-core machine cannot.
 *
 * The embedded server runs in a process of its own (bench/riak-server/latency_server.ts, a
 * fresh one per side and round), so its CPU is not taken from the client's thread;
 * `runPrewarm` and the plain loop run from the sources here, so the same script in an older
 * checkout measures that checkout's code.
 *
 * Run: `deno run -A bench/prewarm/latency_bench.ts [files] [latencyMs] [rounds]` (defaults
 * 1000 files of 100 KiB, 2 ms, 2 rounds).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { runPrewarm } from "../../src/migration/prewarm.ts";
import { StateDirectory } from "../../src/migration/state.ts";
import { RiakClient } from "../../src/riak/mod.ts";
import { startLatencyServer } from "../_server.ts";
import { riakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";

const FILES = Number(Deno.args[0] ?? 1000);
const LATENCY_MS = Number(Deno.args[1] ?? 2);
const ROUNDS = Number(Deno.args[2] ?? 2);
const SIZE = 100 * 1024;
const CONCURRENCY = 4;

function makeTree(root: string): string[] {
  const paths: string[] = [];
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < FILES; i++) {
    const dir = `d${String(Math.floor(i / 100)).padStart(3, "0")}`;
    if (i % 100 === 0) mkdirSync(join(root, dir), { recursive: true });
    bytes.fill(i % 251, 0, 64);
    writeFileSync(join(root, dir, `f${i}`), bytes);
    paths.push(`${dir}/f${i}`);
  }
  return paths;
}

const root = mkdtempSync(join(tmpdir(), "riakfs-latency-bench-"));
/** Runs `fn` with a client of a fresh server process (the server keeps everything in memory). */
async function withLatencyRiak(fn: (client: RiakClient) => Promise<void>): Promise<void> {
  const server = await startLatencyServer(LATENCY_MS);
  const client = new RiakClient({ nodes: `127.0.0.1:${server.port}`, maxConnections: 16 });
  try {
    await fn(client);
  } finally {
    await client.close();
    await server.stop();
  }
}
try {
  const paths = makeTree(root);
  const times: Record<string, number[]> = { prewarm: [], plain: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-latency-state-")));
    try {
      await withLatencyRiak(async (client) => {
        const store = new Store(riakStoreClient(client), { namespace: { bucket: "prewarm" } });
        const started = performance.now();
        const result = await runPrewarm({ source: root, store, state, concurrency: CONCURRENCY });
        if (result.exitCode !== 0) throw new Error(`prewarm: ${JSON.stringify(result.failures)}`);
        times.prewarm.push((performance.now() - started) / 1000);
      });
      await withLatencyRiak(async (client) => {
        const started = performance.now();
        let next = 0;
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (next < paths.length) {
            const path = paths[next++];
            const value = readFileSync(join(root, path));
            await client.put({ type: "default", bucket: "plain", key: path }, { value });
          }
        }));
        times.plain.push((performance.now() - started) / 1000);
      });
    } finally {
      rmSync(state.path, { recursive: true, force: true });
    }
  }
  const perFile = (seconds: number[]) =>
    seconds.map((s) => (s / FILES * CONCURRENCY / (LATENCY_MS / 1000)).toFixed(2)).join(", ");
  console.log(
    `${FILES} x 100 KiB, ${LATENCY_MS} ms per answer, ${CONCURRENCY} in flight, load ${
      loadavg()[0].toFixed(2)
    }`,
  );
  console.log(`prewarm: ${times.prewarm.map((s) => (FILES / s).toFixed(0)).join(", ")} files/s`);
  console.log(`plain:   ${times.plain.map((s) => (FILES / s).toFixed(0)).join(", ")} files/s`);
  console.log(
    `round trips' worth of latency per file: prewarm ${perFile(times.prewarm)}; plain ${
      perFile(times.plain)
    }`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
