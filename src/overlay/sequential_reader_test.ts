import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ReadPattern, SequentialReader, type StepRunner } from "./sequential_reader.ts";

/**
 * A 100-byte file streamed in 7-byte pieces; records where each stream started and how far
 * the streams were pulled. `gate`, when set, holds every piece until it is opened.
 */
function source() {
  const bytes = Buffer.from(Array.from({ length: 100 }, (_, index) => index));
  const starts: number[] = [];
  const state = { pulledTo: 0, gate: undefined as Promise<void> | undefined };
  const open = (offset: number) => {
    starts.push(offset);
    return (async function* () {
      for (let at = offset; at < bytes.length; at += 7) {
        if (state.gate) await state.gate;
        state.pulledTo = Math.min(at + 7, bytes.length);
        yield bytes.subarray(at, at + 7);
      }
    })();
  };
  return { bytes, starts, state, open };
}

const direct: StepRunner = (step) => step();

/** Waits until `condition` holds, for at most two seconds. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test("sequential reads share one stream, pulled ahead of them; a jump restarts it", async () => {
  const { bytes, starts, state, open } = source();
  let ahead = 0;
  const reader = new SequentialReader(open, {
    aheadBytes: 14,
    run: direct,
    onPulledAhead: () => ahead++,
  });
  assert.deepEqual(await reader.read(0, 10), bytes.subarray(0, 10));
  // The pump runs ahead of the read: 10 asked + 14 ahead, in 7-byte pieces.
  await until(() => state.pulledTo >= 24);
  assert.equal(state.pulledTo, 28);
  assert.equal(ahead, 2, "the pieces at 14 and 21 were pulled before any read asked");
  assert.equal(reader.follows(10), true);
  assert.deepEqual(await reader.read(10, 25), bytes.subarray(10, 35));
  assert.deepEqual(starts, [0]);
  assert.equal(reader.follows(80), false, "beyond the window");
  assert.equal(reader.canServe(80), true, "no read waits: the stream can move");
  assert.deepEqual(await reader.read(80, 10), bytes.subarray(80, 90));
  assert.deepEqual(starts, [0, 80]);
  assert.equal(reader.follows(5), false, "bytes already passed are dropped");
  assert.deepEqual(await reader.read(90, 1000), bytes.subarray(90));
  assert.equal((await reader.read(100, 10)).length, 0);
  reader.close();
});

Deno.test("concurrent reads in the window, out of order, each get their bytes from one stream", async () => {
  const { bytes, starts, state, open } = source();
  const reader = new SequentialReader(open, { aheadBytes: 30, run: direct });
  let release = () => {};
  state.gate = new Promise((resolve) => release = resolve);
  const first = reader.read(0, 20);
  assert.equal(reader.canServe(20), true);
  const later = [40, 20].map((offset) => reader.read(offset, 20));
  assert.equal(reader.follows(95), false);
  assert.equal(reader.canServe(95), false, "a read far ahead waits for its own stream");
  state.gate = undefined;
  release();
  assert.deepEqual(await first, bytes.subarray(0, 20));
  const [at40, at20] = await Promise.all(later);
  assert.deepEqual(at40, bytes.subarray(40, 60));
  assert.deepEqual(at20, bytes.subarray(20, 40));
  assert.deepEqual(starts, [0]);
  reader.close();
});

Deno.test("a failed step fails the reads waiting on it; the next read restarts the stream", async () => {
  const { bytes, starts, open } = source();
  let fail = false;
  const flaky: StepRunner = (step) => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error("deadline"));
    }
    return step();
  };
  const reader = new SequentialReader(open, { aheadBytes: 0, run: flaky });
  assert.deepEqual(await reader.read(0, 10), bytes.subarray(0, 10));
  fail = true;
  await assert.rejects(reader.read(10, 30), /deadline/);
  assert.deepEqual(await reader.read(10, 30), bytes.subarray(10, 40));
  assert.deepEqual(starts, [0, 10]);
  reader.close();
});

Deno.test("a closed reader releases its stream", async () => {
  const { bytes, open } = source();
  let returned = 0;
  const reader = new SequentialReader((offset) => {
    const stream = open(offset);
    return {
      next: () => stream.next(),
      return: (value?: unknown) => {
        returned++;
        return stream.return(value as undefined);
      },
    };
  }, { aheadBytes: 7, run: direct });
  assert.deepEqual(await reader.read(0, 7), bytes.subarray(0, 7));
  reader.close();
  assert.equal(returned, 1);
  assert.equal(reader.follows(7), false);
});

Deno.test("pieces no read needs are released, only after the turn in which their reads returned", async () => {
  const { bytes, open } = source();
  const released: Uint8Array[] = [];
  const reader = new SequentialReader(open, {
    aheadBytes: 0,
    run: direct,
    release: (piece) => released.push(piece),
  });
  const first = await reader.read(0, 7);
  assert.deepEqual(first, bytes.subarray(0, 7));
  // The next read passes the first piece; its reply (a view of it) may still be unwritten
  // in this turn, so it is released only once an immediate runs.
  assert.deepEqual(await reader.read(7, 7), bytes.subarray(7, 14));
  assert.equal(released.length, 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released.length, 1);
  assert.equal(released[0].buffer, first.buffer);
  assert.equal(released[0].byteOffset, 0);
  assert.equal(released[0].length, 7);
  // Closing drops what is held: released once the turn is over, like the rest.
  reader.close();
  assert.equal(released.length, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(released.map((piece) => piece.byteOffset), [0, 7]);
});

Deno.test("a read pattern is sequential once a read starts where the last one ended", () => {
  const pattern = new ReadPattern();
  assert.equal(pattern.observe(0, 10), false, "one read is not yet a pattern");
  assert.equal(pattern.observe(10, 10), true);
  assert.equal(pattern.observe(20, 5), true);
  assert.equal(pattern.observe(80, 5), false, "a jump resets the streak");
  assert.equal(pattern.streak, 0);
});
