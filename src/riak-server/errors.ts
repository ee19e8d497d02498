/**
 * Errors the embedded Riak server answers with, carrying Riak's exact texts.
 *
 * The texts are copied from how Riak KV 3.2.2 answered (../shared/riak-golden/*.json); the
 * transcript that shows each one is named beside it.
 *
 * @module
 */

/**
 * A request Riak refuses: answered with RpbErrorResp `{errmsg, errcode: 0}`. When
 * `closeConnection` is set Riak also drops the connection after the error (it does so when
 * the request crashed its connection process, e.g. a garbage body).
 */
export class RiakRequestError extends Error {
  /** Riak's error text, sent as RpbErrorResp.errmsg. */
  readonly errmsg: string;
  /** Sent as RpbErrorResp.errcode; Riak always sends 0. */
  readonly errcode: number;
  /** True when Riak closes the connection after this error. */
  readonly closeConnection: boolean;

  constructor(errmsg: string, options: { closeConnection?: boolean; errcode?: number } = {}) {
    super(errmsg);
    this.name = "RiakRequestError";
    this.errmsg = errmsg;
    this.errcode = options.errcode ?? 0;
    this.closeConnection = options.closeConnection ?? false;
  }
}

/** Renders bytes the way Erlang prints a binary holding text: `<<"text">>`. */
export function erlangBinary(bytes: Uint8Array): string {
  return `<<"${new TextDecoder().decode(bytes)}">>`;
}

/**
 * A request that crashed Riak's connection process: Riak answers an Erlang crash report that
 * begins `Error processing incoming message: error:` and closes the connection (09-errors
 * garbage-body-*, response-code-as-request-10; 05-2i eq-int-not-a-number; 08-crdt
 * dt-update-empty-op, gset-add). The crash report itself cannot be reproduced; `what` says what
 * went wrong in Erlang terms.
 */
export function crashError(what: string): RiakRequestError {
  return new RiakRequestError(`Error processing incoming message: error:${what}`, {
    closeConnection: true,
  });
}

/** 09-errors get-unknown-type / put-unknown-type / del-unknown-type. */
export const NO_TYPE = "no_type";
/** 02-kv-basics put-if-none-match-existing. */
export const MATCH_FOUND = "match_found";
/** 02-kv-basics put-if-not-modified-stale. */
export const MODIFIED = "modified";
/** 02-kv-basics put-if-not-modified-missing. */
export const NOTFOUND = "notfound";
/** 09-errors get-empty-bucket-name. */
export const ZERO_LENGTH_BUCKET = "Bucket cannot be zero-length";
/** 09-errors put-empty-key. */
export const ZERO_LENGTH_KEY = "Key cannot be zero-length";
/** 09-errors starttls-security-off. */
export const STARTTLS_SECURITY_OFF = "Security not enabled; STARTTLS not allowed.";

/** 09-errors unknown-code-77 and auth-security-off (253 is unknown while security is off). */
export function unknownMessageCode(code: number): string {
  return `Unknown message code: ${code}`;
}

/** 07-bucket-props get-props-missing-type; 09-errors listkeys-unknown-type. */
export function noBucketTypeNamed(type: Uint8Array): string {
  return `No bucket-type named '${new TextDecoder().decode(type)}'`;
}

/**
 * A quorum above the bucket's n_val: riak_kv_put_fsm / riak_kv_get_fsm validate refuse it
 * with `{error, {n_val_violation, NVal}}`, shown as the Erlang term (as basho/riak-go-client's
 * users see it: `RiakError|0|{n_val_violation,3}`).
 */
export function nValViolation(nVal: number): string {
  return `{n_val_violation,${nVal}}`;
}

/** 09-errors put-55MB: Riak's object.size.maximum refusal, with the object's size. */
export function tooLarge(size: number): string {
  return `{too_large,${size}}`;
}
