import assert from "node:assert/strict";
import { collect } from "./async_iterable.ts";

Deno.test("collect gathers every item in order, and nothing from an empty iterable", async () => {
  async function* numbers(count: number) {
    for (let i = 0; i < count; i++) yield i;
  }
  assert.deepEqual(await collect(numbers(4)), [0, 1, 2, 3]);
  assert.deepEqual(await collect(numbers(0)), []);
});
