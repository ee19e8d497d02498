import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ownedBytes } from "./owned_bytes.ts";

Deno.test("ownedBytes copies a view of the shared pool into a buffer of its own size", () => {
  const pooled = Buffer.from("/docs/a.txt");
  assert.ok(pooled.buffer.byteLength > pooled.byteLength, "Buffer.from(string) is a pool view");
  const owned = ownedBytes(pooled);
  assert.equal(owned.toString(), "/docs/a.txt");
  assert.equal(owned.buffer.byteLength, owned.byteLength);
  assert.equal(owned.byteOffset, 0);
  pooled[0] = 0x78; // The copy shares nothing with the pool.
  assert.equal(owned.toString(), "/docs/a.txt");
});

Deno.test("ownedBytes copies a view into the middle of a received chunk", () => {
  const chunk = new Uint8Array(65536).fill(7);
  const owned = ownedBytes(chunk.subarray(100, 104));
  assert.deepEqual([...owned], [7, 7, 7, 7]);
  assert.equal(owned.buffer.byteLength, 4);
});

Deno.test("ownedBytes keeps bytes that already span their whole buffer as they are", () => {
  const whole = Buffer.allocUnsafeSlow(5).fill(1);
  assert.equal(ownedBytes(whole), whole);
  const array = new Uint8Array([1, 2, 3]);
  const owned = ownedBytes(array);
  assert.equal(owned.buffer, array.buffer);
  assert.ok(Buffer.isBuffer(owned));
});

Deno.test("ownedBytes of empty bytes is empty", () => {
  assert.equal(ownedBytes(Buffer.from("")).byteLength, 0);
});
