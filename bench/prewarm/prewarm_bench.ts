/**
 * Pre-warm throughput against `dist/riakfs serve-riak --memory` (its own process), side by
 * side with a plain client loop that puts the same bytes at the same concurrency.
 *
 * Run: `deno run -A bench/prewarm/prewarm_bench.ts [smallFiles] [bigFiles] [bigMiB]` after
 * `npm run build`; defaults 10000 files of 100 KiB and 10 files of 100 MiB.
 *
 * The plain loop reads each file and puts it as one object (small files) or as 1 MiB chunk
 * objects (large files; Riak refuses objects above 50 MB), `concurrency` files at a time with
 * up to 4 chunk puts in flight per file: the same shape as the pre-warm's uploads, without
 * the layout's metadata (head-only get, manifest, directory entries).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RiakClient } from "../../src/riak/mod.ts";
import { runRiakfs } from "../../tests/_riakfs.ts";
import { startEmbeddedServer } from "../_server.ts";

const smallFiles = Number(Deno.args[0] ?? 10_000);
const bigFiles = Number(Deno.args[1] ?? 10);
const bigMiB = Number(Deno.args[2] ?? 100);
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

async function runCase(label: string, files: number, size: number) {
  const root = mkdtempSync(join(tmpdir(), "riakfs-bench-src-"));
  const state = mkdtempSync(join(tmpdir(), "riakfs-bench-state-"));
  const server = await startEmbeddedServer(["--memory"]);
  const riak = new RiakClient({ nodes: `127.0.0.1:${server.port}` });
  try {
    const paths = makeTree(root, files, size);
    const bytes = files * size;
    const prewarm = async () => {
      const started = performance.now();
      const run = await runRiakfs([
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
      ]);
      if (run.code !== 0) throw new Error(`prewarm failed: ${run.stderr}${run.stdout}`);
      return (performance.now() - started) / 1000;
    };
    const prewarmS = await prewarm();
    const skipS = await prewarm();
    const started = performance.now();
    await plainLoop(riak, root, paths, "plain");
    const plainS = (performance.now() - started) / 1000;
    const row = (what: string, s: number) =>
      `| ${label} | ${what} | ${(files / s).toFixed(0)} | ${(bytes / 1e6 / s).toFixed(1)} | ${
        s.toFixed(1)
      } |`;
    console.log(row("riakfs prewarm", prewarmS));
    console.log(row("plain put loop", plainS));
    console.log(
      `| ${label} | second prewarm (all skipped, head-only gets) | ${
        (files / skipS).toFixed(0)
      } | | ${skipS.toFixed(1)} |`,
    );
    console.log(`| ${label} | prewarm / plain | ${(plainS / prewarmS * 100).toFixed(0)}% | | |`);
  } finally {
    await riak.close();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}

console.log("| case | what | files/s | MB/s | seconds |");
console.log("| ---- | ---- | ------- | ---- | ------- |");
await runCase(`${smallFiles} x 100 KiB`, smallFiles, 100 * 1024);
if (bigFiles > 0) await runCase(`${bigFiles} x ${bigMiB} MiB`, bigFiles, bigMiB * 1024 * 1024);
