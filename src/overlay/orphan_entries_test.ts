/**
 * rmdir of, and renames over, directories whose Riak entries are orphans (names with nothing
 * stored behind them, made here by adding set members directly, as an add Riak applied after
 * the name's removal leaves them), in the presets that show Riak's listing, and the queued
 * removal in Riak of a directory a shadow mount removed locally.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import { addOrphanEntry } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import { isFuseError, listThrough, lookupPath, ROOT_CTX, withOverlay } from "./_overlay_fixture.ts";
import { ORPHAN_ENTRIES_PER_RMDIR } from "./orphan_entries.ts";

const RIAK_LISTING_PRESETS = ["riak", "migrate", "drain"];

/** The entries Riak lists in `directory`, as `type:name`, sorted. */
async function listedInRiak(store: Store, directory: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of store.list(directory)) {
    names.push(`${entry.type}:${entry.name.toString()}`);
  }
  return names.sort();
}

for (const preset of RIAK_LISTING_PRESETS) {
  Deno.test(`${preset}: rmdir of a directory Riak lists only orphan entries in removes them, then the directory`, async () => {
    await withOverlay(preset, async ({ fs, store, client, source, logLines }) => {
      await store.mkdir("d");
      // Migrate and drain: the source's empty directory of the name goes too.
      if (preset !== "riak") await mkdir(join(source, "d"));
      await addOrphanEntry(client, store, "d", "file", "gone.txt");
      await addOrphanEntry(client, store, "d", "symlink", "gone-link");
      await addOrphanEntry(client, store, "d", "directory", "gone-dir");
      // What `ls -l` meets: READDIR names them, LOOKUP of each answers ENOENT (no rm reaches
      // them), and rmdir answered ENOTEMPTY.
      assert.deepEqual(await listThrough(fs, "/d"), ["gone-dir", "gone-link", "gone.txt"]);
      await assert.rejects(lookupPath(fs, "/d/gone.txt"), isFuseError(Errno.ENOENT));

      await fs.rmdir!(ROOT_CTX, 1, "d");

      assert.equal(await store.tryStat("d"), undefined, "Riak's directory is gone");
      assert.deepEqual(await listedInRiak(store, ""), []);
      assert.equal(existsSync(join(source, "d")), false, "so is the source's");
      const logged = logLines.filter((line) => line.includes("orphan entry removed"));
      assert.equal(logged.length, 3, "each one said");
      // Made again, it lists none of them: the entries went, not only the directory.
      await store.mkdir("d");
      assert.deepEqual(await listedInRiak(store, "d"), []);
    });
  });

  Deno.test(`${preset}: rmdir of a directory listing a stored entry beside orphan entries answers ENOTEMPTY and removes nothing`, async () => {
    await withOverlay(preset, async ({ fs, store, client }) => {
      await store.writeFile("d/kept.txt", Buffer.from("kept"));
      await addOrphanEntry(client, store, "d", "file", "gone.txt");
      await assert.rejects(fs.rmdir!(ROOT_CTX, 1, "d"), isFuseError(Errno.ENOTEMPTY));
      assert.deepEqual(await listedInRiak(store, "d"), ["file:gone.txt", "file:kept.txt"]);
      assert.equal((await store.readFile("d/kept.txt")).toString(), "kept");
    });
  });
}

for (const preset of RIAK_LISTING_PRESETS) {
  Deno.test(`${preset}: a rename over a directory Riak lists only orphan entries in removes them and replaces it`, async () => {
    await withOverlay(preset, async ({ fs, store, client, logLines }) => {
      await store.writeFile("s/moved.txt", Buffer.from("moved"));
      await store.mkdir("d");
      await addOrphanEntry(client, store, "d", "file", "gone.txt");
      await addOrphanEntry(client, store, "d", "directory", "gone-dir");

      await fs.rename!(ROOT_CTX, 1, "s", 1, "d", 0);

      assert.deepEqual(await listedInRiak(store, ""), ["directory:d"]);
      assert.deepEqual(await listedInRiak(store, "d"), ["file:moved.txt"], "no orphan left");
      assert.equal((await store.readFile("d/moved.txt")).toString(), "moved");
      assert.deepEqual(await listThrough(fs, "/d"), ["moved.txt"]);
      const logged = logLines.filter((line) => line.includes("orphan entry removed"));
      assert.equal(logged.length, 2, "each one said");
    });
  });

  Deno.test(`${preset}: a rename over a directory listing a stored entry beside orphan entries answers ENOTEMPTY and changes nothing`, async () => {
    await withOverlay(preset, async ({ fs, store, client }) => {
      await store.writeFile("s/moved.txt", Buffer.from("moved"));
      await store.writeFile("d/kept.txt", Buffer.from("kept"));
      await addOrphanEntry(client, store, "d", "file", "gone.txt");
      await assert.rejects(
        fs.rename!(ROOT_CTX, 1, "s", 1, "d", 0),
        isFuseError(Errno.ENOTEMPTY),
      );
      assert.deepEqual(await listedInRiak(store, "d"), ["file:gone.txt", "file:kept.txt"]);
      assert.deepEqual(await listedInRiak(store, "s"), ["file:moved.txt"]);
    });
  });
}

Deno.test("riak: a rename over a directory listing more orphan entries than rmdir takes answers ENOTEMPTY and removes none", async () => {
  await withOverlay("riak", async ({ fs, store, client }) => {
    await store.mkdir("s");
    await store.mkdir("d");
    const names = Array.from({ length: ORPHAN_ENTRIES_PER_RMDIR + 1 }, (_, i) => `gone-${i}`);
    for (const name of names) await addOrphanEntry(client, store, "d", "file", name);
    await assert.rejects(fs.rename!(ROOT_CTX, 1, "s", 1, "d", 0), isFuseError(Errno.ENOTEMPTY));
    assert.equal((await listedInRiak(store, "d")).length, names.length);
    assert.deepEqual(await listedInRiak(store, ""), ["directory:d", "directory:s"]);
  });
});

Deno.test("riak: rmdir of a directory listing more orphan entries than it takes answers ENOTEMPTY and removes none", async () => {
  await withOverlay("riak", async ({ fs, store, client }) => {
    await store.mkdir("d");
    const names = Array.from({ length: ORPHAN_ENTRIES_PER_RMDIR + 1 }, (_, i) => `gone-${i}`);
    for (const name of names) await addOrphanEntry(client, store, "d", "file", name);
    await assert.rejects(fs.rmdir!(ROOT_CTX, 1, "d"), isFuseError(Errno.ENOTEMPTY));
    assert.equal((await listedInRiak(store, "d")).length, names.length);
  });
});

Deno.test("shadow: the queued removal in Riak of a directory removed locally removes its orphan entries, then the directory", async () => {
  await withOverlay("shadow", async ({ fs, store, client, source, runtime, logLines }) => {
    await mkdir(join(source, "d"));
    await store.mkdir("d");
    await addOrphanEntry(client, store, "d", "file", "gone.txt");
    await addOrphanEntry(client, store, "d", "directory", "gone-dir");

    await fs.rmdir!(ROOT_CTX, 1, "d");
    assert.equal(await runtime.settle(10_000), 0, "the removal ran");

    assert.equal(existsSync(join(source, "d")), false);
    assert.equal(await store.tryStat("d"), undefined, "Riak's directory is gone");
    assert.deepEqual(await listedInRiak(store, ""), []);
    assert.deepEqual(logLines.filter((line) => line.includes("kept in Riak")), []);
    const logged = logLines.filter((line) => line.includes("orphan entry removed"));
    assert.equal(logged.length, 2, "each one said");
    await store.mkdir("d");
    assert.deepEqual(await listedInRiak(store, "d"), [], "the entries went too");
  });
});

Deno.test("shadow: the queued removal in Riak of a directory listing a stored entry beside orphan entries keeps it and them", async () => {
  await withOverlay("shadow", async ({ fs, store, client, source, runtime, logLines }) => {
    await mkdir(join(source, "d"));
    await store.writeFile("d/kept.txt", Buffer.from("another host's"));
    await addOrphanEntry(client, store, "d", "file", "gone.txt");

    await fs.rmdir!(ROOT_CTX, 1, "d");
    assert.equal(await runtime.settle(10_000), 0, "the removal ran");

    assert.equal(existsSync(join(source, "d")), false);
    assert.deepEqual(await listedInRiak(store, "d"), ["file:gone.txt", "file:kept.txt"]);
    assert.equal((await store.readFile("d/kept.txt")).toString(), "another host's");
    assert.equal(logLines.filter((line) => line.includes("kept in Riak")).length, 1);
  });
});

for (const preset of ["migrate", "drain"]) {
  Deno.test(`${preset}: an orphan entry whose name the source holds is no orphan to rmdir`, async () => {
    await withOverlay(preset, async ({ fs, store, client, source }) => {
      await store.mkdir("d");
      await mkdir(join(source, "d"));
      await writeFile(join(source, "d", "gone.txt"), "local");
      await addOrphanEntry(client, store, "d", "file", "gone.txt");
      await assert.rejects(fs.rmdir!(ROOT_CTX, 1, "d"), isFuseError(Errno.ENOTEMPTY));
      assert.deepEqual(await listedInRiak(store, "d"), ["file:gone.txt"], "left in place");
      assert.ok(existsSync(join(source, "d", "gone.txt")));
    });
  });
}

for (const preset of ["riak", "drain"]) {
  Deno.test(`${preset}: a file stored under an orphan entry's name after the mount looked at it stays, and rmdir answers ENOTEMPTY`, async () => {
    await withOverlay(preset, async ({ fs, store, client, holdFetchedSet }) => {
      await store.mkdir("d");
      await addOrphanEntry(client, store, "d", "file", "x");
      // The mount's look at d/x asks for the index of a directory d/x (after the file's get):
      // once that was read, the next read of d's shard is the removal's.
      const mountLooks = holdFetchedSet("d/x/");
      const outcome = fs.rmdir!(ROOT_CTX, 1, "d").then(
        () => "removed",
        (error) => error instanceof FuseError ? error.errno : error,
      );
      const reached = (hold: { reached: Promise<void> }) =>
        Promise.race([hold.reached.then(() => "reached"), outcome]);
      assert.equal(await reached(mountLooks), "reached", "the mount looked at d/x");
      mountLooks.release(); // Its request goes on only once this test awaits.
      const removalReads = holdFetchedSet("d/");
      assert.equal(await reached(removalReads), "reached", "then the removal read d's shard");
      // Another host writes x now: found absent by the mount, it is stored all the same.
      await store.writeFile("d/x", Buffer.from("written meanwhile"));
      removalReads.release();
      assert.equal(await outcome, Errno.ENOTEMPTY);
      assert.deepEqual(await listedInRiak(store, "d"), ["file:x"]);
      assert.equal((await store.readFile("d/x")).toString(), "written meanwhile");
      assert.deepEqual(await listThrough(fs, "/d"), ["x"]);
    });
  });
}
