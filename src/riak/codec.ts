/**
 * Encodes and decodes Riak protocol-buffers message bodies.
 *
 * Each message is described once, by hand, as a table of its proto fields (number, name,
 * kind); one encoder and one decoder walk those tables with @bufbuild/protobuf's wire
 * reader/writer. There is no code generation and no .proto file at run time. Fields are
 * written in field-number order, which is what Riak (Erlang gpb) does, so encodings are
 * byte-exact with Riak's. Unknown fields are skipped on decode; decoded `bytes` are views
 * into the body, never copies.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./codec.ts";
 * import { MessageCode } from "./messages.ts";
 * const body = encodeMessage(MessageCode.GetReq, { bucket, key });
 * const resp = decodeMessage(MessageCode.GetResp, answerBody);
 * ```
 *
 * @module
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type MessageByCode, type MessageCodeValue, messageName } from "./messages.ts";

/** A body that does not decode, a message that cannot be encoded, or an unknown code. */
export class CodecError extends Error {
  /** The message code involved. */
  readonly code: number;
  constructor(code: number, detail: string, options?: ErrorOptions) {
    super(`${messageName(code)}: ${detail}`, options);
    this.name = "CodecError";
    this.code = code;
  }
}

type ScalarKind = "bytes" | "uint32" | "bool" | "sint64" | "uint64";

interface FieldSpec {
  readonly no: number;
  readonly name: string;
  readonly kind: ScalarKind | "enum" | "message";
  readonly repeated: boolean;
  /** Enum names by number (kind "enum"). */
  readonly enumNames?: readonly (string | undefined)[];
  /** Enum numbers by name (kind "enum"). */
  readonly enumNumbers?: ReadonlyMap<string, number>;
  /** The nested message (kind "message"); a thunk because messages nest recursively. */
  readonly schema?: () => Schema;
}

/** One message's fields, sorted by number, with a lookup by number for decoding. */
class Schema {
  readonly fields: readonly FieldSpec[];
  readonly byNumber: readonly (FieldSpec | undefined)[];
  constructor(fields: FieldSpec[]) {
    this.fields = [...fields].sort((a, b) => a.no - b.no);
    const byNumber: (FieldSpec | undefined)[] = [];
    for (const field of this.fields) byNumber[field.no] = field;
    this.byNumber = byNumber;
  }
}

// Field builders: they keep the tables below as short as the .proto lines they mirror.
function scalar(kind: ScalarKind, repeated: boolean) {
  return (no: number, name: string): FieldSpec => ({ no, name, kind, repeated });
}
const bytes = scalar("bytes", false);
const bytesList = scalar("bytes", true);
const uint32 = scalar("uint32", false);
const bool = scalar("bool", false);
const sint64 = scalar("sint64", false);
const uint64 = scalar("uint64", false);

function enumField(no: number, name: string, values: Record<string, number>): FieldSpec {
  const enumNames: (string | undefined)[] = [];
  for (const [key, value] of Object.entries(values)) enumNames[value] = key;
  return {
    no,
    name,
    kind: "enum",
    repeated: false,
    enumNames,
    enumNumbers: new Map(Object.entries(values)),
  };
}
function message(no: number, name: string, schema: () => Schema, repeated = false): FieldSpec {
  return { no, name, kind: "message", repeated, schema };
}
function messageList(no: number, name: string, schema: () => Schema): FieldSpec {
  return message(no, name, schema, true);
}

const EMPTY = new Schema([]);

// riak.proto
const RpbErrorResp = new Schema([bytes(1, "errmsg"), uint32(2, "errcode")]);
const RpbGetServerInfoResp = new Schema([bytes(1, "node"), bytes(2, "server_version")]);
const RpbPair = new Schema([bytes(1, "key"), bytes(2, "value")]);
const RpbGetBucketReq = new Schema([bytes(1, "bucket"), bytes(2, "type")]);
const RpbModFun = new Schema([bytes(1, "module"), bytes(2, "function")]);
const RpbCommitHook = new Schema([message(1, "modfun", () => RpbModFun), bytes(2, "name")]);
const RpbBucketProps = new Schema([
  uint32(1, "n_val"),
  bool(2, "allow_mult"),
  bool(3, "last_write_wins"),
  messageList(4, "precommit", () => RpbCommitHook),
  bool(5, "has_precommit"),
  messageList(6, "postcommit", () => RpbCommitHook),
  bool(7, "has_postcommit"),
  message(8, "chash_keyfun", () => RpbModFun),
  message(9, "linkfun", () => RpbModFun),
  uint32(10, "old_vclock"),
  uint32(11, "young_vclock"),
  uint32(12, "big_vclock"),
  uint32(13, "small_vclock"),
  uint32(14, "pr"),
  uint32(15, "r"),
  uint32(16, "w"),
  uint32(17, "pw"),
  uint32(18, "dw"),
  uint32(19, "rw"),
  bool(20, "basic_quorum"),
  bool(21, "notfound_ok"),
  bytes(22, "backend"),
  bool(23, "search"),
  enumField(24, "repl", { FALSE: 0, REALTIME: 1, FULLSYNC: 2, TRUE: 3 }),
  bytes(25, "search_index"),
  bytes(26, "datatype"),
  bool(27, "consistent"),
  bool(28, "write_once"),
  uint32(29, "hll_precision"),
]);
const RpbGetBucketResp = new Schema([message(1, "props", () => RpbBucketProps)]);
const RpbSetBucketReq = new Schema([
  bytes(1, "bucket"),
  message(2, "props", () => RpbBucketProps),
  bytes(3, "type"),
]);
const RpbResetBucketReq = new Schema([bytes(1, "bucket"), bytes(2, "type")]);
const RpbGetBucketTypeReq = new Schema([bytes(1, "type")]);
const RpbSetBucketTypeReq = new Schema([
  bytes(1, "type"),
  message(2, "props", () => RpbBucketProps),
]);
const RpbAuthReq = new Schema([bytes(1, "user"), bytes(2, "password")]);

// riak_kv.proto
const RpbClientId = new Schema([bytes(1, "client_id")]);
const RpbGetReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  uint32(3, "r"),
  uint32(4, "pr"),
  bool(5, "basic_quorum"),
  bool(6, "notfound_ok"),
  bytes(7, "if_modified"),
  bool(8, "head"),
  bool(9, "deletedvclock"),
  uint32(10, "timeout"),
  bool(11, "sloppy_quorum"),
  uint32(12, "n_val"),
  bytes(13, "type"),
]);
const RpbLink = new Schema([bytes(1, "bucket"), bytes(2, "key"), bytes(3, "tag")]);
const RpbContent = new Schema([
  bytes(1, "value"),
  bytes(2, "content_type"),
  bytes(3, "charset"),
  bytes(4, "content_encoding"),
  bytes(5, "vtag"),
  messageList(6, "links", () => RpbLink),
  uint32(7, "last_mod"),
  uint32(8, "last_mod_usecs"),
  messageList(9, "usermeta", () => RpbPair),
  messageList(10, "indexes", () => RpbPair),
  bool(11, "deleted"),
]);
const RpbGetResp = new Schema([
  messageList(1, "content", () => RpbContent),
  bytes(2, "vclock"),
  bool(3, "unchanged"),
]);
const RpbPutReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  bytes(3, "vclock"),
  message(4, "content", () => RpbContent),
  uint32(5, "w"),
  uint32(6, "dw"),
  bool(7, "return_body"),
  uint32(8, "pw"),
  bool(9, "if_not_modified"),
  bool(10, "if_none_match"),
  bool(11, "return_head"),
  uint32(12, "timeout"),
  bool(13, "asis"),
  bool(14, "sloppy_quorum"),
  uint32(15, "n_val"),
  bytes(16, "type"),
  uint32(17, "node_confirms"),
]);
const RpbPutResp = new Schema([
  messageList(1, "content", () => RpbContent),
  bytes(2, "vclock"),
  bytes(3, "key"),
]);
const RpbDelReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  uint32(3, "rw"),
  bytes(4, "vclock"),
  uint32(5, "r"),
  uint32(6, "w"),
  uint32(7, "pr"),
  uint32(8, "pw"),
  uint32(9, "dw"),
  uint32(10, "timeout"),
  bool(11, "sloppy_quorum"),
  uint32(12, "n_val"),
  bytes(13, "type"),
]);
const RpbListBucketsReq = new Schema([uint32(1, "timeout"), bool(2, "stream"), bytes(3, "type")]);
const RpbListBucketsResp = new Schema([bytesList(1, "buckets"), bool(2, "done")]);
const RpbListKeysReq = new Schema([bytes(1, "bucket"), uint32(2, "timeout"), bytes(3, "type")]);
const RpbListKeysResp = new Schema([bytesList(1, "keys"), bool(2, "done")]);
const RpbIndexReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "index"),
  enumField(3, "qtype", { eq: 0, range: 1 }),
  bytes(4, "key"),
  bytes(5, "range_min"),
  bytes(6, "range_max"),
  bool(7, "return_terms"),
  bool(8, "stream"),
  uint32(9, "max_results"),
  bytes(10, "continuation"),
  uint32(11, "timeout"),
  bytes(12, "type"),
  bytes(13, "term_regex"),
  bool(14, "pagination_sort"),
  bytes(15, "cover_context"),
  bool(16, "return_body"),
]);
const RpbIndexResp = new Schema([
  bytesList(1, "keys"),
  messageList(2, "results", () => RpbPair),
  bytes(3, "continuation"),
  bool(4, "done"),
]);
const RpbCounterUpdateReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  sint64(3, "amount"),
  uint32(4, "w"),
  uint32(5, "dw"),
  uint32(6, "pw"),
  bool(7, "returnvalue"),
  uint32(8, "node_confirms"),
]);
const RpbCounterValue = new Schema([sint64(1, "value")]);
const RpbCounterGetReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  uint32(3, "r"),
  uint32(4, "pr"),
  bool(5, "basic_quorum"),
  bool(6, "notfound_ok"),
]);

// riak_dt.proto
const MAP_FIELD_TYPES = { COUNTER: 1, SET: 2, REGISTER: 3, FLAG: 4, MAP: 5 };
const MapField = new Schema([bytes(1, "name"), enumField(2, "type", MAP_FIELD_TYPES)]);
const MapEntry: Schema = new Schema([
  message(1, "field", () => MapField),
  sint64(2, "counter_value"),
  bytesList(3, "set_value"),
  bytes(4, "register_value"),
  bool(5, "flag_value"),
  messageList(6, "map_value", () => MapEntry),
]);
const DtFetchReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  bytes(3, "type"),
  uint32(4, "r"),
  uint32(5, "pr"),
  bool(6, "basic_quorum"),
  bool(7, "notfound_ok"),
  uint32(8, "timeout"),
  bool(9, "sloppy_quorum"),
  uint32(10, "n_val"),
  bool(11, "include_context"),
]);
const DtValue = new Schema([
  sint64(1, "counter_value"),
  bytesList(2, "set_value"),
  messageList(3, "map_value", () => MapEntry),
  uint64(4, "hll_value"),
  bytesList(5, "gset_value"),
]);
const DtFetchResp = new Schema([
  bytes(1, "context"),
  enumField(2, "type", { COUNTER: 1, SET: 2, MAP: 3, HLL: 4, GSET: 5 }),
  message(3, "value", () => DtValue),
]);
const CounterOp = new Schema([sint64(1, "increment")]);
const SetOp = new Schema([bytesList(1, "adds"), bytesList(2, "removes")]);
const AddsOnlyOp = new Schema([bytesList(1, "adds")]);
const MapUpdate: Schema = new Schema([
  message(1, "field", () => MapField),
  message(2, "counter_op", () => CounterOp),
  message(3, "set_op", () => SetOp),
  bytes(4, "register_op"),
  enumField(5, "flag_op", { ENABLE: 1, DISABLE: 2 }),
  message(6, "map_op", () => MapOp),
]);
const MapOp: Schema = new Schema([
  messageList(1, "removes", () => MapField),
  messageList(2, "updates", () => MapUpdate),
]);
const DtOp = new Schema([
  message(1, "counter_op", () => CounterOp),
  message(2, "set_op", () => SetOp),
  message(3, "map_op", () => MapOp),
  message(4, "hll_op", () => AddsOnlyOp),
  message(5, "gset_op", () => AddsOnlyOp),
]);
const DtUpdateReq = new Schema([
  bytes(1, "bucket"),
  bytes(2, "key"),
  bytes(3, "type"),
  bytes(4, "context"),
  message(5, "op", () => DtOp),
  uint32(6, "w"),
  uint32(7, "dw"),
  uint32(8, "pw"),
  bool(9, "return_body"),
  uint32(10, "timeout"),
  bool(11, "sloppy_quorum"),
  uint32(12, "n_val"),
  bool(13, "include_context"),
]);
const DtUpdateResp = new Schema([
  bytes(1, "key"),
  bytes(2, "context"),
  sint64(3, "counter_value"),
  bytesList(4, "set_value"),
  messageList(5, "map_value", () => MapEntry),
  uint64(6, "hll_value"),
  bytesList(7, "gset_value"),
]);

const SCHEMAS: Readonly<Record<MessageCodeValue, Schema>> = {
  0: RpbErrorResp,
  1: EMPTY,
  2: EMPTY,
  3: EMPTY,
  4: RpbClientId,
  5: RpbClientId,
  6: EMPTY,
  7: EMPTY,
  8: RpbGetServerInfoResp,
  9: RpbGetReq,
  10: RpbGetResp,
  11: RpbPutReq,
  12: RpbPutResp,
  13: RpbDelReq,
  14: EMPTY,
  15: RpbListBucketsReq,
  16: RpbListBucketsResp,
  17: RpbListKeysReq,
  18: RpbListKeysResp,
  19: RpbGetBucketReq,
  20: RpbGetBucketResp,
  21: RpbSetBucketReq,
  22: EMPTY,
  25: RpbIndexReq,
  26: RpbIndexResp,
  29: RpbResetBucketReq,
  30: EMPTY,
  31: RpbGetBucketTypeReq,
  32: RpbSetBucketTypeReq,
  50: RpbCounterUpdateReq,
  51: RpbCounterValue,
  52: RpbCounterGetReq,
  53: RpbCounterValue,
  80: DtFetchReq,
  81: DtFetchResp,
  82: DtUpdateReq,
  83: DtUpdateResp,
  253: RpbAuthReq,
  254: EMPTY,
  255: EMPTY,
};

/** Whether this codec knows the message code (a frame with another code is a protocol error). */
export function isKnownMessageCode(code: number): code is MessageCodeValue {
  return Object.hasOwn(SCHEMAS, code);
}

function schemaOf(code: number): Schema {
  if (!isKnownMessageCode(code)) throw new CodecError(code, "unknown message code");
  return SCHEMAS[code];
}

/**
 * Encodes a message body (without the frame header) for a message code.
 *
 * @example
 * ```ts
 * const body = encodeMessage(MessageCode.PingReq, {}); // empty body
 * ```
 * @throws {CodecError} for an unknown code, a missing nested message or an unknown enum name.
 */
export function encodeMessage<C extends MessageCodeValue>(
  code: C,
  message: MessageByCode[C],
): Uint8Array;
/** Encodes a message body for a code known only at run time (e.g. a replayed transcript). */
export function encodeMessage(code: number, message: object): Uint8Array;
export function encodeMessage(code: number, message: object): Uint8Array {
  const parts = encodeMessageParts(code, message, Infinity);
  return parts.length === 1 ? parts[0] : new Uint8Array(0);
}

/**
 * Bytes values longer than this are not copied into the encoded body: they become parts of
 * their own, written to the socket as they are.
 */
export const INLINE_BYTES_LIMIT = 16 * 1024;

/**
 * Encodes a message body as a list of parts whose concatenation is the body. A `bytes`
 * value longer than `inlineLimit` is its own part, the caller's array itself (not a copy),
 * so a 1 MiB put is written to the socket without being copied; the caller must not change
 * it until the write is done. Shorter fields are packed into the parts between.
 *
 * @throws {CodecError} for an unknown code, a missing nested message or an unknown enum name.
 */
export function encodeMessageParts(
  code: number,
  message: object,
  inlineLimit: number = INLINE_BYTES_LIMIT,
): Uint8Array[] {
  const schema = schemaOf(code);
  if (schema.fields.length === 0) return [];
  // with a finite inline limit the writer holds only small fields: reuse one and keep its grown
  // buffer (finish() copies out and resets it); encoding is synchronous, so it is never shared
  const writer = inlineLimit === Infinity ? new BinaryWriter() : sharedWriter;
  const output: PartsWriter = { writer, parts: [], inlineLimit };
  try {
    writeFields(output, schema, message as Record<string, unknown>);
  } catch (error) {
    writer.finish(); // drop what was written, so the shared writer starts empty next time
    if (error instanceof CodecError) throw error;
    throw new CodecError(code, `cannot encode: ${(error as Error).message}`, { cause: error });
  }
  const tail = output.writer.finish();
  if (tail.length > 0 || output.parts.length === 0) output.parts.push(tail);
  return output.parts;
}

const sharedWriter = new BinaryWriter();

interface PartsWriter {
  writer: BinaryWriter;
  parts: Uint8Array[];
  inlineLimit: number;
}

function writeFields(output: PartsWriter, schema: Schema, message: Record<string, unknown>): void {
  for (const field of schema.fields) {
    const value = message[field.name];
    if (value === undefined) continue;
    if (field.repeated) {
      for (const item of value as unknown[]) writeField(output, field, item);
    } else {
      writeField(output, field, value);
    }
  }
}

function writeField(output: PartsWriter, field: FieldSpec, value: unknown): void {
  const writer = output.writer;
  switch (field.kind) {
    case "bytes": {
      const bytes = value as Uint8Array;
      writer.tag(field.no, WireType.LengthDelimited);
      if (bytes.length <= output.inlineLimit) {
        writer.bytes(bytes);
      } else {
        writer.uint32(bytes.length);
        output.parts.push(writer.finish(), bytes);
      }
      return;
    }
    case "uint32":
      writer.tag(field.no, WireType.Varint).uint32(value as number);
      return;
    case "bool":
      writer.tag(field.no, WireType.Varint).bool(value as boolean);
      return;
    case "sint64":
      writer.tag(field.no, WireType.Varint).sint64(value as number | bigint);
      return;
    case "uint64":
      writer.tag(field.no, WireType.Varint).uint64(value as number | bigint);
      return;
    case "enum":
      writer.tag(field.no, WireType.Varint).int32(enumNumber(field, value));
      return;
    case "message": {
      // the length prefix comes first, so size the nested message before writing it
      const schema = field.schema!();
      writer.tag(field.no, WireType.LengthDelimited).uint32(
        sizeOfFields(schema, value as Record<string, unknown>),
      );
      writeFields(output, schema, value as Record<string, unknown>);
      return;
    }
  }
}

function enumNumber(field: FieldSpec, value: unknown): number {
  const number = field.enumNumbers!.get(value as string);
  if (number === undefined) throw new Error(`${field.name}: unknown enum value ${String(value)}`);
  return number;
}

function sizeOfFields(schema: Schema, message: Record<string, unknown>): number {
  let size = 0;
  for (const field of schema.fields) {
    const value = message[field.name];
    if (value === undefined) continue;
    if (field.repeated) {
      for (const item of value as unknown[]) size += sizeOfField(field, item);
    } else {
      size += sizeOfField(field, value);
    }
  }
  return size;
}

function sizeOfField(field: FieldSpec, value: unknown): number {
  const tag = varintSize(field.no << 3);
  switch (field.kind) {
    case "bytes": {
      const length = (value as Uint8Array).length;
      return tag + varintSize(length) + length;
    }
    case "uint32":
      return tag + varintSize(value as number);
    case "bool":
      return tag + 1;
    case "enum":
      return tag + varintSize(enumNumber(field, value));
    case "sint64": {
      const big = BigInt(value as number | bigint);
      return tag + bigVarintSize(big >= 0n ? big << 1n : (-big << 1n) - 1n);
    }
    case "uint64":
      return tag + bigVarintSize(BigInt(value as number | bigint));
    case "message": {
      const size = sizeOfFields(field.schema!(), value as Record<string, unknown>);
      return tag + varintSize(size) + size;
    }
  }
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value >>> 0; rest >= 0x80; rest >>>= 7) size++;
  return size;
}

function bigVarintSize(value: bigint): number {
  let size = 1;
  for (let rest = BigInt.asUintN(64, value); rest >= 0x80n; rest >>= 7n) size++;
  return size;
}

/**
 * Decodes a message body received with a message code.
 *
 * @example
 * ```ts
 * const resp = decodeMessage(MessageCode.GetResp, body);
 * if (resp.content === undefined) console.log("not found");
 * ```
 * @throws {CodecError} for an unknown code or a malformed body.
 */
export function decodeMessage<C extends MessageCodeValue>(
  code: C,
  body: Uint8Array,
): MessageByCode[C];
/** Decodes a body whose code is known only at run time. */
export function decodeMessage(code: number, body: Uint8Array): object;
export function decodeMessage(code: number, body: Uint8Array): object {
  const schema = schemaOf(code);
  try {
    return readFields(new BinaryReader(body), schema, body.length);
  } catch (error) {
    if (error instanceof CodecError) throw error;
    throw new CodecError(code, `malformed body: ${(error as Error).message}`, { cause: error });
  }
}

const WIRE_TYPE_OF: Record<FieldSpec["kind"], WireType> = {
  bytes: WireType.LengthDelimited,
  message: WireType.LengthDelimited,
  uint32: WireType.Varint,
  bool: WireType.Varint,
  sint64: WireType.Varint,
  uint64: WireType.Varint,
  enum: WireType.Varint,
};

function readFields(reader: BinaryReader, schema: Schema, end: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    const field = schema.byNumber[no];
    if (field === undefined) {
      reader.skip(wireType, no);
      continue;
    }
    if (wireType !== WIRE_TYPE_OF[field.kind]) {
      throw new Error(`field ${field.name} (${no}) has wire type ${wireType}`);
    }
    const value = readValue(reader, field);
    if (value === undefined) continue; // an enum number this schema does not know: proto2 drops it
    if (field.repeated) {
      const list = result[field.name] as unknown[] | undefined;
      if (list === undefined) result[field.name] = [value];
      else list.push(value);
    } else if (field.kind === "message" && result[field.name] !== undefined) {
      // proto semantics: a repeated occurrence of a singular message merges into the first
      Object.assign(result[field.name] as object, value);
    } else {
      result[field.name] = value;
    }
  }
  if (reader.pos !== end) throw new Error("a field runs past the end of its message");
  return result;
}

function readValue(reader: BinaryReader, field: FieldSpec): unknown {
  switch (field.kind) {
    case "bytes":
      return reader.bytes();
    case "uint32":
      return reader.uint32();
    case "bool":
      return reader.bool();
    case "sint64":
      return toInt64(reader.sint64());
    case "uint64":
      return toInt64(reader.uint64());
    case "enum":
      return field.enumNames![reader.int32()];
    case "message": {
      const length = reader.uint32();
      const end = reader.pos + length;
      if (end > reader.len) throw new Error(`field ${field.name} runs past the end of the body`);
      return readFields(reader, field.schema!(), end);
    }
  }
}

function toInt64(value: bigint | string): number | bigint {
  const big = BigInt(value);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}
