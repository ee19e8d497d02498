/**
 * What a command is: the request to send, the answer to expect, how to read it, and whether
 * repeating it is harmless. Commands only encode and decode; the cluster runs them and alone
 * decides about retries.
 *
 * @module
 */
import type { RequestLabel } from "../errors.ts";
import type { MessageByCode, MessageCodeValue } from "../messages.ts";

/** A request answered by one frame. */
export interface Command<T> {
  code: MessageCodeValue;
  message: object;
  responseCode: MessageCodeValue;
  /** Whether sending it again after it may have been applied is harmless. */
  idempotent: boolean;
  label: RequestLabel;
  parse(response: object): T;
  /**
   * For a request that is not idempotent but whose effect can be recognised: how the cluster
   * tells, after a failure in which it may have been applied, whether it was.
   */
  appliedCheck?: AppliedCheck<T>;
}

/**
 * A read that shows whether a request took effect, and the decision on what it found. The
 * cluster runs it (on another node, retried like any read) after a failure in which the
 * request may have been applied, and sends the request again only when it was not.
 */
export interface AppliedCheck<T> {
  /** Builds the read (idempotent); only called after such a failure, off the hot path. */
  read(): Command<unknown>;
  /** What to report when the read shows the request applied; undefined when it was not. */
  decide(found: unknown): T | undefined;
}

/** Builds an {@link AppliedCheck} with the read's result type checked against `decide`. */
export function appliedCheck<R, T>(
  read: () => Command<R>,
  decide: (found: R) => T | undefined,
): AppliedCheck<T> {
  return { read, decide: decide as (found: unknown) => T | undefined };
}

/** A request answered by frames up to one marked last (`done`). Streams are reads. */
export interface StreamCommand<T> {
  code: MessageCodeValue;
  message: object;
  responseCode: MessageCodeValue;
  label: RequestLabel;
  isLast(frame: object): boolean;
  parse(frame: object): T;
}

/** Builds a {@link Command} with the request and answer types checked against their codes. */
export function command<C extends MessageCodeValue, R extends MessageCodeValue, T>(spec: {
  code: C;
  message: MessageByCode[C];
  responseCode: R;
  idempotent: boolean;
  label: RequestLabel;
  parse(response: MessageByCode[R]): T;
  appliedCheck?: AppliedCheck<T>;
}): Command<T> {
  return spec as unknown as Command<T>;
}

/** Builds a {@link StreamCommand} with types checked against the codes. */
export function streamCommand<C extends MessageCodeValue, R extends MessageCodeValue, T>(spec: {
  code: C;
  message: MessageByCode[C];
  responseCode: R;
  label: RequestLabel;
  isLast(frame: MessageByCode[R]): boolean;
  parse(frame: MessageByCode[R]): T;
}): StreamCommand<T> {
  return spec as unknown as StreamCommand<T>;
}
