/**
 * Removing a file whose copy has not reached Riak: Riak is told nothing where it was seen to
 * hold nothing under the name (migrate's create asks it), and the removal still goes to
 * Riak wherever it may hold an older copy (shadow's create asks nothing; a rename in Riak
 * since; a copy that started).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Errno, type FileSystem } from "../fuse/mod.ts";
import { lookupPath, ROOT_CTX, until, withOverlay, writeThrough } from "./_overlay_fixture.ts";

const O_WRONLY_CREAT = 0o101;

/** Creates `name` in the root and writes `content` (the handle stays open). */
async function createWritten(fs: FileSystem, name: string, content: string) {
  const { entry, opened } = await fs.create!(ROOT_CTX, 1, name, O_WRONLY_CREAT, 0o644, 0o022);
  await fs.write!(ROOT_CTX, entry.nodeid, opened.fh, 0, Buffer.from(content));
  await fs.flush!(ROOT_CTX, entry.nodeid, opened.fh);
  return { nodeid: entry.nodeid, fh: opened.fh };
}

/** The paths of the removals the journal ever held. */
async function journaledRemovals(spool: string): Promise<string[]> {
  const lines = (await readFile(join(spool, "journal"), "utf8")).trim().split("\n");
  return lines.map((line) => JSON.parse(line))
    .filter((line) => line.op === "add" && line.mirror === "remove")
    .map((line) => line.path);
}

Deno.test("migrate: a file made under a name Riak lacks and removed before its copy started costs Riak nothing", async () => {
  await withOverlay("migrate", async ({ fs, store, spool, runtime, requests, resetCounts }) => {
    await assert.rejects(fs.lookup!(ROOT_CTX, 1, "tmp.1"), { errno: Errno.ENOENT });
    const file = await createWritten(fs, "tmp.1", "scratch");
    resetCounts();
    // The kernel's RELEASE comes after close(2) returned: here after the UNLINK.
    await fs.unlink!(ROOT_CTX, 1, "tmp.1");
    await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.deepEqual(
      { ...requests, mostReadsAtOnce: 0 },
      { gets: 0, heads: 0, puts: 0, deletes: 0, setFetches: 0, setUpdates: 0, mostReadsAtOnce: 0 },
      "no request after the create's look",
    );
    assert.deepEqual(await journaledRemovals(spool), [], "no removal journaled");
    assert.equal(await store.tryStat("/tmp.1"), undefined);
  });
});

Deno.test("shadow: a file made and removed under a name Riak holds an older copy of is removed from Riak", async () => {
  await withOverlay("shadow", async ({ fs, store, runtime }) => {
    for (const name of ["old.1", "old.2"]) {
      // Copied into Riak once, then removed from the source outside the mount.
      await store.writeFile(`/${name}`, Buffer.from("older"));
      const file = await createWritten(fs, name, "newer");
      if (name === "old.1") {
        await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
        await fs.unlink!(ROOT_CTX, 1, name);
      } else {
        await fs.unlink!(ROOT_CTX, 1, name);
        await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
      }
    }
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/old.1"), undefined);
    assert.equal(await store.tryStat("/old.2"), undefined);
  });
});

Deno.test("migrate: a name Riak lacked at its create but got by a rename since is removed from Riak", async () => {
  await withOverlay("migrate", async ({ fs, store, runtime }) => {
    await writeThrough(fs, "/other", Buffer.from("renamed over"));
    assert.equal(await runtime.settle(10_000), 0);
    const file = await createWritten(fs, "target", "made here");
    // Nothing of the target is queued (its writer has it open): Riak renames.
    await fs.rename!(ROOT_CTX, 1, "other", 1, "target", 0);
    assert.equal((await store.readFile("/target")).toString(), "renamed over");
    await fs.unlink!(ROOT_CTX, 1, "target");
    await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/target"), undefined);
    assert.equal(await store.tryStat("/other"), undefined);
  });
});

Deno.test("migrate: a new name whose copy reached Riak is removed from Riak", async () => {
  await withOverlay("migrate", async ({ fs, store, runtime, spool }) => {
    const file = await createWritten(fs, "kept.1", "kept a while");
    await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/kept.1")).toString(), "kept a while");
    await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/"), "kept.1");
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/kept.1"), undefined);
    assert.deepEqual(await journaledRemovals(spool), ["/kept.1"]);
  });
});

Deno.test("migrate: a name Riak lacked at its create but got by a directory renamed over its own is removed from Riak", async () => {
  await withOverlay("migrate", async ({ fs, store, source, runtime }) => {
    await fs.mkdir!(ROOT_CTX, 1, "from", 0o755, 0);
    await writeThrough(fs, "/from/x", Buffer.from("renamed along"));
    await fs.mkdir!(ROOT_CTX, 1, "to", 0o755, 0);
    assert.equal(await runtime.settle(10_000), 0);
    const to = await lookupPath(fs, "/to");
    const { entry, opened } = await fs.create!(ROOT_CTX, to, "x", O_WRONLY_CREAT, 0o644, 0o022);
    // Removed from the source by someone else, its writer still open: the directory is empty.
    await unlink(join(source, "to", "x"));
    await fs.rename!(ROOT_CTX, 1, "from", 1, "to", 0);
    assert.equal((await store.readFile("/to/x")).toString(), "renamed along");
    await fs.unlink!(ROOT_CTX, await lookupPath(fs, "/to"), "x");
    await fs.release!(ROOT_CTX, entry.nodeid, opened.fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/to/x"), undefined);
  });
});

Deno.test("migrate: a file made under a name Riak lacks is removed from Riak all the same while a put of the name may still land", async () => {
  await withOverlay("migrate", async ({ fs, store, spool, runtime, latePut, logLines }) => {
    await assert.rejects(fs.lookup!(ROOT_CTX, 1, "tmp.1"), { errno: Errno.ENOENT });
    // An earlier file of the name: its put timed out, and a node may apply it still.
    const landed = latePut("/tmp.1");
    const file = await createWritten(fs, "tmp.1", "scratch");
    await fs.unlink!(ROOT_CTX, 1, "tmp.1");
    await fs.release!(ROOT_CTX, file.nodeid, file.fh, 0);
    assert.deepEqual(await journaledRemovals(spool), ["/tmp.1"], "its removal journaled");
    await until(() => logLines.some((line) => line.includes("may still land")));
    // The put lands, then its answer comes: the removal, which waited, takes it away.
    await store.writeFile("/tmp.1", Buffer.from("the earlier file"));
    landed();
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal(await store.tryStat("/tmp.1"), undefined);
  });
});
