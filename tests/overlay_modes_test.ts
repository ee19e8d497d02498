/**
 * The mode table on real mounts, row by row: where reads come from, whether a read copies
 * the file into Riak, where writes go, whether the local copy goes once Riak holds it, and
 * where listings come from; plus a knob overridden after its preset. Each preset starts
 * from the same state: a legacy file only in the source, a file only in Riak.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { eventually, type OverlayEnv, statusOf, withOverlayEnv } from "./_overlay.ts";
import { runRiakfs } from "./_riakfs.ts";

const LEGACY = seededBytes(71, 40_000);
const REMOTE = seededBytes(72, 30_000);

/** What each preset must show, by the table. */
const ROWS = {
  shadow: { readsLocal: true, readsRiak: false, copies: true, writesLocal: true, deletes: false },
  migrate: { readsLocal: true, readsRiak: true, copies: true, writesLocal: true, deletes: false },
  drain: { readsLocal: true, readsRiak: true, copies: true, writesLocal: false, deletes: true },
  riak: { readsLocal: false, readsRiak: true, copies: false, writesLocal: false, deletes: false },
};

/** Waits until the mount has nothing queued: no copy-on-read, no upload. */
async function quiet(env: OverlayEnv): Promise<void> {
  await eventually("the mount's queues empty", async () => {
    const { copyOnRead, uploads } = (await statusOf(env)).metrics;
    return copyOnRead.queued === 0 && copyOnRead.active === 0 && uploads.pending === 0;
  });
}

const missing = (path: string) => fsp.stat(path).then(() => false, () => true);

for (const [preset, row] of Object.entries(ROWS)) {
  Deno.test(`${preset}: reads, copies, writes, deletions and listings as the mode table says`, async () => {
    await withOverlayEnv(async (env) => {
      await fsp.writeFile(join(env.source, "legacy.bin"), LEGACY);
      await env.store.writeFile("remote.bin", REMOTE);
      const mounted = await env.mount(preset);
      const at = (name: string) => join(env.mountpoint, name);
      try {
        assert.deepEqual(
          (await fsp.readdir(env.mountpoint)).sort(),
          [...(row.readsLocal ? ["legacy.bin"] : []), ...(row.readsRiak ? ["remote.bin"] : [])],
          "listings",
        );
        if (row.readsLocal) assert.ok(LEGACY.equals(await fsp.readFile(at("legacy.bin"))));
        else await assert.rejects(fsp.readFile(at("legacy.bin")), { code: "ENOENT" });
        if (row.readsRiak) assert.ok(REMOTE.equals(await fsp.readFile(at("remote.bin"))));
        else await assert.rejects(fsp.readFile(at("remote.bin")), { code: "ENOENT" });
        await fsp.writeFile(at("written.txt"), "through the mount");
        // The copy is queued at RELEASE, which the kernel sends after close(2) returned: the
        // queues can be empty before it.
        if (row.copies) {
          await eventually(
            "the copy-on-read",
            async () => !!(await env.store.tryStat("legacy.bin")),
          );
        }
        if (row.deletes) {
          await eventually(
            "the verified local copy deleted",
            () => missing(join(env.source, "legacy.bin")),
          );
        }
        await quiet(env);
        // Copy-on-read: the legacy file read whole is in Riak, or not.
        const copied = await env.store.tryStat("legacy.bin");
        assert.equal(copied !== undefined, row.copies, "copy-on-read");
        if (copied) assert.ok(LEGACY.equals(await env.store.readFile("legacy.bin")));
        // The local copy goes once Riak verified it (drain), else stays (unless never used).
        if (preset !== "riak") {
          assert.equal(await missing(join(env.source, "legacy.bin")), row.deletes, "deletion");
        }
        // Writes: always in Riak, in the source where the mode writes locally too.
        assert.equal((await env.store.readFile("written.txt")).toString(), "through the mount");
        assert.equal(await missing(join(env.source, "written.txt")), !row.writesLocal, "source");
        // Riak's own file never lands in the source.
        assert.ok(await missing(join(env.source, "remote.bin")));
      } finally {
        await env.unmount(mounted);
      }
    });
  });
}

Deno.test("migrate with --after-transfer delete: a knob overridden after its preset", async () => {
  await withOverlayEnv(async (env) => {
    await fsp.writeFile(join(env.source, "legacy.bin"), LEGACY);
    const mounted = await env.mount("migrate", ["--after-transfer", "delete"]);
    try {
      const report = await statusOf(env);
      assert.equal(report.mode.afterTransfer, "delete");
      assert.equal(report.mode.writes, "riak+local", "the rest of migrate stays");
      assert.ok(LEGACY.equals(await fsp.readFile(join(env.mountpoint, "legacy.bin"))));
      await eventually("the local copy deleted", () => missing(join(env.source, "legacy.bin")));
      assert.ok(LEGACY.equals(await env.store.readFile("legacy.bin")));
      assert.ok(LEGACY.equals(await fsp.readFile(join(env.mountpoint, "legacy.bin"))));
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("migrate with --after-transfer delete: a written file fsync'd after its close goes too", async () => {
  await withOverlayEnv(async (env) => {
    const mounted = await env.mount("migrate", ["--after-transfer", "delete"]);
    const written = join(env.mountpoint, "written.txt");
    try {
      // Created while Riak answers; written and closed while it hangs, so the copy the close
      // queued is still on its way when `sync written.txt` (a read-only descriptor) comes.
      const writer = await fsp.open(written, "w");
      env.riak.pause();
      try {
        await writer.writeFile("through the mount");
        await writer.close();
        await eventually("the copy queued", async () => {
          return (await statusOf(env)).metrics.uploads.pending >= 1;
        });
        const reader = await fsp.open(written, "r");
        const synced = reader.sync().finally(() => reader.close());
        synced.catch(() => {});
        // Journaled, then queued at once: from here the queue decides what stands in for what.
        await eventually("the fsync's snapshot journaled", async () => {
          return (await fsp.readFile(join(env.spool, "journal"), "utf8")).includes('"snapshot"');
        });
        env.riak.resume();
        await synced;
      } finally {
        env.riak.resume();
      }
      // The snapshot stood in for the copy, which alone deletes the verified local copy.
      await eventually("the local copy deleted", () => missing(join(env.source, "written.txt")));
      assert.equal((await env.store.readFile("written.txt")).toString(), "through the mount");
      assert.equal(await fsp.readFile(written, "utf8"), "through the mount");
    } finally {
      await env.unmount(mounted);
    }
  });
});

for (const preset of ["shadow", "migrate"]) {
  Deno.test(`${preset}: fsync through a read-only descriptor (sync FILE) while another holds the file open for writing answers once Riak holds what was written`, async () => {
    await withOverlayEnv(async (env) => {
      const mounted = await env.mount(preset);
      const path = join(env.mountpoint, "open.txt");
      try {
        const writer = await fsp.open(path, "w");
        try {
          await writer.writeFile("written, not closed yet");
          const reader = await fsp.open(path, "r");
          try {
            await reader.sync();
          } finally {
            await reader.close();
          }
          assert.ok(await env.store.tryStat("open.txt"), "in Riak at fsync");
          assert.equal(
            (await env.store.readFile("open.txt")).toString(),
            "written, not closed yet",
          );
        } finally {
          await writer.close();
        }
      } finally {
        await env.unmount(mounted);
      }
    });
  });
}

Deno.test("migrate: fsync through a descriptor reading Riak's copy while another holds the file open for writing in SOURCE answers once Riak holds what was written", async () => {
  await withOverlayEnv(async (env) => {
    await env.store.writeFile("r.txt", Buffer.from("Riak's copy"), { mode: 0o644 });
    const mounted = await env.mount("migrate");
    const path = join(env.mountpoint, "r.txt");
    try {
      const reader = await fsp.open(path, "r");
      try {
        const writer = await fsp.open(path, "r+");
        try {
          await writer.write(Buffer.from("written"), 0, 7, 0);
          await reader.sync();
          assert.equal((await env.store.readFile("r.txt")).toString(), "writtencopy");
        } finally {
          await writer.close();
        }
      } finally {
        await reader.close();
      }
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain: a source file a daemon holds open for writing is copied on read but kept, and its later lines reach Riak by the next pre-warm once it is closed", async () => {
  await withOverlayEnv(async (env) => {
    const log = join(env.source, "held.log");
    await fsp.writeFile(log, "line 0\n");
    // This test process is the daemon, started before the mount, writing beneath it.
    const daemon = await fsp.open(log, "a");
    let open = true;
    const mounted = await env.mount("drain");
    const kept = async () => (await statusOf(env)).metrics.localDeletion;
    try {
      assert.equal(await fsp.readFile(join(env.mountpoint, "held.log"), "utf8"), "line 0\n");
      await eventually("the local copy kept", async () => (await kept()).kept === 1);
      await daemon.appendFile("line 1\n");
      await daemon.close();
      open = false;
      assert.equal(await fsp.readFile(log, "utf8"), "line 0\nline 1\n", "nothing lost");
      // The mount serves Riak's copy; the next pre-warm takes the newer local one there.
      const flags = ["--riak", env.riak.nodes.join(","), "--bucket", env.bucket];
      const stateDir = join(env.base, "state");
      const drain = await runRiakfs(
        ["prewarm", "--delete-local", ...flags, "--state-dir", stateDir, env.source],
      );
      assert.equal(drain.code, 0, drain.stdout + drain.stderr);
      assert.equal(await missing(log), true);
      assert.equal((await env.store.readFile("held.log")).toString(), "line 0\nline 1\n");
      assert.deepEqual(await kept(), { deleted: 0, kept: 1 });
    } finally {
      if (open) await daemon.close();
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain with --delete-quiet-period: a source file changed lately is copied on read but kept", async () => {
  await withOverlayEnv(async (env) => {
    await fsp.writeFile(join(env.source, "fresh.log"), "just written\n");
    const mounted = await env.mount("drain", ["--delete-quiet-period", "3600"]);
    try {
      assert.equal(await fsp.readFile(join(env.mountpoint, "fresh.log"), "utf8"), "just written\n");
      await eventually(
        "the local copy kept",
        async () => (await statusOf(env)).metrics.localDeletion.kept === 1,
      );
      assert.equal(await missing(join(env.source, "fresh.log")), false);
      assert.equal((await env.store.readFile("fresh.log")).toString(), "just written\n");
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain: a file a deletion killed halfway left set aside is put back by a listing, one whose name is taken stays hidden", async () => {
  await withOverlayEnv(async (env) => {
    const docs = join(env.source, "docs");
    // A private name of its own, and (a name too long for that) a private directory.
    const takenName = join(docs, ".riakfs-deleting.ba9876543210");
    await fsp.mkdir(takenName, { recursive: true });
    await fsp.writeFile(join(docs, ".riakfs-deleting.0123456789ab.report.txt"), "saved last\n");
    await fsp.writeFile(join(takenName, "notes.txt"), "older\n");
    await fsp.writeFile(join(docs, "notes.txt"), "newer\n");
    const mounted = await env.mount("drain");
    try {
      const listed = await fsp.readdir(join(env.mountpoint, "docs"));
      assert.deepEqual(listed.sort(), ["notes.txt", "report.txt"]);
      await assert.rejects(
        fsp.lstat(join(env.mountpoint, "docs", ".riakfs-deleting.ba9876543210")),
        { code: "ENOENT" },
      );
      const read = (name: string) => fsp.readFile(join(env.mountpoint, "docs", name), "utf8");
      assert.equal(await read("report.txt"), "saved last\n");
      assert.equal(await read("notes.txt"), "newer\n");
      await eventually(
        "both drained",
        async () => (await statusOf(env)).metrics.localDeletion.deleted === 2,
      );
      assert.equal((await env.store.readFile("docs/report.txt")).toString(), "saved last\n");
      assert.deepEqual(await fsp.readdir(docs), [".riakfs-deleting.ba9876543210"]);
      assert.equal(await fsp.readFile(join(takenName, "notes.txt"), "utf8"), "older\n");
    } finally {
      await env.unmount(mounted);
    }
  });
});
