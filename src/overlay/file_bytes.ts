/**
 * Bytes of open files and streams: positional reads and copies between handles that leave
 * the handles' offsets where they were.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { collect } from "../util/async_iterable.ts";
import { type SourceFile, writeWhole } from "./source_file.ts";

const COPY_PIECE = 1024 * 1024;
/** What copyBetween reads first, before it knows the file is larger. */
const FIRST_COPY_PIECE = 64 * 1024;

/** A stream's bytes as one buffer; a single piece is returned as is, not copied. */
export async function readAll(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts = await collect(pieces);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Up to `size` bytes of `file` at `offset`. */
export async function readAt(file: SourceFile, offset: number, size: number): Promise<Uint8Array> {
  const buffer = Buffer.allocUnsafe(size);
  const { bytesRead } = await file.read(buffer, 0, size, offset);
  return buffer.subarray(0, bytesRead);
}

/**
 * Copies a whole file between two open handles (positional; neither offset moves), or its
 * first `upTo` bytes.
 */
export async function copyBetween(
  from: SourceFile,
  to: SourceFile,
  upTo = Infinity,
): Promise<void> {
  // Small files (most commits) never get a 1 MiB buffer: those made garbage collection a
  // seventh of the process's time when creating small files.
  let buffer = Buffer.allocUnsafe(FIRST_COPY_PIECE);
  let position = 0;
  while (position < upTo) {
    const wanted = Math.min(buffer.length, upTo - position);
    const { bytesRead } = await from.read(buffer, 0, wanted, position);
    if (bytesRead === 0) break;
    await writeWhole(to, buffer, 0, bytesRead, position);
    position += bytesRead;
    // A full first piece: the file is larger, go on in big pieces.
    if (bytesRead === buffer.length && buffer.length < COPY_PIECE) {
      buffer = Buffer.allocUnsafe(COPY_PIECE);
    }
  }
  await to.truncate(position);
}
