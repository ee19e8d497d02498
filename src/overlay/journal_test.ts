import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  goingOver,
  heldBefore,
  JournalError,
  JournalRoom,
  type NewUpload,
  pendingInJournal,
  type PendingMirror,
  type PendingUpload,
  stagedNames,
  UploadJournal,
} from "./journal.ts";
import { type FailingDisk, withFailingDisk } from "../util/_failing_disk.ts";
import { withFullFilesystem } from "../util/_full_filesystem.ts";

function upload(path: string, staged = path.slice(1)): NewUpload {
  return { path, staged, mode: 0o644, uid: 1, gid: 2, mtimeNs: "1700000000000000000", size: 3 };
}

async function withDirectory(body: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-journal-"));
  try {
    await body(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

Deno.test("pending uploads survive a reopen; completed ones do not", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const first = await UploadJournal.open(file);
    assert.deepEqual(first.pending, []);
    const a = await first.journal.add(upload("/a"));
    const b = await first.journal.add(upload("/b"));
    await first.journal.add(upload("/c"));
    await first.journal.complete(b);
    assert.equal(first.journal.pendingCount, 2);
    // No close: a crash leaves the file as written.
    const second = await UploadJournal.open(file);
    assert.deepEqual(second.pending.map((entry) => entry.path), ["/a", "/c"]);
    assert.deepEqual(second.pending[0], { id: a, ...upload("/a") });
    // Ids keep growing after a reopen, so a late "done" never hits a new entry.
    const d = await second.journal.add(upload("/d"));
    assert.ok(d > second.pending[1].id);
    await second.journal.close();
    await first.journal.close();
    // The reopen compacted the file to the pending entries.
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    assert.equal(lines.length, 3);
  });
});

Deno.test("pendingInJournal counts what is not done without rewriting the file; no file is none", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    assert.equal(await pendingInJournal(file), 0);
    const { journal } = await UploadJournal.open(file);
    const a = await journal.add(upload("/a"));
    await journal.add(upload("/b"));
    journal.mirror({ path: "/c", mirror: "copy" });
    await journal.complete(a);
    await journal.close();
    const before = await readFile(file);
    assert.equal(await pendingInJournal(file), 2);
    assert.deepEqual(await readFile(file), before);
    await appendFile(file, "{damaged\n");
    await assert.rejects(pendingInJournal(file), JournalError);
  });
});

Deno.test("concurrent appends all reach the file (group commit)", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, index) => journal.add(upload(`/f${index}`))),
    );
    assert.equal(new Set(ids).size, 50);
    await Promise.all(ids.filter((_, index) => index % 2 === 0).map((id) => journal.complete(id)));
    await journal.close();
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(
      pending.map((entry) => entry.path),
      Array.from({ length: 25 }, (_, index) => `/f${index * 2 + 1}`),
    );
    await again.close();
  });
});

Deno.test("a torn last line is ignored, a damaged middle line is an error", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    await journal.add(upload("/kept"));
    await journal.close();
    await appendFile(file, '{"op":"add","id":9,"pa');
    const reopened = await UploadJournal.open(file);
    assert.deepEqual(reopened.pending.map((entry) => entry.path), ["/kept"]);
    await reopened.journal.close();

    await writeFile(file, 'garbage\n{"op":"done","id":1}\n');
    await assert.rejects(UploadJournal.open(file), (error: unknown) => {
      assert.ok(error instanceof JournalError);
      assert.match(error.message, /line 1 is damaged/);
      return true;
    });
  });
});

Deno.test("a closed journal refuses appends", async () => {
  await withDirectory(async (directory) => {
    const { journal } = await UploadJournal.open(join(directory, "journal"));
    await journal.close();
    await assert.rejects(journal.add(upload("/x")), /journal is closed/);
  });
});

Deno.test("mirror entries survive a reopen beside staged uploads, in order", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const copy = await journal.mirror({ path: "/log", mirror: "copy" });
    const staged = await journal.add(upload("/a"));
    const removal = await journal.mirror({ path: "/gone", mirror: "remove" });
    await journal.complete(staged);
    // No close: a crash leaves the lines as written (not fsync'd: the page cache has them).
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending, [copy, removal]);
    assert.deepEqual(stagedNames(pending), new Set());
    await again.close();
    await journal.close();
  });
});

Deno.test("changes of names made while Riak was away survive a reopen, in order, with the version a removal expects", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    // rm f (only Riak held it, seen at one version); f made again; rmdir d; mkdir d.
    const removes = { size: 12, mtimeNs: "1700000000123456789" };
    const [removal] = await journal.addTogether([{ path: "/f", mirror: "remove", removes }]);
    const [again] = await journal.addTogether([upload("/f")]);
    const [rmdir] = await journal.addTogether([{ path: "/d", mirror: "remove", directory: true }]);
    const [mkdir] = await journal.addTogether([
      { path: "/d", mirror: "directory", set: { mode: 0o700, mtimeNs: "5" } },
    ]);
    // No close: a crash (SIGKILL) leaves the file as written and fsync'd.
    const first = await UploadJournal.open(file);
    assert.deepEqual(first.pending, [removal, again, rmdir, mkdir]);
    assert.deepEqual(first.pending[0], { id: removal.id, path: "/f", mirror: "remove", removes });
    // The rewrite at opening keeps them as they were.
    await first.journal.close();
    const second = await UploadJournal.open(file);
    assert.deepEqual(second.pending, [removal, again, rmdir, mkdir]);
    await second.journal.close();
    await journal.close();
  });
});

Deno.test("an upload keeps the version of Riak's file it replaces through a reopen; one journaled by an older riakfs, without it, replays as it was", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    // A line as riakfs wrote it before uploads carried the version they replace.
    const older = { id: 1, ...upload("/old") };
    await writeFile(file, JSON.stringify({ op: "add", ...older }) + "\n");
    const { journal } = await UploadJournal.open(file);
    const replaces = { size: 8, mtimeNs: "1700000000123456789" };
    const id = await journal.add({ ...upload("/new"), replaces });
    // No close: a crash (SIGKILL) leaves the file as written and fsync'd.
    const reopened = await UploadJournal.open(file);
    assert.deepEqual(reopened.pending, [older, { id, ...upload("/new"), replaces }]);
    assert.equal("replaces" in reopened.pending[0], false);
    assert.equal(heldBefore(reopened.pending[0] as PendingUpload), undefined);
    await reopened.journal.close();
    await journal.close();
  });
});

Deno.test("an upload that creates its file, and the removal of such a file, keep saying so through a reopen", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const creates = { ...upload("/new"), ...goingOver("nothing") };
    const id = await journal.add(creates);
    const [removal] = await journal.addTogether([{
      path: "/new",
      mirror: "remove",
      created: true,
      ours: [{ size: 3, mtimeNs: "1700000000000000000" }],
    }]);
    // No close: a crash (SIGKILL) leaves the file as written and fsync'd.
    const reopened = await UploadJournal.open(file);
    assert.deepEqual(reopened.pending, [{ id, ...creates }, removal]);
    assert.equal(heldBefore(reopened.pending[0] as PendingUpload), "nothing");
    await reopened.journal.close();
    await journal.close();
  });
});

Deno.test("uploads marked away as an outage begins stay marked through a reopen and its rewrite; one done stays done, a mirror is left as it is", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const creates = { ...upload("/new"), ...goingOver("nothing") };
    const replaces = { ...upload("/old"), ...goingOver({ size: 8, mtimeNs: "1" }) };
    const created = await journal.add(creates);
    const replaced = await journal.add(replaces);
    const landed = await journal.add({ ...upload("/landed"), ...goingOver("nothing") });
    const mirror = journal.mirror({ path: "/m", mirror: "copy" });
    await journal.complete(landed);
    const marked = await journal.markAway([created, replaced, landed, mirror.id]);
    assert.deepEqual(marked, [
      { id: created, ...creates, away: true },
      { id: replaced, ...replaces, away: true },
    ]);
    assert.deepEqual(await journal.markAway([created]), [], "marked once");
    // Its done line comes after its marked line.
    await journal.complete(created);
    // No close: a crash (SIGKILL) leaves the file as written and fsync'd.
    const reopened = await UploadJournal.open(file);
    assert.deepEqual(reopened.pending, [marked[1], mirror]);
    // The reopen rewrote the file with the entries as they are now.
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    assert.deepEqual(lines.map((line) => JSON.parse(line).away), [true, undefined]);
    const again = await UploadJournal.open(file);
    assert.deepEqual(again.pending, [marked[1], mirror]);
    await again.journal.close();
    await reopened.journal.close();
    await journal.close();
  });
});

Deno.test("a journal with an entry pending for long is rewritten, not left to grow", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    // A file open for weeks (a daemon's log) keeps its entry pending meanwhile.
    const kept = await journal.mirror({ path: "/var/log/app.log", mirror: "copy" });
    const staged = await journal.add(upload("/staged"));
    for (let index = 0; index < 20_000; index++) {
      await journal.complete((await journal.mirror({ path: `/tmp/f${index}`, mirror: "copy" })).id);
    }
    assert.ok((await stat(file)).size < 1024 * 1024, "rewritten along the way");
    // No close: what a crash would leave once the turn's done lines are written.
    await new Promise((resolve) => setImmediate(resolve));
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending.map((entry) => entry.id), [kept.id, staged]);
    await again.close();
    await journal.close();
  });
});

Deno.test("the staged sizes follow adds, completions, refused lines and a reopen", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const a = await journal.add({ ...upload("/a"), size: 10 });
    await journal.add({ ...upload("/b"), size: 20 });
    await journal.mirror({ path: "/c", mirror: "copy" });
    const sizes = journal.stagedSizes();
    assert.deepEqual([...sizes], [["a", 10], ["b", 20]]);
    await journal.complete(a);
    assert.deepEqual([...sizes], [["b", 20]], "the map follows the journal");
    // A rename while Riak is away: the upload under the new name shares the staged file.
    const [renamed] = await journal.addTogether([{ ...upload("/e", "b"), size: 20 }]);
    await journal.complete(renamed.id);
    assert.deepEqual([...sizes], [["b", 20]], "still named by /b's upload");
    await journal.close();
    await assert.rejects(journal.add(upload("/d")), JournalError);
    assert.deepEqual([...journal.stagedSizes()], [["b", 20]], "a refused line is not pending");
    const { journal: again } = await UploadJournal.open(file);
    assert.deepEqual([...again.stagedSizes()], [["b", 20]]);
    await again.close();
  });
});

Deno.test("a journal reopened with entries pending is rewritten once they are done", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const lines = Array.from(
      { length: 5_000 },
      (_, index) =>
        JSON.stringify({ op: "add", id: index + 1, path: `/f${index}`, mirror: "copy" }),
    );
    await writeFile(file, lines.join("\n") + "\n");
    const { journal } = await UploadJournal.open(file);
    await journal.complete(...Array.from({ length: 4_999 }, (_, index) => index + 2));
    for (let index = 0; index < 20_000; index++) {
      await journal.complete((await journal.mirror({ path: `/tmp/f${index}`, mirror: "copy" })).id);
    }
    await journal.close();
    assert.ok((await stat(file)).size < 1024 * 1024, "rewritten along the way");
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending.map((entry) => entry.id), [1]);
    await again.close();
  });
});

Deno.test("a journal of 150,000 pending entries opens (an outage during an untar)", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const lines = Array.from(
      { length: 150_000 },
      (_, index) =>
        JSON.stringify({ op: "add", id: index + 1, path: `/f${index}`, mirror: "copy" }),
    );
    await writeFile(file, lines.join("\n") + "\n");
    const { journal, pending } = await UploadJournal.open(file);
    assert.equal(pending.length, 150_000);
    assert.equal((await journal.mirror({ path: "/next", mirror: "copy" })).id, 150_001);
    await journal.close();
  });
});

Deno.test("a line the disk had no room for is taken back, not left torn", async () => {
  await withDirectory(async (directory) => {
    const small = join(directory, "small");
    await mkdir(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small]);
    try {
      const file = join(small, "journal");
      const { journal } = await UploadJournal.open(file);
      const written: number[] = [];
      let refused = 0;
      for (let index = 0; index < 2_000 && refused < 3; index++) {
        try {
          written.push(
            (await journal.mirror({ path: `/f${index}-${"x".repeat(1000)}`, mirror: "copy" })).id,
          );
        } catch (error) {
          assert.ok(error instanceof JournalError, String(error));
          assert.equal(error.code, "ENOSPC", "answered as a full local disk answers");
          refused++;
        }
      }
      assert.equal(refused, 3, "the disk filled up");
      assert.equal(journal.pendingCount, written.length, "a refused line is not pending");
      // Room again: the next line must not land after a torn one.
      execFileSync("mount", ["-o", "remount,size=256k", small]);
      written.push((await journal.mirror({ path: "/after", mirror: "copy" })).id);
      await journal.close();
      const { journal: again, pending } = await UploadJournal.open(file);
      assert.deepEqual(pending.map((entry) => entry.id), written);
      await again.close();
    } finally {
      execFileSync("umount", ["-l", small]);
    }
  });
});

Deno.test("a burst of mirrors done is written as one append after the turn, and by close", async () => {
  await withDirectory(async (directory) => {
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const mirrors = await Promise.all(
      ["/a", "/b", "/c"].map((path) => journal.mirror({ path, mirror: "copy" })),
    );
    const staged = await journal.add(upload("/s"));
    await journal.complete(staged);
    for (const mirror of mirrors) await journal.complete(mirror.id);
    assert.equal(journal.pendingCount, 0);
    // A crash now mirrors the three again (never loses one); the staged upload's done is synced.
    const beforeTheTurn = readFileSync(file, "utf8");
    assert.deepEqual(
      beforeTheTurn.trim().split("\n").filter((line) => line.includes('"done"')),
      [`{"op":"done","id":${staged}}`],
    );
    await new Promise((resolve) => setImmediate(resolve));
    const afterTheTurn = (await readFile(file, "utf8")).trim().split("\n");
    assert.deepEqual(
      afterTheTurn.slice(-3),
      mirrors.map((mirror) => `{"op":"done","id":${mirror.id}}`),
    );
    const last = await journal.mirror({ path: "/d", mirror: "remove" });
    await journal.complete(last.id);
    await journal.close(); // Before the turn ends: close writes it.
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending, []);
    await again.close();
  });
});

Deno.test("a journal with entries pending opens on a full disk, appended to as it is", async () => {
  await withFullFilesystem(async ({ directory, makeRoom, fill }) => {
    makeRoom(64 * 1024);
    const file = join(directory, "journal");
    const first = await UploadJournal.open(file);
    const a = await first.journal.add(upload("/a"));
    const b = await first.journal.add(upload("/b"));
    await first.journal.add(upload("/c"));
    await first.journal.complete(b);
    // No close (a kill -9), then the disk fills up, and a line is cut off.
    await appendFile(file, '{"op":"add","id":99,"pa');
    fill();
    const second = await UploadJournal.open(file);
    assert.deepEqual(second.pending.map((entry) => entry.path), ["/a", "/c"]);
    assert.equal(second.pending[0].id, a);
    // The journal's last block has room for a line; an id is never used twice.
    const d = await second.journal.add(upload("/d"));
    assert.ok(d > b, "a new entry's id is past every id in the file, done ones too");
    await second.journal.complete(a);
    await second.journal.close();
    await first.journal.close();
    assert.deepEqual(
      (await readdir(directory)).sort(),
      [".filler", "journal", "journal.room"],
      "no half-written rewrite left taking room",
    );
    makeRoom(64 * 1024);
    const third = await UploadJournal.open(file);
    assert.deepEqual(third.pending.map((entry) => entry.path), ["/c", "/d"]);
    await third.journal.close();
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    assert.equal(lines.length, 2, "compacted at the first start with room");
  });
});

Deno.test("on a disk the applications filled, the journal's lines take the room kept for them: a close after the write(2)s took the disk is not refused", async () => {
  await withFullFilesystem(async ({ directory, makeRoom, fill }) => {
    makeRoom(512 * 1024);
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const room = join(directory, "journal.room");
    assert.equal(statSync(room).size, 256 * 1024, "room kept when the journal opens");
    fill(); // The applications took the rest; the journal file has no block yet.
    const ids: number[] = [];
    for (let index = 0; index < 100; index++) {
      ids.push(await journal.add(upload(`/f${index}-${"x".repeat(500)}`)));
    }
    const left = statSync(room).size;
    assert.ok(left < 256 * 1024 && left > 128 * 1024, `${left} bytes of room left`);
    await journal.close();
    const again = await UploadJournal.open(file);
    assert.deepEqual(again.pending.map((entry) => entry.id), ids, "every line whole");
    await again.journal.close();
  });
});

Deno.test("a journal written again after its spool was removed keeps its room again: a close on the disk that filled up afterwards is not refused", async () => {
  await withFullFilesystem(async ({ directory, makeRoom, fill }) => {
    makeRoom(512 * 1024);
    const file = join(directory, "journal");
    const { journal } = await UploadJournal.open(file);
    try {
      // The spool removed while mounted (an operator's rm -rf), then made again.
      rmSync(file);
      rmSync(join(directory, "journal.room"));
      journal.recreate();
      fill(); // The applications took the rest.
      const id = await journal.add(upload(`/after-${"x".repeat(500)}`));
      assert.equal(journal.pendingCount, 1);
      await journal.complete(id);
    } finally {
      await journal.close();
    }
  });
});

Deno.test("the journal's room is given back a block at a time, and taken again as far as the disk has it", async () => {
  await withFullFilesystem(({ directory, makeRoom }) => {
    makeRoom(100 * 1024);
    const room = new JournalRoom(join(directory, "journal.room"));
    room.refill(true);
    assert.equal(room.bytes, 100 * 1024, "what the disk had, not more");
    assert.equal(statSync(room.file).size, room.bytes);
    assert.ok(room.release(300));
    assert.equal(room.bytes, 96 * 1024, "one block for a short line");
    assert.ok(room.release(5000));
    assert.equal(room.bytes, 88 * 1024, "two for a longer one");
    assert.equal(statSync(room.file).size, room.bytes);
    makeRoom(512 * 1024);
    room.refill();
    assert.equal(room.bytes, 88 * 1024, "tried at most once a second");
    room.refill(true);
    assert.equal(room.bytes, 256 * 1024, "up to its size");
    rmSync(room.file);
    assert.equal(room.release(300), false, "removed: nothing to give");
  });
});

Deno.test("a mark written as the journal reaches its size for compaction stays through the rewrite (away, ours)", async () => {
  const marks: [
    string,
    (journal: UploadJournal, id: number) => Promise<unknown>,
    Partial<PendingUpload>,
  ][] = [
    ["away", (journal, id) => journal.markAway([id]), { away: true }],
    ["ours", (journal, id) => journal.noteOurs(id, [{ size: 5, mtimeNs: "7" }]), {
      ours: [{ size: 5, mtimeNs: "7" }],
    }],
  ];
  for (const [name, mark, marked] of marks) {
    await withDirectory(async (directory) => {
      const file = join(directory, "journal");
      const { journal } = await UploadJournal.open(file);
      const journaled = { ...upload("/a"), ...goingOver({ size: 8, mtimeNs: "1" }) };
      const id = await journal.add(journaled);
      // Lines done fill the file up to just below the size that compacts it.
      while (statSync(file).size < 1024 * 1024 - 200) {
        await journal.complete(journal.mirror({ path: "/tmp/f", mirror: "copy" }).id);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const before = statSync(file).size;
      await mark(journal, id);
      assert.ok(statSync(file).size < before, `${name}: the mark's line compacted the file`);
      // No close: a crash (SIGKILL) leaves the file as written.
      const reopened = await UploadJournal.open(file);
      assert.deepEqual(reopened.pending, [{ id, ...journaled, ...marked }], name);
      await reopened.journal.close();
      await journal.close();
    });
  }
});

/**
 * An upload whose line needs blocks the disk never held: those a {@link withFailingDisk}
 * fails to write back.
 */
function longUpload(path: string): NewUpload {
  return upload(`${path}-${"x".repeat(3 * 4096)}`, path.slice(1));
}

/** Asserts that `adding` is refused as the failing disk answered. */
async function refused(adding: Promise<number>): Promise<void> {
  await assert.rejects(adding, (error: unknown) => {
    assert.ok(error instanceof JournalError, String(error));
    assert.equal(error.code, "ENOSPC", "answered as the disk answered the fsync");
    return true;
  });
}

/** A journal on a {@link FailingDisk} whose fsync failed, as {@link afterFailedSync} left it. */
interface FailedSync {
  disk: FailingDisk;
  file: string;
  journal: UploadJournal;
  /** A mirror's line, not synced by itself: the fsync that failed covered it too. */
  mirrored: PendingMirror;
}

/** Runs `test` once an fsync of a journal on a failing disk failed, refusing an upload. */
async function afterFailedSync(test: (failed: FailedSync) => Promise<void>): Promise<void> {
  await withFailingDisk(async (disk) => {
    const file = join(disk.directory, "journal");
    const { journal } = await UploadJournal.open(file);
    const mirrored = journal.mirror({ path: "/mirrored", mirror: "copy" });
    disk.fail();
    await refused(journal.add(longUpload("/failed")));
    await test({ disk, file, journal, mirrored });
  });
}

Deno.test("an upload whose fsync fails is refused and not pending; no line is taken until the journal is written anew", async () => {
  await afterFailedSync(async ({ disk, file, journal, mirrored }) => {
    assert.deepEqual(journal.stagedSizes(), new Map(), "the refused upload is not pending");
    assert.equal(journal.pendingCount, 1);
    // The file may have lost lines (the mirror's too): none goes after them, which the next
    // start would find damaged, until the file is written anew.
    await refused(journal.add(upload("/meanwhile")));
    assert.throws(() => journal.mirror({ path: "/m2", mirror: "copy" }), JournalError);
    assert.equal(journal.pendingCount, 1);
    disk.heal();
    await journal.add(upload("/after"));
    await journal.complete(mirrored.id);
    await journal.add(upload("/last"));
    await journal.close();
    // What the disk holds, not what memory still had of the file.
    disk.remount();
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending.map((entry) => entry.path), ["/after", "/last"]);
    await again.close();
  });
});

Deno.test("the next start after fsyncs failed takes the journal as its disk kept it, a torn or lost last line left out", async () => {
  await afterFailedSync(async ({ disk, file, journal }) => {
    // The mount stops with its disk failing: the next start finds what the disk kept.
    await journal.close();
    disk.remount();
    disk.heal();
    const kept = readFileSync(file);
    assert.ok(!kept.toString().includes('"/failed'), "the failed line was not written back");
    const { journal: again, pending } = await UploadJournal.open(file);
    // The mirror's line, never synced, went with the pages the disk did not keep.
    assert.deepEqual(pending, []);
    await again.add(upload("/next"));
    await again.close();
    const { journal: third, pending: later } = await UploadJournal.open(file);
    assert.deepEqual(later.map((entry) => entry.path), ["/next"]);
    await third.close();
  });
});

Deno.test("a journal closed after an fsync failed is written anew if its disk takes it: what is pending survives", async () => {
  await afterFailedSync(async ({ disk, file, journal }) => {
    disk.heal();
    await journal.close();
    disk.remount();
    const { journal: again, pending } = await UploadJournal.open(file);
    assert.deepEqual(pending.map((entry) => entry.path), ["/mirrored"]);
    await again.close();
  });
});
