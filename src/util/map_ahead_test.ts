import assert from "node:assert/strict";
import { mapAhead } from "./map_ahead.ts";

/** A call held until the test settles it. */
interface Held {
  item: number;
  resolve(value: string): void;
  reject(error: Error): void;
}

/** `count` numbers from 0, and whether the sequence was closed before its end. */
function numbers(count: number, failAt?: number) {
  const state = { read: 0, closed: false };
  async function* generate(): AsyncGenerator<number> {
    try {
      for (let i = 0; i < count; i++) {
        if (i === failAt) throw new Error(`listing failed at ${i}`);
        state.read++;
        yield await Promise.resolve(i);
      }
    } finally {
      if (state.read < count && failAt === undefined) state.closed = true;
    }
  }
  return { items: generate(), state };
}

/** Turns of the event loop until `condition` holds (the calls are settled by the test). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; !condition(); turn++) {
    if (turn > 1_000) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test("mapAhead: up to `ahead` calls at once, results in order as soon as each one's turn comes", async () => {
  const held: Held[] = [];
  const { items } = numbers(10);
  const results: [number, string][] = [];
  const consuming = (async () => {
    for await (
      const pair of mapAhead(
        items,
        4,
        (item) => new Promise<string>((resolve, reject) => held.push({ item, resolve, reject })),
      )
    ) {
      results.push(pair);
    }
  })();
  await until(() => held.length === 4, "four calls under way");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(held.length, 4, "no fifth call before a result was taken");
  // Settled last to first: nothing comes out before the first one.
  for (const call of held.slice(1).reverse()) call.resolve(`r${call.item}`);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(results.length, 0, "nothing before the first result");
  held[0].resolve("r0");
  await until(() => results.length === 4, "the first four results");
  assert.deepEqual(results.map(([item]) => item), [0, 1, 2, 3]);
  await until(() => held.length === 8, "the next four calls");
  for (let i = 4; i < 10; i++) {
    await until(() => held.length > i, `call ${i}`);
    held[i].resolve(`r${i}`);
  }
  await consuming;
  assert.deepEqual(results, Array.from({ length: 10 }, (_, i) => [i, `r${i}`]));
});

Deno.test("mapAhead: the first failure in the sequence's order ends it, after the results before it", async () => {
  const { items, state } = numbers(100);
  const results: number[] = [];
  await assert.rejects(
    (async () => {
      for await (
        const [item] of mapAhead(items, 8, async (item) => {
          await Promise.resolve();
          if (item === 12 || item === 14) throw new Error(`stat ${item} failed`);
          return item;
        })
      ) results.push(item);
    })(),
    /stat 12 failed/,
  );
  assert.deepEqual(results, Array.from({ length: 12 }, (_, i) => i));
  assert.ok(state.read < 100, "nothing more read from the sequence");
  assert.ok(state.closed, "the sequence closed");
});

Deno.test("mapAhead: the sequence's own failure comes after the results of the items before it", async () => {
  const { items } = numbers(100, 10);
  const results: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const [item] of mapAhead(items, 32, (item) => Promise.resolve(item))) {
        results.push(item);
      }
    })(),
    /listing failed at 10/,
  );
  assert.deepEqual(results, Array.from({ length: 10 }, (_, i) => i));
  // A call failing before the sequence's failure wins, as one after the other it came first.
  await assert.rejects(
    (async () => {
      for await (
        const _ of mapAhead(
          numbers(100, 10).items,
          32,
          (item) => item === 9 ? Promise.reject(new Error("stat 9 failed")) : Promise.resolve(item),
        )
      );
    })(),
    /stat 9 failed/,
  );
});

Deno.test("mapAhead: a consumer stopping early closes the sequence", async () => {
  const { items, state } = numbers(100);
  for await (const [item] of mapAhead(items, 4, (item) => Promise.resolve(item))) {
    if (item === 2) break;
  }
  assert.ok(state.closed);
  assert.ok(state.read <= 7, `read ${state.read}`);
});
