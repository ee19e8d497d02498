/**
 * Listing commands. Both walk every key in the cluster (Riak folds over all vnodes): they are
 * for administration and tests, never for production request paths.
 *
 * @module
 */
import { MessageCode } from "../messages.ts";
import { type StreamCommand, streamCommand } from "./command.ts";
import { type BucketLocation, label, toBytes, typeBytes } from "./values.ts";

/** Builds a streamed list of the buckets of a bucket type; yields one batch per frame. */
export function listBucketsCommand(
  options: { type?: string; serverTimeoutMs?: number } = {},
): StreamCommand<
  Uint8Array[]
> {
  return streamCommand({
    code: MessageCode.ListBucketsReq,
    message: { timeout: options.serverTimeoutMs, stream: true, type: typeBytes(options.type) },
    responseCode: MessageCode.ListBucketsResp,
    label: label(MessageCode.ListBucketsReq, { type: options.type }),
    isLast: (frame) => frame.done === true,
    parse: (frame) => frame.buckets ?? [],
  });
}

/** Builds a streamed list of the keys of a bucket; yields one batch per frame. */
export function listKeysCommand(
  location: BucketLocation,
  options: { serverTimeoutMs?: number } = {},
): StreamCommand<Uint8Array[]> {
  return streamCommand({
    code: MessageCode.ListKeysReq,
    message: {
      bucket: toBytes(location.bucket),
      timeout: options.serverTimeoutMs,
      type: typeBytes(location.type),
    },
    responseCode: MessageCode.ListKeysResp,
    label: label(MessageCode.ListKeysReq, location),
    isLast: (frame) => frame.done === true,
    parse: (frame) => frame.keys ?? [],
  });
}
