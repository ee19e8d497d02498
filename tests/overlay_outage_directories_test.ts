/**
 * Directories renamed during a Riak outage in the presets that write Riak only (drain, riak):
 * one only Riak holds whose whole tree the mount listed, and one made during the outage with
 * files written into it, are renamed at once (`mv`), and once Riak is back it holds them
 * under their new names only, also when riakfs was killed (SIGKILL) during the outage and
 * mounted again, with what another host wrote into the old directory meanwhile moved along.
 * A directory the mount never listed is not renamed (EIO, with a warning).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import {
  assertGone,
  logged,
  type OutageScenario,
  outageTests,
  riakNames,
  waitForQuiet,
} from "./_overlay.ts";

async function renameDirectoriesThroughOutage(
  { env, preset, ending, outage }: OutageScenario,
): Promise<void> {
  const app = join(env.mountpoint, "app");
  await fsp.mkdir(join(app, "dir1/sub"), { recursive: true });
  await fsp.writeFile(join(app, "dir1/a.txt"), "a before");
  await fsp.writeFile(join(app, "dir1/sub/b.txt"), "b before");
  await env.store.writeFile("/app/unlisted/kept.txt", Buffer.from("another host's"));
  await waitForQuiet(env);
  // As `ls -lR app/dir1` reads it.
  assert.deepEqual((await fsp.readdir(join(app, "dir1"))).sort(), ["a.txt", "sub"]);
  assert.deepEqual(await fsp.readdir(join(app, "dir1/sub")), ["b.txt"]);
  await fsp.stat(join(app, "dir1/a.txt"));
  assert.ok((await fsp.stat(join(app, "unlisted"))).isDirectory());
  await outage.stopRiak(() => fsp.writeFile(join(app, "trigger.bin"), seededBytes(903, 100)));

  await fsp.rename(join(app, "dir1"), join(app, "dir2"));
  await assertGone(join(app, "dir1"));
  assert.ok((await fsp.stat(join(app, "dir2"))).isDirectory());
  assert.equal((await fsp.stat(join(app, "dir2/a.txt"))).size, "a before".length);
  await fsp.writeFile(join(app, "dir2/new.txt"), "new during the outage");
  // Made during the outage, written into, renamed.
  await fsp.mkdir(join(app, "made/s"), { recursive: true });
  await fsp.writeFile(join(app, "made/x.txt"), "x");
  await fsp.writeFile(join(app, "made/s/y.txt"), "y");
  await fsp.rename(join(app, "made"), join(app, "made2"));
  await assertGone(join(app, "made"));
  assert.equal(await fsp.readFile(join(app, "made2/s/y.txt"), "utf8"), "y");
  assert.deepEqual((await fsp.readdir(join(app, "made2"))).sort(), ["s", "x.txt"]);
  // Never listed: Riak may hold more of it than the mount knows.
  await assert.rejects(fsp.rename(join(app, "unlisted"), join(app, "unlisted2")), {
    code: "EIO",
  });
  await logged(outage.mounted, /directory not renamed during the outage/);
  if (preset === "drain") {
    const listed = await fsp.readdir(app);
    assert.ok(listed.includes("dir2") && listed.includes("made2"), `${listed}`);
    assert.ok(!listed.includes("dir1") && !listed.includes("made"), `${listed}`);
  }

  await outage.end(ending, async () => {
    // Another host writes into the old directory before the journal's rename runs.
    await env.store.writeFile("/app/dir1/late.txt", Buffer.from("another host's"));
  });
  await waitForQuiet(env);
  assert.deepEqual(await riakNames(env, "/app"), ["dir2", "made2", "trigger.bin", "unlisted"]);
  assert.deepEqual(
    await riakNames(env, "/app/dir2"),
    ["a.txt", ...(ending === "killed" ? ["late.txt"] : []), "new.txt", "sub"],
  );
  const text = async (path: string) => (await env.store.readFile(path)).toString();
  assert.equal(await text("/app/dir2/a.txt"), "a before");
  assert.equal(await text("/app/dir2/sub/b.txt"), "b before");
  assert.equal(await text("/app/dir2/new.txt"), "new during the outage");
  assert.deepEqual(await riakNames(env, "/app/made2"), ["s", "x.txt"]);
  assert.equal(await text("/app/made2/s/y.txt"), "y");
  assert.deepEqual(await riakNames(env, "/app/unlisted"), ["kept.txt"]);
  // Through the mount, as in Riak.
  assert.equal(await fsp.readFile(join(app, "dir2/sub/b.txt"), "utf8"), "b before");
  await assertGone(join(app, "dir1"));
  await assertGone(join(app, "made"));
}

outageTests(
  "renames of directories whose whole tree the mount knows end in Riak as the applications saw them",
  renameDirectoriesThroughOutage,
  ", riakfs killed, another host's write",
);
