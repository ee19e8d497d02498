/**
 * A long Riak outage under a working mount, as operators live through it (a maintenance
 * window, a partition of minutes), made short here but structurally the same: the cached
 * answers of before the outage have expired by the time the application comes back to them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ROOT_NODE_ID } from "../fuse/filesystem.ts";
import {
  listThrough,
  readThrough,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

/** Well past the entry timeout (1 s): what Riak answered before the outage has expired. */
const LONG_AGO_MS = 60_000;

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: during an outage new files can be made in a directory the mount made and wrote into`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime }) => {
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "app", 0o755, 0o022);
        await writeThrough(fs, "/app/before.txt", Buffer.from("before"));
        // Its upload and the write of the directory's new mtime (which drops the cached
        // stat of the directory) are done.
        assert.equal(await runtime.settle(10_000), 0);
        clock += LONG_AGO_MS;
        await whilePaused(riak, async () => {
          await writeThrough(fs, "/app/during.txt", Buffer.from("during"));
          assert.deepEqual(await readThrough(fs, "/app/during.txt"), Buffer.from("during"));
          // Listings degrade to local where there is a local side (riak's cannot).
          if (preset === "drain") {
            assert.ok((await listThrough(fs, "/app")).includes("during.txt"));
          }
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/app/during.txt")).toString(), "during");
        assert.equal((await store.readFile("/app/before.txt")).toString(), "before");
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: restarted during an outage, the files its journal holds are read from the spool`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, restart }) => {
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "app", 0o755, 0o022);
        await writeThrough(fs, "/app/before.txt", Buffer.from("before"));
        assert.equal(await runtime.settle(10_000), 0);
        const again = await whilePaused(riak, async () => {
          await writeThrough(fs, "/app/during.txt", Buffer.from("during"));
          // Stopped (killed, or unmounted with its drain timing out) and mounted again, Riak
          // still away: the new mount never saw /app, but its journal holds a file in it.
          await runtime.stop(0);
          clock += LONG_AGO_MS;
          const again = await restart({});
          assert.equal(again.pendingUploads(), 1);
          const fsAgain = again.fileSystem;
          assert.deepEqual(await readThrough(fsAgain, "/app/during.txt"), Buffer.from("during"));
          await writeThrough(fsAgain, "/app/after-restart.txt", Buffer.from("after"));
          return again;
        });
        assert.equal(await again.settle(10_000), 0);
        assert.equal((await store.readFile("/app/during.txt")).toString(), "during");
        assert.equal((await store.readFile("/app/after-restart.txt")).toString(), "after");
        assert.equal((await store.readFile("/app/before.txt")).toString(), "before");
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}
