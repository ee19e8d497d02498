/**
 * Requests that wait for uploads (fsync, and in the modes that stage writes an unlink) behind
 * a backlog of them or on a Riak that is slow but answers. The uploads the request waits for
 * go ahead of the backlog; the wait runs without the request's fixed deadline
 * (`--request-timeout`) and fails with EIO only once Riak acknowledged nothing for a whole
 * `--riak-read-timeout`; an unlink calls off the uploads of its file that sent Riak nothing
 * yet, instead of sending them only to remove them. Riak is made slow by a latency on every
 * request, as a node across a network is, or held still (paused, or one put held back).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { RequestContext } from "../fuse/filesystem.ts";
import { seededBytes } from "../store/_test_support.ts";
import { isOutageError } from "./health.ts";
import {
  lookupPath,
  type OverlayFixture,
  ROOT_CTX,
  until,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

/** The overlay's read timeout in these tests (ms). */
const READ_TIMEOUT_MS = 600;
/** Every Riak request's latency while the large file uploads (ms). */
const LATENCY_MS = 40;
/** Files queued behind the first upload, which is held back. */
const BACKLOG = 20;
/** Chunks of the large file: sent one at a time, together they take well over the timeout. */
const CHUNKS = 24;
const CHUNK_SIZE = 4096;

/**
 * Writes BACKLOG files while the first upload is held (upload concurrency 1), so the rest is
 * queued behind it. Returns the last file's name and node, and the release of the first.
 */
async function queueBacklog(
  { fs, holdPuts }: OverlayFixture,
): Promise<{ last: string; node: number; release: () => void }> {
  const first = holdPuts();
  for (let i = 0; i < BACKLOG; i++) {
    await writeThrough(fs, `/f${i}`, Buffer.from(`file ${i}`));
  }
  await first.reached;
  const last = `f${BACKLOG - 1}`;
  return { last, node: await lookupPath(fs, `/${last}`), release: first.release };
}

/**
 * A request context that tells when the request began to wait for uploads, which it does
 * without the request deadline (see {@link RequestContext.withoutDeadline}).
 */
function waitingContext(): { ctx: RequestContext; waiting: Promise<void>; waits: () => number } {
  let waits = 0;
  let began!: () => void;
  const waiting = new Promise<void>((resolve) => began = resolve);
  const ctx: RequestContext = {
    ...ROOT_CTX,
    withoutDeadline: (wait) => {
      waits++;
      began();
      return wait();
    },
  };
  return { ctx, waiting, waits: () => waits };
}

/**
 * Resolves once `request` began its wait (`waiting`, see {@link waitingContext}); fails when
 * it ended before, or did not begin within 10 s (it would never, and the test would hang).
 */
async function beganToWait(waiting: Promise<void>, request: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("the request never waited without its deadline")),
      10_000,
    );
  });
  const ended = request.then(() => {
    throw new Error("the request ended without waiting for uploads");
  });
  try {
    await Promise.race([waiting, ended, never]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens node `node` for reading and writing, runs `body` with the handle, releases it. */
async function withHandle<T>(
  fs: OverlayFixture["fs"],
  node: number,
  body: (fh: number) => Promise<T>,
): Promise<T> {
  const { fh } = await fs.open!(ROOT_CTX, node, 2);
  try {
    return await body(fh);
  } finally {
    await fs.release!(ROOT_CTX, node, fh, 0);
  }
}

for (const preset of ["shadow", "migrate", "drain", "riak"]) {
  Deno.test(`${preset}: an fsync behind a backlog goes ahead of it, waiting without the request deadline`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, runtime } = fixture;
        const { last, node, release } = await queueBacklog(fixture);
        const { ctx, waiting, waits } = waitingContext();
        await withHandle(fs, node, async (fh) => {
          const syncing = fs.fsync!(ctx, node, fh, false);
          syncing.catch(() => {}); // Awaited below.
          await beganToWait(waiting, syncing);
          release();
          await syncing;
        });
        assert.equal((await store.readFile(`/${last}`)).toString(), `file ${BACKLOG - 1}`);
        // The first upload, which ran, then this one: the backlog is still there.
        const left = runtime.pendingUploads();
        assert.ok(left >= BACKLOG - 3, `fsync waited for the backlog: ${left} uploads left`);
        assert.equal(waits(), 1, "the wait ran without the request deadline");
        assert.equal(await runtime.settle(20_000), 0);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });
}

for (const preset of ["shadow", "riak"]) {
  Deno.test(`${preset}: an fsync of a file whose upload outlasts the Riak timeout waits, no EIO`, async () => {
    await withOverlay(
      preset,
      async ({ fs, riak, store, runtime }) => {
        const content = seededBytes(3, CHUNKS * CHUNK_SIZE);
        const created = await fs.create!(ROOT_CTX, 1, "large", 0o102, 0o644, 0o022);
        const [node, fh] = [created.entry.nodeid, created.opened.fh];
        const { ctx, waits } = waitingContext();
        try {
          await fs.write!(ROOT_CTX, node, fh, 0, content);
          riak.faults.setLatency(LATENCY_MS);
          const started = Date.now();
          await fs.fsync!(ctx, node, fh, false);
          const waited = Date.now() - started;
          await riak.faults.clear();
          assert.ok(waited > READ_TIMEOUT_MS, `the upload took ${waited} ms, not past the timeout`);
          assert.ok(content.equals(await store.readFile("/large")), "in Riak when fsync returned");
          assert.equal(waits(), 1, "the wait ran without the request deadline");
        } finally {
          await fs.release!(ROOT_CTX, node, fh, 0);
        }
        assert.equal(await runtime.settle(20_000), 0);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS) },
      {},
      { namespace: { chunkSize: CHUNK_SIZE }, uploadConcurrency: 1 },
    );
  });

  Deno.test(`${preset}: an fsync behind a backlog still fails with EIO once Riak stops answering`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, riak, runtime } = fixture;
        const { node, release } = await queueBacklog(fixture);
        const { ctx, waiting } = waitingContext();
        await withHandle(fs, node, async (fh) => {
          const syncing = fs.fsync!(ctx, node, fh, false);
          syncing.catch(() => {}); // Awaited below, once Riak stopped answering.
          await beganToWait(waiting, syncing);
          riak.faults.pause();
          const stopped = Date.now();
          release(); // The upload ahead of it reaches a Riak that answers nothing.
          await assert.rejects(syncing, (error) => isOutageError(error));
          const failedAfter = Date.now() - stopped;
          assert.ok(failedAfter >= READ_TIMEOUT_MS, `EIO already after ${failedAfter} ms`);
          assert.ok(failedAfter < 3 * READ_TIMEOUT_MS, `EIO only after ${failedAfter} ms`);
          await riak.faults.clear();
        });
        assert.equal(await runtime.settle(20_000), 0);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });
}

/** The staged files in the spool. */
async function stagedFiles(spool: string): Promise<string[]> {
  return await readdir(join(spool, "staged"));
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: an unlink of a file whose upload has not started drops it, at once`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, runtime, restart } = fixture;
        const { last, release } = await queueBacklog(fixture);
        // The first upload is still held: the unlink waits for nothing.
        await fs.unlink!(ROOT_CTX, 1, last);
        await assert.rejects(fs.lookup!(ROOT_CTX, 1, last), /ENOENT|no such/);
        release();
        assert.equal(await runtime.settle(20_000), 0);
        assert.equal(await store.tryStat(`/${last}`), undefined, "never reached Riak");
        assert.deepEqual(await stagedFiles(fixture.spool), [], "its staged file went with it");
        for (let i = 0; i < BACKLOG - 1; i++) {
          assert.equal((await store.readFile(`/f${i}`)).toString(), `file ${i}`);
        }
        // Dropped from the journal too: a restart has nothing to replay.
        await runtime.stop(1_000);
        const again = await restart();
        assert.equal(again.pendingUploads(), 0, "nothing replayed");
        assert.equal(await again.settle(10_000), 0);
        assert.equal(await store.tryStat(`/${last}`), undefined, "not brought back");
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });

  Deno.test(`${preset}: an unlink while its upload looks at Riak calls the upload off; nothing else is asked`, async () => {
    await withOverlay(
      preset,
      async ({ fs, riak, store, runtime, spool, requests, resetCounts }) => {
        const created = await fs.create!(ROOT_CTX, 1, "tmp", 0o101, 0o644, 0o022);
        const [node, fh] = [created.entry.nodeid, created.opened.fh];
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("scratch"));
        resetCounts();
        riak.faults.pause();
        await fs.release!(ROOT_CTX, node, fh, 0); // Its upload starts: a look first.
        await until(() => requests.heads > 0);
        const removed = fs.unlink!(ROOT_CTX, 1, "tmp");
        riak.faults.resume();
        await removed;
        assert.deepEqual(
          { puts: requests.puts, deletes: requests.deletes, setUpdates: requests.setUpdates },
          { puts: 0, deletes: 0, setUpdates: 0 },
          "Riak is asked nothing but the upload's look",
        );
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/tmp"), undefined);
        assert.deepEqual(await stagedFiles(spool), []);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS) },
    );
  });

  Deno.test(`${preset}: an unlink that calls off an upload which found nothing in Riak removes the file there all the same while a put of it may still land`, async () => {
    await withOverlay(
      preset,
      async ({ fs, riak, store, runtime, requests, resetCounts, latePut, logLines }) => {
        const created = await fs.create!(ROOT_CTX, 1, "tmp", 0o101, 0o644, 0o022);
        const [node, fh] = [created.entry.nodeid, created.opened.fh];
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("scratch"));
        resetCounts();
        // An earlier file of the name: its put timed out, and a node may apply it still.
        const landed = latePut("/tmp");
        riak.faults.pause();
        await fs.release!(ROOT_CTX, node, fh, 0); // Its upload starts: a look first.
        await until(() => requests.heads > 0);
        const removed = fs.unlink!(ROOT_CTX, 1, "tmp");
        riak.faults.resume();
        await until(() => logLines.some((line) => line.includes("may still land")));
        // The put lands, then its answer comes: the removal, which waited, takes it away.
        await store.writeFile("/tmp", Buffer.from("the earlier file"));
        landed();
        await removed;
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/tmp"), undefined);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS) },
    );
  });

  Deno.test(`${preset}: an unlink of a rewritten file whose upload it calls off removes the older one from Riak`, async () => {
    await withOverlay(
      preset,
      async ({ fs, riak, store, runtime, requests, resetCounts }) => {
        await store.writeFile("/f", Buffer.from("older, in Riak"));
        const node = await lookupPath(fs, "/f");
        const { fh } = await fs.open!(ROOT_CTX, node, 0o1001); // O_WRONLY | O_TRUNC
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("newer"));
        resetCounts();
        riak.faults.pause();
        await fs.release!(ROOT_CTX, node, fh, 0);
        await until(() => requests.heads > 0);
        const removed = fs.unlink!(ROOT_CTX, 1, "f");
        riak.faults.resume();
        await removed;
        assert.equal(requests.puts, 0, "the newer bytes never went out");
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/f"), undefined, "the older one is gone too");
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS) },
    );
  });

  Deno.test(`${preset}: a file unlinked while a handle still writes it never reaches Riak`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, runtime } = fixture;
        const { release } = await queueBacklog(fixture);
        const created = await fs.create!(ROOT_CTX, 1, "w", 0o102, 0o644, 0o022);
        const [node, fh] = [created.entry.nodeid, created.opened.fh];
        try {
          await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("one"));
          await fs.flush!(ROOT_CTX, node, fh); // Journaled: its upload waits behind the others.
          await fs.unlink!(ROOT_CTX, 1, "w");
          // The handle goes on writing the removed file, for nobody.
          await fs.write!(ROOT_CTX, node, fh, 3, Buffer.from(" two"));
          await fs.flush!(ROOT_CTX, node, fh);
          assert.equal(
            Buffer.from(await fs.read!(ROOT_CTX, node, fh, 0, 100)).toString(),
            "one two",
          );
        } finally {
          await fs.release!(ROOT_CTX, node, fh, 0);
        }
        release();
        assert.equal(await runtime.settle(20_000), 0);
        assert.equal(await store.tryStat("/w"), undefined, "neither version reached Riak");
        assert.deepEqual(await stagedFiles(fixture.spool), []);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });

  Deno.test(`${preset}: an unlink that fails lets the uploads it held back go on`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, riak, store, runtime } = fixture;
        await store.writeFile("/f", Buffer.from("older, in Riak"));
        const { release } = await queueBacklog(fixture);
        await writeThrough(fs, "/f", Buffer.from("newer"));
        // Riak must remove its older copy, and answers nothing: EIO, and nothing changed.
        riak.faults.pause();
        await assert.rejects(fs.unlink!(ROOT_CTX, 1, "f"), (error) => isOutageError(error));
        await riak.faults.clear();
        release();
        assert.equal(await runtime.settle(20_000), 0);
        assert.equal((await store.readFile("/f")).toString(), "newer");
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });
}
