import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatStatus,
  NotServingError,
  queryStatus,
  requestDrain,
  RunDirectoryTooLongError,
  runtimePaths,
  startControlServer,
  type StatusReport,
} from "./control.ts";
import { MountMetrics } from "./metrics.ts";
import { resolveMode } from "./modes.ts";

function sampleReport(): StatusReport {
  const metrics = new MountMetrics();
  metrics.countOp("read");
  metrics.countOp("read");
  metrics.countOp("lookup");
  metrics.countError("EIO");
  metrics.value.bytesReadLocal = 3 * 1024 * 1024;
  metrics.value.bytesReadRiak = 512;
  metrics.value.cache.hits = 3;
  metrics.value.cache.misses = 1;
  return {
    mountpoint: "/mnt/data",
    source: "/srv/data",
    pid: 4242,
    startedAt: "2026-11-25T00:00:00.000Z",
    preset: "migrate",
    mode: resolveMode("migrate"),
    riak: { reachable: true, outages: 2, nodes: ["127.0.0.1:8087"] },
    spool: { directory: "/srv/data/.riakfs-spool", files: 1, bytes: 10 },
    metrics: metrics.snapshot(),
  };
}

Deno.test("runtime paths are stable, distinct per mountpoint and short enough for a socket", () => {
  const a = runtimePaths("/mnt/a-b", "/run/riakfs");
  const b = runtimePaths("/mnt/a/b", "/run/riakfs");
  assert.notEqual(a.controlSocket, b.controlSocket);
  assert.deepEqual(runtimePaths("/mnt/a-b/", "/run/riakfs"), a);
  assert.match(a.controlSocket, /^\/run\/riakfs\/mnt-a-b-[0-9a-f]{12}\.sock$/);
  assert.equal(a.pidFile, a.controlSocket.replace(/\.sock$/, ".pid"));
  const long = runtimePaths("/" + "x".repeat(300));
  assert.ok(long.controlSocket.length < 108);
});

Deno.test("a long run directory shortens the socket's name to fit, and one too long is refused", () => {
  const runDirectory = "/" + "r".repeat(80);
  const paths = runtimePaths("/srv/images/of/the/old/host", runDirectory);
  assert.ok(Buffer.byteLength(paths.controlSocket) <= 107, paths.controlSocket);
  assert.match(
    paths.controlSocket,
    new RegExp(`^${runDirectory}/srv-[a-z-]*-[0-9a-f]{12}\\.sock$`),
  );
  assert.notEqual(
    paths.controlSocket,
    runtimePaths("/srv/images/of/the/old/other", runDirectory).controlSocket,
  );
  assert.throws(() => runtimePaths("/srv", "/" + "r".repeat(100)), RunDirectoryTooLongError);
});

Deno.test("status travels over the control socket; unknown commands and dead sockets fail clearly", async () => {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-control-"));
  try {
    const socket = join(directory, "m.sock");
    const report = sampleReport();
    const server = await startControlServer(socket, () => Promise.resolve(report));
    try {
      assert.equal((await stat(socket)).mode & 0o777, 0o600);
      assert.deepEqual(await queryStatus("/mnt/data", socket), report);
    } finally {
      await server.close();
    }
    await assert.rejects(stat(socket), { code: "ENOENT" });
    await assert.rejects(queryStatus("/mnt/data", socket), (error: unknown) => {
      assert.ok(error instanceof NotServingError);
      assert.match(error.message, /no riakfs mount answers for \/mnt\/data .*not found/);
      return true;
    });
    // A server whose report fails answers with the error instead of hanging.
    const failing = await startControlServer(socket, () => Promise.reject(new Error("boom")));
    try {
      await assert.rejects(queryStatus("/mnt/data", socket), /bad answer: boom/);
    } finally {
      await failing.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

Deno.test("drain travels over the control socket with progress, and passes its timeout on", async () => {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-control-"));
  try {
    const socket = join(directory, "m.sock");
    const timeouts: (number | undefined)[] = [];
    let sawLast!: () => void;
    const lastSeen = new Promise<void>((resolve) => sawLast = resolve);
    const server = await startControlServer(
      socket,
      () => Promise.resolve(sampleReport()),
      async (timeoutMs, progress) => {
        timeouts.push(timeoutMs);
        progress(3);
        progress(3); // Unchanged: not sent again.
        progress(1);
        await lastSeen; // Still draining while the client hears progress.
        return { drained: 3, pending: 1, timeoutMs: timeoutMs ?? 60_000, spool: "/s" };
      },
    );
    try {
      const heard: number[] = [];
      const outcome = await requestDrain("/mnt/data", socket, 2_500, (pending) => {
        heard.push(pending);
        if (pending === 1) sawLast();
      });
      assert.deepEqual(outcome, { drained: 3, pending: 1, timeoutMs: 2_500, spool: "/s" });
      assert.deepEqual(heard.slice(0, 2), [3, 1]);
      await requestDrain("/mnt/data", socket, undefined);
      assert.deepEqual(timeouts, [2_500, undefined]);
      await assert.rejects(
        requestDrain("/mnt/data", `${socket}.none`, undefined),
        (error: unknown) => error instanceof NotServingError && /not found/.test(error.message),
      );
    } finally {
      await server.close();
    }
    // A mount that cannot drain (no handler) says so instead of hanging.
    const statusOnly = await startControlServer(socket, () => Promise.resolve(sampleReport()));
    try {
      await assert.rejects(requestDrain("/mnt/data", socket, 0), /unknown command "drain 0"/);
    } finally {
      await statusOnly.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

Deno.test("the human status names every counter the issue asks for", () => {
  const text = formatStatus(sampleReport());
  assert.match(text, /^mountpoint\s+\/mnt\/data$/m);
  assert.match(text, /^mode\s+migrate \(--reads riak-then-local/m);
  assert.match(text, /^riak\s+127\.0\.0\.1:8087 reachable, 2 outage\(s\)$/m);
  assert.match(text, /^read\s+3\.1 MB local, 512 B from Riak$/m);
  assert.match(text, /^uploads\s+0 pending, 0 running, 0 done/m);
  assert.match(text, /^copy-on-read\s+0 queued/m);
  assert.match(text, /^cache\s+0 B held, hit ratio 75\.0% \(3 hits, 1 misses\)$/m);
  assert.match(text, /^ops\s+lookup=1 read=2$/m);
  assert.match(text, /^ {2}in readers -$/m);
  const served = sampleReport();
  served.metrics.opsInReaders = { read: 2, getattr: 1 };
  assert.match(formatStatus(served), /^ {2}in readers getattr=1 read=2$/m);
  assert.match(text, /^errors\s+EIO=1$/m);
  const down = sampleReport();
  down.riak = { ...down.riak, reachable: false, downSince: 0, lastError: "ECONNREFUSED" };
  assert.match(formatStatus(down), /UNREACHABLE since 1970-01-01T00:00:00.000Z: ECONNREFUSED/);
});
