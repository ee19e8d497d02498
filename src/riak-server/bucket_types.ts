/**
 * Bucket types and bucket properties, with Riak KV 3.2.2's defaults and validation.
 *
 * The default props are copied from the `bucket_types` field of the golden transcripts
 * (../shared/riak-golden/07-bucket-props.json): the built-in `default` type has
 * allow_mult=false and also reports `repl` and `write_once`; every created type has
 * allow_mult=true (riak_core_bucket_type.erl gives created types allow_mult=true and
 * dvv_enabled=true).
 *
 * @module
 */
import type { RpbBucketProps } from "../riak/messages.ts";
import { RiakRequestError } from "./errors.ts";

const text = new TextEncoder();
const QUORUM = 4294967293;

/** CRDT kinds a bucket type's `datatype` can name. */
export type DataTypeName = "set" | "map" | "counter" | "hll" | "gset";

const DATATYPES: readonly string[] = ["set", "map", "counter", "hll", "gset"];

/** Props every bucket type reports, before the type's own. */
function commonProps(): RpbBucketProps {
  return {
    n_val: 3,
    allow_mult: true,
    last_write_wins: false,
    has_precommit: true,
    has_postcommit: true,
    chash_keyfun: {
      module: text.encode("riak_core_util"),
      function: text.encode("chash_std_keyfun"),
    },
    linkfun: {
      module: text.encode("riak_kv_wm_link_walker"),
      function: text.encode("mapreduce_linkfun"),
    },
    old_vclock: 86400,
    young_vclock: 20,
    big_vclock: 50,
    small_vclock: 50,
    pr: 0,
    r: QUORUM,
    w: QUORUM,
    pw: 0,
    dw: QUORUM,
    rw: QUORUM,
    basic_quorum: false,
    notfound_ok: true,
  };
}

/** The props of the built-in `default` bucket type. */
export function defaultTypeProps(): RpbBucketProps {
  return { ...commonProps(), allow_mult: false, repl: "TRUE", write_once: false };
}

/**
 * Bucket-type props as an operator gives them to `riak admin bucket-type create NAME
 * '{"props":{...}}'`: JSON names of RpbBucketProps plus `dvv_enabled`.
 */
export type BucketTypeSpec = Record<string, unknown>;

/**
 * The props of a type created with `spec`, validated like `riak admin bucket-type create`.
 *
 * @example
 * ```ts
 * createdTypeProps({ datatype: "set" }); // allow_mult true, datatype "set"
 * ```
 * @throws {RiakRequestError} for props Riak refuses (e.g. last_write_wins without dvv_enabled=false).
 */
export function createdTypeProps(spec: BucketTypeSpec): RpbBucketProps {
  const props = commonProps();
  const dvvEnabled = spec.dvv_enabled ?? true;
  for (const [name, value] of Object.entries(spec)) {
    if (name === "dvv_enabled") continue;
    applyJsonProp(props, name, value);
  }
  if (props.datatype !== undefined) {
    const datatype = new TextDecoder().decode(props.datatype);
    if (!DATATYPES.includes(datatype)) {
      throw new RiakRequestError(`Invalid bucket type properties: [{datatype,${datatype}}]`);
    }
    if (props.allow_mult === false) {
      throw new RiakRequestError(
        `Invalid bucket properties: [{allow_mult,\n                                "Data Type buckets must be allow_mult=true"}]`,
      );
    }
    if (datatype === "hll" && props.hll_precision === undefined) props.hll_precision = 14;
  }
  // riak_kv_bucket:validate_create_bucket_type refuses lww with dvv (golden README, type lww).
  if (props.last_write_wins === true && dvvEnabled !== false) {
    throw new RiakRequestError("If last_write_wins is true, dvv_enabled must be false");
  }
  return props;
}

/**
 * What a bucket type given at start (`--bucket-type NAME:PROPS`) makes of the type `current`
 * the data directory has: a type it lacks is created with `spec`, as `riak admin bucket-type
 * create` does; a type it has gets the props `spec` names, as `riak admin bucket-type update`
 * does, and keeps the others (changed at runtime, say). Undefined when nothing changes.
 *
 * @example
 * ```ts
 * typePropsAtStart("lww", undefined, { last_write_wins: true, dvv_enabled: false }); // created
 * ```
 * @throws {Error} with a one-line reason for props Riak refuses, or a datatype changed.
 */
export function typePropsAtStart(
  name: string,
  current: RpbBucketProps | undefined,
  spec: BucketTypeSpec,
): RpbBucketProps | undefined {
  const refused = (reason: string) => new Error(`bucket type '${name}': ${reason}`);
  let wanted: RpbBucketProps;
  try {
    wanted = createdTypeProps(spec);
  } catch (error) {
    throw refused((error as Error).message.replace(/\s+/g, " "));
  }
  if (current === undefined) return wanted;
  if ("datatype" in spec && dataTypeOf(current) !== dataTypeOf(wanted)) {
    throw refused(
      `its datatype cannot change (${dataTypeOf(current) ?? "none"} in the data directory, ` +
        `${dataTypeOf(wanted)} asked)`,
    );
  }
  const change: Record<string, unknown> = {};
  for (const prop of Object.keys(spec)) {
    const value = (wanted as Record<string, unknown>)[prop];
    if (prop !== "dvv_enabled" && !sameProp((current as Record<string, unknown>)[prop], value)) {
      change[prop] = value;
    }
  }
  if (Object.keys(change).length === 0) return undefined;
  try {
    validatePropsChange(current, change as RpbBucketProps);
  } catch (error) {
    throw refused((error as Error).message.replace(/\s+/g, " "));
  }
  return mergeProps(current, change as RpbBucketProps);
}

function sameProp(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((byte, index) => byte === b[index]);
  }
  return a === b;
}

/** The JSON kind of each prop a type may be created with, as `riak admin` takes them. */
const PROP_KINDS: Record<string, "count" | "quorum" | "boolean" | "text"> = {
  n_val: "count",
  old_vclock: "count",
  young_vclock: "count",
  big_vclock: "count",
  small_vclock: "count",
  hll_precision: "count",
  pr: "quorum",
  r: "quorum",
  w: "quorum",
  pw: "quorum",
  dw: "quorum",
  rw: "quorum",
  allow_mult: "boolean",
  last_write_wins: "boolean",
  basic_quorum: "boolean",
  notfound_ok: "boolean",
  search: "boolean",
  consistent: "boolean",
  write_once: "boolean",
  backend: "text",
  search_index: "text",
  datatype: "text",
  repl: "text",
};

/** Riak's symbolic quorums and the numbers the protocol carries for them. */
const QUORUM_NAMES: Record<string, number> = {
  one: 4294967294,
  quorum: QUORUM,
  all: 4294967292,
  default: 4294967291,
};

function applyJsonProp(props: RpbBucketProps, name: string, value: unknown): void {
  const target = props as Record<string, unknown>;
  const kind = PROP_KINDS[name];
  const refuse = (): never => {
    throw new RiakRequestError(
      `Invalid bucket type properties: [{${name},${JSON.stringify(value)}}]`,
    );
  };
  switch (kind) {
    case "count":
    case "quorum":
      if (kind === "quorum" && typeof value === "string" && value in QUORUM_NAMES) {
        target[name] = QUORUM_NAMES[value];
      } else if (
        Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) < 2 ** 32
      ) {
        target[name] = value;
      } else refuse();
      return;
    case "boolean":
      if (typeof value !== "boolean") refuse();
      target[name] = value;
      return;
    case "text":
      if (typeof value !== "string") refuse();
      target[name] = name === "repl"
        ? (value as string).toUpperCase()
        : text.encode(value as string);
      return;
    default:
      throw new RiakRequestError(`Invalid bucket type properties: [{${name},unsupported}]`);
  }
}

/** The datatype a bucket type's props name, or undefined for a plain KV type. */
export function dataTypeOf(props: RpbBucketProps): DataTypeName | undefined {
  if (props.datatype === undefined) return undefined;
  return new TextDecoder().decode(props.datatype) as DataTypeName;
}

/**
 * Checks props sent with RpbSetBucketReq/RpbSetBucketTypeReq against the props they change,
 * with Riak's error texts (07-bucket-props set-invalid-n_val-0,
 * set-allow_mult-false-on-sets-type-bucket). Riak accepts allow_mult together with
 * last_write_wins, and a datatype on a default-type bucket (set-lww-and-allow_mult,
 * set-datatype-on-default), so those pass.
 *
 * @throws {RiakRequestError} when Riak refuses the change.
 */
export function validatePropsChange(current: RpbBucketProps, change: RpbBucketProps): void {
  if (change.n_val !== undefined && change.n_val <= 0) {
    throw new RiakRequestError("Invalid bucket properties: [{n_val,not_integer}]");
  }
  if (current.datatype !== undefined && change.allow_mult === false) {
    throw new RiakRequestError(
      `Invalid bucket properties: [{allow_mult,\n                                "Data Type buckets must be allow_mult=true"}]`,
    );
  }
}

/** Props with `change` applied over `base`; fields absent from `change` keep their value. */
export function mergeProps(base: RpbBucketProps, change: RpbBucketProps): RpbBucketProps {
  const merged: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(change)) {
    if (value !== undefined) merged[name] = value;
  }
  return merged as RpbBucketProps;
}

/** The bucket types a fresh server has: `default`, plus `sets`, `maps`, `counters`. */
export function builtInBucketTypes(): Map<string, RpbBucketProps> {
  return new Map([
    ["default", defaultTypeProps()],
    ["sets", createdTypeProps({ datatype: "set" })],
    ["maps", createdTypeProps({ datatype: "map" })],
    ["counters", createdTypeProps({ datatype: "counter" })],
  ]);
}

/**
 * The bucket types the golden transcripts and the test suite use besides the built-in ones,
 * created as the golden README describes them.
 */
export const TEST_BUCKET_TYPES: Readonly<Record<string, BucketTypeSpec>> = {
  kvmulti: {},
  lww: { last_write_wins: true, allow_mult: false, dvv_enabled: false },
};

/**
 * Parses a `NAME:JSONPROPS` bucket-type argument (`lww:{"last_write_wins":true,...}`); the
 * JSON may also be the full `{"props":{...}}` form `riak admin bucket-type create` takes.
 *
 * @throws {Error} with a one-line reason when the argument is malformed.
 */
export function parseBucketTypeArgument(argument: string): [string, BucketTypeSpec] {
  const colon = argument.indexOf(":");
  const name = colon < 0 ? argument : argument.slice(0, colon);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new Error(
      `bucket type '${argument}': expected NAME:JSONPROPS, e.g. sets:{"datatype":"set"}`,
    );
  }
  if (colon < 0) return [name, {}];
  let parsed: unknown;
  try {
    parsed = JSON.parse(argument.slice(colon + 1));
  } catch (error) {
    throw new Error(`bucket type '${name}': props are not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`bucket type '${name}': props must be a JSON object`);
  }
  const object = parsed as Record<string, unknown>;
  const props = typeof object.props === "object" && object.props !== null ? object.props : object;
  return [name, props as BucketTypeSpec];
}
