/**
 * Real applications on a mount put in place of a legacy directory, in every Riak-backed
 * preset: what they did must work as on a local disk, survive an unmount and a new mount,
 * and be in Riak byte for byte.
 *
 * 1. git: the legacy repository's status and log, commits, a branch, a checkout, a merge,
 *    `git gc` (repack, pack-refs, prune) and `git fsck --strict`; `git clone` from the
 *    mount to a local directory, and within the mount (its hard links refused, git copies).
 * 2. sqlite3: the legacy database written in rollback-journal mode, a new one in WAL mode
 *    (the -shm file mapped shared, fcntl locks) written by two processes at once, and
 *    `PRAGMA integrity_check`.
 * 3. A log: its reader sees what another descriptor appends (`tail -f`), also in riak and
 *    drain while the file's upload is held up at a proxy (the reader then reads the staged
 *    file), and logrotate's rename-and-create gives the new log an inode number of its own
 *    (`tail -F` and log shippers switch to it by that number).
 * 4. tar and rsync: `tar c` of the legacy tree (copied into Riak as it is read, in drain
 *    its local copies removed meanwhile) and of a tree just extracted with `tar xp` end
 *    without "file changed as we read it"; modes, times and symlinks come back; a second
 *    `rsync -a` into and out of the mount transfers nothing.
 * 5. Hard links are refused with EPERM, not copied.
 *
 * Needs git, sqlite3, tar and rsync on the host (.ci/run installs them); a missing one fails
 * the test with the apt-get line that brings it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import {
  eventually,
  type OverlayEnv,
  statusOf,
  step,
  waitForQuiet,
  withMounted,
  withOverlayEnv,
} from "./_overlay.ts";
import { startRiakProxy } from "./_riak_proxy.ts";

const PRESETS = ["riak", "migrate", "drain", "shadow"];
/** Presets whose writes are staged in the spool until Riak has them. */
const STAGES_WRITES = ["riak", "drain"];

/** Tools the test runs -> the Debian package that brings each. */
const TOOLS: Record<string, string> = {
  git: "git",
  sqlite3: "sqlite3",
  tar: "tar",
  rsync: "rsync",
};

/** Times of the legacy tree: old, so that no tool takes them for the time of its copy. */
const LEGACY_TIME = new Date("2019-03-04T05:06:07.250Z");
const LEGACY_DIRECTORY_TIME = new Date("2018-01-02T03:04:05.500Z");

/** Legacy rows, and what each writer adds. */
const LEGACY_ROWS = 500;
const TRANSACTIONS = 6;
const ROWS_PER_TRANSACTION = 50;

/** Fails with the packages to install when a tool the test runs is missing. */
function requireTools(): void {
  const missing = Object.keys(TOOLS).filter((tool) =>
    spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0
  );
  if (missing.length > 0) {
    const packages = missing.map((tool) => TOOLS[tool]).join(" ");
    throw new Error(
      `tests/overlay_apps_test.ts runs ${missing.join(", ")}, missing on this host: ` +
        `apt-get install -y ${packages} (as .ci/run does)`,
    );
  }
}

/** Runs `command` to completion and returns its stdout; throws with its output if it fails. */
async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.input));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${code}: ${text(stderr)}${text(stdout)}`);
  }
  return text(stdout);
}

/** git with an identity and no configuration of the host's. */
function git(env: OverlayEnv, repository: string, ...args: string[]): Promise<string> {
  return run("git", ["-C", repository, "-c", "init.defaultBranch=main", ...args], {
    env: {
      HOME: env.base,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "riakfs",
      GIT_AUTHOR_EMAIL: "riakfs@example.com",
      GIT_COMMITTER_NAME: "riakfs",
      GIT_COMMITTER_EMAIL: "riakfs@example.com",
    },
  });
}

/** `sql` run by sqlite3 on `database`, waiting up to 30 s for another writer's lock. */
function sqlite(database: string, sql: string): Promise<string> {
  return run("sqlite3", [database], { input: `.timeout 30000\n${sql}\n` });
}

/** `TRANSACTIONS` transactions of `ROWS_PER_TRANSACTION` inserts of 200 random bytes. */
function insertions(writer: number): string {
  const transaction = [
    "BEGIN;",
    ...Array.from(
      { length: ROWS_PER_TRANSACTION },
      () => `INSERT INTO t(writer, v) VALUES(${writer}, randomblob(200));`,
    ),
    "COMMIT;",
  ].join("\n");
  return Array.from({ length: TRANSACTIONS }, () => transaction).join("\n");
}

/** Rows, then integrity_check's verdict. */
async function checkDatabase(database: string): Promise<{ rows: number; integrity: string }> {
  const [rows, integrity] = (await sqlite(
    database,
    "SELECT count(*) FROM t; PRAGMA integrity_check;",
  )).trim().split("\n");
  return { rows: Number(rows), integrity };
}

/**
 * The legacy directory an application used, at `root`: a git repository of three commits, a
 * database in rollback-journal mode, and a tree of files, directories and a symlink with
 * modes and old times. Made in the source, or through the mount where there is none (riak).
 */
async function makeLegacy(env: OverlayEnv, root: string): Promise<void> {
  const repository = join(root, "repo");
  fs.mkdirSync(repository);
  // No template: its dozen sample hooks are not what is tested.
  await git(env, repository, "init", "-q", "--template=");
  for (let commit = 1; commit <= 3; commit++) {
    fs.writeFileSync(join(repository, `file${commit}.txt`), `commit ${commit}\n`.repeat(50));
    await git(env, repository, "add", "-A");
    await git(env, repository, "commit", "-q", "-m", `commit ${commit}`);
  }
  await sqlite(
    join(root, "legacy.db"),
    "CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, v BLOB);" +
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < " +
      `${LEGACY_ROWS}) INSERT INTO t(writer, v) SELECT 0, randomblob(200) FROM c;`,
  );
  makeTree(join(root, "tree"));
}

/** A small tree of legacy data: modes, an empty directory, a symlink, old times. */
function makeTree(tree: string): void {
  fs.mkdirSync(join(tree, "a/b"), { recursive: true });
  fs.mkdirSync(join(tree, "empty"));
  for (let i = 0; i < 8; i++) {
    fs.writeFileSync(join(tree, "a", `f${i}`), Buffer.alloc(1000 * (i + 1), i + 65));
  }
  fs.writeFileSync(join(tree, "a/b/big.bin"), Buffer.alloc(1_500_000, 7));
  fs.chmodSync(join(tree, "a/f0"), 0o600);
  fs.chmodSync(join(tree, "a/f1"), 0o755);
  fs.symlinkSync("f2", join(tree, "a/link"));
  fs.chmodSync(join(tree, "a/b"), 0o750);
  const entries = fs.readdirSync(tree, { recursive: true, encoding: "utf8" }).map((entry) =>
    join(tree, entry)
  );
  for (const path of entries) {
    if (!fs.lstatSync(path).isDirectory()) fs.lutimesSync(path, LEGACY_TIME, LEGACY_TIME);
  }
  // Directories last, deepest first: their files' times moved them.
  for (const path of [...entries, tree].sort((a, b) => b.length - a.length)) {
    if (fs.lstatSync(path).isDirectory()) {
      fs.utimesSync(path, LEGACY_DIRECTORY_TIME, LEGACY_DIRECTORY_TIME);
    }
  }
}

/** What `tar` and `rsync -a` keep of a tree: each entry's type, mode, mtime (µs), size, link. */
function snapshot(tree: string): string[] {
  return fs.readdirSync(tree, { recursive: true, encoding: "utf8" }).sort().map((entry) => {
    const path = join(tree, entry);
    const stats = fs.lstatSync(path, { bigint: true });
    const kind = stats.isDirectory() ? "d" : stats.isSymbolicLink() ? "l" : "f";
    const size = kind === "f" ? ` ${stats.size}` : "";
    const target = kind === "l" ? ` -> ${fs.readlinkSync(path)}` : "";
    const mode = (Number(stats.mode) & 0o7777).toString(8);
    return `${kind} ${entry} ${mode} ${stats.mtimeNs / 1000n}${size}${target}`;
  });
}

/** Every regular file below `root`, relative to it. */
function filesBelow(root: string): string[] {
  return fs.readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((entry) => fs.lstatSync(join(root, entry)).isFile()).sort();
}

for (const preset of PRESETS) {
  Deno.test(`${preset}: git, sqlite, a log, tar and rsync on the mount, after a remount and in Riak`, async (t) => {
    requireTools();
    await withOverlayEnv(async (env) => {
      const at = (path: string) => join(env.mountpoint, path);
      const local = (path: string) => join(env.base, path);
      // riak uses no source: its legacy directory is made through the mount.
      if (preset !== "riak") await makeLegacy(env, env.source);
      const original = local("original-tree");
      makeTree(original);
      let head = "";

      await withMounted(env, preset, async (mounted) => {
        if (preset === "riak") await makeLegacy(env, env.mountpoint);

        await step(
          t,
          mounted,
          "git: log, commit, branch, checkout, merge, gc, fsck, clone",
          async () => {
            const repository = at("repo");
            assert.equal(await git(env, repository, "status", "--porcelain"), "");
            assert.equal(
              (await git(env, repository, "log", "--oneline")).trim().split("\n").length,
              3,
            );
            fs.writeFileSync(join(repository, "new.txt"), "made through the mount\n");
            await git(env, repository, "add", "new.txt");
            await git(env, repository, "commit", "-q", "-m", "on the mount");
            await git(env, repository, "checkout", "-q", "-b", "feature");
            fs.appendFileSync(join(repository, "file1.txt"), "a change on a branch\n");
            await git(env, repository, "commit", "-q", "-a", "-m", "on a branch");
            await git(env, repository, "checkout", "-q", "main");
            assert.equal(
              fs.readFileSync(join(repository, "file1.txt"), "utf8").includes("branch"),
              false,
            );
            await git(env, repository, "merge", "-q", "--ff-only", "feature");
            await git(env, repository, "gc", "-q", "--prune=now");
            await git(env, repository, "fsck", "--full", "--strict", "--no-dangling");
            assert.equal(await git(env, repository, "status", "--porcelain"), "");
            head = (await git(env, repository, "rev-parse", "HEAD")).trim();
            await git(env, env.base, "clone", "-q", repository, local("cloned"));
            await git(env, local("cloned"), "fsck", "--full", "--strict");
            assert.equal((await git(env, local("cloned"), "rev-parse", "HEAD")).trim(), head);
            // Within the mount: git's hard links are refused, and it copies.
            await git(env, env.mountpoint, "clone", "-q", "--template=", repository, at("repo2"));
            await git(env, at("repo2"), "fsck", "--full", "--strict");
          },
        );

        await step(
          t,
          mounted,
          "sqlite: rollback journal, WAL with two writers at once",
          async () => {
            await sqlite(at("legacy.db"), insertions(1));
            assert.deepEqual(await checkDatabase(at("legacy.db")), {
              rows: LEGACY_ROWS + TRANSACTIONS * ROWS_PER_TRANSACTION,
              integrity: "ok",
            });
            const wal = at("wal.db");
            assert.equal(
              (await sqlite(
                wal,
                "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, v BLOB);",
              )).trim(),
              "wal",
            );
            await Promise.all([sqlite(wal, insertions(1)), sqlite(wal, insertions(2))]);
            assert.deepEqual(await checkDatabase(wal), {
              rows: 2 * TRANSACTIONS * ROWS_PER_TRANSACTION,
              integrity: "ok",
            });
          },
        );

        await step(t, mounted, "a log: followed while written, then rotated", () => {
          const log = at("app.log");
          fs.writeFileSync(log, "one\n");
          const reader = fs.openSync(log, "r");
          const readAll = () => {
            const buffer = Buffer.alloc(4096);
            return buffer.subarray(0, fs.readSync(reader, buffer, 0, 4096, 0)).toString();
          };
          assert.equal(readAll(), "one\n");
          fs.appendFileSync(log, "two\n");
          assert.equal(readAll(), "one\ntwo\n", "the reader sees another descriptor's append");
          // logrotate: renamed while written and followed (tail -F keeps the number it
          // opened), then made again.
          const followed = fs.fstatSync(reader).ino;
          const writer = fs.openSync(log, "a");
          fs.renameSync(log, at("app.log.1"));
          fs.writeFileSync(log, "three\n");
          fs.writeSync(writer, "after the rename\n");
          fs.closeSync(writer);
          assert.notEqual(fs.statSync(log).ino, followed, "the new log's number is its own");
          assert.equal(fs.statSync(at("app.log.1")).ino, followed, "the renamed file's number");
          assert.equal(fs.fstatSync(reader).ino, followed);
          fs.closeSync(reader);
          assert.equal(fs.readFileSync(at("app.log.1"), "utf8"), "one\ntwo\nafter the rename\n");
        });

        await step(
          t,
          mounted,
          "tar and rsync: out of and into the mount, modes and times kept",
          async () => {
            const legacy = snapshot(original);
            // Read whole, the legacy files go to Riak meanwhile (drain removes them locally).
            const tarC = (directory: string, archive: string) =>
              run("tar", ["-C", directory, "--format=posix", "-cf", archive, "tree"]);
            await tarC(env.mountpoint, local("legacy.tar"));
            await waitForQuiet(env);
            await tarC(env.mountpoint, local("legacy-again.tar"));
            fs.mkdirSync(local("untarred"));
            await run("tar", ["-C", local("untarred"), "-xpf", local("legacy-again.tar")]);
            assert.deepEqual(snapshot(local("untarred/tree")), legacy);
            fs.mkdirSync(at("untarred"));
            await run("tar", ["-C", at("untarred"), "-xpf", local("legacy.tar")]);
            // Right after its extraction: no "file changed as we read it" (exit 1).
            await tarC(at("untarred"), local("untarred.tar"));
            assert.deepEqual(snapshot(at("untarred/tree")), legacy);
            await run("rsync", ["-a", `${original}/`, at("synced/")]);
            assert.equal(await run("rsync", ["-a", "-i", `${original}/`, at("synced/")]), "");
            assert.deepEqual(snapshot(at("synced")), legacy);
            await run("rsync", ["-a", `${at("synced")}/`, local("back/")]);
            assert.equal(await run("rsync", ["-a", "-i", `${at("synced")}/`, local("back/")]), "");
            assert.deepEqual(snapshot(local("back")), legacy);
          },
        );

        await step(t, mounted, "a hard link is refused with EPERM", () => {
          assert.throws(() => fs.linkSync(at("app.log"), at("app.hard")), { code: "EPERM" });
          assert.equal(fs.existsSync(at("app.hard")), false);
        });
      });

      await withMounted(env, preset, async (mounted) => {
        await step(
          t,
          mounted,
          "after a remount: the same repository, databases, log and trees",
          async () => {
            for (const repository of [at("repo"), at("repo2")]) {
              await git(env, repository, "fsck", "--full", "--strict", "--no-dangling");
              assert.equal(await git(env, repository, "status", "--porcelain"), "");
              assert.equal((await git(env, repository, "rev-parse", "HEAD")).trim(), head);
            }
            assert.deepEqual(await checkDatabase(at("legacy.db")), {
              rows: LEGACY_ROWS + TRANSACTIONS * ROWS_PER_TRANSACTION,
              integrity: "ok",
            });
            assert.deepEqual(await checkDatabase(at("wal.db")), {
              rows: 2 * TRANSACTIONS * ROWS_PER_TRANSACTION,
              integrity: "ok",
            });
            assert.equal(fs.readFileSync(at("app.log"), "utf8"), "three\n");
            assert.equal(fs.readFileSync(at("app.log.1"), "utf8"), "one\ntwo\nafter the rename\n");
            const legacy = snapshot(original);
            for (const tree of ["tree", "untarred/tree", "synced"]) {
              assert.deepEqual(snapshot(at(tree)), legacy, tree);
            }
          },
        );

        await step(
          t,
          mounted,
          "in Riak byte for byte: every file written through the mount",
          async () => {
            await waitForQuiet(env);
            // Written through the mount, so in Riak whatever the preset; the other legacy
            // files are where they were read from, in Riak if a read copied them.
            const written = (path: string) =>
              preset === "riak" || /^(repo2|untarred|synced)\//.test(path) ||
              /^repo\/\.git\/(objects\/pack\/|packed-refs$|index$|HEAD$)/.test(path) ||
              ["legacy.db", "wal.db", "app.log", "app.log.1"].includes(path);
            let compared = 0;
            for (const path of filesBelow(env.mountpoint)) {
              const stored = await env.store.tryStat(path);
              if (stored === undefined) {
                assert.ok(!written(path), `${path} is not in Riak`);
                continue;
              }
              const content = fs.readFileSync(at(path));
              assert.ok(content.equals(await env.store.readFile(path)), `${path} in Riak`);
              compared++;
            }
            assert.ok(compared > 0);
          },
        );
      });
    });
  });
}

for (const preset of STAGES_WRITES) {
  Deno.test(`${preset}: a log whose upload is still under way is followed by its reader (tail -f)`, async () => {
    await withOverlayEnv(async (env) => {
      // In this process: every file operation on the mount below is asynchronous.
      const proxy = await startRiakProxy(env.riak.nodes[0]);
      try {
        const upload = proxy.holdPut(env.bucket, "app.log");
        const mounted = await env.mount(preset, [], proxy.node);
        try {
          const log = join(env.mountpoint, "app.log");
          const released = (await statusOf(env)).metrics.ops.release ?? 0;
          await fsp.writeFile(log, "one\n");
          await upload.reached;
          // Let go by the mount too (close(2) does not wait for that): the reader opens the
          // staged file, which the reader threads then read, not the write session.
          await eventually(
            "the writer's release",
            async () => ((await statusOf(env)).metrics.ops.release ?? 0) > released,
          );
          const reader = await fsp.open(log, "r");
          try {
            const readAll = async () => {
              const { bytesRead, buffer } = await reader.read(Buffer.alloc(4096), 0, 4096, 0);
              return buffer.subarray(0, bytesRead).toString();
            };
            assert.equal(await readAll(), "one\n");
            await fsp.appendFile(log, "two\n");
            assert.equal(await readAll(), "one\ntwo\n", "the append is read");
          } finally {
            await reader.close();
          }
        } catch (error) {
          throw new Error(`${(error as Error).stack}\nmount stderr:\n${mounted.stderr()}`);
        } finally {
          upload.release();
          await env.unmount(mounted);
        }
        assert.equal((await env.store.readFile("app.log")).toString(), "one\ntwo\n");
      } finally {
        await proxy.close();
      }
    });
  });
}
