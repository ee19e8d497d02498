/**
 * Orphan entries through a real mount: names Riak lists in a directory with nothing stored
 * behind them (made here by adding set members directly, as an add Riak applied after the
 * name's removal leaves them). No `rm` reaches them (LOOKUP answers ENOENT, so the kernel
 * sends no UNLINK); `rmdir` of a directory listing nothing else, or a rename over it, removes
 * them, then it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { addOrphanEntry } from "../src/store/_test_support.ts";
import { type OverlayEnv, withMounted, withOverlayEnv } from "./_overlay.ts";

/** Riak's listing of `path`, as `type:name`, sorted. */
async function riakListing(env: OverlayEnv, path: string): Promise<string[]> {
  return (await Array.fromAsync(env.store.list(path)))
    .map((entry) => `${entry.type}:${entry.name}`).sort();
}

/** The error code a synchronous file system call fails with. */
function codeOf(call: () => unknown): string | undefined {
  try {
    call();
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
}

for (const preset of ["riak", "drain"]) {
  Deno.test(`${preset} mount: rmdir removes a directory whose Riak entries are all orphans, and refuses one holding a stored file beside them`, async () => {
    await withOverlayEnv(async (env) => {
      await env.store.mkdir("d");
      await addOrphanEntry(env.client, env.store, "d", "file", "gone.txt");
      await addOrphanEntry(env.client, env.store, "d", "symlink", "gone-link");
      await addOrphanEntry(env.client, env.store, "d", "directory", "gone-dir");
      await env.store.writeFile("kept/real.txt", Buffer.from("real"));
      await addOrphanEntry(env.client, env.store, "kept", "file", "gone.txt");
      await withMounted(env, preset, async () => {
        const d = join(env.mountpoint, "d");
        // What an operator meets first: the names are listed, and every look at one fails
        // (`ls -l` prints question marks for them and exits 1), rm too.
        const names = ["gone-dir", "gone-link", "gone.txt"];
        assert.deepEqual(fs.readdirSync(d).sort(), names);
        const ls = spawnSync("ls", ["-l", d], { encoding: "utf8", env: { LC_ALL: "C" } });
        assert.equal(ls.status, 1);
        for (const name of names) {
          assert.match(ls.stdout, new RegExp(`^.\\?{9} .* ${name}$`, "m"));
          assert.match(ls.stderr, new RegExp(`cannot access '.*/${name}': No such file`));
          assert.equal(codeOf(() => fs.lstatSync(join(d, name))), "ENOENT");
        }
        assert.equal(codeOf(() => fs.unlinkSync(join(d, "gone.txt"))), "ENOENT");

        fs.rmdirSync(d);
        assert.equal(fs.existsSync(d), false);
        assert.equal(await env.store.tryStat("d"), undefined, "gone from Riak");
        assert.deepEqual(await riakListing(env, ""), ["directory:kept"]);

        const kept = join(env.mountpoint, "kept");
        assert.equal(codeOf(() => fs.rmdirSync(kept)), "ENOTEMPTY");
        assert.deepEqual(await riakListing(env, "kept"), ["file:gone.txt", "file:real.txt"]);
        assert.equal(fs.readFileSync(join(kept, "real.txt"), "utf8"), "real");
      });
    });
  });
}

for (const preset of ["riak", "drain"]) {
  Deno.test(`${preset} mount: a rename over a directory whose Riak entries are all orphans replaces it, and one over a directory holding a stored file beside them answers ENOTEMPTY`, async () => {
    await withOverlayEnv(async (env) => {
      await env.store.writeFile("s/moved.txt", Buffer.from("moved"));
      await env.store.mkdir("d");
      await addOrphanEntry(env.client, env.store, "d", "file", "gone.txt");
      await env.store.writeFile("kept/real.txt", Buffer.from("real"));
      await addOrphanEntry(env.client, env.store, "kept", "file", "gone.txt");
      await withMounted(env, preset, async () => {
        const at = (name: string) => join(env.mountpoint, name);
        fs.renameSync(at("s"), at("d"));
        assert.deepEqual(fs.readdirSync(at("d")), ["moved.txt"]);
        assert.equal(fs.readFileSync(join(at("d"), "moved.txt"), "utf8"), "moved");
        assert.deepEqual(await riakListing(env, "d"), ["file:moved.txt"], "no orphan left");

        assert.equal(codeOf(() => fs.renameSync(at("d"), at("kept"))), "ENOTEMPTY");
        assert.deepEqual(await riakListing(env, "kept"), ["file:gone.txt", "file:real.txt"]);
        assert.deepEqual(await riakListing(env, ""), ["directory:d", "directory:kept"]);
      });
    });
  });
}
