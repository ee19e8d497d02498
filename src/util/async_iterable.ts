/**
 * Helpers for async iterables.
 *
 * @module
 */

/** Every item of `iterable`, in order, once it has ended. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
