import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UploadJournal } from "./journal.ts";
import {
  defaultSpoolDirectory,
  formerSystemSpoolDirectory,
  Spool,
  SYSTEM_SPOOL_ROOT,
  systemSpoolName,
} from "./spool.ts";

/** Stages `content` in a new staged file of `spool`; returns its name. */
async function staged(spool: Spool, content: string): Promise<string> {
  const file = await spool.create();
  try {
    await file.handle.write(content);
  } finally {
    await file.handle.close();
  }
  return file.name;
}

Deno.test("spool usage counts the staged files of pending uploads at their journaled sizes, without a look at each", async () => {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-spool-"));
  try {
    const spool = Spool.open(join(directory, "spool"));
    const { journal } = await UploadJournal.open(spool.journalFile);
    try {
      // A staged file is never written after it was journaled: the journal's size is its size
      // (here, to tell whether the file was looked at, the journal says more than it holds).
      const pending = await staged(spool, "12345");
      await journal.add({
        path: "/pending.txt",
        staged: pending,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtimeNs: "0",
        size: 1_000_000,
      });
      await staged(spool, "being written"); // No journal entry yet: looked at.
      assert.deepEqual(await spool.usage(journal.stagedSizes()), {
        files: 2,
        bytes: 1_000_000 + "being written".length,
      });
      assert.deepEqual(await spool.usage(), { files: 2, bytes: 5 + "being written".length });
    } finally {
      await journal.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

Deno.test("the riak preset's default spools of two mountpoints that read alike are two", () => {
  const plain = defaultSpoolDirectory(undefined, "/x/y/m");
  const underscored = defaultSpoolDirectory(undefined, "/x_y/m");
  // A mountpoint whose name lost nothing keeps the name older riakfs versions gave it.
  assert.equal(plain, join(SYSTEM_SPOOL_ROOT, "spool_x_y_m"));
  assert.equal(formerSystemSpoolDirectory("/x/y/m"), undefined);
  assert.notEqual(underscored, plain);
  assert.match(underscored, /^\/var\/lib\/riakfs\/spool_x_y_m\+[0-9a-f]{12}$/);
  assert.equal(formerSystemSpoolDirectory("/x_y/m"), plain);
  // Every other character made `_` is told apart the same way, each mountpoint by its own.
  const spaced = systemSpoolName("/x y/m");
  assert.notEqual(spaced, systemSpoolName("/x_y/m"));
  assert.ok(spaced.startsWith("spool_x_y_m+"));
  // The name of a mountpoint with nothing lost never holds the `+` of a hashed one.
  assert.equal(systemSpoolName("/x/y/m-0123456789ab"), "spool_x_y_m-0123456789ab");
  assert.match(systemSpoolName("/x/y/m+0123456789ab"), /^spool_x_y_m_0123456789ab\+/);
  // A mount with a source keeps its spool there.
  assert.equal(defaultSpoolDirectory("/srv/src", "/x_y/m"), "/srv/src/.riakfs-spool");
});

Deno.test("removeIfIdle removes a spool where nothing waits, lock last; a staged file, a publish record, a set-aside file or a symlink keep it", async () => {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-spool-"));
  try {
    const open = async (name: string) => {
      const spool = Spool.open(join(directory, name));
      await (await UploadJournal.open(spool.journalFile)).journal.close();
      await writeFile(join(spool.directory, "lock"), "held\n");
      return spool;
    };
    const idle = await open("idle");
    let lockAtRelease: string[] = [];
    const removed = await idle.removeIfIdle(() => {
      lockAtRelease = readdirSync(idle.directory);
      rmSync(join(idle.directory, "lock"));
    });
    assert.equal(removed, true);
    assert.deepEqual(lockAtRelease, ["lock"]);
    assert.equal(existsSync(idle.directory), false);

    const keeps = {
      staged: async (spool: Spool) => void await staged(spool, "a write cut off"),
      publishing: (spool: Spool) => spool.recordPublish("ab12", "/a.txt", { dev: 1n, ino: 2n }),
      unreferenced: async (spool: Spool) => {
        await staged(spool, "no entry names it");
        await spool.setAsideUnreferenced(new Set());
      },
    };
    for (const [what, keep] of Object.entries(keeps)) {
      const spool = await open(what);
      await keep(spool);
      let released = false;
      assert.equal(await spool.removeIfIdle(() => released = true), false, what);
      assert.equal(released, false, what);
      assert.ok(existsSync(spool.journalFile), what);
    }
    const target = await open("target");
    const link = join(directory, "link");
    await symlink(target.directory, link);
    assert.equal(await Spool.notMadeYet(link).removeIfIdle(() => {}), false);
    assert.ok(existsSync(target.journalFile));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
