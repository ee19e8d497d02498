/**
 * Conversions between the caller's values and the wire's: names and keys as text or bytes,
 * symbolic quorums, object contents.
 *
 * @module
 */
import type { RequestLabel } from "../errors.ts";
import {
  type MessageCodeValue,
  messageName,
  Quorum,
  type RpbContent,
  type RpbPair,
} from "../messages.ts";

/** A bucket, key, member or term: text (sent as UTF-8) or raw bytes. */
export type Bytes = string | Uint8Array;

/** Where an object lives. `type` is the bucket type; Riak assumes `default` when absent. */
export interface Location {
  type?: string;
  bucket: Bytes;
  key: Bytes;
}

/** A bucket (and its type). */
export interface BucketLocation {
  type?: string;
  bucket: Bytes;
}

/** A quorum: a number of replicas, or one of Riak's symbolic values. */
export type QuorumValue = number | keyof typeof Quorum;

/** A usermeta pair or a secondary-index entry, as UTF-8 text. */
export interface TextPair {
  key: string;
  value: string;
}

/** One sibling of an object, as read. */
export interface RiakContent {
  /** The value: a view into the received frame, not a copy. Empty for head-only reads. */
  value: Uint8Array;
  contentType?: string;
  charset?: string;
  contentEncoding?: string;
  vtag?: string;
  /** Riak's last-modified time in microseconds since the epoch. */
  lastModifiedUs?: number;
  usermeta?: TextPair[];
  /** Secondary-index entries: key = index name (`*_bin`/`*_int`), value = term. */
  indexes?: TextPair[];
  /** A tombstone sibling. */
  deleted?: boolean;
}

/** A value to store, with its metadata. */
export interface ContentToPut {
  /** Sent as is, without a copy into an intermediate buffer when large. */
  value: Uint8Array;
  contentType?: string;
  charset?: string;
  contentEncoding?: string;
  usermeta?: TextPair[];
  /** Secondary-index entries: key = index name ending in `_bin` or `_int`, value = term. */
  indexes?: TextPair[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text to UTF-8 bytes; bytes pass through. */
export function toBytes(value: Bytes): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** UTF-8 bytes to text. */
export function toText(value: Uint8Array): string {
  return decoder.decode(value);
}

/** A bucket type for the wire (absent stays absent: Riak's `default`). */
export function typeBytes(type: string | undefined): Uint8Array | undefined {
  return type === undefined ? undefined : encoder.encode(type);
}

/** A quorum for the wire. */
export function quorum(value: QuorumValue | undefined): number | undefined {
  if (value === undefined || typeof value === "number") return value;
  const symbolic = Quorum[value];
  if (symbolic === undefined) {
    throw new TypeError(`unknown quorum '${value}' (one, quorum, all, default)`);
  }
  return symbolic;
}

/** The label of a request on an object or bucket, for error texts. */
export function label(
  code: MessageCodeValue,
  where: { type?: string; bucket?: Bytes; key?: Bytes },
): RequestLabel {
  const show = (value: Bytes | undefined) =>
    value === undefined ? undefined : typeof value === "string" ? value : toText(value);
  return {
    name: messageName(code),
    type: where.type,
    bucket: show(where.bucket),
    key: show(where.key),
  };
}

/**
 * UTF-8 of usermeta and index names and of content types: a handful of distinct strings that
 * repeat on every put, encoded once. The bytes are shared, which is safe as the encoder only
 * reads them.
 */
const encodedNames = new Map<string, Uint8Array>();
/** Past this many distinct names the cache starts over (it only saves encoding). */
const ENCODED_NAMES_LIMIT = 1024;

function nameToBytes(name: string): Uint8Array {
  let bytes = encodedNames.get(name);
  if (bytes === undefined) {
    if (encodedNames.size >= ENCODED_NAMES_LIMIT) encodedNames.clear();
    bytes = encoder.encode(name);
    encodedNames.set(name, bytes);
  }
  return bytes;
}

function pairsToWire(pairs: TextPair[] | undefined): RpbPair[] | undefined {
  return pairs?.map((pair) => ({
    key: nameToBytes(pair.key),
    value: encoder.encode(pair.value),
  }));
}

function pairsFromWire(pairs: RpbPair[] | undefined): TextPair[] | undefined {
  return pairs?.map((pair) => ({
    key: toText(pair.key),
    value: pair.value ? toText(pair.value) : "",
  }));
}

/** A content to put, for the wire. */
export function contentToWire(content: ContentToPut): RpbContent {
  return {
    value: content.value,
    content_type: content.contentType === undefined ? undefined : nameToBytes(content.contentType),
    charset: content.charset === undefined ? undefined : encoder.encode(content.charset),
    content_encoding: content.contentEncoding === undefined
      ? undefined
      : encoder.encode(content.contentEncoding),
    usermeta: pairsToWire(content.usermeta),
    indexes: pairsToWire(content.indexes),
  };
}

/** A content read from the wire. */
export function contentFromWire(content: RpbContent): RiakContent {
  const result: RiakContent = { value: content.value };
  if (content.content_type !== undefined) result.contentType = toText(content.content_type);
  if (content.charset !== undefined) result.charset = toText(content.charset);
  if (content.content_encoding !== undefined) {
    result.contentEncoding = toText(content.content_encoding);
  }
  if (content.vtag !== undefined) result.vtag = toText(content.vtag);
  if (content.last_mod !== undefined) {
    result.lastModifiedUs = content.last_mod * 1_000_000 + (content.last_mod_usecs ?? 0);
  }
  if (content.usermeta !== undefined) result.usermeta = pairsFromWire(content.usermeta);
  if (content.indexes !== undefined) result.indexes = pairsFromWire(content.indexes);
  if (content.deleted) result.deleted = true;
  return result;
}
