/**
 * `riakfs demo` on the built binary: the README's main-job command runs end to end (a real
 * FUSE mount in migrate mode over the embedded server) and leaves nothing behind.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { RIAKFS_BINARY } from "./_riakfs.ts";

/** Generous: the demo takes about a second; this only bounds a hang. */
const DEMO_DEADLINE_MS = 120_000;

Deno.test("riakfs demo migrates through a real mount and cleans up", async () => {
  const child = spawn(RIAKFS_BINARY, ["demo"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
  const timer = setTimeout(() => child.kill("SIGKILL"), DEMO_DEADLINE_MS);
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (exitCode) => resolve(exitCode));
    });
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  }
  assert.equal(code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
  assert.equal(stderr, "");
  assert.match(stdout, /^3\. mounted at \S+ in migrate mode/m);
  for (const read of ["photos/2019/beach.jpg", "photos/2020/city.jpg", "docs/readme.txt"]) {
    const name = read.replace(/\./g, "\\.");
    // The bytes read through the mount are the bytes Riak holds (size and sha256 shown).
    const seen = new RegExp(
      `^4\\. read  ${name} through the mount: (\\d+) bytes, sha256 (\\w+)$`,
      "m",
    )
      .exec(stdout);
    assert.ok(seen, stdout);
    assert.match(
      stdout,
      new RegExp(`^   ${name}\\s+yes\\s+yes \\(${seen[1]} bytes, sha256 ${seen[2]}\\)$`, "m"),
    );
  }
  // Files nobody read stay local only; the file written through the mount is in both.
  assert.match(stdout, /^ {3}photos\/2019\/hills\.jpg\s+yes\s+-$/m);
  assert.match(stdout, /^ {3}docs\/notes\.txt\s+yes\s+yes \(51 bytes/m);
  // The written file and its directory's new mtime went to Riak from the journal.
  assert.match(stdout, /3 copied on read, 2 journaled changes sent/);
  assert.match(stdout, /^7\. unmounted, stopped the server, removed the demo directory$/m);
  // This run's directory (other runs may be going on): no mount left, nothing on disk.
  const directory = /^1\. a legacy tree of 5 files in (\S+)\/legacy$/m.exec(stdout)?.[1];
  assert.ok(directory, stdout);
  assert.ok(!readFileSync("/proc/self/mountinfo", "utf8").includes(directory), "no mount left");
  assert.equal(existsSync(directory), false, "the demo directory is gone");
});
