import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { once } from "node:events";
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

Deno.test("isProcessAlive: a process that ended but its parent never reaped (a zombie) is not", async () => {
  // sh starts `true` in the background and becomes `sleep`, which never reaps it.
  const parent = spawn("sh", ["-c", "true & echo $!; exec sleep 60"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const [line] = await once(parent.stdout!, "data") as [Buffer];
    const zombie = Number(line.toString().trim());
    assert.ok(zombie > 0, line.toString());
    // Until `true` has exited it is alive; wait for /proc to show it ended (event, not time).
    while (!/\) [ZX] /.test(readFileSync(`/proc/${zombie}/stat`, "utf8"))) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.doesNotThrow(() => process.kill(zombie, 0), "a zombie still answers signal 0");
    assert.equal(isProcessAlive(zombie), false);
    assert.equal(isProcessAlive(parent.pid!), true);
  } finally {
    parent.kill("SIGKILL");
    await once(parent, "exit");
  }
});
