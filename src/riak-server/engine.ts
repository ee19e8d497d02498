/**
 * The request engine of the embedded Riak server, independent of the network: it takes one
 * request frame's code and body and gives the frames to answer, as Riak KV 3.2.2 would
 * (../shared/riak-golden/*.json are the reference). Changes are applied to the
 * {@link Keyspace} and handed to a {@link Durability} whose promise settles once they are
 * durable; the answer waits for it.
 *
 * @module
 */
import { decodeMessage, encodeMessageParts, isKnownMessageCode } from "../riak/codec.ts";
import { encodeFrameFromParts } from "../riak/frame.ts";
import {
  type DtFetchReq,
  type DtFetchResp,
  type DtUpdateReq,
  type DtUpdateResp,
  MessageCode,
  messageName,
  type RpbBucketProps,
  type RpbContent,
  type RpbCounterGetReq,
  type RpbCounterUpdateReq,
  type RpbDelReq,
  type RpbGetBucketReq,
  type RpbGetBucketTypeReq,
  type RpbGetReq,
  type RpbGetResp,
  type RpbIndexReq,
  type RpbListBucketsReq,
  type RpbListKeysReq,
  type RpbPutReq,
  type RpbPutResp,
  type RpbResetBucketReq,
  type RpbSetBucketReq,
  type RpbSetBucketTypeReq,
  type RpbSetClientIdReq,
} from "../riak/messages.ts";
import { dataTypeOf, mergeProps, validatePropsChange } from "./bucket_types.ts";
import {
  applyOperation,
  checkOperation,
  type CrdtState,
  crdtToJson,
  crdtValue,
  DT_TYPE_NAMES,
  emptyCrdt,
  hasContext,
  hasRemoves,
} from "./crdt.ts";
import {
  crashError,
  erlangBinary,
  MATCH_FOUND,
  MODIFIED,
  NO_TYPE,
  noBucketTypeNamed,
  NOTFOUND,
  nValViolation,
  RiakRequestError,
  STARTTLS_SECURITY_OFF,
  tooLarge,
  unknownMessageCode,
  ZERO_LENGTH_BUCKET,
  ZERO_LENGTH_KEY,
} from "./errors.ts";
import { groupForStreaming, queryIndex } from "./index_query.ts";
import {
  bytesOf,
  type ChangeRecord,
  Keyspace,
  nameOf,
  type Sibling,
  type StoredObject,
} from "./keyspace.ts";
import {
  deleteObject,
  isLive,
  OBJECT_SIZE_MAXIMUM,
  objectSize,
  putObject,
  randomToken,
  storedContent,
  TOMBSTONE_KEEP_MS,
  type WriteRules,
} from "./kv.ts";
import { encodeToken, newIncarnation, tokenCounter } from "./vclock.ts";

/** Makes changes durable; the engine answers a write only after `commit` settles. */
export interface Durability {
  /**
   * Persists one change, which the engine applies in memory as soon as this returns.
   * Undefined means durable at once. Throws when the change cannot be written at all: it is
   * then not applied, so no reader ever sees it.
   */
  commit(record: ChangeRecord): Promise<void> | undefined;
}

/** Per-connection state the engine keeps. */
export interface Session {
  /** Legacy client id (RpbSetClientIdReq). */
  clientId?: Uint8Array;
}

/** The frames answering one request, and whether to close the connection after them. */
export interface Reply {
  frames: Uint8Array[];
  close: boolean;
}

/** Options of a {@link RiakEngine}. */
export interface EngineOptions {
  /** Where changes go; default: nowhere (memory only). */
  durability?: Durability;
  /** RpbGetServerInfoResp.node. */
  nodeName?: string;
  /** Clock in milliseconds since the epoch (tests may fix it). */
  now?: () => number;
}

/** RpbGetServerInfoResp.server_version: the Riak version whose behaviour is copied. */
export const SERVER_VERSION = "3.2.2-riakfs-embedded";

const text = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Answers Riak protocol requests against a {@link Keyspace}. */
export class RiakEngine {
  readonly keyspace: Keyspace;
  private readonly durability: Durability | undefined;
  private readonly nodeName: Uint8Array;
  private readonly now: () => number;

  constructor(keyspace: Keyspace = new Keyspace(), options: EngineOptions = {}) {
    this.keyspace = keyspace;
    this.durability = options.durability;
    this.nodeName = text.encode(options.nodeName ?? "riakfs@127.0.0.1");
    this.now = options.now ?? Date.now;
  }

  /**
   * Answers one request frame. Never throws for anything a client sends: a refusal becomes
   * an RpbErrorResp frame (with `close` when Riak would drop the connection).
   */
  async handle(code: number, body: Uint8Array, session: Session = {}): Promise<Reply> {
    try {
      return { frames: await this.dispatch(code, body, session), close: false };
    } catch (error) {
      if (error instanceof RiakRequestError) {
        return { frames: [errorFrame(error.errmsg, error.errcode)], close: error.closeConnection };
      }
      // e.g. a DataLogError (disk full): the client learns it, the server keeps serving
      return { frames: [errorFrame((error as Error).message ?? String(error))], close: false };
    }
  }

  private decode(code: number, body: Uint8Array): unknown {
    try {
      return decodeMessage(code, body);
    } catch (error) {
      throw crashError(
        `{gpb_error,{decoding_failure,{${erlangBinary(body.subarray(0, 64))},${recordName(code)},${
          (error as Error).message
        }}}}`,
      );
    }
  }

  private async dispatch(code: number, body: Uint8Array, session: Session): Promise<Uint8Array[]> {
    switch (code) {
      case MessageCode.PingReq:
        this.decode(code, body);
        return [frame(MessageCode.PingResp, {})];
      case MessageCode.GetClientIdReq:
        session.clientId ??= text.encode(randomToken(4));
        return [frame(MessageCode.GetClientIdResp, { client_id: session.clientId })];
      case MessageCode.SetClientIdReq:
        session.clientId = (this.decode(code, body) as RpbSetClientIdReq).client_id.slice();
        return [frame(MessageCode.SetClientIdResp, {})];
      case MessageCode.GetServerInfoReq:
        return [frame(MessageCode.GetServerInfoResp, {
          node: this.nodeName,
          server_version: text.encode(SERVER_VERSION),
        })];
      case MessageCode.GetReq:
        return [frame(MessageCode.GetResp, this.get(this.decode(code, body) as RpbGetReq))];
      case MessageCode.PutReq:
        return [frame(MessageCode.PutResp, await this.put(this.decode(code, body) as RpbPutReq))];
      case MessageCode.DelReq:
        await this.delete(this.decode(code, body) as RpbDelReq);
        return [frame(MessageCode.DelResp, {})];
      case MessageCode.ListBucketsReq:
        return this.listBuckets(this.decode(code, body) as RpbListBucketsReq);
      case MessageCode.ListKeysReq:
        return this.listKeys(this.decode(code, body) as RpbListKeysReq);
      case MessageCode.GetBucketReq:
        return [this.getBucket(this.decode(code, body) as RpbGetBucketReq)];
      case MessageCode.SetBucketReq:
        await this.setBucket(this.decode(code, body) as RpbSetBucketReq);
        return [frame(MessageCode.SetBucketResp, {})];
      case MessageCode.ResetBucketReq:
        await this.resetBucket(this.decode(code, body) as RpbResetBucketReq);
        return [frame(MessageCode.ResetBucketResp, {})];
      case MessageCode.GetBucketTypeReq:
        return [this.getBucketType(this.decode(code, body) as RpbGetBucketTypeReq)];
      case MessageCode.SetBucketTypeReq:
        await this.setBucketType(this.decode(code, body) as RpbSetBucketTypeReq);
        return [frame(MessageCode.SetBucketResp, {})];
      case MessageCode.IndexReq:
        return this.index(this.decode(code, body) as RpbIndexReq);
      case MessageCode.CounterUpdateReq:
        return [await this.legacyCounterUpdate(this.decode(code, body) as RpbCounterUpdateReq)];
      case MessageCode.CounterGetReq:
        return [this.legacyCounterGet(this.decode(code, body) as RpbCounterGetReq)];
      case MessageCode.DtFetchReq:
        return [
          frame(MessageCode.DtFetchResp, this.dtFetch(this.decode(code, body) as DtFetchReq)),
        ];
      case MessageCode.DtUpdateReq:
        return [await this.dtUpdate(this.decode(code, body) as DtUpdateReq)];
      case MessageCode.StartTls:
        // Security off: 09-errors starttls-security-off (the connection stays usable).
        throw new RiakRequestError(STARTTLS_SECURITY_OFF);
      case MessageCode.AuthReq:
        // With security off Riak has no handler registered for 253 (09-errors auth-security-off).
        throw new RiakRequestError(unknownMessageCode(code));
      default:
        if (isKnownMessageCode(code)) {
          // A response code sent as a request crashes Riak's connection process
          // (09-errors response-code-as-request-10).
          throw crashError(
            `function_clause:[{riak_api_pb_server,process_message,[${recordName(code)}]}]`,
          );
        }
        throw new RiakRequestError(unknownMessageCode(code));
    }
  }

  // ---- KV ----------------------------------------------------------------------------------

  private kvTarget(typeBytes: Uint8Array | undefined, bucket: Uint8Array) {
    const type = typeBytes === undefined ? "default" : nameOf(typeBytes);
    if (!this.keyspace.types.has(type)) throw new RiakRequestError(NO_TYPE);
    if (bucket.length === 0) throw new RiakRequestError(ZERO_LENGTH_BUCKET);
    const bucketName = nameOf(bucket);
    const props = this.keyspace.propsOf(type, bucketName)!;
    const rules: WriteRules = {
      allowMult: props.allow_mult === true,
      lastWriteWins: props.last_write_wins === true,
    };
    return { type, bucket: bucketName, props, rules };
  }

  private get(request: RpbGetReq): RpbGetResp {
    const target = this.kvTarget(request.type, request.bucket);
    checkQuorums(target.props, { r: request.r, pr: request.pr });
    // Riak answers notfound to a get without its required key (09-errors get-missing-required-key).
    if (request.key === undefined) return {};
    if (request.key.length === 0) throw new RiakRequestError(ZERO_LENGTH_KEY);
    const object = this.keyspace.get(target.type, target.bucket, nameOf(request.key));
    if (object === undefined) return {};
    const vclock = encodeToken("vclock", object.incarnation, object.counter);
    if (!isLive(object)) return request.deletedvclock === true ? { vclock } : {};
    if (request.if_modified !== undefined && bytesEqual(request.if_modified, vclock)) {
      return { unchanged: true };
    }
    return { content: this.contentsOf(object, request.head === true), vclock };
  }

  private contentsOf(object: StoredObject, head: boolean): RpbContent[] {
    return object.siblings.map((sibling) => {
      const content = sibling.content!;
      if (sibling.crdt !== undefined) {
        return {
          ...content,
          value: head ? EMPTY : text.encode(JSON.stringify(crdtToJson(sibling.crdt))),
        };
      }
      return head ? { ...content, value: EMPTY } : content;
    });
  }

  private async put(request: RpbPutReq): Promise<RpbPutResp> {
    const target = this.kvTarget(request.type, request.bucket);
    checkQuorums(target.props, { w: request.w, dw: request.dw, pw: request.pw });
    if (request.key !== undefined && request.key.length === 0) {
      throw new RiakRequestError(ZERO_LENGTH_KEY);
    }
    const generated = request.key === undefined ? text.encode(randomToken(27)) : undefined;
    const keyBytes = request.key ?? generated!;
    const size = objectSize(request.content.value.length, request.bucket, keyBytes);
    if (size > OBJECT_SIZE_MAXIMUM) throw new RiakRequestError(tooLarge(size));
    const key = nameOf(keyBytes);
    const current = this.keyspace.get(target.type, target.bucket, key);
    if (request.if_none_match === true && isLive(current)) {
      throw new RiakRequestError(MATCH_FOUND);
    }
    const clientCounter = current === undefined
      ? 0
      : tokenCounter("vclock", request.vclock, current.incarnation);
    if (request.if_not_modified === true) {
      if (!isLive(current)) throw new RiakRequestError(NOTFOUND);
      if (clientCounter < current.counter) throw new RiakRequestError(MODIFIED);
    }
    const content = storedContent(request.content, this.now());
    const object = putObject(current, clientCounter, content, target.rules);
    await this.write({ t: "object", type: target.type, bucket: target.bucket, key, object });
    const response: RpbPutResp = {};
    if (request.return_body === true || request.return_head === true) {
      response.content = this.contentsOf(object, request.return_body !== true);
      response.vclock = encodeToken("vclock", object.incarnation, object.counter);
    }
    if (generated !== undefined) response.key = generated;
    return response;
  }

  private async delete(request: RpbDelReq): Promise<void> {
    const target = this.kvTarget(request.type, request.bucket);
    const { rw, r, w, pr, pw, dw } = request;
    checkQuorums(target.props, { rw, r, w, pr, pw, dw });
    if (request.key.length === 0) throw new RiakRequestError(ZERO_LENGTH_KEY);
    const key = nameOf(request.key);
    const current = this.keyspace.get(target.type, target.bucket, key);
    if (!isLive(current)) return;
    const clientCounter = request.vclock === undefined
      ? current.counter
      : tokenCounter("vclock", request.vclock, current.incarnation);
    const object = deleteObject(current, clientCounter, target.rules, this.now());
    await this.write({ t: "object", type: target.type, bucket: target.bucket, key, object });
  }

  /**
   * Writes a change to the log, applies it and waits until it is durable. One the log
   * refuses at once (the disk full) is never applied: applied and undone a moment later, a
   * read answered in between would have seen it. One that fails later (the fsync) is undone
   * in memory (unless a later one already replaced it). (A CRDT updated in place keeps the
   * update.)
   */
  private write(record: ChangeRecord): Promise<void> | undefined {
    const undo = this.keyspace.undoOf(record);
    let durable: Promise<void> | undefined;
    try {
      durable = this.durability?.commit(record);
    } catch (error) {
      return Promise.reject(error);
    }
    this.keyspace.apply(record);
    return durable?.catch((error) => {
      if (this.keyspace.isCurrent(record)) this.keyspace.apply(undo);
      throw error;
    });
  }

  /**
   * Forgets tombstones older than Riak's delete_mode keep time (3 s), as Riak reaps them.
   * The server calls this now and then.
   */
  async reapTombstones(): Promise<void> {
    const expired = this.keyspace.expiredTombstones(this.now() - TOMBSTONE_KEEP_MS);
    await Promise.all(expired.map((record) => this.write(record)));
  }

  // ---- listing and indexes -----------------------------------------------------------------

  /** The bucket type a listing, index or props request names (`default` when absent). */
  private namedType(typeBytes: Uint8Array | undefined): string {
    const type = typeBytes === undefined ? "default" : nameOf(typeBytes);
    if (!this.keyspace.types.has(type)) throw new RiakRequestError(noBucketTypeNamed(typeBytes!));
    return type;
  }

  private listBuckets(request: RpbListBucketsReq): Uint8Array[] {
    const type = this.namedType(request.type);
    const names: string[] = [];
    for (const [bucket, keys] of this.keyspace.objects.get(type) ?? []) {
      for (const object of keys.values()) {
        if (isLive(object)) {
          names.push(bucket);
          break;
        }
      }
    }
    if (request.stream !== true) {
      return [
        frame(
          MessageCode.ListBucketsResp,
          names.length === 0 ? {} : { buckets: names.map(bytesOf) },
        ),
      ];
    }
    return streamedNames(MessageCode.ListBucketsResp, "buckets", names);
  }

  private listKeys(request: RpbListKeysReq): Uint8Array[] {
    const type = this.namedType(request.type);
    const keys: string[] = [];
    for (const [key, object] of this.keyspace.bucket(type, nameOf(request.bucket))) {
      if (isLive(object)) keys.push(key);
    }
    return streamedNames(MessageCode.ListKeysResp, "keys", keys);
  }

  private index(request: RpbIndexReq): Uint8Array[] {
    const type = this.namedType(request.type);
    const objects = this.keyspace.bucket(type, nameOf(request.bucket));
    return queryIndex(request, objects).map((answer) => frame(MessageCode.IndexResp, answer));
  }

  // ---- bucket and bucket-type props ----------------------------------------------------------

  private getBucket(request: RpbGetBucketReq): Uint8Array {
    const type = this.namedType(request.type);
    return frame(MessageCode.GetBucketResp, {
      props: this.keyspace.propsOf(type, nameOf(request.bucket))!,
    });
  }

  private async setBucket(request: RpbSetBucketReq): Promise<void> {
    const type = this.namedType(request.type);
    const bucket = nameOf(request.bucket);
    validatePropsChange(this.keyspace.propsOf(type, bucket)!, request.props);
    const own = this.keyspace.bucketProps.get(type)?.get(bucket) ?? {};
    await this.write({
      t: "bucket",
      type,
      bucket,
      props: mergeProps(own, ownedProps(request.props)),
    });
  }

  private async resetBucket(request: RpbResetBucketReq): Promise<void> {
    const type = this.namedType(request.type);
    await this.write({ t: "bucket", type, bucket: nameOf(request.bucket), props: null });
  }

  private getBucketType(request: RpbGetBucketTypeReq): Uint8Array {
    const props = this.keyspace.types.get(nameOf(request.type));
    if (props === undefined) {
      throw new RiakRequestError(`Invalid bucket type: ${erlangBinary(request.type)}`);
    }
    return frame(MessageCode.GetBucketResp, { props });
  }

  private async setBucketType(request: RpbSetBucketTypeReq): Promise<void> {
    const type = nameOf(request.type);
    const current = this.keyspace.types.get(type);
    if (current === undefined) throw new RiakRequestError("Invalid bucket properties: not_active");
    validatePropsChange(current, request.props);
    await this.write({ t: "type", type, props: mergeProps(current, ownedProps(request.props)) });
  }

  // ---- data types -----------------------------------------------------------------------------

  /** The datatype of a DtFetch/DtUpdate target, with Riak's refusals. */
  private dtTarget(typeBytes: Uint8Array, bucket: Uint8Array) {
    const type = nameOf(typeBytes);
    const typeProps = this.keyspace.types.get(type);
    if (typeProps === undefined) {
      throw new RiakRequestError(`Error no bucket type \`${erlangBinary(typeBytes)}\``);
    }
    if (bucket.length === 0) throw new RiakRequestError(ZERO_LENGTH_BUCKET);
    return { type, bucket: nameOf(bucket), datatype: dataTypeOf(typeProps) };
  }

  private crdtSibling(object: StoredObject | undefined): Sibling | undefined {
    return object?.siblings.find((sibling) => sibling.crdt !== undefined);
  }

  private dtFetch(request: DtFetchReq): DtFetchResp {
    const target = this.dtTarget(request.type, request.bucket);
    // The default type answers as a legacy counter (08-crdt dt-fetch-default-type).
    const datatype = target.datatype ?? (target.type === "default" ? "counter" : undefined);
    if (datatype === undefined) {
      throw new RiakRequestError("`undefined` is not a supported type");
    }
    const response: DtFetchResp = { type: DT_TYPE_NAMES[datatype] };
    const object = this.keyspace.get(target.type, target.bucket, nameOf(request.key));
    if (!isLive(object)) return response;
    const crdt = this.crdtSibling(object)?.crdt;
    // A key holding only KV values answers an empty value (08-crdt dt-fetch-kv-object).
    if (crdt === undefined || crdt.kind !== datatype) return { ...response, value: {} };
    if (hasContext(crdt) && request.include_context !== false) {
      response.context = encodeToken("context", object.incarnation, crdt.clock);
    }
    response.value = crdtValue(crdt);
    return response;
  }

  private async dtUpdate(request: DtUpdateReq): Promise<Uint8Array> {
    const target = this.dtTarget(request.type, request.bucket);
    if (target.datatype === undefined) {
      if (target.type === "default") {
        throw new RiakRequestError(
          request.op.counter_op === undefined
            ? `"non-counter operation on default bucket"`
            : `"Counters require bucket property 'allow_mult=true'"`,
        );
      }
      throw new RiakRequestError("`undefined` is not a supported type");
    }
    checkOperation(request.op, target.datatype);
    if (request.key !== undefined && request.key.length === 0) {
      throw new RiakRequestError(ZERO_LENGTH_KEY);
    }
    const generated = request.key === undefined ? text.encode(randomToken(27)) : undefined;
    const key = nameOf(request.key ?? generated!);
    const { object, crdt } = await this.updateCrdt(
      target.type,
      target.bucket,
      key,
      target.datatype,
      (state, current) => {
        const context = request.context === undefined
          ? undefined
          : tokenCounter("context", request.context, current?.incarnation ?? "");
        applyOperation(state, request.op, context);
      },
      request.context === undefined && hasRemoves(request.op),
    );
    const response: DtUpdateResp = {};
    if (generated !== undefined) response.key = generated;
    if (request.return_body === true) {
      if (crdt.kind === "gset") {
        // Riak 3.2.2 cannot encode a gset update answer and crashes (08-crdt gset-add).
        throw crashError(
          "function_clause:[{riak_pb_dt_codec,encode_update_response,[gset,...]}]",
        );
      }
      if (hasContext(crdt) && request.include_context !== false) {
        response.context = encodeToken("context", object.incarnation, crdt.clock);
      }
      Object.assign(response, crdtValue(crdt));
    }
    return frame(MessageCode.DtUpdateResp, response);
  }

  /**
   * Applies `change` to a copy of the key's CRDT (created empty if absent) and writes the
   * object; a change that throws leaves the object untouched.
   */
  private async updateCrdt(
    type: string,
    bucket: string,
    key: string,
    datatype: NonNullable<ReturnType<typeof dataTypeOf>>,
    change: (state: CrdtState, current: StoredObject | undefined) => void,
    mayFail: boolean,
  ): Promise<{ object: StoredObject; crdt: CrdtState }> {
    const current = this.keyspace.get(type, bucket, key);
    const existing = this.crdtSibling(current);
    // Only a remove without context can fail half-way: work on a copy then, in place otherwise
    // (a copy per update would make every update of a big set cost its whole size).
    const crdt = existing?.crdt?.kind === datatype
      ? (mayFail ? structuredClone(existing.crdt) : existing.crdt)
      : emptyCrdt(datatype);
    change(crdt, isLive(current) ? current : undefined);
    const base = current ?? { incarnation: newIncarnation(), counter: 0, siblings: [] };
    const counter = base.counter + 1;
    const sibling: Sibling = {
      dot: counter,
      content: storedContent({
        value: EMPTY,
        content_type: text.encode(`application/riak_${datatype}`),
      }, this.now()),
      crdt,
    };
    const others = base.siblings.filter((s) => s.crdt === undefined);
    const object: StoredObject = {
      incarnation: base.incarnation,
      counter,
      siblings: existing === undefined
        ? [...others, sibling]
        : base.siblings.map((s) => s === existing ? sibling : s),
    };
    await this.write({ t: "object", type, bucket, key, object });
    return { object, crdt };
  }

  private async legacyCounterUpdate(request: RpbCounterUpdateReq): Promise<Uint8Array> {
    const target = this.kvTarget(undefined, request.bucket);
    if (!target.rules.allowMult) {
      // 08-crdt legacy-counter-default-bucket: Riak quotes its own text.
      throw new RiakRequestError(`"Counters require bucket property 'allow_mult=true'"`);
    }
    const { crdt } = await this.updateCrdt(
      target.type,
      target.bucket,
      nameOf(request.key),
      "counter",
      (state) => applyOperation(state, { counter_op: { increment: request.amount } }, undefined),
      false,
    );
    const value = (crdt as { value: number }).value;
    return frame(MessageCode.CounterUpdateResp, request.returnvalue === true ? { value } : {});
  }

  private legacyCounterGet(request: RpbCounterGetReq): Uint8Array {
    const target = this.kvTarget(undefined, request.bucket);
    const object = this.keyspace.get(target.type, target.bucket, nameOf(request.key));
    const crdt = isLive(object) ? this.crdtSibling(object)?.crdt : undefined;
    return frame(
      MessageCode.CounterGetResp,
      crdt?.kind === "counter" ? { value: crdt.value } : {},
    );
  }
}

/** A message's name as Erlang prints its record: `rpbgetreq`, `dtfetchreq`. */
function recordName(code: number): string {
  return messageName(code).toLowerCase();
}

/** The frames of a streamed listing: the names in several frames, then `done`. */
function streamedNames(code: number, field: "buckets" | "keys", names: string[]): Uint8Array[] {
  const frames = groupForStreaming(names, (name) => name).map((group) =>
    frame(code, { [field]: group.map(bytesOf) })
  );
  frames.push(frame(code, { done: true }));
  return frames;
}

/**
 * Encodes one answer frame. Large values are encoded as parts of their own and copied once,
 * into the frame (encoding a whole body first would copy them twice).
 */
function frame(code: number, message: object): Uint8Array {
  return encodeFrameFromParts(code, encodeMessageParts(code, message));
}

/** An RpbErrorResp frame. */
export function errorFrame(errmsg: string, errcode = 0): Uint8Array {
  return frame(MessageCode.ErrorResp, { errmsg: text.encode(errmsg), errcode });
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A deep copy of props decoded from a request (their bytes are views into the frame). */
function ownedProps<T>(value: T): T {
  if (value instanceof Uint8Array) return value.slice() as T;
  if (Array.isArray(value)) return value.map(ownedProps) as T;
  if (value === null || typeof value !== "object") return value;
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) copy[name] = ownedProps(field);
  return copy as T;
}

/** The numbers RpbGetReq and friends carry for Riak's symbolic quorums. */
const QUORUM_ONE = 4294967294;
const QUORUM_QUORUM = 4294967293;
const QUORUM_ALL = 4294967292;
const QUORUM_DEFAULT = 4294967291;

type QuorumName = "r" | "pr" | "w" | "pw" | "dw" | "rw";

/**
 * Refuses a request whose quorums (or the bucket's, where the request leaves them to it)
 * exceed the bucket's n_val, as Riak does before anything is read or written.
 */
function checkQuorums(
  props: RpbBucketProps,
  asked: Partial<Record<QuorumName, number | undefined>>,
): void {
  const nVal = props.n_val ?? 3;
  for (const [name, value] of Object.entries(asked) as [QuorumName, number | undefined][]) {
    if (resolvedQuorum(value, props[name], nVal) > nVal) {
      throw new RiakRequestError(nValViolation(nVal));
    }
  }
}

function resolvedQuorum(
  value: number | undefined,
  bucketValue: number | undefined,
  nVal: number,
): number {
  switch (value ?? QUORUM_DEFAULT) {
    case QUORUM_ONE:
      return 1;
    case QUORUM_QUORUM:
      return Math.floor(nVal / 2) + 1;
    case QUORUM_ALL:
      return nVal;
    case QUORUM_DEFAULT:
      return bucketValue === undefined
        ? Math.floor(nVal / 2) + 1
        : resolvedQuorum(bucketValue, undefined, nVal);
    default:
      return value!;
  }
}
