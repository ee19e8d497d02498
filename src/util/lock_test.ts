import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  lutimesSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, LOCK_STALE_MS, LockedError } from "./lock.ts";
import { withFullFilesystem } from "./_full_filesystem.ts";

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

Deno.test("on a full filesystem the lock is a symlink, refuses a second holder, and goes stale", async () => {
  await withFullFilesystem(async ({ directory }) => {
    const file = join(directory, "lock");
    assert.throws(() => writeFileSync(join(directory, "x"), "x"), /ENOSPC/, "no byte fits");
    rmSync(join(directory, "x"));
    const lock = acquireLock(file);
    assert.ok(lstatSync(file).isSymbolicLink());
    assert.equal(readlinkSync(file).split(" ")[0], String(process.pid));
    assert.ok(readlinkSync(file).length < 60, "short enough for an ext4 inode");
    assert.throws(
      () => acquireLock(file, process.ppid),
      (error: unknown) => error instanceof LockedError && error.holderPid === process.pid,
    );
    lock.release();
    assert.equal(existsSync(file), false);
    // A holder that died: taken over, also on the full disk (the takeover's own lock too).
    const child = spawn("true");
    await new Promise((resolve) => child.on("close", resolve));
    symlinkSync(`${child.pid}`, file);
    const taken = acquireLock(file);
    assert.equal(readlinkSync(file).split(" ")[0], String(process.pid));
    taken.release();
    assert.deepEqual(readdirSync(directory), [".filler"], "no temporary files are left behind");
  });
});

Deno.test("a lock from another place, written on a full disk, is live while touched", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    symlinkSync("1 1 @0123456789abcdef", file);
    assert.throws(() => acquireLock(file), LockedError, "touched just now: alive");
    const untouched = new Date(Date.now() - LOCK_STALE_MS - 60_000);
    lutimesSync(file, untouched, untouched);
    const taken = acquireLock(file);
    assert.equal(readFileSync(file, "utf8").split(" ")[0], String(process.pid));
    taken.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("temporary files a killed run left beside the lock are removed, fresh ones kept", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-lock-"));
  const file = join(dir, "lock");
  try {
    const old = new Date(Date.now() - 3_600_000);
    for (const name of ["lock.4242.0123abcd", "lock.takeover.4242.0123abcd", "lock.1.ffffffff"]) {
      writeFileSync(join(dir, name), "");
      if (name !== "lock.1.ffffffff") utimesSync(join(dir, name), old, old);
    }
    writeFileSync(join(dir, "lock.notes"), "the operator's");
    utimesSync(join(dir, "lock.notes"), old, old);
    const lock = acquireLock(file);
    lock.release();
    assert.deepEqual(readdirSync(dir).sort(), ["lock.1.ffffffff", "lock.notes"]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
