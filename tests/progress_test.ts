/**
 * End-to-end tests of `riakfs progress`: from what pre-warm recorded, and with --rescan.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withMigration, withStateOnFullDisk } from "./_migration.ts";
import { runRiakfs } from "./_riakfs.ts";

Deno.test("progress: nothing recorded, a partial pass, a complete pass, a rescan", async () => {
  await withMigration(async ({ source, flags }) => {
    mkdirSync(join(source, "a"));
    for (let i = 0; i < 20; i++) writeFileSync(join(source, "a", `f${i}`), "0123456789");

    const nothing = await runRiakfs(["progress", source, ...flags]);
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stdout, /nothing recorded yet/);

    const partial = await runRiakfs(["prewarm", source, "--max-files", "5", ...flags]);
    assert.equal(partial.code, 3, partial.stderr);
    const during = await runRiakfs(["progress", source, ...flags]);
    assert.match(
      during.stdout,
      /^total: +at least 5 files, 50 B \(about 20 files, 200 B by the runs' count of the tree\)$/m,
    );
    assert.match(during.stdout, /^pass in progress: 5 files, 50 B covered so far$/m);
    assert.match(during.stdout, /^in Riak: +5 files, 50 B \(share of the tree unknown until/m);
    // 15 files to go at the 5 a day of today's run.
    assert.match(
      during.stdout,
      /^ETA: ~3\.0 days \(estimated from the runs' count of the tree\)$/m,
    );

    const rest = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(rest.code, 0, rest.stderr);
    const after = await runRiakfs(["progress", source, ...flags]);
    assert.match(after.stdout, /^total: +20 files, 200 B$/m);
    assert.match(after.stdout, /^in Riak: +20 files, 200 B \(100\.0%\)$/m);
    assert.match(after.stdout, /^pending: +0 files, 0 B$/m);
    assert.match(after.stdout, /^ETA: done$/m);
    assert.match(after.stdout, /^last run: .* complete \(exit 0\)$/m);

    const verified = await runRiakfs(["verify", source, ...flags]);
    assert.equal(verified.code, 0, verified.stdout);
    const checked = await runRiakfs(["progress", source, ...flags]);
    assert.match(checked.stdout, /^verified: +20 files, 200 B$/m);
    assert.match(checked.stdout, /^last verify: \S+: 20 of 20 files identical$/m);

    for (let i = 0; i < 5; i++) writeFileSync(join(source, "a", `new${i}`), "xy");
    const rescanned = await runRiakfs(["progress", source, "--rescan", "--json", ...flags]);
    assert.equal(rescanned.code, 0, rescanned.stderr);
    const report = JSON.parse(rescanned.stdout);
    assert.deepEqual(report.total, { files: 25, bytes: 210 });
    assert.deepEqual(report.pending, { files: 5, bytes: 10 });
    assert.equal(report.lastCompletePass.kind, "rescan");
    assert.ok(report.etaDays > 0 && report.etaDays < 1, `ETA ${report.etaDays} days`);

    const bad = await runRiakfs(["progress", join(source, "nope"), ...flags]);
    assert.equal(bad.code, 2);
  });
});

Deno.test("progress fails (exit 1, one line) when stdout refuses its report", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "f"), "0123456789");
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr);
    // /dev/full answers every write with ENOSPC, as a file on the disk that filled up does.
    for (const extra of [[], ["--json"], ["--rescan"]]) {
      const run = await runRiakfs(["progress", source, ...extra, ...flags], {
        stdoutTo: "/dev/full",
      });
      assert.equal(run.code, 1, `${extra}: ${run.stderr}`);
      assert.match(
        run.stderr,
        /^riakfs progress: cannot write to standard output: ENOSPC[^\n]*\n$/,
      );
    }
  });
});

Deno.test("progress --rescan whose state directory's disk is full says so in one line", async () => {
  await withMigration(async (fixture) => {
    const files = { a: new TextEncoder().encode("0123456789") };
    await withStateOnFullDisk(fixture, files, { sizeKiB: 512 }, async (full) => {
      full.disk.fill();
      const run = await runRiakfs(["progress", "--rescan", ...full.flags, full.legacy]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        /^riakfs progress: rescan counted the tree but could not record it in .*state: ENOSPC.*its disk is full: give --state-dir on another filesystem.*\n$/,
      );
      assert.deepEqual(readdirSync(full.stateDir), [], "nothing half-written left in it");
    });
  });
});

Deno.test("progress shows verify's differences and files newer in Riak, and is not done while they differ", async () => {
  await withMigration(async ({ source, flags, store }) => {
    for (let i = 0; i < 30; i++) writeFileSync(join(source, `f${i}`), "0123456789");
    writeFileSync(join(source, "doc"), "old local bytes");
    utimesSync(join(source, "doc"), new Date(3_000_000), new Date(3_000_000));
    await store.writeFile("doc", Buffer.from("written through the mount"), {
      mtimeNs: 4_000_000_000_000n,
    });
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr);
    // Other bytes of the same size: only a byte comparison tells.
    writeFileSync(join(source, "f1"), "9876543210");
    const verified = await runRiakfs(["verify", source, ...flags]);
    assert.equal(verified.code, 1, verified.stdout);
    const shown = await runRiakfs(["progress", source, ...flags]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^differing: +1 files, 10 B$/m);
    assert.match(shown.stdout, /^in Riak: +30 files, 305 B \(96\.8%\)$/m);
    assert.match(
      shown.stdout,
      /^newer in Riak: 1 files, 15 B \(written since, through a mount or by riak-fuse; /m,
    );
    // doc is one of verify's differences too: Riak holds its newer version.
    assert.match(shown.stdout, /^last verify: \S+: 29 of 31 files identical, 2 differ/m);
    assert.match(shown.stdout, /^ {2}differs: \/f1: sha256 differs/m);
    assert.match(shown.stdout, /^verified: +29 files, 290 B$/m);
    // A file to go at the day's 30: under an hour, but not "0.0 days", which reads as done.
    assert.match(shown.stdout, /^ETA: under 0\.1 days$/m);
    const json = await runRiakfs(["progress", source, "--json", ...flags]);
    const report = JSON.parse(json.stdout);
    assert.deepEqual(report.newerInRiak, { files: 1, bytes: 15 });
    assert.deepEqual(
      report.lastVerify.differences.map((d: { path: string }) => d.path).sort(),
      ["/doc", "/f1"],
    );
    assert.ok(report.verified.files <= report.inRiak.files);
  });
});

// A drain that kept files changed lately (in use) in SOURCE: progress said "ETA: done".
Deno.test("progress after a drain that kept files in use says so, and is not done until they go", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "notes.txt"), "written just now");
    writeFileSync(join(source, "fresh.txt"), "just written");
    const drain = ["prewarm", "--delete-local", ...flags, source];
    const quiet = await runRiakfs([...drain, "--delete-quiet-period", "3600"]);
    assert.equal(quiet.code, 3, quiet.stdout + quiet.stderr);
    assert.match(quiet.stdout, /local copies kept while in use; the next run retries them/);
    const shown = await runRiakfs(["progress", source, ...flags]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^pending: +0 files, 0 B$/m);
    assert.match(
      shown.stdout,
      /^kept local: 2 files, 28 B \(in Riak, but in use: open for writing or changed lately; /m,
    );
    assert.match(
      shown.stdout,
      /^ETA: not done: 2 local copies kept while in use; the next run retries them$/m,
    );
    const json = JSON.parse((await runRiakfs(["progress", source, "--json", ...flags])).stdout);
    assert.deepEqual(json.keptActive, { files: 2, bytes: 28 });
    assert.equal(json.etaDays, undefined);
    const drained = await runRiakfs(drain);
    assert.equal(drained.code, 0, drained.stdout + drained.stderr);
    assert.deepEqual(readdirSync(source), []);
    const done = await runRiakfs(["progress", source, ...flags]);
    assert.doesNotMatch(done.stdout, /kept local/);
    assert.match(done.stdout, /^ETA: done$/m);
    // The next pass walks a SOURCE holding only a new file: what was drained stays in the tree.
    writeFileSync(join(source, "later.txt"), "later");
    const copied = await runRiakfs(["prewarm", ...flags, source]);
    assert.equal(copied.code, 0, copied.stdout + copied.stderr);
    const later = await runRiakfs(["progress", source, ...flags]);
    assert.match(later.stdout, /^total: +3 files, 33 B$/m);
    assert.match(later.stdout, /^in Riak: +3 files, 33 B \(100\.0%\)$/m);
    assert.match(
      later.stdout,
      /^drained: +2 files, 28 B \(local copies deleted once verified in /m,
    );
  });
});

// A test's pre-warm without a state directory of its own kept its state (history.jsonl,
// state.json) in /var/lib/riakfs, the host's, where it outlived the test.
Deno.test("the tests' harness fails a prewarm, progress or verify without its own --state-dir", async () => {
  const base = mkdtempSync(join(tmpdir(), "riakfs-e2e-"));
  try {
    // progress only reads the state directory: these runs make nothing in /var/lib/riakfs.
    await assert.rejects(
      runRiakfs(["progress", base]),
      /^Error: riakfs progress ran without --state-dir/,
    );
    await assert.rejects(
      runRiakfs(["progress", base, "--state-dir", "/var/lib/riakfs/none"]),
      /ran with --state-dir \/var\/lib\/riakfs\/none, outside /,
    );
    const own = await runRiakfs(["progress", base, "--state-dir", "state"], { cwd: base });
    assert.equal(own.code, 0, own.stderr);
    // A usage error ends before any state directory is looked at.
    assert.equal((await runRiakfs(["progress"])).code, 2);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
