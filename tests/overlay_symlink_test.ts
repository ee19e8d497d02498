/**
 * Nothing outside the source is read, written, listed or deleted through the overlay, even
 * where Riak holds a directory at a path whose local side is a symlink out of the source
 * (source/dir -> /outside, source/up -> ..): the symlinks are presented as symlinks and
 * riakfs never resolves a path through them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { type OverlayEnv, withOverlayEnv } from "./_overlay.ts";

/** Every file below `directory` with its content, for before/after comparisons. */
function snapshot(directory: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of fs.readdirSync(directory, { recursive: true }) as string[]) {
    const path = join(directory, name);
    const stat = fs.lstatSync(path);
    files[name] = stat.isFile() ? fs.readFileSync(path, "hex") : stat.isDirectory() ? "dir" : "?";
  }
  return files;
}

/** Runs `operation`; riakfs may refuse it or apply it to Riak only, either is fine here. */
async function attempt(operation: () => Promise<unknown>): Promise<void> {
  try {
    await operation();
  } catch {
    // The assertions are on what happened outside the source.
  }
}

async function checkNoEscape(env: OverlayEnv, preset: string): Promise<void> {
  const outside = join(env.base, "outside");
  fs.mkdirSync(join(outside, "nested"), { recursive: true });
  fs.writeFileSync(join(outside, "secret.txt"), "SECRET outside the source\n");
  fs.writeFileSync(join(outside, "keep.txt"), "must stay\n");
  fs.writeFileSync(join(outside, "nested", "deep.txt"), "deep\n");
  fs.symlinkSync(outside, join(env.source, "dir"));
  fs.symlinkSync(join(outside, "secret.txt"), join(env.source, "file-link"));
  fs.symlinkSync("..", join(env.source, "up"));
  fs.writeFileSync(join(env.source, "plain.txt"), "plain\n");
  // Riak holds directories where the source has the symlinks: the union shows directories.
  await env.store.mkdir("dir");
  await env.store.writeFile("dir/riak.txt", Buffer.from("from riak\n"));
  await env.store.mkdir("up");
  const before = snapshot(outside);
  const parentBefore = fs.readdirSync(env.base).sort();

  const mount = await env.mount(preset);
  try {
    const mnt = env.mountpoint;
    // A symlink that is only local stays a symlink; readlink works.
    assert.ok((await fsp.lstat(join(mnt, "file-link"))).isSymbolicLink());
    assert.equal(await fsp.readlink(join(mnt, "file-link")), join(outside, "secret.txt"));
    // Listings of the union never include what is behind the local symlinks.
    const listed = await fsp.readdir(join(mnt, "dir"));
    assert.ok(listed.includes("riak.txt"), `${preset}: ${listed}`);
    for (const name of ["secret.txt", "keep.txt", "nested"]) {
      assert.ok(!listed.includes(name), `${preset}: ${name} listed from outside`);
    }
    const upListed = await fsp.readdir(join(mnt, "up"));
    for (const name of ["outside", "source", "spool"]) {
      assert.ok(!upListed.includes(name), `${preset}: ${name} listed through up -> ..`);
    }
    // Reads through the symlinked component find nothing.
    for (const path of ["dir/secret.txt", "dir/nested/deep.txt", "up/outside/secret.txt"]) {
      await assert.rejects(fsp.readFile(join(mnt, path)), { code: "ENOENT" }, `${preset}: ${path}`);
    }
    assert.equal(await fsp.readFile(join(mnt, "dir/riak.txt"), "utf8"), "from riak\n");
    // Writes, creations, deletions and renames through them touch nothing outside.
    await attempt(() => fsp.writeFile(join(mnt, "dir/new.txt"), "new"));
    await attempt(() => fsp.writeFile(join(mnt, "dir/keep.txt"), "overwritten"));
    await attempt(() => fsp.appendFile(join(mnt, "dir/secret.txt"), "appended"));
    await attempt(() => fsp.truncate(join(mnt, "dir/secret.txt"), 0));
    await attempt(() => fsp.unlink(join(mnt, "dir/keep.txt")));
    await attempt(() => fsp.rm(join(mnt, "dir/nested"), { recursive: true }));
    await attempt(() => fsp.mkdir(join(mnt, "dir/made")));
    await attempt(() => fsp.rename(join(mnt, "plain.txt"), join(mnt, "dir/plain.txt")));
    await attempt(() => fsp.writeFile(join(mnt, "up/escaped.txt"), "escaped"));
    await attempt(() => fsp.chmod(join(mnt, "dir/secret.txt"), 0o777));
  } finally {
    await env.unmount(mount);
  }
  assert.deepEqual(snapshot(outside), before, `${preset}: the outside directory is untouched`);
  // Beside the source only what the mount itself keeps there (spool, run directory).
  const beside = fs.readdirSync(env.base).filter((name) => !["spool", "run"].includes(name));
  assert.deepEqual(beside.sort(), parentBefore, `${preset}: nothing written beside`);
  assert.equal(fs.statSync(join(outside, "secret.txt")).mode & 0o777, 0o644);
  // Nothing from outside was copied into Riak either.
  for (const path of ["dir/secret.txt", "dir/keep.txt", "dir/nested/deep.txt"]) {
    const stat = await env.store.tryStat(path);
    assert.ok(
      stat === undefined || stat.size !== fs.statSync(join(outside, path.slice(4))).size ||
        !Buffer.from(await env.store.readFile(path)).equals(
          fs.readFileSync(join(outside, path.slice(4))),
        ),
      `${preset}: ${path} came from outside`,
    );
  }
}

for (const preset of ["migrate", "drain"]) {
  Deno.test(`${preset}: nothing outside the source is reached through symlinked directories`, async () => {
    await withOverlayEnv((env) => checkNoEscape(env, preset));
  });
}
