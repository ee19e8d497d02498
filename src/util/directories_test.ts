import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDirectories } from "./directories.ts";

Deno.test("makeDirectories makes missing parents, with the mode, and takes an existing one", () => {
  const base = mkdtempSync(join(tmpdir(), "riakfs-dirs-"));
  try {
    const deep = join(base, "a", "b", "c");
    makeDirectories(deep, 0o700);
    assert.ok(statSync(deep).isDirectory());
    assert.equal(statSync(join(base, "a")).mode & 0o777, 0o700 & ~process.umask());
    makeDirectories(deep);
    makeDirectories(base);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("makeDirectories fails at once where it cannot make a component", () => {
  const base = mkdtempSync(join(tmpdir(), "riakfs-dirs-"));
  try {
    writeFileSync(join(base, "file"), "");
    assert.throws(() => makeDirectories(join(base, "file", "sub")), { code: "ENOTDIR" });
    assert.throws(() => makeDirectories(join(base, "file")), { code: "ENOTDIR" });
    // procfs answers ENOENT for a directory whose parent exists; Node's recursive mkdir
    // retried that forever.
    assert.throws(() => makeDirectories("/proc/riakfs-no-such/dir"), { code: "ENOENT" });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
