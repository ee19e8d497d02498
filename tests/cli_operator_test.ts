/**
 * What an operator meets at the command line around a mount: relative paths given through
 * the environment or a config file, a Riak that cannot be used, odd source names, and the
 * exit codes and one-line errors of the other commands' mistakes.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { isMounted, run, tempDir, waitFor } from "./_mount.ts";
import { startRiakProcess } from "./_overlay.ts";
import { type RunResult, runRiakfs } from "./_riakfs.ts";

/** Unmounts `mountpoint` if a test left it mounted, and kills the process `pidFile` names. */
async function cleanUpMount(mountpoint: string, pidFile: string | undefined): Promise<void> {
  if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
  if (pidFile === undefined || !fs.existsSync(pidFile)) return;
  try {
    process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** The one file in `directory` ending in `suffix`, if any. */
function fileEnding(directory: string, suffix: string): string | undefined {
  const name = fs.existsSync(directory)
    ? fs.readdirSync(directory).find((entry) => entry.endsWith(suffix))
    : undefined;
  return name && join(directory, name);
}

Deno.test("a background mount takes RIAKFS_CONFIG and RIAKFS_RUN_DIR relative to where it started", async () => {
  const base = tempDir("riakfs-relative-");
  const mountpoint = join(base, "mnt");
  try {
    fs.mkdirSync(join(base, "src"));
    fs.mkdirSync(mountpoint);
    fs.writeFileSync(join(base, "src", "old.txt"), "legacy");
    // Riak where nobody listens: the mount serves the source all the same.
    fs.writeFileSync(join(base, "cfgm.json"), JSON.stringify({ riak: "127.0.0.1:1" }));
    const env = { ...process.env, RIAKFS_CONFIG: "cfgm.json", RIAKFS_RUN_DIR: "run" };
    const mounted = await runRiakfs(
      ["mount", "--preset", "migrate", "--spool", join(base, "spool"), "src", "mnt"],
      { cwd: base, env },
    );
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.equal(fs.readFileSync(join(mountpoint, "old.txt"), "utf8"), "legacy");
    const pidFile = fileEnding(join(base, "run"), ".pid");
    assert.ok(pidFile, `the pid file is in ./run: ${fs.readdirSync(base)}`);
    assert.ok(fileEnding(join(base, "run"), ".sock"), "and so is the control socket");
    const unmounted = await runRiakfs(["umount", "mnt"], { cwd: base, env });
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.equal(isMounted(mountpoint), false);
  } finally {
    await cleanUpMount(mountpoint, fileEnding(join(base, "run"), ".pid"));
    fs.rmSync(base, { recursive: true, force: true });
  }
});

/** A source and an empty mountpoint in a fresh directory, and their clean-up. */
async function withPlace(
  body: (place: { base: string; source: string; mountpoint: string; run: string }) => Promise<void>,
): Promise<void> {
  const base = tempDir("riakfs-operator-");
  const place = {
    base,
    source: join(base, "src"),
    mountpoint: join(base, "mnt"),
    run: join(base, "run"),
  };
  fs.mkdirSync(place.source);
  fs.mkdirSync(place.mountpoint);
  try {
    await body(place);
  } finally {
    await cleanUpMount(place.mountpoint, fileEnding(place.run, ".pid"));
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** `riakfs mount` in the background, its spool and run directory in `base`. */
function mountInBackground(
  place: { base: string; source: string; mountpoint: string; run: string },
  args: string[],
): Promise<RunResult> {
  return runRiakfs([
    "mount",
    ...args,
    "--run-dir",
    place.run,
    "--spool",
    join(place.base, "spool"),
    place.source,
    place.mountpoint,
  ]);
}

Deno.test("a mount whose Riak cannot be reached says so on the terminal, and serves local files", async () => {
  await withPlace(async (place) => {
    fs.writeFileSync(join(place.source, "old.txt"), "legacy");
    const mounted = await mountInBackground(place, [
      "--preset",
      "migrate",
      "--riak",
      "127.0.0.1:1",
    ]);
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.match(mounted.stderr, /^riakfs: warning: Riak unreachable: /m);
    assert.equal(fs.readFileSync(join(place.mountpoint, "old.txt"), "utf8"), "legacy");
    const unmounted = await runRiakfs(["umount", "--run-dir", place.run, place.mountpoint]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
  });
});

Deno.test("a mount whose Riak address answers in another protocol says on the terminal what the node answered", async () => {
  // An HTTP port given for the protocol-buffers one (8098 for 8087): "no Riak node answered"
  // alone sent the operator looking for a dead node.
  const http = createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(http.address() as AddressInfo).port}`;
  try {
    await withPlace(async (place) => {
      const mounted = await mountInBackground(place, ["--preset", "drain", "--riak", address]);
      assert.equal(mounted.code, 0, mounted.stderr);
      const warning = mounted.stderr.split("\n").find((line) => /Riak unreachable/.test(line));
      assert.match(
        warning ?? "",
        new RegExp(`as the mount started \\(${address} RpbPingReq: frame of \\d+ bytes exceeds`),
      );
      const unmounted = await runRiakfs(["umount", "--run-dir", place.run, place.mountpoint]);
      assert.equal(unmounted.code, 0, unmounted.stderr);
    });
  } finally {
    await new Promise((resolve) => http.close(resolve));
  }
});

Deno.test("a mount whose Riak lacks a bucket type it needs, or has one of the wrong datatype, is refused in one line", async () => {
  const data = tempDir("riakfs-operator-riak-");
  const riak = await startRiakProcess(data);
  try {
    const cases: Array<[string[], RegExp]> = [
      [
        ["--sets-bucket-type", "nosuch"],
        /bucket type nosuch \(directories\): does not exist; riak admin bucket-type create nosuch/,
      ],
      [
        ["--sets-bucket-type", "maps"],
        /bucket type maps \(directories\): datatype is map, directories need datatype set/,
      ],
      [["--bucket-type", "nosuch"], /bucket type nosuch \(files\): does not exist/],
      [
        ["--bucket-type", "sets"],
        /bucket type sets \(files\): has datatype set; file objects need none/,
      ],
    ];
    for (const preset of ["drain", "riak"]) {
      for (const [args, pattern] of cases) {
        await withPlace(async (place) => {
          const refused = await mountInBackground(place, [
            "--preset",
            preset,
            "--riak",
            riak.nodes[0],
            ...args,
          ]);
          assert.equal(refused.code, 1, refused.stderr);
          const lines = refused.stderr.trim().split("\n");
          assert.equal(lines.length, 1, refused.stderr);
          assert.match(lines[0], new RegExp(`^riakfs: ${pattern.source}`));
          assert.equal(isMounted(place.mountpoint), false);
        });
      }
    }
    // The right types: mounted.
    await withPlace(async (place) => {
      const mounted = await mountInBackground(place, [
        "--preset",
        "drain",
        "--riak",
        riak.nodes[0],
      ]);
      assert.equal(mounted.code, 0, mounted.stderr);
      assert.equal(mounted.stderr, "");
      const unmounted = await runRiakfs(["umount", "--run-dir", place.run, place.mountpoint]);
      assert.equal(unmounted.code, 0, unmounted.stderr);
    });
  } finally {
    await riak.close();
    fs.rmSync(data, { recursive: true, force: true });
  }
});

Deno.test("a source with blanks, commas or '=' in its name mounts without -o fsname=", async () => {
  await withPlace(async (place) => {
    const source = join(place.base, "sp src, a=b");
    fs.mkdirSync(source);
    fs.writeFileSync(join(source, "f.txt"), "spaced");
    const mountpoint = join(place.base, "sp mnt");
    fs.mkdirSync(mountpoint);
    try {
      const mounted = await runRiakfs(
        ["mount", "--preset", "passthrough", "--run-dir", place.run, source, mountpoint],
      );
      assert.equal(mounted.code, 0, mounted.stderr);
      assert.equal(fs.readFileSync(join(mountpoint, "f.txt"), "utf8"), "spaced");
      const line = fs.readFileSync("/proc/self/mounts", "utf8").split("\n")
        .find((entry) => entry.split(" ")[1] === mountpoint.replaceAll(" ", "\\040"));
      assert.equal(line?.split(" ")[0], join(place.base, "sp_src__a_b"), "the fsname");
      const unmounted = await runRiakfs(["umount", "--run-dir", place.run, mountpoint]);
      assert.equal(unmounted.code, 0, unmounted.stderr);
    } finally {
      await cleanUpMount(mountpoint, fileEnding(place.run, ".pid"));
    }
  });
});

Deno.test("verify: a PATH that is not in SOURCE is a usage error naming it", async () => {
  await withPlace(async (place) => {
    fs.writeFileSync(join(place.source, "here.txt"), "x");
    // No Riak is asked: the PATH is refused first.
    const refused = await runRiakfs(
      ["verify", "--riak", "127.0.0.1:1", place.source, "here.txt", "nosuch"],
    );
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.equal(refused.stdout, "");
    assert.match(
      refused.stderr,
      new RegExp(`^riakfs: nosuch: no such file or directory in ${place.source} \\(PATHs`),
    );
    assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  });
});

Deno.test("a background mount that fails before it is ready prints its own error line, not only the log's name", async () => {
  await withPlace(async (place) => {
    // A config file the starting command reads well and the background process, reading it
    // again, cannot parse: a FIFO hands each reader what the test writes next.
    const config = join(place.base, "cfg.fifo");
    await run("mkfifo", [config]);
    const mounting = mountInBackground(place, ["--preset", "migrate", "--config", config]);
    let failed: RunResult;
    try {
      await fs.promises.writeFile(config, JSON.stringify({ riak: "127.0.0.1:1" }));
      // Its log is opened once it read the config to its end: the next write is the other's.
      assert.ok(await waitFor(() => fileEnding(place.run, ".log") !== undefined, 10_000));
      await fs.promises.writeFile(config, "{ not json");
    } finally {
      // Whatever went wrong, no process (nor write of the test) stays blocked on the FIFO.
      fs.closeSync(fs.openSync(config, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
      failed = await mounting;
    }
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      new RegExp(
        `^riakfs: --config ${config}: .*JSON.*\\(background process's log: ${place.run}/`,
        "m",
      ),
    );
    assert.equal(isMounted(place.mountpoint), false);
  });
});

Deno.test("a background mount opens its log file again on SIGHUP, as logrotate's rename, create and postrotate kill -HUP expect", async () => {
  await withPlace(async (place) => {
    const log = join(place.base, "mount.log");
    const mounted = await mountInBackground(place, ["--preset", "passthrough", "--log-file", log]);
    assert.equal(mounted.code, 0, mounted.stderr);
    const pid = Number(fs.readFileSync(fileEnding(place.run, ".pid")!, "utf8"));
    fs.renameSync(log, `${log}.1`);
    process.kill(pid, "SIGHUP");
    // Before, the line (and every later one) went on into the renamed file, which logrotate
    // compresses and removes: the mount's log was lost, its disk space held.
    assert.ok(
      await waitFor(
        () => fs.existsSync(log) && /log file opened again/.test(readText(log)),
        10_000,
      ),
      `the log is written where it is named: ${readText(`${log}.1`)}`,
    );
    assert.equal(fs.statSync(log).mode & 0o777, 0o644);
    assert.doesNotMatch(readText(`${log}.1`), /SIGHUP/);
    fs.writeFileSync(join(place.mountpoint, "after-hangup.txt"), "still serving");
    assert.equal(
      fs.readFileSync(join(place.source, "after-hangup.txt"), "utf8"),
      "still serving",
    );
    const unmounted = await runRiakfs(["umount", "--run-dir", place.run, place.mountpoint]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
  });
});

/** `path`'s text, or "" when it is not there. */
function readText(path: string): string {
  return fs.existsSync(path) ? fs.readFileSync(path, "utf8") : "";
}
