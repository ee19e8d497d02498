/**
 * A shell redirect (`cmd > file`) on a mount whose writes are staged: bash opens the file
 * with O_TRUNC, dup2()s it onto its stdout and closes the first descriptor (a FLUSH of the
 * handle still open) before the command writes. Riak gets the file once, with its bytes:
 * not an empty version first (an extra put, and a window in which other hosts read it
 * empty).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import {
  type OverlayEnv,
  statusOf,
  waitForQuiet,
  withMounted,
  withOverlayEnv,
} from "./_overlay.ts";

/** Uploads Riak acknowledged so far. */
async function uploadsDone(env: OverlayEnv): Promise<number> {
  return (await statusOf(env)).metrics.uploads.uploaded;
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a shell redirect puts the file in Riak once, with its bytes`, async () => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async () => {
        // One open, write and close: the uploads a file costs.
        fs.writeFileSync(join(env.mountpoint, "plain.txt"), "plain\n");
        await waitForQuiet(env);
        const before = await uploadsDone(env);
        const shell = spawnSync("bash", ["-c", "echo redirected > redirected.txt"], {
          cwd: env.mountpoint,
          encoding: "utf8",
        });
        assert.equal(shell.status, 0, shell.stderr);
        await waitForQuiet(env);
        assert.equal(
          (await env.store.readFile("/redirected.txt")).toString(),
          "redirected\n",
          "Riak holds the file's bytes",
        );
        assert.equal(await uploadsDone(env) - before, 1, "one upload, not an empty one first");
        // Emptied and nothing written (`: > file`): the empty file still reaches Riak.
        const emptied = spawnSync("bash", ["-c", ": > plain.txt"], {
          cwd: env.mountpoint,
          encoding: "utf8",
        });
        assert.equal(emptied.status, 0, emptied.stderr);
        await waitForQuiet(env);
        assert.equal((await env.store.tryStat("/plain.txt"))?.size, 0, "emptied in Riak");
      });
    });
  });
}
