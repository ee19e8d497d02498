/**
 * Every operation of the passthrough layer through a real mount in each Riak-backed preset,
 * checked both through the mount and in Riak (the embedded server, in its own process).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { eventually, withOverlayEnv } from "./_overlay.ts";

for (const preset of ["shadow", "migrate", "drain", "riak"]) {
  Deno.test(`${preset}: namespace and data operations through the mount`, async () => {
    await withOverlayEnv(async (env) => {
      const mounted = await env.mount(preset);
      const at = (path: string) => join(env.mountpoint, path);
      try {
        // create, write, read
        await fsp.mkdir(at("dir"), { mode: 0o750 });
        const content = seededBytes(1, 1_500_000);
        await fsp.writeFile(at("dir/a.bin"), content);
        assert.ok(content.equals(await fsp.readFile(at("dir/a.bin"))));
        // write at an offset past the end, then append
        const handle = await fsp.open(at("dir/a.bin"), "r+");
        await handle.write(Buffer.from("Z"), 0, 1, 1_500_010);
        await handle.sync();
        // fsync returned: Riak acknowledged the file as it was then, in every preset.
        const synced = Buffer.concat([content, Buffer.alloc(10), Buffer.from("Z")]);
        assert.ok(synced.equals(await env.store.readFile("dir/a.bin")), "in Riak at fsync");
        await handle.close();
        await fsp.appendFile(at("dir/a.bin"), "tail");
        const expected = Buffer.concat([content, Buffer.alloc(10), Buffer.from("Ztail")]);
        assert.ok(expected.equals(await fsp.readFile(at("dir/a.bin"))));
        // truncate
        await fsp.truncate(at("dir/a.bin"), 1000);
        assert.equal((await fsp.stat(at("dir/a.bin"))).size, 1000);
        // a shorter rewrite (O_TRUNC with the open) leaves no old tail
        await fsp.writeFile(at("dir/t.txt"), "a longer first version");
        await fsp.writeFile(at("dir/t.txt"), "short");
        assert.equal(await fsp.readFile(at("dir/t.txt"), "utf8"), "short");
        await fsp.unlink(at("dir/t.txt"));
        // chmod, chown, utimens: reported back exactly, not "now" and 0777
        await fsp.chmod(at("dir/a.bin"), 0o640);
        await fsp.chown(at("dir/a.bin"), 1234, 4321);
        const when = new Date("2021-03-04T05:06:07.089Z");
        await fsp.utimes(at("dir/a.bin"), when, when);
        const stats = await fsp.stat(at("dir/a.bin"));
        assert.equal(stats.mode & 0o7777, 0o640);
        assert.equal(stats.uid, 1234);
        assert.equal(stats.gid, 4321);
        assert.equal(stats.mtime.getTime(), when.getTime());
        // symlink, readlink
        await fsp.symlink("a.bin", at("dir/link"));
        assert.equal(await fsp.readlink(at("dir/link")), "a.bin");
        // rename of a file across directories and of a directory
        await fsp.mkdir(at("other"));
        await fsp.rename(at("dir/a.bin"), at("other/b.bin"));
        await fsp.rename(at("other"), at("moved"));
        assert.deepEqual((await fsp.readdir(at("moved"))).sort(), ["b.bin"]);
        assert.ok(content.subarray(0, 1000).equals(await fsp.readFile(at("moved/b.bin"))));
        // hard links: honest refusal
        await assert.rejects(fsp.link(at("moved/b.bin"), at("hard")), { code: "EPERM" });
        // statfs
        assert.ok((await fsp.statfs(env.mountpoint)).blocks > 0);
        // Riak holds the result with its attributes (after pending uploads).
        await eventually("the renamed file in Riak, with its attributes exactly", async () => {
          const stat = await env.store.tryStat("moved/b.bin");
          return stat?.size === 1000 && stat.mode === 0o640 && stat.uid === 1234 &&
            stat.gid === 4321 && stat.mtimeNs === BigInt(when.getTime()) * 1_000_000n;
        });
        // The bytes after the offset write, the append and the truncate, not only the size.
        assert.ok(content.subarray(0, 1000).equals(await env.store.readFile("moved/b.bin")));
        assert.equal((await env.store.stat("moved")).type, "directory");
        assert.equal((await env.store.stat("dir")).mode, 0o750, "mkdir's mode, exactly");
        // In shadow and migrate Riak follows a rename in the background.
        await eventually(
          "the old name gone from Riak",
          async () => (await env.store.tryStat("dir/a.bin")) === undefined,
        );
        // unlink, rmdir
        await fsp.unlink(at("moved/b.bin"));
        await fsp.unlink(at("dir/link"));
        await fsp.rmdir(at("moved"));
        await fsp.rmdir(at("dir"));
        assert.deepEqual(await fsp.readdir(env.mountpoint), []);
        await assert.rejects(fsp.stat(at("dir")), { code: "ENOENT" });
        // In shadow an unlink answers before Riak's copy goes.
        await eventually(
          "the removed file gone from Riak",
          async () => (await env.store.tryStat("moved/b.bin")) === undefined,
        );
        if (preset !== "riak") {
          assert.deepEqual(
            (await fsp.readdir(env.source)).filter((name) => name !== ".riakfs-spool"),
            [],
          );
        }
      } catch (error) {
        // What the mount logged (failed handlers, outages) explains most failures.
        throw new Error(`${(error as Error).stack}\nmount stderr:\n${mounted.stderr()}`);
      } finally {
        await env.unmount(mounted);
      }
    });
  });
}
