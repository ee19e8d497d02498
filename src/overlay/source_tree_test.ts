import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SOURCE_TEMPORARY_PREFIX } from "../migration/mount_entries.ts";
import type { FileStat } from "../store/store.ts";
import { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { rootStat } from "./attributes.ts";
import { Logger, SILENT_LOGGER } from "./log.ts";
import type { PublishRecord } from "./spool.ts";
import { SourceTree, type SourceTreeOptions } from "./source_tree.ts";

const NO_PUBLISHES = {
  publishRecords: () => Promise.resolve([]),
  forgetPublish: () => Promise.resolve(),
};

/** A source tree over a new temporary directory, removed once `body` is done. */
async function withSource(
  body: (
    source: string,
    tree: (options?: Partial<SourceTreeOptions>) => SourceTree,
  ) => Promise<void>,
): Promise<void> {
  const source = await mkdtemp(join(tmpdir(), "riakfs-source-tree-"));
  try {
    await body(source, (options = {}) =>
      new SourceTree({
        source,
        sourcePace: new BlockingWhileFast(),
        spool: NO_PUBLISHES,
        logger: SILENT_LOGGER,
        riakStat: () => Promise.resolve(undefined),
        ...options,
      }));
  } finally {
    await rm(source, { recursive: true, force: true });
  }
}

/** Riak's stat of a directory with these attributes. */
function riakDirectory(
  attributes: { mode: number; uid: number; gid: number; mtimeNs: bigint; managed: boolean },
): FileStat {
  return { ...rootStat(attributes.mtimeNs), ...attributes };
}

Deno.test("without a source, nothing is there and no path in it can be made", async () => {
  const tree = new SourceTree({
    sourcePace: new BlockingWhileFast(),
    spool: NO_PUBLISHES,
    logger: SILENT_LOGGER,
    riakStat: () => Promise.resolve(undefined),
  });
  assert.equal(await tree.lstat("/a"), undefined);
  await assert.rejects(tree.localPath("/a"), /no source directory/);
  assert.equal(await tree.removeLeftoverPublishes(), 0);
});

Deno.test("missing parents take the mode, owner and mtime Riak keeps for them", async () => {
  await withSource(async (source, tree) => {
    await mkdir(join(source, "here"), { mode: 0o700 });
    const asked: string[] = [];
    const kept: Record<string, FileStat> = {
      "/here/a": riakDirectory({
        mode: 0o750,
        uid: 1234,
        gid: 5678,
        mtimeNs: 1_000_000_000_000_000_000n,
        managed: true,
      }),
      // Not written by riakfs: the mount's default owner, as stat shows it.
      "/here/a/b": riakDirectory({
        mode: 0o711,
        uid: 0,
        gid: 0,
        mtimeNs: 2_000_000_000_000_000_000n,
        managed: false,
      }),
    };
    const sourceTree = tree({
      defaultUid: 42,
      defaultGid: 43,
      riakStat: (path) => {
        asked.push(path);
        if (path === "/here/a/b/c") return Promise.reject(new Error("Riak is away"));
        return Promise.resolve(kept[path]);
      },
    });
    await sourceTree.makeLocalParents("/here/a/b/c/file");
    assert.deepEqual(asked, ["/here/a", "/here/a/b", "/here/a/b/c"]);
    const made = async (path: string) => {
      const { mode, uid, gid, mtimeNs } = await stat(join(source, path), { bigint: true });
      return { mode: Number(mode & 0o7777n), uid: Number(uid), gid: Number(gid), mtimeNs };
    };
    const { mode, uid, gid, mtimeNs } = kept["/here/a"];
    assert.deepEqual(await made("here/a"), { mode, uid, gid, mtimeNs });
    assert.deepEqual(await made("here/a/b"), {
      mode: 0o711,
      uid: 42,
      gid: 43,
      mtimeNs: kept["/here/a/b"].mtimeNs,
    });
    // Riak could not tell: the default mode, exactly (whatever the umask).
    const c = await stat(join(source, "here/a/b/c"));
    assert.equal(c.mode & 0o7777, 0o755);
    assert.equal((await stat(join(source, "here"))).mode & 0o7777, 0o700);
  });
});

Deno.test("a directory made meanwhile is left as it is", async () => {
  await withSource(async (source, tree) => {
    const sourceTree = tree({
      riakStat: async (path) => {
        await mkdir(join(source, path), { mode: 0o700 }); // Another writer is first.
        return riakDirectory({ mode: 0o750, uid: 1234, gid: 5678, mtimeNs: 0n, managed: true });
      },
    });
    await sourceTree.makeLocalParents("/d/file");
    const made = await stat(join(source, "d"));
    assert.deepEqual([made.mode & 0o7777, made.uid], [0o700, 0]);
  });
});

/** A pace that notes, after each call it runs, whether `watched` is still there. */
class WatchingPace extends BlockingWhileFast {
  watched = "";
  readonly stillThere: boolean[] = [];

  override run<T>(blocking: () => T, pooled: () => Promise<T>): Promise<T> {
    return super.run(blocking, pooled).finally(() =>
      this.stillThere.push(existsSync(this.watched))
    );
  }
}

Deno.test("a small file is unlinked at the source's pace, a large one on the pool", async () => {
  await withSource(async (source, tree) => {
    const pace = new WatchingPace();
    const sourceTree = tree({ sourcePace: pace });
    pace.watched = join(source, "small");
    await writeFile(pace.watched, "x");
    await sourceTree.unlink("/small");
    assert.equal(existsSync(pace.watched), false);
    assert.equal(pace.stillThere.at(-1), false, "the paced call removed it");

    pace.watched = join(source, "large");
    pace.stillThere.length = 0;
    await writeFile(pace.watched, "");
    await truncate(pace.watched, 64 * 1024 * 1024); // Sparse: no blocks to write.
    await sourceTree.unlink("/large");
    assert.equal(existsSync(pace.watched), false);
    assert.ok(pace.stillThere.length > 0);
    assert.ok(pace.stillThere.every((there) => there), "no paced call removed it");
  });
});

Deno.test("truncate and attribute changes never go through a symlink in the file's place", async () => {
  await withSource(async (source, tree) => {
    const sourceTree = tree();
    await writeFile(join(source, "target"), "content");
    await symlink("target", join(source, "link"));
    await assert.rejects(sourceTree.truncate("/link", 0), { code: "ELOOP" });
    const link = await lstat(join(source, "link"), { bigint: true });
    await sourceTree.setAttributes("/link", link, { mode: 0o600 }, undefined);
    assert.equal(await readFile(join(source, "target"), "utf8"), "content");
    assert.notEqual((await stat(join(source, "target"))).mode & 0o7777, 0o600);
  });
});

Deno.test("attribute changes set the owner before the mode, and keep the times not asked", async () => {
  await withSource(async (source, tree) => {
    const sourceTree = tree();
    const file = join(source, "f");
    await writeFile(file, "1234");
    const before = await lstat(file, { bigint: true });
    // chown(2) clears set-user-ID: the mode asked for keeps it.
    await sourceTree.setAttributes("/f", before, {
      uid: 1234,
      mode: 0o4755,
      mtimeNs: 5_000_000_000n,
    }, undefined);
    const after = await lstat(file, { bigint: true });
    assert.deepEqual([after.mode & 0o7777n, after.uid], [0o4755n, 1234n]);
    assert.equal(after.mtimeNs, 5_000_000_000n);
    assert.equal(after.atimeNs, before.atimeNs);
    await sourceTree.truncate("/f", 2);
    assert.equal(await readFile(file, "utf8"), "12");
  });
});

Deno.test("the tree below a path lists files and symlinks, directories parents first", async () => {
  await withSource(async (source, tree) => {
    await mkdir(join(source, "d/e"), { recursive: true });
    await writeFile(join(source, "d/f"), "");
    await writeFile(join(source, "d/e/g"), "");
    await symlink("f", join(source, "d/link"));
    const below = await tree().treeBelow("/d");
    assert.deepEqual(below.directories, ["/d", "/d/e"]);
    assert.deepEqual(below.files.toSorted(), ["/d/e/g", "/d/f", "/d/link"]);
    assert.deepEqual(await tree().treeBelow("/d/f"), { files: ["/d/f"], directories: [] });
    assert.deepEqual(await tree().treeBelow("/none"), { files: [], directories: [] });
  });
});

Deno.test("a rename makes the new name's parents; with nothing to move, a file there goes", async () => {
  await withSource(async (source, tree) => {
    const sourceTree = tree();
    await writeFile(join(source, "a"), "a");
    await sourceTree.rename("/a", "/new/deeper/a");
    assert.equal(await readFile(join(source, "new/deeper/a"), "utf8"), "a");
    assert.equal(existsSync(join(source, "a")), false);
    // The file renamed over it lives elsewhere (Riak): the old local copy must not show.
    await writeFile(join(source, "old"), "old");
    await sourceTree.rename("/gone", "/old");
    assert.equal(existsSync(join(source, "old")), false);
    await mkdir(join(source, "dir"));
    await sourceTree.rename("/gone", "/dir");
    assert.ok(existsSync(join(source, "dir")), "a directory is not unlinked");
  });
});

Deno.test("leftover publishes: only the recorded file goes, records of what is not it are forgotten", async () => {
  await withSource(async (source, tree) => {
    const warnings: string[] = [];
    const logger = new Logger({ sink: { write: (line: string) => warnings.push(line) } });
    await mkdir(join(source, "d"));
    const ours = join(source, "d", `${SOURCE_TEMPORARY_PREFIX}aa`);
    await writeFile(ours, "partial");
    const oursStats = await lstat(ours, { bigint: true });
    // Someone else's file now at a recorded path: another inode.
    const replaced = join(source, `${SOURCE_TEMPORARY_PREFIX}bb`);
    await writeFile(replaced, "theirs");
    // A recorded path now reached through a symlink (not followed out of the source).
    const throughLink = join(source, "d", `${SOURCE_TEMPORARY_PREFIX}dd`);
    await writeFile(throughLink, "partial");
    const linkedStats = await lstat(throughLink, { bigint: true });
    await symlink(join(source, "d"), join(source, "link"));
    const records: PublishRecord[] = [
      {
        id: "dd",
        path: `/link/${SOURCE_TEMPORARY_PREFIX}dd`,
        dev: linkedStats.dev,
        ino: linkedStats.ino,
      },
      { id: "aa", path: `/d/${SOURCE_TEMPORARY_PREFIX}aa`, dev: oursStats.dev, ino: oursStats.ino },
      {
        id: "bb",
        path: `/${SOURCE_TEMPORARY_PREFIX}bb`,
        dev: oursStats.dev,
        ino: oursStats.ino + 1_000_000n,
      },
      { id: "cc", path: `/gone/${SOURCE_TEMPORARY_PREFIX}cc`, dev: 0n, ino: 0n },
      // A name too long to look at: not known to be gone, so kept for the next start.
      { id: "ee", path: `/${"x".repeat(300)}`, dev: 0n, ino: 0n },
    ];
    const forgotten: string[] = [];
    const sourceTree = tree({
      logger,
      spool: {
        publishRecords: () => Promise.resolve(records),
        forgetPublish: (id) => Promise.resolve(void forgotten.push(id)),
      },
    });
    assert.equal(await sourceTree.removeLeftoverPublishes(), 1);
    assert.equal(existsSync(ours), false);
    assert.equal(await readFile(replaced, "utf8"), "theirs");
    assert.equal(await readFile(throughLink, "utf8"), "partial");
    assert.deepEqual(forgotten, ["dd", "aa", "bb", "cc"]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /could not be removed/);
  });
});
