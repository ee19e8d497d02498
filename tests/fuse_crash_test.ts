/**
 * End-to-end: a serving process killed with SIGKILL under load never leaves a dead mount,
 * a stale mount is cleared by the next mount, a hung one is neither waited on forever nor
 * taken for a dead one, and the mount/umount commands behave.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join, relative } from "node:path";
import {
  crashLeavingStaleMount,
  isMounted,
  run,
  startMount,
  stopMount,
  tempDir,
  waitFor,
  watchdogsOf,
} from "./_mount.ts";
import { runtimePaths } from "../src/overlay/control.ts";
import { isProcessAlive } from "../src/util/process.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

/**
 * Keeps writing and reading files on the mount until `stop` says so (errors are expected
 * once the server is gone); `completed()` counts the write+read rounds that succeeded.
 */
function loadUntil(
  mountpoint: string,
  stop: () => boolean,
): { finished: Promise<void>; completed: () => number } {
  let operations = 0;
  const worker = async (id: number) => {
    const data = Buffer.alloc(256 * 1024, id);
    while (!stop()) {
      try {
        await fs.promises.writeFile(join(mountpoint, `load-${id}`), data);
        await fs.promises.readFile(join(mountpoint, `load-${id}`));
        operations++;
      } catch {
        // ENOTCONN/ECONNABORTED once the server is gone; the loop ends with `stop`.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  const finished = Promise.all(Array.from({ length: 8 }, (_, id) => worker(id))).then(() => {});
  return { finished, completed: () => operations };
}

/**
 * Mounts `source` at `mountpoint` again with `riakfs mount` (in the background), checks
 * `check`, then unmounts with `riakfs umount` and waits for the server to exit (killing it
 * by pid if it does not).
 */
async function remountAndCheck(source: string, mountpoint: string, check: () => void) {
  const runDirectory = tempDir("riakfs-run-");
  // Not given: the pid file and the log go beside the control socket.
  const { pidFile, logFile } = runtimePaths(mountpoint, runDirectory);
  try {
    // Started by a shell with a relative path, as operators type it (`dist/riakfs mount`),
    // so argv[0] is relative: the background re-spawn must still find its own executable.
    const mountArgs = [
      "mount",
      "--preset",
      "passthrough",
      "--run-dir",
      runDirectory,
      source,
      mountpoint,
    ];
    const result = await runRiakfs(
      ["-c", `exec ${relative(process.cwd(), RIAKFS_BINARY)} "$@"`, "sh", ...mountArgs],
      { binary: "/bin/sh" },
    );
    assert.equal(result.code, 0, result.stderr);
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    assert.ok(fs.existsSync(logFile), "the background mount logs to its log file");
    try {
      check();
    } finally {
      const umount = await runRiakfs(["umount", "--run-dir", runDirectory, mountpoint]);
      const exited = await waitFor(() => !isProcessAlive(pid), 10_000);
      if (!exited) process.kill(pid, "SIGKILL");
      assert.equal(umount.code, 0, umount.stderr);
      assert.ok(exited, "the background server exits after riakfs umount");
      assert.equal(fs.existsSync(pidFile), false, "the pid file is removed");
    }
  } finally {
    fs.rmSync(runDirectory, { recursive: true, force: true });
  }
}

Deno.test("kill -9 under load: the watchdog unmounts at once and the next mount succeeds", async () => {
  const mount = await startMount();
  let stopLoad = false;
  let load: ReturnType<typeof loadUntil> | undefined;
  try {
    load = loadUntil(mount.mountpoint, () => stopLoad);
    const running = load;
    assert.ok(await waitFor(() => running.completed() >= 8, 30_000), "the load is running");
    process.kill(mount.server.pid!, "SIGKILL");
    // Tens of milliseconds here; the bound is for loaded machines (the point is that it
    // happens at all, without anyone running umount).
    const gone = await waitFor(() => !isMounted(mount.mountpoint), 10_000);
    assert.ok(gone, "the watchdog unmounted the dead mount");
    assert.ok(fs.statSync(mount.mountpoint).isDirectory(), "the mountpoint is usable again");
    stopLoad = true;
    await load.finished;
    load = undefined;
    // Only in the source: seen only through a mount (the load's files may also have gone
    // into the bare mountpoint after the unmount).
    fs.writeFileSync(join(mount.source, "only-in-source"), "");
    await remountAndCheck(mount.source, mount.mountpoint, () => {
      // The kill may have cut a write short; the files are there through the new mount.
      const names = fs.readdirSync(mount.mountpoint);
      assert.ok(names.includes("only-in-source"), "served by the new mount");
      assert.ok(names.some((name) => name.startsWith("load-")));
    });
  } finally {
    stopLoad = true;
    await load?.finished;
    await stopMount(mount);
  }
});

Deno.test("a stale mount (server and watchdog dead) is cleared by the next mount", async () => {
  const base = tempDir("riakfs-stale-");
  const source = join(base, "source");
  fs.mkdirSync(source);
  fs.writeFileSync(join(source, "kept"), "kept");
  const mount = await startMount({ source });
  try {
    await crashLeavingStaleMount(mount.server);
    assert.throws(() => fs.statSync(mount.mountpoint), /ENOTCONN|ECONNABORTED/);
    await remountAndCheck(source, mount.mountpoint, () => {
      assert.equal(fs.readFileSync(join(mount.mountpoint, "kept"), "utf8"), "kept");
    });
  } finally {
    await stopMount(mount);
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("umount of a stale mount removes the pid file and control socket its dead process left", async () => {
  const runDirectory = tempDir("riakfs-run-");
  const mount = await startMount({ args: ["--run-dir", runDirectory] });
  const { pidFile, controlSocket } = runtimePaths(mount.mountpoint, runDirectory);
  try {
    // Written once the mount is up, a moment after it appears.
    assert.ok(await waitFor(() => fs.existsSync(pidFile), 5_000), "the pid file is written");
    await crashLeavingStaleMount(mount.server);
    assert.ok(fs.existsSync(pidFile) && fs.existsSync(controlSocket), "left by the crash");
    const umount = await runRiakfs(["umount", "--run-dir", runDirectory, mount.mountpoint]);
    assert.equal(umount.code, 0, umount.stderr);
    assert.equal(isMounted(mount.mountpoint), false);
    // Before, both stayed in the run directory.
    assert.equal(fs.existsSync(pidFile), false, "pid file removed");
    assert.equal(fs.existsSync(controlSocket), false, "control socket removed");
  } finally {
    await stopMount(mount);
    fs.rmSync(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("SIGTERM unmounts and the server exits 0", async () => {
  const mount = await startMount();
  try {
    fs.writeFileSync(join(mount.mountpoint, "f"), "x");
    process.kill(mount.server.pid!, "SIGTERM");
    assert.ok(await waitFor(() => mount.server.exitCode !== null, 10_000));
    assert.equal(mount.server.exitCode, 0, mount.stderr());
    assert.equal(isMounted(mount.mountpoint), false);
  } finally {
    await stopMount(mount);
  }
});

Deno.test("SIGTERM the moment the mount appears still unmounts and exits 0", async () => {
  // Before its first request is answered the server may still be finishing start-up; a
  // signal then must not kill it outright (Node's default) but unmount once it is up.
  const mount = await startMount();
  try {
    process.kill(mount.server.pid!, "SIGTERM");
    assert.ok(await waitFor(() => mount.server.exitCode !== null, 10_000), mount.stderr());
    assert.equal(mount.server.exitCode, 0, mount.stderr());
    assert.equal(isMounted(mount.mountpoint), false);
  } finally {
    await stopMount(mount);
  }
});

Deno.test("a second SIGTERM forces a busy mount away and the server exits", async () => {
  const mount = await startMount();
  try {
    const handle = await fs.promises.open(join(mount.mountpoint, "held"), "w");
    try {
      process.kill(mount.server.pid!, "SIGTERM");
      assert.ok(await waitFor(() => !isMounted(mount.mountpoint), 10_000), "detached lazily");
      assert.equal(mount.server.exitCode, null, "still serving the open file");
      await handle.write("served after detach");
      process.kill(mount.server.pid!, "SIGTERM");
      assert.ok(await waitFor(() => mount.server.exitCode !== null, 10_000), "forced out");
      await assert.rejects(handle.write("after abort"));
    } finally {
      await handle.close().catch(() => {});
    }
    assert.equal(fs.readFileSync(join(mount.source, "held"), "utf8"), "served after detach");
  } finally {
    await stopMount(mount);
  }
});

Deno.test("mount and umount report bad input in one line", async () => {
  const base = tempDir("riakfs-cli-");
  try {
    const missing = await runRiakfs(["mount", "--preset", "passthrough", base, join(base, "nope")]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    assert.match(missing.stderr, /nope/);
    const badOption = await runRiakfs([
      "mount",
      "--preset",
      "passthrough",
      "-o",
      "frob",
      base,
      base,
    ]);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /frob/);
    const badPreset = await runRiakfs(["mount", "--preset", "nosuch", base, base]);
    assert.equal(badPreset.code, 2);
    const noPreset = await runRiakfs(["mount", base, base]);
    assert.equal(noPreset.code, 2);
    const notMounted = await runRiakfs(["umount", base]);
    assert.equal(notMounted.code, 1);
    assert.match(notMounted.stderr, /not a FUSE mount/);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("umount of a busy mount says so; --lazy detaches it", async () => {
  const mount = await startMount();
  try {
    const handle = await fs.promises.open(join(mount.mountpoint, "held"), "w");
    try {
      const runDir = ["--run-dir", mount.runDirectory];
      const busy = await runRiakfs(["umount", ...runDir, mount.mountpoint]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /busy/);
      const lazy = await runRiakfs(["umount", "--lazy", ...runDir, mount.mountpoint]);
      assert.equal(lazy.code, 0, lazy.stderr);
      assert.match(lazy.stdout, /then detached .*served until they are closed/);
      assert.equal(isMounted(mount.mountpoint), false);
      await handle.write("still served");
    } finally {
      await handle.close();
    }
    assert.ok(
      await waitFor(() => mount.server.exitCode !== null, 10_000),
      "exits after last close",
    );
    assert.equal(fs.readFileSync(join(mount.source, "held"), "utf8"), "still served");
  } finally {
    await stopMount(mount);
  }
});

Deno.test("a hung mount (its process stopped): a mount there is refused in one line, umount takes it away, and the mount made there next outlives the hung process's death", async () => {
  const runDirectory = tempDir("riakfs-run-");
  const nextRunDirectory = tempDir("riakfs-run-");
  const nextSource = tempDir("riakfs-next-");
  fs.writeFileSync(join(nextSource, "next"), "served by the next mount");
  const hung = await startMount({ args: ["--run-dir", runDirectory] });
  const hungPid = hung.server.pid!;
  let watchdog: number[] = [];
  assert.ok(await waitFor(() => (watchdog = watchdogsOf(hungPid)).length === 1, 5_000));
  const { pidFile } = runtimePaths(hung.mountpoint, nextRunDirectory);
  // Bounded from outside: before, both commands waited forever on the hung mount.
  const riakfs = (args: string[]) => run("timeout", ["60", RIAKFS_BINARY, ...args]);
  try {
    // Its pid file names it in umount's message: written a moment after the mount appears.
    const hungPidFile = runtimePaths(hung.mountpoint, runDirectory).pidFile;
    assert.ok(await waitFor(() => fs.existsSync(hungPidFile), 5_000));
    process.kill(hungPid, "SIGSTOP");
    const mountArgs = ["mount", "--preset", "passthrough", "--run-dir", nextRunDirectory];
    const refused = await riakfs([...mountArgs, nextSource, hung.mountpoint]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^riakfs: cannot mount on .*: .* does not answer within/);
    assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    assert.ok(isMounted(hung.mountpoint), "the hung mount is left alone");

    const umount = await riakfs(["umount", "--run-dir", runDirectory, hung.mountpoint]);
    assert.equal(umount.code, 3, umount.stderr);
    assert.match(
      umount.stderr,
      new RegExp(
        `unmounted .* without draining: it did not answer on its control socket .* within ` +
          `\\d+ ms; its process ${hungPid} still runs, stuck: .* safe in the journal`,
      ),
    );
    assert.equal(isMounted(hung.mountpoint), false);

    const next = await riakfs([...mountArgs, nextSource, hung.mountpoint]);
    assert.equal(next.code, 0, next.stderr);
    process.kill(hungPid, "SIGKILL");
    assert.ok(await waitFor(() => !watchdog.some(isProcessAlive), 10_000), "its watchdog ended");
    assert.ok(isMounted(hung.mountpoint), "the next mount is still there");
    assert.equal(
      fs.readFileSync(join(hung.mountpoint, "next"), "utf8"),
      "served by the next mount",
    );
  } finally {
    if (hung.server.exitCode === null && hung.server.signalCode === null) {
      process.kill(hungPid, "SIGKILL");
    }
    const nextPid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8")) : 0;
    if (isMounted(hung.mountpoint)) {
      await runRiakfs(["umount", "--lazy", "--run-dir", nextRunDirectory, hung.mountpoint]);
    }
    if (nextPid > 0 && !(await waitFor(() => !isProcessAlive(nextPid), 10_000))) {
      process.kill(nextPid, "SIGKILL");
    }
    await stopMount(hung);
    for (const directory of [runDirectory, nextRunDirectory, nextSource]) {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  }
});
