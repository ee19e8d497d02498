/**
 * An async sequence mapped with several calls under way at once, its results still taken in
 * the sequence's order.
 *
 * @module
 */

/**
 * Yields `[item, await map(item)]` for each item of `items`, in their order, with up to
 * `ahead` calls of `map` under way at once: a sequence whose every item costs a round trip
 * (`riakfs ls --long` asks Riak for each entry's attributes) takes about one round trip per
 * `ahead` items rather than one per item, yields its first result as soon as that one is in,
 * and holds at most `ahead` items.
 *
 * Failures come in the sequence's order too, as one call after the other would have met
 * them: the first item whose call failed, or the sequence's own failure once the items before
 * it were yielded, ends the iteration with that error. Calls still under way then are left to
 * finish (their outcome ignored), and nothing more is read from the sequence; so is it when
 * the consumer stops early.
 *
 * @example
 * ```ts
 * for await (const [entry, stat] of mapAhead(store.list(dir), 16, (e) => store.stat(e.name))) {
 *   print(entry, stat);
 * }
 * ```
 */
export async function* mapAhead<T, R>(
  items: AsyncIterable<T>,
  ahead: number,
  map: (item: T) => Promise<R>,
): AsyncGenerator<[T, R]> {
  const iterator = items[Symbol.asyncIterator]();
  const window: { item: T; result: Promise<R> }[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  try {
    while (true) {
      while (!finished && window.length < Math.max(1, ahead)) {
        let next: IteratorResult<T>;
        try {
          next = await iterator.next();
        } catch (error) {
          failure = { error };
          finished = true;
          break;
        }
        if (next.done) {
          finished = true;
          break;
        }
        const item = next.value;
        const result = (async () => await map(item))();
        result.catch(() => {}); // awaited in order below, or ignored once an earlier one failed
        window.push({ item, result });
      }
      const first = window.shift();
      if (first === undefined) break;
      yield [first.item, await first.result];
    }
    if (failure !== undefined) throw failure.error;
  } finally {
    if (!finished) await iterator.return?.();
  }
}
