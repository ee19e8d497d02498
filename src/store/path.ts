/**
 * Store paths: a file's path relative to the migrated root, as the bytes of its name.
 *
 * Linux names are bytes, not text, so the store keeps paths as bytes end to end; strings
 * are accepted as UTF-8 for convenience. The normal form has no leading or trailing `/`,
 * no empty, `.` or `..` segments and no NUL byte; the root is the empty path.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { InvalidPathError } from "./errors.ts";

/** A path relative to the migrated root: text (UTF-8) or raw name bytes. */
export type StorePath = string | Uint8Array;

const SLASH = 0x2f;

/**
 * Normalises a path to its bytes: leading, trailing and repeated `/` are dropped.
 *
 * @example
 * ```ts
 * normalizePath("/test//images/a.jpg/"); // bytes of "test/images/a.jpg"
 * ```
 */
export function normalizePath(path: StorePath): Buffer {
  const bytes = typeof path === "string" ? Buffer.from(path, "utf8") : Buffer.from(path);
  const segments = splitSegments(bytes);
  for (const segment of segments) {
    if (segment.includes(0)) throw new InvalidPathError(displayPath(bytes), "NUL byte in a name");
    const text = segment.toString("latin1");
    if (text === "." || text === "..") {
      throw new InvalidPathError(displayPath(bytes), `'${text}' segment`);
    }
  }
  return joinSegments(segments);
}

/** The segments (names) of a normalised path; the root has none. */
export function pathSegments(path: Uint8Array): Buffer[] {
  return splitSegments(Buffer.from(path));
}

/** Joins names with `/`. */
export function joinSegments(segments: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  segments.forEach((segment, index) => {
    if (index > 0) parts.push(Buffer.of(SLASH));
    parts.push(Buffer.from(segment));
  });
  return Buffer.concat(parts);
}

/** Parent directory and last name of a normalised, non-root path. */
export function splitParent(path: Uint8Array): { parent: Buffer; name: Buffer } {
  const bytes = Buffer.from(path);
  const cut = bytes.lastIndexOf(SLASH);
  if (cut < 0) return { parent: Buffer.alloc(0), name: bytes };
  return { parent: bytes.subarray(0, cut), name: bytes.subarray(cut + 1) };
}

/** `parent/name` for a normalised parent (the root is empty). */
export function childPath(parent: Uint8Array, name: Uint8Array): Buffer {
  return parent.length === 0 ? Buffer.from(name) : joinSegments([parent, name]);
}

/** True when `path` is `ancestor` or lies below it. */
export function isSameOrBelow(path: Uint8Array, ancestor: Uint8Array): boolean {
  if (ancestor.length === 0) return true;
  const p = Buffer.from(path);
  if (p.length < ancestor.length || !p.subarray(0, ancestor.length).equals(ancestor)) return false;
  return p.length === ancestor.length || p[ancestor.length] === SLASH;
}

/**
 * A path for messages: UTF-8 where valid, with other bytes shown as `\xNN`, prefixed by `/`.
 *
 * @example
 * ```ts
 * displayPath(Buffer.from([0x61, 0xff])); // "/a\\xff"
 * ```
 */
export function displayPath(path: Uint8Array): string {
  return "/" + displayBytes(path);
}

/** Bytes as UTF-8 text where valid, other bytes as `\xNN`. */
export function displayBytes(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes);
  const text = buffer.toString("utf8");
  if (Buffer.from(text, "utf8").equals(buffer)) return text;
  let out = "";
  for (const byte of buffer) {
    out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${hex2(byte)}`;
  }
  return out;
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

function splitSegments(bytes: Buffer): Buffer[] {
  const segments: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === SLASH) {
      if (i > start) segments.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  return segments;
}
