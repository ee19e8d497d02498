/**
 * Reading from Riak through the mount against reading the same bytes through src/store
 * directly, side by side in one run: one large file read sequentially, and many 100 KiB
 * files. `riakfs serve-riak --memory` and `riakfs mount --preset riak -o direct_io` run as
 * their own processes; every mount is fresh (its caches empty) and every byte is read once
 * per round. (`-o direct_io` reaches the Riak-backed modes only once src/cli passes it as
 * `OverlayStartOptions.directIo`; until then the kernel's page cache is used, which does not
 * help a single pass.) Besides wall-clock rates it prints the CPU time of the mount process
 * per case, which stays comparable when other work loads the machine, and the FUSE requests
 * per small file (`riakfs status`).
 *
 * Several builds can be compared in the same run, alternating round by round (the machine's
 * load changes from minute to minute, so only side-by-side figures compare):
 *
 *   deno run -A bench/overlay/read_bench.ts [bigMiB=256] [smallFiles=2000] [rounds=1]
 *   RIAKFS_BENCH_BINARIES=/tmp/riakfs-old,dist/riakfs deno run -A bench/overlay/read_bench.ts 256 2000 3
 *
 * (after `npm run build`, as root). `RIAKFS_BENCH_MOUNT_NODE_OPTIONS` is given to the mount
 * process only as NODE_OPTIONS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`);
 * `RIAKFS_BENCH_READERS=8` reads the small files 8 at a time on both sides (default 1).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openRiakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";
import { RIAKFS_BINARY, runRiakfs } from "../../tests/_riakfs.ts";
import { startEmbeddedServer } from "../_server.ts";

const bigMiB = Number(Deno.args[0] ?? 256);
const smallFiles = Number(Deno.args[1] ?? 2000);
const rounds = Number(Deno.args[2] ?? 1);
const binaries = (Deno.env.get("RIAKFS_BENCH_BINARIES") ?? RIAKFS_BINARY).split(",")
  .filter((binary) => binary !== "").map((binary) => resolve(binary));
const mountNodeOptions = Deno.env.get("RIAKFS_BENCH_MOUNT_NODE_OPTIONS");
/** Small files read at once, through the mount and through the store alike. */
const readers = Number(Deno.env.get("RIAKFS_BENCH_READERS") ?? 1);
const SMALL_SIZE = 100 * 1024;
const PIECE = 1024 * 1024;

function isMounted(mountpoint: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((line) =>
    line.split(" ")[4] === mountpoint
  );
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function bytesOf(seed: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed + 1;
  for (let index = 0; index < size; index += 4) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Milliseconds of each case (wall clock, and CPU of the mount process), by what read it. */
interface Timings {
  bigMs: number[];
  smallMs: number[];
  bigCpuMs: number[];
  smallCpuMs: number[];
}

/**
 * CPU milliseconds (user + system, every thread) the process `pid` used so far. Under
 * contention wall-clock figures swing; the CPU a build spends per byte stays comparable.
 */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function readBigThroughMount(mountpoint: string): Promise<number> {
  const started = performance.now();
  const handle = await open(join(mountpoint, "big.bin"), "r");
  const buffer = new Uint8Array(PIECE);
  let total = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, PIECE, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  await handle.close();
  if (total !== bigMiB * PIECE) throw new Error(`read ${total} bytes of big.bin`);
  return performance.now() - started;
}

/** Runs `read(index)` for every small file, {@link readers} at a time; resolves with the ms. */
async function readSmallFiles(read: (index: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  const reader = async () => {
    while (next < smallFiles) await read(next++);
  };
  await Promise.all(Array.from({ length: readers }, reader));
  return performance.now() - started;
}

function readSmallThroughMount(mountpoint: string): Promise<number> {
  return readSmallFiles(async (index) => {
    const bytes = await readFile(join(mountpoint, "small", `${index}.bin`));
    if (bytes.length !== SMALL_SIZE) throw new Error(`read ${bytes.length} bytes of a small file`);
  });
}

/** Peak resident memory (VmHWM) of process `pid`, in MB. */
function peakRssMbOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n")
    .find((entry) => entry.startsWith("VmHWM:"));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1000;
}

/** CPU milliseconds this process used since `start` (the store's reads run here). */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const base = mkdtempSync(join(tmpdir(), "riakfs-overlay-bench-"));
const mountpoint = join(base, "mnt");
const server = await startEmbeddedServer(["--memory"]);
const opened = openRiakStoreClient({ nodes: [`127.0.0.1:${server.port}`] });
const store = new Store(opened.client, { namespace: { bucket: "bench" } });
let mount: ChildProcess | undefined;

async function mountWith(binary: string): Promise<void> {
  mount = spawn(binary, [
    "mount",
    "--preset",
    "riak",
    "--foreground",
    "--riak",
    `127.0.0.1:${server.port}`,
    "--bucket",
    "bench",
    "--spool",
    join(base, "spool"),
    "--run-dir",
    join(base, "run"),
    "-o",
    "direct_io",
    base,
    mountpoint,
  ], {
    stdio: ["ignore", "ignore", "inherit"],
    env: mountNodeOptions === undefined
      ? { ...process.env }
      : { ...process.env, NODE_OPTIONS: mountNodeOptions },
  });
  await until(() => isMounted(mountpoint) || mount!.exitCode !== null, 15_000, "the mount");
  if (!isMounted(mountpoint)) throw new Error(`${binary} did not mount`);
}

/**
 * The mount's operation counters (`riakfs status --json`), and the requests the reader
 * threads answered without the event loop.
 */
async function opsOfMount(): Promise<Record<string, number>> {
  const result = await runRiakfs(["status", "--json", "--run-dir", join(base, "run"), mountpoint]);
  if (result.code !== 0) throw new Error(`riakfs status failed: ${result.stderr}`);
  const { ops, opsInReaders } = JSON.parse(result.stdout).metrics;
  const inReaders = Object.entries(opsInReaders as Record<string, number>)
    .map(([op, count]) => [`${op} in readers`, count]);
  return { ...ops, ...Object.fromEntries(inReaders) };
}

/** FUSE requests per small file, by operation, from the counters before and after. */
function perFile(before: Record<string, number>, after: Record<string, number>): string {
  return Object.entries(after)
    .map(([op, count]) => [op, (count - (before[op] ?? 0)) / smallFiles] as const)
    .filter(([, count]) => count >= 0.01)
    .map(([op, count]) => `${op} ${count.toFixed(2)}`).join(", ");
}

async function unmount(): Promise<void> {
  if (isMounted(mountpoint)) await runRiakfs(["umount", mountpoint]);
  const child = mount;
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    await until(() => child.exitCode !== null || child.signalCode !== null, 20_000, "the mount")
      .catch(() => process.kill(child.pid!, "SIGKILL"));
  }
  mount = undefined;
}

try {
  Deno.mkdirSync(mountpoint);
  const piece = bytesOf(1, PIECE);
  await store.writeFile(
    "big.bin",
    (async function* () {
      for (let index = 0; index < bigMiB; index++) yield piece;
    })(),
  );
  for (let index = 0; index < smallFiles; index++) {
    await store.writeFile(`small/${index}.bin`, bytesOf(index, SMALL_SIZE));
  }
  const timings = new Map<string, Timings>();
  for (const name of ["store", ...binaries]) {
    timings.set(name, { bigMs: [], smallMs: [], bigCpuMs: [], smallCpuMs: [] });
  }
  const loads: string[] = [];
  /** Peak RSS (VmHWM, MB) of each build's mount process. */
  const peakRss = new Map<string, number>();
  /** FUSE requests per small file of each build, counted in the first round. */
  const requests = new Map<string, string>();
  for (let round = 0; round < rounds; round++) {
    loads.push(loadavg()[0].toFixed(1));
    // Odd rounds run the builds in reverse, so neither always follows the store run.
    const order = round % 2 === 0 ? binaries : [...binaries].reverse();
    for (const binary of order) {
      await mountWith(binary);
      try {
        const timing = timings.get(binary)!;
        const pid = mount!.pid!;
        let cpu = cpuMsOf(pid);
        timing.bigMs.push(await readBigThroughMount(mountpoint));
        timing.bigCpuMs.push(cpuMsOf(pid) - cpu);
        const before = round === 0 ? await opsOfMount() : undefined;
        cpu = cpuMsOf(pid);
        timing.smallMs.push(await readSmallThroughMount(mountpoint));
        timing.smallCpuMs.push(cpuMsOf(pid) - cpu);
        if (before) requests.set(binary, perFile(before, await opsOfMount()));
        peakRss.set(binary, Math.max(peakRss.get(binary) ?? 0, peakRssMbOf(pid)));
      } finally {
        await unmount();
      }
    }
    const started = performance.now();
    let cpu = process.cpuUsage();
    let direct = 0;
    for await (const part of store.readRange("big.bin")) direct += part.length;
    if (direct !== bigMiB * PIECE) throw new Error(`store read ${direct} bytes of big.bin`);
    timings.get("store")!.bigMs.push(performance.now() - started);
    timings.get("store")!.bigCpuMs.push(cpuMsSince(cpu));
    cpu = process.cpuUsage();
    timings.get("store")!.smallMs.push(
      await readSmallFiles(async (index) => {
        await store.readFile(`small/${index}.bin`);
      }),
    );
    timings.get("store")!.smallCpuMs.push(cpuMsSince(cpu));
  }
  loads.push(loadavg()[0].toFixed(1));

  const store1 = timings.get("store")!;
  const bigRate = (ms: number) => `${(bigMiB * PIECE / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
  const smallRate = (ms: number) => `${(smallFiles / (ms / 1000)).toFixed(0)} files/s`;
  const ratios = (mine: number[], theirs: number[]) =>
    mine.map((ms, index) => (ms / theirs[index]).toFixed(2)).join(", ");
  console.log(
    `${rounds} round(s), ${readers} small-file reader(s) on each side, load average (1 min) per round: ${
      loads.join(" -> ")
    }`,
  );
  console.log(
    `| reader | ${bigMiB} MiB sequential | mount / store | ${smallFiles} x 100 KiB | mount / store |`,
  );
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const [name, timing] of timings) {
    const big = median(timing.bigMs);
    const small = median(timing.smallMs);
    console.log(
      `| ${name} | ${bigRate(big)} | ${
        name === "store"
          ? "-"
          : `${(big / median(store1.bigMs)).toFixed(2)} (${ratios(timing.bigMs, store1.bigMs)})`
      } | ${smallRate(small)} | ${
        name === "store"
          ? "-"
          : `${(small / median(store1.smallMs)).toFixed(2)} (${
            ratios(timing.smallMs, store1.smallMs)
          })`
      } |`,
    );
  }
  console.log(
    `CPU ms of the reading process (the mount; the bench itself for the store), median: ${
      [...timings].map(([name, timing]) =>
        `${name}: big ${median(timing.bigCpuMs).toFixed(0)}, small ${
          median(timing.smallCpuMs).toFixed(0)
        }`
      ).join("; ")
    }`,
  );
  for (const [binary, mb] of peakRss) console.log(`peak RSS of the mount, ${binary}: ${mb} MB`);
  for (const [binary, counts] of requests) {
    console.log(`requests per small file, ${binary}: ${counts}`);
  }
} finally {
  await unmount();
  await opened.close();
  await server.stop();
  if (existsSync(base) && !isMounted(mountpoint)) rmSync(base, { recursive: true, force: true });
}
