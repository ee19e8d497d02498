/**
 * A slow Riak in the middle of a change: a directory rename whose Riak requests take longer
 * than `--riak-read-timeout` goes on to the end and reports success, instead of answering EIO
 * while the rename carries on in Riak behind the application's back.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { startRiakProxy } from "./_riak_proxy.ts";
import { withOverlayEnv } from "./_overlay.ts";

const READ_TIMEOUT_MS = 300;

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
