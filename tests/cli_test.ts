import assert from "node:assert/strict";
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

Deno.test("an unknown flag is one line naming it, a usage hint, exit 2", async () => {
  const result = await runRiakfs(["--frobnicate"]);
  assert.equal(result.code, 2);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 2, result.stderr);
  assert.match(lines[0], /--frobnicate/);
  assert.match(lines[1], /riakfs --help/);
});

Deno.test("no command at all is a usage error", async () => {
  const result = await runRiakfs([]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no command/);
});
