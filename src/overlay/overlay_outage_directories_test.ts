/**
 * Directories renamed during a Riak outage in the modes that write Riak only (drain, riak):
 * done at once where the mount knows all the directory holds, journaled, and carried out in
 * Riak once it is back (also after a restart); refused with EIO where it does not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errno, type FileSystem, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import {
  isFuseError,
  listThrough,
  LONG_AGO_MS,
  lookupPath,
  outageNoticed,
  type OverlayFixture,
  readThrough,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";
import type { OverlayRuntime } from "./runtime.ts";
import { UploadQueue } from "./upload_queue.ts";

/** Every path Riak holds at or below `path`, files with their bytes. */
async function riakTree(
  store: { list(path: string): AsyncIterable<{ name: Buffer; type: string }> } & {
    readFile(path: string): Promise<Buffer>;
  },
  path: string,
): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for await (const entry of store.list(path)) {
    const child = `${path === "/" ? "" : path}/${entry.name.toString()}`;
    if (entry.type === "directory") {
      tree[`${child}/`] = "";
      Object.assign(tree, await riakTree(store, child));
    } else tree[child] = (await store.readFile(child)).toString();
  }
  return tree;
}

/** The steps of a test through an outage of a mount: see {@link throughOutage}. */
interface OutageSteps {
  /** While Riak answers. */
  before?: (fixture: OverlayFixture) => Promise<void>;
  /** In the outage, once the mount noticed it. */
  during: (fixture: OverlayFixture) => Promise<void>;
  /** With `restarted`: on the mount started again, Riak still away. */
  duringRestarted?: (again: OverlayRuntime) => Promise<void>;
  /** Once Riak is back, with the mount serving then (its queue not settled yet). */
  after: (fixture: OverlayFixture, mounted: OverlayRuntime) => Promise<void>;
}

/**
 * Runs `steps` on a `preset` mount (Riak's read timeout 300 ms): `before`, then, what Riak
 * answered long expired, `during` in an outage; with `restarted`, the mount is then stopped
 * and started again while Riak is still away. `after` runs once Riak is back.
 */
async function throughOutage(
  preset: string,
  restarted: boolean,
  steps: OutageSteps,
): Promise<void> {
  let clock = Date.now();
  await withOverlay(
    preset,
    async (fixture) => {
      const { fs, riak, runtime, logLines, restart } = fixture;
      await steps.before?.(fixture);
      clock += LONG_AGO_MS;
      const mounted = await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        await steps.during(fixture);
        if (!restarted) return runtime;
        await runtime.stop(0);
        const again = await restart({});
        await steps.duringRestarted?.(again);
        return again;
      });
      await steps.after(fixture, mounted);
    },
    { riakReadTimeout: "300" },
    { now: () => clock },
  );
}

/**
 * Renames `from` at the root to `to` and checks that `from` is gone at once; the node and mode
 * the mount then gives `to`.
 */
async function renamedAtRoot(
  fs: FileSystem,
  from: string,
  to: string,
): Promise<{ node: number; mode: number }> {
  await fs.rename!(ROOT_CTX, ROOT_NODE_ID, from, ROOT_NODE_ID, to, 0);
  await assert.rejects(lookupPath(fs, `/${from}`), isFuseError(Errno.ENOENT));
  const node = await lookupPath(fs, `/${to}`);
  return { node, mode: (await fs.getattr!(ROOT_CTX, node, undefined)).attr.mode };
}

for (const preset of ["drain", "riak"]) {
  for (const restarted of [false, true]) {
    Deno.test(`${preset}: a directory only Riak holds, its whole tree listed, renamed during an outage${restarted ? " (the mount then stopped and started again while Riak is away)" : ""}, is renamed at once and in Riak once it is back, with what another host added to it`, async () => {
      await throughOutage(preset, restarted, {
        before: async ({ fs, store }) => {
          await store.writeFile("/d1/a.txt", Buffer.from("a"));
          await store.writeFile("/d1/sub/b.txt", Buffer.from("b"));
          await store.writeFile("/d1/gone.txt", Buffer.from("gone"));
          // The mount reads the whole tree, as `ls -lR` does.
          assert.deepEqual((await listThrough(fs, "/d1")).sort(), ["a.txt", "gone.txt", "sub"]);
          assert.deepEqual(await listThrough(fs, "/d1/sub"), ["b.txt"]);
          await lookupPath(fs, "/d1/a.txt");
          await lookupPath(fs, "/d1/gone.txt");
          // Added by another host after the mount's listing: Riak's rename takes it along.
          await store.writeFile("/d1/other-host.txt", Buffer.from("other"));
        },
        during: async ({ fs }) => {
          const d1 = await lookupPath(fs, "/d1");
          await fs.unlink!(ROOT_CTX, d1, "gone.txt");
          // Written into it during the outage, before its rename: goes to Riak under the new name.
          await writeThrough(fs, "/d1/during.txt", Buffer.from("during"));
          const d2 = await renamedAtRoot(fs, "d1", "d2");
          assert.equal(d2.mode & 0o170000, 0o040000);
          // What the mount saw of Riak's files went along.
          const a = await lookupPath(fs, "/d2/a.txt");
          assert.equal((await fs.getattr!(ROOT_CTX, a, undefined)).attr.size, 1);
          await lookupPath(fs, "/d2/sub");
          // Changes after the rename go to Riak after it.
          await writeThrough(fs, "/d2/new.txt", Buffer.from("new"));
          await fs.rename!(ROOT_CTX, d2.node, "a.txt", d2.node, "a2.txt", 0);
        },
        after: async ({ store }, mounted) => {
          assert.equal(await mounted.settle(10_000), 0);
          assert.deepEqual(await riakTree(store, "/"), {
            "/d2/": "",
            "/d2/a2.txt": "a",
            "/d2/during.txt": "during",
            "/d2/new.txt": "new",
            "/d2/other-host.txt": "other",
            "/d2/sub/": "",
            "/d2/sub/b.txt": "b",
          });
          assert.deepEqual(
            (await listThrough(mounted.fileSystem, "/d2")).sort(),
            ["a2.txt", "during.txt", "new.txt", "other-host.txt", "sub"],
          );
          await assert.rejects(lookupPath(mounted.fileSystem, "/d1"), isFuseError(Errno.ENOENT));
        },
      });
    });

    Deno.test(`${preset}: a directory made during an outage, with files and a directory written into it, renamed during the outage${restarted ? " (the mount then stopped and started again while Riak is away)" : ""}, reaches Riak under its new name only`, async () => {
      await throughOutage(preset, restarted, {
        during: async ({ fs }) => {
          await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "new", 0o750, 0o022);
          await writeThrough(fs, "/new/a.txt", Buffer.from("a"));
          const made = await lookupPath(fs, "/new");
          await fs.mkdir!(ROOT_CTX, made, "sub", 0o755, 0o022);
          await writeThrough(fs, "/new/sub/b.txt", Buffer.from("b"));
          await writeThrough(fs, "/new/removed.txt", Buffer.from("removed"));
          await fs.unlink!(ROOT_CTX, made, "removed.txt");
          assert.equal((await renamedAtRoot(fs, "new", "renamed")).mode & 0o7777, 0o750);
          assert.deepEqual(await readThrough(fs, "/renamed/a.txt"), Buffer.from("a"));
          assert.deepEqual(await readThrough(fs, "/renamed/sub/b.txt"), Buffer.from("b"));
          assert.deepEqual((await listThrough(fs, "/renamed")).sort(), ["a.txt", "sub"]);
        },
        duringRestarted: async (again) => {
          assert.deepEqual(
            await readThrough(again.fileSystem, "/renamed/sub/b.txt"),
            Buffer.from("b"),
          );
        },
        after: async ({ store }, mounted) => {
          assert.equal(await mounted.settle(10_000), 0);
          assert.deepEqual(await riakTree(store, "/"), {
            "/renamed/": "",
            "/renamed/a.txt": "a",
            "/renamed/sub/": "",
            "/renamed/sub/b.txt": "b",
          });
          assert.equal((await store.stat("/renamed")).mode & 0o7777, 0o750);
        },
      });
    });
  }

  Deno.test(`${preset}: during an outage a directory whose tree the mount did not wholly list is not renamed (EIO, with a warning), and nothing changes`, async () => {
    await throughOutage(preset, false, {
      before: async ({ fs, store }) => {
        await store.writeFile("/unlisted/a.txt", Buffer.from("a"));
        await store.writeFile("/partly/sub/b.txt", Buffer.from("b"));
        await lookupPath(fs, "/unlisted");
        // Its own listing read, not that of the directory below it.
        assert.deepEqual(await listThrough(fs, "/partly"), ["sub"]);
      },
      during: async ({ fs, logLines }) => {
        for (const name of ["unlisted", "partly"]) {
          await assert.rejects(
            fs.rename!(ROOT_CTX, ROOT_NODE_ID, name, ROOT_NODE_ID, `${name}-2`, 0),
            isFuseError(Errno.EIO),
          );
          await lookupPath(fs, `/${name}`);
          assert.ok(
            logLines.some((line) =>
              line.includes("directory not renamed during the outage") &&
              line.includes(`/${name}`)
            ),
            logLines.join("\n"),
          );
        }
        // A directory made during the outage with a file in it open for writing.
        await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "open", 0o755, 0o022);
        const open = await lookupPath(fs, "/open");
        const created = await fs.create!(ROOT_CTX, open, "f.txt", 0o1101, 0o644, 0o022);
        try {
          await assert.rejects(
            fs.rename!(ROOT_CTX, ROOT_NODE_ID, "open", ROOT_NODE_ID, "open-2", 0),
            isFuseError(Errno.EIO),
          );
          assert.ok(logLines.some((line) => line.includes("open for writing")));
        } finally {
          await fs.release!(ROOT_CTX, created.entry.nodeid, created.opened.fh, 0);
        }
      },
      after: async ({ store, runtime }) => {
        assert.equal(await runtime.settle(10_000), 0);
        assert.deepEqual(await riakTree(store, "/"), {
          "/open/": "",
          "/open/f.txt": "",
          "/partly/": "",
          "/partly/sub/": "",
          "/partly/sub/b.txt": "b",
          "/unlisted/": "",
          "/unlisted/a.txt": "a",
        });
      },
    });
  });
}

Deno.test("drain: a directory whose files went into Riak, its directories left in the source, renamed during an outage is renamed there too; one holding a file of the source is not", async () => {
  await throughOutage("drain", false, {
    before: async ({ fs, store, source }) => {
      // Legacy directories whose files were moved into Riak (the local copies deleted).
      await mkdir(join(source, "legacy/sub"), { recursive: true });
      await store.writeFile("/legacy/a.txt", Buffer.from("a"));
      await store.writeFile("/legacy/sub/b.txt", Buffer.from("b"));
      await mkdir(join(source, "mixed"));
      await writeFile(join(source, "mixed/local.txt"), "not in Riak yet");
      await store.writeFile("/mixed/c.txt", Buffer.from("c"));
      assert.deepEqual((await listThrough(fs, "/legacy")).sort(), ["a.txt", "sub"]);
      assert.deepEqual(await listThrough(fs, "/legacy/sub"), ["b.txt"]);
      assert.deepEqual((await listThrough(fs, "/mixed")).sort(), ["c.txt", "local.txt"]);
    },
    during: async ({ fs, logLines }) => {
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "legacy", ROOT_NODE_ID, "moved", 0);
      await assert.rejects(lookupPath(fs, "/legacy"), isFuseError(Errno.ENOENT));
      await lookupPath(fs, "/moved/sub");
      await assert.rejects(
        fs.rename!(ROOT_CTX, ROOT_NODE_ID, "mixed", ROOT_NODE_ID, "mixed-2", 0),
        isFuseError(Errno.EIO),
      );
      assert.ok(logLines.some((line) => line.includes("the source holds files in it")));
    },
    after: async ({ fs, store, runtime, source }) => {
      const local = await readdir(source);
      assert.ok(local.includes("moved") && !local.includes("legacy"), `${local}`);
      assert.ok((await stat(join(source, "moved/sub"))).isDirectory());
      assert.equal(await runtime.settle(10_000), 0);
      const tree = await riakTree(store, "/");
      assert.deepEqual(
        Object.keys(tree).filter((path) => !path.startsWith("/mixed")).sort(),
        ["/moved/", "/moved/a.txt", "/moved/sub/", "/moved/sub/b.txt"],
      );
      assert.equal(tree["/mixed/c.txt"], "c");
      assert.deepEqual((await listThrough(fs, "/moved")).sort(), ["a.txt", "sub"]);
    },
  });
});

/**
 * Runs `during` in an outage of a `preset` mount that listed Riak's /d1 (holding a.txt) and
 * looked it up (`d1`, its node) before, with {@link UploadQueue.prototype.submitTogether} put
 * back afterwards (`during` may patch it to interleave operations with the rename of /d1);
 * then checks that Riak, once back and the queue settled, holds `expected` ({@link riakTree}
 * of /).
 */
async function duringOutageAroundD1(
  preset: string,
  during: (
    fixture: OverlayFixture,
    submitTogether: UploadQueue["submitTogether"],
    d1: number,
  ) => Promise<void>,
  expected: Record<string, string>,
): Promise<void> {
  let d1 = ROOT_NODE_ID;
  const submitTogether = UploadQueue.prototype.submitTogether;
  await throughOutage(preset, false, {
    before: async ({ fs, store }) => {
      await store.writeFile("/d1/a.txt", Buffer.from("a"));
      assert.deepEqual(await listThrough(fs, "/d1"), ["a.txt"]);
      await lookupPath(fs, "/d1/a.txt");
      d1 = await lookupPath(fs, "/d1");
    },
    during: async (fixture) => {
      try {
        await during(fixture, submitTogether, d1);
      } finally {
        UploadQueue.prototype.submitTogether = submitTogether;
      }
    },
    after: async ({ store, runtime }) => {
      assert.equal(await runtime.settle(10_000), 0);
      assert.deepEqual(await riakTree(store, "/"), expected);
    },
  });
}

/** What Riak holds of {@link duringOutageAroundD1}'s /d1 once it was renamed to /d2. */
const D1_RENAMED_TO_D2 = { "/d2/": "", "/d2/a.txt": "a" };

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: files made in a directory while its rename during an outage journals (one closed at once, one still open) reach Riak under the new name`, async () => {
    await duringOutageAroundD1(preset, async ({ fs }, submitTogether, d1) => {
      const made = async (name: string) => {
        const created = await fs.create!(ROOT_CTX, d1, name, 0o1101, 0o644, 0o022);
        const { nodeid } = created.entry;
        await fs.write!(ROOT_CTX, nodeid, created.opened.fh, 0, Buffer.from(name));
        return { nodeid, fh: created.opened.fh };
      };
      let arrivals: Promise<{ nodeid: number; fh: number }>[] = [];
      // The kernel does not hold back a create in a directory being renamed: these
      // come in once the rename's line is journaled, before it answers.
      UploadQueue.prototype.submitTogether = async function (entries, options) {
        UploadQueue.prototype.submitTogether = submitTogether;
        const tickets = await submitTogether.call(this, entries, options);
        arrivals = ["closed.txt", "open.txt"].map(made);
        return tickets;
      };
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
      const [closed, open] = await Promise.all(arrivals);
      await fs.release!(ROOT_CTX, closed.nodeid, closed.fh, 0);
      assert.deepEqual(await readThrough(fs, "/d2/closed.txt"), Buffer.from("closed.txt"));
      await fs.release!(ROOT_CTX, open.nodeid, open.fh, 0);
      assert.deepEqual(await readThrough(fs, "/d2/closed.txt"), Buffer.from("closed.txt"));
      assert.deepEqual(await readThrough(fs, "/d2/open.txt"), Buffer.from("open.txt"));
    }, { ...D1_RENAMED_TO_D2, "/d2/closed.txt": "closed.txt", "/d2/open.txt": "open.txt" });
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: what is made or removed in a directory while its rename during an outage is under way (a mkdir and an unlink begun before it, a create, a mkdir and an unlink begun after its line) waits for the rename and reaches Riak under the new name only`, async () => {
    await duringOutageAroundD1(preset, async ({ fs }, submitTogether, d1) => {
      await writeThrough(fs, "/d1/kept.txt", Buffer.from("kept"));
      await writeThrough(fs, "/d1/unlinked.txt", Buffer.from("unlinked"));
      await writeThrough(fs, "/d1/unlinked-early.txt", Buffer.from("unlinked early"));
      const written = async (name: string) => {
        const created = await fs.create!(ROOT_CTX, d1, name, 0o1101, 0o644, 0o022);
        const { nodeid } = created.entry;
        await fs.write!(ROOT_CTX, nodeid, created.opened.fh, 0, Buffer.from(name));
        await fs.release!(ROOT_CTX, nodeid, created.opened.fh, 0);
      };
      let arrivals: Promise<unknown>[] = [];
      UploadQueue.prototype.submitTogether = async function (entries, options) {
        const moves = entries.some((entry) => "movesDirectory" in entry);
        if (moves) UploadQueue.prototype.submitTogether = submitTogether;
        const tickets = await submitTogether.call(this, entries, options);
        // In the kernel, these do not wait for the rename that journaled its line.
        if (moves) {
          arrivals = [
            written("late.txt"),
            fs.mkdir!(ROOT_CTX, d1, "sub", 0o755, 0o022),
            fs.unlink!(ROOT_CTX, d1, "unlinked.txt"),
          ];
        }
        return tickets;
      };
      // Begun before the rename, their paths found under the old name.
      const early = [
        fs.mkdir!(ROOT_CTX, d1, "early", 0o755, 0o022),
        fs.unlink!(ROOT_CTX, d1, "unlinked-early.txt"),
      ];
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
      await Promise.all([...early, ...arrivals]);
      assert.equal(arrivals.length, 3);
      await assert.rejects(lookupPath(fs, "/d1"), isFuseError(Errno.ENOENT));
      await lookupPath(fs, "/d2/sub");
      await lookupPath(fs, "/d2/early");
      for (const name of ["unlinked.txt", "unlinked-early.txt"]) {
        await assert.rejects(lookupPath(fs, `/d2/${name}`), isFuseError(Errno.ENOENT));
      }
      assert.deepEqual(await readThrough(fs, "/d2/late.txt"), Buffer.from("late.txt"));
    }, {
      ...D1_RENAMED_TO_D2,
      "/d2/early/": "",
      "/d2/kept.txt": "kept",
      "/d2/late.txt": "late.txt",
      "/d2/sub/": "",
    });
  });
}

for (const preset of ["drain", "riak"]) {
  for (const [last, restarted] of [["d3", false], ["d3", true], ["d1", false]] as const) {
    Deno.test(`${preset}: a directory renamed twice during an outage (d1 to d2, then d2 to ${last}), with files written into it${restarted ? " (the mount then stopped and started again while Riak is away)" : ""}, reaches Riak under the last name only`, async () => {
      await throughOutage(preset, restarted, {
        before: async ({ fs, store }) => {
          await store.writeFile("/d1/a.txt", Buffer.from("a"));
          await store.writeFile("/d1/sub/b.txt", Buffer.from("b"));
          assert.deepEqual((await listThrough(fs, "/d1")).sort(), ["a.txt", "sub"]);
          assert.deepEqual(await listThrough(fs, "/d1/sub"), ["b.txt"]);
          await lookupPath(fs, "/d1/a.txt");
        },
        during: async ({ fs }) => {
          await writeThrough(fs, "/d1/during.txt", Buffer.from("during"));
          await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
          await writeThrough(fs, "/d2/between.txt", Buffer.from("between"));
          await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d2", ROOT_NODE_ID, last, 0);
          for (const gone of ["/d1", "/d2", "/d3"].filter((path) => path !== `/${last}`)) {
            await assert.rejects(lookupPath(fs, gone), isFuseError(Errno.ENOENT));
          }
          const a = await lookupPath(fs, `/${last}/a.txt`);
          assert.equal((await fs.getattr!(ROOT_CTX, a, undefined)).attr.size, 1);
          await lookupPath(fs, `/${last}/sub`);
          assert.deepEqual(await readThrough(fs, `/${last}/during.txt`), Buffer.from("during"));
          assert.deepEqual(await readThrough(fs, `/${last}/between.txt`), Buffer.from("between"));
        },
        after: async ({ store }, mounted) => {
          assert.equal(await mounted.settle(10_000), 0);
          assert.deepEqual(await riakTree(store, "/"), {
            [`/${last}/`]: "",
            [`/${last}/a.txt`]: "a",
            [`/${last}/between.txt`]: "between",
            [`/${last}/during.txt`]: "during",
            [`/${last}/sub/`]: "",
            [`/${last}/sub/b.txt`]: "b",
          });
          assert.deepEqual(
            (await listThrough(mounted.fileSystem, `/${last}`)).sort(),
            ["a.txt", "between.txt", "during.txt", "sub"],
          );
        },
      });
    });
  }
}

const O_WRONLY = 0o1;
const O_TRUNC = 0o1000;

/** Whether the mount logged that an operation waits for a directory's rename. */
function waitsForRename(logLines: string[]): boolean {
  return logLines.some((line) => line.includes("waits for the rename of a directory"));
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: files renamed into, out of and within a directory while its rename during an outage is under way (journaled once the rename answered) wait for it and reach Riak under the new names only`, async () => {
    await duringOutageAroundD1(preset, async ({ fs }, submitTogether, d1) => {
      const directoryRenamed = Promise.withResolvers<void>();
      const renamedFiles = new Set(["/top.txt", "/out.txt", "/d1/y.txt", "/d2/y.txt"]);
      await writeThrough(fs, "/top.txt", Buffer.from("top"));
      await writeThrough(fs, "/d1/x.txt", Buffer.from("x"));
      await writeThrough(fs, "/d1/out.txt", Buffer.from("out"));
      let arrivals: Promise<unknown>[] = [];
      UploadQueue.prototype.submitTogether = async function (entries, options) {
        // The files' renames journal only once the directory's rename answered.
        if (entries.some((entry) => renamedFiles.has(entry.path))) {
          await directoryRenamed.promise;
        }
        const tickets = await submitTogether.call(this, entries, options);
        // In the kernel, these do not wait for the rename that journaled its line.
        if (entries.some((entry) => "movesDirectory" in entry)) {
          arrivals = [
            fs.rename!(ROOT_CTX, ROOT_NODE_ID, "top.txt", d1, "top.txt", 0),
            fs.rename!(ROOT_CTX, d1, "out.txt", ROOT_NODE_ID, "out.txt", 0),
            fs.rename!(ROOT_CTX, d1, "x.txt", d1, "y.txt", 0),
          ];
        }
        return tickets;
      };
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
      directoryRenamed.resolve();
      assert.equal(arrivals.length, 3);
      await Promise.all(arrivals);
      await assert.rejects(lookupPath(fs, "/d1"), isFuseError(Errno.ENOENT));
      await assert.rejects(lookupPath(fs, "/d2/x.txt"), isFuseError(Errno.ENOENT));
      assert.deepEqual(await readThrough(fs, "/d2/top.txt"), Buffer.from("top"));
      assert.deepEqual(await readThrough(fs, "/d2/y.txt"), Buffer.from("x"));
      assert.deepEqual(await readThrough(fs, "/out.txt"), Buffer.from("out"));
    }, { ...D1_RENAMED_TO_D2, "/d2/top.txt": "top", "/d2/y.txt": "x", "/out.txt": "out" });
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a file below a directory opened with O_TRUNC while the directory's rename during an outage is under way (its path found under the old name), then written and closed, reaches Riak under the new name only`, async () => {
    await duringOutageAroundD1(preset, async ({ fs }, submitTogether) => {
      await writeThrough(fs, "/d1/w.txt", Buffer.from("old content"));
      const w = await lookupPath(fs, "/d1/w.txt");
      let opening: Promise<{ fh: number }> | undefined;
      UploadQueue.prototype.submitTogether = async function (entries, options) {
        const moves = entries.some((entry) => "movesDirectory" in entry);
        if (moves) UploadQueue.prototype.submitTogether = submitTogether;
        const tickets = await submitTogether.call(this, entries, options);
        if (moves) opening = fs.open!(ROOT_CTX, w, O_WRONLY | O_TRUNC);
        return tickets;
      };
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
      assert.ok(opening);
      const { fh } = await opening;
      await fs.write!(ROOT_CTX, w, fh, 0, Buffer.from("new"));
      await fs.release!(ROOT_CTX, w, fh, 0);
      await assert.rejects(lookupPath(fs, "/d1"), isFuseError(Errno.ENOENT));
      assert.deepEqual(await readThrough(fs, "/d2/w.txt"), Buffer.from("new"));
    }, { ...D1_RENAMED_TO_D2, "/d2/w.txt": "new" });
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a mkdir of a directory's new name while its rename during an outage is under way (its name found free before the rename's line) waits for the rename and fails with EEXIST; Riak gets the renamed directory only`, async () => {
    await duringOutageAroundD1(preset, async ({ fs, logLines }, submitTogether) => {
      const mkdirJournals = Promise.withResolvers<void>();
      const moveJournaled = Promise.withResolvers<void>();
      let making: Promise<unknown> | undefined;
      UploadQueue.prototype.submitTogether = async function (entries, options) {
        if (entries.some((entry) => entry.path === "/d2" && !("movesDirectory" in entry))) {
          mkdirJournals.resolve();
          await moveJournaled.promise;
        }
        if (!entries.some((entry) => "movesDirectory" in entry)) {
          return await submitTogether.call(this, entries, options);
        }
        // The kernel does not hold back a mkdir of the new name meanwhile: it finds the name
        // free, and journals after the rename's line unless it waits.
        making = fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "d2", 0o755, 0o022);
        if (!waitsForRename(logLines)) {
          await Promise.race([mkdirJournals.promise, making.catch(() => {})]);
        }
        const tickets = await submitTogether.call(this, entries, options);
        moveJournaled.resolve();
        return tickets;
      };
      await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "d1", ROOT_NODE_ID, "d2", 0);
      assert.ok(making);
      await assert.rejects(making, isFuseError(Errno.EEXIST));
      await lookupPath(fs, "/d2/a.txt");
    }, D1_RENAMED_TO_D2);
  });
}
