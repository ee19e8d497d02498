/**
 * `riakfs status` of the built binary against a control socket served by this test (the
 * same server a mount runs), its answer when nothing serves the mountpoint, and the
 * counters of a real passthrough mount, whose requests the FUSE reader threads answer, the
 * pings of a Riak-backed mount's nodes, and its answer during an outage.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimePaths, startControlServer, type StatusReport } from "../src/overlay/control.ts";
import { MountMetrics } from "../src/overlay/metrics.ts";
import { resolveMode } from "../src/overlay/modes.ts";
import { withMount } from "./_mount.ts";
import { eventually, statusOf, waitForQuiet, withLog, withOverlayEnv } from "./_overlay.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

function report(mountpoint: string): StatusReport {
  const metrics = new MountMetrics();
  metrics.countOp("read");
  metrics.value.bytesReadRiak = 2048;
  metrics.value.uploads.failedAttempts = 3;
  return {
    mountpoint,
    source: "/srv/legacy",
    pid: 1234,
    startedAt: "2026-11-25T00:00:00.000Z",
    preset: "drain",
    mode: resolveMode("drain"),
    riak: {
      reachable: true,
      outages: 0,
      nodes: ["127.0.0.1:8087", "10.0.0.2:8087"],
      pings: [
        { node: "127.0.0.1:8087", ms: 0.42 },
        { node: "10.0.0.2:8087", error: "timed out after 2000 ms" },
      ],
    },
    metrics: metrics.snapshot(),
  };
}

Deno.test("riakfs status prints the running mount's counters, as text and JSON", async () => {
  const runDirectory = await mkdtemp(join(tmpdir(), "riakfs-status-"));
  const mountpoint = join(runDirectory, "mnt");
  const server = await startControlServer(
    runtimePaths(mountpoint, runDirectory).controlSocket,
    () => Promise.resolve(report(mountpoint)),
  );
  try {
    const text = await runRiakfs(["status", "--run-dir", runDirectory, mountpoint]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^mode\s+drain \(--reads riak-then-local/m);
    assert.match(text.stdout, /^read\s+0 B local, 2\.0 kB from Riak$/m);
    assert.match(text.stdout, /3 failed attempts/);
    assert.match(
      text.stdout,
      /^ping\s+127\.0\.0\.1:8087 0\.4 ms, 10\.0\.0\.2:8087 NO ANSWER \(timed out after 2000 ms\)$/m,
    );
    const json = await runRiakfs(["status", "--json", "--run-dir", runDirectory, mountpoint]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), report(mountpoint));
    // A report that cannot be written (a full disk behind `> file`) fails in one line.
    const refused = await runRiakfs(["status", "--run-dir", runDirectory, mountpoint], {
      stdoutTo: "/dev/full",
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^riakfs status: cannot write to standard output: ENOSPC[^\n]*\n$/,
    );
  } finally {
    await server.close();
    await rm(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("riakfs status says in one line that nothing serves the mountpoint", async () => {
  const runDirectory = await mkdtemp(join(tmpdir(), "riakfs-status-"));
  try {
    const result = await runRiakfs(["status", "--run-dir", runDirectory, "/mnt/nothing-here"]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^riakfs: no riakfs mount answers for \/mnt\/nothing-here \(control socket .*: not found\)\n$/,
    );
    const usage = await runRiakfs(["status", "--timeout", "soon", "/mnt/x"]);
    assert.equal(usage.code, 2);
  } finally {
    await rm(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("riakfs status run by another user than root says that only root may ask", async () => {
  const runDirectory = await mkdtemp(join(tmpdir(), "riakfs-status-"));
  try {
    await withMount(async ({ mountpoint }) => {
      const result = await runRiakfs(
        ["--reuid=65534", "--regid=65534", "--clear-groups", RIAKFS_BINARY, "status", mountpoint],
        { binary: "/usr/bin/setpriv", env: { ...process.env, RIAKFS_RUN_DIR: runDirectory } },
      );
      assert.equal(result.code, 1, result.stderr);
      // It said "connect EACCES", as if the socket were broken.
      assert.match(result.stderr, /: permission denied: only root may ask the mount \(run this/);
    }, { args: ["--run-dir", runDirectory] });
  } finally {
    await rm(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("riakfs status counts what the reader threads answer on a passthrough mount", async () => {
  const runDirectory = await mkdtemp(join(tmpdir(), "riakfs-status-"));
  try {
    await withMount(async ({ source, mountpoint }) => {
      fs.writeFileSync(join(source, "data"), "x".repeat(10_000));
      const status = async () => {
        const result = await runRiakfs(["status", "--json", "--run-dir", runDirectory, mountpoint]);
        assert.equal(result.code, 0, result.stderr);
        return (JSON.parse(result.stdout) as StatusReport).metrics;
      };
      const before = await status();
      for (let i = 0; i < 5; i++) fs.statSync(join(mountpoint, "data"));
      assert.equal(fs.readFileSync(join(mountpoint, "data"), "utf8").length, 10_000);
      fs.writeFileSync(join(mountpoint, "made"), "y".repeat(3000));
      assert.equal(fs.existsSync(join(mountpoint, "absent")), false);
      fs.unlinkSync(join(mountpoint, "made"));
      const after = await status();
      const grew = (op: string, by: number) =>
        assert.ok(
          (after.ops[op] ?? 0) - (before.ops[op] ?? 0) >= by,
          `${op}: ${before.ops[op]} -> ${after.ops[op]}`,
        );
      grew("getattr", 5);
      grew("open", 1);
      grew("read", 1);
      grew("create", 1);
      grew("write", 1);
      grew("release", 2);
      grew("unlink", 1);
      // Answered in the reader threads, without a hop to the event loop.
      for (const op of ["getattr", "open", "read", "create", "write", "release", "unlink"]) {
        assert.ok((after.opsInReaders[op] ?? 0) >= 1, `${op} in the readers`);
      }
      assert.ok((after.errors.ENOENT ?? 0) > (before.errors.ENOENT ?? 0), "the missing lookup");
      assert.ok(after.bytesReadLocal - before.bytesReadLocal >= 10_000);
      assert.ok(after.bytesWritten - before.bytesWritten >= 3000);
    }, { options: "attr_timeout=0,entry_timeout=0", args: ["--run-dir", runDirectory] });
  } finally {
    await rm(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("riakfs status pings every node: a node gone silent shows, though no request failed yet", async () => {
  await withOverlayEnv(async (env) => {
    const mount = await env.mount("riak");
    try {
      const answering = await statusOf(env);
      assert.deepEqual(answering.riak.pings?.map((ping) => ping.node), env.riak.nodes);
      for (const ping of answering.riak.pings!) {
        assert.ok(ping.ms !== undefined, JSON.stringify(answering.riak));
      }
      env.riak.pause();
      try {
        const silent = await statusOf(env);
        assert.equal(silent.riak.reachable, true, "no request of the mount failed");
        assert.equal(silent.riak.pings?.length, env.riak.nodes.length);
        for (const ping of silent.riak.pings!) {
          assert.equal(ping.ms, undefined);
          assert.match(ping.error ?? "", /timed out|timeout/i);
        }
      } finally {
        env.riak.resume();
      }
    } finally {
      await env.unmount(mount);
    }
  });
});

Deno.test("during an outage riakfs status answers at once with the uploads waiting, not after a ping of the hung node", async () => {
  await withOverlayEnv(async (env) => {
    const mounted = await env.mount("riak", ["-o", "entry_timeout=0,attr_timeout=0"]);
    try {
      const app = join(env.mountpoint, "app");
      await mkdir(app);
      await waitForQuiet(env);
      env.riak.pause();
      try {
        await writeFile(join(app, "first"), "first"); // Finds out that Riak hangs.
        await eventually(
          "the outage logged",
          () => Promise.resolve(mounted.stderr().includes("Riak unreachable")),
        );
        for (let index = 0; index < 20; index++) {
          await writeFile(join(app, `during-${index}`), `${index}`);
        }
        // A ping of the hung node waits 2 s for its answer: the mount knows it is away, and
        // what waits in its spool is what the operator asks about now.
        const result = await runRiakfs([
          "status",
          "--json",
          "--timeout",
          "1800",
          "--run-dir",
          env.runDirectory,
          env.mountpoint,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const status = JSON.parse(result.stdout) as StatusReport;
        assert.equal(status.riak.reachable, false);
        assert.ok(status.metrics.uploads.pending >= 21, JSON.stringify(status.metrics.uploads));
        assert.ok(status.spool!.files >= 21, JSON.stringify(status.spool));
        assert.equal(status.riak.pings?.length, env.riak.nodes.length);
        for (const ping of status.riak.pings!) assert.match(ping.error ?? "", /timed out|timeout/i);
      } finally {
        env.riak.resume();
      }
      await waitForQuiet(env);
    } catch (error) {
      throw withLog(error, mounted);
    } finally {
      await env.unmount(mounted);
    }
  });
});
