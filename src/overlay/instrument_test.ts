import assert from "node:assert/strict";
import { Errno, fail, type FileSystem } from "../fuse/filesystem.ts";
import { errnoName, instrument } from "./instrument.ts";
import { MountMetrics } from "./metrics.ts";

class Sample implements FileSystem {
  forgotten = 0;
  getattr(): Promise<never> {
    return Promise.reject(fail(Errno.ENOENT));
  }
  readlink(): Promise<string> {
    return Promise.resolve("target");
  }
  forget(): void {
    this.forgotten++;
  }
}

Deno.test("every operation is counted by name and every failure by errno", async () => {
  const metrics = new MountMetrics();
  const sample = new Sample();
  const fs = instrument(sample, metrics);
  const ctx = { uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
  assert.equal(await fs.readlink!(ctx, 2), "target");
  await assert.rejects(fs.getattr!(ctx, 2, undefined));
  fs.forget!(2, 1);
  assert.equal(sample.forgotten, 1);
  assert.equal(fs.lookup, undefined, "missing operations stay missing (ENOSYS)");
  const snapshot = metrics.snapshot();
  assert.deepEqual(snapshot.ops, { readlink: 1, getattr: 1, forget: 1 });
  assert.deepEqual(snapshot.errors, { ENOENT: 1 });
  assert.equal(errnoName(Object.assign(new Error("x"), { code: "EACCES" })), "EACCES");
  assert.equal(errnoName(new Error("no code")), "EIO");
});
