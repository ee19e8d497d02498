/**
 * The store layout's cost against plain Riak puts and gets of the same bytes, in one run
 * against `dist/riakfs serve-riak --memory` as its own process:
 *
 * - one large file (default 1 GiB): `Store.writeFile` from a stream (hashing, 1 MiB chunks,
 *   4 uploads in flight, manifest, directory entry) and `Store.readRange` (per-chunk sha256
 *   check, 2 chunks read ahead), against plain puts of the same 1 MiB pieces with 4 in flight
 *   and plain gets with 3 in flight;
 * - many small files (default 10,000 of 100 KiB): `Store.writeFile` / `Store.readFile`, 8
 *   files in flight, against plain puts/gets of the same values, 8 in flight.
 *
 * Each case runs `rounds` times (default 3), store and plain alternating, each round on fresh
 * keys (new files, as a migration writes them); the medians are compared, which keeps a burst
 * of load from other processes from deciding the result. Which side goes first alternates by
 * round, and an untimed warm-up pass of every case comes first: the side that ran first in a
 * cold process paid for compiling the client's code and growing its heap (up to 0.5 ms per
 * MiB more in a single round). Downloads hand each value back once counted (`releaseRead`,
 * `releaseFrame`), as a reader that streams the bytes on does.
 *
 * Run `bash bench/store/run.sh [MiB [files [rounds]]]`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { RiakClient } from "../../src/riak/client.ts";
import { releaseFrame } from "../../src/riak/frame.ts";
import { riakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";
import { startEmbeddedServer } from "../_server.ts";

const BIG_MIB = Number(process.argv[2] ?? 1024);
const SMALL_FILES = Number(process.argv[3] ?? 10000);
const SMALL_SIZE = 100 * 1024;
const MiB = 1024 * 1024;
const IN_FLIGHT_SMALL = 8;
/** Rounds of every case, store and plain alternating; the median of each side is reported. */
const ROUNDS = Number(process.argv[4] ?? 3);
/** Size of the untimed warm-up pass of each case. */
const WARM_UP_MIB = 64;
const WARM_UP_FILES = 1000;
/** Linux's USER_HZ, the unit of /proc/PID/stat times. */
const CLOCK_TICKS_PER_SECOND = 100;

/** A fixed pseudo-random MiB to slice values from (AES-CTR keystream, fixed key). */
const POOL = (() => {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16));
  return cipher.update(Buffer.alloc(2 * MiB));
})();

function piece(index: number, size: number): Buffer {
  const offset = (index * 7919) % MiB;
  return POOL.subarray(offset, offset + size);
}

async function* bigStream(mib: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < mib; i++) yield piece(i, MiB);
}

async function pool(count: number, inFlight: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** CPU seconds (user + system) a process used so far, from /proc (Linux). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** What one side of a case cost: wall time, and CPU of this client and of the server. */
interface Cost {
  seconds: number;
  clientCpu: number;
  serverCpu: number;
}

async function timed(serverPid: number, fn: () => Promise<unknown>): Promise<Cost> {
  const serverBefore = cpuSecondsOf(serverPid);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  await fn();
  const seconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  return {
    seconds,
    clientCpu: (client.user + client.system) / 1e6,
    serverCpu: cpuSecondsOf(serverPid) - serverBefore,
  };
}

/** Costs of each side per case, over the rounds. */
const times = new Map<string, { bytes: number; store: Cost[]; plain: Cost[] }>();

function record(name: string, bytes: number, side: "store" | "plain", cost: Cost): void {
  const entry = times.get(name) ?? { bytes, store: [], plain: [] };
  entry[side].push(cost);
  times.set(name, entry);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function report(): void {
  for (const [name, { bytes, store, plain }] of times) {
    const rate = (seconds: number) => bytes / MiB / seconds;
    const storeRate = rate(median(store.map((c) => c.seconds)));
    const plainRate = rate(median(plain.map((c) => c.seconds)));
    const rounds = store.map((s, i) => `${(plain[i].seconds / s.seconds * 100).toFixed(0)}%`)
      .join(" ");
    // CPU per MiB is far steadier than wall time on a shared machine.
    const cpu = (costs: Cost[], of: "clientCpu" | "serverCpu") =>
      (median(costs.map((c) => c[of])) * 1000 / (bytes / MiB)).toFixed(2);
    console.log(
      `${name.padEnd(28)} store ${storeRate.toFixed(0).padStart(5)} MiB/s   plain ${
        plainRate.toFixed(0).padStart(5)
      } MiB/s   store/plain ${(storeRate / plainRate * 100).toFixed(0)}% (rounds: ${rounds})` +
        `   CPU ms/MiB client ${cpu(store, "clientCpu")} vs ${cpu(plain, "clientCpu")},` +
        ` server ${cpu(store, "serverCpu")} vs ${cpu(plain, "serverCpu")}`,
    );
  }
}

/** Times one case on both sides, `storeFirst` or not, and records both (unless warming up). */
async function both(
  name: string,
  bytes: number,
  store: () => Promise<unknown>,
  plain: () => Promise<unknown>,
): Promise<void> {
  const sides = [["store", store], ["plain", plain]] as const;
  for (const [side, run] of storeFirst ? sides : [...sides].reverse()) {
    const cost = await timed(serverPid, run);
    if (!warmingUp) record(name, bytes, side, cost);
  }
}

/** Whether this round runs the store side of each case first (it alternates by round). */
let storeFirst = true;
/** Whether this is the untimed warm-up pass. */
let warmingUp = false;

/** The server process, whose CPU each side's cost includes. */
let serverPid = 0;

async function round(
  r: number | "warm-up",
  riak: RiakClient,
  store: Store,
  { bigMiB, smallFiles }: { bigMiB: number; smallFiles: number },
): Promise<void> {
  const plainBucket = "bench-plain";
  const bigBytes = bigMiB * MiB;
  const big = `r${r}/big/file.bin`;
  const bigKey = (i: number) => ({ bucket: plainBucket, key: `r${r}.big.${i}` });
  const octets = "application/octet-stream";
  await both(
    `upload ${bigMiB} MiB file`,
    bigBytes,
    () => store.writeFile(big, bigStream(bigMiB)),
    () =>
      pool(bigMiB, 4, (i) => riak.put(bigKey(i), { value: piece(i, MiB), contentType: octets })),
  );
  let read = 0;
  await both(
    `download ${bigMiB} MiB file`,
    bigBytes,
    async () => {
      for await (const part of store.readRange(big)) {
        read += part.length;
        store.releaseRead(part);
      }
      if (read !== bigBytes) throw new Error(`store read ${read} of ${bigBytes} bytes`);
    },
    () =>
      pool(bigMiB, 3, async (i) => {
        const { value } = (await riak.get(bigKey(i))).siblings[0];
        if (value.length !== MiB) throw new Error(`big.${i} short`);
        releaseFrame(value);
      }),
  );
  // The embedded server keeps everything in memory: drop the large file before going on.
  await store.remove(`r${r}/big`, { recursive: true });
  await pool(bigMiB, 8, (i) => riak.delete(bigKey(i)));

  const smallBytes = smallFiles * SMALL_SIZE;
  const small = (i: number) => `r${r}/small/f${i}.bin`;
  await both(
    `upload ${smallFiles} x 100 KiB`,
    smallBytes,
    () => pool(smallFiles, IN_FLIGHT_SMALL, (i) => store.writeFile(small(i), piece(i, SMALL_SIZE))),
    () =>
      pool(smallFiles, IN_FLIGHT_SMALL, (i) =>
        riak.put({ bucket: plainBucket, key: small(i) }, {
          value: piece(i, SMALL_SIZE),
          contentType: octets,
        })),
  );
  await both(
    `download ${smallFiles} x 100 KiB`,
    smallBytes,
    () =>
      pool(smallFiles, IN_FLIGHT_SMALL, async (i) => {
        const content = await store.readFile(small(i));
        if (content.length !== SMALL_SIZE) throw new Error(`${small(i)} short`);
        store.releaseRead(content);
      }),
    () =>
      pool(smallFiles, IN_FLIGHT_SMALL, async (i) => {
        const { value } = (await riak.get({ bucket: plainBucket, key: small(i) })).siblings[0];
        if (value.length !== SMALL_SIZE) throw new Error(`${small(i)} short`);
        releaseFrame(value);
      }),
  );
}

async function main() {
  const server = await startEmbeddedServer(["--memory"], "dist/riakfs");
  serverPid = server.child.pid!;
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const riak = new RiakClient({ nodes: `127.0.0.1:${server.port}`, maxConnections: 16 });
  try {
    const store = new Store(riakStoreClient(riak), { namespace: { bucket: "bench-store" } });
    warmingUp = true;
    await round("warm-up", riak, store, {
      bigMiB: Math.min(BIG_MIB, WARM_UP_MIB),
      smallFiles: Math.min(SMALL_FILES, WARM_UP_FILES),
    });
    warmingUp = false;
    for (let r = 0; r < ROUNDS; r++) {
      storeFirst = r % 2 === 0;
      await round(r, riak, store, { bigMiB: BIG_MIB, smallFiles: SMALL_FILES });
    }
    report();
    console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  } finally {
    await riak.close();
    await server.stop();
  }
}

await main();
