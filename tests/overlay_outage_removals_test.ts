/**
 * Removals during a Riak outage in the presets that write Riak only (drain, riak), of what
 * only Riak holds: a file uploaded before the outage that the mount saw (`rm`), and an empty
 * directory whose listing it read (`rmdir`), also when the name is made again during the
 * outage. Each answers at once, the name is gone, and once Riak is back it holds exactly the
 * tree the applications saw, also when riakfs was killed (SIGKILL) during the outage and
 * mounted again; a file written elsewhere after the version removed is set aside, not
 * removed. Names the mount never saw stay as they were (ENOENT, EIO), and a directory it saw
 * but never listed can be neither listed nor removed (EIO).
 * An upload journaled during the outage, or before it and still pending as it began, sets aside
 * a file another host wrote under its name meanwhile instead of going over it.
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
import { run } from "./_mount.ts";

const CONFLICT =
  /^(changed|target|pending|open|new|newtarget)\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/;

async function removeThroughOutage(
  { env, preset, ending, outage }: OutageScenario,
): Promise<void> {
  const app = join(env.mountpoint, "app");
  await fsp.mkdir(app);
  const files = ["old.txt", "again.txt", "changed.txt", "keep.txt", "target.txt"];
  for (const name of [...files, "pending.txt", "open.txt"]) {
    await fsp.writeFile(join(app, name), `${name} before the outage`);
  }
  // Made through the mount: empty as far as it knows.
  for (const name of ["empty", "emptied", "redo", "full"]) await fsp.mkdir(join(app, name));
  await fsp.writeFile(join(app, "emptied/x"), "x");
  await fsp.writeFile(join(app, "full/y"), "y");
  // Another host's, in Riak: a file the mount never looks at, and a directory it looks at
  // but never lists.
  await env.store.writeFile("/app/unseen.txt", Buffer.from("another host's"));
  await env.store.mkdir("/app/unlisted");
  await env.store.writeFile("/app/unlisted/kept.txt", Buffer.from("another host's"));
  await waitForQuiet(env);
  assert.ok((await fsp.stat(join(app, "unlisted"))).isDirectory());
  // Listed once: the mount knows it holds x (its upload landed after the mkdir too).
  assert.deepEqual(await fsp.readdir(join(app, "emptied")), ["x"]);
  // Open for writing, written (Riak's bytes copied into the spool) while Riak answers.
  const writing = new Map<string, fsp.FileHandle>();
  for (const name of ["pending.txt", "open.txt"]) {
    const handle = await fsp.open(join(app, name), "r+");
    writing.set(name, handle);
    await handle.write(name.toUpperCase().slice(0, 1), 0);
  }
  // Created while Riak answers that it holds no such name, written, not closed yet.
  for (const name of ["new.txt", "newtarget.txt"]) {
    const handle = await fsp.open(join(app, name), "wx");
    writing.set(name, handle);
    await handle.write(`${name} made before the outage`);
  }

  await outage.stopRiak(() => fsp.writeFile(join(app, "trigger.bin"), seededBytes(900, 1_000)));

  // (a) Files only Riak holds, seen by the mount: removed at once.
  await fsp.unlink(join(app, "old.txt"));
  await fsp.unlink(join(app, "changed.txt"));
  await assertGone(join(app, "old.txt"));
  await assertGone(join(app, "changed.txt"));
  // Removed, then made again: the new one stays.
  await fsp.unlink(join(app, "again.txt"));
  await assertGone(join(app, "again.txt"));
  await fsp.writeFile(join(app, "again.txt"), "again.txt made during the outage");
  // One kept: shown as last seen, but its bytes (and whether Riak holds a newer copy, which
  // a write would replace unseen) need Riak.
  assert.equal((await fsp.stat(join(app, "keep.txt"))).size, "keep.txt before the outage".length);
  await assert.rejects(fsp.readFile(join(app, "keep.txt")), { code: "EIO" });
  await assert.rejects(fsp.writeFile(join(app, "keep.txt"), "over"), { code: "EIO" });
  // Saved over (a file renamed over it): the version seen goes first, then the new one.
  await fsp.writeFile(join(app, "target.txt.tmp"), "target.txt saved during the outage");
  await fsp.rename(join(app, "target.txt.tmp"), join(app, "target.txt"));
  // Closed (its upload journaled, waiting for Riak), then removed: the version its write
  // went over goes, as for a file the mount saw.
  await writing.get("pending.txt")!.close();
  await fsp.unlink(join(app, "pending.txt"));
  await assertGone(join(app, "pending.txt"));
  // Saved over while open for writing: the version its write went over goes first, too.
  await fsp.writeFile(join(app, "open.txt.tmp"), "open.txt saved during the outage");
  await fsp.rename(join(app, "open.txt.tmp"), join(app, "open.txt"));
  await writing.get("open.txt")!.close();
  // Made through the mount over nothing in Riak: closed, then removed, or saved over while
  // open. Only the mount's own upload of it goes from Riak, should it have landed.
  await writing.get("new.txt")!.close();
  await fsp.unlink(join(app, "new.txt"));
  await assertGone(join(app, "new.txt"));
  await fsp.writeFile(join(app, "newtarget.txt.tmp"), "newtarget.txt saved during the outage");
  await fsp.rename(join(app, "newtarget.txt.tmp"), join(app, "newtarget.txt"));
  await writing.get("newtarget.txt")!.close();
  // A name the mount never saw in Riak is not known to be there.
  await assert.rejects(fsp.unlink(join(app, "unseen.txt")), { code: "ENOENT" });

  // (b) Directories Riak held: empty ones go, one holding entries does not.
  await fsp.rmdir(join(app, "empty"));
  await assertGone(join(app, "empty"));
  await assert.rejects(fsp.rmdir(join(app, "emptied")), { code: "ENOTEMPTY" });
  await fsp.unlink(join(app, "emptied/x"));
  await fsp.rmdir(join(app, "emptied"));
  await assertGone(join(app, "emptied"));
  await assert.rejects(fsp.rmdir(join(app, "full")), { code: "ENOTEMPTY" });
  // Removed, then made again and written into.
  await fsp.rmdir(join(app, "redo"));
  await fsp.mkdir(join(app, "redo"), { mode: 0o700 });
  await fsp.writeFile(join(app, "redo/n.txt"), "n");
  // Never listed: its entries are Riak's to say. It cannot be listed or removed (EIO, not
  // absent: `rm -rf` would report success and `ls` deny a directory `stat` shows), and stays.
  await assert.rejects(fsp.rmdir(join(app, "unlisted")), { code: "EIO" });
  await assert.rejects(fsp.readdir(join(app, "unlisted")), { code: "EIO" });
  const ls = await run("ls", [join(app, "unlisted")]);
  assert.notEqual(ls.code, 0, "ls fails");
  assert.match(ls.stderr, /Input\/output error/);
  const rm = await run("rm", ["-rf", join(app, "unlisted")]);
  assert.notEqual(rm.code, 0, "rm -rf fails");
  assert.match(rm.stderr, /Input\/output error/);
  assert.ok((await fsp.stat(join(app, "unlisted"))).isDirectory());
  if (preset === "drain") {
    // drain lists the union, degraded to what the mount holds: the removed names are not in it.
    const listed = await fsp.readdir(app);
    for (const name of ["old.txt", "changed.txt", "empty", "emptied"]) {
      assert.ok(!listed.includes(name), `${name} not listed`);
    }
    assert.ok(listed.includes("again.txt") && listed.includes("redo"));
  }

  await outage.end(ending, async () => {
    // Another host writes changed.txt, target.txt, pending.txt and open.txt again while the
    // removals and the saves wait in the journal, makes new.txt and newtarget.txt, and a
    // file in the directory removed as empty.
    const names = ["changed.txt", "target.txt", "pending.txt", "open.txt"];
    for (const name of [...names, "new.txt", "newtarget.txt"]) {
      await env.store.writeFile(`/app/${name}`, Buffer.from(`${name}: newer, from another host`));
    }
    await env.store.writeFile("/app/empty/late.txt", Buffer.from("another host's"));
  });
  await waitForQuiet(env);
  const names = await riakNames(env, "/app");
  const conflicts = names.filter((name) => CONFLICT.test(name));
  // Entries written elsewhere keep a directory removed as empty.
  const keptEmpty = ending === "killed" ? ["empty"] : [];
  assert.deepEqual(
    names.filter((name) => !CONFLICT.test(name)),
    [
      "again.txt",
      ...keptEmpty,
      "full",
      "keep.txt",
      "newtarget.txt",
      "open.txt",
      "redo",
      "target.txt",
      "trigger.bin",
      "unlisted",
      "unseen.txt",
    ],
  );
  if (ending === "killed") {
    assert.deepEqual(await riakNames(env, "/app/empty"), ["late.txt"]);
    await logged(outage.mounted, /directory removed .* kept in Riak/);
    // Written after the version removed or saved over, or made over a file the mount made:
    // set aside beside the name, with a warning.
    assert.equal(conflicts.length, 6, `six conflict copies in ${names}`);
    for (const conflict of conflicts) {
      const name = conflict.slice(0, conflict.indexOf(".riakfs-conflict-"));
      assert.equal(
        (await env.store.readFile(`/app/${conflict}`)).toString(),
        `${name}: newer, from another host`,
      );
    }
    await logged(outage.mounted, /newer file under a name removed during an outage/);
  } else {
    assert.deepEqual(conflicts, []);
  }
  assert.equal(
    (await env.store.readFile("/app/again.txt")).toString(),
    "again.txt made during the outage",
  );
  assert.equal(
    (await env.store.readFile("/app/keep.txt")).toString(),
    "keep.txt before the outage",
  );
  for (const name of ["target.txt", "open.txt", "newtarget.txt"]) {
    assert.equal(
      (await env.store.readFile(`/app/${name}`)).toString(),
      `${name} saved during the outage`,
    );
  }
  assert.deepEqual(await riakNames(env, "/app/redo"), ["n.txt"]);
  assert.equal((await env.store.tryStat("/app/redo"))?.mode! & 0o777, 0o700);
  assert.deepEqual(await riakNames(env, "/app/full"), ["y"]);
  assert.deepEqual(await riakNames(env, "/app/unlisted"), ["kept.txt"]);
  assert.deepEqual(await fsp.readdir(join(app, "unlisted")), ["kept.txt"]);
  // Through the mount, as in Riak.
  for (const name of ["old.txt", "changed.txt", "pending.txt", "new.txt", "emptied"]) {
    await assertGone(join(app, name));
  }
  if (ending === "killed") assert.deepEqual(await fsp.readdir(join(app, "empty")), ["late.txt"]);
  else await assertGone(join(app, "empty"));
  assert.equal(
    await fsp.readFile(join(app, "again.txt"), "utf8"),
    "again.txt made during the outage",
  );
}

outageTests(
  "rm of files and rmdir of empty directories only Riak held end in Riak as the applications saw them",
  removeThroughOutage,
  ", riakfs killed, another host's write",
);

/** Reads `path` through the mount, as text. */
function readText(path: string): Promise<string> {
  return fsp.readFile(path, "utf8");
}

async function renameThroughOutage(
  { env, preset, ending, outage }: OutageScenario,
): Promise<void> {
  const app = join(env.mountpoint, "app");
  await fsp.mkdir(app);
  await fsp.mkdir(join(app, "sub"));
  const names = ["a", "b", "c", "over", "chain1", "x", "d", "e", "f", "over2"];
  for (const name of names) await fsp.writeFile(join(app, `${name}.txt`), `${name} before`);
  await fsp.writeFile(join(app, "big.bin"), seededBytes(901, 1_500_000));
  await waitForQuiet(env);
  // Seen by the mount (uploaded through it): the outage's renames move Riak's files.
  await outage.stopRiak(() => fsp.writeFile(join(app, "trigger.bin"), seededBytes(902, 100)));

  const rename = (from: string, to: string) => fsp.rename(join(app, from), join(app, to));
  await rename("a.txt", "a2.txt");
  await assertGone(join(app, "a.txt"));
  // Shown as it was; its bytes are in Riak only.
  assert.equal((await fsp.stat(join(app, "a2.txt"))).size, "a before".length);
  await assert.rejects(readText(join(app, "a2.txt")), { code: "EIO" });
  await rename("b.txt", "sub/b.txt");
  await rename("chain1.txt", "chain2.txt");
  await rename("chain2.txt", "chain3.txt");
  await rename("c.txt", "over.txt"); // Over a file only Riak holds.
  await rename("big.bin", "big2.bin"); // Chunked in Riak.
  await rename("x.txt", "y.txt");
  await rename("y.txt", "x.txt"); // And back.
  await rename("d.txt", "d2.txt");
  await fsp.unlink(join(app, "d2.txt")); // Moved, then removed.
  await rename("e.txt", "e2.txt");
  await fsp.writeFile(join(app, "e.txt"), "e made again"); // The old name taken again.
  await rename("f.txt", "f2.txt");
  await rename("over2.txt", "a2.txt"); // Over a file moved there.
  // The directory a file moved into holds it.
  await assert.rejects(fsp.rmdir(join(app, "sub")), { code: "ENOTEMPTY" });
  if (preset === "drain") {
    const listed = await fsp.readdir(app);
    for (const name of ["a2.txt", "chain3.txt", "big2.bin", "x.txt", "e2.txt"]) {
      assert.ok(listed.includes(name), `${name} listed`);
    }
    for (const name of ["a.txt", "chain1.txt", "chain2.txt", "big.bin", "y.txt", "d2.txt"]) {
      assert.ok(!listed.includes(name), `${name} not listed`);
    }
  }

  await outage.end(ending, async () => {
    // Another host writes f.txt again before its move, and over.txt before the rename over it.
    for (const name of ["f.txt", "over.txt"]) {
      await env.store.writeFile(`/app/${name}`, Buffer.from(`${name}: newer, from another host`));
    }
  });
  await waitForQuiet(env);
  const listed = await riakNames(env, "/app");
  const conflicts = listed.filter((name) => name.includes(".riakfs-conflict-"));
  const expected = [
    "a2.txt",
    "big2.bin",
    "chain3.txt",
    "e.txt",
    "e2.txt",
    ...(ending === "killed" ? [] : ["f2.txt"]),
    "over.txt",
    "sub",
    "trigger.bin",
    "x.txt",
  ];
  assert.deepEqual(listed.filter((name) => !name.includes(".riakfs-conflict-")), expected);
  const text = async (path: string) => (await env.store.readFile(path)).toString();
  assert.equal(await text("/app/a2.txt"), "over2 before");
  assert.equal(await text("/app/chain3.txt"), "chain1 before");
  assert.equal(await text("/app/over.txt"), "c before");
  assert.equal(await text("/app/x.txt"), "x before");
  assert.equal(await text("/app/e.txt"), "e made again");
  assert.equal(await text("/app/e2.txt"), "e before");
  assert.ok(seededBytes(901, 1_500_000).equals(await env.store.readFile("/app/big2.bin")));
  assert.deepEqual(await riakNames(env, "/app/sub"), ["b.txt"]);
  assert.equal(await text("/app/sub/b.txt"), "b before");
  if (ending === "killed") {
    // f.txt changed before its move: not moved, set aside as its old name's removal does;
    // over.txt changed before the rename over it: set aside.
    assert.equal(conflicts.length, 2, `two conflict copies in ${listed}`);
    for (const name of ["f.txt", "over.txt"]) {
      const kept = conflicts.find((conflict) => conflictOf(name).test(conflict));
      assert.ok(kept, `${name} set aside`);
      assert.equal(await text(`/app/${kept}`), `${name}: newer, from another host`);
    }
    await logged(outage.mounted, /renamed during an outage was not in Riak as the mount/);
  } else {
    assert.deepEqual(conflicts, []);
    assert.equal(await text("/app/f2.txt"), "f before");
  }
  // Through the mount, as in Riak.
  assert.equal(await readText(join(app, "chain3.txt")), "chain1 before");
  for (const name of ["a.txt", "chain1.txt", "chain2.txt", "big.bin", "y.txt", "d2.txt"]) {
    await assertGone(join(app, name));
  }
}

outageTests(
  "renames of files only Riak held end in Riak as the applications saw them",
  renameThroughOutage,
  ", riakfs killed, another host's write",
);

/** A conflict copy of `name` set aside beside it: `<name>.riakfs-conflict-<time>-<random>`. */
function conflictOf(name: string): RegExp {
  return new RegExp(`^${name.replace(".", "\\.")}\\.riakfs-conflict-\\d{8}T\\d{6}Z-[0-9a-f]{6}$`);
}

async function uploadOverAnotherHostsWrite(
  { env, ending, outage }: OutageScenario,
  closed: "during the outage" | "before it",
): Promise<void> {
  const app = join(env.mountpoint, "app");
  await fsp.mkdir(app);
  await fsp.writeFile(join(app, "written.txt"), "written.txt before the outage");
  await waitForQuiet(env);
  const large = seededBytes(903, 1_500_000); // Chunked in Riak: its put is the manifest's.
  const ours = new Map<string, Buffer>([
    ["created.txt", Buffer.from("created.txt made here")],
    ["created.bin", large],
    ["written.txt", Buffer.from("W")],
  ]);
  // Opened while Riak answers (created over nothing in Riak, or over the version uploaded)
  // and written; then another host writes each name, unknown to this mount.
  const writing = new Map<string, fsp.FileHandle>();
  for (const [name, bytes] of ours) {
    const handle = await fsp.open(join(app, name), name.startsWith("created") ? "wx" : "r+");
    writing.set(name, handle);
    await handle.write(bytes, 0, bytes.length, 0);
    await env.store.writeFile(`/app/${name}`, Buffer.from(`${name}: from another host`));
  }
  const trigger = () => fsp.writeFile(join(app, "trigger.bin"), seededBytes(904, 100));
  if (closed === "during the outage") {
    await outage.stopRiak(trigger);
    // Closed during the outage: the uploads wait in the journal.
    for (const handle of writing.values()) await handle.close();
  } else {
    // Closed while Riak is taken to answer, frozen: the uploads' puts hang, and fail as the
    // outage begins (the server killed), which they wait out in the journal.
    env.riak.pause();
    for (const handle of writing.values()) await handle.close();
    await outage.stopRiak(trigger);
  }
  await outage.end(ending);
  await waitForQuiet(env);

  const listed = await riakNames(env, "/app");
  assert.deepEqual(
    listed.filter((name) => !name.includes(".riakfs-conflict-")),
    ["created.bin", "created.txt", "trigger.bin", "written.txt"],
  );
  const written = Buffer.from("written.txt before the outage");
  written.write("W", 0);
  ours.set("written.txt", written);
  for (const [name, bytes] of ours) {
    assert.ok(bytes.equals(await env.store.readFile(`/app/${name}`)), `${name} holds ours`);
    const kept = listed.filter((conflict) => conflictOf(name).test(conflict));
    assert.equal(kept.length, 1, `${name} set aside once in ${listed}`);
    assert.equal(
      (await env.store.readFile(`/app/${kept[0]}`)).toString(),
      `${name}: from another host`,
    );
  }
  assert.equal(listed.length, 7, `nothing else in ${listed}`);
  await logged(outage.mounted, /another file under a name written during an outage/);
  assert.ok(large.equals(await fsp.readFile(join(app, "created.bin"))));
}

outageTests(
  "a file made or written while Riak answered, closed during the outage, sets aside once Riak is back the file another host wrote under its name meanwhile",
  (scenario) => uploadOverAnotherHostsWrite(scenario, "during the outage"),
);

outageTests(
  "a file made or written while Riak answered, closed just before the outage, its upload failing with it, sets aside once Riak is back the file another host wrote under its name meanwhile",
  (scenario) => uploadOverAnotherHostsWrite(scenario, "before it"),
);
