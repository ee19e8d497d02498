/**
 * Secondary-index queries and the grouping of streamed answers, as Riak KV 3.2.2 answers
 * them (../shared/riak-golden/05-2i.json, 06-listing.json).
 *
 * Results are ordered by (term, key) — numerically for `_int` — which is the order paging
 * walks; `max_results` cuts a page and, when the page is full, a continuation names its last
 * entry (Riak sends one whenever the page is full, even if nothing follows).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { RpbIndexReq, RpbIndexResp, RpbPair } from "../riak/messages.ts";
import { crashError, erlangBinary, RiakRequestError } from "./errors.ts";
import { bytesOf, nameOf, type StoredObject } from "./keyspace.ts";
import { compareTerms, isLive } from "./kv.ts";

/** Most items in one streamed frame. */
const MAX_ITEMS_PER_FRAME = 1000;
/** Streamed answers are split like Riak's, which streams per vnode: by key hash into 8 groups. */
const PSEUDO_VNODES = 8;

interface IndexEntry {
  term: string;
  key: string;
}

/**
 * Answers an index query over one bucket's objects: the frames to send, in order. With
 * `stream` the last frame has `done` (and the continuation, if any).
 *
 * @throws {RiakRequestError} for a range without both ends, or a crash (closing the
 * connection) for an `_int` term that is not an integer, as Riak does.
 */
export function queryIndex(
  request: RpbIndexReq,
  objects: Map<string, StoredObject>,
): RpbIndexResp[] {
  const index = nameOf(request.index);
  const isRange = request.qtype === "range";
  let low: string, high: string;
  if (isRange) {
    if (request.range_min === undefined || request.range_max === undefined) {
      const show = (b: Uint8Array | undefined) => (b === undefined ? "undefined" : erlangBinary(b));
      throw new RiakRequestError(
        `Invalid range query: ${show(request.range_min)} -> ${show(request.range_max)}`,
      );
    }
    low = checkedTerm(index, request.range_min);
    high = checkedTerm(index, request.range_max);
  } else {
    low = high = checkedTerm(index, request.key ?? new Uint8Array(0));
  }
  const entries = matchingEntries(index, isRange, low, high, objects);
  entries.sort((a, b) =>
    compareTerms(index, a.term, b.term) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );

  let page = entries;
  if (request.continuation !== undefined) {
    const after = decodeContinuation(request.continuation);
    if (after !== undefined) {
      page = page.filter((entry) =>
        (compareTerms(index, entry.term, after.term) ||
          (entry.key > after.key ? 1 : entry.key < after.key ? -1 : 0)) > 0
      );
    }
  }
  let continuation: Uint8Array | undefined;
  const max = request.max_results;
  if (max !== undefined && max > 0 && page.length >= max) {
    page = page.slice(0, max);
    continuation = encodeContinuation(page[page.length - 1]);
  }
  // Riak returns terms only for range queries (an eq query's term is the one asked for).
  const withTerms = request.return_terms === true && isRange;
  const pages = request.stream === true ? groupForStreaming(page, (e) => e.key) : [page];
  const frames: RpbIndexResp[] = [];
  for (const group of pages) {
    if (group.length === 0 && request.stream === true) continue;
    const frame: RpbIndexResp = {};
    if (group.length > 0) {
      if (withTerms) {
        frame.results = group.map((e): RpbPair => ({
          key: bytesOf(e.term),
          value: bytesOf(e.key),
        }));
      } else {
        frame.keys = uniqueKeys(group).map(bytesOf);
      }
    }
    frames.push(frame);
  }
  if (request.stream === true) {
    frames.push(continuation === undefined ? { done: true } : { continuation, done: true });
  } else if (continuation !== undefined) {
    frames[0].continuation = continuation;
  }
  return frames;
}

function checkedTerm(index: string, term: Uint8Array): string {
  const text = nameOf(term);
  if (index.endsWith("_int") && !index.startsWith("$")) {
    if (!/^[+-]?\d+$/.test(text)) {
      // Riak crashes here (riak_api_pb_server:send_error has no clause for it) and closes.
      throw crashError(
        `function_clause:[{riak_api_pb_server,send_error,[{field_parsing_failed,{${
          erlangBinary(bytesOf(index))
        },${erlangBinary(term)}}}]}]`,
      );
    }
    return BigInt(text).toString();
  }
  return text;
}

function matchingEntries(
  index: string,
  isRange: boolean,
  low: string,
  high: string,
  objects: Map<string, StoredObject>,
): IndexEntry[] {
  const entries: IndexEntry[] = [];
  const inRange = (term: string) =>
    compareTerms(index, term, low) >= 0 && compareTerms(index, term, high) <= 0;
  for (const [key, object] of objects) {
    if (!isLive(object)) continue;
    if (index === "$bucket") {
      entries.push({ term: key, key });
      continue;
    }
    if (index === "$key") {
      if (isRange ? inRange(key) : key === low) entries.push({ term: key, key });
      continue;
    }
    const seen = new Set<string>();
    for (const sibling of object.siblings) {
      for (const pair of sibling.content?.indexes ?? []) {
        if (nameOf(pair.key) !== index) continue;
        const term = nameOf(pair.value ?? new Uint8Array(0));
        if (seen.has(term) || !inRange(term)) continue;
        seen.add(term);
        entries.push({ term, key });
      }
    }
  }
  return entries;
}

function uniqueKeys(entries: IndexEntry[]): string[] {
  return [...new Set(entries.map((entry) => entry.key))];
}

function encodeContinuation(last: IndexEntry): Uint8Array {
  return new TextEncoder().encode(
    Buffer.from(JSON.stringify([last.term, last.key]), "latin1").toString("base64"),
  );
}

function decodeContinuation(continuation: Uint8Array): IndexEntry | undefined {
  try {
    const [term, key] = JSON.parse(Buffer.from(nameOf(continuation), "base64").toString("latin1"));
    if (typeof term === "string" && typeof key === "string") return { term, key };
  } catch {
    // a continuation that is not ours restarts from the beginning
  }
  return undefined;
}

/**
 * Splits items into the frames of a streamed answer: grouped by a hash of their key, as if
 * each of 8 vnodes answered its share, at most {@link MAX_ITEMS_PER_FRAME} per frame. Empty
 * groups are dropped.
 */
export function groupForStreaming<T>(items: T[], keyOf: (item: T) => string): T[][] {
  const groups: T[][] = Array.from({ length: PSEUDO_VNODES }, () => []);
  for (const item of items) groups[hashOf(keyOf(item)) % PSEUDO_VNODES].push(item);
  const frames: T[][] = [];
  for (const group of groups) {
    for (let at = 0; at < group.length; at += MAX_ITEMS_PER_FRAME) {
      frames.push(group.slice(at, at + MAX_ITEMS_PER_FRAME));
    }
  }
  return frames;
}

function hashOf(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}
