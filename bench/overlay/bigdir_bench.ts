/**
 * Very large directories through a mount (issue #6: a directory of 1,000,000 entries listed and
 * changed at a cost that does not grow with it). Runs against a `riakfs serve-riak` started
 * beforehand, which keeps the directories between runs (a million entries take minutes to
 * write and about 7 GB of the embedded server's memory, past Node's default heap limit):
 *
 *   NODE_OPTIONS=--max-old-space-size=12288 dist/riakfs serve-riak --memory --listen 127.0.0.1:19100 &
 *   B="deno run -A bench/overlay/bigdir_bench.ts"
 *   $B fill 127.0.0.1:19100 1000,100000,1000000   # big/d<N>/IMG_<i>.jpg, empty files
 *   $B riak 127.0.0.1:19100 1000,100000,1000000   # a --preset riak mount per size
 *   $B migrate 127.0.0.1:19100 1000000 100000     # --preset migrate: Riak's d<N> + local files
 *   $B concurrent 127.0.0.1:19100 1000000         # a listing while entries come and go
 *   $B cli 127.0.0.1:19100 100000,1000000         # riakfs ls (and ls --long up to 100,000)
 *
 * (after `npm run build`, as root). `fill` writes the files through src/store (Store.writeFile,
 * 64 at once, whose directory entries go in batched set updates) until each directory holds N.
 * `riak` mounts the built binary (RIAKFS_BENCH_BINARY to measure another build) and times
 * `ls -f | wc -l` (READDIR), `ls -l` and `find -ls` (READDIR and a LOOKUP per entry: the riak
 * preset has no READDIRPLUS), and per name, 20 times each: stat, create, unlink, rename within
 * the directory, out of it and back in, before and after `ls -l` (which leaves the kernel
 * holding a node per entry), and last the mount's memory once the kernel forgot them
 * (`drop_caches`: the whole machine's unused dentries and inodes go). For each step it
 * prints the wall time per operation (of the
 * operations; what they leave to the background, uploads and directory times, is waited for
 * but not timed), the mount's CPU time per operation (user + system, steadier than wall time
 * on the shared cores), the Riak requests per operation (counted by a proxy of its own process
 * in front of Riak) and the mount's peak and current RSS. Mounts and the work directory live
 * under RIAKFS_BENCH_WORK (default /tmp/riakfs-bigdir-bench); RIAKFS_BENCH_PROXY_PORT picks the
 * proxy's port (default: any), RIAKFS_BENCH_FIND_LIMIT the largest directory that `find -ls`
 * and `ls --long` run on (default 100,000).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { loadavg } from "node:os";
import * as fsp from "node:fs/promises";
import { join, resolve } from "node:path";
import { FrameDecoder } from "../../src/riak/frame.ts";
import { messageName } from "../../src/riak/messages.ts";
import { AlreadyExistsError } from "../../src/store/errors.ts";
import type { MetricsSnapshot } from "../../src/overlay/metrics.ts";
import { openRiakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";
import { RIAKFS_BINARY, runRiakfs } from "../../tests/_riakfs.ts";

const BUCKET = "big";
const FILL_CONCURRENCY = 64;
/** Names each per-name step touches. */
const SAMPLE = 20;
/** Largest directory `find -ls` runs on (it costs what `ls -l` costs once more). */
const FIND_LIMIT = Number(Deno.env.get("RIAKFS_BENCH_FIND_LIMIT") ?? 100_000);
const binary = resolve(Deno.env.get("RIAKFS_BENCH_BINARY") ?? RIAKFS_BINARY);
const WORK = Deno.env.get("RIAKFS_BENCH_WORK") ?? "/tmp/riakfs-bigdir-bench";
const MOUNTPOINT = join(WORK, "mnt");
const PROXY_PORT = Number(Deno.env.get("RIAKFS_BENCH_PROXY_PORT") ?? 0);

/** The name of entry `index` of a big directory: 16 bytes, like a camera's file names. */
export function entryName(index: number): string {
  return `IMG_${String(index).padStart(8, "0")}.jpg`;
}

function directoryOf(size: number): string {
  return `d${size}`;
}

/** The names a directory lists in Riak (none when it does not exist). */
async function namesIn(store: Store, directory: string): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for await (const entry of store.list(directory)) names.add(entry.name.toString());
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  return names;
}

/**
 * Runs a write again after a failure: under load (the machine's 2 cores shared) the client can
 * take the server for hung during one of its long garbage collections; the write is
 * idempotent (an empty file written again).
 */
async function writeWithRetries(write: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await write();
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      console.error(`retrying a write: ${(error as Error).message}`);
      await new Promise((done) => setTimeout(done, 1000 * attempt));
    }
  }
}

async function fill(riak: string, sizes: number[]): Promise<void> {
  // The server answers late while it collects garbage in a heap of millions of objects on a
  // loaded machine: not a hung node.
  const opened = openRiakStoreClient({
    nodes: [riak],
    maxConnections: 32,
    stallCheckAfterMs: 30_000,
    pingTimeoutMs: 30_000,
  });
  const store = new Store(opened.client, { namespace: { bucket: BUCKET } });
  try {
    for (const size of sizes) {
      const directory = directoryOf(size);
      const present = await namesIn(store, directory);
      const missing = Array.from({ length: size }, (_, i) => entryName(i))
        .filter((name) => !present.has(name));
      if (missing.length === 0) {
        console.log(`${directory}: ${present.size} entries already`);
        continue;
      }
      const started = performance.now();
      const cpu = process.cpuUsage();
      let next = 0;
      const empty = new Uint8Array(0);
      const writer = async () => {
        while (next < missing.length) {
          const name = missing[next++];
          // An object left unlisted by an interrupted fill is written over, and listed.
          await writeWithRetries(() =>
            store.writeFile(`${directory}/${name}`, empty, { unlisted: true }).catch((error) => {
              if (!(error instanceof AlreadyExistsError)) throw error;
              return store.writeFile(`${directory}/${name}`, empty);
            })
          );
          if (next % 50_000 === 0) {
            console.log(
              `${directory}: ${next} of ${missing.length} (${
                (next / ((performance.now() - started) / 1000)).toFixed(0)
              }/s, load ${loadavg()[0].toFixed(1)})`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: FILL_CONCURRENCY }, writer));
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      console.log(
        `${directory}: wrote ${missing.length} files in ${seconds.toFixed(1)} s (${
          (missing.length / seconds).toFixed(0)
        }/s; CPU of this process ${((used.user + used.system) / 1e6).toFixed(1)} s), listed: ${
          (await namesIn(store, directory)).size
        }`,
      );
    }
  } finally {
    await opened.close();
  }
}

/**
 * Requests a mount sent to Riak, by message type, counted by a proxy in front of Riak. It runs
 * in a process of its own: this one's calls into the mount may block its event loop (Deno's
 * node:fs runs some of them synchronously), which would hold the mount's requests back.
 */
interface CountingProxy {
  node: string;
  counts(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** Serves the proxy (`proxy UPSTREAM PORT`): each line read on stdin answers the counts. */
async function serveCountingProxy(upstream: string, port: number): Promise<void> {
  const [host, upstreamPort] = upstream.split(":");
  const counts: Record<string, number> = {};
  const server = net.createServer((client) => {
    const riak = net.connect(Number(upstreamPort), host);
    const decoder = new FrameDecoder();
    client.on("data", (chunk: Uint8Array) => {
      for (const frame of decoder.push(chunk)) {
        const name = messageName(frame.code);
        counts[name] = (counts[name] ?? 0) + 1;
      }
      riak.write(chunk);
    });
    riak.on("data", (chunk: Uint8Array) => client.write(chunk));
    const closeBoth = () => {
      client.destroy();
      riak.destroy();
    };
    client.on("close", closeBoth).on("error", closeBoth);
    riak.on("close", closeBoth).on("error", closeBoth);
  });
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  process.stdin.setEncoding("utf8").on("data", (lines: string) => {
    for (let i = 0; i < lines.split("\n").length - 1; i++) console.log(JSON.stringify(counts));
  });
  process.stdin.on("end", () => process.exit(0));
}

async function startCountingProxy(upstream: string, port: number): Promise<CountingProxy> {
  const child = spawn(Deno.execPath(), [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "proxy",
    upstream,
    String(port),
  ], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let partial = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    partial += chunk;
    for (let end = partial.indexOf("\n"); end >= 0; end = partial.indexOf("\n")) {
      const line = partial.slice(0, end);
      partial = partial.slice(end + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  const nextLine = () =>
    new Promise<string>((done) => {
      const line = lines.shift();
      if (line !== undefined) done(line);
      else waiting.push(done);
    });
  const listening = /listening on (127\.0\.0\.1:\d+)/.exec(await nextLine());
  if (!listening) throw new Error("the counting proxy did not start");
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return {
    node: listening[1],
    async counts() {
      child.stdin!.write("\n");
      return new Map(Object.entries(JSON.parse(await nextLine()) as Record<string, number>));
    },
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}

function isMounted(mountpoint: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((line) =>
    line.split(" ")[4] === mountpoint
  );
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A mount of the built binary in its own process. */
interface Mount {
  pid: number;
  mountpoint: string;
  runDir: string;
  child: ChildProcess;
}

async function mount(
  preset: string,
  riak: string,
  source: string,
  mountpoint: string,
  work: string,
): Promise<Mount> {
  mkdirSync(mountpoint, { recursive: true });
  mkdirSync(source, { recursive: true });
  const runDir = join(work, "run");
  const child = spawn(binary, [
    "mount",
    "--preset",
    preset,
    "--foreground",
    "--riak",
    riak,
    "--bucket",
    BUCKET,
    "--spool",
    join(work, `spool-${preset}`),
    "--run-dir",
    runDir,
    source,
    mountpoint,
  ], { stdio: ["ignore", "ignore", "inherit"] });
  await until(() => isMounted(mountpoint) || child.exitCode !== null, 30_000, "the mount");
  if (!isMounted(mountpoint)) throw new Error(`${binary} did not mount`);
  return { pid: child.pid!, mountpoint, runDir, child };
}

async function unmount(mounted: Mount): Promise<void> {
  if (isMounted(mounted.mountpoint)) {
    const result = await runRiakfs(["umount", "--run-dir", mounted.runDir, mounted.mountpoint], {
      binary,
    });
    if (result.code !== 0) console.error(`umount: ${result.stderr}`);
  }
  const child = mounted.child;
  await until(() => child.exitCode !== null || child.signalCode !== null, 60_000, "the mount")
    .catch(() => process.kill(mounted.pid, "SIGKILL"));
}

/** CPU milliseconds (user + system, all threads) process `pid` used so far. */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function statusField(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n")
    .find((entry) => entry.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

/** Resident MiB of `pid` now. */
const rssOf = (pid: number) => statusField(pid, "VmRSS");
/** Peak resident MiB of `pid` since the last {@link resetPeak}. */
const peakOf = (pid: number) => statusField(pid, "VmHWM");
/** Starts a new peak of resident memory (clear_refs 5: Linux >= 4.0). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** What one measured step cost: wall and mount CPU per operation, and Riak requests. */
interface Step {
  what: string;
  ops: number;
  wallMs: number;
  cpuMs: number;
  requests: Map<string, number>;
  peakMiB: number;
  afterMiB: number;
}

async function measure(
  mounted: Mount,
  proxy: CountingProxy,
  what: string,
  ops: number,
  run: () => Promise<void>,
  settle?: () => Promise<void>,
): Promise<Step> {
  resetPeak(mounted.pid);
  const before = await proxy.counts();
  const cpu = cpuMsOf(mounted.pid);
  const started = performance.now();
  await run();
  const wallMs = performance.now() - started;
  // What the operations left to do in the background costs CPU and requests, not wall time.
  await settle?.();
  const cpuMs = cpuMsOf(mounted.pid) - cpu;
  const requests = new Map<string, number>();
  for (const [name, count] of await proxy.counts()) {
    const delta = count - (before.get(name) ?? 0);
    if (delta > 0) requests.set(name, delta);
  }
  const step = {
    what,
    ops,
    wallMs,
    cpuMs,
    requests,
    peakMiB: peakOf(mounted.pid),
    afterMiB: rssOf(mounted.pid),
  };
  console.log(formatStep(step));
  return step;
}

function formatStep(step: Step): string {
  const per = (value: number) =>
    step.ops === 1 ? value.toFixed(0) : (value / step.ops).toFixed(step.ops >= 1000 ? 3 : 2);
  const requests = [...step.requests].map(([name, count]) =>
    `${name.replace(/^(Rpb|Dt)/, "").replace(/Req$/, "")} ${per(count)}`
  ).join(", ");
  return `| ${step.what} | ${step.ops} | ${per(step.wallMs)} | ${per(step.cpuMs)} | ${
    requests || "-"
  } | ${step.peakMiB.toFixed(0)} / ${step.afterMiB.toFixed(0)} | ${loadavg()[0].toFixed(1)} |`;
}

const STEP_HEADER = "| step | ops | wall ms/op | mount CPU ms/op | Riak requests/op | " +
  "mount RSS MiB peak / after | load |\n| --- | --- | --- | --- | --- | --- | --- |";

/** Runs `command` in a shell and resolves with its stdout (rejects on a non-zero exit). */
function shell(command: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn("sh", ["-c", command], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => out += chunk);
    child.once("exit", (code) => code === 0 ? done(out) : fail(new Error(`${command}: ${code}`)));
  });
}

/** Per-name operations in `dir`, SAMPLE at a time, with names no earlier step touched. */
async function perNameSteps(
  mounted: Mount,
  proxy: CountingProxy,
  dir: string,
  size: number,
  round: string,
): Promise<void> {
  const names = Array.from(
    { length: SAMPLE },
    (_, i) => entryName(Math.floor((i + 0.5) * size / SAMPLE) + (round === "cold" ? 0 : 1)),
  );
  const outside = join(mounted.mountpoint, `out-${round}-${size}`);
  await fsp.mkdir(outside, { recursive: true });
  await measure(mounted, proxy, `stat (${round})`, SAMPLE, async () => {
    for (const name of names) await fsp.stat(join(dir, name));
  });
  const fresh = names.map((name) => `${name}.new-${round}`);
  await measure(mounted, proxy, `create (${round})`, SAMPLE, async () => {
    for (const name of fresh) await fsp.writeFile(join(dir, name), "");
  }, () => uploadsDone(mounted));
  await measure(mounted, proxy, `unlink (${round})`, SAMPLE, async () => {
    for (const name of fresh) await fsp.unlink(join(dir, name));
  }, () => uploadsDone(mounted));
  await measure(mounted, proxy, `rename within (${round})`, SAMPLE, async () => {
    for (const name of names) await fsp.rename(join(dir, name), join(dir, `${name}.moved`));
  }, () => uploadsDone(mounted));
  await measure(mounted, proxy, `rename out (${round})`, SAMPLE, async () => {
    for (const name of names) await fsp.rename(join(dir, `${name}.moved`), join(outside, name));
  }, () => uploadsDone(mounted));
  await measure(mounted, proxy, `rename in (${round})`, SAMPLE, async () => {
    for (const name of names) await fsp.rename(join(outside, name), join(dir, name));
  }, () => uploadsDone(mounted));
}

/** The mount's counters (`riakfs status --json`). */
async function metricsOf(mounted: Mount): Promise<MetricsSnapshot> {
  const result = await runRiakfs(
    ["status", "--json", "--run-dir", mounted.runDir, mounted.mountpoint],
    { binary },
  );
  if (result.code !== 0) throw new Error(`riakfs status: ${result.stderr}`);
  return JSON.parse(result.stdout).metrics;
}

/** Waits until the mount has no upload or removal left to send to Riak. */
async function uploadsDone(mounted: Mount): Promise<void> {
  await until(
    async () => {
      const { uploads, directoryTimesPending } = await metricsOf(mounted);
      return uploads.pending === 0 && directoryTimesPending === 0;
    },
    60_000,
    "the uploads",
  );
}

/**
 * Makes the kernel forget the nodes it holds (`drop_caches` 2 prunes unused dentries and
 * inodes: a FORGET of each) and waits for at least `nodes` FORGETs, counted by the mount.
 */
async function kernelForgets(mounted: Mount, nodes: number): Promise<void> {
  const before = (await metricsOf(mounted)).ops.forget ?? 0;
  writeFileSync("/proc/sys/vm/drop_caches", "2");
  await until(
    async () => ((await metricsOf(mounted)).ops.forget ?? 0) - before >= nodes,
    300_000,
    "the kernel's FORGETs",
  );
}

/** `ls -f | wc -l` of `dir`, measured, which must list `entries` besides `.` and `..`. */
async function listWhole(mounted: Mount, proxy: CountingProxy, dir: string, entries: number) {
  let listed = 0;
  await measure(mounted, proxy, "ls -f | wc -l", 1, async () => {
    listed = Number(await shell(`ls -f ${dir} | wc -l`));
  });
  if (listed !== entries + 2) throw new Error(`ls -f listed ${listed} of ${entries} + 2`);
}

/** Through a `riak` preset mount: listings and per-name operations, one fresh mount per size. */
async function riakPreset(riak: string, sizes: number[]): Promise<void> {
  const proxy = await startCountingProxy(riak, PROXY_PORT);
  try {
    for (const size of sizes) {
      console.log(`\n### d${size}, ${binary}\n\n${STEP_HEADER}`);
      const mounted = await mount("riak", proxy.node, join(WORK, "src"), MOUNTPOINT, WORK);
      try {
        const dir = join(MOUNTPOINT, directoryOf(size));
        await listWhole(mounted, proxy, dir, size);
        // Held per entry, the second listing would need as much again; garbage, it need not.
        await measure(mounted, proxy, "ls -f | wc -l, again", 1, async () => {
          await shell(`ls -f ${dir} | wc -l`);
        });
        await perNameSteps(mounted, proxy, dir, size, "cold");
        await measure(mounted, proxy, "ls -l > /dev/null (per entry)", size, async () => {
          await shell(`ls -l ${dir} > /dev/null`);
        });
        if (size <= FIND_LIMIT) {
          await measure(mounted, proxy, "find -ls > /dev/null (per entry)", size, async () => {
            await shell(`find ${dir} -ls > /dev/null`);
          });
        }
        await perNameSteps(mounted, proxy, dir, size, "after ls -l");
        // What the mount keeps of the entries once the kernel let go of them.
        await measure(mounted, proxy, "the kernel forgets them (drop_caches)", 1, async () => {
          await kernelForgets(mounted, size);
        });
      } finally {
        await unmount(mounted);
      }
    }
  } finally {
    await proxy.close();
  }
}

/**
 * Through a `migrate` preset mount: the union of a local directory of `local` files (half of
 * them named as entries Riak holds, half only local) and Riak's `d<size>`.
 */
async function migratePreset(riak: string, size: number, local: number): Promise<void> {
  const source = join(WORK, "migrate-source");
  const localDir = join(source, directoryOf(size));
  mkdirSync(localDir, { recursive: true });
  const localNames = Array.from(
    { length: local },
    (_, i) => i % 2 === 0 ? entryName(i) : `local_${String(i).padStart(8, "0")}.txt`,
  );
  for (const name of localNames) {
    const path = join(localDir, name);
    if (!existsSync(path)) writeFileSync(path, "");
  }
  const expected = size + localNames.filter((name) => name.startsWith("local_")).length;
  const proxy = await startCountingProxy(riak, PROXY_PORT);
  console.log(`\n### migrate: d${size} in Riak, ${local} local, ${binary}\n\n${STEP_HEADER}`);
  const mounted = await mount("migrate", proxy.node, source, MOUNTPOINT, WORK);
  try {
    const dir = join(MOUNTPOINT, directoryOf(size));
    await listWhole(mounted, proxy, dir, expected);
    const names = Array.from({ length: SAMPLE }, (_, i) => localNames[i * 2 + 1]);
    await measure(mounted, proxy, "stat of a local-only name", SAMPLE, async () => {
      for (const name of names) await fsp.stat(join(dir, name));
    });
    if (expected <= FIND_LIMIT) {
      await measure(mounted, proxy, "ls -l > /dev/null (per entry)", expected, async () => {
        await shell(`ls -l ${dir} > /dev/null`);
      });
    }
  } finally {
    await unmount(mounted);
    await proxy.close();
  }
}

/**
 * A listing through a `riak` mount while entries come and go, through the mount and through
 * another client (which also removes names and makes them again): no name twice, none missing
 * that was there throughout, none from nowhere.
 */
async function concurrentListing(riak: string, size: number): Promise<void> {
  const opened = openRiakStoreClient({ nodes: [riak], maxConnections: 8 });
  const store = new Store(opened.client, { namespace: { bucket: BUCKET } });
  const directory = directoryOf(size);
  const mounted = await mount("riak", riak, join(WORK, "src"), MOUNTPOINT, WORK);
  const dir = join(MOUNTPOINT, directory);
  const removed = Array.from({ length: 400 }, (_, i) => entryName(Math.floor(i * size / 400) + 3));
  const added = Array.from({ length: 400 }, (_, i) => `added_${String(i).padStart(4, "0")}.jpg`);
  try {
    const listing = shell(`ls -f ${dir}`);
    let done = false;
    void listing.finally(() => done = true);
    let changes = 0;
    const started = performance.now();
    // Every other change goes through the mount, the others through another client.
    for (let i = 0; i < removed.length && !done; i++) {
      if (i % 2 === 0) {
        await fsp.unlink(join(dir, removed[i]));
        await fsp.writeFile(join(dir, added[i]), "");
      } else {
        // Removed and made again: added to the newest level, maybe after the listing read the
        // level where it was.
        await store.remove(`${directory}/${removed[i]}`);
        await store.writeFile(`${directory}/${removed[i]}`, new Uint8Array(0));
        await store.writeFile(`${directory}/${added[i]}`, new Uint8Array(0));
      }
      changes++;
    }
    const names = (await listing).split("\n").filter((name) => name !== "");
    const seconds = (performance.now() - started) / 1000;
    const counts = new Map<string, number>();
    for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
    const twice = [...counts].filter(([, count]) => count > 1).map(([name]) => name);
    const gone = new Set(removed.slice(0, changes));
    const missing = Array.from({ length: size }, (_, i) => entryName(i))
      .filter((name) => !gone.has(name) && !counts.has(name));
    const known = new Set([".", "..", ...added]);
    const foreign = names.filter((name) => !known.has(name) && !/^IMG_\d{8}\.jpg$/.test(name));
    console.log(
      `listing of ${directory} during ${changes} removals (half of them made again) and ` +
        `${changes} additions (half through the mount) took ${
          seconds.toFixed(1)
        } s: ${names.length} names, ` +
        `${twice.length} twice, ${missing.length} missing, ${foreign.length} unknown` +
        (twice.length + missing.length + foreign.length > 0
          ? ` (${[...twice, ...missing, ...foreign].slice(0, 5).join(" ")})`
          : ""),
    );
    if (changes === removed.length) console.log("(the listing outlasted every change)");
    for (let i = 0; i < changes; i++) {
      await store.remove(`${directory}/${added[i]}`).catch(() => {});
      await store.writeFile(`${directory}/${removed[i]}`, new Uint8Array(0));
    }
  } finally {
    await unmount(mounted);
    await opened.close();
  }
}

/** `riakfs ls` (and `ls --long`) of the big directories, its wall and CPU time and peak RSS. */
async function cliListing(riak: string, sizes: number[]): Promise<void> {
  for (const size of sizes) {
    for (const long of size <= FIND_LIMIT ? [false, true] : [false]) {
      const timeFile = join(WORK, "time.txt");
      mkdirSync(WORK, { recursive: true });
      const count = (await shell(
        `/usr/bin/time -o ${timeFile} -f '%e s wall, %U+%S s CPU, %M KB peak RSS' ${binary} ls ` +
          `${long ? "--long " : ""}--riak ${riak} --bucket ${BUCKET} ${directoryOf(size)} | wc -l`,
      )).trim();
      const time = readFileSync(timeFile, "utf8").trim().split("\n").at(-1);
      console.log(
        `riakfs ls ${long ? "--long " : ""}d${size}: ${count} lines; ${time}; load ${
          loadavg()[0].toFixed(1)
        }`,
      );
    }
  }
}

const [command, riak, sizesArg] = Deno.args;
const sizes = command === "proxy" ? [] : (sizesArg ?? "1000,100000,1000000").split(",").map(Number);
if (command === "fill") await fill(riak, sizes);
else if (command === "proxy") await serveCountingProxy(riak, Number(sizesArg));
else if (command === "riak") await riakPreset(riak, sizes);
else if (command === "migrate") {
  await migratePreset(riak, sizes[0], Number(Deno.args[3] ?? 100_000));
} else if (command === "concurrent") await concurrentListing(riak, sizes[0]);
else if (command === "cli") await cliListing(riak, sizes);
else {
  console.error("usage: see the top of bench/overlay/bigdir_bench.ts");
  Deno.exit(2);
}
