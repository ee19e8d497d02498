/**
 * Bucket and bucket-type property commands. Properties use the proto's own field names
 * (`RpbBucketProps`: `n_val`, `allow_mult`, ...). Bucket types cannot be created over the
 * protocol: an operator runs `riak admin bucket-type create`.
 *
 * @module
 */
import { MessageCode, type RpbBucketProps } from "../messages.ts";
import { type Command, command } from "./command.ts";
import { type BucketLocation, label, toBytes, typeBytes } from "./values.ts";

/** Builds a read of a bucket's properties. */
export function getBucketPropsCommand(location: BucketLocation): Command<RpbBucketProps> {
  return command({
    code: MessageCode.GetBucketReq,
    message: { bucket: toBytes(location.bucket), type: typeBytes(location.type) },
    responseCode: MessageCode.GetBucketResp,
    idempotent: true,
    label: label(MessageCode.GetBucketReq, location),
    parse: (response) => response.props,
  });
}

/** Builds a change of a bucket's properties (only the given ones change). */
export function setBucketPropsCommand(
  location: BucketLocation,
  props: RpbBucketProps,
): Command<void> {
  return command({
    code: MessageCode.SetBucketReq,
    message: { bucket: toBytes(location.bucket), props, type: typeBytes(location.type) },
    responseCode: MessageCode.SetBucketResp,
    idempotent: true,
    label: label(MessageCode.SetBucketReq, location),
    parse: () => undefined,
  });
}

/** Builds a reset of a bucket's properties to its type's. */
export function resetBucketPropsCommand(location: BucketLocation): Command<void> {
  return command({
    code: MessageCode.ResetBucketReq,
    message: { bucket: toBytes(location.bucket), type: typeBytes(location.type) },
    responseCode: MessageCode.ResetBucketResp,
    idempotent: true,
    label: label(MessageCode.ResetBucketReq, location),
    parse: () => undefined,
  });
}

/** Builds a read of a bucket type's properties. */
export function getBucketTypePropsCommand(type: string): Command<RpbBucketProps> {
  return command({
    code: MessageCode.GetBucketTypeReq,
    message: { type: toBytes(type) },
    responseCode: MessageCode.GetBucketResp,
    idempotent: true,
    label: label(MessageCode.GetBucketTypeReq, { type }),
    parse: (response) => response.props,
  });
}
