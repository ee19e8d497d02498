/**
 * Write sessions of the modes that stage writes in the spool (drain, riak) under
 * concurrency: one session per path however many opens race, operations on a session one
 * at a time, and unlinks and renames that never let an open handle's commit bring back a
 * name or older bytes.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FileSystem } from "../fuse/filesystem.ts";
import { JournalError, UploadJournal } from "./journal.ts";
import type { OverlayRuntime } from "./runtime.ts";
import {
  lookupPath,
  readThrough,
  ROOT_CTX,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

const O_WRONLY = 1;
const O_TRUNC = 0o1000;

/** Files /a ("AAAA") and /b ("bbbb") in Riak, and /b open for writing with "X" written. */
async function openWriterOfB(
  fs: FileSystem,
  runtime: OverlayRuntime,
): Promise<{ node: number; fh: number }> {
  await writeThrough(fs, "/a", Buffer.from("AAAA"));
  await writeThrough(fs, "/b", Buffer.from("bbbb"));
  await runtime.settle(10_000);
  const node = await lookupPath(fs, "/b");
  const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY);
  await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("X"));
  return { node, fh };
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: write opens racing on one file share one session`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await writeThrough(fs, "/log.txt", Buffer.from("0123456789"));
      await runtime.settle(10_000);
      const node = await lookupPath(fs, "/log.txt");
      const [a, b] = await Promise.all([
        fs.open!(ROOT_CTX, node, O_WRONLY),
        fs.open!(ROOT_CTX, node, O_WRONLY),
      ]);
      await fs.write!(ROOT_CTX, node, a.fh, 0, Buffer.from("AA"));
      await fs.write!(ROOT_CTX, node, b.fh, 8, Buffer.from("BB"));
      await fs.release!(ROOT_CTX, node, a.fh, 0);
      await fs.release!(ROOT_CTX, node, b.fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/log.txt")).toString(), "AA234567BB");
    });
  });

  Deno.test(`${preset}: writes racing after an fsync both land, and no staged file is left`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime, spool }) => {
      const created = await fs.create!(ROOT_CTX, 1, "f", O_WRONLY | 0o100, 0o644, 0o022);
      const [node, fh] = [created.entry.nodeid, created.opened.fh];
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("........"));
      await fs.fsync!(ROOT_CTX, node, fh, false);
      await Promise.all([
        fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("AA")),
        fs.write!(ROOT_CTX, node, fh, 4, Buffer.from("BB")),
      ]);
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/f")).toString(), "AA..BB..");
      assert.deepEqual(await readdir(join(spool, "staged")), []);
    });
  });

  Deno.test(`${preset}: a file unlinked while open for writing stays removed`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await writeThrough(fs, "/f", Buffer.from("old"));
      await runtime.settle(10_000);
      const node = await lookupPath(fs, "/f");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY);
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("new"));
      await fs.unlink!(ROOT_CTX, 1, "f");
      await assert.rejects(fs.lookup!(ROOT_CTX, 1, "f"));
      // The open handle still reads and writes its (now nameless) file.
      assert.equal(Buffer.from(await fs.read!(ROOT_CTX, node, fh, 0, 10)).toString(), "new");
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/f"), undefined, "not brought back by the close");
    });
  });

  Deno.test(`${preset}: a rename over a file open for writing keeps the renamed bytes`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      const { node, fh } = await openWriterOfB(fs, runtime);
      await fs.rename!(ROOT_CTX, 1, "a", 1, "b", 0);
      assert.equal((await readThrough(fs, "/b")).toString(), "AAAA");
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/b")).toString(), "AAAA");
    });
  });

  Deno.test(`${preset}: a rename over a file open for writing that fails before it begins leaves the writer's file`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      const { node, fh } = await openWriterOfB(fs, runtime);
      // Past its deadline (or interrupted) before it changed anything: it fails, unchanged.
      const late = {
        ...ROOT_CTX,
        commit: () => {
          throw new Error("request deadline passed");
        },
      };
      await assert.rejects(fs.rename!(late, 1, "a", 1, "b", 0), /deadline/);
      await fs.write!(ROOT_CTX, node, fh, 1, Buffer.from("Y"));
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/b")).toString(), "XYbb", "the writer's bytes");
      assert.equal((await store.readFile("/a")).toString(), "AAAA");
    });
  });

  Deno.test(`${preset}: a chmod and utimens that find the last release committing are kept`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await writeThrough(fs, "/f", Buffer.from("old"));
      await runtime.settle(10_000);
      const node = await lookupPath(fs, "/f");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("new"));
      // The release commits; the changes arrive while it does, as right after close(2).
      const released = fs.release!(ROOT_CTX, node, fh, 0);
      const changed = fs.setattr!(ROOT_CTX, node, {
        mode: 0o751,
        mtime: { sec: 1_600_000_000, nsec: 7 },
      });
      await Promise.all([released, changed]);
      assert.equal(await runtime.settle(10_000), 0);
      const stat = await store.stat("/f");
      assert.equal(stat.mode, 0o751);
      assert.equal(stat.mtimeNs, 1_600_000_000_000_000_007n);
      assert.equal((await store.readFile("/f")).toString(), "new");
    });
  });

  Deno.test(`${preset}: a directory renamed with a file open for writing inside`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await fs.mkdir!(ROOT_CTX, 1, "d", 0o755, 0o022);
      await writeThrough(fs, "/d/f", Buffer.from("old"));
      await runtime.settle(10_000);
      const node = await lookupPath(fs, "/d/f");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY);
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("NEW"));
      await fs.rename!(ROOT_CTX, 1, "d", 1, "e", 0);
      assert.equal((await readThrough(fs, "/e/f")).toString(), "NEW", "the session moved");
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/e/f")).toString(), "NEW");
      assert.equal(await store.tryStat("/d/f"), undefined);
    });
  });

  Deno.test(`${preset}: a rename over a file whose upload is on its way waits for it`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime, holdPuts }) => {
      await writeThrough(fs, "/a", Buffer.from("NEW-A"));
      await runtime.settle(10_000);
      const hold = holdPuts();
      await writeThrough(fs, "/b", Buffer.from("old-b")); // acknowledged, upload held
      await hold.reached;
      const renamed = fs.rename!(ROOT_CTX, 1, "a", 1, "b", 0);
      hold.release();
      await renamed;
      assert.equal((await readThrough(fs, "/b")).toString(), "NEW-A");
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/b")).toString(), "NEW-A");
    });
  });

  Deno.test(`${preset}: a rename while close() journals the file waits for the commit`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await writeThrough(fs, "/a", Buffer.from("v1"));
      await runtime.settle(10_000);
      const node = await lookupPath(fs, "/a");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("v2"));
      // The journal append of the commit is held until the rename has started.
      const add = UploadJournal.prototype.add;
      let entered!: () => void;
      const inAdd = new Promise<void>((resolve) => entered = resolve);
      let proceed!: () => void;
      const gate = new Promise<void>((resolve) => proceed = resolve);
      UploadJournal.prototype.add = async function (upload) {
        UploadJournal.prototype.add = add;
        entered();
        await gate;
        return await add.call(this, upload);
      };
      try {
        const closing = fs.flush!(ROOT_CTX, node, fh);
        await inAdd;
        const renamed = fs.rename!(ROOT_CTX, 1, "a", 1, "b", 0);
        proceed();
        await Promise.all([closing, renamed]);
      } finally {
        UploadJournal.prototype.add = add;
        proceed();
      }
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await store.tryStat("/a"), undefined);
      assert.equal((await store.readFile("/b")).toString(), "v2");
    });
  });

  Deno.test(`${preset}: a commit the journal refused stays to commit, and reaches Riak`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      const created = await fs.create!(ROOT_CTX, 1, "g", O_WRONLY | 0o100, 0o644, 0o022);
      const [node, fh] = [created.entry.nodeid, created.opened.fh];
      await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("precious"));
      const add = UploadJournal.prototype.add;
      UploadJournal.prototype.add = function () {
        UploadJournal.prototype.add = add; // once: the disk is full
        return Promise.reject(new JournalError("journal", "ENOSPC: no space left on device"));
      };
      await assert.rejects(fs.fsync!(ROOT_CTX, node, fh, false));
      await fs.fsync!(ROOT_CTX, node, fh, false); // retried: journaled and uploaded now
      assert.equal((await store.readFile("/g")).toString(), "precious");
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
    });
  });

  // `cmd > file`: the shell's close of its first descriptor flushes the emptied file before
  // the command writes. Its upload is held back for the write's, yet close() acknowledged it.
  Deno.test(`${preset}: an emptied file flushed while open is journaled: a stop before its release replays it`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime, restart }) => {
      await writeThrough(fs, "/b", Buffer.from("bbbb"));
      assert.equal(await runtime.settle(10_000), 0);
      const node = await lookupPath(fs, "/b");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
      await fs.flush!(ROOT_CTX, node, fh);
      assert.equal(runtime.pendingUploads(), 1, "journaled at the FLUSH");
      assert.equal((await store.readFile("/b")).toString(), "bbbb", "held back meanwhile");
      assert.equal(await runtime.stop(0), 1);
      const again = await restart({});
      assert.equal(await again.settle(10_000), 0);
      assert.equal((await store.readFile("/b")).length, 0, "the emptied file replayed");
    });
  });

  Deno.test(`${preset}: an emptied file flushed while open, then renamed, reaches Riak at its release`, async () => {
    await withOverlay(preset, async ({ fs, store, runtime }) => {
      await writeThrough(fs, "/b", Buffer.from("bbbb"));
      assert.equal(await runtime.settle(10_000), 0);
      const node = await lookupPath(fs, "/b");
      const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
      await fs.flush!(ROOT_CTX, node, fh);
      await fs.rename!(ROOT_CTX, 1, "b", 1, "c", 0);
      await fs.release!(ROOT_CTX, node, fh, 0);
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/c")).length, 0);
      assert.equal(await store.tryStat("/b"), undefined);
    });
  });
}

Deno.test("drain: a utimens right after a legacy file was rewritten sets Riak's copy, whose upload took the local one", async () => {
  await withOverlay("drain", async ({ fs, store, runtime, source }) => {
    await writeFile(join(source, "legacy.txt"), "legacy bytes");
    await writeThrough(fs, "/legacy.txt", Buffer.from("rewritten"));
    const node = await lookupPath(fs, "/legacy.txt");
    await fs.setattr!(ROOT_CTX, node, { mtime: { sec: 1_500_000_000, nsec: 0 } });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.stat("/legacy.txt")).mtimeNs, 1_500_000_000_000_000_000n);
    assert.equal((await store.readFile("/legacy.txt")).toString(), "rewritten");
  });
});

Deno.test("drain: an open joining a session whose content is still being staged waits for it", async () => {
  await withOverlay("drain", async ({ fs, store, runtime, source }) => {
    const size = 32 * 1024 * 1024;
    await writeFile(join(source, "big"), Buffer.alloc(size, 0x61));
    const node = await lookupPath(fs, "/big");
    const [a, b] = await Promise.all([
      fs.open!(ROOT_CTX, node, O_WRONLY),
      fs.open!(ROOT_CTX, node, O_WRONLY),
    ]);
    await fs.write!(ROOT_CTX, node, b.fh, 0, Buffer.from("ZZZZ"));
    await fs.fsync!(ROOT_CTX, node, b.fh, false);
    const stored = await store.readFile("/big");
    assert.equal(stored.length, size, "the whole file, not a half-staged one");
    assert.equal(stored.subarray(0, 5).toString(), "ZZZZa");
    await fs.release!(ROOT_CTX, node, a.fh, 0);
    await fs.release!(ROOT_CTX, node, b.fh, 0);
    assert.equal(await runtime.settle(60_000), 0);
    assert.equal((await store.stat("/big")).size, size);
  });
});

Deno.test("riak: an upload whose done line the journal refused is not replayed over newer bytes", async () => {
  await withOverlay("riak", async ({ fs, store, runtime, restart }) => {
    const complete = UploadJournal.prototype.complete;
    UploadJournal.prototype.complete = function () {
      UploadJournal.prototype.complete = complete; // once: the disk is full
      return Promise.reject(new JournalError("journal", "ENOSPC: no space left on device"));
    };
    try {
      await writeThrough(fs, "/f", Buffer.from("version-1"));
      assert.equal(await runtime.settle(10_000), 0);
    } finally {
      UploadJournal.prototype.complete = complete;
    }
    await writeThrough(fs, "/f", Buffer.from("version-2"));
    assert.equal(await runtime.settle(10_000), 0);
    await runtime.stop(5_000);
    const again = await restart();
    await again.settle(10_000);
    assert.equal((await store.readFile("/f")).toString(), "version-2");
  });
});
