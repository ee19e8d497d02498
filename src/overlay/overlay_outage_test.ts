/**
 * A long Riak outage under a working mount, as operators live through it (a maintenance
 * window, a partition of minutes), made short here but structurally the same: the cached
 * answers of before the outage have expired by the time the application comes back to them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errno, type FileSystem, FuseError, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import {
  eventually,
  isFuseError,
  listThrough,
  LONG_AGO_MS,
  lookupPath,
  outageNoticed,
  type OverlayFixture,
  readThrough,
  type RequestHold,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";
import { Store } from "../store/store.ts";
import { UploadQueue } from "./upload_queue.ts";
import { isOutageError } from "./health.ts";

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: during an outage new files can be made in a directory the mount made and wrote into`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime }) => {
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "app", 0o755, 0o022);
        await writeThrough(fs, "/app/before.txt", Buffer.from("before"));
        // Its upload and the write of the directory's new mtime (which drops the cached
        // stat of the directory) are done.
        assert.equal(await runtime.settle(10_000), 0);
        clock += LONG_AGO_MS;
        await whilePaused(riak, async () => {
          await writeThrough(fs, "/app/during.txt", Buffer.from("during"));
          assert.deepEqual(await readThrough(fs, "/app/during.txt"), Buffer.from("during"));
          // Listings degrade to local where there is a local side (riak's cannot).
          if (preset === "drain") {
            assert.ok((await listThrough(fs, "/app")).includes("during.txt"));
          }
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/app/during.txt")).toString(), "during");
        assert.equal((await store.readFile("/app/before.txt")).toString(), "before");
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: restarted during an outage, the files its journal holds are read from the spool`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, restart }) => {
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "app", 0o755, 0o022);
        await writeThrough(fs, "/app/before.txt", Buffer.from("before"));
        assert.equal(await runtime.settle(10_000), 0);
        const again = await whilePaused(riak, async () => {
          await writeThrough(fs, "/app/during.txt", Buffer.from("during"));
          // Stopped (killed, or unmounted with its drain timing out) and mounted again, Riak
          // still away: the new mount never saw /app, but its journal holds a file in it.
          await runtime.stop(0);
          clock += LONG_AGO_MS;
          const again = await restart({});
          assert.equal(again.pendingUploads(), 1);
          const fsAgain = again.fileSystem;
          assert.deepEqual(await readThrough(fsAgain, "/app/during.txt"), Buffer.from("during"));
          await writeThrough(fsAgain, "/app/after-restart.txt", Buffer.from("after"));
          return again;
        });
        assert.equal(await again.settle(10_000), 0);
        assert.equal((await store.readFile("/app/during.txt")).toString(), "during");
        assert.equal((await store.readFile("/app/after-restart.txt")).toString(), "after");
        assert.equal((await store.readFile("/app/before.txt")).toString(), "before");
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}

function isNotFound(error: unknown): boolean {
  return error instanceof FuseError && error.errno === Errno.ENOENT;
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file saved during an outage over one only Riak holds (its stat still fresh) ends with the new bytes there, the temporary name gone`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines }) => {
        await writeThrough(fs, "/doc.txt", Buffer.from("old"));
        assert.equal(await runtime.settle(10_000), 0);
        await lookupPath(fs, "/doc.txt"); // Riak's stat of it, fresh (the clock stands still).
        await whilePaused(riak, async () => {
          // The outage found out: a name the mount never looked at.
          await outageNoticed(fs, logLines);
          await writeThrough(fs, "/doc.txt.tmp", Buffer.from("new bytes"));
          const root = await lookupPath(fs, "/");
          await fs.rename!(ROOT_CTX, root, "doc.txt.tmp", root, "doc.txt", 0);
          assert.deepEqual(await readThrough(fs, "/doc.txt"), Buffer.from("new bytes"));
          await assert.rejects(lookupPath(fs, "/doc.txt.tmp"), isNotFound);
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/doc.txt")).toString(), "new bytes");
        const names = [];
        for await (const entry of store.list("/")) names.push(entry.name.toString());
        assert.deepEqual(names, ["doc.txt"], "no temporary name, nothing set aside");
      },
      { riakReadTimeout: "300" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file renamed as Riak comes back, its upload landing between the rename's look at it and its journal line, is kept under its old name, the rename refused`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines }) => {
        const submitTogether = UploadQueue.prototype.submitTogether;
        try {
          await whilePaused(riak, async () => {
            await outageNoticed(fs, logLines);
            await writeThrough(fs, "/a", Buffer.from("the only copy"));
            // The rename looked at /a's upload, pending; Riak answers again before the rename
            // journals its line, and the upload lands (its staged file removed with it).
            UploadQueue.prototype.submitTogether = async function (entries) {
              UploadQueue.prototype.submitTogether = submitTogether;
              riak.faults.resume();
              this.nudge();
              await eventually("the upload landed", () => !this.hasPending("/a"));
              return await submitTogether.call(this, entries);
            };
            // Refused (EIO), the file stays under its old name, where it landed.
            await assert.rejects(
              fs.rename!(ROOT_CTX, ROOT_NODE_ID, "a", ROOT_NODE_ID, "b", 0),
              /landed meanwhile/,
            );
          });
        } finally {
          UploadQueue.prototype.submitTogether = submitTogether;
        }
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/a")).toString(), "the only copy");
        assert.equal(await store.tryStat("/b"), undefined);
      },
      { riakReadTimeout: "300" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

const O_WRONLY = 1;
const O_RDWR = 2;

/**
 * Opens `path` with `flags`, runs `beforeOutage`, then `body` while Riak is paused and its
 * outage noticed (a lookup failed, the verdict logged), and releases it once Riak is back.
 */
async function openThroughOutage(
  fixture: { fs: FileSystem; riak: Parameters<typeof whilePaused>[0]; logLines: string[] },
  path: string,
  flags: number,
  body: (node: number, fh: number) => Promise<void>,
  beforeOutage?: (node: number, fh: number) => Promise<void>,
): Promise<void> {
  const { fs, riak, logLines } = fixture;
  const node = await lookupPath(fs, path);
  const { fh } = await fs.open!(ROOT_CTX, node, flags);
  try {
    await beforeOutage?.(node, fh);
    await whilePaused(riak, async () => {
      await outageNoticed(fs, logLines);
      await body(node, fh);
    });
  } finally {
    await fs.release!(ROOT_CTX, node, fh, 0);
  }
}

/**
 * Runs `body` on a `preset` mount (Riak's read timeout 300 ms, a clock that stands still) where
 * `/doc.txt` was written through the mount and its upload landed: a file only Riak holds, at
 * the version the mount saw.
 */
function withUploadedDoc(
  preset: string,
  body: (fixture: OverlayFixture) => Promise<void>,
): Promise<void> {
  return withOverlay(
    preset,
    async (fixture) => {
      await writeThrough(fixture.fs, "/doc.txt", Buffer.from("document"));
      assert.equal(await fixture.runtime.settle(10_000), 0);
      await body(fixture);
    },
    { riakReadTimeout: "300" },
    { now: () => 1_700_000_000_000 },
  );
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file open for writing, not written, renamed during an outage reaches Riak under its new name`, async () => {
    await withUploadedDoc(preset, async (fixture) => {
      const { fs, store, runtime } = fixture;
      const root = await lookupPath(fs, "/");
      await openThroughOutage(fixture, "/doc.txt", O_RDWR, async (node, fh) => {
        assert.equal((await fs.read!(ROOT_CTX, node, fh, 0, 100)).toString(), "document");
        await fs.rename!(ROOT_CTX, root, "doc.txt", root, "renamed.txt", 0);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/renamed.txt")).toString(), "document");
      assert.equal(await store.tryStat("/doc.txt"), undefined);
    });
  });
}

for (const [preset, legacy] of [["drain", false], ["drain", true], ["riak", false]] as const) {
  Deno.test(`${preset}: a ${legacy ? "legacy " : ""}file open for writing, renamed during an outage, is in Riak under its new name after the mount is killed before the file's close and mounted again`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines, restart, source }) => {
        if (legacy) await writeFile(join(source, "doc.txt"), "document");
        else await writeThrough(fs, "/doc.txt", Buffer.from("document"));
        assert.equal(await runtime.settle(10_000), 0);
        const node = await lookupPath(fs, "/doc.txt");
        const { fh } = await fs.open!(ROOT_CTX, node, O_RDWR);
        const again = await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          assert.equal((await fs.read!(ROOT_CTX, node, fh, 0, 100)).toString(), "document");
          await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", ROOT_NODE_ID, "renamed.txt", 0);
          // Killed: the file is never closed, its session never committed at close.
          await runtime.stop(0);
          return await restart({});
        });
        assert.equal(await again.settle(10_000), 0);
        assert.equal((await store.readFile("/renamed.txt")).toString(), "document");
        assert.equal(await store.tryStat("/doc.txt"), undefined);
      },
      { riakReadTimeout: "300" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file open for writing, closed while its rename during an outage looks at it, reaches Riak under its new name`, async () => {
    await withUploadedDoc(preset, async ({ fs, store, riak, runtime, logLines }) => {
      const node = await lookupPath(fs, "/doc.txt");
      const { fh } = await fs.open!(ROOT_CTX, node, O_RDWR);
      await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        assert.equal((await fs.read!(ROOT_CTX, node, fh, 0, 100)).toString(), "document");
        // The rename finds the session, then waits its turn behind the close, which ends it.
        await Promise.all([
          fs.rename!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", ROOT_NODE_ID, "renamed.txt", 0),
          fs.release!(ROOT_CTX, node, fh, 0),
        ]);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/renamed.txt")).toString(), "document");
      assert.equal(await store.tryStat("/doc.txt"), undefined);
      assert.equal((await readThrough(fs, "/renamed.txt")).toString(), "document");
    });
  });
}

Deno.test("drain: a legacy file open for writing, not written, renamed during an outage reaches Riak under its new name, its local copy gone", async () => {
  await withOverlay(
    "drain",
    async (fixture) => {
      const { fs, store, runtime, source } = fixture;
      await writeFile(join(source, "legacy.txt"), "legacy bytes");
      const root = await lookupPath(fs, "/");
      await openThroughOutage(fixture, "/legacy.txt", O_WRONLY, async () => {
        await fs.rename!(ROOT_CTX, root, "legacy.txt", root, "moved.txt", 0);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/moved.txt")).toString(), "legacy bytes");
      assert.equal(await store.tryStat("/legacy.txt"), undefined);
      await assert.rejects(stat(join(source, "legacy.txt")), { code: "ENOENT" });
    },
    { riakReadTimeout: "300" },
    { now: () => 1_700_000_000_000 },
  );
});

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: during an outage, long after their stats expired, files and an empty directory only Riak holds that the mount saw are removed and renamed at once, and Riak follows`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines }) => {
        await writeThrough(fs, "/seen.txt", Buffer.from("seen"));
        await writeThrough(fs, "/renamed.txt", Buffer.from("renamed"));
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "d", 0o755, 0o022);
        await store.writeFile("/other.txt", Buffer.from("another host's"));
        assert.equal(await runtime.settle(10_000), 0);
        clock += LONG_AGO_MS;
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          // Shown as last seen, so that the kernel can remove it; its bytes need Riak.
          const node = await lookupPath(fs, "/seen.txt");
          assert.equal((await fs.getattr!(ROOT_CTX, node, undefined)).attr.size, 4);
          await assert.rejects(fs.open!(ROOT_CTX, node, 1), isFuseError(Errno.EIO));
          await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "seen.txt");
          await assert.rejects(lookupPath(fs, "/seen.txt"), isNotFound);
          await fs.rmdir!(ROOT_CTX, ROOT_NODE_ID, "d");
          await assert.rejects(lookupPath(fs, "/d"), isNotFound);
          await lookupPath(fs, "/renamed.txt");
          await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "renamed.txt", ROOT_NODE_ID, "moved.txt", 0);
          await assert.rejects(lookupPath(fs, "/renamed.txt"), isNotFound);
          const moved = await lookupPath(fs, "/moved.txt");
          assert.equal((await fs.getattr!(ROOT_CTX, moved, undefined)).attr.size, 7);
          // A name the mount never saw: Riak's state of it is unknown, so it looks absent.
          await assert.rejects(lookupPath(fs, "/other.txt"), isNotFound);
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/seen.txt"), undefined);
        assert.equal(await store.tryStat("/d"), undefined);
        assert.equal((await store.readFile("/moved.txt")).toString(), "renamed");
        const names = [];
        for await (const entry of store.list("/")) names.push(entry.name.toString());
        assert.deepEqual(names.sort(), ["moved.txt", "other.txt"]);
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}

/**
 * Lists `path` through `fs` with Riak's listing of it read whole first and held until the
 * returned `finish()`: its shards were read, the kernel has not asked for the rest yet.
 */
async function listingHeldAfterItsRead(fs: FileSystem, path: string) {
  const list = Store.prototype.list;
  let read!: () => void;
  const namesRead = new Promise<void>((resolve) => read = resolve);
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  let listing: Promise<string[]>;
  try {
    Store.prototype.list = async function* (this: Store, ...args: Parameters<Store["list"]>) {
      const entries = [];
      for await (const entry of list.apply(this, args)) entries.push(entry);
      if (`/${String(args[0]).replace(/^\//, "")}` === path) {
        read();
        await finished;
      }
      yield* entries;
    } as Store["list"];
    listing = listThrough(fs, path);
    await namesRead;
  } finally {
    Store.prototype.list = list;
  }
  return { listing, finish };
}

for (const made of ["file", "directory"]) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a ${made} the mount made in Riak while a listing of its directory was read is not lost from what the listing holds: rmdir of the directory during an outage is refused`, async () => {
      await withOverlay(
        preset,
        async ({ fs, store, riak, runtime, logLines }) => {
          await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "d", 0o755, 0o022);
          await writeThrough(fs, "/d/x", Buffer.from("x"));
          assert.equal(await runtime.settle(10_000), 0);
          const { listing, finish } = await listingHeldAfterItsRead(fs, "/d");
          // Lands after the listing's shards were read, before the listing ends.
          const name = made === "file" ? "f" : "sub";
          if (made === "file") await writeThrough(fs, "/d/f", Buffer.from("f"));
          else await fs.mkdir!(ROOT_CTX, await lookupPath(fs, "/d"), "sub", 0o755, 0o022);
          assert.equal(await runtime.settle(10_000), 0);
          finish();
          assert.deepEqual(await listing, ["x"]);
          await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/d"), "x");
          assert.equal(await runtime.settle(10_000), 0);
          await whilePaused(riak, async () => {
            await outageNoticed(fs, logLines);
            // Riak holds /d/f (or /d/sub): the directory is not empty, whatever else is known.
            await assert.rejects(fs.rmdir!(ROOT_CTX, ROOT_NODE_ID, "d"));
            await lookupPath(fs, "/d");
          });
          assert.equal(await runtime.settle(10_000), 0);
          assert.notEqual(await store.tryStat(`/d/${name}`), undefined);
          assert.deepEqual(await listThrough(fs, "/d"), [name]);
        },
        { riakReadTimeout: "300" },
        { now: () => 1_700_000_000_000 },
      );
    });
  }
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: during an outage a directory only Riak holds, seen by the mount and never listed, answers EIO to its listing and its rmdir (not ENOENT), and keeps its files`, async () => {
    let clock = Date.now();
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines, source }) => {
        await store.mkdir("/d");
        await store.writeFile("/d/f", Buffer.from("another host's"));
        if (preset === "drain") await mkdir(join(source, "local"));
        if (preset === "drain") await writeFile(join(source, "local/a.txt"), "legacy");
        await lookupPath(fs, "/d"); // Seen (stat), never listed.
        assert.equal(await runtime.settle(10_000), 0);
        clock += LONG_AGO_MS;
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          const node = await lookupPath(fs, "/d");
          assert.equal(
            (await fs.getattr!(ROOT_CTX, node, undefined)).attr.mode & 0o170000,
            0o040000,
          );
          await assert.rejects(listThrough(fs, "/d"), answersEio);
          await assert.rejects(fs.rmdir!(ROOT_CTX, ROOT_NODE_ID, "d"), answersEio);
          // What a listing can still answer: a directory the source holds (drain), one made
          // during the outage (what is on its way into it); a name never seen looks absent.
          if (preset === "drain") assert.deepEqual(await listThrough(fs, "/local"), ["a.txt"]);
          await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "new", 0o755, 0o022);
          assert.deepEqual(await listThrough(fs, "/new"), []);
          await writeThrough(fs, "/new/x", Buffer.from("x"));
          assert.deepEqual(await listThrough(fs, "/new"), ["x"]);
          await assert.rejects(lookupPath(fs, "/never"), isNotFound);
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/d/f")).toString(), "another host's");
        assert.deepEqual(await listThrough(fs, "/d"), ["f"]);
        assert.equal((await store.readFile("/new/x")).toString(), "x");
      },
      { riakReadTimeout: "300" },
      { now: () => clock },
    );
  });
}

/** What FUSE answers EIO for: an error of that errno, or Riak found away. */
function answersEio(error: unknown): boolean {
  return (error instanceof FuseError && error.errno === Errno.EIO) || isOutageError(error);
}

for (const [change, written] of [["rm", false], ["rm", true], ["mv", false]] as const) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file only Riak holds, open for writing${written ? " and written" : ""}, ${change === "rm" ? "removed" : "renamed"} during an outage goes from its name at the version the mount opened: one written elsewhere meanwhile is set aside`, async () => {
      await withUploadedDoc(preset, async (fixture) => {
        const { fs, store, runtime, logLines } = fixture;
        await openThroughOutage(fixture, "/doc.txt", O_RDWR, async () => {
          if (change === "rm") await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
          else await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", ROOT_NODE_ID, "moved.txt", 0);
          await assert.rejects(lookupPath(fs, "/doc.txt"), isNotFound);
        }, async (node, fh) => {
          // Staged (Riak's bytes copied into the spool), not committed.
          if (written) await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("D"));
          // Another host writes the name while it is open here.
          await store.writeFile("/doc.txt", Buffer.from("newer, from another host"));
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
        const names = await listThrough(fs, "/");
        const aside = names.filter((name) => name !== "moved.txt");
        assert.equal(aside.length, 1, `${names}`);
        assert.match(aside[0], /^doc\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
        assert.equal(
          (await store.readFile(`/${aside[0]}`)).toString(),
          "newer, from another host",
        );
        assert.ok(
          logLines.some((line) => line.includes("under a name removed during an outage")),
        );
        if (change === "mv") {
          assert.equal((await store.readFile("/moved.txt")).toString(), "document");
        }
      });
    });
  }
}

/** 2001-09-09T01:46:40Z, as `touch -d` sets it. */
const OLD_TIME = { sec: 1_000_000_000, nsec: 0 };

// A touch through the handle changes Riak's metadata alone (nothing written, or nothing since
// an fsync whose upload landed): the version the removal removes is the touched one.
for (const steps of [["fsync"], ["touch"], ["fsync", "touch"]]) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file open for writing (${steps.join(", then ")} through it), removed during an outage, goes at the version Riak holds: nothing is set aside`, async () => {
      await withUploadedDoc(preset, async (fixture) => {
        const { fs, store, runtime } = fixture;
        await openThroughOutage(fixture, "/doc.txt", O_RDWR, async () => {
          await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
        }, async (node, fh) => {
          if (steps.includes("fsync")) {
            await fs.write!(ROOT_CTX, node, fh, 8, Buffer.from(", fsynced"));
            await fs.fsync!(ROOT_CTX, node, fh, false);
            assert.equal(await runtime.settle(10_000), 0);
            assert.equal((await store.readFile("/doc.txt")).toString(), "document, fsynced");
          }
          if (steps.includes("touch")) {
            const uploaded = runtime.metrics.snapshot().uploads.uploaded;
            await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
            assert.equal(await runtime.settle(10_000), 0);
            assert.equal(runtime.metrics.snapshot().uploads.uploaded, uploaded, "no upload");
            assert.equal((await store.stat("/doc.txt")).mtimeNs, 1_000_000_000_000_000_000n);
          }
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.deepEqual(await listThrough(fs, "/"), [], "gone, nothing set aside");
      });
    });
  }
}

// A touch through the handle goes to the file Riak holds now, which may be another host's
// version of the same size: the session's idea of Riak's version moves with the touch only
// where Riak held the version the session opened.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file open for writing, written elsewhere (same size) and touched through the handle, removed during an outage: the other host's version is set aside, not removed`, async () => {
    await withUploadedDoc(preset, async (fixture) => {
      const { fs, store, runtime } = fixture;
      await openThroughOutage(fixture, "/doc.txt", O_RDWR, async () => {
        await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
      }, async (node, fh) => {
        await store.writeFile("/doc.txt", Buffer.from("DOCUMENT"));
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal((await store.stat("/doc.txt")).mtimeNs, 1_000_000_000_000_000_000n);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
      const aside = await listThrough(fs, "/");
      assert.equal(aside.length, 1, `${aside}`);
      assert.match(aside[0], /^doc\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
      assert.equal((await store.readFile(`/${aside[0]}`)).toString(), "DOCUMENT");
    });
  });
}

// An upload journaled while an earlier one of the same file was on its way goes over what
// that one went over; once that one landed, Riak holds the mount's own bytes, which a removal
// during an outage removes, and anything else there is another host's, set aside.
for (const elsewhere of [false, true]) {
  for (const preset of ["drain", "riak"]) {
    const what = elsewhere
      ? "a new file saved twice, then written elsewhere after the first upload landed"
      : "a file saved twice";
    Deno.test(`${preset}: ${what}, the second upload not landed when Riak went away, removed during the outage: ${elsewhere ? "the other host's version is set aside" : "nothing is set aside"}`, async () => {
      await withOverlay(
        preset,
        async (fixture) => {
          const { fs, store, riak, runtime, logLines, holdPuts } = fixture;
          if (!elsewhere) {
            await writeThrough(fs, "/doc.txt", Buffer.from("document"));
            assert.equal(await runtime.settle(10_000), 0);
          }
          const first = holdPuts();
          await writeThrough(fs, "/doc.txt", Buffer.from("version one"));
          await first.reached;
          // Journaled while the first upload runs: it waits for it.
          await writeThrough(fs, "/doc.txt", Buffer.from("version two, never uploaded"));
          first.release();
          // Installed after the release, which would take it away too.
          const second = holdPuts();
          await second.reached; // The first upload ended: the second's put is held.
          assert.equal((await store.readFile("/doc.txt")).toString(), "version one");
          if (elsewhere) await store.writeFile("/doc.txt", Buffer.from("another host's"));
          // Riak goes away (refused: the held put is never applied).
          await riak.faults.stopAccepting();
          riak.faults.dropConnections();
          try {
            await outageNoticed(fs, logLines);
            await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
            second.release();
          } finally {
            await riak.faults.resumeAccepting();
          }
          assert.equal(await runtime.settle(10_000), 0);
          assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
          const aside = await listThrough(fs, "/");
          assert.equal(aside.length, elsewhere ? 1 : 0, `${aside}`);
          if (elsewhere) {
            assert.match(aside[0], /^doc\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
            assert.equal((await store.readFile(`/${aside[0]}`)).toString(), "another host's");
          }
        },
        { riakReadTimeout: "300" },
        { now: () => 1_700_000_000_000 },
      );
    });
  }
}

// A chmod or utimens by path changes Riak's file where the mount saw it: the mount knows the
// version it made, which a removal during an outage removes.
for (const change of ["utimens", "chmod"] as const) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file only Riak holds, changed by path (${change}), removed during an outage: nothing is set aside`, async () => {
      await withUploadedDoc(preset, async (fixture) => {
        const { fs, store, runtime, riak, logLines } = fixture;
        const node = await lookupPath(fs, "/doc.txt");
        await fs.setattr!(
          ROOT_CTX,
          node,
          change === "utimens" ? { mtime: OLD_TIME } : { mode: 0o600 },
        );
        const stored = await store.stat("/doc.txt");
        if (change === "utimens") assert.equal(stored.mtimeNs, 1_000_000_000_000_000_000n);
        else assert.equal(stored.mode, 0o600);
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          // Shown as last seen: with the change.
          const { attr } = await fs.getattr!(
            ROOT_CTX,
            await lookupPath(fs, "/doc.txt"),
            undefined,
          );
          if (change === "chmod") assert.equal(attr.mode & 0o7777, 0o600);
          else assert.equal(attr.mtime.sec, OLD_TIME.sec);
          await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.deepEqual(await listThrough(fs, "/"), [], "gone, nothing set aside");
        assert.equal(await store.tryStat("/doc.txt"), undefined);
      });
    });
  }
}

/**
 * Writes `/blocker` through `fs` during an outage: with one upload at a time, its upload holds
 * the only slot, retried until Riak is back, and every upload queued after it waits unstarted
 * (no attempt of theirs in flight when Riak comes back, as most of a backlog waits).
 */
async function occupyTheUploadSlot(fs: FileSystem): Promise<void> {
  await writeThrough(fs, "/blocker", Buffer.from("blocker"));
}

/**
 * Writes `/doc.txt` through the mount (uploaded: seen in Riak), opens it for writing and
 * writes `written` at its start (Riak's bytes copied into the spool while Riak answers);
 * then another host writes the name while it is open here.
 */
async function writtenHereAndElsewhere(
  { fs, store, runtime }: OverlayFixture,
  written = "D",
): Promise<{ node: number; fh: number }> {
  await writeThrough(fs, "/doc.txt", Buffer.from("document"));
  assert.equal(await runtime.settle(10_000), 0);
  const node = await lookupPath(fs, "/doc.txt");
  const { fh } = await fs.open!(ROOT_CTX, node, O_RDWR);
  await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from(written));
  await store.writeFile("/doc.txt", Buffer.from("newer, from another host"));
  return { node, fh };
}

/**
 * Asserts that the root lists `names` (and `/blocker`) and beside them only the other host's
 * `/doc.txt` of {@link writtenHereAndElsewhere}, set aside under a conflict name.
 */
async function assertOnlySetAside(
  fs: FileSystem,
  store: OverlayFixture["store"],
  names: string[],
): Promise<void> {
  const listed = await listThrough(fs, "/");
  const aside = listed.filter((name) => !names.includes(name) && name !== "blocker");
  assert.equal(aside.length, 1, `${listed}`);
  assert.match(aside[0], /^doc\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  assert.equal((await store.readFile(`/${aside[0]}`)).toString(), "newer, from another host");
}

/**
 * During an outage: `/doc.txt` removed through the mount, or renamed to `/moved.txt` (`mv`);
 * with `rm after a restart`, after the mount was killed and mounted again (only its journal
 * knows then what the uploads pending go over). Resolves with the runtime serving then.
 */
async function docRemovedOrRenamed(
  { runtime, logLines, restart }: OverlayFixture,
  change: string,
): Promise<OverlayFixture["runtime"]> {
  let mounted = runtime;
  if (change === "rm after a restart") {
    await runtime.stop(0);
    logLines.length = 0; // The new mount finds the outage by itself.
    mounted = await restart({});
    await outageNoticed(mounted.fileSystem, logLines);
  }
  const { fileSystem } = mounted;
  if (change === "mv") {
    await fileSystem.rename!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", ROOT_NODE_ID, "moved.txt", 0);
  } else await fileSystem.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
  await assert.rejects(lookupPath(fileSystem, "/doc.txt"), isNotFound);
  return mounted;
}

for (const change of ["rm", "rm after a restart", "mv"] as const) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file written over the version the mount saw in Riak and closed during an outage, its upload pending, then ${change === "mv" ? "renamed" : change.replace("rm", "removed")}, goes from its name at that version: one written elsewhere meanwhile is set aside`, async () => {
      await withOverlay(
        preset,
        async (fixture) => {
          const { fs, store, riak, logLines } = fixture;
          const { node, fh } = await writtenHereAndElsewhere(fixture);
          const mounted = await whilePaused(riak, async () => {
            await outageNoticed(fs, logLines);
            await occupyTheUploadSlot(fs);
            await fs.release!(ROOT_CTX, node, fh, 0); // Its upload journaled, waiting.
            return await docRemovedOrRenamed(fixture, change);
          });
          assert.equal(await mounted.settle(10_000), 0);
          assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
          await assertOnlySetAside(mounted.fileSystem, store, change === "mv" ? ["moved.txt"] : []);
          if (change === "mv") {
            assert.equal((await store.readFile("/moved.txt")).toString(), "Document");
          }
        },
        { riakReadTimeout: "300", uploadConcurrency: "1" },
        { now: () => 1_700_000_000_000 },
      );
    });
  }
}

for (const target of ["open", "pending"] as const) {
  for (const renamed of ["written during the outage", "only Riak holds"] as const) {
    for (const preset of ["drain", "riak"]) {
      Deno.test(`${preset}: a file ${renamed} renamed during an outage over one ${target === "open" ? "open for writing" : "whose upload is pending"}, written over the version the mount saw in Riak, sets aside one written elsewhere meanwhile instead of going over it`, async () => {
        await withOverlay(
          preset,
          async (fixture) => {
            const { fs, store, riak, runtime, logLines } = fixture;
            const from = renamed === "only Riak holds" ? "other.txt" : "doc.txt.tmp";
            const bytes = `${from}'s bytes`;
            // Seen in Riak: uploaded through the mount.
            if (renamed === "only Riak holds") {
              await writeThrough(fs, `/${from}`, Buffer.from(bytes));
            }
            const { node, fh } = await writtenHereAndElsewhere(fixture);
            try {
              await whilePaused(riak, async () => {
                await outageNoticed(fs, logLines);
                await occupyTheUploadSlot(fs);
                if (target === "pending") await fs.release!(ROOT_CTX, node, fh, 0);
                // An editor's save: the new bytes under a temporary name, renamed into place.
                if (renamed !== "only Riak holds") {
                  await writeThrough(fs, `/${from}`, Buffer.from(bytes));
                }
                await fs.rename!(ROOT_CTX, ROOT_NODE_ID, from, ROOT_NODE_ID, "doc.txt", 0);
              });
            } finally {
              if (target === "open") await fs.release!(ROOT_CTX, node, fh, 0);
            }
            assert.equal(await runtime.settle(10_000), 0);
            assert.equal((await store.readFile("/doc.txt")).toString(), bytes);
            assert.equal(await store.tryStat(`/${from}`), undefined);
            await assertOnlySetAside(fs, store, ["doc.txt"]);
          },
          { riakReadTimeout: "300", uploadConcurrency: "1" },
          { now: () => 1_700_000_000_000 },
        );
      });
    }
  }
}

/**
 * Creates `/doc.txt` through the mount where Riak holds no file of the name (Riak says so)
 * and writes it, leaving it open (nothing committed); then another host makes the name in
 * Riak while it is open here.
 */
async function createdHereAndElsewhere(
  { fs, store }: OverlayFixture,
  content = "document",
): Promise<{ node: number; fh: number }> {
  const created = await fs.create!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", O_RDWR, 0o644, 0o022);
  const { nodeid: node } = created.entry;
  const { fh } = created.opened;
  await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from(content));
  await store.writeFile("/doc.txt", Buffer.from("newer, from another host"));
  return { node, fh };
}

for (const change of ["rm while open", "rm", "rm after a restart", "mv"] as const) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file created through the mount where Riak held none, ${change === "rm while open" ? "never closed" : "closed during an outage (its upload pending)"}, then ${change === "mv" ? "renamed" : change.replace("rm", "removed")} during the outage, takes only its own upload from Riak: one made under its name elsewhere meanwhile is set aside`, async () => {
      await withOverlay(
        preset,
        async (fixture) => {
          const { fs, store, riak, logLines } = fixture;
          const { node, fh } = await createdHereAndElsewhere(fixture);
          let released = false;
          let mounted: OverlayFixture["runtime"];
          try {
            mounted = await whilePaused(riak, async () => {
              await outageNoticed(fs, logLines);
              await occupyTheUploadSlot(fs);
              if (change !== "rm while open") {
                await fs.release!(ROOT_CTX, node, fh, 0); // Its upload journaled, waiting.
                released = true;
              }
              return await docRemovedOrRenamed(fixture, change);
            });
          } finally {
            if (!released) await fs.release!(ROOT_CTX, node, fh, 0);
          }
          assert.equal(await mounted.settle(10_000), 0);
          assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
          await assertOnlySetAside(mounted.fileSystem, store, change === "mv" ? ["moved.txt"] : []);
          assert.ok(
            logLines.some((line) => line.includes("under a name removed during an outage")),
          );
          if (change === "mv") {
            assert.equal((await store.readFile("/moved.txt")).toString(), "document");
          }
        },
        { riakReadTimeout: "300", uploadConcurrency: "1" },
        { now: () => 1_700_000_000_000 },
      );
    });
  }
}

for (const target of ["open", "pending"] as const) {
  for (const preset of ["drain", "riak"]) {
    Deno.test(`${preset}: a file renamed during an outage over one created through the mount where Riak held none, ${target === "open" ? "open for writing" : "its upload pending"}, sets aside one made under that name elsewhere meanwhile instead of going over it`, async () => {
      await withOverlay(
        preset,
        async (fixture) => {
          const { fs, store, riak, runtime, logLines } = fixture;
          const { node, fh } = await createdHereAndElsewhere(fixture);
          let released = false;
          try {
            await whilePaused(riak, async () => {
              await outageNoticed(fs, logLines);
              await occupyTheUploadSlot(fs);
              if (target === "pending") {
                await fs.release!(ROOT_CTX, node, fh, 0);
                released = true;
              }
              // An editor's save: the new bytes under a temporary name, renamed into place.
              await writeThrough(fs, "/doc.txt.tmp", Buffer.from("saved"));
              await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "doc.txt.tmp", ROOT_NODE_ID, "doc.txt", 0);
            });
          } finally {
            if (!released) await fs.release!(ROOT_CTX, node, fh, 0);
          }
          assert.equal(await runtime.settle(10_000), 0);
          assert.equal((await store.readFile("/doc.txt")).toString(), "saved");
          assert.equal(await store.tryStat("/doc.txt.tmp"), undefined);
          await assertOnlySetAside(fs, store, ["doc.txt"]);
        },
        { riakReadTimeout: "300", uploadConcurrency: "1" },
        { now: () => 1_700_000_000_000 },
      );
    });
  }
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file created through the mount where Riak held none, written again while its first upload ran and removed during an outage once that upload landed, goes from Riak with nothing set aside`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines, holdPuts }) => {
        const first = holdPuts();
        await writeThrough(fs, "/doc.txt", Buffer.from("first"));
        await first.reached; // Its upload runs: the next one of the file does not replace it.
        await writeThrough(fs, "/blocker", Buffer.from("blocker"));
        // Again, while Riak holds nothing of it: this upload too creates the file.
        const node = await lookupPath(fs, "/doc.txt");
        const { fh } = await fs.open!(ROOT_CTX, node, O_RDWR);
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("second, longer"));
        await fs.release!(ROOT_CTX, node, fh, 0);
        // The blocker's upload holds the only slot from now on, the second waits behind it;
        // the slot was the first upload's until it landed. (Released first: a release lets
        // go of whatever put is held next.)
        first.release();
        const blocker = holdPuts();
        await blocker.reached;
        assert.equal((await store.readFile("/doc.txt")).toString(), "first");
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          await fs.unlink!(ROOT_CTX, ROOT_NODE_ID, "doc.txt");
          blocker.release();
        });
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal(await store.tryStat("/doc.txt"), undefined, "the name is gone");
        assert.deepEqual(await listThrough(fs, "/"), ["blocker"], "nothing set aside");
      },
      { riakReadTimeout: "300", uploadConcurrency: "1" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

/**
 * A file created through the mount where Riak held none (`created`), or written over the
 * version it saw there (`written over`), with `content` (at least 8 bytes: all it holds);
 * then another host writes the name in Riak while it is open here.
 */
async function madeHereAndWrittenElsewhere(
  fixture: OverlayFixture,
  over: "created" | "written over",
  content: string,
): Promise<{ node: number; fh: number }> {
  return over === "created"
    ? await createdHereAndElsewhere(fixture, content)
    : await writtenHereAndElsewhere(fixture, content);
}

/** A chunk size well below the chunked variant's file: its upload is a manifest's put. */
const SMALL_CHUNKS = 1024;

// The upload journaled during the outage goes over only what the mount knew Riak held: the
// store's put with if_none_match (or over that version's vclock) finds another host's file,
// which it used to write over (a small file's look first found it, and went over it too).
for (const over of ["created", "written over"] as const) {
  for (const [ending, size] of [["", "small"], ["", "chunked"], ["killed", "small"]] as const) {
    for (const preset of ["drain", "riak"]) {
      Deno.test(`${preset}: a ${size} file ${over === "created" ? "created through the mount where Riak held none" : "written over the version the mount saw in Riak"} and closed during an outage${ending ? ", the mount killed and mounted again," : ""} sets aside once Riak is back the one another host wrote under its name meanwhile instead of going over it`, async () => {
        const content = size === "chunked" ? "ours ".repeat(SMALL_CHUNKS) : "our bytes";
        await withOverlay(
          preset,
          async (fixture) => {
            const { fs, store, riak, logLines, restart } = fixture;
            const { node, fh } = await madeHereAndWrittenElsewhere(fixture, over, content);
            let released = false;
            let mounted = fixture.runtime;
            try {
              mounted = await whilePaused(riak, async () => {
                await outageNoticed(fs, logLines);
                await occupyTheUploadSlot(fs);
                await fs.release!(ROOT_CTX, node, fh, 0); // Its upload journaled, waiting.
                released = true;
                if (!ending) return fixture.runtime;
                await fixture.runtime.stop(0);
                return await restart({});
              });
            } finally {
              if (!released) await fs.release!(ROOT_CTX, node, fh, 0);
            }
            assert.equal(await mounted.settle(10_000), 0);
            assert.equal((await store.readFile("/doc.txt")).toString(), content);
            await assertOnlySetAside(mounted.fileSystem, store, ["doc.txt"]);
            assert.ok(
              logLines.some((line) => line.includes("under a name written during an outage")),
            );
          },
          { riakReadTimeout: "300", uploadConcurrency: "1" },
          { now: () => 1_700_000_000_000 },
          { namespace: { chunkSize: SMALL_CHUNKS } },
        );
      });
    }
  }
}

// While Riak answers, a write through the mount goes over what another host wrote between
// the mount's look and its upload, as its removals and renames do then: the last writer's
// bytes win (nothing set aside), and the put costs nothing more.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file created through the mount where Riak held none and closed while Riak answers goes over the one another host made under its name meanwhile, nothing set aside`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, runtime } = fixture;
        const { node, fh } = await createdHereAndElsewhere(fixture, "our bytes");
        await fs.release!(ROOT_CTX, node, fh, 0);
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/doc.txt")).toString(), "our bytes");
        assert.deepEqual(await listThrough(fs, "/"), ["doc.txt"], "nothing set aside");
      },
      { riakReadTimeout: "300" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

/**
 * `/doc.txt` created through the mount where Riak held none (`created`), or written over the
 * version it saw there (`written over`), with `content` (at least 8 bytes: all it holds), and
 * closed while Riak answers, its upload's put held; then another host writes the name in Riak.
 * Resolves with the hold of that put, not released.
 */
async function pendingHereAndWrittenElsewhere(
  { fs, store, runtime, holdPuts }: OverlayFixture,
  over: "created" | "written over",
  content: string,
): Promise<RequestHold> {
  let node: number;
  let fh: number;
  if (over === "created") {
    const created = await fs.create!(ROOT_CTX, ROOT_NODE_ID, "doc.txt", O_RDWR, 0o644, 0o022);
    ({ nodeid: node } = created.entry);
    ({ fh } = created.opened);
  } else {
    await writeThrough(fs, "/doc.txt", Buffer.from("document"));
    assert.equal(await runtime.settle(10_000), 0);
    node = await lookupPath(fs, "/doc.txt");
    ({ fh } = await fs.open!(ROOT_CTX, node, O_RDWR));
  }
  await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from(content));
  const upload = holdPuts();
  await fs.release!(ROOT_CTX, node, fh, 0); // Journaled while Riak answers.
  await upload.reached;
  await store.writeFile("/doc.txt", Buffer.from("newer, from another host"));
  return upload;
}

// An upload journaled while Riak answers, still pending as an outage begins (its put fails
// with it), waits as long as one journaled during the outage: once Riak is back it goes over
// only what the mount knew Riak held, as those do. A file another host wrote meanwhile is set
// aside, also when the mount was killed during the outage and mounted again once Riak was
// back (only the journal says then that the upload waited out an outage).
for (const over of ["created", "written over"] as const) {
  for (const ending of ["", "killed"] as const) {
    for (const preset of ["drain", "riak"]) {
      Deno.test(`${preset}: a file ${over === "created" ? "created through the mount where Riak held none" : "written over the version the mount saw in Riak"} and closed while Riak answers, its upload failing as an outage begins${ending ? ", the mount killed and mounted again once Riak is back" : ""}, sets aside the one another host wrote under its name meanwhile instead of going over it`, async () => {
        await withOverlay(
          preset,
          async (fixture) => {
            const { fs, store, riak, logLines, restart } = fixture;
            const upload = await pendingHereAndWrittenElsewhere(fixture, over, "our bytes");
            let mounted = fixture.runtime;
            await riak.faults.stopAccepting();
            try {
              riak.faults.dropConnections();
              upload.release(); // Its put fails: Riak is away.
              await outageNoticed(fs, logLines);
              if (ending) await fixture.runtime.stop(0);
            } finally {
              await riak.faults.resumeAccepting();
            }
            const restartedAt = logLines.length;
            if (ending) {
              // Mounted again once Riak answers: the new mount sees no outage of its own.
              await answering(store);
              mounted = await restart({});
            }
            assert.equal(await mounted.settle(10_000), 0);
            if (ending) {
              const sinceRestart = logLines.slice(restartedAt);
              assert.ok(!sinceRestart.some((line) => line.includes("Riak unreachable")));
            }
            assert.equal((await store.readFile("/doc.txt")).toString(), "our bytes");
            await assertOnlySetAside(mounted.fileSystem, store, ["doc.txt"]);
            assert.ok(
              logLines.some((line) => line.includes("under a name written during an outage")),
            );
          },
          { riakReadTimeout: "300" },
          { now: () => 1_700_000_000_000 },
        );
      });
    }
  }
}

// Pending as the outage begins counts whether or not it was tried: one waiting for an upload
// slot meanwhile is first tried only once Riak is back, and still sets aside another host's.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file created through the mount where Riak held none and closed while Riak answers, its upload waiting for a slot as an outage begins, sets aside the one another host made under its name meanwhile instead of going over it`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, riak, runtime, logLines, holdPuts } = fixture;
        const blocker = holdPuts();
        await occupyTheUploadSlot(fs);
        await blocker.reached;
        const { node, fh } = await createdHereAndElsewhere(fixture, "our bytes");
        await fs.release!(ROOT_CTX, node, fh, 0); // Journaled while Riak answers; waiting.
        await riak.faults.stopAccepting();
        try {
          riak.faults.dropConnections();
          blocker.release(); // Its put fails: Riak is away.
          await outageNoticed(fs, logLines);
        } finally {
          await riak.faults.resumeAccepting();
        }
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/doc.txt")).toString(), "our bytes");
        await assertOnlySetAside(fs, store, ["doc.txt"]);
      },
      { riakReadTimeout: "300", uploadConcurrency: "1" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

// Replayed by a mount that starts during an outage, an upload its last run journaled while
// Riak answered waits it out as well: pending as that outage began, and marked so.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file created through the mount where Riak held none and closed while Riak answers, its upload left in the journal by a mount stopped before it ran and replayed by one started during an outage, sets aside the one another host made under its name meanwhile instead of going over it`, async () => {
    /** Whether a mount asking at its start finds Riak away (as its ping would). */
    let riakAway = false;
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, riak, holdPuts, restart } = fixture;
        const blocker = holdPuts();
        await occupyTheUploadSlot(fs);
        await blocker.reached;
        const { node, fh } = await createdHereAndElsewhere(fixture, "our bytes");
        await fs.release!(ROOT_CTX, node, fh, 0); // Journaled while Riak answers; waiting.
        // Stopped, its journal closed, with the blocker's put still held: no outage seen.
        await fixture.runtime.stop(0);
        let mounted;
        riakAway = true;
        await riak.faults.stopAccepting();
        try {
          riak.faults.dropConnections();
          blocker.release(); // Fails: never applied.
          mounted = await restart({});
        } finally {
          riakAway = false;
          await riak.faults.resumeAccepting();
        }
        assert.equal(await mounted.settle(10_000), 0);
        assert.equal((await store.readFile("/doc.txt")).toString(), "our bytes");
        await assertOnlySetAside(mounted.fileSystem, store, ["doc.txt"]);
        assert.ok(fixture.logLines.some((line) => line.includes("no Riak node answered")));
      },
      { riakReadTimeout: "300", uploadConcurrency: "1" },
      { now: () => 1_700_000_000_000, riakAnswers: () => Promise.resolve(!riakAway) },
    );
  });
}

/**
 * Resolves once `store`'s client reaches Riak again after an outage (its nodes come back as
 * their pings answer; until then each request fails at once).
 */
async function answering(store: OverlayFixture["store"]): Promise<void> {
  for (let tries = 0;; tries++) {
    try {
      await store.tryStat("/");
      return;
    } catch (error) {
      if (!isOutageError(error) || tries >= 2_000) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

// Without an outage the same upload, held as long, still goes over what another host wrote
// meanwhile (the last writer wins), and the journal says nothing more of it.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file created through the mount where Riak held none, its upload held while another host makes the name and landing with Riak answering all along, goes over that one, nothing set aside`, async () => {
    await withOverlay(
      preset,
      async (fixture) => {
        const { fs, store, runtime, spool } = fixture;
        const upload = await pendingHereAndWrittenElsewhere(fixture, "created", "our bytes");
        upload.release();
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("/doc.txt")).toString(), "our bytes");
        assert.deepEqual(await listThrough(fs, "/"), ["doc.txt"], "nothing set aside");
        const journal = await readFile(join(spool, "journal"), "utf8");
        assert.doesNotMatch(journal, /"away"/);
      },
      { riakReadTimeout: "300" },
      { now: () => 1_700_000_000_000 },
    );
  });
}

// A test restarting the mount while Riak is away counts on this: the stopped mount is gone
// as a process that exited is, and its upload still running went on beside the next mount's
// replay of the same journal once Riak was back (it landed a file under a name that replay
// was removing).
Deno.test("drain: an upload still running when the mount stops during an outage sends Riak nothing more once it is back", async () => {
  await withOverlay(
    "drain",
    async ({ fs, riak, runtime, logLines, holdPuts }) => {
      let put!: RequestHold;
      await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        // Its upload's first attempt waits for Riak's answer to its look.
        await writeThrough(fs, "/f.txt", Buffer.from("f"));
        await runtime.stop(0);
        put = holdPuts();
      });
      let raced = false;
      // Ended either way: refused by the stopped mount's client, or called off by its stop.
      const attemptFailed = () =>
        logLines.some((line) =>
          (line.includes("upload failed") || line.includes("upload called off")) &&
          line.includes('"/f.txt"')
        );
      const outcome = await Promise.race([
        put.reached.then(() => "the upload went on"),
        eventually("the upload's attempt ended", () => raced || attemptFailed()).then(() =>
          "the upload ended"
        ),
      ]);
      raced = true;
      put.release();
      assert.equal(outcome, "the upload ended");
    },
    { riakReadTimeout: "300" },
  );
});
