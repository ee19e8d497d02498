/**
 * Migration behaviour on a real mount: copy-on-read (then served from Riak even when the
 * local copy changes behind riakfs), drain's verified deletion, Riak outages (local files
 * served, Riak reads fail with EIO in time, listings degrade, logged once), the status
 * command and the Prometheus endpoint of a live mount, and riak-fuse's legacy flags.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { eventually, statusOf, withOverlayEnv } from "./_overlay.ts";

/** Writes a legacy file directly in the source, dated in the past like real legacy data. */
async function legacyFile(path: string, content: Uint8Array): Promise<void> {
  await fsp.mkdir(join(path, ".."), { recursive: true });
  await fsp.writeFile(path, content);
  const old = new Date("2019-01-01T00:00:00Z");
  await fsp.utimes(path, old, old);
}

Deno.test("migrate: read whole -> copied to Riak -> served from Riak afterwards", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(21, 3_000_000);
    await legacyFile(join(env.source, "photos/a.jpg"), content);
    const mounted = await env.mount("migrate", ["--metrics", "127.0.0.1:0"]);
    try {
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "photos/a.jpg"))));
      await eventually(
        "the copy in Riak",
        async () => (await env.store.tryStat("photos/a.jpg"))?.size === content.length,
      );
      assert.ok(content.equals(await env.store.readFile("photos/a.jpg")));
      // Behind riakfs's back: the mount serves Riak's bytes now.
      await fsp.writeFile(join(env.source, "photos/a.jpg"), "changed locally");
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "photos/a.jpg"))));
      const report = await statusOf(env);
      assert.equal(report.preset, "migrate");
      assert.equal(report.metrics.copyOnRead.copied, 1);
      assert.ok(report.metrics.bytesReadRiak >= content.length);
      assert.ok(report.metrics.bytesReadLocal >= content.length);
      assert.ok(report.metrics.ops.read > 0);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain: a file read whole leaves the local disk only after verification", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(22, 200_000);
    await legacyFile(join(env.source, "logs/old.log"), content);
    await legacyFile(join(env.source, "logs/unread.log"), Buffer.from("never read"));
    const mounted = await env.mount("drain");
    try {
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "logs/old.log"))));
      await eventually("the local copy deleted", async () => {
        await fsp.stat(join(env.source, "logs/old.log")).then(() => {
          throw new Error("still there");
        }, () => {});
        return true;
      });
      assert.ok(content.equals(await env.store.readFile("logs/old.log")));
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "logs/old.log"))));
      assert.deepEqual((await fsp.readdir(join(env.mountpoint, "logs"))).sort(), [
        "old.log",
        "unread.log",
      ]);
      assert.equal(await fsp.readFile(join(env.source, "logs/unread.log"), "utf8"), "never read");
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("outage: local files served, Riak reads fail with EIO in time, one log line", async () => {
  await withOverlayEnv(async (env) => {
    await legacyFile(join(env.source, "local.txt"), Buffer.from("local bytes"));
    await env.store.writeFile("remote.txt", Buffer.from("remote bytes"));
    const mounted = await env.mount("migrate", [
      "--riak-read-timeout",
      "500",
      "-o",
      "attr_timeout=0,entry_timeout=0",
    ]);
    try {
      assert.equal(await fsp.readFile(join(env.mountpoint, "remote.txt"), "utf8"), "remote bytes");
      env.riak.pause();
      try {
        assert.equal(await fsp.readFile(join(env.mountpoint, "local.txt"), "utf8"), "local bytes");
        const started = Date.now();
        await assert.rejects(fsp.readFile(join(env.mountpoint, "remote.txt")), { code: "EIO" });
        assert.ok(Date.now() - started < 10_000, "EIO came from the deadline, not a hang");
        assert.deepEqual(
          await fsp.readdir(env.mountpoint),
          ["local.txt"],
          "listing degraded to local",
        );
        await assert.rejects(fsp.readFile(join(env.mountpoint, "remote.txt")), { code: "EIO" });
      } finally {
        env.riak.resume();
      }
      await eventually(
        "Riak served again",
        async () =>
          (await fsp.readFile(join(env.mountpoint, "remote.txt"), "utf8")) === "remote bytes",
      );
    } finally {
      await env.unmount(mounted);
    }
    const outageLines = mounted.stderr().split("\n").filter((line) =>
      line.includes("Riak unreachable")
    );
    assert.equal(outageLines.length, 1, mounted.stderr());
  });
});

Deno.test("riak-fuse flags mount with hints and the riak-fuse layout", async () => {
  await withOverlayEnv(async (env) => {
    await legacyFile(join(env.source, "shop/images/p1.jpg"), seededBytes(23, 5_000));
    const port = env.riak.nodes[0].split(":")[1];
    const mounted = await env.mount("shadow", [
      "-rh",
      "127.0.0.1",
      "-rp",
      port,
      "-rreadcontent",
    ]);
    try {
      assert.match(mounted.stderr(), /-rh is riak-fuse's flag; riakfs spells it --riak HOST:PORT/);
      assert.match(
        mounted.stderr(),
        /-rreadcontent is riak-fuse's flag; riakfs spells it --reads riak-then-local/,
      );
      await fsp.readFile(join(env.mountpoint, "shop/images/p1.jpg"));
      await fsp.writeFile(join(env.mountpoint, "shop/images/p2.jpg"), "new image");
      assert.equal((await statusOf(env)).mode.reads, "riak-then-local");
    } finally {
      await env.unmount(mounted);
    }
  });
});
