/**
 * `riakfs status` of the built binary against a control socket served by this test (the
 * same server a mount runs), and its answer when nothing serves the mountpoint.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimePaths, startControlServer, type StatusReport } from "../src/overlay/control.ts";
import { MountMetrics } from "../src/overlay/metrics.ts";
import { resolveMode } from "../src/overlay/modes.ts";
import { runRiakfs } from "./_riakfs.ts";

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
    riak: { reachable: true, outages: 0, nodes: ["127.0.0.1:8087"] },
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
    const json = await runRiakfs(["status", "--json", "--run-dir", runDirectory, mountpoint]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), report(mountpoint));
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
