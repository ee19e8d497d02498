/**
 * Pre-warm throughput against `dist/riakfs serve-riak --memory` (its own process), side by
 * side with a plain client loop that puts the same bytes at the same concurrency.
 *
 * Run: `deno run -A bench/prewarm/prewarm_bench.ts [smallFiles] [bigFiles] [bigMiB] [rounds]`
 * after `npm run build`; defaults 10000 files of 100 KiB, 10 files of 100 MiB, one round. With
 * `RIAKFS_BENCH_BASELINE=/path/to/older/riakfs[,...]` the older builds' pre-warms run too, in
 * alternating order each round; every side gets a fresh server. `RIAKFS_BENCH_BINARY` replaces
 * dist/riakfs as the build measured (the server is always dist/riakfs).
 *
 * The plain loop reads each file and puts it as one object (small files) or as 1 MiB chunk
 * objects (large files; Riak refuses objects above 50 MB), `concurrency` files at a time with
 * up to 4 chunk puts in flight per file: the same shape as the pre-warm's uploads, without
 * the layout's metadata (head-only get, manifest, directory entries).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { RiakClient } from "../../src/riak/mod.ts";
import { RIAKFS_BINARY, runRiakfs } from "../../tests/_riakfs.ts";
import { type EmbeddedServer, startEmbeddedServer } from "../_server.ts";

const smallFiles = Number(Deno.args[0] ?? 10_000);
const bigFiles = Number(Deno.args[1] ?? 10);
const bigMiB = Number(Deno.args[2] ?? 100);
/** Rounds per case; the medians are reported. */
const ROUNDS = Number(Deno.args[3] ?? 1);
/** Older builds to compare with (comma-separated paths, e.g. copies of dist/riakfs). */
const BASELINES = (process.env.RIAKFS_BENCH_BASELINE ?? "").split(",").filter(Boolean);
const CONCURRENCY = 4;
const CHUNK = 1024 * 1024;
const CHUNK_PUTS_PER_FILE = 4;

function makeTree(root: string, files: number, size: number): string[] {
  const paths: string[] = [];
  const bytes = new Uint8Array(size);
  for (let i = 0; i < files; i++) {
    const dir = `d${String(Math.floor(i / 100)).padStart(3, "0")}`;
    if (i % 100 === 0) mkdirSync(join(root, dir), { recursive: true });
    bytes.fill(i % 251, 0, 64); // distinct heads, same size
    const path = `${dir}/f${i}`;
    writeFileSync(join(root, path), bytes);
    paths.push(path);
  }
  return paths;
}

async function plainLoop(riak: RiakClient, root: string, paths: string[], bucket: string) {
  let next = 0;
  const putFile = async (path: string) => {
    const handle = await open(join(root, path), "r");
    try {
      const size = (await handle.stat()).size;
      if (size <= CHUNK) {
        const value = readFileSync(join(root, path));
        await riak.put({ type: "default", bucket, key: path }, { value });
        return;
      }
      let offset = 0;
      let index = 0;
      const inFlight = new Set<Promise<void>>();
      while (offset < size) {
        while (inFlight.size >= CHUNK_PUTS_PER_FILE) await Promise.race(inFlight);
        const buffer = new Uint8Array(Math.min(CHUNK, size - offset));
        await handle.read(buffer, 0, buffer.length, offset);
        const key = `${path}#${index++}`;
        const put = riak.put({ type: "default", bucket, key }, { value: buffer }).then(() => {
          inFlight.delete(put);
        });
        inFlight.add(put);
        offset += buffer.length;
      }
      await Promise.all(inFlight);
    } finally {
      await handle.close();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < paths.length) await putFile(paths[next++]);
  }));
}

/** What one side cost: wall time, and CPU of the client (pre-warm or loop) and the server. */
interface Cost {
  seconds: number;
  clientCpu: number;
  serverCpu: number;
}

/** CPU seconds (user + system) a process used so far, from /proc (Linux; USER_HZ 100). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One pre-warm run of `binary` (under /usr/bin/time for its CPU), checked for exit 0. */
async function timePrewarm(
  binary: string,
  root: string,
  state: string,
  server: EmbeddedServer,
): Promise<Cost> {
  const cpuFile = join(state, "cpu.txt");
  const serverBefore = cpuSecondsOf(server.child.pid!);
  const started = performance.now();
  const run = await runRiakfs([
    "-f",
    "%U %S",
    "-o",
    cpuFile,
    binary,
    "prewarm",
    root,
    "--riak",
    `127.0.0.1:${server.port}`,
    "--bucket",
    "prewarm",
    "--state-dir",
    state,
    "--concurrency",
    String(CONCURRENCY),
    "--json",
  ], { binary: "/usr/bin/time" });
  if (run.code !== 0) throw new Error(`prewarm failed: ${run.stderr}${run.stdout}`);
  const seconds = (performance.now() - started) / 1000;
  const [user, system] = readFileSync(cpuFile, "utf8").trim().split(/\s+/).map(Number);
  return {
    seconds,
    clientCpu: user + system,
    serverCpu: cpuSecondsOf(server.child.pid!) - serverBefore,
  };
}

/** Each side on a fresh server (the embedded server keeps everything in memory). */
async function withServer<T>(fn: (server: EmbeddedServer) => Promise<T>): Promise<T> {
  const server = await startEmbeddedServer(["--memory"]);
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function runCase(label: string, files: number, size: number) {
  const root = mkdtempSync(join(tmpdir(), "riakfs-bench-src-"));
  const sides = [{
    name: "riakfs prewarm",
    binary: process.env.RIAKFS_BENCH_BINARY ?? RIAKFS_BINARY,
  }];
  for (const binary of BASELINES) sides.push({ name: `${basename(binary)} prewarm`, binary });
  const times = new Map<string, Cost[]>();
  const record = (name: string, cost: Cost) => times.set(name, [...(times.get(name) ?? []), cost]);
  try {
    const paths = makeTree(root, files, size);
    const bytes = files * size;
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which binary goes first, so a burst of load does not favour one side.
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const state = mkdtempSync(join(tmpdir(), "riakfs-bench-state-"));
        try {
          await withServer(async (server) => {
            record(side.name, await timePrewarm(side.binary, root, state, server));
            record(`${side.name}, second run`, await timePrewarm(side.binary, root, state, server));
          });
        } finally {
          rmSync(state, { recursive: true, force: true });
        }
      }
      await withServer(async (server) => {
        const riak = new RiakClient({ nodes: `127.0.0.1:${server.port}` });
        try {
          const serverBefore = cpuSecondsOf(server.child.pid!);
          const clientBefore = process.cpuUsage();
          const started = performance.now();
          await plainLoop(riak, root, paths, "plain");
          const client = process.cpuUsage(clientBefore);
          record("plain put loop", {
            seconds: (performance.now() - started) / 1000,
            clientCpu: (client.user + client.system) / 1e6,
            serverCpu: cpuSecondsOf(server.child.pid!) - serverBefore,
          });
        } finally {
          await riak.close();
        }
      });
    }
    const plainS = median(times.get("plain put loop")!.map((c) => c.seconds));
    for (const [what, costs] of times) {
      const s = median(costs.map((c) => c.seconds));
      const vsPlain = what.endsWith("second run") || what === "plain put loop"
        ? ""
        : `${(plainS / s * 100).toFixed(0)}%`;
      // CPU per file is far steadier than wall time on a shared machine.
      const cpu = (of: "clientCpu" | "serverCpu") =>
        (median(costs.map((c) => c[of])) * 1000 / files).toFixed(3);
      console.log(
        `| ${label} | ${what} | ${(files / s).toFixed(0)} | ${(bytes / 1e6 / s).toFixed(1)} | ${
          s.toFixed(2)
        } | ${vsPlain} | ${costs.map((c) => c.seconds.toFixed(2)).join(", ")} | ${
          cpu("clientCpu")
        } | ${cpu("serverCpu")} |`,
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(
  "| case | what | files/s | MB/s | seconds (median) | of plain | rounds (s) | client CPU ms/file | server CPU ms/file |",
);
console.log(
  "| ---- | ---- | ------- | ---- | ---------------- | -------- | ---------- | --- | --- |",
);
await runCase(`${smallFiles} x 100 KiB`, smallFiles, 100 * 1024);
if (bigFiles > 0) await runCase(`${bigFiles} x ${bigMiB} MiB`, bigFiles, bigMiB * 1024 * 1024);
console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
