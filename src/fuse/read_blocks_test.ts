import assert from "node:assert/strict";
import { markReadBlocks, READ_BLOCK_SIZE, ReadBlocks } from "./read_blocks.ts";

/** The read runs of a record, found with readFrom. */
function runs(reads: ReadBlocks, size: number): [number, number][] {
  const found: [number, number][] = [];
  for (let offset = 0; offset < size;) {
    const end = reads.readFrom(offset);
    if (end > offset) found.push([offset, end]);
    offset = end > offset ? end : offset + READ_BLOCK_SIZE;
  }
  return found;
}

const B = READ_BLOCK_SIZE;

Deno.test("read blocks: aligned reads are recorded, a short read counts to the end of file", () => {
  const size = 10 * B + 100;
  const reads = new ReadBlocks(size);
  assert.ok(reads.record(0, 2 * B, 2 * B));
  assert.ok(reads.record(5 * B, 4 * B, 4 * B));
  assert.deepEqual(runs(reads, size), [[0, 2 * B], [5 * B, 9 * B]]);
  assert.equal(reads.readFrom(100), 2 * B, "from within a read block");
  assert.equal(reads.readFrom(2 * B + 1), 2 * B + 1, "a block not read: nothing");
  // The page cache asks for whole pages at the end; pread returns the file's last 100 bytes.
  assert.ok(reads.record(8 * B, 4 * B, 2 * B + 100));
  assert.ok(reads.record(2 * B, 3 * B, 3 * B));
  assert.deepEqual(runs(reads, size), [[0, size]]);
});

Deno.test("read blocks: reads it cannot record are refused, recording nothing", () => {
  const reads = new ReadBlocks(4 * B);
  const size = 4 * B;
  assert.equal(reads.record(100, B, B), false, "not aligned");
  assert.equal(reads.record(0, 1000, 1000), false, "not whole blocks");
  assert.equal(reads.record(0, 0, 0), false, "empty");
  assert.deepEqual(runs(reads, size), []);
  // A short read ends at the end of file (it shrank since the open): its partial block counts.
  assert.ok(reads.record(0, 2 * B, B + 10));
  assert.deepEqual(runs(reads, size), [[0, 2 * B]]);
});

Deno.test("read blocks: word boundaries, growth past the record, and an empty file", () => {
  const size = 100 * B;
  const reads = new ReadBlocks(size);
  assert.ok(reads.record(30 * B, 40 * B, 40 * B)); // Spans words 0-2, partly each.
  assert.deepEqual(runs(reads, size), [[30 * B, 70 * B]]);
  assert.ok(reads.record(0, 32 * B, 32 * B)); // Exactly word 0.
  // The file grew since the open: blocks past the record are ignored, not written.
  assert.ok(reads.record(64 * B, 1024 * B, 1024 * B));
  assert.deepEqual(runs(reads, size), [[0, size]]);
  assert.equal(new ReadBlocks(0).readFrom(0), 0);
});

Deno.test("read blocks: two threads' records land in one shared bitmap", () => {
  const reads = new ReadBlocks(64 * B);
  // What a reader thread does: mark through its own view of the shared buffer.
  const otherView = new Int32Array(reads.buffer);
  for (let block = 1; block < 64; block += 2) markReadBlocks(otherView, block * B, B, B);
  for (let block = 0; block < 64; block += 2) reads.record(block * B, B, B);
  assert.equal(reads.readFrom(0), 64 * B);
});

Deno.test("read blocks: the marking function runs from its own source text (as the threads run it)", () => {
  const rebuilt = new Function(`return (${markReadBlocks.toString()});`)() as typeof markReadBlocks;
  const reads = new ReadBlocks(3 * B);
  assert.ok(rebuilt(new Int32Array(reads.buffer), 0, 4 * B, 3 * B));
  assert.equal(reads.readFrom(0), 3 * B);
  assert.ok(!ReadBlocks.fits(65 * 1024 ** 3));
});

Deno.test("read blocks: runs across whole words and parts of words, against a plain bit-by-bit scan", () => {
  const size = 300 * B + 5;
  const reads = new ReadBlocks(size);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const read = new Array<boolean>(301).fill(false);
  for (let run = 0; run < 12; run++) {
    const first = Math.floor(random() * 301);
    const count = 1 + Math.floor(random() * 70);
    reads.record(first * B, count * B, count * B);
    for (let block = first; block < Math.min(301, first + count); block++) read[block] = true;
  }
  const expected: [number, number][] = [];
  for (let block = 0; block < 301; block++) {
    if (!read[block]) continue;
    const last = expected.at(-1);
    const end = Math.min((block + 1) * B, size);
    if (last && last[1] === block * B) last[1] = end;
    else expected.push([block * B, end]);
  }
  assert.deepEqual(runs(reads, size), expected);
});
