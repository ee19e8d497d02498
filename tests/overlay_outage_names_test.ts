/**
 * Names changed during a Riak outage in the presets that write Riak only (drain, riak): what
 * applications do while Riak is away, on files whose bytes are in the spool. An editor saves
 * atomically (writes `f.tmp`, fsyncs, renames it over `f`), a job moves its output into place,
 * removes its scratch files, makes a directory to write into and removes an empty one. Each
 * must work during the outage, and once Riak is back, Riak holds exactly the tree the
 * applications saw, also when riakfs was killed (SIGKILL) during the outage and mounted again.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import {
  assertGone,
  eventually,
  type OutageScenario,
  outageTests,
  riakNames,
  waitForQuiet,
} from "./_overlay.ts";

/** Writes `content` to `path` and fsyncs it before closing, as an editor's save does. */
async function writeSynced(path: string, content: Uint8Array): Promise<void> {
  const handle = await fsp.open(path, "w");
  try {
    await handle.writeFile(content);
    await handle.sync().catch((error) => {
      // fsync waits for Riak, which is away: the bytes are journaled all the same.
      if ((error as NodeJS.ErrnoException).code !== "EIO") throw error;
    });
  } finally {
    await handle.close();
  }
}

/** Saves `content` as an editor does: a temporary file renamed over the name. */
async function saveAtomically(path: string, content: Uint8Array): Promise<void> {
  await writeSynced(`${path}.tmp`, content);
  await fsp.rename(`${path}.tmp`, path);
}

async function changeNamesThroughOutage(
  { env, preset, ending, outage }: OutageScenario,
): Promise<void> {
  const app = join(env.mountpoint, "app");
  await fsp.mkdir(app);
  await fsp.writeFile(join(app, "doc.txt"), "doc before the outage");
  await waitForQuiet(env); // Riak holds app/doc.txt.
  const files = new Map<string, Uint8Array>();
  const removed = ["notes.txt.tmp", "draft.bin", "scratch.bin", "empty", "gone"];
  /** What Riak lists in app at the end. */
  const names = ["doc.txt", "final.bin", "first.bin", "new", "notes.txt"];
  const write = async (name: string, content: Uint8Array) => {
    await writeSynced(join(app, name), content);
    files.set(name, content);
  };
  await outage.stopRiak(() => write("first.bin", seededBytes(800, 3_000)));

  // An atomic save over a file written during the outage, twice.
  await write("notes.txt", seededBytes(801, 2_000));
  for (const seed of [802, 803]) {
    await saveAtomically(join(app, "notes.txt"), seededBytes(seed, 2_500));
    files.set("notes.txt", seededBytes(seed, 2_500));
  }
  // A file only Riak holds cannot be looked at: left as it is (src/overlay's outage tests
  // save over one whose stat the mount still holds).
  files.set("doc.txt", Buffer.from("doc before the outage"));
  // A file moved into place, a large one (chunked in Riak) too.
  await writeSynced(join(app, "draft.bin"), seededBytes(806, 1_500_000));
  await fsp.rename(join(app, "draft.bin"), join(app, "final.bin"));
  files.set("final.bin", seededBytes(806, 1_500_000));
  // A scratch file removed.
  await writeSynced(join(app, "scratch.bin"), seededBytes(807, 500));
  await fsp.unlink(join(app, "scratch.bin"));
  // A new directory written into, and a file saved atomically in it.
  await fsp.mkdir(join(app, "new"), { mode: 0o750 });
  await write("new/a.txt", seededBytes(808, 700));
  await saveAtomically(join(app, "new/b.txt"), seededBytes(809, 900));
  files.set("new/b.txt", seededBytes(809, 900));
  if (preset === "drain") {
    // Legacy files (only in the source) written over during the outage: the local copy
    // each write superseded goes when its name is saved over, moved or removed, never to
    // come back through the union or into Riak.
    await fsp.mkdir(join(env.source, "app"), { recursive: true });
    for (const name of ["legacy-saved.txt", "legacy-moved.txt", "legacy-removed.txt"]) {
      await fsp.writeFile(join(env.source, "app", name), `legacy ${name}`);
    }
    await write("legacy-saved.txt", seededBytes(811, 300));
    await saveAtomically(join(app, "legacy-saved.txt"), seededBytes(812, 400));
    files.set("legacy-saved.txt", seededBytes(812, 400));
    await writeSynced(join(app, "legacy-moved.txt"), seededBytes(813, 500));
    await fsp.rename(join(app, "legacy-moved.txt"), join(app, "legacy-here.txt"));
    files.set("legacy-here.txt", seededBytes(813, 500));
    await writeSynced(join(app, "legacy-removed.txt"), seededBytes(814, 600));
    await fsp.unlink(join(app, "legacy-removed.txt"));
    removed.push("legacy-moved.txt", "legacy-removed.txt");
    names.push("legacy-here.txt", "legacy-saved.txt");
  }
  // An empty directory removed, and one whose only file was removed first.
  await fsp.mkdir(join(app, "empty"));
  await fsp.rmdir(join(app, "empty"));
  await fsp.mkdir(join(app, "gone"));
  await writeSynced(join(app, "gone/x"), seededBytes(810, 100));
  await fsp.unlink(join(app, "gone/x"));
  await fsp.rmdir(join(app, "gone"));

  const assertTreeThroughMount = async (riakAway: boolean) => {
    for (const [name, content] of files) {
      if (riakAway && name === "doc.txt") continue; // Only Riak holds it.
      assert.ok(
        Buffer.from(content).equals(await fsp.readFile(join(app, name))),
        `${name} through the mount`,
      );
    }
    for (const name of removed) await assertGone(join(app, name));
    assert.equal((await fsp.stat(join(app, "new"))).mode & 0o777, 0o750);
  };
  await assertTreeThroughMount(true);
  // drain lists the union, degraded to what the mount holds (not doc.txt, only in Riak);
  // riak's listings are Riak's.
  if (preset === "drain") {
    assert.deepEqual(
      (await fsp.readdir(app)).sort(),
      names.filter((name) => name !== "doc.txt").sort(),
    );
    assert.deepEqual((await fsp.readdir(join(app, "new"))).sort(), ["a.txt", "b.txt"]);
  }

  await outage.end(ending);
  await waitForQuiet(env);
  for (const [name, content] of files) {
    assert.ok(
      Buffer.from(content).equals(await env.store.readFile(`/app/${name}`)),
      `app/${name} in Riak byte for byte`,
    );
  }
  assert.deepEqual(await riakNames(env, "/app"), names.sort());
  assert.deepEqual(await riakNames(env, "/app/new"), ["a.txt", "b.txt"]);
  assert.equal((await env.store.tryStat("/app/new"))?.mode! & 0o777, 0o750);
  await assertTreeThroughMount(false);
  assert.deepEqual((await fsp.readdir(app)).sort(), names.sort());
  if (preset === "drain") {
    // Each legacy copy went: removed, or once Riak held the bytes that superseded it.
    await eventually(
      "the superseded legacy copies deleted",
      async () => (await fsp.readdir(join(env.source, "app"))).length === 0,
    );
  }
}

outageTests(
  "atomic saves, moves, removals, mkdir and rmdir of files in the spool end in Riak as the applications saw them",
  changeNamesThroughOutage,
);

/** The mtime rsync -a, cp -a and tar x give the files they make, after writing them. */
const KEPT_TIME = new Date("2001-02-03T04:05:06.000Z");

/**
 * What rsync -a, cp -a and tar x do after writing a file during the outage: chmod and utimes
 * by path (rsync on its temporary name, renamed into place after). Before, both answered EIO
 * while the file's upload waited for Riak: the copies kept the bytes but lost their modes and
 * times (rsync exits 23).
 */
async function keepAttributesThroughOutage({ env, ending, outage }: OutageScenario) {
  const copy = join(env.mountpoint, "copy");
  await fsp.mkdir(copy);
  await waitForQuiet(env);
  const files = new Map([["copied.bin", seededBytes(820, 1_500_000)]]);
  files.set("synced.txt", seededBytes(821, 700));
  await outage.stopRiak(() => fsp.writeFile(join(copy, "copied.bin"), files.get("copied.bin")!));
  await fsp.chmod(join(copy, "copied.bin"), 0o640);
  await fsp.utimes(join(copy, "copied.bin"), KEPT_TIME, KEPT_TIME);
  await fsp.writeFile(join(copy, ".synced.txt.Xy12Ab"), files.get("synced.txt")!);
  await fsp.utimes(join(copy, ".synced.txt.Xy12Ab"), KEPT_TIME, KEPT_TIME);
  await fsp.chmod(join(copy, ".synced.txt.Xy12Ab"), 0o600);
  await fsp.rename(join(copy, ".synced.txt.Xy12Ab"), join(copy, "synced.txt"));
  const modes = new Map([["copied.bin", 0o640], ["synced.txt", 0o600]]);
  const assertThroughMount = async () => {
    for (const [name, content] of files) {
      const stat = await fsp.stat(join(copy, name));
      assert.equal(stat.mode & 0o777, modes.get(name), `${name}'s mode through the mount`);
      assert.equal(stat.mtime.getTime(), KEPT_TIME.getTime(), `${name}'s mtime through the mount`);
      assert.ok(Buffer.from(content).equals(await fsp.readFile(join(copy, name))), name);
    }
  };
  await assertThroughMount();

  await outage.end(ending);
  await waitForQuiet(env);
  for (const [name, content] of files) {
    const stored = await env.store.tryStat(`/copy/${name}`);
    assert.equal(stored?.mode! & 0o777, modes.get(name), `${name}'s mode in Riak`);
    assert.equal(stored?.mtimeNs, BigInt(KEPT_TIME.getTime()) * 1_000_000n, `${name}'s mtime`);
    assert.ok(Buffer.from(content).equals(await env.store.readFile(`/copy/${name}`)), name);
  }
  assert.deepEqual(await riakNames(env, "/copy"), [...files.keys()].sort());
  await assertThroughMount();
}

outageTests(
  "chmod and utimes by path of files written during the outage (rsync -a, cp -a) work, and Riak gets them with the bytes",
  keepAttributesThroughOutage,
);
