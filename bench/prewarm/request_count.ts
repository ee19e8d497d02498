/**
 * Riak requests a pre-warm's first pass makes per new file, by kind, and its wall time, against
 * an in-process embedded server (optionally delaying every answer, as over a network).
 *
 * Run: `deno run -A bench/prewarm/request_count.ts [files] [latencyMs]` (defaults 2000 files of
 * 100 KiB in directories of 100, 0 ms). Runs `runPrewarm` from the sources here, so the same
 * script in an older checkout counts that checkout's requests.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { runPrewarm } from "../../src/migration/prewarm.ts";
import { StateDirectory } from "../../src/migration/state.ts";
import { RiakClient } from "../../src/riak/mod.ts";
import { startTestRiak } from "../../src/riak-server/testing.ts";
import type { StoreClient } from "../../src/store/client.ts";
import { riakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";

const FILES = Number(Deno.args[0] ?? 2000);
const LATENCY_MS = Number(Deno.args[1] ?? 0);

const root = mkdtempSync(join(tmpdir(), "riakfs-request-count-"));
const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-request-count-state-")));
const riak = await startTestRiak({ embedded: true });
const client = new RiakClient({ nodes: riak.nodes, maxConnections: 16 });
try {
  const bytes = new Uint8Array(100 * 1024);
  for (let i = 0; i < FILES; i++) {
    const dir = `d${String(Math.floor(i / 100)).padStart(3, "0")}`;
    if (i % 100 === 0) mkdirSync(join(root, dir), { recursive: true });
    bytes.fill(i % 251, 0, 64);
    writeFileSync(join(root, dir, `f${i}`), bytes);
  }
  riak.faults.setLatency(LATENCY_MS);
  const counts = new Map<string, number>();
  const count = (kind: string) => counts.set(kind, (counts.get(kind) ?? 0) + 1);
  const base = riakStoreClient(client);
  const counting: StoreClient = {
    ...base,
    get: (
      location,
      options,
    ) => (count(options?.head ? "head" : "get"), base.get(location, options)),
    put: (location, content, options) => (
      count(options?.ifNoneMatch ? "put if absent" : "put"), base.put(location, content, options)
    ),
    fetchSet: (location) => (count("set fetch"), base.fetchSet(location)),
    updateSet: (location, change) => (count("set update"), base.updateSet(location, change)),
  };
  const store = new Store(counting, { namespace: { bucket: `${riak.prefix}-count` } });
  const started = performance.now();
  const result = await runPrewarm({ source: root, store, state, concurrency: 4 });
  if (result.exitCode !== 0) throw new Error(`prewarm: ${JSON.stringify(result.failures)}`);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${FILES} x 100 KiB, ${LATENCY_MS} ms per answer: ${seconds.toFixed(2)} s, load ${
      loadavg()[0].toFixed(2)
    }`,
  );
  let total = 0;
  for (const [kind, n] of [...counts].sort()) {
    total += n;
    console.log(`${kind.padEnd(14)} ${String(n).padStart(6)}  ${(n / FILES).toFixed(3)} per file`);
  }
  console.log(
    `${"all".padEnd(14)} ${String(total).padStart(6)}  ${(total / FILES).toFixed(3)} per file`,
  );
} finally {
  await client.close();
  await riak.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(state.path, { recursive: true, force: true });
}
