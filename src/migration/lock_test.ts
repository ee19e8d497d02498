import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, LockedError } from "./lock.ts";

Deno.test("the lock holds the PID, refuses a second live holder and is released", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const lock = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").trim(), String(process.pid));
    // Our parent (the test runner's parent shell) is alive and is not us.
    assert.throws(
      () => acquireLock(file, process.ppid),
      (error: unknown) => error instanceof LockedError && error.holderPid === process.pid,
    );
    lock.release();
    lock.release();
    assert.equal(existsSync(file), false);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a lock left by a dead process is taken over", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const child = spawn("true");
    const deadPid = child.pid!;
    await new Promise((resolve) => child.on("close", resolve));
    writeFileSync(file, `${deadPid}\n`);
    const lock = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").trim(), String(process.pid));
    lock.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});
