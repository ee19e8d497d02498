/**
 * A binary heap whose items know their place in it, so that any of them can be taken out or
 * put back in O(log n): a queue of tens of thousands of jobs (an outage's backlog) whose
 * jobs leave it out of turn (replaced by newer ones, dropped, moved ahead) must not be
 * searched for each time, as an array's indexOf and splice do.
 *
 * @module
 */

/** What an item of an {@link IndexedHeap} carries: its index there, undefined when out. */
export interface HeapPlace {
  heapIndex?: number;
}

/**
 * A min-heap by `before`, the order of the items (a strict order: no two items tie).
 *
 * @example
 * ```ts
 * const heap = new IndexedHeap<{ key: number; heapIndex?: number }>((a, b) => a.key < b.key);
 * const late = { key: 9 };
 * heap.push(late);
 * heap.push({ key: 1 });
 * heap.delete(late);
 * heap.pop(); // { key: 1, ... }
 * ```
 */
export class IndexedHeap<T extends HeapPlace> {
  readonly #before: (a: T, b: T) => boolean;
  #items: T[] = [];

  /** `before(a, b)`: whether `a` comes out first; called O(log n) times per change. */
  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  /** Items held. */
  get size(): number {
    return this.#items.length;
  }

  /** Whether `item` is held. */
  has(item: T): boolean {
    return item.heapIndex !== undefined && this.#items[item.heapIndex] === item;
  }

  /** Adds `item` (not held yet). */
  push(item: T): void {
    item.heapIndex = this.#items.length;
    this.#items.push(item);
    this.#up(item.heapIndex);
  }

  /** The first item, left held. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Takes out the first item. */
  pop(): T | undefined {
    const first = this.#items[0];
    if (first !== undefined) this.delete(first);
    return first;
  }

  /** Takes out `item`; false when it was not held. */
  delete(item: T): boolean {
    if (!this.has(item)) return false;
    const index = item.heapIndex!;
    item.heapIndex = undefined;
    const last = this.#items.pop()!;
    if (last === item) return true;
    this.#items[index] = last;
    last.heapIndex = index;
    this.#down(this.#up(index));
    return true;
  }

  /** Takes out every item, in no particular order. */
  clear(): T[] {
    const items = this.#items;
    this.#items = [];
    for (const item of items) item.heapIndex = undefined;
    return items;
  }

  /** Moves the item at `index` up while it comes before its parent; returns where it ends. */
  #up(index: number): number {
    const items = this.#items;
    const item = items[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#before(item, items[parent])) break;
      this.#place(items[parent], index);
      index = parent;
    }
    this.#place(item, index);
    return index;
  }

  /** Moves the item at `index` down while a child comes before it. */
  #down(index: number): void {
    const items = this.#items;
    const item = items[index];
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.#before(items[right], items[left]) ? right : left;
      if (!this.#before(items[child], item)) break;
      this.#place(items[child], index);
      index = child;
    }
    this.#place(item, index);
  }

  #place(item: T, index: number): void {
    this.#items[index] = item;
    item.heapIndex = index;
  }
}
