/**
 * End-to-end tests of `riakfs verify`: byte-exact comparison of a source with Riak.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chunkKey } from "../src/store/manifest.ts";
import { withMigration } from "./_migration.ts";
import { runRiakfs, shWithBytes } from "./_riakfs.ts";

Deno.test("verify: a damaged chunk, a missing file and a local change are all listed", async () => {
  await withMigration(async ({ source, store, client, flags }) => {
    const chunked = [...flags, "--chunk-size", "4096"];
    const big = Buffer.alloc(50_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    writeFileSync(join(source, "big.bin"), big);
    writeFileSync(join(source, "small.txt"), "small");
    writeFileSync(join(source, "local-edit.txt"), "before");
    const warmed = await runRiakfs(["prewarm", source, ...chunked]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const clean = await runRiakfs(["verify", source, "--json", ...chunked]);
    assert.equal(clean.code, 0, clean.stdout);
    assert.deepEqual(JSON.parse(clean.stdout).matched, 3);

    // Damage chunk 5 of big.bin in Riak, add a file Riak lacks, change one locally.
    const manifest = await store.manifest("big.bin");
    assert.ok(manifest, "big.bin is chunked");
    const location = store.layout.chunk(chunkKey(manifest.generation, 5));
    const chunk = await client.get(location);
    const damaged = Buffer.from(chunk.contents[0].value);
    damaged[100] ^= 1;
    await client.put(location, {
      ...chunk.contents[0],
      value: damaged,
      contentType: "application/octet-stream",
    }, {
      vclock: chunk.vclock,
    });
    writeFileSync(join(source, "not-uploaded"), "new");
    writeFileSync(join(source, "local-edit.txt"), "after!");

    const run = await runRiakfs(["verify", source, ...chunked]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^differs: \/big\.bin: .*checksum mismatch/m);
    assert.match(run.stdout, /^missing: \/not-uploaded: not in Riak$/m);
    assert.match(run.stdout, /^differs: \/local-edit\.txt: sha256 differs/m);
    assert.match(run.stdout, /4 files .* 1 identical, 3 differ$/m);

    const one = await runRiakfs(["verify", source, "small.txt", ...chunked]);
    assert.equal(one.code, 0, one.stdout);
    // As the shell completes it: SOURCE/small.txt is small.txt.
    const completed = await runRiakfs(["verify", source, join(source, "small.txt"), ...chunked]);
    assert.equal(completed.code, 0, completed.stdout + completed.stderr);
    assert.match(completed.stdout, /1 files .* 1 identical, 0 differ$/m);
    const bad = await runRiakfs(["verify", source, "--sample", "zero", ...chunked]);
    assert.equal(bad.code, 2);
    const outside = await runRiakfs(["verify", source, "../elsewhere", ...chunked]);
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(outside.stderr, /^riakfs: .*PATHs are relative to SOURCE/);
  });
});

Deno.test("verify: files Riak could not be asked about are not differences, and nothing is recorded", async () => {
  await withMigration(async ({ riak, source, stateDir, flags }) => {
    writeFileSync(join(source, "a.txt"), "a");
    writeFileSync(join(source, "b.txt"), "b");
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const recorded = readFileSync(join(stateDir, "state.json"), "utf8");
    await riak.faults.stopAccepting();
    riak.faults.dropConnections();
    try {
      const down = await runRiakfs(["verify", source, ...flags]);
      assert.equal(down.code, 1, down.stdout);
      assert.match(down.stdout, /0 identical, 0 differ, 2 could not be checked$/m);
      assert.match(down.stderr, /2 file\(s\) could not be checked; the result is not recorded/);
      assert.equal(readFileSync(join(stateDir, "state.json"), "utf8"), recorded);
    } finally {
      await riak.faults.resumeAccepting();
    }
  });
});

/** `source/relative` as bytes: names that are not UTF-8 cannot be strings. */
function under(source: string, relative: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${source}/`), relative]);
}

Deno.test("verify: PATHs that are not UTF-8 name exactly their files", async () => {
  await withMigration(async ({ source, flags }) => {
    // Latin-1 "déjà/café.txt" and "cafè.txt": UTF-8 decoding makes both names one text.
    const directory = Buffer.from("d\xe9j\xe0", "latin1");
    const acute = Buffer.concat([directory, Buffer.from("/caf\xe9.txt", "latin1")]);
    const grave = Buffer.concat([directory, Buffer.from("/caf\xe8.txt", "latin1")]);
    const broken = Buffer.concat([directory, Buffer.from([0x2f, 0x78, 0xc3, 0x28])]);
    const write = 'printf %s "$2" > "$1"';
    shWithBytes('mkdir "$1"', under(source, directory));
    shWithBytes(write, under(source, acute), "acute");
    shWithBytes(write, under(source, grave), "grave");
    shWithBytes(write, under(source, broken), "broken");
    writeFileSync(join(source, "plain.txt"), "plain");
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    shWithBytes(write, under(source, grave), "GRAVE");

    const one = await runRiakfs(["verify", source, acute, ...flags]);
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(one.stdout, /1 files .* 1 identical, 0 differ$/m);
    const other = await runRiakfs(["verify", source, grave, "--json", ...flags]);
    assert.equal(other.code, 1, other.stdout + other.stderr);
    const summary = JSON.parse(other.stdout);
    assert.equal(summary.checked, 1);
    assert.deepEqual(
      summary.differences.map((d: { path: string; status: string }) => `${d.status} ${d.path}`),
      ["differs /d\\xe9j\\xe0/caf\\xe8.txt"],
    );
    const both = await runRiakfs(["verify", source, broken, acute, ...flags]);
    assert.equal(both.code, 0, both.stdout + both.stderr);
    assert.match(both.stdout, /2 files .* 2 identical, 0 differ$/m);
    // The directory, as the shell completes it (SOURCE/...): its three files.
    const walked = await runRiakfs(["verify", source, under(source, directory), ...flags]);
    assert.equal(walked.code, 1, walked.stdout + walked.stderr);
    assert.match(walked.stdout, /^differs: \/d\\xe9j\\xe0\/caf\\xe8\.txt: sha256 differs/m);
    assert.match(walked.stdout, /3 files .* 2 identical, 1 differ$/m);
    const outside = await runRiakfs(["verify", source, Buffer.from("../\xe9", "latin1"), ...flags]);
    assert.equal(outside.code, 2);
    assert.match(outside.stderr, /^riakfs: \.\.\/\\xe9: not inside /);
  });
});

Deno.test("a SOURCE that is not UTF-8 is refused by name; a symlink to it works", async () => {
  await withMigration(async ({ source, flags }) => {
    const latin1 = under(source, Buffer.from("caf\xe9", "latin1"));
    shWithBytes('mkdir "$1" && printf a > "$1/a.txt"', latin1);
    for (const command of ["prewarm", "verify", "progress"]) {
      const refused = await runRiakfs([command, latin1, ...flags]);
      assert.equal(refused.code, 2, `${command}: ${refused.stdout}${refused.stderr}`);
      assert.match(
        refused.stderr,
        /^riakfs: SOURCE \/.*\/caf\\xe9 is not UTF-8.*; give it by a symlink whose name is UTF-8 \(run 'riakfs \w+ --help' for usage\)$/m,
      );
    }
    const link = join(source, "cafe");
    shWithBytes('ln -s "$1" "$2"', latin1, link);
    const warmed = await runRiakfs(["prewarm", link, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    assert.match(warmed.stdout, /1 uploaded/);
    const verified = await runRiakfs(["verify", link, ...flags]);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.match(verified.stdout, /1 files .* 1 identical, 0 differ$/m);
    const progress = await runRiakfs(["progress", link, "--json", ...flags]);
    assert.equal(progress.code, 0, progress.stderr + progress.stdout);
  });
});

// The README's cron line excludes *.tmp: verify listed every such file as missing (exit 1
// every night), and progress counted them as differing, never done.
Deno.test("verify without globs of its own compares what the pre-warm runs select", async () => {
  await withMigration(async ({ source, flags }) => {
    mkdirSync(join(source, "cache"));
    writeFileSync(join(source, "kept.txt"), "migrated");
    writeFileSync(join(source, "x.tmp"), "scratch");
    writeFileSync(join(source, "cache", "blob"), "cached");
    const warmed = await runRiakfs([
      "prewarm",
      source,
      "--exclude",
      "*.tmp",
      "--exclude",
      "cache/",
      ...flags,
    ]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const run = await runRiakfs(["verify", source, ...flags]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /1 files .* 1 identical, 0 differ$/m);
    assert.match(
      run.stderr,
      /^riakfs verify: comparing the files the pre-warm runs select: --exclude "\*\.tmp" --exclude "cache\/"$/m,
    );
    const shown = await runRiakfs(["progress", source, ...flags]);
    assert.match(shown.stdout, /^verified: +1 files, 8 B$/m, shown.stdout);
    assert.match(shown.stdout, /^ETA: done$/m, shown.stdout);
    // Named, or with globs of its own, a file the runs exclude is compared.
    const named = await runRiakfs(["verify", source, "x.tmp", ...flags]);
    assert.equal(named.code, 1, named.stdout + named.stderr);
    assert.match(named.stdout, /^missing: \/x\.tmp: not in Riak$/m);
    const own = await runRiakfs(["verify", source, "--include", "*", ...flags]);
    assert.equal(own.code, 1, own.stdout + own.stderr);
    assert.match(own.stdout, /3 files .* 1 identical, 2 differ$/m);
  });
});

Deno.test("verify compares the whole tree where the state directory cannot be read", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "kept.txt"), "migrated");
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    // Unreadable, as another user's /var/lib/riakfs is (root reads any file).
    const stateDir = flags[flags.indexOf("--state-dir") + 1];
    rmSync(join(stateDir, "state.json"));
    mkdirSync(join(stateDir, "state.json"));
    const run = await runRiakfs(["verify", source, ...flags]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /1 files .* 1 identical, 0 differ$/m);
    assert.match(run.stderr, /^riakfs verify: could not record the result in /m);
  });
});

Deno.test("verify: a FIFO is named and counted, never opened, and leaves the result alone", async () => {
  await withMigration(async ({ source, flags }) => {
    writeFileSync(join(source, "file.txt"), "bytes");
    execFileSync("mkfifo", [join(source, "pipe")]);
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const run = await runRiakfs(["verify", source, ...flags]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      /^not compared \(a FIFO; Riak holds only files, symlinks and directories\): \/pipe$/m,
    );
    assert.match(run.stdout, /1 identical, 0 differ, 1 special files not compared$/m);
    const named = await runRiakfs(["verify", source, "pipe", "--json", ...flags]);
    assert.equal(named.code, 0, named.stdout + named.stderr);
    const summary = JSON.parse(named.stdout);
    assert.deepEqual([summary.checked, summary.special, summary.ok], [0, 1, true]);
  });
});

Deno.test("verify: a PATH through a symlinked directory is refused, never read out of SOURCE", async () => {
  await withMigration(async ({ source, flags }) => {
    const outside = mkdtempSync(join(tmpdir(), "riakfs-e2e-outside-"));
    try {
      writeFileSync(join(outside, "secret"), "not the source's");
      symlinkSync(outside, join(source, "outlink"));
      mkdirSync(join(source, "a"));
      symlinkSync("..", join(source, "a/up"));
      writeFileSync(join(source, "inside"), "inside");
      for (const [path, link] of [["outlink/secret", "outlink"], ["a/up/inside", "a/up"]]) {
        const run = await runRiakfs(["verify", source, path, ...flags]);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        assert.equal(run.stdout, "");
        assert.match(
          run.stderr,
          new RegExp(
            `^riakfs: ${path}: /${link} is a symlink; PATHs are not followed through symlinks ` +
              `\\(run 'riakfs verify --help' for usage\\)\\n$`,
          ),
        );
      }
      // The link itself is compared as the link it is, as the walk does.
      const link = await runRiakfs(["verify", source, "outlink", ...flags]);
      assert.equal(link.code, 1, link.stdout + link.stderr);
      assert.match(link.stdout, /^missing: \/outlink: not in Riak$/m);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
