import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

Deno.test("--version works from a copy alone in an empty folder with an empty environment", async () => {
  const folder = mkdtempSync(join(tmpdir(), "riakfs-alone-"));
  try {
    const binary = join(folder, "riakfs");
    copyFileSync(RIAKFS_BINARY, binary);
    const result = await runRiakfs(["--version"], { binary, cwd: folder, env: {} });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), pkg.version);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

Deno.test("--help lists the program and exits 0", async () => {
  const result = await runRiakfs(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^Usage: riakfs/);
});

Deno.test("an unknown flag is one line naming it, with a usage hint, exit 2", async () => {
  const result = await runRiakfs(["--frobnicate"]);
  assert.equal(result.code, 2);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /--frobnicate.*riakfs --help/);
});

Deno.test("no command at all is a usage error", async () => {
  const result = await runRiakfs([]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no command/);
});

Deno.test("help into a closed stdout (riakfs prewarm --help | head -1) ends quietly", async () => {
  for (const args of [["prewarm", "--help"], ["mount", "--help"], ["--help"]]) {
    const child = spawn(RIAKFS_BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
    // Closed before the binary has started: its first write meets a reader that is gone.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (exitCode) => resolve(exitCode));
    });
    assert.equal(stderr, "", `${args.join(" ")}: nothing on stderr`);
    assert.equal(code, 0, args.join(" "));
  }
});
