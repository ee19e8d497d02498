/**
 * POSIX behaviour of the mount in every preset, measured against what a local disk does:
 *
 * 1. An open file keeps working after its name is unlinked: reads (and, open read-write,
 *    writes) through the descriptor go on, fstat answers with the size and `nlink` 0, and the
 *    name is gone at once; once closed, nothing of it is left through the mount, in Riak or in
 *    the source. For files made through the mount (smaller and bigger than a Riak chunk,
 *    uploaded before they are opened) and for a legacy file of the source.
 * 2. A file just created and still open can be deleted: the unlink succeeds, the descriptor
 *    keeps writing and reading, and once it is closed and the queues are idle nothing of the
 *    file is left (mount, Riak, source, staged files of the spool).
 * 3. Times set with utimes come back exactly: whole seconds to the nanosecond, a time with
 *    milliseconds to the millisecond (the precision the README promises), through the mount,
 *    in the source file, in Riak, and through a new mount.
 * 4. `touch -a` (utimensat with the mtime omitted) changes no reported mtime.
 * 5. Making, renaming and removing entries moves their directories' mtimes, and an mtime set
 *    on the directory after that (as tar does) stays; a new mount shows the same times.
 *
 * Deno's node:fs derives `mtimeNs` of a bigint stat from the millisecond time, so nanoseconds
 * are also read with stat(1) (`%.9Y`), which a few nanoseconds off would not get past.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import {
  type OverlayEnv,
  statusOf,
  step,
  waitForQuiet,
  withLog,
  withMounted,
  withOverlayEnv,
} from "./_overlay.ts";

const PRESETS = ["passthrough", "shadow", "migrate", "drain", "riak"];
/** Presets that keep what is written through the mount in the source directory. */
const WRITES_LOCALLY = new Set(["passthrough", "shadow", "migrate"]);

/** File sizes read after their unlink: Riak keeps the small one whole, the big one in chunks. */
const SIZES = [
  { what: "smaller than a chunk", size: 300_000 },
  { what: "bigger than a chunk", size: 1_500_000 },
];

/** 2020-01-01T00:00:00Z. */
const WHOLE_SECONDS_MS = Date.UTC(2020, 0, 1);
/** 2020-01-01T00:00:00.123Z. */
const WITH_MILLISECONDS_MS = WHOLE_SECONDS_MS + 123;
/** A directory's time from before the test. */
const OLD_TIME = new Date(Date.UTC(2019, 0, 1));

/** Reads `fd` from offset 0 to its end (one byte more than `expected` at most). */
function readThrough(fd: number, expected: number): Buffer {
  const buffer = Buffer.alloc(expected + 1);
  let done = 0;
  while (done < buffer.length) {
    const read = fs.readSync(fd, buffer, done, buffer.length - done, done);
    if (read === 0) break;
    done += read;
  }
  return buffer.subarray(0, done);
}

/** The name is gone from the mount: no stat, not in the listing. */
function assertNameGone(env: OverlayEnv, name: string): void {
  assert.equal(fs.existsSync(join(env.mountpoint, name)), false, `${name} still exists`);
  assert.ok(!fs.readdirSync(env.mountpoint).includes(name), `${name} still listed`);
}

/**
 * Nothing of `name` is left, right after the close and once the queues are idle: not through
 * the mount, not in Riak, not in the source.
 */
async function assertNothingLeft(env: OverlayEnv, name: string): Promise<void> {
  assertNameGone(env, name);
  await waitForQuiet(env);
  assertNameGone(env, name);
  assert.equal(await env.store.tryStat(name), undefined, `${name} in Riak`);
  assert.equal(fs.existsSync(join(env.source, name)), false, `${name} in the source`);
}

/** What is done with a descriptor of a file whose name is unlinked while it is open. */
interface UnlinkedUse {
  /** Run before the unlink (a write while the file has its name). */
  before?: (fd: number) => void;
  /** Run after the unlink. */
  after: (fd: number) => void;
  /** The size fstat must then report. */
  size: number;
}

/**
 * Opens `name` in the mount with `flags`, unlinks it (the name must be gone at once), uses
 * the descriptor as `use` says, checks that fstat reports `use.size` and no link left, and
 * once it is closed that nothing of the file is left anywhere.
 */
async function useUnlinked(
  env: OverlayEnv,
  name: string,
  flags: string,
  use: UnlinkedUse,
): Promise<void> {
  const fd = fs.openSync(join(env.mountpoint, name), flags);
  try {
    use.before?.(fd);
    fs.unlinkSync(join(env.mountpoint, name));
    assertNameGone(env, name);
    use.after(fd);
    const stat = fs.fstatSync(fd);
    assert.equal(stat.size, use.size);
    assert.equal(stat.nlink, 0);
  } finally {
    fs.closeSync(fd);
  }
  await assertNothingLeft(env, name);
}

/** The file's mtime (or, with `%.9Z`, ctime) in nanoseconds, exactly, as stat(1) reads it. */
async function exactMtimeNs(path: string, format = "%.9Y"): Promise<bigint> {
  const { code, stdout, stderr } = await new Deno.Command("stat", { args: ["-c", format, path] })
    .output();
  assert.equal(code, 0, `stat ${path}: ${new TextDecoder().decode(stderr)}`);
  const [seconds, fraction] = new TextDecoder().decode(stdout).trim().split(".");
  return BigInt(seconds) * 1_000_000_000n + BigInt(fraction);
}

/**
 * `path`'s mtime in nanoseconds as node:fs reports it and as stat(1) does, cut to a multiple
 * of `precisionNs`.
 */
async function mtimesOf(
  path: string,
  precisionNs = 1n,
): Promise<{ nodeFs: bigint; stat1: bigint }> {
  const cut = (ns: bigint) => ns - ns % precisionNs;
  return {
    nodeFs: cut(fs.statSync(path, { bigint: true }).mtimeNs),
    stat1: cut(await exactMtimeNs(path)),
  };
}

for (const preset of PRESETS) {
  Deno.test(`${preset}: an open file keeps working after its name is unlinked`, async (t) => {
    await withOverlayEnv(async (env) => {
      const legacy = seededBytes(3, 1_500_000);
      // riak does not use the source: it has no legacy files.
      if (preset !== "riak") fs.writeFileSync(join(env.source, "legacy.bin"), legacy);
      await withMounted(env, preset, async (mounted) => {
        for (const { what, size } of SIZES) {
          await step(t, mounted, `open read-only, made through the mount, ${what}`, async () => {
            const name = `read-only-${size}.bin`;
            const content = seededBytes(size, size);
            fs.writeFileSync(join(env.mountpoint, name), content);
            // Uploaded first: drain and riak open it from Riak, not from a pending upload.
            await waitForQuiet(env);
            await useUnlinked(env, name, "r", {
              after: (fd) =>
                assert.ok(content.equals(readThrough(fd, content.length)), "content after unlink"),
              size: content.length,
            });
          });
        }

        await step(t, mounted, "open read-write, written after the unlink", async () => {
          const name = "read-write.txt";
          const before = Buffer.from("written before the unlink\n");
          const after = Buffer.from("written after the unlink\n");
          fs.writeFileSync(join(env.mountpoint, name), before);
          // Uploaded first: drain and riak open it from Riak, not from a pending upload.
          await waitForQuiet(env);
          const expected = Buffer.concat([before, after]);
          await useUnlinked(env, name, "r+", {
            after: (fd) => {
              assert.equal(fs.writeSync(fd, after, 0, after.length, before.length), after.length);
              assert.equal(readThrough(fd, expected.length).toString(), expected.toString());
            },
            size: expected.length,
          });
        });

        // riak does not use the source: it has no legacy files.
        if (preset === "riak") return;
        await step(t, mounted, "open read-only, a legacy file of the source", async () => {
          await useUnlinked(env, "legacy.bin", "r", {
            after: (fd) =>
              assert.ok(legacy.equals(readThrough(fd, legacy.length)), "content after unlink"),
            size: legacy.length,
          });
        });
      });
    });
  });

  Deno.test(`${preset}: a just-created file still open can be deleted`, async (t) => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async (mounted) => {
        await step(t, mounted, 'opened "w", written after the unlink', async () => {
          const name = "created-w.txt";
          const data = Buffer.from("written to a nameless file\n");
          // A write-only descriptor cannot read (EBADF on a local disk too): fstat tells.
          await useUnlinked(env, name, "w", {
            after: (fd) => assert.equal(fs.writeSync(fd, data, 0, data.length, 0), data.length),
            size: data.length,
          });
        });

        await step(t, mounted, 'opened "w+", written before and after the unlink', async () => {
          const name = "created-w-plus.txt";
          const before = Buffer.from("written while it had a name\n");
          const after = Buffer.from("written once it had none\n");
          const expected = Buffer.concat([before, after]);
          await useUnlinked(env, name, "w+", {
            before: (fd) =>
              assert.equal(fs.writeSync(fd, before, 0, before.length, 0), before.length),
            after: (fd) => {
              assert.equal(fs.writeSync(fd, after, 0, after.length, before.length), after.length);
              assert.equal(readThrough(fd, expected.length).toString(), expected.toString());
            },
            size: expected.length,
          });
        });

        await step(t, mounted, "no staged file is left in the spool", async () => {
          await waitForQuiet(env);
          const report = await statusOf(env);
          assert.equal(report.spool?.files ?? 0, 0, JSON.stringify(report.spool));
        });
      });
    });
  });

  Deno.test(`${preset}: times set through the mount come back exactly`, async (t) => {
    await withOverlayEnv(async (env) => {
      // Whole seconds come back to the nanosecond; milliseconds to the millisecond, the
      // precision the README promises (Node's utimes takes a double of seconds).
      const cases = [
        { name: "whole-seconds.txt", ms: WHOLE_SECONDS_MS, what: "whole seconds", precisionNs: 1n },
        {
          name: "milliseconds.txt",
          ms: WITH_MILLISECONDS_MS,
          what: "milliseconds",
          precisionNs: 1_000_000n,
        },
      ];
      await withMounted(env, preset, async (mounted) => {
        for (const { name, ms, what, precisionNs } of cases) {
          await step(t, mounted, `${what}: through the mount, the source and Riak`, async () => {
            const path = join(env.mountpoint, name);
            fs.writeFileSync(path, `${what}\n`);
            fs.utimesSync(path, new Date(ms), new Date(ms));
            const expectedNs = BigInt(ms) * 1_000_000n;
            // Every place at once, so that a failure shows them all.
            const seen: Record<string, unknown> = { mount: await mtimesOf(path, precisionNs) };
            const expected: Record<string, unknown> = {
              mount: { nodeFs: expectedNs, stat1: expectedNs },
            };
            // drain and riak write to Riak only: the source holds no copy of the file.
            if (WRITES_LOCALLY.has(preset)) {
              seen.source = await mtimesOf(join(env.source, name), precisionNs);
              expected.source = expected.mount;
            }
            // passthrough does not use Riak.
            if (preset !== "passthrough") {
              await waitForQuiet(env);
              const riakNs = (await env.store.tryStat(name))?.mtimeNs;
              seen.riak = riakNs === undefined ? undefined : riakNs - riakNs % precisionNs;
              expected.riak = expectedNs;
            }
            assert.deepEqual(seen, expected);
          });
        }
      });
      await withMounted(env, preset, async (mounted) => {
        for (const { name, ms, what, precisionNs } of cases) {
          await step(t, mounted, `${what}: through a new mount`, async () => {
            const expectedNs = BigInt(ms) * 1_000_000n;
            assert.deepEqual(
              await mtimesOf(join(env.mountpoint, name), precisionNs),
              { nodeFs: expectedNs, stat1: expectedNs },
            );
          });
        }
      });
    });
  });

  Deno.test(`${preset}: touch -a leaves the mtime alone`, async () => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async () => {
        const path = join(env.mountpoint, "touched.txt");
        fs.writeFileSync(path, "only its atime changes\n");
        fs.utimesSync(path, new Date(1_400_000_000_000), new Date(1_500_000_000_000));
        assert.equal(fs.statSync(path).mtimeMs, 1_500_000_000_000, "mtime set by utimes");
        const touch = await new Deno.Command("touch", { args: ["-a", "-d", "@1000000000", path] })
          .output();
        assert.equal(touch.code, 0, `touch -a: ${new TextDecoder().decode(touch.stderr)}`);
        // Every reading at once, so that a failure shows them all; the first two right away.
        const seen: Record<string, unknown> = {
          mtimeMsRightAfter: fs.statSync(path).mtimeMs,
          stat1Ns: await exactMtimeNs(path),
        };
        const expected: Record<string, unknown> = {
          mtimeMsRightAfter: 1_500_000_000_000,
          stat1Ns: 1_500_000_000_000_000_000n,
        };
        // passthrough does not use Riak.
        if (preset !== "passthrough") {
          await waitForQuiet(env);
          seen.riakNs = (await env.store.tryStat("touched.txt"))?.mtimeNs;
          expected.riakNs = 1_500_000_000_000_000_000n;
          seen.mtimeMsOnceInRiak = fs.statSync(path).mtimeMs;
          expected.mtimeMsOnceInRiak = 1_500_000_000_000;
        }
        assert.deepEqual(seen, expected);
      });
    });
  });

  Deno.test(`${preset}: a directory's mtime moves with its entries, and one set after them stays`, async (t) => {
    await withOverlayEnv(async (env) => {
      const dir = join(env.mountpoint, "d");
      const other = join(env.mountpoint, "e");
      const changes: { what: string; moves: string[]; change: () => void }[] = [
        {
          what: "a file created",
          moves: [dir],
          change: () => fs.writeFileSync(join(dir, "a"), "a"),
        },
        { what: "a directory made", moves: [dir], change: () => fs.mkdirSync(join(dir, "sub")) },
        { what: "a symlink made", moves: [dir], change: () => fs.symlinkSync("a", join(dir, "l")) },
        {
          what: "a file renamed",
          moves: [dir],
          change: () => fs.renameSync(join(dir, "a"), join(dir, "b")),
        },
        {
          what: "a file moved to another directory",
          moves: [dir, other],
          change: () => fs.renameSync(join(dir, "b"), join(other, "b")),
        },
        { what: "a file removed", moves: [other], change: () => fs.unlinkSync(join(other, "b")) },
        { what: "a directory removed", moves: [dir], change: () => fs.rmdirSync(join(dir, "sub")) },
      ];
      let timesBefore: number[] = [];
      await withMounted(env, preset, async (mounted) => {
        fs.mkdirSync(dir);
        fs.mkdirSync(other);
        for (const { what, moves, change } of changes) {
          await step(t, mounted, what, () => {
            for (const at of [dir, other]) fs.utimesSync(at, OLD_TIME, OLD_TIME);
            // Local file systems take their times from a clock a tick coarser than Date.now.
            const earliestMs = Date.now() - 1_000;
            change();
            for (const at of [dir, other]) {
              const { mtimeMs } = fs.statSync(at);
              if (moves.includes(at)) assert.ok(mtimeMs >= earliestMs, `${at}: ${mtimeMs}`);
              else assert.equal(mtimeMs, OLD_TIME.getTime(), `${at} did not change`);
            }
            return Promise.resolve();
          });
        }
        await step(t, mounted, "an mtime set after the entries stays", async () => {
          fs.writeFileSync(join(dir, "last"), "last");
          fs.utimesSync(dir, OLD_TIME, OLD_TIME);
          assert.equal(fs.statSync(dir).mtimeMs, OLD_TIME.getTime());
          await waitForQuiet(env);
          assert.equal(fs.statSync(dir).mtimeMs, OLD_TIME.getTime(), "once the queues are idle");
        });
        timesBefore = [dir, other].map((at) => fs.statSync(at).mtimeMs);
      });
      await withMounted(env, preset, async (mounted) => {
        await step(t, mounted, "a new mount shows the same times", () => {
          assert.deepEqual([dir, other].map((at) => fs.statSync(at).mtimeMs), timesBefore);
          return Promise.resolve();
        });
      });
    });
  });

  Deno.test(`${preset}: mknod makes regular files; FIFOs only where the source keeps them`, async () => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async () => {
        const mknod = (args: string[]) => new Deno.Command("mknod", { args }).output();
        const fifo = await mknod([join(env.mountpoint, "fifo"), "p"]);
        if (preset === "passthrough") {
          assert.equal(fifo.code, 0, new TextDecoder().decode(fifo.stderr));
          assert.ok(fs.lstatSync(join(env.mountpoint, "fifo")).isFIFO());
        } else {
          // Riak holds files, directories and symlinks only: refused, not "not implemented".
          assert.notEqual(fifo.code, 0);
          assert.match(new TextDecoder().decode(fifo.stderr), /Operation not permitted/);
          assert.equal(fs.existsSync(join(env.mountpoint, "fifo")), false);
        }
        const python = await new Deno.Command("python3", {
          args: [
            "-c",
            "import os, stat, sys; os.mknod(sys.argv[1], 0o640 | stat.S_IFREG)",
            join(env.mountpoint, "plain"),
          ],
        }).output();
        assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
        const plain = fs.statSync(join(env.mountpoint, "plain"));
        assert.ok(plain.isFile());
        assert.equal(plain.size, 0);
        assert.equal(plain.mode & 0o777, 0o640); // umask 022 or 027 leaves it so
        if (preset !== "passthrough") {
          await waitForQuiet(env);
          assert.equal((await env.store.tryStat("plain"))?.size, 0, "in Riak");
        }
      });
    });
  });

  Deno.test(`${preset}: an open file is read whole after a rename of it, and after one over it`, async (t) => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async (mounted) => {
        const at = (name: string) => join(env.mountpoint, name);
        await step(t, mounted, "renamed while open, then removed", async () => {
          const content = seededBytes(31, 1_500_000);
          fs.writeFileSync(at("moving.bin"), content);
          // Uploaded first: drain and riak open it from Riak, not from a pending upload.
          await waitForQuiet(env);
          const fd = fs.openSync(at("moving.bin"), "r");
          try {
            fs.renameSync(at("moving.bin"), at("moved.bin"));
            fs.unlinkSync(at("moved.bin"));
            assert.ok(content.equals(readThrough(fd, content.length)), "content after both");
          } finally {
            fs.closeSync(fd);
          }
          await assertNothingLeft(env, "moved.bin");
        });
        await step(t, mounted, "renamed over while open", async () => {
          const old = seededBytes(32, 300_000);
          fs.writeFileSync(at("target.bin"), old);
          fs.writeFileSync(at("newer.bin"), "the new file");
          await waitForQuiet(env);
          const fd = fs.openSync(at("target.bin"), "r");
          try {
            fs.renameSync(at("newer.bin"), at("target.bin"));
            assert.ok(old.equals(readThrough(fd, old.length)), "the old content");
          } finally {
            fs.closeSync(fd);
          }
          assert.equal(fs.readFileSync(at("target.bin"), "utf8"), "the new file");
        });
      });
    });
  });

  Deno.test(`${preset}: a descriptor of a file renamed over or made again answers for its own file`, async (t) => {
    await withOverlayEnv(async (env) => {
      // No attribute caching: every fstat(2) asks the mount, as once the cache expired.
      const mounted = await env.mount(preset, ["-o", "attr_timeout=0,entry_timeout=0"]);
      try {
        const at = (name: string) => join(env.mountpoint, name);
        const assertOwnFile = (fd: number, content: Buffer) => {
          const stat = fs.fstatSync(fd);
          assert.deepEqual([stat.size, stat.nlink], [content.length, 0], "fstat");
          assert.ok(content.equals(readThrough(fd, content.length)), "read to the end");
        };
        await step(t, mounted, "renamed over", async () => {
          const old = seededBytes(33, 300_000);
          fs.writeFileSync(at("report.bin"), old);
          await waitForQuiet(env);
          const fd = fs.openSync(at("report.bin"), "r");
          try {
            fs.writeFileSync(at("report.tmp"), "new report");
            fs.renameSync(at("report.tmp"), at("report.bin"));
            assertOwnFile(fd, old);
          } finally {
            fs.closeSync(fd);
          }
          assert.equal(fs.readFileSync(at("report.bin"), "utf8"), "new report");
        });
        await step(t, mounted, "removed and made again", async () => {
          const old = seededBytes(34, 300_000);
          fs.writeFileSync(at("log.bin"), old);
          await waitForQuiet(env);
          const fd = fs.openSync(at("log.bin"), "r");
          try {
            fs.unlinkSync(at("log.bin"));
            fs.writeFileSync(at("log.bin"), "new log");
            assertOwnFile(fd, old);
          } finally {
            fs.closeSync(fd);
          }
          assert.equal(fs.readFileSync(at("log.bin"), "utf8"), "new log");
        });
        await step(
          t,
          mounted,
          "changed through its descriptor after a rename over it",
          async () => {
            fs.writeFileSync(at("draft.txt"), "draft text, long enough");
            await waitForQuiet(env);
            const fd = fs.openSync(at("draft.txt"), "r+");
            try {
              fs.writeFileSync(at("draft.new"), "final text");
              fs.renameSync(at("draft.new"), at("draft.txt"));
              fs.ftruncateSync(fd, 5);
              fs.fchmodSync(fd, 0o600);
              assert.equal(fs.fstatSync(fd).size, 5);
            } finally {
              fs.closeSync(fd);
            }
            assert.equal(fs.readFileSync(at("draft.txt"), "utf8"), "final text");
            assert.notEqual(fs.statSync(at("draft.txt")).mode & 0o777, 0o600);
            await waitForQuiet(env);
            if (preset !== "passthrough") {
              assert.equal((await env.store.readFile("draft.txt")).toString(), "final text");
            }
          },
        );
      } catch (error) {
        throw withLog(error, mounted);
      } finally {
        await env.unmount(mounted);
      }
    });
  });

  Deno.test(`${preset}: a descriptor open for reading sees what other descriptors write`, async (t) => {
    await withOverlayEnv(async (env) => {
      // Past the page cache: every read reaches the mount, as after posix_fadvise(DONTNEED).
      const mounted = await env.mount(preset, ["-o", "direct_io"]);
      try {
        const at = (name: string) => join(env.mountpoint, name);
        const readAt = (fd: number, position: number, length: number) => {
          const buffer = Buffer.alloc(length);
          return buffer.subarray(0, fs.readSync(fd, buffer, 0, length, position)).toString();
        };
        const sources = [{ what: "written through the mount", name: "through.txt" }];
        // A legacy file the source holds (riak has no source).
        if (preset !== "riak") sources.push({ what: "legacy, in the source", name: "legacy.txt" });
        for (const { what, name } of sources) {
          await step(t, mounted, what, async () => {
            if (name === "legacy.txt") fs.writeFileSync(join(env.source, name), "A".repeat(8192));
            else fs.writeFileSync(at(name), "A".repeat(8192));
            await waitForQuiet(env);
            const reader = fs.openSync(at(name), "r");
            try {
              assert.equal(readAt(reader, 0, 2), "AA");
              const writer = fs.openSync(at(name), "r+");
              fs.writeSync(writer, "BB", 0);
              fs.closeSync(writer);
              assert.equal(readAt(reader, 0, 2), "BB", "a write through another descriptor");
              fs.appendFileSync(at(name), "tail");
              assert.equal(fs.fstatSync(reader).size, 8196);
              assert.equal(readAt(reader, 8192, 10), "tail", "an append, as tail -f reads it");
              await waitForQuiet(env); // Uploaded meanwhile: still the same file.
              assert.equal(readAt(reader, 8190, 10), "AAtail");
              const truncating = fs.openSync(at(name), "r+");
              fs.ftruncateSync(truncating, 50);
              fs.ftruncateSync(truncating, 200);
              fs.writeSync(truncating, Buffer.from("Q"), 0, 1, 199);
              fs.closeSync(truncating);
              assert.equal(
                readAt(reader, 0, 300),
                "BB" + "A".repeat(48) + "\0".repeat(149) + "Q",
                "truncated, extended with zeros, written at the end",
              );
            } finally {
              fs.closeSync(reader);
            }
          });
        }
      } catch (error) {
        throw withLog(error, mounted);
      } finally {
        await env.unmount(mounted);
      }
    });
  });

  Deno.test(`${preset}: a file's ctime never goes back, and a change of its attributes moves it`, async () => {
    await withOverlayEnv(async (env) => {
      const mounted = await env.mount(preset, ["-o", "attr_timeout=0"]);
      try {
        const file = join(env.mountpoint, "extracted.txt");
        // What tar x does: the file, then its old mtime.
        fs.writeFileSync(file, "from the archive");
        fs.utimesSync(file, OLD_TIME, OLD_TIME);
        // Deno's node:fs gives whole seconds of a ctime.
        const ctimeNs = () => exactMtimeNs(file, "%.9Z");
        const extracted = await ctimeNs();
        assert.ok(extracted > BigInt(OLD_TIME.getTime()) * 1_000_000n, "utimes moved the ctime");
        await waitForQuiet(env); // Its copy reaches Riak, which keeps no ctime.
        const uploaded = await ctimeNs();
        assert.ok(uploaded >= extracted, `ctime went back from ${extracted} to ${uploaded}`);
        // The kernel stamps times from a coarse clock, a few milliseconds behind Date.now().
        const beforeChmod = BigInt(Date.now() - 1000) * 1_000_000n;
        fs.chmodSync(file, 0o600);
        assert.ok(await ctimeNs() >= beforeChmod, "chmod moved it");
      } catch (error) {
        throw withLog(error, mounted);
      } finally {
        await env.unmount(mounted);
      }
    });
  });

  Deno.test(`${preset}: fallocate(1) grows a file and punches holes, as on a local disk`, async () => {
    await withOverlayEnv(async (env) => {
      await withMounted(env, preset, async () => {
        const fallocate = async (...args: string[]) => {
          const { code, stderr } = await new Deno.Command("fallocate", { args }).output();
          assert.equal(code, 0, new TextDecoder().decode(stderr));
        };
        const grown = join(env.mountpoint, "grown.bin");
        await fallocate("-l", "100000", grown);
        assert.ok(fs.readFileSync(grown).equals(Buffer.alloc(100_000)), "100,000 zeros");
        const holey = join(env.mountpoint, "holey.bin");
        fs.writeFileSync(holey, Buffer.alloc(3 * 4096, 0x61));
        await fallocate("-p", "-o", "4096", "-l", "4096", holey);
        const expected = Buffer.alloc(3 * 4096, 0x61);
        expected.fill(0, 4096, 8192);
        assert.ok(fs.readFileSync(holey).equals(expected), "the middle page zeroed");
        await waitForQuiet(env);
        if (preset !== "passthrough") {
          assert.ok((await env.store.readFile("grown.bin")).equals(Buffer.alloc(100_000)));
          assert.ok((await env.store.readFile("holey.bin")).equals(expected));
        }
      });
    });
  });

  Deno.test(`${preset}: an access time set through the mount comes back, also from Riak`, async () => {
    await withOverlayEnv(async (env) => {
      const atimeNs = (path: string) => exactMtimeNs(path, "%.9X");
      const file = join(env.mountpoint, "accessed.txt");
      const ACCESSED = new Date(Date.UTC(2002, 1, 2));
      await withMounted(env, preset, async () => {
        fs.writeFileSync(file, "read long ago");
        await waitForQuiet(env);
        fs.utimesSync(file, ACCESSED, OLD_TIME);
        assert.equal(await atimeNs(file), BigInt(ACCESSED.getTime()) * 1_000_000n);
        assert.equal(await exactMtimeNs(file), BigInt(OLD_TIME.getTime()) * 1_000_000n);
        // touch -a: the access time alone.
        const touched = await new Deno.Command("touch", {
          args: ["-a", "-d", "2003-03-03T00:00:00Z", file],
        }).output();
        assert.equal(touched.code, 0, new TextDecoder().decode(touched.stderr));
        assert.equal(await atimeNs(file), BigInt(Date.UTC(2003, 2, 3)) * 1_000_000n);
        assert.equal(await exactMtimeNs(file), BigInt(OLD_TIME.getTime()) * 1_000_000n);
        await waitForQuiet(env);
      });
      if (preset === "passthrough") return;
      const stored = await env.store.stat("accessed.txt");
      assert.equal(stored.atimeNs, BigInt(Date.UTC(2003, 2, 3)) * 1_000_000n, "in Riak");
      assert.equal(stored.mtimeNs, BigInt(OLD_TIME.getTime()) * 1_000_000n);
    });
  });
}
