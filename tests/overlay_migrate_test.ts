/**
 * Migration behaviour on a real mount: copy-on-read (then served from Riak even when the
 * local copy changes behind riakfs), drain's verified deletion (also of a pre-warmed file
 * read from Riak's copy), Riak outages (local files
 * served, Riak reads fail with EIO in time, listings degrade, logged once; in shadow,
 * removals and renames of directories go on and Riak follows), a file changed
 * between its hash and its deletion kept (the read-back held at a proxy), copies a drain kept
 * shown by `riakfs progress` until they are gone, the status
 * command and the Prometheus endpoint of a live mount, and riak-fuse's legacy flags.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import * as fs from "node:fs";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { Store } from "../src/store/store.ts";
import {
  eventually,
  type OverlayEnv,
  prewarmSource,
  statusOf,
  withOverlayEnv,
} from "./_overlay.ts";
import { startRiakProxy } from "./_riak_proxy.ts";
import { runRiakfs } from "./_riakfs.ts";
import { holdOpen } from "../src/migration/_test_support.ts";

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
    const mounted = await env.mount("migrate", [
      "--metrics",
      "127.0.0.1:0",
      "--log-format",
      "json",
    ]);
    try {
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "photos/a.jpg"))));
      // Counted once the mount took note of the copy (reads then go to Riak), not merely
      // once Riak holds it.
      await eventually(
        "the copy done",
        async () => (await statusOf(env)).metrics.copyOnRead.copied === 1,
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
      // Every log line is one JSON object; the ready line names the metrics port bound.
      const lines = mounted.stderr().trim().split("\n").map((line) => JSON.parse(line));
      for (const line of lines) assert.ok(line.time && line.level && line.message, String(line));
      const ready = lines.find((line) => line.message === "overlay ready");
      const port = /^port (\d+)$/.exec(ready?.metrics ?? "")?.[1];
      assert.ok(port, mounted.stderr());
      const exposition = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(exposition, /riakfs_copy_on_read_total\{[^}]*outcome="copied"[^}]*\} 1\n/);
      assert.match(exposition, /riakfs_read_bytes_total\{[^}]*from="riak"[^}]*\} [1-9]/);
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

Deno.test("drain after prewarm: a file read from Riak's copy leaves the local disk too", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(24, 200_000);
    const local = join(env.source, "d/one.txt");
    await legacyFile(local, content);
    await prewarmSource(env);
    const mounted = await env.mount("drain");
    try {
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "d/one.txt"))));
      await eventually(
        "the local copy deleted",
        async () => (await statusOf(env)).metrics.localDeletion.deleted === 1,
      );
      await assert.rejects(fsp.stat(local), { code: "ENOENT" });
      assert.equal((await statusOf(env)).metrics.bytesReadLocal, 0, "read from Riak's copy");
      const status = await runRiakfs(["status", "--run-dir", env.runDirectory, env.mountpoint]);
      assert.match(status.stdout, /local copies 1 deleted after verification, 0 kept/);
      assert.ok(content.equals(await env.store.readFile("d/one.txt")));
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "d/one.txt"))));
      assert.deepEqual(await fsp.readdir(join(env.mountpoint, "d")), ["one.txt"]);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain: a file changed between its hash and its deletion is kept, on a mount", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(23, 150_000);
    const local = join(env.source, "logs/busy.log");
    await legacyFile(local, content);
    const proxy = await startRiakProxy(env.riak.nodes[0]);
    try {
      // The upload's read-back waits at the proxy while the application appends a line.
      const readBack = proxy.holdReadBackAfterPut(env.bucket, "logs/busy.log");
      const mounted = await env.mount("drain", [], proxy.node);
      try {
        assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "logs/busy.log"))));
        await readBack.reached;
        await fsp.appendFile(local, "one more line\n");
        readBack.release();
        await eventually("the deletion decided", async () => {
          const { kept, deleted } = (await statusOf(env)).metrics.localDeletion;
          return kept + deleted > 0;
        });
        assert.deepEqual((await statusOf(env)).metrics.localDeletion, { deleted: 0, kept: 1 });
        assert.ok(
          Buffer.concat([content, Buffer.from("one more line\n")]).equals(
            await fsp.readFile(local),
          ),
          "the changed local file is untouched",
        );
        assert.ok(
          content.equals(await env.store.readFile("logs/busy.log")),
          "Riak has the hashed bytes",
        );
        assert.match(mounted.stderr(), /local copy kept/);
      } finally {
        await env.unmount(mounted);
      }
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("drain: a copy kept while another process holds it open for writing shows in riakfs progress until it is deleted", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(25, 50_000);
    const local = join(env.source, "logs/app.log");
    await legacyFile(local, content);
    const progress = (spool: string, extra: string[] = []) =>
      runRiakfs([
        "progress",
        env.source,
        ...["--spool", spool, "--bucket", env.bucket, "--state-dir", join(env.base, "state")],
        ...extra,
      ]);
    const keptByMount = async () => {
      const run = await progress(env.spool, ["--json"]);
      assert.equal(run.code, 0, run.stderr);
      return JSON.parse(run.stdout).keptByMount;
    };
    const holder = await holdOpen(local, ">>");
    let mounted;
    try {
      mounted = await env.mount("drain");
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "logs/app.log"))));
      await eventually(
        "the local copy kept",
        async () => (await statusOf(env)).metrics.localDeletion.kept === 1,
      );
      await eventually("progress showing it", async () => (await keptByMount()).files === 1);
      assert.deepEqual(await keptByMount(), { files: 1, bytes: content.length });
      assert.match((await progress(env.spool)).stdout, /^kept by the mount: 1 files, /m);
      const bad = await progress(join(env.base, "nope"));
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^riakfs: --spool \S+ is not a directory \(run [^\n]*\n$/);
    } finally {
      await holder.release();
    }
    try {
      // Closed now: the next read copies again, and the deletion goes through.
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "logs/app.log"))));
      await eventually(
        "the local copy deleted",
        async () => (await statusOf(env)).metrics.localDeletion.deleted === 1,
      );
      await assert.rejects(fsp.stat(local), { code: "ENOENT" });
      assert.deepEqual(await keptByMount(), { files: 0, bytes: 0 });
    } finally {
      await env.unmount(mounted);
    }
    // The mount's record forgot it too (written at the latest when the mount stopped).
    await assert.rejects(fsp.stat(join(env.spool, "kept")), { code: "ENOENT" });
  });
});

Deno.test("drain: a local copy a write superseded, kept as it changed outside the mount, shows in riakfs progress", async () => {
  await withOverlayEnv(async (env) => {
    const local = join(env.source, "notes/todo.txt");
    await legacyFile(local, Buffer.from("legacy list\n"));
    const proxy = await startRiakProxy(env.riak.nodes[0]);
    try {
      const put = proxy.holdPut(env.bucket, "notes/todo.txt");
      const mounted = await env.mount("drain", [], proxy.node);
      try {
        await fsp.writeFile(join(env.mountpoint, "notes/todo.txt"), "new list\n");
        await put.reached;
        await fsp.appendFile(local, "added behind the mount's back\n");
        put.release();
        await eventually(
          "the local copy kept",
          async () => (await statusOf(env)).metrics.localDeletion.kept === 1,
        );
        await eventually("progress showing it", async () => {
          const run = await runRiakfs([
            "progress",
            env.source,
            ...["--spool", env.spool, "--bucket", env.bucket, "--json"],
            ...["--state-dir", join(env.base, "state")],
          ]);
          return JSON.parse(run.stdout).keptByMount.files === 1;
        });
        assert.equal(
          await fsp.readFile(local, "utf8"),
          "legacy list\nadded behind the mount's back\n",
        );
      } finally {
        await env.unmount(mounted);
      }
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("shadow: rm -r, a directory rename, mkdir and ln -s during an outage answer at once; Riak follows once back", async () => {
  await withOverlayEnv(async (env) => {
    const mounted = await env.mount("shadow");
    try {
      const put = async (path: string, content: string) => {
        await fsp.mkdir(join(env.mountpoint, path, ".."), { recursive: true });
        await fsp.writeFile(join(env.mountpoint, path), content);
      };
      await put("build/obj/a.o", "object");
      await put("build/log.txt", "log");
      await put("photos/2019/p.jpg", "photo");
      await fsp.mkdir(join(env.mountpoint, "photos/empty"));
      await fsp.symlink("2019/p.jpg", join(env.mountpoint, "photos/cover"));
      await eventually(
        "the tree in Riak",
        async () =>
          !!(await env.store.tryStat("build/obj/a.o")) &&
          !!(await env.store.tryStat("build/log.txt")) &&
          !!(await env.store.tryStat("photos/2019/p.jpg")) &&
          !!(await env.store.tryStat("photos/empty")) &&
          !!(await env.store.tryStat("photos/cover")),
      );
      await env.riak.stop();
      try {
        // The source is the truth in shadow: neither waits for Riak nor fails.
        await fsp.rm(join(env.mountpoint, "build"), { recursive: true });
        await fsp.rename(join(env.mountpoint, "photos"), join(env.mountpoint, "pictures"));
        await fsp.mkdir(join(env.mountpoint, "made-in-the-outage/empty"), {
          recursive: true,
          mode: 0o710,
        });
        await fsp.symlink("pictures", join(env.mountpoint, "albums"));
        assert.deepEqual((await fsp.readdir(env.source)).sort(), [
          "albums",
          "made-in-the-outage",
          "pictures",
        ]);
      } finally {
        await env.riak.restart();
      }
      await eventually(
        "Riak caught up",
        async () =>
          (await env.store.tryStat("build")) === undefined &&
          (await env.store.tryStat("photos")) === undefined &&
          !!(await env.store.tryStat("pictures/2019/p.jpg")),
      );
      // Empty directories and symlinks too: moved along, and made while Riak was away.
      await eventually(
        "the empty directories and the links in Riak",
        async () =>
          (await env.store.tryStat("pictures/empty"))?.type === "directory" &&
          (await env.store.tryStat("made-in-the-outage/empty"))?.type === "directory" &&
          (await env.store.tryStat("pictures/cover"))?.type === "symlink" &&
          (await env.store.tryStat("albums"))?.type === "symlink",
      );
      assert.equal(await env.store.tryStat("photos/empty"), undefined);
      assert.equal(await env.store.tryStat("photos/cover"), undefined);
      assert.equal((await env.store.readlink("pictures/cover")).toString(), "2019/p.jpg");
      assert.equal((await env.store.readlink("albums")).toString(), "pictures");
      const mode = (path: string) => fs.statSync(join(env.source, path)).mode & 0o7777;
      assert.equal(
        (await env.store.tryStat("made-in-the-outage/empty"))!.mode,
        mode("made-in-the-outage/empty"),
      );
      assert.equal(await env.store.tryStat("build/obj/a.o"), undefined);
      assert.equal(await env.store.tryStat("photos/2019"), undefined);
      assert.equal((await env.store.readFile("pictures/2019/p.jpg")).toString(), "photo");
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
        assert.ok(Date.now() - started < 5_000, "EIO came from the 500 ms deadline, not a hang");
        assert.deepEqual(
          await fsp.readdir(env.mountpoint),
          ["local.txt"],
          "listing degraded to local",
        );
        await assert.rejects(fsp.readFile(join(env.mountpoint, "remote.txt")), { code: "EIO" });
        // What needs Riak's answer fails and changes nothing: Riak may hold a newer copy.
        await assert.rejects(
          fsp.rename(join(env.mountpoint, "local.txt"), join(env.mountpoint, "moved.txt")),
          { code: "EIO" },
        );
        await assert.rejects(fsp.appendFile(join(env.mountpoint, "local.txt"), "x"), {
          code: "EIO",
        });
        assert.equal(await fsp.readFile(join(env.source, "local.txt"), "utf8"), "local bytes");
        // A new name can be created; it reaches Riak once Riak is back.
        await fsp.writeFile(join(env.mountpoint, "new.txt"), "written during the outage");
        // The status socket answers during the outage and shows it: Riak down, the upload
        // waiting, the EIO answers counted.
        const report = await statusOf(env);
        assert.equal(report.riak.reachable, false);
        assert.ok(report.metrics.uploads.pending >= 1, JSON.stringify(report.metrics.uploads));
        assert.ok((report.metrics.errors.EIO ?? 0) >= 3, JSON.stringify(report.metrics.errors));
      } finally {
        env.riak.resume();
      }
      await eventually(
        "new.txt in Riak",
        async () => (await env.store.tryStat("new.txt"))?.size === 25,
      );
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

/** A riak-fuse supervisord line (`-s -t -f -rh -rp` and `flags`) for this test's mount. */
function riakFuseLine(env: OverlayEnv, ...flags: string[]): string[] {
  const [host, port] = env.riak.nodes[0].split(":");
  const line = ["-s", env.source, "-t", env.mountpoint, "-f", "-rh", host, "-rp", port, ...flags];
  return [...line, "--spool", env.spool, "--run-dir", env.runDirectory];
}

/**
 * A riak-fuse folder name of this test's own: its buckets (`IMG_<folder>`, ...) take no prefix,
 * and a real Riak (RIAKFS_TEST_RIAK) keeps what earlier runs wrote.
 */
function folderOf(env: OverlayEnv): string {
  return `shop-${env.bucket.split("-")[0]}`;
}

/** The value Riak holds at `bucket`/`key` of the default bucket type, or undefined. */
async function rawValue(env: OverlayEnv, bucket: string, key: string): Promise<Buffer | undefined> {
  const fetched = await env.client.get({
    bucketType: "default",
    bucket: Buffer.from(bucket),
    key: Buffer.from(key),
  });
  return fetched.contents[0] && Buffer.from(fetched.contents[0].value);
}

/** The members of riak-fuse's directory set of a folder. */
async function listedIn(env: OverlayEnv, bucket: string): Promise<string[]> {
  const set = await env.client.fetchSet({
    bucketType: "sets",
    bucket: Buffer.from(bucket),
    key: Buffer.from("directory"),
  });
  return (set?.members ?? []).map((member) => Buffer.from(member).toString()).sort();
}

Deno.test("a riak-fuse supervisord line mounts in shadow, writing where riak-fuse wrote", async () => {
  await withOverlayEnv(async (env) => {
    const shop = folderOf(env);
    const legacy = seededBytes(23, 5_000);
    await legacyFile(join(env.source, `${shop}/images/p1.jpg`), legacy);
    const mounted = await env.mountArgs(
      riakFuseLine(env, "-rnp", "PIC_", "-rdnp", "PICDIR_", "-ddir"),
    );
    try {
      for (
        const [flag, spelling] of [
          ["-s", "the first argument"],
          ["-t", "the second argument"],
          ["-f", "--foreground"],
          ["-rh", "--riak HOST:PORT"],
          ["-rp", "--riak HOST:PORT"],
          ["-rnp", "--riak-fuse-content-prefix PIC_"],
          ["-rdnp", "--riak-fuse-directory-prefix PICDIR_"],
        ]
      ) {
        assert.ok(
          mounted.stderr().includes(
            `riakfs: ${flag} is riak-fuse's flag; riakfs spells it ${spelling}`,
          ),
          `hint for ${flag}: ${mounted.stderr()}`,
        );
      }
      assert.match(mounted.stderr(), /-ddir is ignored/);
      assert.match(mounted.stderr(), /behaviour is --preset shadow --layout riak-fuse/);
      assert.ok(legacy.equals(await fsp.readFile(join(env.mountpoint, `${shop}/images/p1.jpg`))));
      await fsp.writeFile(join(env.mountpoint, `${shop}/images/p2.jpg`), "new image");
      await eventually(
        `p2.jpg in PIC_${shop}`,
        async () => (await rawValue(env, `PIC_${shop}`, "p2.jpg"))?.toString() === "new image",
      );
      await eventually(
        `p2.jpg listed in PICDIR_${shop}`,
        async () => (await listedIn(env, `PICDIR_${shop}`)).includes("p2.jpg"),
      );
      const report = await statusOf(env);
      assert.equal(report.preset, "shadow");
      assert.equal(report.mode.reads, "local");
      assert.equal(
        await fsp.readFile(join(env.source, `${shop}/images/p2.jpg`), "utf8"),
        "new image",
        "shadow keeps the local copy",
      );
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("a riak-fuse folder lists a subdirectory and a symlink riakfs made there as such through a mount", async () => {
  await withOverlayEnv(async (env) => {
    const shop = folderOf(env);
    const store = new Store(env.client, {
      namespace: { bucket: env.bucket, preset: "riak-fuse" },
    });
    await store.writeFile(`${shop}/images/a.jpg`, Buffer.from("a picture"));
    await store.mkdir(`${shop}/images/sub`);
    await store.writeFile(`${shop}/images/sub/b.jpg`, Buffer.from("below"));
    await store.symlink(`${shop}/images/latest`, "a.jpg");
    const mounted = await env.mount("riak", ["--layout", "riak-fuse"]);
    try {
      const listed = await fsp.readdir(join(env.mountpoint, `${shop}/images`), {
        withFileTypes: true,
      });
      assert.deepEqual(
        listed.map((entry) =>
          `${entry.name} ${
            entry.isDirectory() ? "directory" : entry.isSymbolicLink() ? "symlink" : "file"
          }`
        ).sort(),
        ["a.jpg file", "latest symlink", "sub directory"],
      );
      assert.deepEqual(await fsp.readdir(join(env.mountpoint, `${shop}/images/sub`)), ["b.jpg"]);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("a riak-fuse line with -dell drains: local copies go once verified, files stay readable", async () => {
  await withOverlayEnv(async (env) => {
    const shop = folderOf(env);
    const legacy = seededBytes(24, 50_000);
    await legacyFile(join(env.source, `${shop}/images/old.jpg`), legacy);
    const mounted = await env.mountArgs(riakFuseLine(env, "-dell"));
    try {
      assert.match(
        mounted.stderr(),
        /-dell is riak-fuse's flag; riakfs spells it --after-transfer delete/,
      );
      assert.match(mounted.stderr(), /behaviour with -dell is --preset drain --layout riak-fuse/);
      assert.equal((await statusOf(env)).preset, "drain");
      const local = join(env.source, `${shop}/images/old.jpg`);
      assert.ok(legacy.equals(await fsp.readFile(join(env.mountpoint, `${shop}/images/old.jpg`))));
      await eventually("the local copy deleted", async () => {
        return await fsp.stat(local).then(() => false, () => true);
      });
      assert.ok(
        legacy.equals((await rawValue(env, `IMG_${shop}`, "old.jpg"))!),
        "where riak-fuse kept it",
      );
      assert.ok(legacy.equals(await fsp.readFile(join(env.mountpoint, `${shop}/images/old.jpg`))));
      assert.deepEqual(await fsp.readdir(join(env.mountpoint, `${shop}/images`)), ["old.jpg"]);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("migrate: a set-user-ID file fetched from Riak into the source keeps the bit", async () => {
  await withOverlayEnv(async (env) => {
    // The source's copy is older than Riak's, which is set-user-ID: a utimens fetches Riak's
    // copy into the source first, and chown(2) after chmod(2) there cleared the bit (found by
    // migrate's 400-operation random sequences, seed 85).
    fs.writeFileSync(join(env.source, "tool"), "old build");
    fs.utimesSync(join(env.source, "tool"), 1_500_000_000, 1_500_000_000);
    await env.store.writeFile("tool", Buffer.from("new build, set-user-ID"), {
      mode: 0o4755,
      mtimeNs: 1_600_000_000_000_000_000n,
    });
    const mount = await env.mount("migrate");
    try {
      const tool = join(env.mountpoint, "tool");
      assert.equal(fs.statSync(tool).mode & 0o7777, 0o4755);
      fs.utimesSync(tool, 1_700_000_000, 1_700_000_000);
      assert.equal(fs.statSync(tool).mode & 0o7777, 0o4755, "through the mount");
      assert.equal(fs.statSync(join(env.source, "tool")).mode & 0o7777, 0o4755, "in the source");
      assert.equal(fs.readFileSync(tool, "utf8"), "new build, set-user-ID");
    } finally {
      await env.unmount(mount);
    }
  });
});
