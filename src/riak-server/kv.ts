/**
 * KV object semantics: how a put, a delete and a get change and show an object, with vclocks,
 * siblings, last-write-wins and tombstones as Riak KV 3.2.2 has them
 * (../shared/riak-golden/02-kv-basics, 03-siblings-kvmulti, 04-lww).
 *
 * - allow_mult=true: a put keeps every sibling its vclock does not cover and adds its own
 *   (dotted version vectors: a stale vclock makes a sibling, the merged vclock resolves).
 * - allow_mult=false: the put replaces the value; the vclock still advances past both the
 *   stored one and the client's.
 * - last_write_wins: the put replaces the object wholesale; its vclock is the client's plus
 *   one (so a put without vclock gives the same vclock again, 04-lww lww-put-2-no-vclock).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { RpbContent, RpbPair } from "../riak/messages.ts";
import { erlangBinary, RiakRequestError } from "./errors.ts";
import { nameOf, type Sibling, type StoredObject } from "./keyspace.ts";
import { randomPoolBytes } from "./random_pool.ts";
import { newIncarnation } from "./vclock.ts";

/** Riak's default object.size.maximum, 50 MB (cuttlefish bytesize: 50 * 2^20). */
export const OBJECT_SIZE_MAXIMUM = 50 * 1024 * 1024;

/** How long a tombstone stays readable with deletedvclock: Riak's delete_mode default, 3 s. */
export const TOMBSTONE_KEEP_MS = 3000;

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random alphanumeric string: Riak's vtags have 21-22 characters, generated keys 27. */
export function randomToken(length: number): string {
  const bytes = randomPoolBytes(length);
  let token = "";
  for (const byte of bytes) token += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return token;
}

/**
 * A received value to keep: a small one is copied (as a view it would keep the whole chunk
 * the socket read alive, other frames included); one that is most of the buffer under it (a
 * large value, in the frame it was gathered into) is kept as it is, which saves copying every
 * byte of every large put once more. Received buffers are never written again.
 */
function kept(value: Uint8Array): Uint8Array {
  return value.byteLength * 2 >= value.buffer.byteLength ? value : value.slice();
}

/**
 * The size Riak checks against object.size.maximum. Riak measures the serialized object:
 * value plus metadata. Fitted to 09-errors put-55MB and put-50MiB-plus-1KiB, where it was the
 * value's length + 87 + the bucket's + the key's (Riak's own varies by a byte with vtag length).
 */
export function objectSize(valueLength: number, bucket: Uint8Array, key: Uint8Array): number {
  return valueLength + 87 + bucket.length + key.length;
}

/** Whether an object has a value to show (a tombstone has no siblings). */
export function isLive(object: StoredObject | undefined): object is StoredObject {
  return object !== undefined && object.siblings.length > 0;
}

/** Write rules of a bucket, from its props. */
export interface WriteRules {
  allowMult: boolean;
  lastWriteWins: boolean;
}

/**
 * The object after a put of `sibling` with a client vclock covering `clientCounter`
 * (0 without vclock). Never mutates `current`.
 */
export function putObject(
  current: StoredObject | undefined,
  clientCounter: number,
  content: RpbContent,
  rules: WriteRules,
): StoredObject {
  const base = current ?? { incarnation: newIncarnation(), counter: 0, siblings: [] };
  if (rules.lastWriteWins) {
    const counter = clientCounter + 1;
    return { incarnation: base.incarnation, counter, siblings: [{ dot: counter, content }] };
  }
  const counter = Math.max(base.counter, clientCounter) + 1;
  const kept: Sibling[] = rules.allowMult
    ? base.siblings.filter((sibling) => sibling.dot > clientCounter)
    : [];
  return { incarnation: base.incarnation, counter, siblings: [...kept, { dot: counter, content }] };
}

/**
 * The object after a delete with a vclock covering `clientCounter` (everything, without a
 * vclock): siblings the vclock does not cover stay; when none stays it is a tombstone.
 */
export function deleteObject(
  current: StoredObject,
  clientCounter: number,
  rules: WriteRules,
  now: number,
): StoredObject {
  const kept = rules.allowMult ? current.siblings.filter((s) => s.dot > clientCounter) : [];
  const object: StoredObject = {
    incarnation: current.incarnation,
    counter: Math.max(current.counter, clientCounter) + 1,
    siblings: kept,
  };
  if (kept.length === 0) object.deletedAt = now;
  return object;
}

/**
 * An owned copy of the content a client sent, as Riak stores it: validated and sorted index
 * entries, a fresh vtag and last_mod. Bytes are copied because decoded messages are views
 * into the receive buffer.
 *
 * @throws {RiakRequestError} for an index name without _bin/_int or an _int term that is not
 * an integer (05-2i put-bad-index-name, put-bad-int-value).
 */
export function storedContent(content: RpbContent, nowMs: number): RpbContent {
  const copy = (bytes: Uint8Array | undefined) => bytes?.slice();
  const stored: RpbContent = { value: kept(content.value) };
  if (content.content_type !== undefined) stored.content_type = copy(content.content_type);
  if (content.charset !== undefined) stored.charset = copy(content.charset);
  if (content.content_encoding !== undefined) {
    stored.content_encoding = copy(content.content_encoding);
  }
  stored.vtag = new TextEncoder().encode(randomToken(22));
  if (content.links !== undefined) {
    stored.links = content.links.map((link) => ({
      bucket: copy(link.bucket),
      key: copy(link.key),
      tag: copy(link.tag),
    }));
  }
  stored.last_mod = Math.floor(nowMs / 1000);
  stored.last_mod_usecs = (nowMs % 1000) * 1000;
  if (content.usermeta !== undefined) {
    stored.usermeta = content.usermeta.map((pair) => ({
      key: pair.key.slice(),
      // Riak stores the Erlang atom `undefined` for a pair sent without a value and answers
      // it as the text "undefined" (02-kv-basics get-meta): copied as is.
      value: pair.value?.slice() ?? new TextEncoder().encode("undefined"),
    }));
  }
  if (content.indexes !== undefined) stored.indexes = normalizedIndexes(content.indexes);
  return stored;
}

function normalizedIndexes(indexes: RpbPair[]): RpbPair[] | undefined {
  const entries = new Map<string, [string, string]>();
  for (const pair of indexes) {
    const name = nameOf(pair.key);
    let term = nameOf(pair.value ?? new Uint8Array(0));
    if (name.endsWith("_int")) {
      if (!/^[+-]?\d+$/.test(term)) {
        throw new RiakRequestError(
          `{precommit_fail,[{field_parsing_failed,{${erlangBinary(pair.key)},${
            erlangBinary(pair.value ?? new Uint8Array(0))
          }}}]}`,
        );
      }
      term = BigInt(term).toString();
    } else if (!name.endsWith("_bin")) {
      throw new RiakRequestError(
        `{precommit_fail,[{unknown_field_type,${erlangBinary(pair.key)}}]}`,
      );
    }
    entries.set(`${name}\0${term}`, [name, term]);
  }
  const sorted = [...entries.values()].sort(([an, at], [bn, bt]) =>
    an !== bn ? (an < bn ? -1 : 1) : compareTerms(an, at, bt)
  );
  return sorted.map(([name, term]) => ({
    key: new Uint8Array(Buffer.from(name, "latin1")),
    value: new Uint8Array(Buffer.from(term, "latin1")),
  }));
}

/** Orders two terms of an index: numerically for `_int` indexes, bytewise otherwise. */
export function compareTerms(index: string, a: string, b: string): number {
  if (index.endsWith("_int")) {
    const x = BigInt(a), y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
