/**
 * What an operator meets at the command line around a mount: relative paths given through
 * the environment or a config file, a Riak that cannot be used, odd source names, and the
 * exit codes and one-line errors of the other commands' mistakes.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { isMounted, run, tempDir } from "./_mount.ts";
import { runRiakfs } from "./_riakfs.ts";

/** Unmounts `mountpoint` if a test left it mounted, and kills the process `pidFile` names. */
async function cleanUpMount(mountpoint: string, pidFile: string | undefined): Promise<void> {
  if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
  if (pidFile === undefined || !fs.existsSync(pidFile)) return;
  try {
    process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** The one file in `directory` ending in `suffix`, if any. */
function fileEnding(directory: string, suffix: string): string | undefined {
  const name = fs.existsSync(directory)
    ? fs.readdirSync(directory).find((entry) => entry.endsWith(suffix))
    : undefined;
  return name && join(directory, name);
}

Deno.test("a background mount takes RIAKFS_CONFIG and RIAKFS_RUN_DIR relative to where it started", async () => {
  const base = tempDir("riakfs-relative-");
  const mountpoint = join(base, "mnt");
  try {
    fs.mkdirSync(join(base, "src"));
    fs.mkdirSync(mountpoint);
    fs.writeFileSync(join(base, "src", "old.txt"), "legacy");
    // Riak where nobody listens: the mount serves the source all the same.
    fs.writeFileSync(join(base, "cfgm.json"), JSON.stringify({ riak: "127.0.0.1:1" }));
    const env = { ...process.env, RIAKFS_CONFIG: "cfgm.json", RIAKFS_RUN_DIR: "run" };
    const mounted = await runRiakfs(
      ["mount", "--preset", "migrate", "--spool", join(base, "spool"), "src", "mnt"],
      { cwd: base, env },
    );
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.equal(fs.readFileSync(join(mountpoint, "old.txt"), "utf8"), "legacy");
    const pidFile = fileEnding(join(base, "run"), ".pid");
    assert.ok(pidFile, `the pid file is in ./run: ${fs.readdirSync(base)}`);
    assert.ok(fileEnding(join(base, "run"), ".sock"), "and so is the control socket");
    const unmounted = await runRiakfs(["umount", "mnt"], { cwd: base, env });
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.equal(isMounted(mountpoint), false);
  } finally {
    await cleanUpMount(mountpoint, fileEnding(join(base, "run"), ".pid"));
    fs.rmSync(base, { recursive: true, force: true });
  }
});
