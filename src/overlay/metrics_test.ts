import assert from "node:assert/strict";
import { MountMetrics, toPrometheus } from "./metrics.ts";
import { MetricsAddressError, parseMetricsAddress } from "./metrics_address.ts";
import { startMetricsServer } from "./metrics_server.ts";

Deno.test("Prometheus text carries every counter with HELP/TYPE and escaped labels", () => {
  const metrics = new MountMetrics();
  let depth = 0;
  metrics.onSnapshot(() => metrics.value.copyOnRead.queued = depth);
  metrics.countOp("read");
  metrics.value.opsInReaders.read = 1;
  metrics.countError("EIO");
  metrics.value.bytesReadRiak = 10;
  depth = 7;
  const text = toPrometheus(metrics.snapshot(), { mountpoint: '/mnt/"x"' });
  assert.match(text, /^# TYPE riakfs_ops_total counter$/m);
  assert.match(text, /^riakfs_ops_total\{mountpoint="\/mnt\/\\"x\\"",op="read"\} 1$/m);
  assert.match(text, /^riakfs_ops_in_readers_total\{mountpoint="[^}]*",op="read"\} 1$/m);
  assert.match(text, /^riakfs_errors_total\{mountpoint="\/mnt\/\\"x\\"",errno="EIO"\} 1$/m);
  assert.match(text, /^riakfs_read_bytes_total\{mountpoint="[^"]*\\"x\\"",from="riak"\} 10$/m);
  assert.match(text, /^riakfs_copy_on_read_queued\{mountpoint="[^}]*\} 7$/m);
  assert.match(text, /^# TYPE riakfs_uploads_pending gauge$/m);
  assert.ok(text.endsWith("\n"));
  for (const line of text.trim().split("\n")) {
    assert.match(line, /^(# (HELP|TYPE) riakfs_\w+ .+|riakfs_\w+(\{[^}]*\})? \d+)$/);
  }
});

Deno.test("--metrics addresses are checked", () => {
  assert.deepEqual(parseMetricsAddress("127.0.0.1:9464"), { host: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseMetricsAddress("[::1]:0"), { host: "::1", port: 0 });
  for (const bad of ["9464", "host:", "host:99999", "a b:1"]) {
    assert.throws(() => parseMetricsAddress(bad), MetricsAddressError);
  }
});

Deno.test("the metrics endpoint serves /metrics and nothing else", async () => {
  const server = await startMetricsServer("127.0.0.1:0", () => "riakfs_x 1\n");
  try {
    const ok = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    assert.equal(await ok.text(), "riakfs_x 1\n");
    const missing = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("a --metrics address already taken is refused naming the flag", async () => {
  const taken = await startMetricsServer("127.0.0.1:0", () => "");
  try {
    // The mount failed with "listen EADDRINUSE: ...", which did not say what listened.
    await assert.rejects(
      startMetricsServer(`127.0.0.1:${taken.port}`, () => ""),
      new RegExp(`^Error: --metrics 127\\.0\\.0\\.1:${taken.port}: .*EADDRINUSE`),
    );
  } finally {
    await taken.close();
  }
});
