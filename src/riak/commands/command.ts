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
