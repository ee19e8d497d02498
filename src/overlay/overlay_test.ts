import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import { seededBytes } from "../store/_test_support.ts";
import { queryStatus } from "./control.ts";
import {
  listThrough,
  lookupPath,
  readThrough,
  ROOT_CTX,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

function errnoOf(error: unknown): number | string | undefined {
  if (error instanceof FuseError) return error.errno;
  return (error as { code?: string }).code;
}

Deno.test("migrate: a file read whole is copied to Riak, then served from Riak", async () => {
  await withOverlay("migrate", async ({ fs, source, store, runtime }) => {
    const content = seededBytes(7, 300_000);
    await writeFile(join(source, "photo.jpg"), content);
    assert.ok(content.equals(await readThrough(fs, "/photo.jpg")));
    await runtime.settle(10_000);
    assert.ok(content.equals(await store.readFile("/photo.jpg")), "copied on read");
    // Behind riakfs's back the local copy changes: the mount keeps serving Riak's bytes.
    await writeFile(join(source, "photo.jpg"), "tampered");
    assert.ok(content.equals(await readThrough(fs, "/photo.jpg")));
    const counters = runtime.metrics.snapshot();
    assert.equal(counters.copyOnRead.copied, 1);
    assert.ok(counters.bytesReadRiak >= content.length);
    assert.equal(counters.ops.open, 2);
  });
});

Deno.test("migrate: a partial read does not copy the file", async () => {
  await withOverlay("migrate", async ({ fs, source, store, runtime }) => {
    await writeFile(join(source, "big.bin"), seededBytes(8, 200_000));
    const node = await lookupPath(fs, "/big.bin");
    const { fh } = await fs.open!(ROOT_CTX, node, 0);
    await fs.read!(ROOT_CTX, node, fh, 0, 4096);
    await fs.release!(ROOT_CTX, node, fh, 0);
    await runtime.settle(10_000);
    assert.equal(await store.tryStat("/big.bin"), undefined);
  });
});

Deno.test("migrate: a written file reaches Riak and the source; fsync waits for Riak", async () => {
  await withOverlay("migrate", async ({ fs, source, store, runtime, mountpoint, runDirectory }) => {
    const content = seededBytes(9, 2 * 1024 * 1024 + 5);
    await fs.mkdir!(ROOT_CTX, 1, "docs", 0o750, 0);
    await writeThrough(fs, "/docs/report.bin", content, 0o640);
    // fsync through a fresh handle: returns once Riak acknowledged.
    const node = await lookupPath(fs, "/docs/report.bin");
    const { fh } = await fs.open!(ROOT_CTX, node, 2);
    await fs.write!(ROOT_CTX, node, fh, content.length, Buffer.from("tail"));
    await fs.fsync!(ROOT_CTX, node, fh, false);
    const expected = Buffer.concat([content, Buffer.from("tail")]);
    assert.ok(expected.equals(await store.readFile("/docs/report.bin")), "in Riak after fsync");
    await fs.release!(ROOT_CTX, node, fh, 0);
    await runtime.settle(10_000);
    assert.ok(expected.equals(await readFile(join(source, "docs/report.bin"))), "in the source");
    const stored = await store.stat("/docs/report.bin");
    assert.equal(stored.mode, 0o640);
    assert.equal((await store.stat("/docs")).mode, 0o750);
    assert.deepEqual(await listThrough(fs, "/"), ["docs"]);
    const status = await queryStatus(mountpoint, runtime.controlSocket);
    assert.equal(status.preset, "migrate");
    assert.ok(status.metrics.uploads.uploaded >= 1);
    assert.ok(status.metrics.bytesWritten >= content.length);
    assert.ok(runDirectory.length > 0);
  });
});

Deno.test("drain: a file read whole moves to Riak and its local copy is deleted", async () => {
  await withOverlay("drain", async ({ fs, source, store, runtime }) => {
    const content = seededBytes(10, 50_000);
    await writeFile(join(source, "old.log"), content);
    await writeFile(join(source, "stays.txt"), "not read");
    assert.ok(content.equals(await readThrough(fs, "/old.log")));
    await runtime.settle(10_000);
    await assert.rejects(stat(join(source, "old.log")), { code: "ENOENT" });
    assert.ok(content.equals(await store.readFile("/old.log")));
    assert.ok(content.equals(await readThrough(fs, "/old.log")), "still readable, from Riak");
    assert.deepEqual(await listThrough(fs, "/"), ["old.log", "stays.txt"]);
    assert.equal(runtime.metrics.snapshot().localDeletion.deleted, 1);
    // drain writes go to Riak only.
    await writeThrough(fs, "/new.txt", Buffer.from("fresh"));
    await runtime.settle(10_000);
    assert.equal((await store.readFile("/new.txt")).toString(), "fresh");
    await assert.rejects(stat(join(source, "new.txt")), { code: "ENOENT" });
  });
});

Deno.test("drain: a local file overwritten through the mount goes once Riak has the new bytes", async () => {
  await withOverlay("drain", async ({ fs, source, store, runtime }) => {
    await writeFile(join(source, "edit.txt"), "old local bytes");
    await writeFile(join(source, "racy.txt"), "old racy bytes");
    await writeThrough(fs, "/edit.txt", Buffer.from("new bytes"));
    await runtime.settle(10_000);
    assert.equal((await store.readFile("/edit.txt")).toString(), "new bytes");
    await assert.rejects(stat(join(source, "edit.txt")), { code: "ENOENT" });
    assert.equal((await readThrough(fs, "/edit.txt")).toString(), "new bytes");
    // A local change made outside the mount while the write was open is kept.
    const node = await lookupPath(fs, "/racy.txt");
    const { fh } = await fs.open!(ROOT_CTX, node, 1 | 0o1000);
    await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("through the mount"));
    await writeFile(join(source, "racy.txt"), "changed behind riakfs");
    await fs.release!(ROOT_CTX, node, fh, 0);
    await runtime.settle(10_000);
    assert.equal((await store.readFile("/racy.txt")).toString(), "through the mount");
    assert.equal(await readFile(join(source, "racy.txt"), "utf8"), "changed behind riakfs");
    assert.equal(runtime.metrics.snapshot().localDeletion.kept, 1);
  });
});

Deno.test("riak: every namespace operation, with attributes reported back exactly", async () => {
  await withOverlay("riak", async ({ fs, store, runtime }) => {
    await fs.mkdir!(ROOT_CTX, 1, "a", 0o755, 0);
    await fs.mkdir!(ROOT_CTX, 1, "b", 0o700, 0);
    await writeThrough(fs, "/a/f.txt", Buffer.from("hello world"));
    // Write at an offset past the end (a hole), then append.
    const node = await lookupPath(fs, "/a/f.txt");
    let { fh } = await fs.open!(ROOT_CTX, node, 2);
    await fs.write!(ROOT_CTX, node, fh, 20, Buffer.from("X"));
    await fs.release!(ROOT_CTX, node, fh, 0);
    ({ fh } = await fs.open!(ROOT_CTX, node, 1 | 0o2000));
    await fs.write!(ROOT_CTX, node, fh, 21, Buffer.from("!"));
    await fs.release!(ROOT_CTX, node, fh, 0);
    const expected = Buffer.concat([
      Buffer.from("hello world"),
      Buffer.alloc(9),
      Buffer.from("X!"),
    ]);
    assert.ok(
      expected.equals(await readThrough(fs, "/a/f.txt")),
      "read-your-writes from the spool",
    );
    await runtime.settle(10_000);
    assert.ok(expected.equals(await store.readFile("/a/f.txt")));
    // truncate
    await fs.setattr!(ROOT_CTX, node, { size: 5 });
    assert.equal((await readThrough(fs, "/a/f.txt")).toString(), "hello");
    // chmod, chown, utimens: kept in Riak, reported back exactly.
    const changed = await fs.setattr!(ROOT_CTX, node, {
      mode: 0o100600,
      uid: 1234,
      gid: 4321,
      mtime: { sec: 1_600_000_000, nsec: 123_456_789 },
    });
    await runtime.settle(10_000);
    const after = (await fs.getattr!(ROOT_CTX, node, undefined)).attr;
    for (const attr of [changed.attr, after]) {
      assert.equal(attr.mode, 0o100600);
      assert.equal(attr.uid, 1234);
      assert.equal(attr.gid, 4321);
      assert.deepEqual(attr.mtime, { sec: 1_600_000_000, nsec: 123_456_789 });
      assert.equal(attr.size, 5);
    }
    const stored = await store.stat("/a/f.txt");
    assert.equal(stored.mode, 0o600);
    assert.equal(stored.mtimeNs, 1_600_000_000_123_456_789n);
    // symlink + readlink
    const link = await fs.symlink!(ROOT_CTX, await lookupPath(fs, "/a"), "l", "f.txt");
    assert.equal(link.attr.mode & 0o170000, 0o120000);
    assert.equal(await fs.readlink!(ROOT_CTX, link.nodeid), "f.txt");
    // rename a file across directories, then a directory
    await fs.rename!(
      ROOT_CTX,
      await lookupPath(fs, "/a"),
      "f.txt",
      await lookupPath(fs, "/b"),
      "g.txt",
      0,
    );
    assert.equal((await readThrough(fs, "/b/g.txt")).toString(), "hello");
    await fs.rename!(ROOT_CTX, 1, "b", await lookupPath(fs, "/a"), "inner", 0);
    assert.deepEqual(await listThrough(fs, "/a"), ["inner", "l"]);
    assert.deepEqual(await listThrough(fs, "/a/inner"), ["g.txt"]);
    assert.equal((await readThrough(fs, "/a/inner/g.txt")).toString(), "hello");
    // RENAME_NOREPLACE onto an existing name
    await assert.rejects(
      fs.rename!(ROOT_CTX, await lookupPath(fs, "/a"), "l", await lookupPath(fs, "/a"), "inner", 1),
      (error) => errnoOf(error) === Errno.EEXIST,
    );
    // hard links are refused honestly
    await assert.rejects(
      fs.link!(ROOT_CTX, await lookupPath(fs, "/a/l"), 1, "hard"),
      (error) => errnoOf(error) === Errno.EPERM,
    );
    // rmdir of a non-empty directory, unlink, rmdir
    await assert.rejects(
      fs.rmdir!(ROOT_CTX, 1, "a"),
      (error) => errnoOf(error) === Errno.ENOTEMPTY,
    );
    await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/a/inner"), "g.txt");
    await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/a"), "l");
    await fs.rmdir!(ROOT_CTX, await lookupPath(fs, "/a"), "inner");
    await fs.rmdir!(ROOT_CTX, 1, "a");
    assert.deepEqual(await listThrough(fs, "/"), []);
    await assert.rejects(lookupPath(fs, "/a"), (error) => errnoOf(error) === Errno.ENOENT);
    assert.equal(await store.tryStat("/a"), undefined);
    const statfs = await fs.statfs!(ROOT_CTX, 1);
    assert.ok(statfs.blocks > 0);
  });
});

Deno.test("a second commit of one open file (chmod after flush) keeps both uploads whole", async () => {
  await withOverlay("riak", async ({ fs, store, runtime }) => {
    const created = await fs.create!(ROOT_CTX, 1, "twice.txt", 0o1101, 0o644, 0);
    const { nodeid } = created.entry;
    const { fh } = created.opened;
    await fs.write!(ROOT_CTX, nodeid, fh, 0, Buffer.from("content"));
    // flush and fsync overlap, as they may from two threads of the application.
    await Promise.all([fs.flush!(ROOT_CTX, nodeid, fh), fs.fsync!(ROOT_CTX, nodeid, fh, false)]);
    await fs.setattr!(ROOT_CTX, nodeid, { fh, mode: 0o100600 });
    await fs.release!(ROOT_CTX, nodeid, fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/twice.txt")).toString(), "content");
    assert.equal((await store.stat("/twice.txt")).mode, 0o600);
    const counters = runtime.metrics.snapshot().uploads;
    assert.equal(counters.abandoned, 0);
  });
});

Deno.test("outage: local files still served, Riak reads fail with EIO in time, logged once", async () => {
  await withOverlay("migrate", async ({ fs, source, store, riak, runtime, logLines }) => {
    await store.writeFile("/only-in-riak.txt", Buffer.from("remote"));
    await writeFile(join(source, "local.txt"), "local bytes");
    assert.equal((await readThrough(fs, "/only-in-riak.txt")).toString(), "remote");
    const faults = riak.server!.faults;
    faults.pause();
    try {
      assert.equal((await readThrough(fs, "/local.txt")).toString(), "local bytes");
      // A name never seen in Riak answers ENOENT (so it can be created and spooled).
      await assert.rejects(
        lookupPath(fs, "/never-seen"),
        (error) => errnoOf(error) === Errno.ENOENT,
      );
      await assert.rejects(
        readThrough(fs, "/only-in-riak.txt"),
        (error) => errnoOf(error) === "EIO",
      );
      assert.deepEqual(await listThrough(fs, "/"), ["local.txt"], "listing degrades to local");
      for (let index = 0; index < 3; index++) {
        await assert.rejects(lookupPath(fs, "/only-in-riak.txt"));
      }
      const warnings = logLines.filter((line) => line.includes("Riak unreachable"));
      assert.equal(warnings.length, 1, "one line per outage");
      assert.equal(runtime.metrics.snapshot().riak.reachable, 0);
    } finally {
      faults.resume();
    }
    assert.equal((await readThrough(fs, "/only-in-riak.txt")).toString(), "remote");
    assert.ok(logLines.some((line) => line.includes("Riak reachable again")));
  }, { riakReadTimeout: "300" });
});

Deno.test("a write acknowledged during an outage is uploaded after a restart", async () => {
  await withOverlay("migrate", async ({ fs, riak, store, runtime, restart }) => {
    const faults = riak.server!.faults;
    await faults.stopAccepting();
    faults.dropConnections();
    const files = new Map<string, Buffer>();
    try {
      for (let index = 0; index < 5; index++) {
        const content = seededBytes(100 + index, 10_000 * (index + 1));
        files.set(`/burst-${index}.bin`, content);
        await writeThrough(fs, `/burst-${index}.bin`, content);
      }
      assert.equal(runtime.pendingUploads(), 5);
      // Unmount while Riak is still down: the uploads stay journaled.
      assert.equal(await runtime.stop(50), 5);
    } finally {
      await faults.resumeAccepting();
    }
    const again = await restart({});
    assert.equal(await again.settle(20_000), 0);
    for (const [path, content] of files) {
      assert.ok(content.equals(await store.readFile(path)), `${path} in Riak byte for byte`);
    }
  });
});
