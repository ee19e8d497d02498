/**
 * Requests that wait for uploads (fsync, and in the modes that stage writes an unlink) on a
 * Riak that is slow but answers: uploads that take longer than `--riak-read-timeout` (a
 * backlog of them ahead of the request's own, or one large file's many chunks) are no outage,
 * and the request waits until Riak holds its file instead of answering EIO at the deadline.
 * Riak is made slow by a latency on every request, as a node across a network is.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { seededBytes } from "../store/_test_support.ts";
import { isOutageError } from "./health.ts";
import {
  lookupPath,
  type OverlayFixture,
  ROOT_CTX,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

/** The overlay's read timeout in these tests (ms). */
const READ_TIMEOUT_MS = 600;
/** Every Riak request's latency while the uploads run (ms): an upload takes a few. */
const LATENCY_MS = 40;
/** Files queued ahead: each upload takes at least two requests, so all take well over the timeout. */
const BACKLOG = 20;
/** Chunks of the large file: sent one at a time, together they take well over the timeout. */
const CHUNKS = 24;
const CHUNK_SIZE = 4096;

/**
 * Writes BACKLOG files while the first upload is held, so the whole backlog is queued, and
 * makes Riak slow. Returns the last file's name and node, and the release of the first upload.
 */
async function queueBacklog(
  { fs, riak, holdPuts }: OverlayFixture,
): Promise<{ last: string; node: number; release: () => void }> {
  const first = holdPuts();
  for (let i = 0; i < BACKLOG; i++) {
    await writeThrough(fs, `/f${i}`, Buffer.from(`file ${i}`));
  }
  await first.reached;
  riak.faults.setLatency(LATENCY_MS);
  const last = `f${BACKLOG - 1}`;
  return { last, node: await lookupPath(fs, `/${last}`), release: first.release };
}

for (const preset of ["shadow", "riak"]) {
  const waiting = preset === "shadow" ? "an fsync" : "an unlink";
  Deno.test(`${preset}: ${waiting} behind uploads that outlast the Riak timeout waits, no EIO`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, riak, store, runtime } = fixture;
        const { last, node, release } = await queueBacklog(fixture);
        const started = Date.now();
        release();
        if (preset === "shadow") {
          const { fh } = await fs.open!(ROOT_CTX, node, 2);
          try {
            await fs.fsync!(ROOT_CTX, node, fh, false);
          } finally {
            await fs.release!(ROOT_CTX, node, fh, 0);
          }
        } else {
          await fs.unlink!(ROOT_CTX, 1, last);
        }
        const waited = Date.now() - started;
        await riak.faults.clear();
        assert.ok(waited > READ_TIMEOUT_MS, `the backlog took ${waited} ms, not past the timeout`);
        if (preset === "shadow") {
          assert.equal((await store.readFile(`/${last}`)).toString(), `file ${BACKLOG - 1}`);
        } else {
          assert.equal(await store.tryStat(`/${last}`), undefined, "removed from Riak");
        }
        assert.equal(await runtime.settle(20_000), 0);
      },
      { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
    );
  });

  Deno.test(`${preset}: an fsync of a file whose upload outlasts the Riak timeout waits, no EIO`, async () => {
    await withOverlay(
      preset,
      async ({ fs, riak, store, runtime }) => {
        const content = seededBytes(3, CHUNKS * CHUNK_SIZE);
        const created = await fs.create!(ROOT_CTX, 1, "large", 0o102, 0o644, 0o022);
        const [node, fh] = [created.entry.nodeid, created.opened.fh];
        try {
          await fs.write!(ROOT_CTX, node, fh, 0, content);
          riak.faults.setLatency(LATENCY_MS);
          const started = Date.now();
          await fs.fsync!(ROOT_CTX, node, fh, false);
          const waited = Date.now() - started;
          await riak.faults.clear();
          assert.ok(waited > READ_TIMEOUT_MS, `the upload took ${waited} ms, not past the timeout`);
          assert.ok(content.equals(await store.readFile("/large")), "in Riak when fsync returned");
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
}

Deno.test("shadow: an fsync behind a backlog still fails with EIO once Riak stops answering", async () => {
  await withOverlay(
    "shadow",
    async (fixture) => {
      const { fs, riak, runtime } = fixture;
      const { node, release } = await queueBacklog(fixture);
      const { fh } = await fs.open!(ROOT_CTX, node, 2);
      try {
        release();
        const syncing = fs.fsync!(ROOT_CTX, node, fh, false);
        syncing.catch(() => {}); // Awaited below, once Riak stopped answering.
        const uploaded = () => runtime.metrics.snapshot().uploads.uploaded;
        while (uploaded() < 2) await new Promise((resolve) => setTimeout(resolve, 5));
        riak.faults.pause();
        const stopped = Date.now();
        await assert.rejects(syncing, (error) => isOutageError(error));
        const failedAfter = Date.now() - stopped;
        assert.ok(uploaded() < BACKLOG, "Riak stopped answering before the backlog drained");
        // A whole timeout without an acknowledgement, after the last one that was under way.
        assert.ok(failedAfter < 3 * READ_TIMEOUT_MS, `EIO only after ${failedAfter} ms`);
      } finally {
        await riak.faults.clear();
        await fs.release!(ROOT_CTX, node, fh, 0);
      }
      assert.equal(await runtime.settle(20_000), 0);
    },
    { riakReadTimeout: String(READ_TIMEOUT_MS), uploadConcurrency: "1" },
  );
});
