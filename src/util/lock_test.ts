import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, LOCK_STALE_MS, LockedError } from "./lock.ts";

Deno.test("the lock holds the PID, refuses a second live holder and is released", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const lock = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
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
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
    lock.release();
    // A takeover whose process died while taking over does not block the next run either.
    writeFileSync(file, `${deadPid}\n`);
    writeFileSync(`${file}.takeover`, `${deadPid}\n`);
    const again = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
    assert.equal(existsSync(`${file}.takeover`), false);
    again.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a live PID with another start time (reused since the holder died) is stale", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    // Our parent is alive, but did not start at tick 1: the holder was another process.
    writeFileSync(file, `${process.ppid} 1\n`);
    const lock = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
    lock.release();
    // The same PID with its real start time is the live holder it looks like.
    const parent = acquireLock(file, process.ppid);
    assert.throws(() => acquireLock(file), LockedError);
    parent.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a lock from another PID namespace or boot is live while touched, stale once not", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const lock = acquireLock(file);
    const fields = readFileSync(file, "utf8").trim().split(" ");
    assert.equal(fields.length, 4, "PID, start time, boot id, PID namespace");
    assert.match(fields[3], /^pid:\[\d+\]$/);
    lock.release();
    // PID 1 of a container sharing the state directory: its PID means nothing here.
    writeFileSync(file, "1 1 another-boot pid:[1]\n");
    assert.throws(() => acquireLock(file), LockedError, "touched just now: alive");
    const untouched = new Date(Date.now() - LOCK_STALE_MS - 60_000);
    utimesSync(file, untouched, untouched);
    const taken = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
    taken.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a held lock is touched while its holder runs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const lock = acquireLock(file, process.pid, 5);
    try {
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(file, old, old);
      const deadline = Date.now() + 10_000;
      while (statSync(file).mtimeMs < Date.now() - 60_000) {
        assert.ok(Date.now() < deadline, "the lock file was never touched");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      lock.release();
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});
