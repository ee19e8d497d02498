import assert from "node:assert/strict";
import { hashName, hashNumber, NO_SLOT, SlotIndex } from "./slot_index.ts";

/** An index over `keys` (slot -> key) with the hash `hash`, and a look-up by key. */
function indexOver(keys: Map<number, number>, hash: (key: number) => number) {
  const index = new SlotIndex((slot) => hash(keys.get(slot)!));
  const find = (key: number) => index.find(hash(key), (slot) => keys.get(slot) === key);
  return { index, find };
}

Deno.test("slots are found by key after additions and removals, colliding or not", () => {
  for (const hash of [hashNumber, () => 7]) {
    const keys = new Map<number, number>();
    const { index, find } = indexOver(keys, hash);
    const count = hash === hashNumber ? 5_000 : 300;
    for (let slot = 0; slot < count; slot++) {
      keys.set(slot, slot * 1_000_003);
      index.add(slot);
    }
    assert.equal(index.size, count);
    // Every other slot goes: the entries probed past them must still be found.
    for (let slot = 0; slot < count; slot += 2) index.delete(slot);
    for (let slot = 0; slot < count; slot++) {
      assert.equal(find(slot * 1_000_003), slot % 2 === 0 ? NO_SLOT : slot, `slot ${slot}`);
    }
    assert.equal(index.size, count / 2);
    index.delete(0); // Not indexed (any more): nothing changes.
    assert.equal(index.size, count / 2);
    for (let slot = 1; slot < count; slot += 2) index.delete(slot);
    assert.equal(index.size, 0);
    assert.equal(find(1_000_003), NO_SLOT);
  }
});

Deno.test("a rebuilt index holds exactly the slots given, under their keys now", () => {
  const keys = new Map<number, number>();
  const { index, find } = indexOver(keys, hashNumber);
  for (let slot = 0; slot < 100; slot++) {
    keys.set(slot, slot);
    index.add(slot);
  }
  // Keys moved to other slots (a table moving its rows together).
  keys.clear();
  for (let slot = 0; slot < 10; slot++) keys.set(slot, 50 + slot);
  index.rebuild(keys.keys(), keys.size);
  assert.equal(index.size, 10);
  assert.equal(find(55), 5);
  assert.equal(find(5), NO_SLOT);
});

Deno.test("hashes: numbers past 32 bits and names read in place", () => {
  assert.notEqual(hashNumber(2 ** 40 + 1), hashNumber(1), "the high bits count");
  assert.equal(hashNumber(2 ** 47 + 5), hashNumber(2 ** 47 + 5));
  assert.equal(hashName(3, "/dir/name.jpg", 5, 13), hashName(3, "name.jpg"));
  assert.notEqual(hashName(3, "name.jpg"), hashName(4, "name.jpg"), "the parent counts");
});
