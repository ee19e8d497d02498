/**
 * `riakfs umount`, SIGTERM and SIGINT drain the upload queue while the mount keeps serving, then
 * unmount: with Riak down during a write burst, umount waits until Riak is back and every
 * closed file (also one written while draining) is in Riak when it returns 0; when the
 * drain times out it unmounts, says how many uploads are pending and exits non-zero, and
 * the next mount replays them from the journal; a second umount while the first drains takes
 * the mount down, and the first then says what its drain left, not that its unmount failed.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { runtimePaths } from "../src/overlay/control.ts";
import { defaultSpoolDirectory } from "../src/overlay/spool.ts";
import { seededBytes } from "../src/store/_test_support.ts";
import { withFullFilesystem } from "../src/util/_full_filesystem.ts";
import { isProcessAlive } from "../src/util/process.ts";
import { isMounted, waitFor } from "./_mount.ts";
import {
  assertInRiak,
  assertReplayedAfterRemount,
  eventually,
  type OverlayEnv,
  type OverlayMount,
  startRiakProcess,
  withOverlayEnv,
} from "./_overlay.ts";
import { type RunResult, runRiakfs } from "./_riakfs.ts";

/** Writes `count` files through the mount (each close() acknowledged) and returns them. */
async function writeBurst(
  env: OverlayEnv,
  prefix: string,
  count: number,
  seed: number,
): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (let index = 0; index < count; index++) {
    const content = seededBytes(seed + index, 1000 + index * 50_000);
    const name = `${prefix}-${index}.bin`;
    await fsp.writeFile(join(env.mountpoint, name), content);
    files.set(name, content);
  }
  return files;
}

/** `riakfs umount` of `env`'s mount, its drain given at most `timeoutMs`. */
function umountDraining(env: OverlayEnv, timeoutMs: number): Promise<RunResult> {
  return runRiakfs([
    "umount",
    "--drain-timeout",
    String(timeoutMs),
    "--run-dir",
    env.runDirectory,
    env.mountpoint,
  ]);
}

/** Whether the mount's process exited (within 20 s) and its stderr was read to the end. */
async function exited(mount: { server: ChildProcess }): Promise<boolean> {
  const { server } = mount;
  if (!await waitFor(() => server.exitCode !== null || server.signalCode !== null, 20_000)) {
    return false;
  }
  // Its last lines may still be on their way through the pipe after the exit.
  const stderr = server.stderr;
  if (stderr && !stderr.closed) {
    await waitFor(() => stderr.closed, 10_000);
  }
  return true;
}

Deno.test("umount drains uploads while still serving, then unmounts: every closed file is in Riak", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate", ["--drain-timeout", "60000"]);
    await env.riak.stop(); // Connections refused: every upload fails and retries.
    const files = await writeBurst(env, "before", 4, 700);
    const umount = runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
    await eventually(
      "the mount to start draining",
      () => Promise.resolve(mount.stderr().includes("draining uploads")),
    );
    // Still mounted and serving while it drains: a new write is accepted and drained too.
    assert.ok(isMounted(env.mountpoint));
    for (const [name, content] of await writeBurst(env, "during", 1, 900)) {
      files.set(name, content);
    }
    await env.riak.restart(); // Back, empty: only the uploads can fill it.
    const result = await umount;
    assert.equal(result.code, 0, result.stderr);
    // Beside those a later write made unneeded (the empty upload of a create, say).
    assert.match(
      result.stdout,
      /drained 5 upload\(s\)( \(\d+ no longer needed [^)]*\))?, then unmounted/,
    );
    assert.match(result.stderr, /waiting for \d+ upload\(s\) to reach Riak/);
    assert.ok(!isMounted(env.mountpoint));
    await assertInRiak(env, files);
    assert.ok(await exited(mount), "the serving process exits after the unmount");
    assert.equal(mount.server.exitCode, 0, mount.stderr());
  });
});

Deno.test("umount whose drain times out reports the pending uploads; the next mount replays them", async () => {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("migrate");
    await env.riak.stop();
    let files: Map<string, Uint8Array>;
    try {
      files = await writeBurst(env, "late", 3, 800);
      const result = await umountDraining(env, 500);
      assert.equal(result.code, 3, result.stderr);
      assert.match(
        result.stderr,
        /3 upload\(s\) still pending after the 500 ms drain timeout \(0 drained(, \d+ no longer needed [^)]*)?\); Riak unreachable since \S+: [^;]*ECONNREFUSED[^;]*; they are safe in the journal in .*spool/,
      );
      assert.ok(!isMounted(env.mountpoint));
      assert.ok(await exited(first), "the serving process exits without waiting again");
      assert.match(first.stderr(), /drain timed out/);
    } finally {
      await env.riak.restart();
    }
    for (const name of files.keys()) assert.equal(await env.store.tryStat(name), undefined);
    await assertReplayedAfterRemount(env, files);
  });
});

Deno.test("umount whose drain leaves an upload stuck on a hung Riak returns once the mount's process ended: its spool can be mounted again at once", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate");
    env.riak.pause(); // Hung: the upload's request waits, its connection is not refused.
    let files: Map<string, Uint8Array>;
    try {
      files = await writeBurst(env, "stuck", 1, 990);
      const result = await umountDraining(env, 500);
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stderr, /1 upload\(s\) still pending after the 500 ms drain timeout/);
      assert.doesNotMatch(result.stderr, /still stopping/);
      // Before, it returned while the process gave the stuck upload its grace, holding the
      // spool: a mount right after was refused, "in use by another riakfs mount".
      assert.ok(
        !isProcessAlive(mount.server.pid!),
        "the serving process ended before umount returned",
      );
    } finally {
      env.riak.resume();
    }
    await assertReplayedAfterRemount(env, files);
  });
});

/**
 * With Riak down, writes 2 files through a migrate mount and starts a patient `riakfs umount`
 * (its drain given 60 s); once the drain began, `meanwhile` takes the mount down another way
 * and checks what the patient one says. The files go to Riak from the journal at a remount.
 */
async function whileAnUmountWaits(
  seed: number,
  meanwhile: (env: OverlayEnv, first: OverlayMount, patient: Promise<RunResult>) => Promise<void>,
): Promise<void> {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("migrate");
    await env.riak.stop();
    let files: Map<string, Uint8Array>;
    try {
      files = await writeBurst(env, `waited-${seed}`, 2, seed);
      const patient = umountDraining(env, 60_000);
      await eventually(
        "the first drain to begin",
        () => Promise.resolve(first.stderr().includes("draining uploads")),
      );
      await meanwhile(env, first, patient);
      assert.ok(await waitFor(() => !isMounted(env.mountpoint), 10_000));
    } finally {
      await env.riak.restart();
    }
    await assertReplayedAfterRemount(env, files);
  });
}

Deno.test("two umounts at once: the one whose drain times out first unmounts, and the other says what its drain left, not that its unmount failed", async () => {
  // A service manager's stop, and an operator's umount while it waits.
  await whileAnUmountWaits(600, async (env, first, patient) => {
    const hasty = await umountDraining(env, 500);
    assert.equal(hasty.code, 3, hasty.stderr);
    assert.match(hasty.stderr, /unmounted .*; 2 upload\(s\) still pending after the 500 ms/);
    // Before, it exited 1 with "unmounting ... failed: umount: ... not mounted".
    const waited = await patient;
    assert.equal(waited.code, 3, waited.stderr);
    assert.match(
      waited.stderr,
      /was unmounted meanwhile \(by another riakfs umount, or a signal\); 2 upload\(s\) still pending \(0 drained[^)]*\); Riak unreachable since [^;]*; they are safe in the journal/,
    );
    assert.ok(await exited(first), "the serving process exits");
  });
});

Deno.test("two umounts at once, the mount's process ending before it answers the waiting one: that one says what it last heard pending (exit 3), not that its unmount failed", async () => {
  await whileAnUmountWaits(650, async (_env, first, patient) => {
    // The rarer order of two umounts, made certain: the process is gone before it answers
    // (its watchdog then takes the mount away, or the waiting umount does).
    first.server.kill("SIGKILL");
    const waited = await patient;
    // Before, it exited 1: "served by a riakfs process whose control socket is not in RUN".
    assert.equal(waited.code, 3, waited.stderr);
    assert.match(
      waited.stderr,
      /^riakfs: (unmounted .*|.* was unmounted meanwhile \(by another riakfs umount, or a signal\)); 2 upload\(s\) still pending \(its process ended before its drain's outcome, the count as it last reported\); they are safe in the journal/m,
    );
    assert.doesNotMatch(waited.stderr, /without draining|not in/);
  });
});

Deno.test("umount of a mount whose control socket does not answer while the mount does: unmounted without draining, exit 3, saying so and what to do", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate");
    // A control socket that takes connections and never answers (a stuck event loop), in
    // a run directory whose pid file names a live process.
    const stuck = join(env.base, "stuck-run");
    await fsp.mkdir(stuck);
    const { controlSocket, pidFile } = runtimePaths(env.mountpoint, stuck);
    await fsp.writeFile(pidFile, `${process.pid}\n`);
    const held: Socket[] = [];
    const silent = createServer((connection) => held.push(connection));
    await new Promise<void>((listening) => silent.listen(controlSocket, listening));
    try {
      const result = await runRiakfs(["umount", "--run-dir", stuck, env.mountpoint]);
      // Before: "unmounting without draining", then "not in RUN (another --run-dir?)", exit 1.
      assert.equal(result.code, 3, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^riakfs: unmounted .* without draining: it did not answer on its control socket ` +
            `.*stuck-run.* within 5000 ms; its process ${process.pid} still runs, stuck: see its ` +
            `log, then end it \\(kill ${process.pid}, or kill -9 ${process.pid}\\); what it had not ` +
            "uploaded is pending: they are safe in the journal and go to Riak when it is mounted " +
            "again with this spool and namespace\n$",
        ),
      );
      assert.ok(!isMounted(env.mountpoint));
      assert.ok(await exited(mount), "the serving process exits");
      // The files of a live process stay.
      assert.ok(fs.existsSync(pidFile) && fs.existsSync(controlSocket));
    } finally {
      for (const connection of held) connection.destroy();
      await new Promise((closed) => silent.close(closed));
    }
  });
});

Deno.test("a Riak whose disk is full refuses the uploads: status says so beside 'reachable', and umount says why they are pending", async () => {
  await withOverlayEnv(async (env) => {
    await withFullFilesystem(async (disk) => {
      const riak = await startRiakProcess(join(disk.directory, "riak"));
      try {
        const mount = await env.mount("drain", [], riak.nodes[0]);
        disk.fill();
        await fsp.writeFile(join(env.mountpoint, "refused.bin"), seededBytes(830, 300_000));
        await eventually(
          "Riak refusing the upload",
          () => Promise.resolve(/Riak answered a request with an error/.test(mount.stderr())),
        );
        // Before, it said "reachable, 0 outage(s)" alone while every upload was refused.
        const status = await runRiakfs(["status", "--run-dir", env.runDirectory, env.mountpoint]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(
          status.stdout,
          /reachable, 0 outage\(s\), \d+ request\(s\) refused \(the last at \S+: .*ENOSPC/,
        );
        const umount = await umountDraining(env, 500);
        assert.equal(umount.code, 3, umount.stderr);
        assert.match(
          umount.stderr,
          /1 upload\(s\) still pending after the 500 ms drain timeout \([^)]*\); Riak refused requests, the last at \S+: .*ENOSPC.*; they are safe in the journal/,
        );
      } finally {
        await riak.close();
      }
    }, { sizeKiB: 8192, inodes: 1024, empty: true });
  });
});

Deno.test("umount's counts agree: the uploads it waited for were drained, made unneeded by a later write, or are still pending", async () => {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("riak");
    await env.riak.stop();
    const files = new Map([["a-file.txt", Buffer.from("belongs\n")]]);
    try {
      // Made empty by create(2), then written and closed: two uploads journaled while Riak
      // is away, the first of which the second makes unneeded while the drain waits.
      await fsp.writeFile(join(env.mountpoint, "a-file.txt"), files.get("a-file.txt")!);
      const result = await umountDraining(env, 1000);
      assert.equal(result.code, 3, result.stderr);
      const waitedFor = /waiting for (\d+) upload\(s\)/.exec(result.stderr);
      const left =
        /(\d+) upload\(s\) still pending after the 1000 ms drain timeout \((\d+) drained(?:, (\d+) no longer needed after a later change of their file)?\)/
          .exec(result.stderr);
      assert.ok(waitedFor && left, result.stderr);
      const [pending, drained, unneeded] = left.slice(1).map((count) => Number(count ?? 0));
      assert.deepEqual([pending, drained], [1, 0], result.stderr);
      assert.equal(Number(waitedFor[1]), pending + drained + unneeded, result.stderr);
      assert.ok(await exited(first), "the serving process exits without waiting again");
    } finally {
      await env.riak.restart();
    }
    await assertReplayedAfterRemount(env, files, "riak");
  });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} drains uploads before unmounting`, async () => {
    await withOverlayEnv(async (env) => {
      const mount = await env.mount("migrate");
      await env.riak.stop();
      const files = await writeBurst(env, signal.toLowerCase(), 2, 950);
      process.kill(mount.server.pid!, signal);
      await eventually(
        "the mount to start draining",
        () => Promise.resolve(mount.stderr().includes("draining uploads")),
      );
      assert.ok(isMounted(env.mountpoint), "still mounted while draining");
      await env.riak.restart();
      assert.ok(await exited(mount), "the serving process exits once drained and unmounted");
      assert.equal(mount.server.exitCode, 0, mount.stderr());
      assert.ok(!isMounted(env.mountpoint));
      assert.match(mount.stderr(), /upload queue drained/);
      await assertInRiak(env, files);
    });
  });
}

Deno.test("umount of a passthrough mount still unmounts (nothing to drain)", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("passthrough");
    const result = await runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /drained 0 upload\(s\), then unmounted/);
    assert.ok(!isMounted(env.mountpoint));
    assert.ok(await exited(mount));
  });
});

Deno.test("umount given another run directory refuses a serving mount instead of skipping its drain", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate");
    const elsewhere = join(env.base, "other-run-dir");
    await fsp.mkdir(elsewhere);
    const refused = await runRiakfs(["umount", "--run-dir", elsewhere, env.mountpoint]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^riakfs: .* is served by a riakfs process whose control socket is not in .*other-run-dir .*not unmounted[^\n]*\n$/,
    );
    assert.ok(isMounted(env.mountpoint));
    const result = await runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!isMounted(env.mountpoint));
    assert.ok(await exited(mount));
  });
});

Deno.test("a second mount of the same spool is refused while the first serves: one journal each", async () => {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("drain");
    const other = join(env.base, "other-mountpoint");
    await fsp.mkdir(other);
    const second = await runRiakfs([
      "mount",
      "--preset",
      "drain",
      "--foreground",
      "--riak",
      env.riak.nodes.join(","),
      "--bucket",
      env.bucket,
      "--spool",
      env.spool,
      "--run-dir",
      join(env.base, "run-other"),
      env.source,
      other,
    ]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /spool .* is in use by another riakfs mount \(pid \d+\)/);
    // The way out named is the first mount's umount, not a spool of its own beside it.
    assert.match(
      second.stderr,
      new RegExp(`; unmount that one first: riakfs umount ${env.mountpoint}$`, "m"),
    );
    assert.doesNotMatch(second.stderr, /--spool/);
    assert.equal(second.stderr.trimEnd().split("\n").length, 1, second.stderr);
    assert.ok(!isMounted(other), "nothing mounted at the second mountpoint");
    // The first mount's journal is untouched: what it acknowledges reaches Riak.
    const files = await writeBurst(env, "first", 2, 900);
    const result = await runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await exited(first));
    await assertInRiak(env, files);
  });
});

Deno.test("the serving process ignores SIGHUP and opens no debugger on SIGUSR1; its PID file is its own", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate");
    const pid = mount.server.pid!;
    process.kill(pid, "SIGHUP");
    process.kill(pid, "SIGUSR1");
    await eventually("SIGHUP logged", () => Promise.resolve(/SIGHUP ignored/.test(mount.stderr())));
    await fsp.writeFile(join(env.mountpoint, "after-signals.txt"), "still serving");
    assert.equal(
      await fsp.readFile(join(env.source, "after-signals.txt"), "utf8"),
      "still serving",
    );
    assert.doesNotMatch(mount.stderr(), /Debugger listening/);
    const pidFiles = (await fsp.readdir(env.runDirectory)).filter((name) => name.endsWith(".pid"));
    assert.equal(pidFiles.length, 1, String(pidFiles));
    const pidFile = join(env.runDirectory, pidFiles[0]);
    assert.equal((await fsp.stat(pidFile)).mode & 0o777, 0o644);
    assert.equal((await fsp.readFile(pidFile, "utf8")).trim(), String(pid));
    const result = await runRiakfs(["umount", "--run-dir", env.runDirectory, env.mountpoint]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await exited(mount));
    assert.deepEqual(
      (await fsp.readdir(env.runDirectory)).filter((name) => /\.(pid|sock)$/.test(name)),
      [],
    );
  });
});

Deno.test("a second SIGTERM while draining toward a hung Riak ends the process at once; the journal keeps the writes", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("migrate", ["--drain-timeout", "600000"]);
    env.riak.pause(); // Hung: requests wait, connections are not refused.
    let files: Map<string, Uint8Array>;
    try {
      files = await writeBurst(env, "hung", 2, 970);
      process.kill(mount.server.pid!, "SIGTERM");
      await eventually(
        "the mount to start draining",
        () => Promise.resolve(mount.stderr().includes("draining uploads")),
      );
      process.kill(mount.server.pid!, "SIGTERM");
      assert.ok(await exited(mount), "gone long before the drain timeout or a request timeout");
      assert.ok(!isMounted(env.mountpoint));
      assert.match(mount.stderr(), /uploads still pending at unmount/);
      assert.doesNotMatch(mount.stderr(), /could not abort/);
    } finally {
      env.riak.resume();
    }
    await assertReplayedAfterRemount(env, files);
  });
});

Deno.test("status and umount take a symlink to the mountpoint, as mount(8) does", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("passthrough");
    const link = join(env.base, "link-to-mount");
    await fsp.symlink(env.mountpoint, link);
    const status = await runRiakfs(["status", "--run-dir", env.runDirectory, link]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`mountpoint +${env.mountpoint}`));
    assert.match(status.stdout, /riak +- \(this preset does not use Riak\)/);
    const result = await runRiakfs(["umount", "--run-dir", env.runDirectory, link]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!isMounted(env.mountpoint));
    assert.ok(await exited(mount));
  });
});

Deno.test("a clean umount removes the default spool the mount made, holding nothing pending: a drained SOURCE is left empty, /var/lib/riakfs without the riak preset's", async () => {
  await withOverlayEnv(async (env) => {
    const common = ["--foreground", "--riak", env.riak.nodes.join(","), "--bucket", env.bucket];
    const runDir = ["--run-dir", env.runDirectory];
    const umount = () => runRiakfs(["umount", ...runDir, env.mountpoint]);
    // Drain's default spool, SOURCE/.riakfs-spool, made by this mount.
    await fsp.writeFile(join(env.source, "old.txt"), "old\n");
    const drain = await env.mountArgs([
      "--preset",
      "drain",
      ...common,
      ...runDir,
      env.source,
      env.mountpoint,
    ]);
    assert.equal(await fsp.readFile(join(env.mountpoint, "old.txt"), "utf8"), "old\n");
    await fsp.writeFile(join(env.mountpoint, "new.txt"), "new\n");
    assert.ok(fs.existsSync(join(env.source, ".riakfs-spool", "journal")));
    let result = await umount();
    assert.equal(result.code, 0, result.stderr);
    assert.ok(await exited(drain), "the drain mount's process exits");
    assert.deepEqual(await fsp.readdir(env.source), [], drain.stderr());
    assert.match(drain.stderr(), /removed the spool: nothing in it was pending/);
    // The riak preset's, under /var/lib/riakfs, named after the mountpoint.
    const riakSpool = defaultSpoolDirectory(undefined, env.mountpoint);
    assert.equal(fs.existsSync(riakSpool), false, `${riakSpool} left by another run`);
    try {
      const riak = await env.mountArgs([
        "--preset",
        "riak",
        ...common,
        ...runDir,
        env.source,
        env.mountpoint,
      ]);
      await fsp.writeFile(join(env.mountpoint, "more.txt"), "more\n");
      assert.ok(fs.existsSync(join(riakSpool, "journal")));
      result = await umount();
      assert.equal(result.code, 0, result.stderr);
      assert.ok(await exited(riak), "the riak mount's process exits");
      assert.equal(fs.existsSync(riakSpool), false, riak.stderr());
      await assertInRiak(
        env,
        new Map(["old.txt", "new.txt", "more.txt"].map((name) => [
          name,
          Buffer.from(`${name.slice(0, -4)}\n`),
        ])),
      );
    } finally {
      fs.rmSync(riakSpool, { recursive: true, force: true });
    }
  });
});
