/**
 * Shadow and migrate mounts let the FUSE reader threads answer what is local: reads of a
 * local file (recorded for copy-on-read), GETATTR of local nodes (with the overlay's inode
 * numbers) and listings with their lookups. Checked through a real mount of the built
 * binary: the answers are the ones the event loop gives, the readers did answer, and
 * copy-on-read still happens after a whole read.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { eventually, statusOf, withOverlayEnv } from "./_overlay.ts";

for (const preset of ["shadow", "migrate"]) {
  Deno.test(`${preset}: local files are answered by the reader threads, as the event loop would`, async () => {
    await withOverlayEnv(async (env) => {
      const mounted = await env.mount(preset, ["-o", "attr_timeout=0,entry_timeout=5"]);
      const at = (path: string) => join(env.mountpoint, path);
      const status = async () => (await statusOf(env)).metrics;
      try {
        // Made in the source directly: local, not in Riak. Not a whole number of pages.
        const content = seededBytes(31, 5 * 4096 + 777);
        await fsp.mkdir(join(env.source, "dir"));
        await fsp.writeFile(join(env.source, "dir/local.bin"), content);
        for (let i = 0; i < 20; i++) {
          await fsp.writeFile(join(env.source, "dir", `f${i}`), `file ${i}`);
        }
        const before = await status();
        // The first stat is the loop's (LOOKUP), the next ones the readers' (GETATTR).
        const first = await fsp.stat(at("dir/local.bin"));
        const local = await fsp.stat(join(env.source, "dir/local.bin"));
        for (let i = 0; i < 5; i++) {
          const again = await fsp.stat(at("dir/local.bin"));
          assert.equal(again.ino, first.ino, "the overlay's inode number every time");
          assert.equal(again.size, local.size);
          assert.equal(again.mode, local.mode);
          assert.equal(again.mtimeMs, local.mtimeMs);
        }
        assert.notEqual(first.ino, local.ino, "the overlay numbers inodes by path");
        // A listing with its lookups, then stats of every entry: the same as one by one.
        const names = (await fsp.readdir(at("dir"))).sort();
        assert.equal(names.length, 21);
        for (const name of names) {
          const stats = await fsp.stat(at(`dir/${name}`));
          assert.equal(stats.size, (await fsp.stat(join(env.source, "dir", name))).size);
        }
        // A whole read by the reader threads still copies the file into Riak.
        assert.ok(content.equals(await fsp.readFile(at("dir/local.bin"))));
        await eventually("copied on read", async () => {
          const stat = await env.store.tryStat("/dir/local.bin");
          return stat !== undefined && stat.size === content.length;
        });
        assert.ok(content.equals(await env.store.readFile("/dir/local.bin")));
        const after = await status();
        for (const op of ["getattr", "read"]) {
          const grew = (after.opsInReaders[op] ?? 0) - (before.opsInReaders[op] ?? 0);
          assert.ok(grew >= 1, `${op} answered in the readers (${grew})`);
        }
        if (preset === "migrate") {
          // Moved into Riak behind the mount (a pre-warm with --delete-local) while the
          // readers answer for it: the loop, which looks in Riak again, decides.
          await fsp.writeFile(join(env.source, "dir/moving"), "moving");
          assert.equal((await fsp.stat(at("dir/moving"))).size, 6);
          await env.store.writeFile("/dir/moving", Buffer.from("moved!!"));
          await fsp.unlink(join(env.source, "dir/moving"));
          assert.equal((await fsp.stat(at("dir/moving"))).size, 7);
        }
        // Written through the mount: the new size shows at once, whoever answers.
        await fsp.writeFile(at("dir/f0"), "a longer content than before");
        assert.equal((await fsp.stat(at("dir/f0"))).size, 28);
        assert.equal((await fsp.stat(at("dir/f0"))).ino, (await fsp.stat(at("dir/f0"))).ino);
        // Removed through the mount: gone, locally and for the readers.
        await fsp.unlink(at("dir/f1"));
        await assert.rejects(fsp.stat(at("dir/f1")), { code: "ENOENT" });
        await assert.rejects(fsp.stat(join(env.source, "dir/f1")), { code: "ENOENT" });
        // Renamed: the inode number follows the new path, as the loop reports it.
        await fsp.rename(at("dir"), at("moved"));
        const moved = await fsp.stat(at("moved/local.bin"));
        assert.equal((await fsp.stat(at("moved/local.bin"))).ino, moved.ino);
        assert.ok(Buffer.from("file 2").equals(await fsp.readFile(at("moved/f2"))));
      } finally {
        await env.unmount(mounted);
      }
    });
  });
}
