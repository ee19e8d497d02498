/**
 * Write sessions opened without O_TRUNC in the modes that stage writes (drain, riak) copy
 * the file's bytes into the spool only once something needs them (a read, a write, a
 * truncate to a size > 0, a commit): an open closed unused costs no copy, a truncate to 0
 * first needs none (`truncate -s 0` on the full disk), and what is copied later is the
 * file's bytes around every write. A change of attributes through such a session (`touch`)
 * goes where the file is, and copies and uploads nothing.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errno, type FileSystem, FuseError } from "../fuse/filesystem.ts";
import { seededBytes } from "../store/_test_support.ts";
import { isOutageError } from "./health.ts";
import {
  lookupPath,
  outageNoticed,
  type OverlayFixture,
  readThrough,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

const O_WRONLY = 1;
const O_RDWR = 2;
const O_APPEND = 0o2000;
const CHUNK_SIZE = 64 * 1024;
/** Sixteen chunks: copying it would cost sixteen gets. */
const BIG = 16 * CHUNK_SIZE;

/** `preset` with small chunks, so a copy of a file from Riak shows in the request count. */
function withSmallChunks(
  preset: string,
  body: (fixture: OverlayFixture) => Promise<void>,
  startOptions: Parameters<typeof withOverlay>[3] = {},
): Promise<void> {
  return withOverlay(preset, body, { riakReadTimeout: "300" }, startOptions, {
    namespace: { chunkSize: CHUNK_SIZE },
  });
}

/** The sizes of the files staged in `spool`. */
async function stagedSizes(spool: string): Promise<number[]> {
  const directory = join(spool, "staged");
  const names = await readdir(directory);
  return await Promise.all(names.map(async (name) => (await stat(join(directory, name))).size));
}

/** Opens `path` with `flags`, runs `body` with its node and handle, and releases it. */
async function withOpen<T>(
  fs: FileSystem,
  path: string,
  flags: number,
  body: (node: number, fh: number) => Promise<T>,
): Promise<T> {
  const node = await lookupPath(fs, path);
  const { fh } = await fs.open!(ROOT_CTX, node, flags);
  try {
    return await body(node, fh);
  } finally {
    await fs.release!(ROOT_CTX, node, fh, 0);
  }
}

/** What FUSE answers EIO for: an error of that errno, or Riak found away. */
function isEio(error: unknown): boolean {
  return (error instanceof FuseError && error.errno === Errno.EIO) || isOutageError(error);
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: an open for writing closed unused copies nothing and uploads nothing`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, spool, requests, resetCounts }) => {
      const content = seededBytes(40, BIG);
      await store.writeFile("/big.bin", content);
      const before = await store.stat("/big.bin");
      resetCounts();
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        assert.deepEqual(await stagedSizes(spool), [0], "an empty staged file");
        const { attr } = await fs.getattr!(ROOT_CTX, node, fh);
        assert.equal(attr.size, BIG, "stat shows the file's size meanwhile");
        assert.equal(attr.mtime.sec, Number(before.mtimeNs / 1_000_000_000n));
      });
      assert.ok(requests.gets <= 1, `the stat, no chunk: ${JSON.stringify(requests)}`);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded again");
      assert.deepEqual(await stagedSizes(spool), []);
      assert.equal((await store.stat("/big.bin")).mtimeNs, before.mtimeNs);
      assert.ok(content.equals(await store.readFile("/big.bin")));
    });
  });

  Deno.test(`${preset}: ftruncate to 0 as the first change copies nothing, and Riak ends with an empty file`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      await store.writeFile("/big.bin", seededBytes(41, BIG));
      resetCounts();
      // truncate -s 0: open(O_WRONLY | O_CREAT) without O_TRUNC, then ftruncate(fd, 0).
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        const { attr } = await fs.setattr!(ROOT_CTX, node, { size: 0, fh });
        assert.equal(attr.size, 0);
      });
      assert.ok(requests.gets <= 1, `the stat, no chunk: ${JSON.stringify(requests)}`);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/big.bin")).length, 0);
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 1);
    });
  });

  Deno.test(`${preset}: a write at an offset keeps the file's bytes around it, copied at the first write`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(42, BIG + 123);
      await store.writeFile("/big.bin", content);
      const middle = CHUNK_SIZE * 5 + 7;
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.write!(ROOT_CTX, node, fh, middle, Buffer.from("WRITTEN"));
        const read = await fs.read!(ROOT_CTX, node, fh, middle - 3, 13);
        const expected = Buffer.concat([
          content.subarray(middle - 3, middle),
          Buffer.from("WRITTEN"),
          content.subarray(middle + 7, middle + 10),
        ]);
        assert.ok(expected.equals(read), "the write, and the old bytes around it");
        // Two writes through the session: the second does not copy the file again.
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("HEAD"));
      });
      assert.equal(await runtime.settle(10_000), 0);
      const written = Buffer.from(content);
      written.write("WRITTEN", middle);
      written.write("HEAD", 0);
      assert.ok(written.equals(await store.readFile("/big.bin")));
    });
  });

  Deno.test(`${preset}: a file committed by an fsync, then truncated to 0 and written, holds what was written after`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      await store.writeFile("/big.bin", seededBytes(51, BIG));
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("first"));
        await fs.fsync!(ROOT_CTX, node, fh, false); // Its staged file is the queue's now.
        await fs.setattr!(ROOT_CTX, node, { size: 0, fh });
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("second"));
        assert.equal((await fs.getattr!(ROOT_CTX, node, fh)).attr.size, 6);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/big.bin")).toString(), "second");
    });
  });

  Deno.test(`${preset}: a read through an open for writing reads the file's bytes`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(43, BIG);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        const read = await fs.read!(ROOT_CTX, node, fh, 1000, 5000);
        assert.ok(content.subarray(1000, 6000).equals(read));
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "read, not written");
    });
  });

  Deno.test(`${preset}: a reader opened while a writer's bytes are not staged yet sees them, then the writer's write`, async () => {
    await withSmallChunks(preset, async ({ fs, store }) => {
      const content = seededBytes(44, BIG);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, writer) => {
        await withOpen(fs, "/big.bin", 0, async (_, reader) => {
          assert.ok(content.subarray(0, 10).equals(await fs.read!(ROOT_CTX, node, reader, 0, 10)));
          await fs.write!(ROOT_CTX, node, writer, 0, Buffer.from("NEW"));
          const after = await fs.read!(ROOT_CTX, node, reader, 0, 10);
          assert.equal(after.subarray(0, 3).toString(), "NEW", "one inode's descriptors");
          assert.ok(content.subarray(3, 10).equals(after.subarray(3)));
        });
      });
    });
  });

  Deno.test(`${preset}: a file unlinked while open for writing, nothing staged yet, stays readable through the handle`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(45, BIG);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/"), "big.bin");
        assert.equal(await store.tryStat("/big.bin"), undefined);
        assert.ok(content.subarray(0, 100).equals(await fs.read!(ROOT_CTX, node, fh, 0, 100)));
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("for nobody"));
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/big.bin"), undefined, "stays removed");
    });
  });

  Deno.test(`${preset}: a file renamed over while open for writing, nothing staged yet, keeps its bytes for the handle`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(46, BIG);
      await store.writeFile("/big.bin", content);
      await store.writeFile("/new.bin", Buffer.from("new"));
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        const root = await lookupPath(fs, "/");
        await fs.rename!(ROOT_CTX, root, "new.bin", root, "big.bin", 0);
        assert.ok(content.subarray(0, 100).equals(await fs.read!(ROOT_CTX, node, fh, 0, 100)));
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/big.bin")).toString(), "new");
    });
  });

  Deno.test(`${preset}: a file renamed while open for writing, nothing staged yet, is written under its new name`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(47, BIG);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        const root = await lookupPath(fs, "/");
        await fs.rename!(ROOT_CTX, root, "big.bin", root, "moved.bin", 0);
        await fs.write!(ROOT_CTX, node, fh, 10, Buffer.from("X"));
      });
      assert.equal(await runtime.settle(10_000), 0);
      const written = Buffer.from(content);
      written.write("X", 10);
      assert.ok(written.equals(await store.readFile("/moved.bin")));
      assert.equal(await store.tryStat("/big.bin"), undefined);
    });
  });

  Deno.test(`${preset}: a write whose copy Riak cannot give (an outage) fails with EIO, changing nothing; truncate to 0 works, and the handle writes again once Riak is back`, async () => {
    const clock = 1_700_000_000_000; // Stands still: Riak's stat of the files stays fresh.
    await withSmallChunks(preset, async ({ fs, store, riak, runtime }) => {
      const content = seededBytes(48, BIG);
      await store.writeFile("/big.bin", content);
      await store.writeFile("/emptied.bin", content);
      const big = await lookupPath(fs, "/big.bin");
      const emptied = await lookupPath(fs, "/emptied.bin");
      const writer = await fs.open!(ROOT_CTX, big, O_WRONLY);
      try {
        await whilePaused(riak, async () => {
          await assert.rejects(fs.write!(ROOT_CTX, big, writer.fh, 5, Buffer.from("X")), isEio);
          await withOpen(fs, "/emptied.bin", O_WRONLY, async (_, fh) => {
            await fs.setattr!(ROOT_CTX, emptied, { size: 0, fh });
          });
        });
        await fs.write!(ROOT_CTX, big, writer.fh, 5, Buffer.from("X"));
      } finally {
        await fs.release!(ROOT_CTX, big, writer.fh, 0);
      }
      assert.equal(await runtime.settle(10_000), 0);
      const written = Buffer.from(content);
      written.write("X", 5);
      assert.ok(written.equals(await store.readFile("/big.bin")));
      assert.equal((await store.readFile("/emptied.bin")).length, 0);
    }, { now: () => clock });
  });

  Deno.test(`${preset}: a file another host removed after the open, nothing staged yet, answers ESTALE to reads and writes, appended or not, and nothing is put back`, async () => {
    const clock = 1_700_000_000_000; // Stands still: the mount's stat of the file stays fresh.
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(54, BIG);
      await store.writeFile("/big.bin", content);
      const isStale = (error: unknown) =>
        error instanceof FuseError && error.errno === Errno.ESTALE;
      await withOpen(fs, "/big.bin", O_WRONLY | O_APPEND, async (node, fh) => {
        // Its stat, cached, still says the file is there: its copy finds it gone.
        await store.remove("/big.bin");
        await assert.rejects(fs.write!(ROOT_CTX, node, fh, BIG, Buffer.from("line")), isStale);
        await assert.rejects(fs.write!(ROOT_CTX, node, fh, 5, Buffer.from("X")), isStale);
        await assert.rejects(fs.read!(ROOT_CTX, node, fh, 0, 100), isStale);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/big.bin"), undefined, "stays removed");
    }, { now: () => clock });
  });

  Deno.test(`${preset}: a file only Riak holds, open for writing with nothing staged, renamed during an outage: EIO, nothing changes`, async () => {
    const clock = 1_700_000_000_000; // Stands still: Riak's stat of the file stays fresh.
    await withSmallChunks(preset, async ({ fs, store, riak, runtime, logLines }) => {
      const content = seededBytes(52, BIG);
      await store.writeFile("/big.bin", content);
      const root = await lookupPath(fs, "/");
      await withOpen(fs, "/big.bin", O_WRONLY, async () => {
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          await assert.rejects(
            fs.rename!(ROOT_CTX, root, "big.bin", root, "moved.bin", 0),
            isEio,
          );
        });
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.ok(content.equals(await store.readFile("/big.bin")));
      assert.equal(await store.tryStat("/moved.bin"), undefined);
    }, { now: () => clock });
  });
}

Deno.test("riak: a file only Riak holds, open for writing with nothing staged, removed during an outage: removed all the same, its handle's reads answer EIO", async () => {
  const clock = 1_700_000_000_000; // Stands still: Riak's stat of the file stays fresh.
  await withSmallChunks("riak", async ({ fs, store, riak, runtime, logLines }) => {
    await store.writeFile("/big.bin", seededBytes(53, BIG));
    await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
      await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/"), "big.bin");
        await assert.rejects(fs.read!(ROOT_CTX, node, fh, 0, 100), isEio);
        // Emptied, it needs none of the bytes that went.
        await fs.setattr!(ROOT_CTX, node, { size: 0, fh });
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("for nobody"));
      });
    });
    assert.ok(logLines.some((line) => line.includes("lost its bytes with its name")));
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/big.bin"), undefined, "removed once Riak is back");
  }, { now: () => clock });
});

Deno.test("drain: a legacy file opened for writing is copied from SOURCE at its first write, and its local copy goes once Riak holds the new bytes", async () => {
  await withSmallChunks("drain", async ({ fs, store, runtime, source, spool }) => {
    const content = seededBytes(49, BIG);
    await writeFile(join(source, "legacy.bin"), content);
    await withOpen(fs, "/legacy.bin", O_WRONLY, async (node, fh) => {
      assert.deepEqual(await stagedSizes(spool), [0], "nothing copied at the open");
      await fs.write!(ROOT_CTX, node, fh, 100, Buffer.from("Z"));
    });
    assert.equal(await runtime.settle(10_000), 0);
    const written = Buffer.from(content);
    written.write("Z", 100);
    assert.ok(written.equals(await store.readFile("/legacy.bin")));
    assert.ok(written.equals(await readThrough(fs, "/legacy.bin")));
    await assert.rejects(stat(join(source, "legacy.bin")), { code: "ENOENT" });
  });
});

Deno.test("drain: a legacy file truncated to 0 through an open for writing reaches Riak empty, its local copy gone", async () => {
  await withSmallChunks("drain", async ({ fs, store, runtime, source }) => {
    await writeFile(join(source, "legacy.bin"), seededBytes(50, BIG));
    await withOpen(fs, "/legacy.bin", O_WRONLY, async (node, fh) => {
      await fs.setattr!(ROOT_CTX, node, { size: 0, fh });
    });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/legacy.bin")).length, 0);
    await assert.rejects(stat(join(source, "legacy.bin")), { code: "ENOENT" });
  });
});

// ---- attribute changes through a session that holds nothing written ----
// (fchmod, fchown, futimens: `touch FILE` opens it for writing and calls futimens): they go
// where the file is, as a change by path does, instead of staging its bytes and uploading
// them again.

/** Three chunks: copying it costs three chunk gets, uploading it three chunk puts. */
const THREE_CHUNKS = 3 * CHUNK_SIZE;
/** 2001-09-09T01:46:40Z, as `touch -d` sets it. */
const OLD_TIME = { sec: 1_000_000_000, nsec: 0 };
const OLD_TIME_NS = 1_000_000_000_000_000_000n;

/** A time in nanoseconds as FUSE's attributes show it. */
function nsOf(time: { sec: number; nsec: number }): bigint {
  return BigInt(time.sec) * 1_000_000_000n + BigInt(time.nsec);
}

/** At most the requests a change of one object's metadata takes: no chunk moved. */
function assertNoChunkMoved(requests: OverlayFixture["requests"]): void {
  const shown = JSON.stringify(requests);
  assert.ok(requests.gets <= 2, `the stat and the metadata, no chunk get: ${shown}`);
  assert.ok(requests.puts <= 1, `the metadata, no chunk put: ${shown}`);
}

/** Riak holds `content` at `path`: its bytes, and the size and sha256 its metadata gives. */
async function assertHeldInRiak(
  store: OverlayFixture["store"],
  path: string,
  content: Uint8Array,
): Promise<void> {
  const stored = await store.stat(path);
  assert.equal(stored.size, content.length, `${path}: the size in Riak`);
  assert.equal(stored.sha256, createHash("sha256").update(content).digest("hex"), path);
  assert.ok(Buffer.from(content).equals(await store.readFile(path)), `${path}: the bytes`);
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: touch (futimens through a handle open for writing) of a 3-chunk file moves no chunk and shows the new times at once`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(60, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      resetCounts();
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        const { attr } = await fs.setattr!(ROOT_CTX, node, {
          fh,
          atime: OLD_TIME,
          mtime: OLD_TIME,
        });
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
        assert.equal(nsOf((await fs.getattr!(ROOT_CTX, node, fh)).attr.mtime), OLD_TIME_NS);
        assert.equal(nsOf((await fs.getattr!(ROOT_CTX, node, undefined)).attr.mtime), OLD_TIME_NS);
        assert.equal(attr.size, THREE_CHUNKS);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assertNoChunkMoved(requests);
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded again");
      assert.equal((await store.stat("/big.bin")).mtimeNs, OLD_TIME_NS);
      assert.ok(content.equals(await store.readFile("/big.bin")));
      const { attr } = await fs.getattr!(ROOT_CTX, await lookupPath(fs, "/big.bin"), undefined);
      assert.equal(nsOf(attr.mtime), OLD_TIME_NS, "after the close too");
    });
  });

  Deno.test(`${preset}: fchmod and fchown through a handle open for writing move no chunk`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      await store.writeFile("/big.bin", seededBytes(61, THREE_CHUNKS), { mode: 0o644 });
      resetCounts();
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.setattr!(ROOT_CTX, node, { fh, mode: 0o100600 });
        await fs.setattr!(ROOT_CTX, node, { fh, uid: 1234, gid: 5678 });
        const { attr } = await fs.getattr!(ROOT_CTX, node, fh);
        assert.equal(attr.mode & 0o7777, 0o600);
        assert.equal(attr.uid, 1234);
        assert.equal(attr.gid, 5678);
      });
      assert.equal(await runtime.settle(10_000), 0);
      const shown = JSON.stringify(requests);
      assert.ok(requests.puts <= 2, `two metadata puts, no chunk: ${shown}`);
      assert.ok(requests.gets <= 3, `the stat and the metadata, no chunk: ${shown}`);
      const stored = await store.stat("/big.bin");
      assert.equal(stored.mode, 0o600);
      assert.equal(stored.uid, 1234);
      assert.equal(stored.gid, 5678);
    });
  });

  Deno.test(`${preset}: touch -d, then a write, then close: the write's content and mtime, the mode set through the handle kept`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(62, THREE_CHUNKS);
      await store.writeFile("/big.bin", content, { mode: 0o644 });
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME, mode: 0o100640 });
        await fs.write!(ROOT_CTX, node, fh, 10, Buffer.from("WRITTEN"));
        const { attr } = await fs.getattr!(ROOT_CTX, node, fh);
        // As on a local disk: a write after futimens moves the mtime on.
        assert.ok(nsOf(attr.mtime) > OLD_TIME_NS, "the write's mtime");
        assert.equal(attr.mode & 0o7777, 0o640);
      });
      assert.equal(await runtime.settle(10_000), 0);
      const written = Buffer.from(content);
      written.write("WRITTEN", 10);
      assert.ok(written.equals(await store.readFile("/big.bin")));
      const stored = await store.stat("/big.bin");
      assert.ok(stored.mtimeNs > OLD_TIME_NS, "the write's mtime in Riak");
      assert.equal(stored.mode, 0o640);
    });
  });

  Deno.test(`${preset}: chmod and utimens by path of a file another handle has open for writing, nothing written, move no chunk`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(70, THREE_CHUNKS);
      await store.writeFile("/big.bin", content, { mode: 0o644 });
      resetCounts();
      await withOpen(fs, "/big.bin", O_WRONLY, async (node) => {
        await fs.setattr!(ROOT_CTX, node, { mode: 0o100600, mtime: OLD_TIME });
        const { attr } = await fs.getattr!(ROOT_CTX, node, undefined);
        assert.equal(attr.mode & 0o7777, 0o600);
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assertNoChunkMoved(requests);
      const stored = await store.stat("/big.bin");
      assert.equal(stored.mode, 0o600);
      assert.equal(stored.mtimeNs, OLD_TIME_NS);
      assert.ok(content.equals(await store.readFile("/big.bin")));
    });
  });

  Deno.test(`${preset}: a write, then futimens, then close: the write's content with the time set`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      const content = seededBytes(63, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("HEAD"));
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
      });
      assert.equal(await runtime.settle(10_000), 0);
      const written = Buffer.from(content);
      written.write("HEAD", 0);
      assert.ok(written.equals(await store.readFile("/big.bin")));
      assert.equal((await store.stat("/big.bin")).mtimeNs, OLD_TIME_NS);
    });
  });

  Deno.test(`${preset}: futimens through a handle whose session staged the bytes for a read moves no chunk up`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(64, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        assert.ok(content.subarray(0, 10).equals(await fs.read!(ROOT_CTX, node, fh, 0, 10)));
        resetCounts();
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal(nsOf((await fs.getattr!(ROOT_CTX, node, fh)).attr.mtime), OLD_TIME_NS);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assertNoChunkMoved(requests);
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded again");
      assert.equal((await store.stat("/big.bin")).mtimeNs, OLD_TIME_NS);
      assert.ok(content.equals(await store.readFile("/big.bin")));
    });
  });

  Deno.test(`${preset}: ftruncate to the file's size moves no chunk; to a smaller size it keeps the bytes before`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(65, THREE_CHUNKS);
      await store.writeFile("/big.bin", content, { mtimeNs: OLD_TIME_NS });
      await store.writeFile("/cut.bin", content);
      resetCounts();
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        const { attr } = await fs.setattr!(ROOT_CTX, node, { fh, size: THREE_CHUNKS });
        assert.equal(attr.size, THREE_CHUNKS);
        // As on a local disk (ext4): a truncate moves the mtime, also to the same size.
        assert.ok(nsOf(attr.mtime) > OLD_TIME_NS, "the truncate's mtime");
      });
      assert.equal(await runtime.settle(10_000), 0);
      assertNoChunkMoved(requests);
      assert.ok(content.equals(await store.readFile("/big.bin")));
      assert.ok((await store.stat("/big.bin")).mtimeNs > OLD_TIME_NS, "in Riak too");
      await withOpen(fs, "/cut.bin", O_WRONLY, async (node, fh) => {
        const { attr } = await fs.setattr!(ROOT_CTX, node, { fh, size: CHUNK_SIZE + 5 });
        assert.equal(attr.size, CHUNK_SIZE + 5);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.ok(content.subarray(0, CHUNK_SIZE + 5).equals(await store.readFile("/cut.bin")));
    });
  });

  Deno.test(`${preset}: truncate(2) by path of a file only Riak holds reads none of its bytes to keep its size, and only those it keeps to cut it`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(73, BIG);
      for (const name of ["same", "cut", "emptied"]) {
        await store.writeFile(`/${name}.bin`, content, { mtimeNs: OLD_TIME_NS });
      }
      const kept = CHUNK_SIZE + 5;
      /** The requests the truncate sent (its upload, if any, not yet). */
      const truncated = async (name: string, size: number) => {
        const node = await lookupPath(fs, `/${name}.bin`);
        resetCounts();
        const { attr } = await fs.setattr!(ROOT_CTX, node, { size });
        const sent = { ...requests };
        assert.equal(attr.size, size);
        // As on a local disk (ext4): truncate(2) moves the mtime, also to the same size.
        assert.ok(nsOf(attr.mtime) > OLD_TIME_NS, `${name}: the truncate's mtime`);
        assert.equal(await runtime.settle(10_000), 0);
        return sent;
      };
      assertNoChunkMoved(await truncated("same", BIG));
      assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded again");
      const cut = await truncated("cut", kept);
      assert.ok(
        cut.gets <= 2 + 2,
        `the stat, the metadata, the 2 chunks kept: ${JSON.stringify(cut)}`,
      );
      const emptied = await truncated("emptied", 0);
      assert.ok(emptied.gets <= 2, `no chunk: ${JSON.stringify(emptied)}`);
      await assertHeldInRiak(store, "/same.bin", content);
      assert.ok((await store.stat("/same.bin")).mtimeNs > OLD_TIME_NS, "in Riak too");
      await assertHeldInRiak(store, "/cut.bin", content.subarray(0, kept));
      await assertHeldInRiak(store, "/emptied.bin", Buffer.alloc(0));
    });
  });

  Deno.test(`${preset}: ftruncate through a handle open for writing, nothing written, to a smaller size reads only the bytes it keeps`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(74, BIG);
      await store.writeFile("/big.bin", content);
      const kept = 2 * CHUNK_SIZE + 1;
      resetCounts();
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.setattr!(ROOT_CTX, node, { fh, size: kept, mtime: "now" });
        assert.ok(
          content.subarray(kept - 10, kept).equals(
            await fs.read!(ROOT_CTX, node, fh, kept - 10, 100),
          ),
        );
      });
      const shown = JSON.stringify(requests);
      assert.ok(requests.gets <= 2 + 3, `the stat, the metadata, the 3 chunks kept: ${shown}`);
      assert.equal(await runtime.settle(10_000), 0);
      await assertHeldInRiak(store, "/big.bin", content.subarray(0, kept));
    });
  });

  Deno.test(`${preset}: futimens and fchmod through a handle whose fsync's upload landed change Riak's metadata only; a later write keeps them`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(75, THREE_CHUNKS);
      await store.writeFile("/big.bin", content, { mode: 0o644 });
      const written = Buffer.from(content);
      written.write("HEAD", 0);
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("HEAD"));
        await fs.fsync!(ROOT_CTX, node, fh, false);
        assert.equal(await runtime.settle(10_000), 0, "the fsync's upload landed");
        const uploaded = runtime.metrics.snapshot().uploads.uploaded;
        resetCounts();
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME, atime: OLD_TIME });
        await fs.setattr!(ROOT_CTX, node, { fh, mode: 0o100600 });
        const { attr } = await fs.getattr!(ROOT_CTX, node, fh);
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
        assert.equal(attr.mode & 0o7777, 0o600);
        assert.equal(attr.size, THREE_CHUNKS);
        assert.equal(await runtime.settle(10_000), 0);
        const shown = JSON.stringify(requests);
        assert.ok(requests.puts <= 2, `two metadata puts, no chunk: ${shown}`);
        assert.ok(requests.gets <= 4, `stats and metadata, no chunk: ${shown}`);
        assert.equal(runtime.metrics.snapshot().uploads.uploaded, uploaded, "nothing uploaded");
        await assertHeldInRiak(store, "/big.bin", written);
        const stored = await store.stat("/big.bin");
        assert.equal(stored.mtimeNs, OLD_TIME_NS);
        assert.equal(stored.mode, 0o600);
        await fs.write!(ROOT_CTX, node, fh, 10, Buffer.from("TAIL"));
      });
      assert.equal(await runtime.settle(10_000), 0);
      written.write("TAIL", 10);
      await assertHeldInRiak(store, "/big.bin", written);
      const stored = await store.stat("/big.bin");
      assert.ok(stored.mtimeNs > OLD_TIME_NS, "the write's mtime");
      assert.equal(stored.mode, 0o600, "the mode set through the handle kept");
    });
  });

  Deno.test(`${preset}: futimens through a handle whose committed upload has not landed goes up with the bytes`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, holdPuts }) => {
      const content = seededBytes(76, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      const written = Buffer.from(content);
      written.write("HEAD", 0);
      await withOpen(fs, "/big.bin", O_RDWR, async (node, fh) => {
        await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("HEAD"));
        const held = holdPuts();
        try {
          // close(2) of a dup'd descriptor: committed, its upload on its way (fsync waits).
          await fs.flush!(ROOT_CTX, node, fh);
          await held.reached;
          await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        } finally {
          held.release();
        }
      });
      assert.equal(await runtime.settle(10_000), 0);
      await assertHeldInRiak(store, "/big.bin", written);
      assert.equal((await store.stat("/big.bin")).mtimeNs, OLD_TIME_NS);
    });
  });

  Deno.test(`${preset}: futimens through a handle of a file only Riak holds during an outage fails with EIO, as by path, changing nothing`, async () => {
    const clock = 1_700_000_000_000; // Stands still: Riak's stat of the file stays fresh.
    await withSmallChunks(preset, async ({ fs, store, riak, runtime, logLines }) => {
      const content = seededBytes(66, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      const before = await store.stat("/big.bin");
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          await assert.rejects(fs.setattr!(ROOT_CTX, node, { mtime: OLD_TIME }), isEio, "by path");
          await assert.rejects(fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME }), isEio);
          const { attr } = await fs.getattr!(ROOT_CTX, node, fh);
          assert.equal(nsOf(attr.mtime), before.mtimeNs, "unchanged");
        });
        // Once Riak is back the same descriptor's change goes through.
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.stat("/big.bin")).mtimeNs, OLD_TIME_NS);
      assert.ok(content.equals(await store.readFile("/big.bin")));
    }, { now: () => clock });
  });

  Deno.test(`${preset}: futimens through a handle of a file renamed while open goes to the new name`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime, requests, resetCounts }) => {
      const content = seededBytes(67, THREE_CHUNKS);
      await store.writeFile("/big.bin", content);
      const root = await lookupPath(fs, "/");
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        await fs.rename!(ROOT_CTX, root, "big.bin", root, "moved.bin", 0);
        assert.equal(await runtime.settle(10_000), 0, "the directory's new mtime written");
        resetCounts();
        await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal(nsOf((await fs.getattr!(ROOT_CTX, node, fh)).attr.mtime), OLD_TIME_NS);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assertNoChunkMoved(requests);
      assert.equal((await store.stat("/moved.bin")).mtimeNs, OLD_TIME_NS);
      assert.ok(content.equals(await store.readFile("/moved.bin")));
      assert.equal(await store.tryStat("/big.bin"), undefined);
    });
  });

  Deno.test(`${preset}: futimens through a handle of a file unlinked while open changes no file in Riak`, async () => {
    await withSmallChunks(preset, async ({ fs, store, runtime }) => {
      await store.writeFile("/big.bin", seededBytes(68, THREE_CHUNKS));
      await withOpen(fs, "/big.bin", O_WRONLY, async (node, fh) => {
        await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/"), "big.bin");
        const { attr } = await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/big.bin"), undefined, "stays removed");
    });
  });
}

Deno.test("drain: touch of a legacy file through a handle changes the local file's times, copies nothing; a write after it still drains the file", async () => {
  await withSmallChunks("drain", async ({ fs, store, runtime, source }) => {
    const content = seededBytes(69, THREE_CHUNKS);
    const local = join(source, "legacy.bin");
    await writeFile(local, content);
    await withOpen(fs, "/legacy.bin", O_WRONLY, async (node, fh) => {
      await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
      assert.equal((await stat(local, { bigint: true })).mtimeNs, OLD_TIME_NS);
      assert.equal(nsOf((await fs.getattr!(ROOT_CTX, node, fh)).attr.mtime), OLD_TIME_NS);
    });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded");
    assert.equal(await store.tryStat("/legacy.bin"), undefined, "still only local");
    await withOpen(fs, "/legacy.bin", O_WRONLY, async (node, fh) => {
      await fs.setattr!(ROOT_CTX, node, { fh, mode: 0o100600 });
      await fs.write!(ROOT_CTX, node, fh, 100, Buffer.from("Z"));
    });
    assert.equal(await runtime.settle(10_000), 0);
    const written = Buffer.from(content);
    written.write("Z", 100);
    assert.ok(written.equals(await store.readFile("/legacy.bin")));
    assert.equal((await store.stat("/legacy.bin")).mode, 0o600);
    assert.ok(written.equals(await readThrough(fs, "/legacy.bin")));
    await assert.rejects(stat(local), { code: "ENOENT" }, "drained: its local copy gone");
  });
});

Deno.test("drain: truncate(2) by path of a legacy file to its size moves the local file's times, uploads nothing; to a smaller size the bytes kept are drained", async () => {
  await withSmallChunks("drain", async ({ fs, store, runtime, source }) => {
    const content = seededBytes(77, THREE_CHUNKS);
    const local = join(source, "legacy.bin");
    await writeFile(local, content);
    await utimes(local, 1_000_000_000, 1_000_000_000);
    const node = await lookupPath(fs, "/legacy.bin");
    const same = await fs.setattr!(ROOT_CTX, node, { size: THREE_CHUNKS });
    assert.ok(nsOf(same.attr.mtime) > OLD_TIME_NS, "the truncate's mtime");
    assert.equal((await stat(local, { bigint: true })).mtimeNs, nsOf(same.attr.mtime));
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(runtime.metrics.snapshot().uploads.uploaded, 0, "nothing uploaded");
    assert.equal(await store.tryStat("/legacy.bin"), undefined, "still only local");
    const kept = CHUNK_SIZE + 3;
    const { attr } = await fs.setattr!(ROOT_CTX, node, { size: kept });
    assert.equal(attr.size, kept);
    assert.equal(await runtime.settle(10_000), 0);
    await assertHeldInRiak(store, "/legacy.bin", content.subarray(0, kept));
    assert.ok(content.subarray(0, kept).equals(await readThrough(fs, "/legacy.bin")));
    await assert.rejects(stat(local), { code: "ENOENT" }, "drained: its local copy gone");
  });
});

Deno.test("drain: futimens through a handle of a legacy file during an outage still works: its bytes are at hand in SOURCE, and the session's upload carries the change once Riak is back", async () => {
  const clock = 1_700_000_000_000; // Stands still: Riak's stat of the file stays fresh.
  await withSmallChunks("drain", async ({ fs, store, riak, runtime, source, logLines }) => {
    const content = seededBytes(71, THREE_CHUNKS);
    const local = join(source, "legacy.bin");
    await writeFile(local, content);
    await withOpen(fs, "/legacy.bin", O_WRONLY, async (node, fh) => {
      await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        const { attr } = await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
      });
    });
    assert.equal(await runtime.settle(10_000), 0);
    assert.ok(content.equals(await store.readFile("/legacy.bin")));
    assert.equal((await store.stat("/legacy.bin")).mtimeNs, OLD_TIME_NS);
    await assert.rejects(stat(local), { code: "ENOENT" }, "drained: its local copy gone");
  }, { now: () => clock });
});

Deno.test("riak: futimens through a handle of a file whose upload Riak does not acknowledge goes into the session's upload from the spool", async () => {
  await withSmallChunks("riak", async ({ fs, store, runtime, holdPuts }) => {
    const content = seededBytes(72, THREE_CHUNKS);
    const held = holdPuts();
    await writeThrough(fs, "/new.bin", content);
    await held.reached; // The upload hangs at its first put: the file's bytes are in the spool.
    try {
      await withOpen(fs, "/new.bin", O_WRONLY, async (node, fh) => {
        const { attr } = await fs.setattr!(ROOT_CTX, node, { fh, mtime: OLD_TIME });
        assert.equal(nsOf(attr.mtime), OLD_TIME_NS);
        assert.equal(attr.size, THREE_CHUNKS);
      });
    } finally {
      held.release();
    }
    assert.equal(await runtime.settle(10_000), 0);
    assert.ok(content.equals(await store.readFile("/new.bin")));
    assert.equal((await store.stat("/new.bin")).mtimeNs, OLD_TIME_NS);
  });
});

Deno.test("drain: a legacy file open for writing with nothing staged, renamed over during an outage by a file only Riak holds that the mount saw, keeps its bytes for the handle", async () => {
  await withSmallChunks("drain", async ({ fs, store, riak, runtime, source, logLines }) => {
    const legacy = seededBytes(54, BIG);
    await writeFile(join(source, "b.bin"), legacy);
    await store.writeFile("/a.bin", Buffer.from("Riak's a.bin"));
    await lookupPath(fs, "/a.bin"); // Seen: a rename of it during an outage is journaled.
    await withOpen(fs, "/b.bin", O_RDWR, async (node, fh) => {
      await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        const root = await lookupPath(fs, "/");
        await fs.rename!(ROOT_CTX, root, "a.bin", root, "b.bin", 0);
        // Renamed over, as on a local disk: the open file is the one it was.
        assert.ok(legacy.subarray(0, 100).equals(await fs.read!(ROOT_CTX, node, fh, 0, 100)));
      });
    });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/b.bin")).toString(), "Riak's a.bin");
    assert.equal(await store.tryStat("/a.bin"), undefined);
  }, { now: () => 1_700_000_000_000 });
});
