/**
 * The write path never loses an acknowledged write: Riak is down during a write burst,
 * riakfs is killed with SIGKILL, Riak comes back, riakfs is started again and replays its
 * journal: every file whose close() returned is in Riak, byte for byte.
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { isMounted, waitFor } from "./_mount.ts";
import { assertReplayedAfterRemount, withOverlayEnv } from "./_overlay.ts";

Deno.test("SIGKILL during an outage: the journal replay puts every closed file into Riak", async () => {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("migrate");
    const files = new Map<string, Uint8Array>();
    await env.riak.stop(); // Riak down: connections refused.
    try {
      for (let index = 0; index < 20; index++) {
        const content = seededBytes(500 + index, 1000 + index * 70_000);
        const name = `burst-${String(index).padStart(2, "0")}.bin`;
        await fsp.writeFile(join(env.mountpoint, name), content); // close() acknowledged
        files.set(name, content);
      }
      process.kill(first.server.pid!, "SIGKILL");
      // The watchdog unmounts after the crash; wait for that, never a fixed sleep.
      assert.ok(await waitFor(() => !isMounted(env.mountpoint), 10_000), "watchdog unmounted");
      assert.ok(
        await waitFor(
          () => first.server.exitCode !== null || first.server.signalCode !== null,
          10_000,
        ),
      );
    } finally {
      await env.riak.restart(); // Back, empty: nothing of the burst reached it.
    }
    for (const name of files.keys()) assert.equal(await env.store.tryStat(name), undefined);
    await assertReplayedAfterRemount(env, files);
  });
});
