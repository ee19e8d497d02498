import assert from "node:assert/strict";
import { RateLimiter, type Timer } from "./rate_limiter.ts";

function fakeTimer(): Timer & { time: number } {
  const timer = {
    time: 0,
    now: () => timer.time,
    sleep: (ms: number) => {
      timer.time += ms;
      return Promise.resolve();
    },
  };
  return timer;
}

Deno.test("RateLimiter holds the average rate over many takes", async () => {
  const timer = fakeTimer();
  const limiter = new RateLimiter(1000, timer);
  for (let i = 0; i < 100; i++) await limiter.take(100); // 10,000 bytes
  // One second of burst, then 9 s for the other 9,000 bytes.
  assert.ok(timer.time >= 8_900 && timer.time <= 9_100, `took ${timer.time} ms`);
});

Deno.test("RateLimiter lets a take larger than the burst through (in debt)", async () => {
  const timer = fakeTimer();
  const limiter = new RateLimiter(1000, timer);
  await limiter.take(5000);
  assert.equal(timer.time, 0);
  await limiter.take(1);
  assert.ok(timer.time >= 4000, `the debt is paid before the next take: ${timer.time}`);
});

Deno.test("RateLimiter serves concurrent takers in order and rejects a bad rate", async () => {
  const timer = fakeTimer();
  const limiter = new RateLimiter(100, timer);
  const order: number[] = [];
  await Promise.all([1, 2, 3].map((n) => limiter.take(100).then(() => order.push(n))));
  assert.deepEqual(order, [1, 2, 3]);
  assert.throws(() => new RateLimiter(0), RangeError);
});
