import assert from "node:assert/strict";
import { timeSetBy, utimesSeconds } from "./utimes.ts";

Deno.test("utimesSeconds: whole seconds and milliseconds are set exactly, others never early", () => {
  const exact = [
    0n,
    1_577_836_800_000_000_000n,
    1_500_000_000_000_000_000n,
    4_102_444_800n * 10n ** 9n,
  ];
  for (const ns of exact) assert.equal(timeSetBy(utimesSeconds(ns)), ns, `${ns}`);
  for (let ms = 0n; ms < 1000n; ms += 7n) {
    const ns = 1_577_836_800_000_000_000n + ms * 1_000_000n;
    const set = timeSetBy(utimesSeconds(ns));
    assert.ok(set >= ns && set - ns < 250n, `${ns}: set ${set}`);
  }
  for (const ns of [1_577_836_800_123_456_789n, 1_765_000_000_999_999_999n, 1n]) {
    const set = timeSetBy(utimesSeconds(ns));
    assert.ok(set >= ns && set - ns < 250n, `${ns}: set ${set}`);
  }
  // The nearest double of a millisecond sets a time just before it: the reason for this.
  assert.ok(timeSetBy(1577836800.123) < 1_577_836_800_123_000_000n);
});

Deno.test("utimesSeconds: times before 1970 are the nearest double", () => {
  assert.equal(utimesSeconds(-1_500_000_000n), -1.5);
});
