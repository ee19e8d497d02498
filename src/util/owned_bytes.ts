/**
 * Bytes that are safe to keep for long. Node hands out small Buffers as views into a shared
 * pool (`Buffer.from(string)`, `Buffer.concat`, `Buffer.allocUnsafe`: 64 KiB slabs in Node 24),
 * and a decoded Riak reply is a view into the chunk the socket read. A view kept alive keeps
 * the whole buffer under it alive: a cache of ten thousand small views can hold ten thousand
 * slabs (640 MB) for a few hundred kilobytes of its own.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * `bytes` itself when it spans the whole buffer under it, else a copy into a buffer of its
 * own size (never from the pool): keeping the result keeps only its own bytes alive.
 *
 * @example
 * ```ts
 * const key = ownedBytes(Buffer.from("/docs/a.txt")); // a pool view: copied
 * key.buffer.byteLength === key.byteLength; // true
 * ```
 */
export function ownedBytes(bytes: Uint8Array): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    return Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
