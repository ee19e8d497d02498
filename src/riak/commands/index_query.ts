/**
 * Secondary-index (2i) queries: exact match or range, streamed, with paging through
 * `maxResults` + `continuation`. Works only with the leveled, LevelDB and memory backends.
 * Integer indexes (`*_int`) take numbers; their terms travel as decimal text.
 *
 * @module
 */
import { type IndexQueryType, MessageCode } from "../messages.ts";
import { type StreamCommand, streamCommand } from "./command.ts";
import { type BucketLocation, type Bytes, label, toBytes, typeBytes } from "./values.ts";

/** A 2i query: `match` for an exact term, or `min` + `max` for an inclusive range. */
export interface IndexQuery extends BucketLocation {
  /** Index name (`email_bin`, `age_int`) or the special `$bucket` / `$key`. */
  index: string;
  match?: Bytes | number;
  min?: Bytes | number;
  max?: Bytes | number;
  /** Return the matching term with each key (range queries). */
  returnTerms?: boolean;
  /** Page size; the last frame then carries a continuation when more results exist. */
  maxResults?: number;
  /** The continuation of the previous page. */
  continuation?: Uint8Array;
  /** Only terms matching this regular expression (range queries on `_bin`). */
  termRegex?: string;
  serverTimeoutMs?: number;
}

/** One result: the object key, and its term when `returnTerms` was asked. */
export interface IndexEntry {
  key: Uint8Array;
  term?: Uint8Array;
}

/** One streamed batch of results; the last one may carry the next page's continuation. */
export interface IndexBatch {
  entries: IndexEntry[];
  continuation?: Uint8Array;
}

function term(value: Bytes | number | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  return toBytes(typeof value === "number" ? String(value) : value);
}

/** Builds a streamed 2i query. */
export function indexQueryCommand(query: IndexQuery): StreamCommand<IndexBatch> {
  const qtype: IndexQueryType = query.match !== undefined ? "eq" : "range";
  if (qtype === "range" && (query.min === undefined || query.max === undefined)) {
    throw new TypeError(`index query on ${query.index}: give match, or both min and max`);
  }
  return streamCommand({
    code: MessageCode.IndexReq,
    message: {
      bucket: toBytes(query.bucket),
      index: toBytes(query.index),
      qtype,
      key: term(query.match),
      range_min: term(query.min),
      range_max: term(query.max),
      return_terms: query.returnTerms,
      stream: true,
      max_results: query.maxResults,
      continuation: query.continuation,
      timeout: query.serverTimeoutMs,
      type: typeBytes(query.type),
      term_regex: query.termRegex === undefined ? undefined : toBytes(query.termRegex),
    },
    responseCode: MessageCode.IndexResp,
    label: label(MessageCode.IndexReq, query),
    isLast: (frame) => frame.done === true,
    parse: (frame) => {
      const entries: IndexEntry[] = (frame.keys ?? []).map((key) => ({ key }));
      for (const pair of frame.results ?? []) {
        entries.push({ key: pair.value ?? new Uint8Array(0), term: pair.key });
      }
      return { entries, continuation: frame.continuation };
    },
  });
}
