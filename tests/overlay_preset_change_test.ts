/**
 * A change of preset must not strand writes close() acknowledged: a drain mount leaves a
 * write of an outage in SOURCE/.riakfs-spool, and the riak preset (whose spool is elsewhere)
 * and the passthrough (which has none) refuse to mount, in one line saying where the write
 * waits and how to replay it, until a drain mount has replayed it.
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { pendingInJournal } from "../src/overlay/journal.ts";
import { isMounted } from "./_mount.ts";
import { eventually, type OverlayEnv, withOverlayEnv } from "./_overlay.ts";
import { type RunResult, runRiakfs } from "./_riakfs.ts";

/** `riakfs mount` in the background, as an operator runs it; unmounted if it came up. */
async function mountInBackground(env: OverlayEnv, args: string[]): Promise<RunResult> {
  // The last unmount removed it with its parent.
  await fsp.mkdir(env.mountpoint, { recursive: true });
  const result = await runRiakfs([
    "mount",
    ...args,
    "--run-dir",
    env.runDirectory,
    env.source,
    env.mountpoint,
  ]);
  if (isMounted(env.mountpoint)) {
    await runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
  }
  return result;
}

Deno.test("drain -> riak with a write pending: riak and passthrough refuse in one line, drain replays it, then riak serves it", async () => {
  await withOverlayEnv(async (env) => {
    const nodes = env.riak.nodes.join(",");
    const left = join(env.source, ".riakfs-spool");
    const riakSpool = join(env.base, "riak-spool");
    // Drain with its default spool, SOURCE/.riakfs-spool.
    const drain = [
      "--preset",
      "drain",
      "--foreground",
      "--riak",
      nodes,
      "--bucket",
      env.bucket,
      "--run-dir",
      env.runDirectory,
      env.source,
      env.mountpoint,
    ];
    const first = await env.mountArgs(drain);
    await env.riak.stop();
    try {
      await fsp.writeFile(join(env.mountpoint, "new.txt"), "drain-edit\n");
      const umount = await runRiakfs(
        ["umount", "--drain-timeout=500", `--run-dir=${env.runDirectory}`, env.mountpoint],
      );
      assert.equal(umount.code, 3, umount.stderr);
      await env.unmount(first);
    } finally {
      await env.riak.restart();
    }
    assert.equal(await pendingInJournal(join(left, "journal")), 1);

    const riak = ["--preset", "riak", "--riak", nodes, "--bucket", env.bucket];
    const refused = await mountInBackground(env, [...riak, "--spool", riakSpool]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(
      refused.stderr,
      `riakfs: ${left} holds 1 upload(s) not yet in Riak, which this mount (--preset riak, ` +
        `spool ${riakSpool}) would not replay: mount with --preset drain --spool ${left} to ` +
        "replay them (riakfs umount once they are drained), then mount as you meant to\n",
    );
    const passthrough = await mountInBackground(env, ["--preset", "passthrough"]);
    assert.equal(passthrough.code, 1, passthrough.stderr);
    assert.match(passthrough.stderr, /^riakfs: .* holds 1 upload\(s\) .*--preset passthrough/);
    assert.equal(passthrough.stderr.split("\n").length, 2, passthrough.stderr);
    // Nothing was replayed, made or removed by the refused mounts.
    assert.equal(await env.store.tryStat("new.txt"), undefined);
    assert.equal(await pendingInJournal(join(left, "journal")), 1);
    await assert.rejects(fsp.stat(riakSpool), { code: "ENOENT" });

    // The preset that wrote it replays it; then the riak preset mounts and serves it.
    const replaying = await env.mountArgs(drain);
    await eventually(
      "new.txt in Riak",
      async () => (await env.store.tryStat("new.txt")) !== undefined,
    );
    await env.unmount(replaying);
    const served = await env.mountArgs([
      ...riak,
      "--foreground",
      "--spool",
      riakSpool,
      "--run-dir",
      env.runDirectory,
      env.source,
      env.mountpoint,
    ]);
    try {
      assert.equal(await fsp.readFile(join(env.mountpoint, "new.txt"), "utf8"), "drain-edit\n");
    } finally {
      await env.unmount(served);
    }
  });
});
