import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { isProcessAlive } from "./process.ts";

Deno.test("isProcessAlive: this process is alive", () => {
  assert.equal(isProcessAlive(process.pid), true);
});

Deno.test("isProcessAlive: a process that exited and was reaped is not", () => {
  const child = spawnSync("true");
  assert.equal(child.status, 0);
  assert.equal(typeof child.pid, "number");
  // The PID could be reused in theory; right after reaping, on a quiet PID space, it is not.
  assert.equal(isProcessAlive(child.pid!), false);
});

Deno.test("isProcessAlive: PID 1 exists even when signalling it is not allowed", () => {
  assert.equal(isProcessAlive(1), true);
});
