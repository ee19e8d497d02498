/**
 * End-to-end tests of `riakfs prewarm` (with `verify` and `progress` on its result): the
 * built binary against an embedded Riak started in this process.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { writeSpoolRecord } from "../src/overlay/spool_record.ts";
import { placementNames, resolveNamespace } from "../src/store/layout.ts";
import { normalizePath } from "../src/store/path.ts";
import { type MigrationFixture, withMigration, withStateOnFullDisk } from "./_migration.ts";
import { runRiakfs } from "./_riakfs.ts";

/** Deterministic pseudo-random bytes (AES-CTR keystream of a seed). */
function seeded(seed: number, size: number): Buffer {
  const key = createHash("sha256").update(`prewarm-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

const ODD_NAMES = [
  "with space",
  "ünïcödé ✓",
  "quote'\"",
  "-dash",
  "new\nline",
  "back\\slash",
  "*star?",
  "#hash%percent",
];

/** Writes 10,000 files: empty ones, a few MiB-sized ones, odd names, nested directories. */
function makeTree(source: string): number {
  let files = 0;
  const write = (path: Buffer | string, bytes: Buffer) => {
    writeFileSync(path, bytes);
    files++;
  };
  mkdirSync(join(source, "big"));
  for (let i = 0; i < 3; i++) {
    write(join(source, "big", `large-${i}.bin`), seeded(i, 3 * 1024 * 1024 + i * 777));
  }
  mkdirSync(join(source, "odd"));
  for (const name of ODD_NAMES) write(join(source, "odd", name), Buffer.from(name));
  write(
    Buffer.concat([Buffer.from(join(source, "odd") + "/latin1-"), Buffer.from([0xe9, 0xff])]),
    Buffer.from("bytes"),
  );
  mkdirSync(join(source, "empty-dir"));
  for (let d = 0; files < 10_000; d++) {
    for (let s = 0; s < 4 && files < 10_000; s++) {
      const dir = join(source, `d${String(d).padStart(2, "0")}`, `s${s}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 50 && files < 10_000; f++) {
        const size = files % 97 === 0 ? 0 : 100 + (files * 37) % 3000;
        write(join(dir, `f${String(f).padStart(4, "0")}`), seeded(files, size));
      }
    }
  }
  return files;
}

async function corrupt({ client, store }: MigrationFixture, path: string): Promise<void> {
  const location = store.layout.file(normalizePath(path)).object;
  const object = await client.get(location);
  const content = object.contents[0];
  const value = Buffer.from(content.value);
  value[0] ^= 0xff;
  await client.put(location, {
    value,
    contentType: content.contentType ?? "application/octet-stream",
    usermeta: content.usermeta,
  }, { vclock: object.vclock });
}

Deno.test("prewarm: 10,000 files in two budget-limited runs, then verify and progress", async () => {
  await withMigration(async (fixture) => {
    const { source, flags } = fixture;
    const total = makeTree(source);
    assert.equal(total, 10_000);

    const started = performance.now();
    const first = await runRiakfs(["prewarm", source, "--time-budget", "1", "--json", ...flags]);
    assert.equal(first.code, 3, first.stderr + first.stdout);
    const one = JSON.parse(first.stdout);
    assert.equal(one.outcome, "partial");
    assert.equal(one.stopReason, "time-budget");
    assert.ok(one.tally.uploaded.files > 0, "run 1 moved something in its second");
    assert.ok(one.tally.uploaded.files < total, `run 1 uploaded ${one.tally.uploaded.files}`);

    const second = await runRiakfs(["prewarm", source, "--json", "--concurrency", "8", ...flags]);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const two = JSON.parse(second.stdout);
    assert.equal(two.outcome, "complete");
    assert.equal(two.tally.failed.files, 0);
    // Resumed where run 1 stopped: it did not walk (and count) run 1's files again.
    assert.ok(two.tally.seen.files < total, `run 2 saw ${two.tally.seen.files}`);
    assert.equal(two.tally.seen.files, two.tally.uploaded.files, "nothing seen twice");
    assert.equal(
      one.tally.uploaded.files + two.tally.uploaded.files,
      total,
      "every file uploaded exactly once over the two runs",
    );
    console.log(
      `prewarm of ${total} files: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    const third = await runRiakfs(["prewarm", source, "--json", ...flags]);
    assert.equal(third.code, 0, third.stderr);
    const three = JSON.parse(third.stdout);
    assert.equal(three.tally.uploaded.files, 0, "a complete tree is only checked");
    assert.equal(three.tally.seen.files, total);

    const verified = await runRiakfs(["verify", source, "--concurrency", "8", ...flags]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /10000 files .* 10000 identical, 0 differ/);

    const progress = await runRiakfs(["progress", source, "--json", ...flags]);
    assert.equal(progress.code, 0, progress.stderr);
    const report = JSON.parse(progress.stdout);
    assert.deepEqual(report.total.files, total);
    assert.equal(report.totalIsLowerBound, false);
    assert.deepEqual(report.pending, { files: 0, bytes: 0 });
    assert.equal(report.etaDays, 0);
    assert.equal(report.runs, 3);

    await corrupt(fixture, "d01/s2/f0007");
    const damaged = await runRiakfs(["verify", source, ...flags]);
    assert.equal(damaged.code, 1, damaged.stdout + damaged.stderr);
    assert.match(damaged.stdout, /^differs: \/d01\/s2\/f0007: .*checksum mismatch/m);
    assert.match(damaged.stdout, /9999 identical, 1 differ/);
    const narrowed = await runRiakfs(["verify", source, "d01/s2/f0007", "odd", ...flags]);
    assert.equal(narrowed.code, 1);
    assert.match(narrowed.stdout, /10 files .* 9 identical, 1 differ/);
    const elsewhere = await runRiakfs(["verify", source, "big", "--json", ...flags]);
    assert.equal(elsewhere.code, 0, elsewhere.stdout);
    assert.equal(JSON.parse(elsewhere.stdout).matched, 3);
    const sample = await runRiakfs(["verify", source, "--sample", "20", "--seed", "3", ...flags]);
    assert.match(sample.stdout, /^riakfs verify: 20 files /m);
  });
});

Deno.test("prewarm --exclude 'dir/' leaves that directory and everything below it out", async () => {
  await withMigration(async ({ source, store, flags }) => {
    mkdirSync(join(source, "cache/deep"), { recursive: true });
    mkdirSync(join(source, "home/cache"), { recursive: true });
    writeFileSync(join(source, "cache/a.txt"), "a");
    writeFileSync(join(source, "cache/deep/b.txt"), "b");
    writeFileSync(join(source, "home/cache/c.txt"), "c");
    writeFileSync(join(source, "kept.txt"), "kept");
    const run = await runRiakfs(["prewarm", source, "--exclude", "cache/", "--json", ...flags]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.deepEqual(JSON.parse(run.stdout).tally.uploaded.files, 1);
    assert.ok(await store.tryStat("kept.txt"));
    assert.equal(await store.tryStat("cache"), undefined);
    assert.equal(await store.tryStat("home/cache"), undefined);
    const verify = await runRiakfs(["verify", source, "--exclude", "cache/", ...flags]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /1 files .* 1 identical, 0 differ$/m);
  });
});

Deno.test("prewarm whose stdout refuses its summary still moves everything, and says so", async () => {
  await withMigration(async ({ source, store, flags }) => {
    writeFileSync(join(source, "a.txt"), "a");
    // /dev/full refuses every write (ENOSPC), as a log file on the disk being drained does:
    // the run's outcome is its exit code, not whether its summary could be printed.
    const run = await runRiakfs(["prewarm", source, ...flags], { stdoutTo: "/dev/full" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^riakfs prewarm: cannot write to standard output: ENOSPC/m);
    assert.equal((await store.readFile("a.txt")).toString(), "a");
  });
});

Deno.test("prewarm --delete-local with its state directory on a disk with no inode left says what to do in one line; given one elsewhere, it drains the disk", async () => {
  await withMigration(async (fixture) => {
    const files = Object.fromEntries(
      [0, 1, 2, 3].map((index) => [`f${index}`, seeded(index, 20_000)]),
    );
    const options = { inodes: 64, sizeKiB: 1024 };
    await withStateOnFullDisk(fixture, files, options, async ({ disk, legacy, flags }) => {
      disk.fillInodes(); // Many small files took every inode: the lock has none.
      disk.fill();
      const refused = await runRiakfs(["prewarm", "--delete-local", ...flags, legacy]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^riakfs: cannot take the lock .*state\/lock: .*not even an inode: give --state-dir on another filesystem.*\n$/,
      );
      assert.equal(readdirSync(legacy).length, 4, "nothing done");
      const before = statfsSync(disk.directory);
      const drained = await runRiakfs(["prewarm", "--delete-local", ...fixture.flags, legacy]);
      assert.equal(drained.code, 0, drained.stderr);
      assert.deepEqual(readdirSync(legacy), [], "drained into Riak");
      assert.equal((await fixture.store.readFile("f3")).length, 20_000);
      const after = statfsSync(disk.directory);
      assert.ok(after.bavail > before.bavail && after.ffree > before.ffree, "the disk has room");
    });
  });
});

Deno.test("prewarm whose state directory's disk is still full at its end prints its outcome and says it is not recorded", async () => {
  await withMigration(async (fixture) => {
    const files = { "a.bin": seeded(20, 50_000) };
    await withStateOnFullDisk(fixture, files, { sizeKiB: 1024 }, async (full) => {
      full.disk.fill(); // And no --delete-local to make room.
      const run = await runRiakfs(["prewarm", ...full.flags, full.legacy]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^riakfs prewarm: complete .* 1 uploaded/m);
      assert.match(run.stdout, /state directory .*state is still full: this run is not recorded/);
      assert.deepEqual(readdirSync(full.stateDir), [], "nothing half-written left in it");
      assert.equal((await fixture.store.readFile("a.bin")).length, 50_000);
    });
  });
});

Deno.test("prewarm --delete-local keeps a file a daemon holds open for writing (exit 3), and drains it on the run after the daemon closed it; --delete-quiet-period keeps one changed lately", async () => {
  await withMigration(async ({ source, store, flags }) => {
    const log = join(source, "daemon.log");
    writeFileSync(log, "line 0\n");
    writeFileSync(join(source, "done.txt"), "closed");
    // This test process is the daemon, writing into the source.
    const daemon = openSync(log, "a");
    let open = true;
    try {
      const first = await runRiakfs(["prewarm", "--delete-local", ...flags, source]);
      assert.equal(first.code, 3, first.stdout + first.stderr);
      assert.match(
        first.stdout,
        /^local copy kept \(in use\): .*daemon\.log: another process has it open for writing; kept$/m,
      );
      assert.match(first.stdout, /1 local copies deleted, 1 local copies kept/);
      assert.deepEqual(readdirSync(source), ["daemon.log"]);
      writeSync(daemon, "line 1\n");
      closeSync(daemon);
      open = false;
      const second = await runRiakfs(["prewarm", "--delete-local", ...flags, source]);
      assert.equal(second.code, 0, second.stdout + second.stderr);
      assert.deepEqual(readdirSync(source), []);
      assert.equal((await store.readFile("daemon.log")).toString(), "line 0\nline 1\n");
    } finally {
      if (open) closeSync(daemon);
    }
    writeFileSync(join(source, "fresh.txt"), "just written");
    const quiet = await runRiakfs(
      ["prewarm", "--delete-local", "--delete-quiet-period", "3600", ...flags, source],
    );
    assert.equal(quiet.code, 3, quiet.stdout + quiet.stderr);
    assert.match(quiet.stdout, /fresh\.txt: changed within the last 3600 s \(the quiet period\)/);
    assert.deepEqual(readdirSync(source), ["fresh.txt"]);
    assert.equal((await store.readFile("fresh.txt")).toString(), "just written");
  });
});

Deno.test("prewarm --delete-local against a SOURCE whose mount reads or lists the local files alone is refused in one line, before doing anything", async () => {
  await withMigration(async ({ source, stateDir, flags }) => {
    const bucket = flags[flags.indexOf("--bucket") + 1];
    const spool = join(source, ".riakfs-spool");
    mkdirSync(spool);
    const namespace = placementNames(resolveNamespace({ bucket }));
    // riak-fuse's supervisord line without -dell mounts SOURCE in shadow: the files a drain
    // deleted locally would be gone from its listings and reads, though safe in Riak.
    assert.ok(writeSpoolRecord(spool, { namespace, mode: "--preset shadow", mountpoint: "/m" }));
    for (const name of ["f1", "f2"]) writeFileSync(join(source, name), name);
    const refused = await runRiakfs(["prewarm", "--delete-local", ...flags, source]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      /^riakfs prewarm: --delete-local refused: the mount of .* \(--preset shadow, .*\.riakfs-spool\/namespace\) would no longer show the files whose local copies go: it reads and lists the local files alone; mount it with --preset drain \(riak-fuse's -dell\) first, or run without --delete-local[^\n]*\n$/,
    );
    assert.deepEqual(readdirSync(source).sort(), [".riakfs-spool", "f1", "f2"]);
    assert.deepEqual(readdirSync(stateDir), [], "nothing done");
    assert.ok(writeSpoolRecord(spool, { namespace, mode: "--preset drain", mountpoint: "/m" }));
    const drained = await runRiakfs(["prewarm", "--delete-local", ...flags, source]);
    assert.equal(drained.code, 0, drained.stdout + drained.stderr);
    assert.deepEqual(readdirSync(source), [".riakfs-spool"]);
  });
});

Deno.test("prewarm --delete-local against a SOURCE whose mount recorded another namespace is refused in one line naming both, before doing anything", async () => {
  await withMigration(async ({ source, stateDir, flags }) => {
    const bucket = flags[flags.indexOf("--bucket") + 1];
    const spool = join(source, ".riakfs-spool");
    mkdirSync(spool);
    // As a drain mount of SOURCE records its namespace in its spool.
    const namespace = placementNames(resolveNamespace({ bucket }));
    assert.ok(writeSpoolRecord(spool, { namespace, mode: "--preset drain", mountpoint: "/m" }));
    for (const name of ["f1", "f2", "f3"]) writeFileSync(join(source, name), name);
    const typo = flags.map((flag) => flag === bucket ? `${bucket}-typo` : flag);
    const refused = await runRiakfs(["prewarm", "--delete-local", ...typo, source]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `^riakfs prewarm: --delete-local refused: the mount of .* serves bucket-type=default ` +
          `bucket=${bucket} .*\\(.*\\.riakfs-spool/namespace\\), not bucket-type=default ` +
          `bucket=${bucket}-typo .*; give the mount's namespace[^\\n]*\\n$`,
      ),
    );
    assert.deepEqual(readdirSync(source).sort(), [".riakfs-spool", "f1", "f2", "f3"]);
    assert.deepEqual(readdirSync(stateDir), [], "nothing done");
    const copied = await runRiakfs(["prewarm", ...typo, source]);
    assert.equal(copied.code, 0, "without --delete-local, a copy elsewhere deletes nothing");
    const drained = await runRiakfs(["prewarm", "--delete-local", ...flags, source]);
    assert.equal(drained.code, 0, drained.stdout + drained.stderr);
    assert.deepEqual(readdirSync(source), [".riakfs-spool"]);
  });
});

Deno.test("prewarm beside a drain mount of SOURCE keeps Riak's directory of files where SOURCE now has a file, one failure saying what to do", async () => {
  await withMigration(async ({ source, store, flags }) => {
    const bucket = flags[flags.indexOf("--bucket") + 1];
    const spool = join(source, ".riakfs-spool");
    mkdirSync(spool);
    const namespace = placementNames(resolveNamespace({ bucket }));
    // The mount drained x/a: its only copy is in Riak; SOURCE's x is a file now.
    await store.mkdir("x");
    await store.writeFile("x/a", Buffer.from("drained"), { mtimeNs: 1_000_000_000n });
    writeFileSync(join(source, "x"), "a file now");
    for (const mode of ["--preset drain", "--preset shadow"]) {
      assert.ok(writeSpoolRecord(spool, { namespace, mode, mountpoint: "/m" }));
      const run = await runRiakfs(["prewarm", ...flags, source]);
      if (mode === "--preset shadow") {
        // Nothing tells of a drain then: SOURCE's file replaces what Riak holds (older).
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal((await store.readFile("x")).toString(), "a file now");
        continue;
      }
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(
        run.stdout,
        /failed: \/x: Riak holds a directory where SOURCE now has a file, left in Riak \(SOURCE is drained: it may hold drained files\): rename the local file, or move Riak's directory aside through a riakfs mount, then run again\n/,
      );
      assert.equal((await store.readFile("x/a")).toString(), "drained");
    }
  });
});
