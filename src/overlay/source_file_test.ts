import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { openSourceFile } from "./source_file.ts";

const { O_CREAT, O_EXCL, O_RDONLY, O_RDWR } = fs.constants;

async function withDirectory(body: (directory: string) => Promise<void>): Promise<void> {
  const directory = fs.mkdtempSync(join(tmpdir(), "riakfs-source-file-"));
  try {
    await body(directory);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

/** A pace that blocks, and one that has gone to the pool (every call counts as slow). */
function paces(): Record<string, BlockingWhileFast> {
  const pooled = new BlockingWhileFast({ slowMs: 0 });
  for (let i = 0; i < 3; i++) pooled.timed(() => {});
  assert.equal(pooled.blocking, false);
  return { blocking: new BlockingWhileFast(), pooled };
}

Deno.test("a source file is created, written, read, changed and closed, blocking or on the pool", async () => {
  await withDirectory(async (directory) => {
    for (const [name, pace] of Object.entries(paces())) {
      const path = join(directory, `${name}.bin`);
      const file = await openSourceFile(path, O_RDWR | O_CREAT | O_EXCL, 0o600, pace);
      await assert.rejects(
        openSourceFile(path, O_RDWR | O_CREAT | O_EXCL, 0o600, pace),
        (error) => (error as NodeJS.ErrnoException).code === "EEXIST",
        `${name}: exclusive`,
      );
      assert.equal((await file.write(Buffer.from("hello world"), 0, 11, 0)).bytesWritten, 11);
      await file.truncate(5);
      await file.chmod(0o640);
      await file.sync();
      const stats = await file.stat({ bigint: true });
      assert.equal(stats.size, 5n);
      assert.equal(Number(stats.mode & 0o777n), 0o640);
      const buffer = Buffer.alloc(16);
      assert.equal((await file.read(buffer, 0, 16, 0)).bytesRead, 5);
      assert.equal(buffer.subarray(0, 5).toString(), "hello");
      await file.close();
      assert.throws(() => fs.fstatSync(file.fd), /EBADF/, `${name}: closed`);
    }
  });
});

Deno.test("closing twice never closes a descriptor since given to another file", async () => {
  await withDirectory(async (directory) => {
    const pace = new BlockingWhileFast();
    fs.writeFileSync(join(directory, "a"), "a");
    fs.writeFileSync(join(directory, "b"), "b");
    const first = await openSourceFile(join(directory, "a"), O_RDONLY, 0, pace);
    await first.close();
    const second = await openSourceFile(join(directory, "b"), O_RDONLY, 0, pace);
    assert.equal(second.fd, first.fd, "the lowest free number is handed out again");
    await first.close();
    const buffer = Buffer.alloc(1);
    assert.equal((await second.read(buffer, 0, 1, 0)).bytesRead, 1);
    assert.equal(buffer.toString(), "b");
    await second.close();
  });
});

Deno.test("a FIFO is not opened blocking (that would wait for a writer): the pool opens it as asked", async () => {
  await withDirectory(async (directory) => {
    const fifo = join(directory, "fifo");
    execFileSync("mkfifo", [fifo]);
    const pace = new BlockingWhileFast();
    const opening = openSourceFile(fifo, O_RDONLY, 0, pace);
    // A reader's open(2) of a FIFO waits for a writer; O_RDWR never waits.
    const writer = fs.openSync(fifo, O_RDWR);
    try {
      const reader = await opening;
      fs.writeSync(writer, "x");
      const buffer = Buffer.alloc(1);
      const { bytesRead } = await new Promise<{ bytesRead: number }>((resolve, reject) =>
        fs.read(
          reader.fd,
          buffer,
          0,
          1,
          null,
          (error, n) => error ? reject(error) : resolve({ bytesRead: n }),
        )
      );
      assert.equal(bytesRead, 1);
      assert.equal(buffer.toString(), "x");
      assert.equal(pace.blocking, true, "the FIFO's open did not count as a slow source");
      await reader.close();
    } finally {
      fs.closeSync(writer);
    }
  });
});
