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
  // sh starts a child that waits for the end of this test's pipe, then becomes `sleep`,
  // which never reaps it; the child ends only once sh is gone, so sh cannot reap it either.
  const parent = spawn("sh", ["-c", "exec 3<&0; (read line <&3) & echo $!; exec sleep 60 3<&-"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    const [line] = await once(parent.stdout!, "data") as [Buffer];
    const child = Number(line.toString().trim());
    assert.ok(child > 0, line.toString());
    await until(() => readFileSync(`/proc/${parent.pid}/comm`, "utf8") === "sleep\n");
    assert.equal(isProcessAlive(child), true);
    parent.stdin!.end();
    await until(() => /\) [ZX] /.test(readFileSync(`/proc/${child}/stat`, "utf8")));
    assert.doesNotThrow(() => process.kill(child, 0), "a zombie still answers signal 0");
    assert.equal(isProcessAlive(child), false);
    assert.equal(isProcessAlive(parent.pid!), true);
  } finally {
    parent.kill("SIGKILL");
    await once(parent, "exit");
  }
});

/** Resolves once `condition` holds, looking again after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
