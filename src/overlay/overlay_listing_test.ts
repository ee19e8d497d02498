import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DirEntryIn, FileSystem } from "../fuse/filesystem.ts";
import type { Store } from "../store/store.ts";
import {
  listThrough,
  lookupPath,
  type OverlayFixture,
  readThrough,
  type RequestHold,
  ROOT_CTX,
  until,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

/** Small shards: a few hundred entries spread over levels of 1, 4, 16 ... 1024 shards. */
const SMALL_SHARDS = { namespace: { shardCapacity: 8, shardFanout: 4 } };

async function fill(store: Store, directory: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(4, "0")}`);
  for (let start = 0; start < count; start += 50) {
    await Promise.all(
      names.slice(start, start + 50).map((name) =>
        store.writeFile(`${directory}/${name}`, Buffer.from(name))
      ),
    );
  }
  return names;
}

/** READDIR from `offset` into a reply that takes `room` entries; the entries it took. */
async function readdir(
  fs: FileSystem,
  node: number,
  fh: number,
  offset: number,
  room: number,
): Promise<DirEntryIn[]> {
  const taken: DirEntryIn[] = [];
  await fs.readdir!(ROOT_CTX, node, fh, offset, {
    add: (entry) => taken.length < room && taken.push(entry) > 0,
    addPlus: () => false,
    fits: () => taken.length < room,
  });
  return taken;
}

Deno.test("riak: the first READDIR of a big directory reads a few of its shards, and the listing goes on to every name once", async () => {
  await withOverlay(
    "riak",
    async ({ fs, store, requests, resetCounts }) => {
      const names = await fill(store, "big", 1000);
      const node = await lookupPath(fs, "/big");
      resetCounts();
      const { fh } = await fs.opendir!(ROOT_CTX, node, 0);
      const first = await readdir(fs, node, fh, 0, 20);
      assert.equal(first.length, 20);
      const readForFirst = requests.setFetches;
      const listed = first.map((entry) => entry.name);
      for (let offset = first.at(-1)!.nextOffset;;) {
        const more = await readdir(fs, node, fh, offset, 20);
        if (more.length === 0) break;
        listed.push(...more.map((entry) => entry.name));
        offset = more.at(-1)!.nextOffset;
      }
      await fs.releasedir!(ROOT_CTX, node, fh);
      // Before: every shard was read (and the listing held whole) before the first reply. Now
      // the shards of what a READDIR takes (a batch of entries), and a few read ahead.
      assert.ok(
        readForFirst * 3 < requests.setFetches,
        `${readForFirst} of the ${requests.setFetches} shards read for the first 20 entries`,
      );
      assert.deepEqual(listed.slice(0, 2), [".", ".."]);
      assert.deepEqual(listed.slice(2).sort(), names);
    },
    {},
    {},
    SMALL_SHARDS,
  );
});

Deno.test("riak: a listing that takes longer than the Riak deadline succeeds while every step is within it", async () => {
  await withOverlay(
    "riak",
    async ({ fs, store, riak }) => {
      const names = await fill(store, "slow", 600);
      const node = await lookupPath(fs, "/slow");
      riak.faults.setLatency(60);
      // Hundreds of shards, 8 at a time, 60 ms each: seconds in all, against a deadline of 1 s.
      const { fh } = await fs.opendir!(ROOT_CTX, node, 0);
      const listed: string[] = [];
      for (let offset = 0;;) {
        const more = await readdir(fs, node, fh, offset, 100);
        if (more.length === 0) break;
        listed.push(...more.map((entry) => entry.name));
        offset = more.at(-1)!.nextOffset;
      }
      await fs.releasedir!(ROOT_CTX, node, fh);
      assert.deepEqual(listed.filter((name) => name !== "." && name !== "..").sort(), names);
    },
    { riakReadTimeout: "1000" },
    {},
    SMALL_SHARDS,
  );
});

Deno.test("riak: rmdir of a big directory reads one shard of it, not all", async () => {
  await withOverlay(
    "riak",
    async ({ fs, store, requests, resetCounts }) => {
      await fill(store, "full", 600);
      await lookupPath(fs, "/full");
      resetCounts();
      await assert.rejects(fs.rmdir!(ROOT_CTX, 1, "full"), /not empty/);
      assert.ok(requests.setFetches < 20, `${requests.setFetches} of its hundreds of shards read`);
    },
    {},
    {},
    SMALL_SHARDS,
  );
});

/** Reads a listing on from `offset` to its end, and releases it. */
async function readToEnd(fs: FileSystem, node: number, fh: number, offset: number) {
  for (let at = offset;;) {
    const more = await readdir(fs, node, fh, at, 100);
    if (more.length === 0) break;
    at = more.at(-1)!.nextOffset;
  }
  await fs.releasedir!(ROOT_CTX, node, fh);
}

// A union listing remembered, at its end, every local name Riak's listing lacked as absent
// from Riak. A name an upload put into Riak after Riak's shards were read (a file, or the
// directory above one), while drain read back Riak's copy before deleting the local one, was
// taken to be absent from Riak: a rename that waited for that upload left Riak's copy under
// the old name (a file's local copy deleted meanwhile, it renamed nothing at all).
for (const moved of ["file", "directory"] as const) {
  Deno.test(`drain: a rename of a ${moved} waiting for an upload that landed while a listing of its directory was read moves Riak's copy`, async () => {
    await withOverlay("drain", async (fixture) => {
      const { fs, source, store, runtime, requests } = fixture;
      // More of Riak's names than a READDIR batch: the listing stays open past its first one.
      await fill(store, "dir", 300);
      const name = moved === "file" ? "local.txt" : "sub";
      const file = moved === "file" ? "/dir/local.txt" : "/dir/sub/local.txt";
      await mkdir(join(source, "dir", "sub"), { recursive: true });
      await writeFile(join(source, file), "old local bytes");
      const node = await lookupPath(fs, "/dir");
      // Riak's shard of the directory is read here, before the first entry.
      const { fh } = await fs.opendir!(ROOT_CTX, node, 0);
      const first = await readdir(fs, node, fh, 0, 10);
      assert.ok(first.some((entry) => entry.name === name), "the local names come first");
      const upload = fixture.holdPuts();
      await writeThrough(fs, file, Buffer.from("new bytes"));
      await upload.reached;
      fixture.resetCounts();
      const renaming = fs.rename!(ROOT_CTX, node, name, node, "renamed", 0);
      // It asks Riak about the target once it found what it renames, then waits for the
      // upload.
      await until(() => requests.heads + requests.gets > 0);
      const readBack = fixture.holdGet(file.slice(1));
      upload.release();
      await readBack.reached; // Landed: drain reads Riak's copy back before the local one goes.
      await readToEnd(fs, node, fh, first.at(-1)!.nextOffset);
      readBack.release();
      await renaming;
      await runtime.settle(10_000);
      await assert.rejects(stat(join(source, file)), { code: "ENOENT" });
      const movedFile = file.replace(`/${name}`, "/renamed");
      assert.equal((await store.readFile(movedFile)).toString(), "new bytes");
      assert.equal(await store.tryStat(file), undefined, "Riak's copy moved");
      assert.equal((await readThrough(fs, movedFile)).toString(), "new bytes");
      await assert.rejects(lookupPath(fs, `/dir/${name}`), /no such file/);
    });
  });
}

/**
 * Writes the legacy files /moved and /stays, reads /moved (its copy-on-read's put held), and
 * begins a listing of / whose Riak shard is then read without the file and held; then lets
 * the copy go on. The listing's end waits for `shard`'s release.
 */
async function listingBesideACopy(
  { fs, source, holdPuts, holdFetchedSet }: OverlayFixture,
): Promise<{ listing: Promise<string[]>; shard: RequestHold }> {
  await writeFile(join(source, "moved"), "legacy bytes");
  await writeFile(join(source, "stays"), "other bytes");
  const copy = holdPuts();
  assert.equal((await readThrough(fs, "/moved")).toString(), "legacy bytes");
  await copy.reached;
  const shard = holdFetchedSet();
  const listing = listThrough(fs, "/");
  await shard.reached; // Riak's shard is read, without the file.
  copy.release();
  return { listing, shard };
}

// drain's copy-on-read moves a legacy file into Riak and deletes the local copy: a listing
// begun while the copy ran, whose Riak shard was read before the copy landed and whose source
// directory was read after the local copy went, found the file on neither side (`ls` missed
// it; seed 218 of drain's 400-operation model sequences, once in 151 runs).
Deno.test("drain: a file that copy-on-read moves into Riak while a listing runs is listed", async () => {
  await withOverlay("drain", async (fixture) => {
    const { source, store, runtime } = fixture;
    const { listing, shard } = await listingBesideACopy(fixture);
    await runtime.settle(10_000);
    await assert.rejects(stat(join(source, "moved")), { code: "ENOENT" });
    assert.equal((await store.readFile("/moved")).toString(), "legacy bytes");
    shard.release();
    assert.deepEqual(await listing, ["moved", "stays"]);
  });
});

// The kernel sends RELEASE without waiting for its answer: `cat moved; mv moved renamed; ls`
// may have the read's RELEASE, which queues the copy-on-read (of the name the handle has
// then), arrive while the listing runs. A copy queued after the listing took the names on
// their way, and landed (the local copy it left removed) after Riak's shard was read and
// before the source's directory was, put the file on neither side: `ls` missed it, under
// either name.
for (const renamed of ["never", "before the listing", "during the listing"] as const) {
  Deno.test(`drain: a file renamed ${renamed} whose copy-on-read is queued while a listing runs is listed`, async () => {
    await withOverlay("drain", async ({ fs, source, store, runtime, holdFetchedSet }) => {
      await writeFile(join(source, "moved"), "legacy bytes");
      await writeFile(join(source, "stays"), "other bytes");
      const node = await lookupPath(fs, "/moved");
      const { fh } = await fs.open!(ROOT_CTX, node, 0);
      assert.equal((await fs.read!(ROOT_CTX, node, fh, 0, 4096)).toString(), "legacy bytes");
      const rename = () => fs.rename!(ROOT_CTX, 1, "moved", 1, "renamed", 0);
      if (renamed === "before the listing") await rename();
      const shard = holdFetchedSet();
      const listing = listThrough(fs, "/");
      await shard.reached; // Riak's shard is read, without the file.
      if (renamed === "during the listing") await rename();
      await fs.release!(ROOT_CTX, node, fh, 0); // Queues the copy.
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(runtime.metrics.snapshot().copyOnRead.copied, 1);
      const name = renamed === "never" ? "moved" : "renamed";
      await assert.rejects(stat(join(source, name)), { code: "ENOENT" });
      assert.equal((await store.readFile(`/${name}`)).toString(), "legacy bytes");
      shard.release();
      assert.deepEqual(await listing, [name, "stays"]);
    });
  });
}

// The copy already on its way as the listing begins, and the file renamed once it landed: the
// listing names it under the name it had then (the names on their way are taken first).
Deno.test("drain: a file copy-on-read moved into Riak and renamed there while a listing runs is listed", async () => {
  await withOverlay("drain", async (fixture) => {
    const { fs, source, store, runtime } = fixture;
    const { listing, shard } = await listingBesideACopy(fixture);
    assert.equal(await runtime.settle(10_000), 0);
    await fs.rename!(ROOT_CTX, 1, "moved", 1, "renamed", 0);
    await assert.rejects(stat(join(source, "moved")), { code: "ENOENT" });
    await assert.rejects(stat(join(source, "renamed")), { code: "ENOENT" });
    assert.equal((await store.readFile("/renamed")).toString(), "legacy bytes");
    shard.release();
    assert.deepEqual(await listing, ["moved", "stays"]);
  });
});

// The kernel sends RELEASE without waiting for its answer: after `cat gone; rm gone` the read's
// RELEASE may come once the name is gone, and queued a copy-on-read of it: listings named it
// (a name on its way) until the copy's turn came, which a backlog of copies puts off.
for (const change of ["removed", "renamed over"] as const) {
  Deno.test(`drain: a file ${change} while open for reading, released after, is not listed again`, async () => {
    await withOverlay(
      "drain",
      async ({ fs, source, runtime, holdPuts }) => {
        await mkdir(join(source, "elsewhere"));
        await writeFile(join(source, "elsewhere", "busy"), "a copy held on its way");
        await writeFile(join(source, "gone"), "legacy bytes");
        await writeFile(join(source, "other"), "other bytes");
        // The one copy slot is taken: a copy queued next waits behind it.
        const busy = holdPuts();
        assert.equal(
          (await readThrough(fs, "/elsewhere/busy")).toString(),
          "a copy held on its way",
        );
        await busy.reached;
        const names = change === "removed" ? ["elsewhere", "other"] : ["elsewhere", "gone"];
        let listed: string[];
        try {
          const node = await lookupPath(fs, "/gone");
          const { fh } = await fs.open!(ROOT_CTX, node, 0);
          assert.equal((await fs.read!(ROOT_CTX, node, fh, 0, 4096)).toString(), "legacy bytes");
          if (change === "removed") await fs.unlink!(ROOT_CTX, 1, "gone");
          else await fs.rename!(ROOT_CTX, 1, "other", 1, "gone", 0);
          await fs.release!(ROOT_CTX, node, fh, 0);
          listed = await listThrough(fs, "/");
        } finally {
          busy.release(); // Held, the put would keep the mount from stopping.
        }
        assert.deepEqual(listed, names);
        assert.equal(await runtime.settle(10_000), 0);
        assert.deepEqual(await listThrough(fs, "/"), names);
        // busy's alone: the file read is gone, and the one under its name now was not read.
        const copies = runtime.metrics.snapshot().copyOnRead;
        assert.deepEqual([copies.copied, copies.failed], [1, 0]);
      },
      { copyConcurrency: "1" },
    );
  });
}

// Only names of the forms a deletion or a publish makes (.riakfs-deleting.<12 hex>...,
// .riakfs-publish-<12 hex>) are riakfs's: another name that starts so is the user's file,
// listed, read and drained like any other.
Deno.test("drain: a user's file named .riakfs-deleting.<anything> or .riakfs-publish-<anything> is listed, read and drained; riakfs's own names stay hidden", async () => {
  await withOverlay("drain", async ({ fs, source, store, runtime }) => {
    await writeFile(join(source, ".riakfs-deleting.notes"), "the user's");
    await writeFile(join(source, ".riakfs-publish-notes"), "the user's too");
    await mkdir(join(source, ".riakfs-deleting.0123456789ab"));
    await writeFile(join(source, ".riakfs-publish-0123456789ab"), "a mount's");
    assert.deepEqual(await listThrough(fs, "/"), [
      ".riakfs-deleting.notes",
      ".riakfs-publish-notes",
    ]);
    assert.equal(
      (await readThrough(fs, "/.riakfs-publish-notes")).toString(),
      "the user's too",
    );
    assert.equal(
      (await readThrough(fs, "/.riakfs-deleting.notes")).toString(),
      "the user's",
    );
    await assert.rejects(lookupPath(fs, "/.riakfs-deleting.0123456789ab"), { errno: 2 });
    await assert.rejects(lookupPath(fs, "/.riakfs-publish-0123456789ab"), { errno: 2 });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/.riakfs-deleting.notes")).toString(), "the user's");
    assert.equal((await store.readFile("/.riakfs-publish-notes")).toString(), "the user's too");
    await assert.rejects(stat(join(source, ".riakfs-deleting.notes")), { code: "ENOENT" });
    await assert.rejects(stat(join(source, ".riakfs-publish-notes")), { code: "ENOENT" });
  });
});

Deno.test("drain: a listing puts back a directory an interrupted deletion moved aside (made at the name just then), listed as a directory", async () => {
  await withOverlay("drain", async ({ fs, source }) => {
    await mkdir(join(source, ".riakfs-deleting.00000000000f.dir"));
    await writeFile(join(source, ".riakfs-deleting.00000000000f.dir", "inside"), "kept");
    const { fh } = await fs.opendir!(ROOT_CTX, 1, 0);
    const listed = await readdir(fs, 1, fh, 0, 10);
    await fs.releasedir!(ROOT_CTX, 1, fh);
    assert.deepEqual(
      listed.filter((entry) => entry.name !== "." && entry.name !== "..").map((
        entry,
      ) => [entry.name, entry.mode & 0o170000]),
      [["dir", 0o040000]],
    );
    assert.equal((await readThrough(fs, "/dir/inside")).toString(), "kept");
    assert.equal((await stat(join(source, "dir", "inside"))).size, 4);
  });
});
