/**
 * Opaque causal tokens: the vclocks of KV objects and the contexts of CRDTs.
 *
 * A single node has a single actor, so a version vector is one counter. Every object also gets
 * a random incarnation when it is created, and the token carries it: two objects at the same
 * counter still have different vclocks, as in Riak (whose vclocks name per-vnode actors), and
 * a token from another object is recognised as foreign. Clients only echo the bytes back.
 *
 * @module
 */
import { randomPoolBytes } from "./random_pool.ts";

const VCLOCK_TAG = 0x76; // "v"
const CONTEXT_TAG = 0x63; // "c"
const TOKEN_LENGTH = 1 + 8 + 6;

/** Which kind of token: a KV vclock or a CRDT context (never interchangeable). */
export type TokenKind = "vclock" | "context";

/** A new random incarnation for an object being created: 8 bytes, as a latin1 string. */
export function newIncarnation(): string {
  return randomPoolBytes(8).toString("latin1");
}

/** Encodes an object's incarnation and counter as the opaque token a client echoes. */
export function encodeToken(kind: TokenKind, incarnation: string, counter: number): Uint8Array {
  const bytes = new Uint8Array(TOKEN_LENGTH);
  bytes[0] = kind === "vclock" ? VCLOCK_TAG : CONTEXT_TAG;
  for (let i = 0; i < 8; i++) bytes[1 + i] = incarnation.charCodeAt(i);
  let rest = counter;
  for (let i = TOKEN_LENGTH - 1; i >= 9; i--) {
    bytes[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return bytes;
}

/**
 * The counter a client's token stands for, as seen by the object with `incarnation`: 0 when
 * the token is absent, malformed, of the other kind or from another object (then it covers
 * nothing of this object's history).
 */
export function tokenCounter(
  kind: TokenKind,
  token: Uint8Array | undefined,
  incarnation: string,
): number {
  if (token === undefined || token.length !== TOKEN_LENGTH) return 0;
  if (token[0] !== (kind === "vclock" ? VCLOCK_TAG : CONTEXT_TAG)) return 0;
  for (let i = 0; i < 8; i++) {
    if (token[1 + i] !== incarnation.charCodeAt(i)) return 0;
  }
  let counter = 0;
  for (let i = 9; i < TOKEN_LENGTH; i++) counter = counter * 256 + token[i];
  return counter;
}
