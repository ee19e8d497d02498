/**
 * `riakfs mount` refuses SOURCE and MOUNTPOINT it cannot serve before it touches anything:
 * one inside the other (the mount would wait on itself), a source that is not there (it
 * was made, empty), empty arguments, and a mountpoint a live mount already serves (a refused
 * mount replayed the live one's journal and removed its control socket), a path that is not
 * UTF-8 (the mount takes both as text), a spool inside the source where the pre-warm would
 * take it for data.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import { join } from "node:path";
import { isMounted, run, startMount, stopMount, tempDir, waitFor } from "./_mount.ts";
import { runRiakfs, shWithBytes } from "./_riakfs.ts";

/** A foreground migrate mount of `source` at `mountpoint`, against a Riak nobody runs. */
function mountArgs(
  base: string,
  source: string | Uint8Array,
  mountpoint: string | Uint8Array,
): Array<string | Uint8Array> {
  return [
    "mount",
    "--preset",
    "migrate",
    "--foreground",
    "--riak",
    "127.0.0.1:1",
    "--run-dir",
    join(base, "run"),
    source,
    mountpoint,
  ];
}

/** One line on stderr, naming `pattern` (a usage error adds the usual hint). */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const [line, ...rest] = stderr.trim().split("\n");
  assert.match(line, pattern);
  assert.deepEqual(rest.filter((hint) => !hint.includes("--help")), [], stderr);
}

Deno.test("mount refuses a source and mountpoint one inside the other, at once", async () => {
  const base = tempDir("riakfs-paths-");
  try {
    const source = join(base, "top", "data");
    fs.mkdirSync(join(source, "inner"), { recursive: true });
    const cases = [[source, source], [source, join(source, "inner")], [source, join(base, "top")]];
    for (const [from, at] of cases) {
      const result = await runRiakfs(mountArgs(base, from, at));
      assert.equal(result.code, 2, result.stderr);
      assertOneLine(result.stderr, /must not be one inside the other/);
    }
    assert.deepEqual(fs.readdirSync(source), ["inner"], "no spool made in the source");
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("mount refuses a spool inside the source other than SOURCE/.riakfs-spool", async () => {
  const base = tempDir("riakfs-paths-");
  try {
    const source = join(base, "data");
    const mountpoint = join(base, "mnt");
    fs.mkdirSync(join(source, "photos"), { recursive: true });
    fs.mkdirSync(mountpoint);
    for (const spool of [join(source, "spool"), join(source, "photos", ".riakfs-spool"), source]) {
      const result = await runRiakfs([...mountArgs(base, source, mountpoint), "--spool", spool]);
      assert.equal(result.code, 2, result.stderr);
      assertOneLine(
        result.stderr,
        /--spool .* is inside the source .*\.riakfs-spool \(the default\)/,
      );
    }
    assert.deepEqual(fs.readdirSync(source), ["photos"], "nothing made in the source");
    assert.deepEqual(fs.readdirSync(mountpoint), [], "not mounted");
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("mount refuses a source or mountpoint that is not there, or not a directory, and empty arguments, as usage errors", async () => {
  const base = tempDir("riakfs-paths-");
  try {
    const mountpoint = join(base, "mnt");
    fs.mkdirSync(mountpoint);
    const missing = join(base, "typo");
    const absent = await runRiakfs(mountArgs(base, missing, mountpoint));
    assert.equal(absent.code, 2, absent.stderr);
    assertOneLine(absent.stderr, /source .*typo does not exist/);
    assert.equal(fs.existsSync(missing), false, "not made");
    fs.writeFileSync(join(base, "file"), "");
    const file = await runRiakfs(mountArgs(base, join(base, "file"), mountpoint));
    assert.equal(file.code, 2, file.stderr);
    assertOneLine(file.stderr, /source .*file is not a directory/);
    for (
      const [at, problem] of [[join(base, "typo"), "does not exist"], [
        join(base, "file"),
        "is not a directory",
      ]]
    ) {
      const refused = await runRiakfs(mountArgs(base, mountpoint, at));
      assert.equal(refused.code, 2, refused.stderr);
      assertOneLine(refused.stderr, new RegExp(`^riakfs: mountpoint ${at} ${problem}`));
    }
    for (const [source, at] of [["", mountpoint], [join(base, "file"), ""]]) {
      const empty = await runRiakfs(mountArgs(base, source, at));
      assert.equal(empty.code, 2, empty.stderr);
      assertOneLine(empty.stderr, /must not be empty/);
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("mount refuses a source or mountpoint that is not UTF-8, naming its bytes", async () => {
  const base = tempDir("riakfs-paths-");
  try {
    const latin1 = Buffer.from(join(base, "caf\xe9"), "latin1");
    const mountpoint = join(base, "mnt");
    fs.mkdirSync(mountpoint);
    shWithBytes('mkdir "$1"', latin1);
    const cases = [[latin1, mountpoint, "SOURCE"], [mountpoint, latin1, "MOUNTPOINT"]] as const;
    for (const [source, at, what] of cases) {
      const refused = await runRiakfs(mountArgs(base, source, at));
      assert.equal(refused.code, 2, refused.stderr);
      assertOneLine(refused.stderr, new RegExp(`^riakfs: ${what} /.*/caf\\\\xe9 is not UTF-8`));
    }
    assert.equal(fs.existsSync(join(base, "run")), false, "refused before anything was made");
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("mount on a live mount's mountpoint is refused before it touches anything of it", async () => {
  const live = await startMount();
  const base = tempDir("riakfs-paths-");
  try {
    const other = join(base, "other");
    fs.mkdirSync(other);
    const second = await runRiakfs(mountArgs(base, other, live.mountpoint));
    assert.equal(second.code, 1, second.stderr);
    assertOneLine(second.stderr, /already a fuse\.riakfs mount/);
    assert.deepEqual(fs.readdirSync(other), [], "no spool, no journal replay");
    assert.equal(fs.existsSync(join(base, "run")), false, "no run directory, no socket");
    const status = await runRiakfs(["status", "--run-dir", live.runDirectory, live.mountpoint]);
    assert.equal(status.code, 0, `the live mount's control socket answers: ${status.stderr}`);
    fs.writeFileSync(join(live.mountpoint, "still-served"), "yes");
    assert.equal(fs.readFileSync(join(live.source, "still-served"), "utf8"), "yes");
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
    await stopMount(live);
  }
});

Deno.test("mount onto a directory that is not empty warns that its entries are hidden", async () => {
  const mount = await startMount({ hidden: ["left-behind"] });
  try {
    // Written before the mount serves; this process reads the pipe when its loop gets to it.
    const warning = /is not empty; its 1 entries are hidden while mounted/;
    await waitFor(() => warning.test(mount.stderr()), 10_000);
    assert.match(mount.stderr(), warning);
    assert.deepEqual(fs.readdirSync(mount.mountpoint), [], "the source's (empty) listing");
  } finally {
    await stopMount(mount);
  }
});

// The control socket and pid file were named after the symlink, while umount and status look
// for the mount the table lists: "no riakfs mount answers", and umount refused to unmount.
Deno.test("a mount made through a symlinked MOUNTPOINT answers status and umount by either name", async () => {
  const base = tempDir("riakfs-paths-");
  const mountpoint = join(base, "srv-data");
  const runDirectory = join(base, "run");
  try {
    const source = join(base, "legacy");
    fs.mkdirSync(source);
    fs.mkdirSync(mountpoint);
    fs.writeFileSync(join(source, "kept"), "legacy data");
    const link = join(base, "data");
    fs.symlinkSync("srv-data", link);
    const args = ["mount", "--preset", "passthrough", "--run-dir", runDirectory, source, link];
    const mounted = await runRiakfs(args);
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.ok(isMounted(mountpoint));
    for (const name of [link, mountpoint]) {
      const status = await runRiakfs(["status", name, "--run-dir", runDirectory]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`^mountpoint +${mountpoint}$`, "m"));
    }
    const unmounted = await runRiakfs(["umount", link, "--run-dir", runDirectory]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.equal(isMounted(mountpoint), false);
    assert.ok(
      await waitFor(
        () => fs.readdirSync(runDirectory).every((name) => name.endsWith(".log")),
        5_000,
      ),
      "the serving process removed its pid file and socket",
    );
  } finally {
    // A regression leaves the mount: its process ends once unmounted.
    if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
    fs.rmSync(base, { recursive: true, force: true });
  }
});
