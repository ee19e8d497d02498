/**
 * The upload queue's own bookkeeping with a large backlog, as an outage of minutes leaves it
 * (bench/README.md, "A Riak outage of minutes under a working mount": 14,000-31,000 staged
 * files). No mount and no Riak: a real spool and journal, and an uploader and a mirrorer that
 * fail as an unreachable Riak does until "Riak is back", then succeed at once, so what is timed
 * is the queue, the journal and the spool, not the uploads:
 *
 *   deno run -A bench/overlay/queue_backlog_bench.ts 50000
 *
 * N jobs (default 50,000) queued during the outage, half staged files (empty, made in the spool
 * first and not timed), half mirrors, as `/d<i % 100>/f<i>`; then, still during the outage:
 * N/10 of them written again (a newer job replaces the queued one), 1,000 fsyncs (`hurry` of a
 * path), 10 of a directory (`hurry` below it), 1,000 unlinks (`withhold` + `drop`), 1,000
 * listings of a directory of 10 pending files among them (`pendingNamesIn`,
 * `mirroredNamesIn`), 100 status reports (the pending count and the journal's staged sizes);
 * then a restart (the journal read back and replayed into a new queue) and Riak back (the
 * whole backlog uploaded). Each step prints its wall time and the longest the event loop was
 * held at once during it (a timer due every 5 ms that came late), which is how long a FUSE
 * request would have waited. The spool lives under RIAKFS_BENCH_WORK (default: the system's
 * temporary directory); on a disk, the journal's fsyncs are timed too, so tmpfs (/dev/shm)
 * measures the bookkeeping alone.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NewUpload, UploadJournal } from "../../src/overlay/journal.ts";
import { MountMetrics } from "../../src/overlay/metrics.ts";
import { Spool } from "../../src/overlay/spool.ts";
import { UploadQueue, type UploadTicket } from "../../src/overlay/upload_queue.ts";

const jobs = Number(Deno.args[0] ?? 50_000);
if (!Number.isSafeInteger(jobs) || jobs < 1_000) {
  console.error("usage: queue_backlog_bench.ts [JOBS >= 1000]");
  Deno.exit(2);
}
const DIRECTORIES = 100;
/** Submissions awaited together: their journal lines share an fsync, as concurrent closes do. */
const BATCH = 500;

let riakUp = false;
const outage = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
const transfer = () => riakUp ? Promise.resolve() : Promise.reject(outage());

/** The longest a timer due every 5 ms came late since the last call, in ms. */
const stalls = (() => {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - 5);
    last = now;
  }, 5);
  return {
    take(): number {
      const now = performance.now();
      const value = Math.max(longest, now - last - 5);
      longest = 0;
      last = now;
      return value;
    },
    stop: () => clearInterval(timer),
  };
})();

async function step<T>(name: string, body: () => Promise<T> | T): Promise<T> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  stalls.take();
  const started = performance.now();
  const result = await body();
  const ms = performance.now() - started;
  console.log(
    `${name.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms   longest stall ${
      stalls.take().toFixed(0).padStart(6)
    } ms`,
  );
  return result;
}

const pathOf = (index: number) => `/d${index % DIRECTORIES}/f${index}`;
const isUpload = (index: number) => index % 2 === 0;

const work = await mkdtemp(join(Deno.env.get("RIAKFS_BENCH_WORK") ?? tmpdir(), "queue-backlog-"));
try {
  const spool = Spool.open(join(work, "spool"));
  const opened = await UploadJournal.open(spool.journalFile);
  const queueOf = (journal: UploadJournal) =>
    new UploadQueue({
      spool,
      journal,
      upload: transfer,
      mirror: transfer,
      metrics: new MountMetrics(),
    });
  const stage = async (path: string): Promise<NewUpload> => {
    const staged = await spool.create();
    await staged.handle.close();
    return { path, staged: staged.name, mode: 0o644, uid: 0, gid: 0, mtimeNs: "0", size: 0 };
  };
  const submit = async (queue: UploadQueue, index: number): Promise<UploadTicket> =>
    isUpload(index)
      ? await queue.submit(await stage(pathOf(index)))
      : await queue.submitMirror({ path: pathOf(index), mirror: "copy" });
  const inBatches = async (indexes: number[], body: (index: number) => Promise<unknown>) => {
    for (let at = 0; at < indexes.length; at += BATCH) {
      await Promise.all(indexes.slice(at, at + BATCH).map(body));
    }
  };
  const range = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, offset) => from + offset);

  console.log(`${jobs} jobs, spool ${spool.directory}`);
  let queue = queueOf(opened.journal);
  await step(
    `queue ${jobs} jobs (outage)`,
    () => inBatches(range(0, jobs), (i) => submit(queue, i)),
  );
  await step(
    `write ${jobs / 10} of them again (replaces)`,
    () => inBatches(range(0, jobs / 10), (i) => submit(queue, i)),
  );
  await step("1,000 hurry(path) (fsync)", () => {
    for (let i = 0; i < 1_000; i++) queue.hurry(pathOf(jobs - 1 - i * 7));
  });
  await step("10 hurry(directory, below)", () => {
    for (let d = 0; d < 10; d++) queue.hurry(`/d${DIRECTORIES - 1 - d}`, true);
  });
  await step("1,000 withhold + drop (unlink)", async () => {
    for (let i = 0; i < 2_000; i += 2) {
      const held = await queue.withhold(pathOf(jobs - 2 - i * 3));
      await held?.drop();
    }
  });
  await inBatches(range(0, 10), async (i) => {
    await queue.submit(await stage(`/small/f${i}`));
  });
  await step("1,000 listings of a directory of 10", () => {
    for (let i = 0; i < 1_000; i++) {
      if (queue.pendingNamesIn("/small").length !== 10) throw new Error("listing is wrong");
      queue.mirroredNamesIn("/small");
    }
  });
  await step("100 status counts", () => {
    for (let i = 0; i < 100; i++) {
      if (queue.pendingCount < jobs * 0.8) throw new Error("count is wrong");
      opened.journal.stagedSizes();
    }
  });
  await step("spool usage (status)", () => spool.usage(opened.journal.stagedSizes()));
  await queue.stop(0);
  // A job retrying in its backoff when a newer one of its path came gives way to it when it
  // wakes (at the latest, as here, when the queue stops): the journal has the count.
  const pending = opened.journal.pendingCount;
  await opened.journal.close();

  const reopened = await step(
    `restart: read the journal (${pending} pending)`,
    () => UploadJournal.open(spool.journalFile),
  );
  queue = queueOf(reopened.journal);
  await step("restart: replay it into the queue", () => queue.resume(reopened.pending));
  if (queue.pendingCount !== pending) {
    throw new Error(`replayed ${queue.pendingCount} of ${pending}`);
  }
  riakUp = true;
  await step(`Riak back: the backlog uploaded`, async () => {
    queue.nudge();
    const left = await queue.drain(3_600_000);
    if (left !== 0) throw new Error(`${left} left`);
  });
  await queue.stop(0);
  await reopened.journal.close();
} finally {
  stalls.stop();
  await rm(work, { recursive: true, force: true });
}
