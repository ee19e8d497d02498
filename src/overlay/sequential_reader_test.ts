import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { SequentialReader } from "./sequential_reader.ts";

/** A 100-byte file streamed in 7-byte pieces; records where each stream started. */
function source() {
  const bytes = Buffer.from(Array.from({ length: 100 }, (_, index) => index));
  const starts: number[] = [];
  const open = (offset: number) => {
    starts.push(offset);
    return (async function* () {
      for (let at = offset; at < bytes.length; at += 7) yield bytes.subarray(at, at + 7);
    })();
  };
  return { bytes, starts, open };
}

const direct = <T>(step: () => Promise<T>) => step();

Deno.test("sequential reads share one stream; a jump restarts it", async () => {
  const { bytes, starts, open } = source();
  const reader = new SequentialReader(open);
  assert.deepEqual(await reader.read(0, 10, direct), bytes.subarray(0, 10));
  assert.equal(reader.follows(10), true);
  assert.deepEqual(await reader.read(10, 25, direct), bytes.subarray(10, 35));
  assert.deepEqual(starts, [0]);
  assert.equal(reader.follows(50), false);
  assert.deepEqual(await reader.read(50, 10, direct), bytes.subarray(50, 60));
  assert.deepEqual(starts, [0, 50]);
  assert.deepEqual(await reader.read(60, 1000, direct), bytes.subarray(60));
  assert.equal((await reader.read(100, 10, direct)).length, 0);
  await reader.close();
});

Deno.test("concurrent reads of one handle each get their own bytes", async () => {
  const { bytes, open } = source();
  const reader = new SequentialReader(open);
  const results = await Promise.all(
    [0, 20, 40, 60, 80].map((offset) => reader.read(offset, 20, direct)),
  );
  results.forEach((result, index) => {
    assert.deepEqual(result, bytes.subarray(index * 20, index * 20 + 20));
  });
  await reader.close();
});

Deno.test("a failed read (Riak deadline) restarts the stream at the next read", async () => {
  const { bytes, starts, open } = source();
  const reader = new SequentialReader(open);
  let fail = true;
  const flaky = <T>(step: () => Promise<T>) => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error("deadline"));
    }
    return step();
  };
  assert.deepEqual(await reader.read(0, 10, direct), bytes.subarray(0, 10));
  await assert.rejects(reader.read(10, 30, flaky), /deadline/);
  assert.deepEqual(await reader.read(10, 30, direct), bytes.subarray(10, 40));
  assert.deepEqual(starts, [0, 10]);
  await reader.close();
});
