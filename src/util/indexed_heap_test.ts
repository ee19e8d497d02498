import assert from "node:assert/strict";
import { type HeapPlace, IndexedHeap } from "./indexed_heap.ts";
import { seededRandom } from "./random.ts";

interface Item extends HeapPlace {
  key: number;
}

Deno.test("items come out in order, whatever was taken out of turn", () => {
  const random = seededRandom(7);
  const heap = new IndexedHeap<Item>((a, b) => a.key < b.key);
  const held = new Set<Item>();
  const out: number[] = [];
  for (let step = 0; step < 5_000; step++) {
    const choice = random();
    if (choice < 0.5) {
      const item = { key: step + random() };
      heap.push(item);
      held.add(item);
    } else if (choice < 0.75 && held.size > 0) {
      const item = [...held][Math.floor(random() * held.size)];
      assert.ok(heap.delete(item));
      assert.equal(heap.delete(item), false, "taken out once");
      held.delete(item);
    } else {
      const first = heap.pop();
      const lowest = Math.min(...[...held].map((item) => item.key));
      assert.equal(first?.key, held.size === 0 ? undefined : lowest);
      if (first) held.delete(first);
      if (first) out.push(first.key);
    }
    assert.equal(heap.size, held.size);
  }
  assert.ok(out.length > 500, "enough pops to mean something");
  const rest = heap.clear();
  assert.deepEqual(new Set(rest), held);
  assert.ok(rest.every((item) => !heap.has(item)));
});

Deno.test("a push, a removal out of turn and a pop compare O(log n) items", () => {
  let comparisons = 0;
  const heap = new IndexedHeap<Item>((a, b) => {
    comparisons++;
    return a.key < b.key;
  });
  const random = seededRandom(11);
  const items = Array.from({ length: 1 << 16 }, () => ({ key: random() }));
  for (const item of items) heap.push(item);
  // 16 levels: a push climbs at most 16, a removal or pop goes down (two a level) or up.
  const bound = 2 * 16 + 2;
  for (let i = 0; i < 1_000; i++) {
    comparisons = 0;
    heap.delete(items[Math.floor(random() * items.length)]);
    assert.ok(comparisons <= bound, `delete: ${comparisons}`);
    comparisons = 0;
    heap.pop();
    assert.ok(comparisons <= bound, `pop: ${comparisons}`);
    comparisons = 0;
    heap.push({ key: random() });
    assert.ok(comparisons <= bound, `push: ${comparisons}`);
  }
});
