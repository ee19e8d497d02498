/**
 * Directory shards: how a directory's entries are spread over Riak sets of bounded size.
 *
 * A directory starts as one set, its *root shard*. When a shard at the newest level would
 * grow past the shard capacity (entries, or bytes of members), a new level with `fanout` times as many shards is opened by
 * adding a marker member to the root shard; from then on new entries go to the newest
 * level, at `hash(name) mod count`. Older levels are never rewritten: an entry stays where
 * it was added, so a lookup or removal checks one shard per level (a handful: 1, 16, 256,
 * 4096 shards hold 8 million entries at 2,000 per shard) and listing reads every shard of
 * every level once. The cost of adding, removing or finding one name is bounded by the
 * number of levels, not by the directory's size; listing costs one fetch per shard.
 *
 * Members are bytes: `f:`, `d:` or `l:` (file, directory, symlink) followed by the name,
 * and markers `#shards:<count>`. Names never contain `/` or NUL, and `#` is no type letter,
 * so markers and entries cannot collide.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { EntryType } from "./usermeta.ts";

/** Default number of entries per shard before a new level is opened (~100 KB of names). */
export const DEFAULT_SHARD_CAPACITY = 2000;

/**
 * Default bytes of members per shard before a new level is opened, whatever the count: 2,000
 * names of 255 bytes would make a 512 KB set, and Riak's sets slow down past about 500 KB. A
 * quarter MiB leaves room for the set's own bookkeeping (a dot per member).
 */
export const DEFAULT_SHARD_BYTES = 256 * 1024;

/** Bytes a member adds to its entry's name: the type letter and `:`. */
export const ENTRY_MEMBER_OVERHEAD = 2;

/** Default factor between the shard counts of consecutive levels. */
export const DEFAULT_SHARD_FANOUT = 16;

const TYPE_LETTER: Record<EntryType, string> = { file: "f", directory: "d", symlink: "l" };
const LETTER_TYPE: Record<string, EntryType> = { f: "file", d: "directory", l: "symlink" };
const MARKER_PREFIX = "#shards:";

/** A directory entry as kept in a shard. */
export interface ShardEntry {
  type: EntryType;
  name: Buffer;
}

/** A decoded set member. */
export type ShardMember =
  | { kind: "entry"; entry: ShardEntry }
  | { kind: "marker"; shardCount: number }
  | { kind: "unknown" };

/** The set member for an entry: type letter, `:`, name bytes. */
export function encodeEntryMember(type: EntryType, name: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${TYPE_LETTER[type]}:`, "latin1"), Buffer.from(name)]);
}

/** The marker member recording that a level of `shardCount` shards exists. */
export function encodeMarkerMember(shardCount: number): Buffer {
  return Buffer.from(`${MARKER_PREFIX}${shardCount}`, "latin1");
}

/** Decodes a set member; unknown members are kept (a newer writer) but ignored. */
export function decodeMember(member: Uint8Array): ShardMember {
  const bytes = Buffer.from(member);
  if (bytes.length >= 2 && bytes[1] === 0x3a) {
    const type = LETTER_TYPE[String.fromCharCode(bytes[0])];
    if (type) return { kind: "entry", entry: { type, name: bytes.subarray(2) } };
  }
  const text = bytes.toString("latin1");
  if (text.startsWith(MARKER_PREFIX)) {
    const count = Number(text.slice(MARKER_PREFIX.length));
    if (Number.isSafeInteger(count) && count > 1) return { kind: "marker", shardCount: count };
  }
  return { kind: "unknown" };
}

/**
 * The key of a directory's root shard: the directory's path followed by `/` (the root
 * directory's is `/`). It ends in `/`, which no file key does.
 */
export function directoryKey(directory: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(directory), Buffer.from("/")]);
}

/**
 * The key of shard `index` of the level with `shardCount` shards: the root shard's key for
 * the single-shard level, else `<directory key>#<count>.<index>`.
 *
 * @example
 * ```ts
 * shardKey(Buffer.from("photos/"), 16, 3).toString(); // "photos/#16.3"
 * ```
 */
export function shardKey(dirKey: Uint8Array, shardCount: number, index: number): Buffer {
  if (shardCount === 1) return Buffer.from(dirKey);
  return Buffer.concat([Buffer.from(dirKey), Buffer.from(`#${shardCount}.${index}`)]);
}

/** Which shard of a level with `shardCount` shards holds `name`: sha256 prefix mod count. */
export function shardIndex(name: Uint8Array, shardCount: number): number {
  if (shardCount === 1) return 0;
  return createHash("sha256").update(name).digest().readUInt32BE(0) % shardCount;
}

/** The shard counts of a directory's levels, ascending, from its root shard's markers. */
export function levelsFromMarkers(markerCounts: Iterable<number>): number[] {
  return [...new Set([1, ...markerCounts])].sort((a, b) => a - b);
}

/** Shard count of the level opened after `current`. */
export function nextLevel(current: number, fanout: number): number {
  return current * fanout;
}
