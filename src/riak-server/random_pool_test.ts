import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomPoolBytes } from "./random_pool.ts";

Deno.test("pooled random bytes are of the length asked, never handed out twice, kept intact", () => {
  const taken = Array.from({ length: 2000 }, (_, i) => randomPoolBytes(1 + (i % 40)));
  const copies = taken.map((bytes) => Buffer.from(bytes));
  assert.ok(taken.every((bytes, i) => bytes.length === 1 + (i % 40)));
  // Past several refills of the pool, the first views still hold what they held.
  assert.ok(taken.every((bytes, i) => bytes.equals(copies[i])));
  const distinct = new Set(taken.filter((b) => b.length >= 8).map((b) => b.toString("hex")));
  assert.equal(distinct.size, taken.filter((b) => b.length >= 8).length);
  assert.equal(randomPoolBytes(10_000).length, 10_000, "larger than the pool");
});
