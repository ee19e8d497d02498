/**
 * The only Riak node, busy but alive: every answer takes longer than the client's check of a
 * stalled request (a ping after `--stall-check-after`, unanswered within `--ping-timeout`; 1 s
 * and 2 s by default, a fifth of a second and less here, so that the test takes seconds) but
 * far less than `--riak-read-timeout`, as during a long compaction or listing or on a loaded
 * machine. The mount reads, writes and lists through it as a patient client would: no EIO, no
 * node taken out of rotation, no outage logged. Before, the client took the node out once the
 * ping went unanswered, every request failed at once, and the mount declared an outage that
 * its pings, no more patient, never ended.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import {
  assertInRiak,
  startFaultProxyProcess,
  statusOf,
  waitForQuiet,
  withLog,
  withOverlayEnv,
} from "./_overlay.ts";

/** The client's checks of a node, and each answer's delay: longer than both together. */
const STALL_CHECK_AFTER_MS = 200;
const PING_TIMEOUT_MS = 300;
const ANSWER_MS = 1_000;

Deno.test("riak, the only node answering everything later than its ping check: reads, writes and listings succeed; no node out of rotation, no outage", async () => {
  await withOverlayEnv(async (env) => {
    await env.store.writeFile("d/old", Buffer.from("old"));
    const busy = await startFaultProxyProcess(env.riak.nodes);
    try {
      const mounted = await env.mount("riak", [
        "--stall-check-after",
        String(STALL_CHECK_AFTER_MS),
        "--ping-timeout",
        String(PING_TIMEOUT_MS),
      ], busy.nodes[0]);
      try {
        await busy.setLatency(ANSWER_MS);
        const directory = join(env.mountpoint, "d");
        assert.equal(await fsp.readFile(join(directory, "old"), "utf8"), "old");
        await fsp.writeFile(join(directory, "new"), "new");
        assert.deepEqual((await fsp.readdir(directory)).sort(), ["new", "old"]);
        await waitForQuiet(env);
        await assertInRiak(env, new Map([["d/new", Buffer.from("new")]]));
        assert.doesNotMatch(mounted.stderr(), /out of rotation|unreachable/);
        const status = await statusOf(env);
        assert.equal(status.riak.reachable, true);
        assert.equal(status.riak.outages, 0);
        assert.equal(status.metrics.errors.EIO ?? 0, 0);
      } catch (error) {
        throw withLog(error, mounted);
      } finally {
        await busy.setLatency(0); // the unmount's drain need not wait
        await env.unmount(mounted);
      }
    } finally {
      await busy.close();
    }
  });
});
