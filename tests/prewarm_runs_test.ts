/**
 * End-to-end tests of how `riakfs prewarm` behaves as a cron job: the lock, non-terminal
 * output, usage errors, files changing during upload, and a Riak node going away mid-run.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { hashStoredFile } from "../src/migration/stored_file.ts";
import { type RunningRiakfs, startRiakfs, withMigration } from "./_migration.ts";
import { run, waitFor, withMount } from "./_mount.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";
import { StateDirectory } from "../src/migration/state.ts";

function smallFiles(source: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const dir = join(source, `dir${i % 10}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}`), `content of file ${i}\n`.repeat(1 + (i % 5)));
  }
}

/**
 * Starts `prewarm SOURCE --json` with progress lines every 50 ms (on stderr) and waits until
 * they show uploads, so a fault or signal lands mid-run. The caller kills it in `finally`.
 */
async function startPrewarmUnderWay(source: string, flags: string[]): Promise<RunningRiakfs> {
  const running = startRiakfs([
    "prewarm",
    source,
    "--json",
    "--progress-interval",
    "0.05",
    ...flags,
  ]);
  const underWay = await waitFor(
    () => /[1-9]\d* uploaded/.test(running.stderr()) || running.child.exitCode !== null,
    30_000,
  );
  if (!underWay || running.child.exitCode !== null) {
    running.kill();
    throw new Error(`the run was not under way: ${running.stderr()}`);
  }
  return running;
}

Deno.test("prewarm: a second run while one holds the lock exits 4 at once", async () => {
  await withMigration(async ({ source, stateDir, flags }) => {
    smallFiles(source, 5);
    // This test process is alive: its PID in the lock file means "held".
    writeFileSync(join(stateDir, "lock"), `${process.pid}\n`);
    const locked = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(locked.code, 4, locked.stderr);
    assert.match(locked.stderr, /another run holds the lock .*\(pid \d+\)/);
    assert.equal(locked.stdout, "");
    const lockedJson = await runRiakfs(["prewarm", source, "--json", ...flags]);
    assert.equal(lockedJson.code, 4, lockedJson.stderr);
    assert.equal(JSON.parse(lockedJson.stdout).outcome, "locked");
    // A lock left by a dead process is stale: the next run takes it over.
    writeFileSync(join(stateDir, "lock"), "999999999\n");
    const resumed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(resumed.code, 0, resumed.stderr);
  });
});

Deno.test("prewarm: cron-style output has periodic lines and a summary, no bar", async () => {
  await withMigration(async ({ riak, source, flags }) => {
    smallFiles(source, 200);
    riak.faults.setLatency(2);
    const run = await runRiakfs([
      "prewarm",
      source,
      "--progress-interval",
      "0.1",
      "--concurrency",
      "2",
      ...flags,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes("\r"), "no carriage returns on a non-terminal");
    const lines = run.stdout.trim().split("\n");
    // " of ~200" once the first pass's count of the tree is done (see prewarm_test.ts).
    const periodic = lines.filter((line) =>
      /^riakfs prewarm: \d+ files checked( of ~200)?, /.test(line)
    );
    assert.ok(periodic.length >= 1, run.stdout);
    assert.match(
      lines.at(-1)!,
      /^riakfs prewarm: complete in \d+s: 200 files checked \(.*\), 200 uploaded .* 0 already in Riak, 0 failed$/,
    );
    const dry = await runRiakfs(["prewarm", source, "--dry-run", ...flags]);
    assert.equal(dry.code, 0);
    assert.match(dry.stdout, /dry run complete .* 0 missing in Riak, 0 differing/);
    writeFileSync(join(source, "dir0", "new file"), "new");
    const dry2 = await runRiakfs(["prewarm", source, "--dry-run", ...flags]);
    assert.match(dry2.stdout, /^would upload \/dir0\/new file \(not in Riak, 3 bytes\)$/m);
  });
});

Deno.test("prewarm: usage errors exit 2 with one line", async () => {
  await withMigration(async ({ source, flags }) => {
    for (
      const args of [
        ["prewarm", join(source, "missing"), ...flags],
        ["prewarm", source, "--time-budget", "soon", ...flags],
        ["prewarm", source, "--concurrency", "0", ...flags],
        ["prewarm", source, "--max-rate", "-1", ...flags],
        ["prewarm", source, "--max-rate", "abc", ...flags],
        ["prewarm", source, "--time-budget", "0", ...flags],
        ["prewarm", join(source, "a-file"), ...flags],
        ["prewarm"],
      ]
    ) {
      writeFileSync(join(source, "a-file"), "not a directory");
      const run = await runRiakfs(args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /^riakfs: /);
    }
  });
});

Deno.test("prewarm, progress and verify refuse a path inside a riakfs mount", async () => {
  await withMigration(async ({ flags }) => {
    await withMount(async (mount) => {
      for (const command of ["prewarm", "progress", "verify"]) {
        const run = await runRiakfs([command, join(mount.mountpoint, "."), ...flags]);
        assert.equal(run.code, 2, `${command}: ${run.stderr}`);
        assert.match(run.stderr, /is inside the riakfs mount at .*; give the directory it mounts/);
      }
    });
  });
});

Deno.test("prewarm: a file rewritten during its upload is never stored torn", async () => {
  await withMigration(async ({ source, store, flags }) => {
    const size = 4 * 1024 * 1024;
    const piece = 256 * 1024;
    const file = join(source, "hot.bin");
    const versions = new Set<string>();
    const writeVersion = (version: number) => {
      const bytes = Buffer.alloc(size, version % 251);
      versions.add(createHash("sha256").update(bytes).digest("hex"));
      return bytes;
    };
    writeFileSync(file, writeVersion(0));
    smallFiles(source, 20);
    // --max-rate makes each upload of hot.bin take ~0.5 s while it is rewritten in place.
    const running = startRiakfs(["prewarm", source, "--max-rate", "8", "--json", ...flags]);
    try {
      let version = 0;
      while (running.child.exitCode === null) {
        version++;
        const bytes = writeVersion(version);
        const fd = openSync(file, "r+");
        try {
          for (let offset = 0; offset < size; offset += piece) {
            writeSync(fd, bytes, offset, piece, offset);
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          closeSync(fd);
        }
        if (version >= 400) break; // bounded writer, whatever the run does
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const result = await running.done;
      const summary = JSON.parse(result.stdout);
      // Never stored, it is not done: the run is partial then.
      assert.equal(result.code, summary.busy.length > 0 ? 3 : 0, result.stderr + result.stdout);
      const stored = await store.tryStat("hot.bin");
      if (stored) {
        const content = await hashStoredFile(store, Buffer.from("hot.bin"));
        assert.ok(versions.has(content.sha256), "Riak holds one whole version");
      } else {
        assert.deepEqual(summary.busy, ["/hot.bin"], "a file never stored is reported busy");
      }
      // Once it is quiet, the next run stores exactly the last version.
      const after = await runRiakfs(["prewarm", source, ...flags]);
      assert.equal(after.code, 0, after.stderr);
      const verify = await runRiakfs(["verify", source, "hot.bin", ...flags]);
      assert.equal(verify.code, 0, verify.stdout);
    } finally {
      running.kill();
    }
  });
});

Deno.test("prewarm: Riak going away mid-run fails the rest, listed, and never claims them", async () => {
  await withMigration(async ({ riak, source, stateDir, flags }) => {
    smallFiles(source, 150);
    const faults = riak.faults;
    // ~20 ms per answer: the run takes seconds, and the outage lands in its first tenth.
    faults.setLatency(20);
    const running = await startPrewarmUnderWay(source, ["--request-timeout", "2000", ...flags]);
    try {
      await faults.stopAccepting();
      faults.dropConnections();
      const result = await running.done;
      await faults.clear();
      const summary = JSON.parse(result.stdout);
      assert.equal(result.code, 1, result.stderr);
      assert.ok(summary.failures.length > 0);
      assert.equal(summary.outcome, "failed");
      // Whatever was not listed as failed is in Riak, byte for byte.
      // 50 files in a row finding no node stop the run: the rest is left to the next run.
      if (summary.tally.seen.files < 150) assert.equal(summary.stopReason, "riak-unreachable");
      const verify = await runRiakfs(["verify", source, "--json", ...flags]);
      const verified = JSON.parse(verify.stdout);
      // Every file the run counted in Riak is there, byte for byte.
      assert.ok(
        verified.matched >= summary.tally.inRiak.files,
        `${summary.tally.inRiak.files} claimed, ${verified.matched} in Riak`,
      );
      // What is not: listed as failed, or never reached (a write whose answer was lost may be
      // in Riak although reported failed: that is safe).
      const notReached = 150 - summary.tally.seen.files;
      assert.ok(verified.differences.length <= summary.tally.failed.files + notReached);
      // The next run retries the failures first and completes.
      assert.ok((new StateDirectory(stateDir).loadState().retryHex?.length ?? 0) > 0);
      const retry = await runRiakfs(["prewarm", source, ...flags]);
      assert.equal(retry.code, 0, retry.stderr + retry.stdout);
      const clean = await runRiakfs(["verify", source, ...flags]);
      assert.equal(clean.code, 0, clean.stdout);
    } finally {
      running.kill();
    }
  });
});

Deno.test("prewarm --delete-local drains verified files and keeps the rest", async () => {
  await withMigration(async ({ source, store, flags }) => {
    smallFiles(source, 30);
    const run = await runRiakfs(["prewarm", source, "--delete-local", "--json", ...flags]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.tally.deleted.files, 30);
    assert.equal(summary.tally.verified.files, 30);
    for (let i = 0; i < 30; i++) {
      const path = `dir${i % 10}/file${i}`;
      assert.equal(existsSync(join(source, path)), false, `${path} drained`);
      const held = await store.readFile(path);
      assert.equal(held.toString(), `content of file ${i}\n`.repeat(1 + (i % 5)));
    }
    assert.ok(existsSync(join(source, "dir0")), "directories stay");
  });
});

Deno.test("prewarm on a terminal draws a bar with rate and ETA", async () => {
  await withMigration(async ({ riak, source, flags }) => {
    smallFiles(source, 100);
    riak.faults.setLatency(10);
    // script(1) runs the binary on a pseudo-terminal, as an operator would.
    const onTerminal = (args: string[]) =>
      run("script", ["-qec", [RIAKFS_BINARY, ...args].map(shellQuote).join(" "), "/dev/null"]);
    const first = await onTerminal(["prewarm", source, ...flags]);
    assert.equal(first.code, 0, first.stdout);
    // Each redraw starts with a carriage return and an erase-line sequence.
    const firstFrames = first.stdout.split("\r\x1b[K").slice(1);
    // Counts until the first pass's count of the tree is done, then a bar (prewarm_test.ts).
    assert.ok(
      firstFrames.some((frame) =>
        /^\d+ files checked, \d+ uploaded, [\d.]+ MB\/s/.test(frame) ||
        /^\[[#.]{30}\] \d+% \d+\/100 files [\d.]+ MB\/s/.test(frame)
      ),
      first.stdout,
    );
    assert.match(first.stdout, /complete in \d+s: 100 files checked/);
    // With a complete pass recorded, the bar knows the total: fraction and ETA.
    const second = await onTerminal(["prewarm", source, ...flags]);
    assert.equal(second.code, 0, second.stdout);
    const secondFrames = second.stdout.split("\r\x1b[K").slice(1);
    assert.ok(
      secondFrames.some((frame) =>
        /^\[[#.]{30}\] \d+% \d+\/100 files [\d.]+ MB\/s ETA \d+s/.test(frame)
      ),
      second.stdout,
    );
  });
});

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

Deno.test("prewarm: SIGTERM stops the run cleanly (exit 3) and the next run resumes", async () => {
  await withMigration(async ({ riak, source, flags }) => {
    smallFiles(source, 300);
    riak.faults.setLatency(3);
    const running = await startPrewarmUnderWay(source, flags);
    try {
      process.kill(running.child.pid!, "SIGTERM");
      const stopped = await running.done;
      assert.equal(stopped.code, 3, stopped.stderr);
      const summary = JSON.parse(stopped.stdout);
      assert.equal(summary.stopReason, "interrupted");
      assert.ok(summary.tally.uploaded.files < 300);
      riak.faults.setLatency(0);
      const rest = await runRiakfs(["prewarm", source, "--json", ...flags]);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(
        summary.tally.uploaded.files + JSON.parse(rest.stdout).tally.uploaded.files,
        300,
      );
    } finally {
      running.kill();
    }
  });
});

Deno.test("prewarm: SIGTERM stops rate-limited transfers under way; the next run takes them", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "a-small"), "small\n");
    const big = Buffer.alloc(2 << 20, 7);
    for (const name of ["b-big-1", "b-big-2"]) writeFileSync(join(source, name), big);
    // 0.5 MB/s: each big file would take seconds more after the small one is done.
    const running = await startPrewarmUnderWay(source, [...flags, "--max-rate", "0.5"]);
    try {
      process.kill(running.child.pid!, "SIGTERM");
      const stopped = await running.done;
      assert.equal(stopped.code, 3, stopped.stderr);
      assert.match(stopped.stderr, /interrupted; stopping/);
      const summary = JSON.parse(stopped.stdout);
      assert.equal(summary.stopReason, "interrupted");
      assert.equal(summary.tally.uploaded.files, 1, "the big ones were stopped, not finished");
      const rest = await runRiakfs(["prewarm", source, "--json", ...flags]);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(JSON.parse(rest.stdout).tally.uploaded.files, 2);
      const verify = await runRiakfs(["verify", source, "--json", ...flags]);
      assert.equal(verify.code, 0, verify.stdout);
    } finally {
      running.kill();
    }
  });
});

Deno.test("prewarm: a directory it could not read is walked by the next run of the pass", async () => {
  await withMigration(async ({ source, flags }) => {
    for (const file of ["a/1.txt", "b/x.txt", "b/c/z.txt", "d/2.txt", "e/3.txt"]) {
      mkdirSync(join(source, file, ".."), { recursive: true });
      writeFileSync(join(source, file), file);
    }
    chmodSync(join(source, "b"), 0o000);
    // Root without the capabilities that override permissions: b cannot be read.
    const withoutOverride = (args: string[]) =>
      runRiakfs(["--bounding-set=-dac_override,-dac_read_search", RIAKFS_BINARY, ...args], {
        binary: "/usr/bin/setpriv",
      });
    try {
      // Two files, then the budget: the pass goes on past b, which could not be read.
      const first = await withoutOverride([
        "prewarm",
        source,
        "--json",
        "--max-files",
        "2",
        ...flags,
      ]);
      const summary = JSON.parse(first.stdout);
      assert.equal(summary.tally.uploaded.files, 2, first.stderr);
      assert.deepEqual(summary.failures.map((f: { path: string }) => f.path), ["/b"]);
    } finally {
      chmodSync(join(source, "b"), 0o755);
    }
    // Readable now: the next run walks below b (behind its cursor), then goes on.
    const second = await runRiakfs(["prewarm", source, "--json", ...flags]);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    assert.equal(JSON.parse(second.stdout).tally.uploaded.files, 3);
    const verify = await runRiakfs(["verify", source, "--json", ...flags]);
    assert.equal(JSON.parse(verify.stdout).matched, 5, verify.stdout);
    const progress = await runRiakfs(["progress", source, "--json", ...flags]);
    const report = JSON.parse(progress.stdout);
    assert.deepEqual([report.total.files, report.failed.files], [5, 0], progress.stdout);
  });
});

Deno.test("prewarm: a Riak node coming back mid-run lets the end-of-run retry finish", async () => {
  await withMigration(async ({ riak, source, flags }) => {
    smallFiles(source, 200);
    const faults = riak.faults;
    faults.setLatency(3);
    const running = await startPrewarmUnderWay(source, flags);
    try {
      await faults.stopAccepting();
      faults.dropConnections();
      // Back as soon as the run has seen failures.
      const sawFailures = () => /[1-9]\d* failed/.test(running.stderr());
      await waitFor(() => sawFailures() || running.child.exitCode !== null, 30_000);
      assert.ok(sawFailures(), `the run saw Riak go away: ${running.stderr()}`);
      await faults.clear();
      const result = await running.done;
      const summary = JSON.parse(result.stdout);
      // Riak was back before the end-of-run retry (1 s after the walk, once a ping answers).
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.equal(summary.tally.failed.files, summary.failures.length);
      const failed = new Set(summary.failures.map((failure: { path: string }) => failure.path));
      const verify = await runRiakfs(["verify", source, "--json", ...flags]);
      for (const difference of JSON.parse(verify.stdout).differences as { path: string }[]) {
        assert.ok(failed.has(difference.path), `${difference.path} was claimed but is not in Riak`);
      }
      assert.equal(JSON.parse(verify.stdout).matched, 200);
    } finally {
      running.kill();
    }
  });
});

Deno.test("prewarm: a FIFO is listed once, counted and left by a drain; the run still exits 0", async () => {
  await withMigration(async ({ source, store, flags }) => {
    smallFiles(source, 3);
    execFileSync("mkfifo", [join(source, "dir1", "pipe")]);
    const drain = await runRiakfs(["prewarm", source, "--delete-local", ...flags]);
    assert.equal(drain.code, 0, drain.stderr + drain.stdout);
    const listed = drain.stdout.split("\n").filter((line) => line.includes("/dir1/pipe"));
    assert.deepEqual(listed, [
      "skipped (a FIFO; Riak holds only files, symlinks and directories): /dir1/pipe",
    ]);
    assert.match(drain.stdout, /^riakfs prewarm: complete .* 3 files checked .* 0 failed$/m);
    assert.match(drain.stdout, /^skipped: 1 special files \(not regular files, symlinks or/m);
    assert.deepEqual(readdirSync(join(source, "dir1")), ["pipe"], "drained around the FIFO");
    assert.equal(await store.tryStat("dir1/pipe"), undefined);

    const json = await runRiakfs(["prewarm", source, "--json", ...flags]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout).tally.special, { files: 1, bytes: 0 });
    assert.match(json.stderr, /^skipped \(a FIFO; .*\): \/dir1\/pipe$/m, "events go to stderr");

    const progress = await runRiakfs(["progress", source, ...flags]);
    assert.equal(progress.code, 0, progress.stderr);
    assert.match(progress.stdout, /^special: +1 files \(FIFOs, sockets, devices: never in Riak/m);
    const report = await runRiakfs(["progress", source, "--json", ...flags]);
    assert.deepEqual(JSON.parse(report.stdout).special, { files: 1, bytes: 0 });
  });
});

Deno.test("prewarm killed with SIGKILL: progress says it did not finish; the next run records it", async () => {
  await withMigration(async ({ riak, source, stateDir, flags }) => {
    smallFiles(source, 300);
    const faults = riak.faults;
    faults.setLatency(3);
    const before = new Date().toISOString();
    const running = await startPrewarmUnderWay(source, flags);
    let startedAt: string;
    try {
      // Riak holds every answer: the run stays under way, whatever the machine's speed.
      faults.pause();
      const during = await runRiakfs(["progress", source, ...flags]);
      assert.equal(during.code, 0, during.stderr);
      const underWay = new RegExp(
        `^run in progress: started (\\S+) \\(pid ${running.child.pid}\\)$`,
        "m",
      )
        .exec(during.stdout);
      assert.ok(underWay, during.stdout);
      startedAt = underWay[1];
      assert.ok(before <= startedAt && startedAt <= new Date().toISOString(), startedAt);
      process.kill(running.child.pid!, "SIGKILL");
      const killed = await running.done;
      assert.equal(killed.signal, "SIGKILL");
    } finally {
      running.kill();
      await faults.clear();
    }

    const after = await runRiakfs(["progress", source, ...flags]);
    assert.equal(after.code, 0, after.stderr);
    assert.doesNotMatch(after.stdout, /run in progress/);
    const notFinished =
      /^last run: started (\S+), did not finish \(killed, crashed or its host went down; last seen (\S+)\)$/m
        .exec(after.stdout);
    assert.ok(notFinished, after.stdout);
    assert.equal(notFinished[1], startedAt);
    const afterJson = JSON.parse(
      (await runRiakfs(["progress", source, "--json", ...flags])).stdout,
    );
    assert.equal(afterJson.lastRun.outcome, "unfinished");
    assert.equal(afterJson.lastRun.exitCode, null);

    const next = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    assert.ok(
      next.stdout.includes(`the last run (started ${startedAt}, last seen `),
      `the cron log tells of the run that died: ${next.stdout}`,
    );
    assert.match(next.stdout, /^riakfs prewarm: complete .* 300 files checked /m);
    const clean = await runRiakfs(["progress", source, ...flags]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stdout, /did not finish|run in progress/);
    assert.match(clean.stdout, /^total: +300 files, /m);
    assert.match(clean.stdout, /^pending: +0 files, 0 B$/m);
    assert.match(clean.stdout, /^last run: \S+ \.\. \S+, complete \(exit 0\)$/m);
    const history = new StateDirectory(stateDir).readHistory();
    assert.deepEqual(history.map((run) => [run.startedAt === startedAt, run.outcome]), [
      [true, "unfinished"],
      [false, "complete"],
    ]);
  });
});

Deno.test({
  name:
    "prewarm --delete-local, progress --rescan and verify stop at a filesystem mounted in SOURCE",
  ignore: process.getuid?.() !== 0,
  fn: async () => {
    await withMigration(async ({ source, store, flags }) => {
      smallFiles(source, 2);
      const mountPoint = join(source, "dir1", "share");
      mkdirSync(mountPoint);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "riakfs-test", mountPoint]);
      try {
        writeFileSync(join(mountPoint, "theirs.txt"), "not SOURCE's to drain");
        const drain = await runRiakfs(["prewarm", source, "--delete-local", ...flags]);
        assert.equal(drain.code, 0, drain.stderr + drain.stdout);
        assert.match(
          drain.stdout,
          /^skipped \(another filesystem is mounted here; not crossed\): \/dir1\/share$/m,
        );
        assert.match(drain.stdout, /^skipped: 1 mount points of other filesystems below SOURCE/m);
        assert.equal(readFileSync(join(mountPoint, "theirs.txt"), "utf8"), "not SOURCE's to drain");
        assert.equal(await store.tryStat("dir1/share/theirs.txt"), undefined);

        const rescan = await runRiakfs(["progress", source, "--rescan", "--json", ...flags]);
        assert.equal(rescan.code, 0, rescan.stderr);
        assert.deepEqual(JSON.parse(rescan.stdout).mountPoints, { files: 1, bytes: 0 });
        const verify = await runRiakfs(["verify", source, ...flags]);
        assert.equal(verify.code, 0, verify.stdout + verify.stderr);
        assert.match(verify.stdout, /^not compared \(another filesystem is mounted here/m);
        assert.match(verify.stdout, /, 1 mount points of other filesystems not crossed$/m);
      } finally {
        execFileSync("umount", [mountPoint]);
      }
    });
  },
});

Deno.test("prewarm: a file that keeps changing ends the run partial (exit 3), and progress counts it pending", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "calm.txt"), "calm");
    const log = join(source, "log");
    writeFileSync(log, "");
    // Appends without pause while the runs go on: no read of it ever sees one version.
    const writer = spawn("sh", ["-c", 'while :; do echo line >> "$1"; done', "sh", log], {
      stdio: "ignore",
    });
    try {
      for (const run of [1, 2]) {
        const result = await runRiakfs(["prewarm", source, ...flags]);
        assert.equal(result.code, 3, `run ${run}: ${result.stdout}${result.stderr}`);
        assert.match(
          result.stdout,
          /^riakfs prewarm: partial \(1 files kept changing; the next run retries them\)/m,
        );
        assert.match(
          result.stdout,
          /^skipped \(changed while being uploaded; the next run retries\): \/log$/m,
        );
        const progress = await runRiakfs(["progress", source, "--json", ...flags]);
        const report = JSON.parse(progress.stdout);
        assert.equal(report.pending.files, 1, `run ${run}: ${progress.stdout}`);
        assert.equal(report.inRiak.files, 1, `run ${run}: ${progress.stdout}`);
        assert.notEqual(report.etaDays, 0, `run ${run}: not done`);
        assert.equal(report.lastRun.outcome, "partial");
      }
    } finally {
      writer.kill();
    }
  });
});

Deno.test("prewarm: other --include/--exclude than the pass in progress start a new pass, said in one line", async () => {
  await withMigration(async ({ source, store, flags }) => {
    for (const name of ["a.tmp", "b.txt", "c.txt"]) writeFileSync(join(source, name), name);
    const first = await runRiakfs([
      "prewarm",
      source,
      "--exclude",
      "*.tmp",
      "--max-files",
      "1",
      ...flags,
    ]);
    assert.equal(first.code, 3, first.stderr + first.stdout);
    const all = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(all.code, 0, all.stderr + all.stdout);
    assert.match(
      all.stdout,
      /^the pass in progress was walked with other globs \(--include \[\] --exclude \["\*\.tmp"\], now --include \[\] --exclude \[\]\); starting a new pass$/m,
    );
    assert.ok(await store.tryStat("a.tmp"), "the file the old globs skipped is uploaded");
    const progress = await runRiakfs(["progress", source, "--json", ...flags]);
    assert.deepEqual(JSON.parse(progress.stdout).total, { files: 3, bytes: 15 });
  });
});
