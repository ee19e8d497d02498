/**
 * Files created during an outage under a name Riak holds but the mount could not see: the
 * new file takes the name once Riak is back, and Riak's own file is kept under a conflict
 * name beside it, never overwritten.
 */
import assert from "node:assert/strict";
import { seededBytes } from "../store/_test_support.ts";
import { lookupPath, withOverlay, writeThrough } from "./_overlay_fixture.ts";
import { Errno, FuseError } from "../fuse/filesystem.ts";

for (const preset of ["migrate", "drain", "riak"]) {
  Deno.test(`${preset}: a file created during an outage over a name only Riak held sets Riak's file aside`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, restart }) => {
        const theirs = seededBytes(51, 5_000);
        const ours = seededBytes(52, 7_000);
        await store.writeFile("/report.txt", theirs);
        const faults = riak.server!.faults;
        await faults.stopAccepting();
        faults.dropConnections();
        try {
          await assert.rejects(
            lookupPath(fs, "/report.txt"),
            (error) => error instanceof FuseError && error.errno === Errno.ENOENT,
          );
          await writeThrough(fs, "/report.txt", ours);
          // Stopped while Riak is down: what is journaled must say what to set aside.
          assert.equal(await runtime.stop(50), 1);
        } finally {
          await faults.resumeAccepting();
        }
        const again = await restart({});
        assert.equal(await again.settle(20_000), 0);
        assert.ok(ours.equals(await store.readFile("/report.txt")), "the new file has the name");
        const names = (await Array.fromAsync(store.list("/"))).map((entry) =>
          entry.name.toString()
        );
        const aside = names.filter((name) => name.startsWith("report.txt.riakfs-conflict-"));
        assert.equal(aside.length, 1, `Riak's own file kept aside: ${names}`);
        assert.ok(theirs.equals(await store.readFile(`/${aside[0]}`)));
      },
      { riakReadTimeout: "300" },
    );
  });
}

Deno.test("migrate: a name Riak answered for again is no longer set aside", async () => {
  await withOverlay(
    "migrate",
    async ({ fs, store, riak, runtime }) => {
      await store.writeFile("/seen.txt", seededBytes(53, 100));
      const faults = riak.server!.faults;
      faults.pause();
      try {
        await assert.rejects(lookupPath(fs, "/seen.txt"));
      } finally {
        faults.resume();
      }
      await lookupPath(fs, "/seen.txt"); // Riak answers: the file is there, and now seen.
      const ours = seededBytes(54, 200);
      await writeThrough(fs, "/seen.txt", ours);
      assert.equal(await runtime.settle(20_000), 0);
      assert.ok(ours.equals(await store.readFile("/seen.txt")));
      const names = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString());
      assert.deepEqual(names, ["seen.txt"], "an overwrite of a file seen, nothing set aside");
    },
    { riakReadTimeout: "300" },
  );
});
