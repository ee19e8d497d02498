/**
 * Bad input to every subcommand, as an operator gives it by mistake: malformed numbers,
 * empty values, paths that cannot be used, Riak addresses where nothing, or something else,
 * listens. Each is refused with one line naming it and a non-zero exit, and leaves nothing
 * behind: no mount, no process, no file where none was asked for.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { isMounted, run, tempDir, waitFor } from "./_mount.ts";
import { type RunResult, runRiakfs } from "./_riakfs.ts";

/** The first line names `pattern`; any other line is the usual `--help` hint. */
function assertOneLine(result: RunResult, pattern: RegExp, code: number): void {
  const [line, ...rest] = result.stderr.trim().split("\n");
  assert.equal(result.code, code, result.stderr);
  assert.match(line, /^riakfs[ :]/, result.stderr);
  assert.match(line, pattern, result.stderr);
  assert.deepEqual(rest.filter((hint) => !hint.includes("--help")), [], result.stderr);
}

/** Pids of the processes whose command line names `path` (a mount's serving process). */
function processesNaming(path: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.includes(path)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * Unmounts `mountpoint` if a failed test left it mounted, and kills by pid what still serves
 * it, so a regression fails the test without leaving a mount behind.
 */
async function clearMount(mountpoint: string): Promise<void> {
  if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
  for (const pid of processesNaming(mountpoint)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

Deno.test("mount: a pid file that cannot be written is refused, and no mount stays behind", async () => {
  const base = tempDir("riakfs-bad-");
  const mountpoint = join(base, "mnt");
  try {
    const source = join(base, "source");
    fs.mkdirSync(source);
    fs.mkdirSync(mountpoint);
    fs.writeFileSync(join(source, "kept"), "legacy data");
    const run = join(base, "run");
    for (const pidFile of [join(base, "missing", "riakfs.pid"), base]) {
      const result = await runRiakfs([
        "mount",
        "--preset",
        "passthrough",
        "--run-dir",
        run,
        "--pid-file",
        pidFile,
        source,
        mountpoint,
      ]);
      assertOneLine(result, new RegExp(`--pid-file ${pidFile}: E(NOENT|ISDIR)`), 1);
      assert.ok(
        await waitFor(
          () => !isMounted(mountpoint) && processesNaming(mountpoint).length === 0,
          5_000,
        ),
        "the mount and its serving process are gone",
      );
    }
    assert.deepEqual(fs.readdirSync(source), ["kept"]);
    assert.equal(fs.readFileSync(join(source, "kept"), "utf8"), "legacy data");
  } finally {
    await clearMount(mountpoint);
    fs.rmSync(base, { recursive: true, force: true });
  }
});
