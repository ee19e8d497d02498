/**
 * Key/value commands: get, put, delete.
 *
 * Not found is a result (`found: false`), never an exception. A get returns every sibling
 * and the vclock; send the vclock back with the next put of that key.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { MessageCode } from "../messages.ts";
import { appliedCheck, type Command, command } from "./command.ts";
import {
  contentFromWire,
  type ContentToPut,
  contentToWire,
  label,
  type Location,
  quorum,
  type QuorumValue,
  type RiakContent,
  type TextPair,
  toBytes,
  typeBytes,
} from "./values.ts";

/** Options of a get. */
export interface GetOptions {
  r?: QuorumValue;
  pr?: QuorumValue;
  basicQuorum?: boolean;
  notfoundOk?: boolean;
  /** Return metadata only (values come back empty). */
  head?: boolean;
  /** Answer `unchanged: true` instead of the object when its vclock still equals this one. */
  ifModified?: Uint8Array;
  /** For a deleted object, return the tombstone's vclock (with `found: false`). */
  deletedVclock?: boolean;
  /** Riak's own time limit for the request, in ms. */
  serverTimeoutMs?: number;
}

/** What a get found. */
export interface GetResult {
  /** False when the object does not exist (or is deleted). */
  found: boolean;
  /** True when `ifModified` matched: nothing else is returned. */
  unchanged: boolean;
  /** The vclock to send back with the next put (or delete). */
  vclock?: Uint8Array;
  /** Every sibling; one unless the bucket allows siblings and writes were concurrent. */
  siblings: RiakContent[];
}

/** Options of a put. */
export interface PutOptions {
  /** The vclock of the version this put replaces (from a get). */
  vclock?: Uint8Array;
  w?: QuorumValue;
  dw?: QuorumValue;
  pw?: QuorumValue;
  /** Return the stored siblings and vclock. */
  returnBody?: boolean;
  /** Like returnBody, without the values. */
  returnHead?: boolean;
  /** Fail with RiakError `modified` unless `vclock` is the current one. */
  ifNotModified?: boolean;
  /** Fail with RiakError `match_found` if the key exists. */
  ifNoneMatch?: boolean;
  serverTimeoutMs?: number;
  /**
   * Declares that sending this put twice is harmless (e.g. a last-write-wins bucket), so the
   * cluster may retry it after a failure in which it may have been applied. Default false.
   * Ignored for a put without a key: repeating that would store a second object.
   */
  idempotent?: boolean;
}

/** What a put returned. */
export interface PutResult {
  /** The key Riak generated, when the put named none. */
  key?: Uint8Array;
  /** With returnBody/returnHead: the new vclock. */
  vclock?: Uint8Array;
  /** With returnBody/returnHead: the stored siblings. */
  siblings: RiakContent[];
}

/** Options of a delete. */
export interface DeleteOptions {
  /** The vclock of the version being deleted (from a get): avoids deleting a newer write. */
  vclock?: Uint8Array;
  rw?: QuorumValue;
  r?: QuorumValue;
  w?: QuorumValue;
  pr?: QuorumValue;
  pw?: QuorumValue;
  dw?: QuorumValue;
  serverTimeoutMs?: number;
}

/** A put's location: without a key, Riak generates one. */
export type PutLocation = Omit<Location, "key"> & { key?: Location["key"] };

/** Builds a get. */
export function getCommand(location: Location, options: GetOptions = {}): Command<GetResult> {
  return command({
    code: MessageCode.GetReq,
    message: {
      bucket: toBytes(location.bucket),
      key: toBytes(location.key),
      r: quorum(options.r),
      pr: quorum(options.pr),
      basic_quorum: options.basicQuorum,
      notfound_ok: options.notfoundOk,
      if_modified: options.ifModified,
      head: options.head,
      deletedvclock: options.deletedVclock,
      timeout: options.serverTimeoutMs,
      type: typeBytes(location.type),
    },
    responseCode: MessageCode.GetResp,
    idempotent: true,
    label: label(MessageCode.GetReq, location),
    parse: (response) => {
      const siblings = (response.content ?? []).map(contentFromWire);
      return {
        found: siblings.length > 0,
        unchanged: response.unchanged === true,
        vclock: response.vclock,
        siblings,
      };
    },
  });
}

/** Builds a put. */
export function putCommand(
  location: PutLocation,
  content: ContentToPut,
  options: PutOptions = {},
): Command<PutResult> {
  const key = location.key;
  const idempotent = options.idempotent === true && key !== undefined;
  return command({
    code: MessageCode.PutReq,
    message: {
      bucket: toBytes(location.bucket),
      key: key === undefined ? undefined : toBytes(key),
      vclock: options.vclock,
      content: contentToWire(content),
      w: quorum(options.w),
      dw: quorum(options.dw),
      return_body: options.returnBody,
      pw: quorum(options.pw),
      if_not_modified: options.ifNotModified,
      if_none_match: options.ifNoneMatch,
      return_head: options.returnHead,
      timeout: options.serverTimeoutMs,
      type: typeBytes(location.type),
    },
    responseCode: MessageCode.PutResp,
    // without a key, a repeat stores a second object under another generated key
    idempotent,
    label: label(MessageCode.PutReq, location),
    // with a key, what the put stored can be recognised: see putAppliedResult
    appliedCheck: key === undefined || idempotent ? undefined : appliedCheck(
      () => getCommand({ ...location, key }, { notfoundOk: false }),
      (found) => putAppliedResult(content, options, found),
    ),
    parse: (response) => ({
      key: response.key,
      vclock: response.vclock,
      siblings: (response.content ?? []).map(contentFromWire),
    }),
  });
}

/**
 * Decides, from what a key holds after a put failed in a way that may have applied it,
 * whether it was applied: one sibling (a tombstone never counts) holds exactly the content
 * sent (value bytes, content type, charset, content encoding and usermeta). Then it returns
 * the put's result as Riak would have answered it: the siblings and vclock found with
 * `returnBody`, the same without values with `returnHead`, nothing otherwise. It returns
 * undefined when the put was not applied, so it is sent again (with its original vclock and
 * conditions: `ifNoneMatch` then fails with `match_found` only if another writer got there).
 *
 * A sibling with the same content written earlier by anyone is taken for this put: writing
 * the same content twice is harmless, and content carrying a unique token is never mistaken.
 */
export function putAppliedResult(
  sent: ContentToPut,
  options: PutOptions,
  found: GetResult,
): PutResult | undefined {
  if (!found.siblings.some((sibling) => holdsContent(sibling, sent))) return undefined;
  if (options.returnBody) return { vclock: found.vclock, siblings: found.siblings };
  if (options.returnHead) {
    const empty = new Uint8Array(0);
    return {
      vclock: found.vclock,
      siblings: found.siblings.map((sibling) => ({ ...sibling, value: empty })),
    };
  }
  return { siblings: [] };
}

function holdsContent(sibling: RiakContent, sent: ContentToPut): boolean {
  return sibling.deleted !== true &&
    sibling.contentType === sent.contentType &&
    sibling.charset === sent.charset &&
    sibling.contentEncoding === sent.contentEncoding &&
    Buffer.compare(sibling.value, sent.value) === 0 &&
    samePairs(sibling.usermeta, sent.usermeta);
}

/** Usermeta as a set of pairs: Riak keeps them, but need not keep their order. */
function samePairs(a: TextPair[] | undefined, b: TextPair[] | undefined): boolean {
  const sorted = (pairs: TextPair[] | undefined) =>
    (pairs ?? []).map((pair) => JSON.stringify([pair.key, pair.value])).sort();
  const [x, y] = [sorted(a), sorted(b)];
  return x.length === y.length && x.every((pair, i) => pair === y[i]);
}

/** Builds a delete (deleting a missing key succeeds). */
export function deleteCommand(location: Location, options: DeleteOptions = {}): Command<void> {
  return command({
    code: MessageCode.DelReq,
    message: {
      bucket: toBytes(location.bucket),
      key: toBytes(location.key),
      rw: quorum(options.rw),
      vclock: options.vclock,
      r: quorum(options.r),
      w: quorum(options.w),
      pr: quorum(options.pr),
      pw: quorum(options.pw),
      dw: quorum(options.dw),
      timeout: options.serverTimeoutMs,
      type: typeBytes(location.type),
    },
    responseCode: MessageCode.DelResp,
    // deleting twice leaves the same tombstone
    idempotent: true,
    label: label(MessageCode.DelReq, location),
    parse: () => undefined,
  });
}
