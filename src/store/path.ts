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
const DOT = 0x2e;

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
  // Every read and stat starts here, nearly always with a path that is already normal.
  if (isNormal(bytes)) return bytes;
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
 * A path for messages: {@link displayBytes} of it, prefixed by `/`.
 *
 * @example
 * ```ts
 * displayPath(Buffer.from([0x61, 0xff])); // "/a\\xff"
 * ```
 */
export function displayPath(path: Uint8Array): string {
  return "/" + displayBytes(path);
}

/**
 * Bytes as text that names them unambiguously and prints safely: valid UTF-8 as is, but a
 * backslash as `\\`, control characters and bytes that are not UTF-8 as `\xNN` (so the name
 * `a\xff` shows as `a\\xff`, the byte 0xff as `\xff`, and a newline or an escape sequence
 * never reaches the terminal raw).
 *
 * @example
 * ```ts
 * displayBytes(Buffer.from("caf\u00e9\n")); // "caf\u00e9\\x0a"
 * ```
 */
export function displayBytes(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes);
  const latin1 = buffer.toString("latin1");
  if (!NEEDS_ESCAPE.test(latin1)) return latin1;
  let out = "";
  for (let i = 0; i < buffer.length;) {
    const length = utf8SequenceLength(buffer, i);
    if (length === 0) {
      out += `\\x${hex2(buffer[i])}`;
      i++;
      continue;
    }
    const char = buffer.toString("utf8", i, i + length);
    const code = char.codePointAt(0)!;
    if (char === "\\") out += "\\\\";
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) {
      for (let k = i; k < i + length; k++) out += `\\x${hex2(buffer[k])}`;
    } else out += char;
    i += length;
  }
  return out;
}

/** Bytes that may need escaping: any but printable ASCII other than the backslash. */
const NEEDS_ESCAPE = /[^\x20-\x5b\x5d-\x7e]/;

/**
 * Whether `bytes` is a non-empty path that normalizePath would return unchanged: no NUL, no
 * empty segment (leading, trailing or doubled slash), no "." or ".." segment.
 */
function isNormal(bytes: Uint8Array): boolean {
  let segmentStart = 0;
  for (let i = 0; i <= bytes.length; i++) {
    const byte = i < bytes.length ? bytes[i] : SLASH;
    if (byte === 0) return false;
    if (byte !== SLASH) continue;
    const length = i - segmentStart;
    if (length === 0) return false;
    if (bytes[i - 1] === DOT && (length === 1 || (length === 2 && bytes[i - 2] === DOT))) {
      return false;
    }
    segmentStart = i + 1;
  }
  return true;
}

/**
 * The length of the well-formed UTF-8 sequence at `bytes[at]` (1-4), or 0 when none starts
 * there (a stray continuation byte, a truncated, overlong or surrogate sequence).
 */
function utf8SequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at];
  if (lead < 0x80) return 1;
  const length = lead >= 0xc2 && lead <= 0xdf
    ? 2
    : lead >= 0xe0 && lead <= 0xef
    ? 3
    : lead >= 0xf0 && lead <= 0xf4
    ? 4
    : 0;
  if (length === 0 || at + length > bytes.length) return 0;
  for (let k = 1; k < length; k++) if ((bytes[at + k] & 0xc0) !== 0x80) return 0;
  const second = bytes[at + 1];
  if (lead === 0xe0 && second < 0xa0) return 0; // overlong
  if (lead === 0xed && second > 0x9f) return 0; // surrogate
  if (lead === 0xf0 && second < 0x90) return 0; // overlong
  if (lead === 0xf4 && second > 0x8f) return 0; // above U+10FFFF
  return length;
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
