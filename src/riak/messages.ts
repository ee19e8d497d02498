/**
 * Riak protocol-buffers messages: the message codes and one TypeScript interface per message.
 *
 * Field names are exactly the proto field names (snake_case) of basho/riak_pb `riak.proto`,
 * `riak_kv.proto` and `riak_dt.proto` at the ref Riak KV 3.2.2 pins, so a transcript, a
 * protocol trace and the Erlang sources all read the same. Mapping rules:
 * `bytes` -> `Uint8Array` (views into the received frame, never copied), 32-bit integers ->
 * `number`, 64-bit integers -> {@link Int64}, `bool` -> `boolean`, enums -> their proto names
 * as strings, repeated -> arrays. proto2 presence is kept: a field absent on the wire is
 * `undefined`, and an absent repeated field is `undefined` (not `[]`).
 *
 * @module
 */

/** Message codes of the frame's code byte (basho/riak_pb `riak_pb_messages.csv`). */
export const MessageCode = {
  ErrorResp: 0,
  PingReq: 1,
  PingResp: 2,
  GetClientIdReq: 3,
  GetClientIdResp: 4,
  SetClientIdReq: 5,
  SetClientIdResp: 6,
  GetServerInfoReq: 7,
  GetServerInfoResp: 8,
  GetReq: 9,
  GetResp: 10,
  PutReq: 11,
  PutResp: 12,
  DelReq: 13,
  DelResp: 14,
  ListBucketsReq: 15,
  ListBucketsResp: 16,
  ListKeysReq: 17,
  ListKeysResp: 18,
  GetBucketReq: 19,
  GetBucketResp: 20,
  SetBucketReq: 21,
  SetBucketResp: 22,
  IndexReq: 25,
  IndexResp: 26,
  ResetBucketReq: 29,
  ResetBucketResp: 30,
  GetBucketTypeReq: 31,
  SetBucketTypeReq: 32,
  CounterUpdateReq: 50,
  CounterUpdateResp: 51,
  CounterGetReq: 52,
  CounterGetResp: 53,
  DtFetchReq: 80,
  DtFetchResp: 81,
  DtUpdateReq: 82,
  DtUpdateResp: 83,
  AuthReq: 253,
  AuthResp: 254,
  StartTls: 255,
} as const;

/** One of the numeric values of {@link MessageCode}. */
export type MessageCodeValue = typeof MessageCode[keyof typeof MessageCode];

/**
 * A 64-bit integer (proto `sint64`/`uint64`): a `number` whenever it is a safe integer,
 * a `bigint` only beyond 2^53 (decoders never produce a bigint for a safe value).
 */
export type Int64 = number | bigint;

/** Symbolic quorum values (riak_pb `riak_pb_kv_codec.hrl`): uint32 sentinels Riak understands. */
export const Quorum = {
  one: 4294967294,
  quorum: 4294967293,
  all: 4294967292,
  default: 4294967291,
} as const;

/** A message without fields (PingReq, DelResp, StartTls, ...): only its code is sent. */
// deno-lint-ignore ban-types
export type Empty = {};

/** Error response, possible for any request. `errcode` is 0 for nearly every Riak error. */
export interface RpbErrorResp {
  errmsg: Uint8Array;
  errcode: number;
}

/** The node name and version of the node that answered. */
export interface RpbGetServerInfoResp {
  node?: Uint8Array;
  server_version?: Uint8Array;
}

/** A key/value pair: user metadata, secondary-index entries, index query results. */
export interface RpbPair {
  key: Uint8Array;
  value?: Uint8Array;
}

/** The client id in use on this connection (legacy, vclocks are per vnode since Riak 1.4). */
export interface RpbGetClientIdResp {
  client_id: Uint8Array;
}

/** Sets the client id of this connection (legacy). */
export interface RpbSetClientIdReq {
  client_id: Uint8Array;
}

/** Fetch one object. */
export interface RpbGetReq {
  bucket: Uint8Array;
  key: Uint8Array;
  r?: number;
  pr?: number;
  basic_quorum?: boolean;
  notfound_ok?: boolean;
  /** Answer `unchanged` instead of the object when its vclock still equals this one. */
  if_modified?: Uint8Array;
  /** Return everything but the values. */
  head?: boolean;
  /** Return the tombstone's vclock when the object was deleted. */
  deletedvclock?: boolean;
  timeout?: number;
  sloppy_quorum?: boolean;
  n_val?: number;
  /** Bucket type; Riak assumes `default` when absent. */
  type?: Uint8Array;
}

/** One sibling of an object: its value and metadata. */
export interface RpbContent {
  value: Uint8Array;
  content_type?: Uint8Array;
  charset?: Uint8Array;
  content_encoding?: Uint8Array;
  vtag?: Uint8Array;
  links?: RpbLink[];
  last_mod?: number;
  last_mod_usecs?: number;
  usermeta?: RpbPair[];
  /** Secondary-index entries: key is the index name (`*_bin`/`*_int`), value the term. */
  indexes?: RpbPair[];
  deleted?: boolean;
}

/** A link to another object (legacy link walking). */
export interface RpbLink {
  bucket?: Uint8Array;
  key?: Uint8Array;
  tag?: Uint8Array;
}

/** Answer to a get: no content and no vclock means not found. */
export interface RpbGetResp {
  content?: RpbContent[];
  vclock?: Uint8Array;
  unchanged?: boolean;
}

/** Store one object. */
export interface RpbPutReq {
  bucket: Uint8Array;
  /** Absent: the server generates a key and answers it in {@link RpbPutResp.key}. */
  key?: Uint8Array;
  vclock?: Uint8Array;
  content: RpbContent;
  w?: number;
  dw?: number;
  return_body?: boolean;
  pw?: number;
  if_not_modified?: boolean;
  if_none_match?: boolean;
  return_head?: boolean;
  timeout?: number;
  asis?: boolean;
  sloppy_quorum?: boolean;
  n_val?: number;
  type?: Uint8Array;
  node_confirms?: number;
}

/** Answer to a put: contents and vclock only with return_body/return_head. */
export interface RpbPutResp {
  content?: RpbContent[];
  vclock?: Uint8Array;
  key?: Uint8Array;
}

/** Delete one object. */
export interface RpbDelReq {
  bucket: Uint8Array;
  key: Uint8Array;
  rw?: number;
  vclock?: Uint8Array;
  r?: number;
  w?: number;
  pr?: number;
  pw?: number;
  dw?: number;
  timeout?: number;
  sloppy_quorum?: boolean;
  n_val?: number;
  type?: Uint8Array;
}

/** List buckets (walks every key of the cluster: not for production paths). */
export interface RpbListBucketsReq {
  timeout?: number;
  stream?: boolean;
  type?: Uint8Array;
}

/** One frame of a list-buckets answer; the last one has `done`. */
export interface RpbListBucketsResp {
  buckets?: Uint8Array[];
  done?: boolean;
}

/** List the keys of a bucket (walks every key of the cluster: not for production paths). */
export interface RpbListKeysReq {
  bucket: Uint8Array;
  timeout?: number;
  type?: Uint8Array;
}

/** One frame of a list-keys answer; the last one has `done`. */
export interface RpbListKeysResp {
  keys?: Uint8Array[];
  done?: boolean;
}

/** Secondary-index query kinds. */
export type IndexQueryType = "eq" | "range";

/** Secondary-index query. */
export interface RpbIndexReq {
  bucket: Uint8Array;
  index: Uint8Array;
  qtype: IndexQueryType;
  /** The term for an `eq` query. */
  key?: Uint8Array;
  range_min?: Uint8Array;
  range_max?: Uint8Array;
  return_terms?: boolean;
  stream?: boolean;
  max_results?: number;
  continuation?: Uint8Array;
  timeout?: number;
  type?: Uint8Array;
  term_regex?: Uint8Array;
  pagination_sort?: boolean;
  cover_context?: Uint8Array;
  return_body?: boolean;
}

/** One frame of an index answer (streamed ones end with `done`). */
export interface RpbIndexResp {
  keys?: Uint8Array[];
  /** With return_terms: key = term, value = object key. */
  results?: RpbPair[];
  continuation?: Uint8Array;
  done?: boolean;
}

/** A module/function pair (commit hooks, key hashing). */
export interface RpbModFun {
  module: Uint8Array;
  function: Uint8Array;
}

/** A commit hook: an Erlang modfun or a named JavaScript function. */
export interface RpbCommitHook {
  modfun?: RpbModFun;
  name?: Uint8Array;
}

/** Replication modes of {@link RpbBucketProps.repl}. */
export type RpbReplMode = "FALSE" | "REALTIME" | "FULLSYNC" | "TRUE";

/** Bucket (or bucket type) properties. */
export interface RpbBucketProps {
  n_val?: number;
  allow_mult?: boolean;
  last_write_wins?: boolean;
  precommit?: RpbCommitHook[];
  has_precommit?: boolean;
  postcommit?: RpbCommitHook[];
  has_postcommit?: boolean;
  chash_keyfun?: RpbModFun;
  linkfun?: RpbModFun;
  old_vclock?: number;
  young_vclock?: number;
  big_vclock?: number;
  small_vclock?: number;
  pr?: number;
  r?: number;
  w?: number;
  pw?: number;
  dw?: number;
  rw?: number;
  basic_quorum?: boolean;
  notfound_ok?: boolean;
  backend?: Uint8Array;
  search?: boolean;
  repl?: RpbReplMode;
  search_index?: Uint8Array;
  /** CRDT type of the bucket type: `set`, `map`, `counter`, `hll`, `gset`. */
  datatype?: Uint8Array;
  consistent?: boolean;
  write_once?: boolean;
  hll_precision?: number;
}

/** Read a bucket's properties. */
export interface RpbGetBucketReq {
  bucket: Uint8Array;
  type?: Uint8Array;
}

/** A bucket's properties. */
export interface RpbGetBucketResp {
  props: RpbBucketProps;
}

/** Change a bucket's properties. */
export interface RpbSetBucketReq {
  bucket: Uint8Array;
  props: RpbBucketProps;
  type?: Uint8Array;
}

/** Reset a bucket's properties to its type's. */
export interface RpbResetBucketReq {
  bucket: Uint8Array;
  type?: Uint8Array;
}

/** Read a bucket type's properties (answered by {@link RpbGetBucketResp}). */
export interface RpbGetBucketTypeReq {
  type: Uint8Array;
}

/** Change a bucket type's properties (answered by SetBucketResp). */
export interface RpbSetBucketTypeReq {
  type: Uint8Array;
  props: RpbBucketProps;
}

/** Legacy (Riak 1.4) counter increment in a default-type bucket with allow_mult. */
export interface RpbCounterUpdateReq {
  bucket: Uint8Array;
  key: Uint8Array;
  amount: Int64;
  w?: number;
  dw?: number;
  pw?: number;
  returnvalue?: boolean;
  node_confirms?: number;
}

/** Legacy counter update answer. */
export interface RpbCounterUpdateResp {
  value?: Int64;
}

/** Legacy counter read. */
export interface RpbCounterGetReq {
  bucket: Uint8Array;
  key: Uint8Array;
  r?: number;
  pr?: number;
  basic_quorum?: boolean;
  notfound_ok?: boolean;
}

/** Legacy counter value. */
export interface RpbCounterGetResp {
  value?: Int64;
}

/** Authenticate after StartTls. */
export interface RpbAuthReq {
  user: Uint8Array;
  password: Uint8Array;
}

/** Types a map field can hold. */
export type MapFieldType = "COUNTER" | "SET" | "REGISTER" | "FLAG" | "MAP";

/** A map field's identity: its name and type (same name, other type = another field). */
export interface MapField {
  name: Uint8Array;
  type: MapFieldType;
}

/** One field of a fetched map and its value (the member matching the field's type). */
export interface MapEntry {
  field: MapField;
  counter_value?: Int64;
  set_value?: Uint8Array[];
  register_value?: Uint8Array;
  flag_value?: boolean;
  map_value?: MapEntry[];
}

/** Fetch a CRDT. */
export interface DtFetchReq {
  bucket: Uint8Array;
  key: Uint8Array;
  /** Bucket type (required for data types). */
  type: Uint8Array;
  r?: number;
  pr?: number;
  basic_quorum?: boolean;
  notfound_ok?: boolean;
  timeout?: number;
  sloppy_quorum?: boolean;
  n_val?: number;
  /** Riak's default is true: the answer carries the opaque context. */
  include_context?: boolean;
}

/** A fetched CRDT's value (the member matching the data type). */
export interface DtValue {
  counter_value?: Int64;
  set_value?: Uint8Array[];
  map_value?: MapEntry[];
  hll_value?: Int64;
  gset_value?: Uint8Array[];
}

/** Data types of {@link DtFetchResp.type}. */
export type DtDataType = "COUNTER" | "SET" | "MAP" | "HLL" | "GSET";

/** Answer to a CRDT fetch: no `value` means not found. */
export interface DtFetchResp {
  context?: Uint8Array;
  type: DtDataType;
  value?: DtValue;
}

/** Counter increment (absent `increment` means +1). */
export interface CounterOp {
  increment?: Int64;
}

/** Set additions and removals (removals need the context). */
export interface SetOp {
  adds?: Uint8Array[];
  removes?: Uint8Array[];
}

/** HyperLogLog additions. */
export interface HllOp {
  adds?: Uint8Array[];
}

/** Grow-only set additions. */
export interface GSetOp {
  adds?: Uint8Array[];
}

/** Flag operations inside a map. */
export type FlagOp = "ENABLE" | "DISABLE";

/** An update of one map field (the member matching the field's type). */
export interface MapUpdate {
  field: MapField;
  counter_op?: CounterOp;
  set_op?: SetOp;
  /** The new register value. */
  register_op?: Uint8Array;
  flag_op?: FlagOp;
  map_op?: MapOp;
}

/** Map field removals (need the context) and updates. */
export interface MapOp {
  removes?: MapField[];
  updates?: MapUpdate[];
}

/** The operation of a CRDT update (the member matching the bucket type's datatype). */
export interface DtOp {
  counter_op?: CounterOp;
  set_op?: SetOp;
  map_op?: MapOp;
  hll_op?: HllOp;
  gset_op?: GSetOp;
}

/** Update a CRDT. */
export interface DtUpdateReq {
  bucket: Uint8Array;
  /** Absent: the server generates a key and answers it in {@link DtUpdateResp.key}. */
  key?: Uint8Array;
  type: Uint8Array;
  context?: Uint8Array;
  op: DtOp;
  w?: number;
  dw?: number;
  pw?: number;
  return_body?: boolean;
  timeout?: number;
  sloppy_quorum?: boolean;
  n_val?: number;
  include_context?: boolean;
}

/** Answer to a CRDT update: the value only with return_body. */
export interface DtUpdateResp {
  key?: Uint8Array;
  context?: Uint8Array;
  counter_value?: Int64;
  set_value?: Uint8Array[];
  map_value?: MapEntry[];
  hll_value?: Int64;
  gset_value?: Uint8Array[];
}

/** The message type carried by each code: what `encodeMessage`/`decodeMessage` take and give. */
export interface MessageByCode {
  0: RpbErrorResp;
  1: Empty;
  2: Empty;
  3: Empty;
  4: RpbGetClientIdResp;
  5: RpbSetClientIdReq;
  6: Empty;
  7: Empty;
  8: RpbGetServerInfoResp;
  9: RpbGetReq;
  10: RpbGetResp;
  11: RpbPutReq;
  12: RpbPutResp;
  13: RpbDelReq;
  14: Empty;
  15: RpbListBucketsReq;
  16: RpbListBucketsResp;
  17: RpbListKeysReq;
  18: RpbListKeysResp;
  19: RpbGetBucketReq;
  20: RpbGetBucketResp;
  21: RpbSetBucketReq;
  22: Empty;
  25: RpbIndexReq;
  26: RpbIndexResp;
  29: RpbResetBucketReq;
  30: Empty;
  31: RpbGetBucketTypeReq;
  32: RpbSetBucketTypeReq;
  50: RpbCounterUpdateReq;
  51: RpbCounterUpdateResp;
  52: RpbCounterGetReq;
  53: RpbCounterGetResp;
  80: DtFetchReq;
  81: DtFetchResp;
  82: DtUpdateReq;
  83: DtUpdateResp;
  253: RpbAuthReq;
  254: Empty;
  255: Empty;
}

/** The proto message name of each code, for errors and traces (`RpbGetReq`, `DtFetchResp`). */
export const MESSAGE_NAMES: Readonly<Record<MessageCodeValue, string>> = {
  0: "RpbErrorResp",
  1: "RpbPingReq",
  2: "RpbPingResp",
  3: "RpbGetClientIdReq",
  4: "RpbGetClientIdResp",
  5: "RpbSetClientIdReq",
  6: "RpbSetClientIdResp",
  7: "RpbGetServerInfoReq",
  8: "RpbGetServerInfoResp",
  9: "RpbGetReq",
  10: "RpbGetResp",
  11: "RpbPutReq",
  12: "RpbPutResp",
  13: "RpbDelReq",
  14: "RpbDelResp",
  15: "RpbListBucketsReq",
  16: "RpbListBucketsResp",
  17: "RpbListKeysReq",
  18: "RpbListKeysResp",
  19: "RpbGetBucketReq",
  20: "RpbGetBucketResp",
  21: "RpbSetBucketReq",
  22: "RpbSetBucketResp",
  25: "RpbIndexReq",
  26: "RpbIndexResp",
  29: "RpbResetBucketReq",
  30: "RpbResetBucketResp",
  31: "RpbGetBucketTypeReq",
  32: "RpbSetBucketTypeReq",
  50: "RpbCounterUpdateReq",
  51: "RpbCounterUpdateResp",
  52: "RpbCounterGetReq",
  53: "RpbCounterGetResp",
  80: "DtFetchReq",
  81: "DtFetchResp",
  82: "DtUpdateReq",
  83: "DtUpdateResp",
  253: "RpbAuthReq",
  254: "RpbAuthResp",
  255: "RpbStartTls",
};

/** The name of a message code, or `code N` for one this client does not know. */
export function messageName(code: number): string {
  return (MESSAGE_NAMES as Record<number, string>)[code] ?? `code ${code}`;
}
