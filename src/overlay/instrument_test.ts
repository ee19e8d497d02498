import assert from "node:assert/strict";
import { Errno, fail, type FileSystem, type ReaderCounts } from "../fuse/filesystem.ts";
import { ROOT_CTX } from "./_overlay_fixture.ts";
import { errnoName, instrument } from "./instrument.ts";
import { Logger } from "./log.ts";
import { MountMetrics } from "./metrics.ts";
import { NoRoomReport } from "./no_room_report.ts";

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
  const ctx = ROOT_CTX;
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

Deno.test("what the reader threads answered is added to the counters at each snapshot", () => {
  const metrics = new MountMetrics();
  let attached = false;
  const fs = instrument({ attachReaderCounts: () => attached = true }, metrics);
  const counts: ReaderCounts = {
    ops: { getattr: 3, read: 2 },
    errnos: new Map([[Errno.ENOENT, 1]]),
    bytesRead: 8192,
    bytesWritten: 100,
  };
  fs.attachReaderCounts!(() => structuredClone(counts));
  assert.ok(attached, "the filesystem's own hook still runs");
  metrics.countOp("getattr");
  metrics.value.bytesReadLocal = 10;
  let snapshot = metrics.snapshot();
  assert.deepEqual(snapshot.ops, { getattr: 4, read: 2 });
  assert.deepEqual(snapshot.opsInReaders, { getattr: 3, read: 2 });
  assert.deepEqual(snapshot.errors, { ENOENT: 1 });
  assert.equal(snapshot.bytesReadLocal, 8202);
  assert.equal(snapshot.bytesWritten, 100);
  counts.ops.getattr = 5;
  counts.errnos.set(Errno.EACCES, 2);
  counts.bytesRead += 4096;
  snapshot = metrics.snapshot();
  assert.deepEqual(snapshot.ops, { getattr: 6, read: 2 }, "only what is new is added");
  assert.deepEqual(snapshot.errors, { ENOENT: 1, EACCES: 2 });
  assert.equal(snapshot.bytesReadLocal, 12298);
  assert.deepEqual(
    metrics.snapshot().ops,
    { getattr: 6, read: 2 },
    "a snapshot adds nothing twice",
  );
});

Deno.test("a failure for lack of room goes to the report, which logs it once", async () => {
  const lines: string[] = [];
  const report = new NoRoomReport(new Logger({ sink: { write: (line) => lines.push(line) } }));
  const full = {
    write: () =>
      Promise.reject(Object.assign(new Error("ENOSPC: no space left"), { code: "ENOSPC" })),
    readlink: () => Promise.reject(fail(Errno.ENOENT)),
  } as unknown as FileSystem;
  const fs = instrument(full, new MountMetrics(), report);
  for (let index = 0; index < 3; index++) {
    await assert.rejects(fs.write!(ROOT_CTX, 2, 1, 0, new Uint8Array(1)), { code: "ENOSPC" });
  }
  await assert.rejects(fs.readlink!(ROOT_CTX, 2));
  assert.equal(lines.length, 1, lines.join(""));
  assert.match(lines[0], /operation=write .*refused=1/);
});
