/**
 * A slow Riak in the middle of a change: a directory rename whose Riak requests take longer
 * than `--riak-read-timeout` goes on to the end and reports success, instead of answering EIO
 * while the rename carries on in Riak behind the application's back; an fsync whose upload
 * takes longer than `--request-timeout`, Riak acknowledging its chunks all along, succeeds
 * instead of answering EIO (which applications take for lost data).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { startRiakProxy } from "./_riak_proxy.ts";
import { startFaultProxyProcess, withOverlayEnv } from "./_overlay.ts";

const READ_TIMEOUT_MS = 300;
/** The mount's --request-timeout in the fsync test (seconds). */
const REQUEST_TIMEOUT_S = 1;
/** Every Riak answer's delay while the fsync'd file uploads (ms), as over a network. */
const LATENCY_MS = 25;
/** The fsync'd file: 256 chunks of 64 KiB, which at that latency take seconds to send. */
const LARGE_BYTES = 16 << 20;
const CHUNK_BYTES = 64 << 10;

Deno.test("riak: a directory rename slower than --riak-read-timeout completes and says so", async () => {
  await withOverlayEnv(async (env) => {
    const names = ["f1", "f2", "f3"];
    for (const name of names) await env.store.writeFile(`old/${name}`, Buffer.from(name));
    const proxy = await startRiakProxy(env.riak.nodes[0]);
    try {
      // The copy of the second file under its new name waits at the proxy, well past the
      // deadline a read would have.
      const slowCopy = proxy.holdPut(env.bucket, "new/f2");
      const mounted = await env.mount(
        "riak",
        ["--riak-read-timeout", String(READ_TIMEOUT_MS)],
        proxy.node,
      );
      try {
        const renamed = fsp.rename(join(env.mountpoint, "old"), join(env.mountpoint, "new"));
        renamed.catch(() => {}); // Awaited below, after the proxy lets the copy go.
        await slowCopy.reached;
        // Fault injection, not synchronisation: Riak answers this put after the deadline.
        await new Promise((resolve) => setTimeout(resolve, 3 * READ_TIMEOUT_MS));
        slowCopy.release();
        await renamed;
        assert.deepEqual((await fsp.readdir(join(env.mountpoint, "new"))).sort(), names);
        await assert.rejects(fsp.stat(join(env.mountpoint, "old")), /ENOENT/);
        for (const name of names) {
          assert.equal((await env.store.readFile(`new/${name}`)).toString(), name);
          assert.equal(await env.store.tryStat(`old/${name}`), undefined);
        }
        assert.doesNotMatch(mounted.stderr(), /unreachable/, "a slow answer is not an outage");
      } finally {
        await env.unmount(mounted);
      }
    } finally {
      await proxy.close();
    }
  });
});

for (const preset of ["riak", "shadow"]) {
  Deno.test(`${preset}: an fsync whose upload outlasts --request-timeout, Riak answering all along, succeeds`, async () => {
    await withOverlayEnv(async (env) => {
      const proxy = await startFaultProxyProcess(env.riak.nodes);
      try {
        const mounted = await env.mount(
          preset,
          ["--request-timeout", String(REQUEST_TIMEOUT_S), "--chunk-size", String(CHUNK_BYTES)],
          proxy.nodes[0],
        );
        try {
          const content = randomBytes(LARGE_BYTES);
          const file = await fsp.open(join(env.mountpoint, "large"), "w");
          let took: number;
          try {
            await file.writeFile(content);
            await proxy.setLatency(LATENCY_MS);
            const started = performance.now();
            await file.sync();
            took = performance.now() - started;
            await proxy.setLatency(0);
          } finally {
            await file.close();
          }
          assert.ok(took > REQUEST_TIMEOUT_S * 1000, `the upload took ${took} ms: not past it`);
          assert.ok(content.equals(await env.store.readFile("large")), "in Riak, byte for byte");
          assert.doesNotMatch(mounted.stderr(), /timed out/, "no request answered EIO");
        } finally {
          await env.unmount(mounted);
        }
      } finally {
        await proxy.close();
      }
    });
  });
}
