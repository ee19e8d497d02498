/**
 * Riak requests a pre-warm makes per file, by kind, its wall time and the CPU of the process
 * (pre-warm and server together), against an in-process embedded server (optionally delaying
 * every answer, as over a network). Three runs of one tree: a first pass (every file new, in
 * directories the run makes), a second pass (every file unchanged), and, after a first pass
 * stopped halfway by `--max-files`, the run that resumes it (the other half of the files, all
 * new; in one large directory, Riak lists half of it already, as a pass spanning several runs
 * or a tree a mount partly migrated has it).
 *
 * Run: `deno run -A bench/prewarm/request_count.ts [files] [latencyMs] [perDirectory] [KiB]`
 * (defaults 2000 files of 100 KiB in directories of 100, 0 ms). One large directory (say
 * `50000 0 50000 1`) shows what a directory of many shards costs.
 * Runs `runPrewarm` from the sources here, so the same script in an older checkout counts
 * that checkout's requests.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import process from "node:process";
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
const PER_DIRECTORY = Number(Deno.args[2] ?? 100);
const KIB = Number(Deno.args[3] ?? 100);

const root = mkdtempSync(join(tmpdir(), "riakfs-request-count-"));
const riak = await startTestRiak({ embedded: true });
const client = new RiakClient({ nodes: riak.nodes, maxConnections: 16 });
const states: StateDirectory[] = [];
let counts = new Map<string, number>();
const count = (kind: string) => counts.set(kind, (counts.get(kind) ?? 0) + 1);
const base = riakStoreClient(client);
const counting: StoreClient = {
  ...base,
  get: (location, options) => (count(options?.head ? "head" : "get"), base.get(location, options)),
  put: (location, content, options) => (
    count(options?.ifNoneMatch ? "put if absent" : "put"), base.put(location, content, options)
  ),
  fetchSet: (location) => (count("set fetch"), base.fetchSet(location)),
  updateSet: (location, change) => (count("set update"), base.updateSet(location, change)),
};

/** A pre-warm of the tree into `bucket` with a state directory of its own, counted. */
async function counted(title: string, bucket: string, state: StateDirectory, maxFiles?: number) {
  counts = new Map();
  // A store per run, as each run is a process of its own.
  const store = new Store(counting, { namespace: { bucket: `${riak.prefix}-${bucket}` } });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = await runPrewarm({ source: root, store, state, concurrency: 4, maxFiles });
  const used = process.cpuUsage(cpu);
  if (result.exitCode !== 0 && maxFiles === undefined) {
    throw new Error(`prewarm: ${JSON.stringify(result.failures)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const files = result.tally.seen.files;
  console.log(
    `${title}: ${files} files (${result.tally.uploaded.files} uploaded), ${
      seconds.toFixed(2)
    } s, CPU (pre-warm and server) ${
      ((used.user + used.system) / 1000 / files).toFixed(3)
    } ms per file, load ${loadavg()[0].toFixed(2)}`,
  );
  let total = 0;
  for (const [kind, n] of [...counts].sort()) {
    total += n;
    console.log(
      `  ${kind.padEnd(14)} ${String(n).padStart(7)}  ${(n / files).toFixed(3)} per file`,
    );
  }
  console.log(
    `  ${"all".padEnd(14)} ${String(total).padStart(7)}  ${(total / files).toFixed(3)} per file`,
  );
}

try {
  const bytes = new Uint8Array(KIB * 1024);
  for (let i = 0; i < FILES; i++) {
    const dir = `d${String(Math.floor(i / PER_DIRECTORY)).padStart(3, "0")}`;
    if (i % PER_DIRECTORY === 0) mkdirSync(join(root, dir), { recursive: true });
    bytes.fill(i % 251, 0, Math.min(64, bytes.length));
    writeFileSync(join(root, dir, `f${i}`), bytes);
  }
  riak.faults.setLatency(LATENCY_MS);
  const newState = () => {
    const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-request-count-state-")));
    states.push(state);
    return state;
  };
  console.log(
    `${FILES} x ${KIB} KiB in directories of ${PER_DIRECTORY}, ${LATENCY_MS} ms per answer`,
  );
  const first = newState();
  await counted("first pass (new files, new directories)", "full", first);
  await counted("second pass (unchanged files)", "full", first);
  const halves = newState();
  await runPrewarm({
    source: root,
    store: new Store(base, { namespace: { bucket: `${riak.prefix}-half` } }),
    state: halves,
    concurrency: 4,
    maxFiles: Math.floor(FILES / 2),
  });
  await counted("resumed first pass (the other half of the files)", "half", halves);
} finally {
  await client.close();
  await riak.close();
  rmSync(root, { recursive: true, force: true });
  for (const state of states) rmSync(state.path, { recursive: true, force: true });
}
