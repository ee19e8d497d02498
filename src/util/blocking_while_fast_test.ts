import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALLOWED_RECHECK_MS, BlockingWhileFast, isLocalFilesystem } from "./blocking_while_fast.ts";

/** A pace whose clock moves only when told to: `call(ms)` is a blocking call taking ms. */
function paced(options: { retryAfterMs?: number } = {}) {
  let clock = 0;
  const pace = new BlockingWhileFast({ ...options, now: () => clock });
  return {
    pace,
    call: (ms: number) => pace.timed(() => (clock += ms)),
    wait: (ms: number) => (clock += ms),
  };
}

Deno.test("calls block while quick; one slow call is a hiccup, a few in a row go to the pool", () => {
  const { pace, call } = paced();
  for (let i = 0; i < 100; i++) call(0.2);
  assert.equal(pace.blocking, true);
  call(5);
  for (let i = 0; i < 10; i++) call(0.2);
  assert.equal(pace.blocking, true, "one slow call among quick ones");
  call(5);
  call(5);
  call(5);
  assert.equal(pace.blocking, false, "three slow calls in a row");
});

Deno.test("without retryAfterMs the pool stays; with it, calls block again after that long", () => {
  const forGood = paced();
  for (let i = 0; i < 3; i++) forGood.call(5);
  forGood.wait(3_600_000);
  assert.equal(forGood.pace.blocking, false);

  const retried = paced({ retryAfterMs: 10_000 });
  for (let i = 0; i < 3; i++) retried.call(5);
  retried.wait(9_000);
  assert.equal(retried.pace.blocking, false, "before the retry time");
  retried.wait(1_000);
  assert.equal(retried.pace.blocking, true, "tried again");
  retried.call(0.1);
  assert.equal(retried.pace.blocking, true, "quick again: stays blocking");
  for (let i = 0; i < 3; i++) retried.call(5);
  assert.equal(retried.pace.blocking, false, "slow again: back to the pool");
  retried.wait(5_000);
  assert.equal(retried.pace.blocking, false, "the retry time starts afresh");
});

Deno.test("run takes the blocking call while quick, the pooled one once slow, and passes errors on", async () => {
  const { pace, call } = paced();
  assert.equal(await pace.run(() => "blocking", () => Promise.resolve("pooled")), "blocking");
  await assert.rejects(
    pace.run(() => {
      throw new Error("ENOENT");
    }, () => Promise.resolve("pooled")),
    /ENOENT/,
  );
  for (let i = 0; i < 3; i++) call(5);
  assert.equal(await pace.run(() => "blocking", () => Promise.resolve("pooled")), "pooled");
  await assert.rejects(
    pace.run(() => "blocking", () => Promise.reject(new Error("EIO"))),
    /EIO/,
  );
});

Deno.test("where calls may hang, none blocks: a network filesystem, FUSE, one statfs cannot name", () => {
  const never = new BlockingWhileFast({ allowed: false });
  assert.equal(never.blocking, false);
  // proc is no device's filesystem either; an unknown type counts as remote.
  assert.equal(isLocalFilesystem("/proc"), false);
  assert.equal(isLocalFilesystem("/no/such/directory"), false);
});

Deno.test("a tree with a filesystem of another kind mounted below it is not local", () => {
  const directory = mkdtempSync(join(tmpdir(), "riakfs-local-fs-"));
  const below = join(directory, "a b"); // mountinfo escapes the space
  mkdirSync(below);
  const local = isLocalFilesystem(directory);
  let clock = 0;
  const pace = new BlockingWhileFast({
    allowed: () => isLocalFilesystem(directory),
    now: () => clock,
  });
  assert.equal(pace.blocking, local);
  // hugetlbfs stands in for NFS: no device, not in the list (mounting it needs root).
  execFileSync("mount", ["-t", "hugetlbfs", "none", below]);
  try {
    assert.equal(isLocalFilesystem(directory), false);
    assert.equal(isLocalFilesystem(tmpdir()), false, "any level above counts");
    // Mounted after the pace looked: seen at its next look, a few seconds on.
    clock += ALLOWED_RECHECK_MS - 1;
    assert.equal(pace.blocking, local);
    clock += 1;
    assert.equal(pace.blocking, false);
  } finally {
    execFileSync("umount", [below]);
  }
  clock += ALLOWED_RECHECK_MS;
  assert.equal(pace.blocking, local, "and blocking again once it is gone");
  try {
    assert.equal(isLocalFilesystem(directory), local, "as before once it is gone");
  } finally {
    rmSync(directory, { recursive: true });
  }
});
