import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockingWhileFast } from "../util/blocking_while_fast.ts";
import { copyBetween, readAll, readAt } from "./file_bytes.ts";
import { openSourceFile, type SourceFile } from "./source_file.ts";

const { O_CREAT, O_RDWR } = fs.constants;

async function withFiles(
  content: Uint8Array,
  body: (from: SourceFile, to: SourceFile, toPath: string) => Promise<void>,
): Promise<void> {
  const directory = fs.mkdtempSync(join(tmpdir(), "riakfs-file-bytes-"));
  const pace = new BlockingWhileFast();
  const opened: SourceFile[] = [];
  try {
    fs.writeFileSync(join(directory, "from"), content);
    fs.writeFileSync(join(directory, "to"), "old bytes longer than some copies");
    opened.push(await openSourceFile(join(directory, "from"), O_RDWR, 0, pace));
    opened.push(await openSourceFile(join(directory, "to"), O_RDWR | O_CREAT, 0o600, pace));
    await body(opened[0], opened[1], join(directory, "to"));
  } finally {
    for (const file of opened) await file.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

/** Bytes that differ at every position, so a piece copied to the wrong place shows. */
function pattern(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  return bytes;
}

Deno.test("copyBetween copies a small and a file of several pieces whole, cutting the target", async () => {
  for (const size of [0, 5, 64 * 1024, 64 * 1024 + 1, 2 * 1024 * 1024 + 3]) {
    const content = pattern(size);
    await withFiles(content, async (from, to, toPath) => {
      await copyBetween(from, to);
      assert.deepEqual(fs.readFileSync(toPath), content, `size ${size}`);
    });
  }
});

Deno.test("copyBetween copies only the first upTo bytes", async () => {
  const content = pattern(200_000);
  await withFiles(content, async (from, to, toPath) => {
    await copyBetween(from, to, 70_000);
    assert.deepEqual(fs.readFileSync(toPath), content.subarray(0, 70_000));
  });
});

Deno.test("readAt reads at an offset and stops at the end of the file", async () => {
  await withFiles(Buffer.from("0123456789"), async (from) => {
    assert.equal(Buffer.from(await readAt(from, 3, 4)).toString(), "3456");
    assert.equal(Buffer.from(await readAt(from, 8, 100)).toString(), "89");
    assert.equal((await readAt(from, 20, 5)).length, 0);
  });
});

Deno.test("readAll joins a stream's pieces and hands a single piece back as is", async () => {
  async function* pieces(...parts: string[]) {
    for (const part of parts) yield Buffer.from(part);
  }
  assert.equal(Buffer.from(await readAll(pieces("ab", "", "cd"))).toString(), "abcd");
  const only = Buffer.from("x");
  assert.equal(
    await readAll((async function* () {
      yield only;
    })()),
    only,
  );
});
