/**
 * Reading from Riak through the mount against reading the same bytes through src/store
 * directly, side by side in one run: one large file read sequentially, and many 100 KiB
 * files. `dist/riakfs serve-riak --memory` and `dist/riakfs mount --preset riak` run as
 * their own processes; the mount uses direct I/O (no page cache) and every byte is read
 * once (the chunk cache only helps through read-ahead).
 *
 * Usage (after `npm run build`, as root):
 *   deno run -A bench/overlay/read_bench.ts [bigMiB=256] [smallFiles=2000]
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRiakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";
import { RIAKFS_BINARY, runRiakfs } from "../../tests/_riakfs.ts";
import { startEmbeddedServer } from "../_server.ts";

const bigMiB = Number(Deno.args[0] ?? 256);
const smallFiles = Number(Deno.args[1] ?? 2000);
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

function rate(bytes: number, ms: number): string {
  return `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}

const base = mkdtempSync(join(tmpdir(), "riakfs-overlay-bench-"));
const mountpoint = join(base, "mnt");
const server = await startEmbeddedServer(["--memory"]);
const opened = openRiakStoreClient({ nodes: [`127.0.0.1:${server.port}`] });
const store = new Store(opened.client, { namespace: { bucket: "bench" } });
let mount: ChildProcess | undefined;
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
  mount = spawn(RIAKFS_BINARY, [
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
  ], { stdio: ["ignore", "ignore", "inherit"] });
  await until(() => isMounted(mountpoint) || mount!.exitCode !== null, 15_000, "the mount");

  // Sequential read of the big file: through the mount, then through the store.
  let started = performance.now();
  const handle = await open(join(mountpoint, "big.bin"), "r");
  const buffer = new Uint8Array(PIECE);
  let total = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, PIECE, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  await handle.close();
  const mountBigMs = performance.now() - started;
  started = performance.now();
  let direct = 0;
  for await (const part of store.readRange("big.bin")) direct += part.length;
  const storeBigMs = performance.now() - started;

  // Many small files, one after another.
  started = performance.now();
  for (let index = 0; index < smallFiles; index++) {
    await readFile(join(mountpoint, "small", `${index}.bin`));
  }
  const mountSmallMs = performance.now() - started;
  started = performance.now();
  for (let index = 0; index < smallFiles; index++) await store.readFile(`small/${index}.bin`);
  const storeSmallMs = performance.now() - started;

  console.log(`| case | through the mount | through src/store | mount / store |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(
    `| ${bigMiB} MiB sequential | ${rate(total, mountBigMs)} | ${rate(direct, storeBigMs)} | ${
      (mountBigMs / storeBigMs).toFixed(2)
    } |`,
  );
  console.log(
    `| ${smallFiles} x 100 KiB | ${(smallFiles / (mountSmallMs / 1000)).toFixed(0)} files/s | ${
      (smallFiles / (storeSmallMs / 1000)).toFixed(0)
    } files/s | ${(mountSmallMs / storeSmallMs).toFixed(2)} |`,
  );
} finally {
  if (isMounted(mountpoint)) await runRiakfs(["umount", mountpoint]);
  if (mount?.pid !== undefined && mount.exitCode === null) {
    await until(() => mount!.exitCode !== null, 20_000, "the mount to exit").catch(() =>
      mount!.kill("SIGKILL")
    );
  }
  await opened.close();
  await server.stop();
  if (existsSync(base) && !isMounted(mountpoint)) rmSync(base, { recursive: true, force: true });
}
