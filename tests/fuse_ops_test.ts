/**
 * End-to-end: every file operation through a passthrough mount made by dist/riakfs,
 * checked both through the mount and in the source directory.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { run, withMount } from "./_mount.ts";

/** Calls renameat2(2) through python3's ctypes; returns 0 or the errno. */
async function renameat2(from: string, to: string, flags: number): Promise<number> {
  const script = [
    "import ctypes, sys",
    "libc = ctypes.CDLL(None, use_errno=True)",
    "r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))",
    "print(ctypes.get_errno() if r != 0 else 0)",
  ].join("\n");
  const result = await run("python3", ["-c", script, from, to, String(flags)]);
  assert.equal(result.code, 0, result.stderr);
  return Number(result.stdout.trim());
}

/** A deterministic byte pattern for `length` bytes starting at `offset` of stream `seed`. */
function pattern(seed: number, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    bytes[i] = ((offset + i) * 31 + seed * 7 + ((offset + i) >> 9)) & 0xff;
  }
  return bytes;
}

Deno.test("file operations through a passthrough mount", async (t) => {
  await withMount(async ({ source, mountpoint }) => {
    const m = (name: string) => join(mountpoint, name);
    const s = (name: string) => join(source, name);

    await t.step("create, read, write, append, truncate", async () => {
      await fs.promises.writeFile(m("a.txt"), "hello");
      assert.equal(await fs.promises.readFile(m("a.txt"), "utf8"), "hello");
      assert.equal(fs.readFileSync(s("a.txt"), "utf8"), "hello");
      await fs.promises.appendFile(m("a.txt"), " world");
      assert.equal(await fs.promises.readFile(m("a.txt"), "utf8"), "hello world");
      const handle = await fs.promises.open(m("a.txt"), "r+");
      await handle.write("J", 0);
      await handle.close();
      assert.equal(await fs.promises.readFile(m("a.txt"), "utf8"), "Jello world");
      await fs.promises.truncate(m("a.txt"), 5);
      assert.equal(await fs.promises.readFile(m("a.txt"), "utf8"), "Jello");
      await fs.promises.truncate(m("a.txt"), 8);
      assert.deepEqual(
        [...await fs.promises.readFile(m("a.txt"))],
        [...Buffer.from("Jello"), 0, 0, 0],
      );
      const stat = await fs.promises.stat(m("a.txt"));
      assert.equal(stat.size, 8);
      assert.equal(stat.ino, fs.statSync(s("a.txt")).ino, "inode numbers are the source's");
      // O_TRUNC travels with OPEN (ATOMIC_O_TRUNC): a shorter rewrite leaves no old tail.
      await fs.promises.writeFile(m("b.txt"), "a longer first version");
      await fs.promises.writeFile(m("b.txt"), "short");
      assert.equal(await fs.promises.readFile(m("b.txt"), "utf8"), "short");
      assert.equal(fs.readFileSync(s("b.txt"), "utf8"), "short");
      await fs.promises.unlink(m("b.txt"));
    });

    await t.step(
      "a 1 MiB + 1 byte file round-trips (one max_write request and a bit)",
      async () => {
        const data = pattern(1, 0, (1 << 20) + 1);
        await fs.promises.writeFile(m("big.bin"), data);
        assert.deepEqual(new Uint8Array(await fs.promises.readFile(m("big.bin"))), data);
        assert.deepEqual(new Uint8Array(fs.readFileSync(s("big.bin"))), data);
      },
    );

    await t.step("rename, RENAME_NOREPLACE and RENAME_EXCHANGE", async () => {
      await fs.promises.writeFile(m("r1"), "one");
      await fs.promises.writeFile(m("r2"), "two");
      await fs.promises.rename(m("r1"), m("r3"));
      assert.equal(fs.existsSync(s("r1")), false);
      assert.equal(await fs.promises.readFile(m("r3"), "utf8"), "one");
      await fs.promises.rename(m("r3"), m("r2")); // Replaces.
      assert.equal(await fs.promises.readFile(m("r2"), "utf8"), "one");
      await fs.promises.writeFile(m("r4"), "four");
      assert.equal(await renameat2(m("r4"), m("r2"), 1), 17, "NOREPLACE onto a file is EEXIST");
      assert.equal(await renameat2(m("r4"), m("r5"), 1), 0);
      assert.equal(await fs.promises.readFile(m("r5"), "utf8"), "four");
      assert.equal(await renameat2(m("r5"), m("r2"), 2), 0, "EXCHANGE");
      assert.equal(await fs.promises.readFile(m("r2"), "utf8"), "four");
      assert.equal(await fs.promises.readFile(m("r5"), "utf8"), "one");
      assert.equal(fs.readFileSync(s("r2"), "utf8"), "four");
      assert.deepEqual(
        fs.readdirSync(source).filter((name) => name.startsWith(".riakfs")),
        [],
        "no exchange leftovers",
      );
      await fs.promises.mkdir(m("dir1"));
      await fs.promises.writeFile(m("dir1/inner"), "x");
      await fs.promises.rename(m("dir1"), m("dir2"));
      assert.equal(await fs.promises.readFile(m("dir2/inner"), "utf8"), "x");
    });

    await t.step("unlink, mkdir, rmdir, symlink, readlink, hard link", async () => {
      await fs.promises.mkdir(m("d"), { mode: 0o750 });
      assert.equal(fs.statSync(s("d")).mode & 0o777, 0o750);
      await fs.promises.writeFile(m("d/f"), "f");
      await fs.promises.unlink(m("d/f"));
      assert.equal(fs.existsSync(s("d/f")), false);
      await fs.promises.rmdir(m("d"));
      assert.equal(fs.existsSync(s("d")), false);
      await fs.promises.symlink("a.txt", m("link"));
      assert.equal(await fs.promises.readlink(m("link")), "a.txt");
      assert.equal(fs.readlinkSync(s("link")), "a.txt");
      assert.equal(await fs.promises.readFile(m("link"), "utf8"), "Jello\0\0\0");
      await fs.promises.link(m("a.txt"), m("hard"));
      assert.equal((await fs.promises.stat(m("a.txt"))).nlink, 2);
      assert.equal(
        (await fs.promises.stat(m("hard"))).ino,
        (await fs.promises.stat(m("a.txt"))).ino,
      );
      const fifo = await run("mkfifo", [m("fifo")]);
      assert.equal(fifo.code, 0, fifo.stderr);
      assert.ok(fs.lstatSync(s("fifo")).isFIFO());
    });

    await t.step("chmod, chown, utimens", async () => {
      await fs.promises.writeFile(m("attrs"), "x", { mode: 0o600 });
      assert.equal(fs.statSync(s("attrs")).mode & 0o777, 0o600);
      await fs.promises.chmod(m("attrs"), 0o4751);
      assert.equal(fs.statSync(s("attrs")).mode & 0o7777, 0o4751);
      await fs.promises.chown(m("attrs"), 1234, 5678);
      const owned = fs.statSync(s("attrs"));
      assert.deepEqual([owned.uid, owned.gid], [1234, 5678]);
      await fs.promises.utimes(m("attrs"), 1_000_000_000.25, 1_500_000_000.5);
      const timed = await fs.promises.stat(m("attrs"));
      assert.ok(Math.abs(timed.atimeMs - 1_000_000_000_250) < 1, String(timed.atimeMs));
      assert.ok(Math.abs(timed.mtimeMs - 1_500_000_000_500) < 1, String(timed.mtimeMs));
      assert.ok(Math.abs(fs.statSync(s("attrs")).mtimeMs - 1_500_000_000_500) < 1);
      const touched = await run("touch", ["-m", "-d", "@1600000000.123456", m("attrs")]);
      assert.equal(touched.code, 0, touched.stderr);
      const mtimeNs = fs.statSync(s("attrs"), { bigint: true }).mtimeNs;
      // Node's utimes keeps milliseconds (a documented limit of the passthrough).
      assert.ok(
        mtimeNs - 1_600_000_000_123_456_000n < 1_000_000n &&
          1_600_000_000_123_456_000n - mtimeNs < 1_000_000n,
        `millisecond precision, got ${mtimeNs}`,
      );
      const atimeBefore = fs.statSync(s("attrs")).atimeMs;
      assert.equal(atimeBefore, 1_000_000_000_250, "changing mtime alone keeps atime");
    });

    await t.step("access as root (no allow_other): only executing needs an x bit", async () => {
      await fs.promises.writeFile(m("plain"), "x", { mode: 0o000 });
      // access(2) itself, by python3 (Deno's access() looks at the mode bits instead).
      const access = async () => {
        const script = "import os, sys; p = sys.argv[1]; " +
          "print(os.access(p, os.R_OK | os.W_OK), os.access(p, os.X_OK))";
        const result = await run("python3", ["-c", script, m("plain")]);
        assert.equal(result.code, 0, result.stderr);
        return result.stdout.trim();
      };
      assert.equal(await access(), "True False");
      await fs.promises.chmod(m("plain"), 0o010);
      assert.equal(await access(), "True True");
      await fs.promises.unlink(m("plain"));
    });

    await t.step(
      "a write-only handle's writes (direct I/O) are seen by a reader's cached pages",
      async () => {
        await fs.promises.writeFile(m("shared"), Buffer.alloc(8192, "a"));
        const reader = await fs.promises.open(m("shared"), "r");
        try {
          const before = Buffer.alloc(8192);
          await reader.read(before, 0, 8192, 0); // now in the page cache
          assert.equal(before.toString(), "a".repeat(8192));
          const writeOnly = await fs.promises.open(m("shared"), fs.constants.O_WRONLY);
          await writeOnly.write(Buffer.alloc(4096, "b"), 0, 4096, 2048);
          await writeOnly.close();
          const after = Buffer.alloc(8192);
          await reader.read(after, 0, 8192, 0);
          assert.equal(after.toString(), "a".repeat(2048) + "b".repeat(4096) + "a".repeat(2048));
        } finally {
          await reader.close();
        }
        assert.equal(
          fs.readFileSync(s("shared"), "utf8"),
          "a".repeat(2048) + "b".repeat(4096) + "a".repeat(2048),
        );
      },
    );

    await t.step("statfs, fsync, fdatasync", async () => {
      const mounted = await fs.promises.statfs(mountpoint);
      const direct = fs.statfsSync(source);
      assert.equal(mounted.bsize, direct.bsize);
      assert.equal(mounted.blocks, direct.blocks);
      const handle = await fs.promises.open(m("synced"), "w");
      await handle.write("durable");
      await handle.sync();
      await handle.datasync();
      await handle.close();
      assert.equal(fs.readFileSync(s("synced"), "utf8"), "durable");
    });

    await t.step("fallocate: allocate, punch a hole", async () => {
      const allocated = await run("fallocate", ["-l", "1048576", m("alloc")]);
      assert.equal(allocated.code, 0, allocated.stderr);
      assert.equal(fs.statSync(s("alloc")).size, 1 << 20);
      assert.ok(fs.statSync(s("alloc")).blocks * 512 >= 1 << 20, "blocks really allocated");
      await fs.promises.writeFile(m("holey"), Buffer.alloc(16384, 7));
      const punched = await run("fallocate", ["-p", "-o", "4096", "-l", "4096", m("holey")]);
      assert.equal(punched.code, 0, punched.stderr);
      const bytes = await fs.promises.readFile(m("holey"));
      assert.equal(bytes.length, 16384);
      assert.ok(bytes.subarray(4096, 8192).every((b) => b === 0));
      assert.ok(bytes.subarray(0, 4096).every((b) => b === 7));
      assert.ok(bytes.subarray(8192).every((b) => b === 7));
    });

    // The full xattr checks are in fuse_xattr_test.ts.
    await t.step("xattrs are supported (set, then list)", async () => {
      const script = [
        "import os, sys",
        "try:",
        "    os.setxattr(sys.argv[1], 'user.k', b'v')",
        "    print(0)",
        "except OSError as e:",
        "    print(e.errno)",
        "try:",
        "    print(len(os.listxattr(sys.argv[1])))",
        "except OSError as e:",
        "    print(e.errno)",
      ].join("\n");
      const result = await run("python3", ["-c", script, m("a.txt")]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.trim().split("\n"), ["0", "1"]);
    });

    await t.step("sparse files and large offsets", async () => {
      const offset = 2 ** 40; // 1 TiB
      const handle = await fs.promises.open(m("sparse"), "w+");
      await handle.write(Buffer.from("end"), 0, 3, offset);
      const hole = Buffer.alloc(8192, 1);
      const { bytesRead } = await handle.read(hole, 0, 8192, offset - 4096);
      await handle.close();
      assert.equal(bytesRead, 4096 + 3);
      assert.ok(hole.subarray(0, 4096).every((b) => b === 0));
      assert.equal(hole.subarray(4096, 4099).toString(), "end");
      const stat = fs.statSync(s("sparse"));
      assert.equal(stat.size, offset + 3);
      assert.ok(stat.blocks < 64, `still sparse: ${stat.blocks} blocks`);
      assert.equal((await fs.promises.stat(m("sparse"))).size, offset + 3);
    });

    await t.step("a directory of 10,000 entries lists completely, with ls -l too", async () => {
      fs.mkdirSync(s("many"));
      for (let i = 0; i < 10_000; i++) fs.writeFileSync(s(`many/file-${i}`), String(i));
      const names = await fs.promises.readdir(m("many"));
      assert.equal(names.length, 10_000);
      assert.deepEqual(new Set(names), new Set(fs.readdirSync(s("many"))));
      const listed = await run("ls", ["-l", m("many")]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stdout.trim().split("\n").length, 10_001); // "total" + entries
      assert.equal(await fs.promises.readFile(m("many/file-9999"), "utf8"), "9999");
      await fs.promises.rm(m("many"), { recursive: true });
      assert.equal(fs.existsSync(s("many")), false);
    });

    await t.step("64 concurrent writers then 64 concurrent readers check every byte", async () => {
      const size = 256 * 1024 + 123;
      const chunk = 64 * 1024;
      await Promise.all(Array.from({ length: 64 }, async (_, id) => {
        const handle = await fs.promises.open(m(`par-${id}`), "w");
        try {
          for (let offset = 0; offset < size; offset += chunk) {
            const length = Math.min(chunk, size - offset);
            await handle.write(pattern(id, offset, length), 0, length, offset);
          }
        } finally {
          await handle.close();
        }
      }));
      await Promise.all(Array.from({ length: 64 }, async (_, id) => {
        const data = new Uint8Array(await fs.promises.readFile(m(`par-${id}`)));
        assert.deepEqual(data, pattern(id, 0, size), `file ${id} through the mount`);
      }));
      for (let id = 0; id < 64; id++) {
        assert.deepEqual(new Uint8Array(fs.readFileSync(s(`par-${id}`))), pattern(id, 0, size));
      }
    });

    await t.step("64 concurrent readers and writers on one file", async () => {
      const blocks = 64;
      const block = 16 * 1024;
      const handle = await fs.promises.open(m("shared"), "w+");
      try {
        await Promise.all(Array.from({ length: blocks }, async (_, id) => {
          await handle.write(pattern(id + 100, 0, block), 0, block, id * block);
          const back = Buffer.alloc(block);
          await handle.read(back, 0, block, id * block);
          assert.deepEqual(new Uint8Array(back), pattern(id + 100, 0, block), `block ${id}`);
        }));
      } finally {
        await handle.close();
      }
      const all = fs.readFileSync(s("shared"));
      for (let id = 0; id < blocks; id++) {
        assert.deepEqual(
          new Uint8Array(all.subarray(id * block, (id + 1) * block)),
          pattern(id + 100, 0, block),
        );
      }
    });
  });
});

/** What stat(1) reports of a path: every attribute GETATTR carries, with nanoseconds. */
async function attributes(path: string): Promise<string> {
  const result = await run("stat", ["-c", "%i %s %b %B %f %h %u %g %t %T %x %y %z", path]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

Deno.test("what the reader threads answer (GETATTR, missed LOOKUP, UNLINK, RMDIR) matches the source", async (t) => {
  // attr_timeout=0: every stat reaches the mount as a GETATTR (the reader threads' path).
  await withMount(async ({ source, mountpoint }) => {
    const m = (name: string) => join(mountpoint, name);
    const s = (name: string) => join(source, name);

    await t.step(
      "files, directories and symlinks, changed through and behind the mount",
      async () => {
        fs.mkdirSync(m("dir"));
        fs.writeFileSync(m("dir/file"), "12345");
        fs.symlinkSync("file", m("dir/link"));
        fs.chmodSync(m("dir/file"), 0o640);
        for (const name of ["", "dir", "dir/file", "dir/link"]) {
          assert.equal(await attributes(m(name)), await attributes(s(name)), name);
        }
        fs.writeFileSync(s("dir/file"), "changed behind the mount, longer");
        fs.utimesSync(s("dir/file"), 1_000_000_000.25, 1_234_567_890.5);
        assert.equal(await attributes(m("dir/file")), await attributes(s("dir/file")));
      },
    );

    await t.step("a renamed directory's subtree is found at its new path only", async () => {
      fs.mkdirSync(m("tree/deeper"), { recursive: true });
      fs.writeFileSync(m("tree/deeper/leaf"), "leaf");
      const before = fs.statSync(m("tree/deeper/leaf"));
      fs.renameSync(m("tree"), m("dir/moved"));
      const after = fs.statSync(m("dir/moved/deeper/leaf"));
      assert.equal(after.ino, before.ino);
      assert.equal(
        await attributes(m("dir/moved/deeper/leaf")),
        await attributes(s("dir/moved/deeper/leaf")),
      );
      assert.throws(() => fs.statSync(m("tree/deeper/leaf")), { code: "ENOENT" });
      fs.renameSync(m("dir/moved/deeper/leaf"), m("leaf"));
      assert.equal(await attributes(m("leaf")), await attributes(s("leaf")));
    });

    await t.step("misses, unlinks and rmdirs in a renamed directory", () => {
      fs.mkdirSync(m("rm/sub"), { recursive: true });
      fs.writeFileSync(m("rm/sub/f"), "f");
      fs.renameSync(m("rm"), m("rm2"));
      assert.throws(() => fs.statSync(m("rm2/sub/missing")), { code: "ENOENT" });
      assert.throws(() => fs.unlinkSync(m("rm2/sub/missing")), { code: "ENOENT" });
      assert.throws(() => fs.rmdirSync(m("rm2/sub")), { code: "ENOTEMPTY" });
      fs.unlinkSync(m("rm2/sub/f"));
      assert.equal(fs.existsSync(s("rm2/sub/f")), false);
      fs.rmdirSync(m("rm2/sub"));
      assert.equal(fs.existsSync(s("rm2/sub")), false);
      assert.deepEqual(fs.readdirSync(m("rm2")), []);
    });

    await t.step("a miss is not remembered: a name made behind the mount is found", () => {
      assert.throws(() => fs.statSync(m("late")), { code: "ENOENT" });
      fs.writeFileSync(s("late"), "here");
      assert.equal(fs.readFileSync(m("late"), "utf8"), "here");
    });

    await t.step("renames racing with GETATTRs never answer for the wrong file", async () => {
      fs.mkdirSync(m("left"));
      fs.mkdirSync(m("right"));
      fs.writeFileSync(m("left/x"), "a".repeat(111));
      fs.writeFileSync(m("right/x"), "b".repeat(222));
      const left = await fs.promises.open(m("left/x"), "r");
      const right = await fs.promises.open(m("right/x"), "r");
      try {
        let swapping = true;
        const swaps = (async () => {
          for (let i = 0; i < 150; i++) {
            await fs.promises.rename(m("left"), m("aside"));
            await fs.promises.rename(m("right"), m("left"));
            await fs.promises.rename(m("aside"), m("right"));
          }
          swapping = false;
        })();
        let checked = 0;
        const check = async (handle: fs.promises.FileHandle, size: number) => {
          // Each fstat is a GETATTR by node: answered from the node's current path.
          const stat = await handle.stat().catch((error) => {
            assert.equal(error.code, "ENOENT", "only the rename's middle may be missing");
            return undefined;
          });
          if (stat) assert.equal(stat.size, size, "the attributes of the other file");
          checked++;
        };
        while (swapping) await Promise.all([check(left, 111), check(right, 222)]);
        await swaps;
        await check(left, 111);
        await check(right, 222);
        assert.ok(checked > 2);
      } finally {
        await left.close();
        await right.close();
      }
    });

    await t.step("a file replaced behind the mount shows the new inode", () => {
      fs.writeFileSync(m("replaced"), "old");
      fs.statSync(m("replaced"));
      fs.unlinkSync(s("replaced"));
      fs.writeFileSync(s("replaced"), "the new one");
      // The name may stay cached for the entry timeout; the attributes are never stale.
      assert.equal(fs.statSync(m("replaced")).size, fs.statSync(s("replaced")).size);
    });
  }, { options: "attr_timeout=0" });
});

Deno.test("what the reader threads create and open (CREATE, OPEN, RELEASE) matches the source", async (t) => {
  await withMount(async ({ source, mountpoint, server }) => {
    const m = (name: string) => join(mountpoint, name);
    const s = (name: string) => join(source, name);

    await t.step("64 files created at once, then read, renamed, linked and removed", async () => {
      const names = Array.from({ length: 64 }, (_, i) => `made-${i}`);
      await Promise.all(names.map((name, i) => fs.promises.writeFile(m(name), `${i}`.repeat(i))));
      await Promise.all(names.map(async (name, i) => {
        assert.equal(await fs.promises.readFile(m(name), "utf8"), `${i}`.repeat(i));
        assert.equal(await attributes(m(name)), await attributes(s(name)));
        await fs.promises.rename(m(name), m(`${name}.moved`));
        assert.equal(await fs.promises.readFile(m(`${name}.moved`), "utf8"), `${i}`.repeat(i));
      }));
      fs.linkSync(m("made-7.moved"), m("made-7.link"));
      assert.equal(fs.statSync(m("made-7.moved")).nlink, 2);
      assert.equal(fs.statSync(m("made-7.link")).ino, fs.statSync(s("made-7.moved")).ino);
      await Promise.all(names.map((name) => fs.promises.unlink(m(`${name}.moved`))));
      fs.unlinkSync(m("made-7.link"));
      assert.deepEqual(fs.readdirSync(source).filter((name) => name.startsWith("made-")), []);
    });

    await t.step("a name made and removed over and over shows each new inode", () => {
      for (let i = 0; i < 200; i++) {
        fs.writeFileSync(m("again"), "x".repeat(i));
        assert.equal(fs.statSync(m("again")).ino, fs.statSync(s("again")).ino);
        assert.equal(fs.statSync(m("again")).size, i);
        fs.unlinkSync(m("again"));
      }
      assert.equal(fs.existsSync(s("again")), false);
    });

    await t.step("O_CREAT of an existing name opens it; O_EXCL refuses it", async () => {
      fs.writeFileSync(s("existing"), "kept");
      const handle = await fs.promises.open(m("existing"), "a");
      await handle.write("+more");
      await handle.close();
      assert.equal(fs.readFileSync(s("existing"), "utf8"), "kept+more");
      await assert.rejects(fs.promises.writeFile(m("existing"), "z", { flag: "wx" }), {
        code: "EEXIST",
      });
    });

    await t.step("a file made by another user belongs to it, with its umask", async () => {
      fs.mkdirSync(m("open"), { mode: 0o777 });
      fs.chmodSync(m("open"), 0o777);
      fs.mkdirSync(m("group"), { mode: 0o777 });
      fs.chownSync(m("group"), 0, 4321);
      fs.chmodSync(m("group"), 0o2777);
      const made = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        `umask 027; echo x > ${m("open/mine")} && echo y > ${m("group/mine")}`,
      ]);
      assert.equal(made.code, 0, made.stderr);
      const mine = fs.statSync(s("open/mine"));
      assert.deepEqual([mine.uid, mine.gid, mine.mode & 0o7777], [65534, 65534, 0o640]);
      const grouped = fs.statSync(s("group/mine"));
      assert.deepEqual([grouped.uid, grouped.gid], [65534, 4321], "a setgid directory's group");
      assert.equal(await attributes(m("group/mine")), await attributes(s("group/mine")));
    });

    await t.step("files opened again and again are closed again (no descriptor leak)", async () => {
      fs.writeFileSync(m("reopened"), "r");
      const serverFds = () => fs.readdirSync(`/proc/${server.pid}/fd`).length;
      const before = serverFds();
      for (let i = 0; i < 300; i++) assert.equal(fs.readFileSync(m("reopened"), "utf8"), "r");
      // RELEASE is sent after close(2) returns: wait until the descriptors are back.
      const deadline = Date.now() + 5000;
      while (serverFds() > before + 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(serverFds() <= before + 2, `${before} -> ${serverFds()} descriptors`);
    });
  }, { options: "attr_timeout=0,allow_other" });
});
