/**
 * The command line's arguments with the bytes the kernel passed, not only the text UTF-8
 * decoding made of them.
 *
 * Node and Deno decode argv as UTF-8 and turn every byte that is not into U+FFFD, so a
 * legacy Latin-1 name such as `caf\xe9.txt` reaches the program as `caf\uFFFD.txt`, and
 * `caf\xe8.txt` as the same text: no file of that name can be found, or the wrong one. The
 * exact bytes are still in /proc/self/cmdline. {@link exactArguments} reads them back and
 * keeps each byte that is not UTF-8 as a lone surrogate U+DC80..U+DCFF (Python's
 * "surrogateescape", PEP 383), so the arguments stay strings that commander parses as
 * before (options, `--opt=value`, `--`, repeated arguments: each keeps its own bytes), valid
 * text is unchanged, and {@link argumentBytes} turns a path argument back into its bytes
 * where it is used. An escaped argument used as text anyway (an option naming a file)
 * becomes the same bytes as the U+FFFD text would: that use is no worse than before.
 *
 * @module
 */
import { Buffer, isUtf8 } from "node:buffer";
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { displayBytes } from "../store/path.ts";

/**
 * The user's arguments (`process.argv.slice(2)`) with their exact bytes kept, from
 * `cmdline` (NUL-terminated entries, as /proc/self/cmdline holds them). Where the entries
 * cannot be matched with `decoded` (no /proc, a runtime that rewrote its command line),
 * `decoded` is returned as it is: the arguments as the runtime decoded them.
 *
 * @example
 * ```ts
 * // riakfs cat $'caf\xe9.txt'
 * const args = exactArguments(process.argv.slice(2)); // ["cat", "caf\udce9.txt"]
 * argumentBytes(args[1]); // <Buffer 63 61 66 e9 2e 74 78 74>
 * ```
 */
export function exactArguments(
  decoded: readonly string[],
  cmdline: Uint8Array | undefined = readCommandLine(),
): string[] {
  if (cmdline === undefined) return [...decoded];
  // The runtime's own words come first and vary (node and its flags and script, a
  // single executable's name, `deno run -A main.ts`); the user's arguments are the last.
  const entries = splitEntries(Buffer.from(cmdline));
  if (entries.length < decoded.length) return [...decoded];
  const raw = entries.slice(entries.length - decoded.length);
  if (raw.some((bytes, index) => bytes.toString("utf8") !== decoded[index])) return [...decoded];
  return raw.map((bytes, index) => isUtf8(bytes) ? decoded[index] : escapeBytes(bytes));
}

/**
 * The exact bytes of an argument from {@link exactArguments}: UTF-8, with each escaped byte
 * restored.
 *
 * @example
 * ```ts
 * argumentBytes("caf\udce9.txt"); // <Buffer 63 61 66 e9 2e 74 78 74>
 * argumentBytes("café.txt"); // <Buffer 63 61 66 c3 a9 2e 74 78 74>
 * ```
 */
export function argumentBytes(argument: string): Buffer {
  const parts: Buffer[] = [];
  for (const character of argument) {
    const code = character.codePointAt(0)!;
    parts.push(
      isEscapedByte(code) ? Buffer.of(code - ESCAPE_BASE) : Buffer.from(character, "utf8"),
    );
  }
  return Buffer.concat(parts);
}

/** A PATH argument of `ls`, `stat` or `cat`, as the store takes it. */
export interface StorePathArgument {
  /** The path's bytes without `.` segments (`./a/./b` is `a/b`, `.` the root). */
  path: Buffer;
  /** It ended with `/` (`a/`): as on a local disk, only a directory answers to it. */
  directory: boolean;
}

/**
 * A PATH argument's bytes ({@link argumentBytes}), read as a shell user means them: `.`
 * segments name the directory they are in, and a trailing `/` names a directory only.
 * (`..` stays: the store refuses it rather than guess what it would climb out of.)
 *
 * @example
 * ```ts
 * storePathArgument("./photos/"); // { path: <Buffer 70 68 6f 74 6f 73>, directory: true }
 * ```
 */
export function storePathArgument(argument: string): StorePathArgument {
  const bytes = argumentBytes(argument);
  const segments = bytes.toString("latin1").split("/");
  const kept = segments.filter((segment) => segment !== "." && segment !== "");
  return {
    path: Buffer.from(kept.join("/"), "latin1"),
    directory: kept.length > 0 && /\/\.?$/.test(bytes.toString("latin1")),
  };
}

/**
 * Refuses, as a usage error, a directory argument that is empty (it would mean the current
 * directory) or whose bytes are not UTF-8, where riakfs
 * takes the directory as text (the pre-warm's source and its state directory, a mount's
 * SOURCE and MOUNTPOINT, which mount(8) and the background process get as arguments again):
 * as text it names another directory or none. The names below it may be any bytes.
 * `workaround` ends the message, where there is one.
 *
 * @example
 * ```ts
 * requireTextPath(command, "SOURCE", sourceArg); // riakfs: SOURCE /srv/caf\xe9 is not UTF-8...
 * ```
 */
export function requireTextPath(
  command: Command,
  what: string,
  argument: string,
  workaround?: string,
): void {
  // "" resolves to the current directory, which may be anything ("$MNT" left unset).
  if (argument === "") {
    command.error(`riakfs: ${what} must not be empty`, { exitCode: 2, code: "riakfs.usage" });
  }
  const exact = argumentBytes(argument);
  if (isUtf8(exact)) return;
  command.error(
    `riakfs: ${what} ${displayBytes(exact)} is not UTF-8, which riakfs needs of ${what} ` +
      `(names below it may be any bytes)${workaround === undefined ? "" : `; ${workaround}`}`,
    { exitCode: 2 },
  );
}

/** An escaped byte b is U+DC00 + b; only bytes 0x80..0xFF are ever not UTF-8. */
const ESCAPE_BASE = 0xdc00;

function isEscapedByte(code: number): boolean {
  // Iterated by code point, a surrogate pair is one character above U+FFFF; a code here is
  // a lone surrogate, which no decoded text holds.
  return code >= ESCAPE_BASE + 0x80 && code <= ESCAPE_BASE + 0xff;
}

/** The bytes as text where they are UTF-8; every other byte as its escape. */
function escapeBytes(bytes: Buffer): string {
  let text = "";
  let at = 0;
  while (at < bytes.length) {
    // The shortest UTF-8 prefix is the well-formed character starting here (its lead
    // byte's shorter prefixes are truncated); none within 4 bytes: this byte is not UTF-8.
    let length = 1;
    while (length <= 4 && !isUtf8(bytes.subarray(at, at + length))) length++;
    if (length <= 4) {
      text += bytes.subarray(at, at + length).toString("utf8");
      at += length;
    } else {
      text += String.fromCharCode(ESCAPE_BASE + bytes[at]);
      at++;
    }
  }
  return text;
}

function readCommandLine(): Buffer | undefined {
  try {
    return readFileSync("/proc/self/cmdline");
  } catch {
    return undefined;
  }
}

/** NUL-terminated entries; an empty argument is an empty entry. */
function splitEntries(cmdline: Buffer): Buffer[] {
  const entries: Buffer[] = [];
  let start = 0;
  for (let at = 0; at < cmdline.length; at++) {
    if (cmdline[at] === 0) {
      entries.push(cmdline.subarray(start, at));
      start = at + 1;
    }
  }
  // A process that rewrote its command line may have left the last NUL out.
  if (start < cmdline.length) entries.push(cmdline.subarray(start));
  return entries;
}
