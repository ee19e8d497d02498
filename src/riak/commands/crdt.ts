/**
 * CRDT (Riak data type) commands: sets, maps and counters, fetched and updated with their
 * opaque context. The bucket type must have the matching `datatype` property.
 *
 * Retries: set operations and map operations without counters are idempotent (adding a
 * member twice, setting a register twice, removing with the same context twice all end in
 * the same state); counter increments are not, so a counter update (or a map update that
 * touches a counter) is never repeated after a failure in which it may have been applied.
 * Neither is an update without a key: Riak would generate a second key, a second object.
 *
 * @module
 */
import {
  type DtFetchReq,
  type DtFetchResp,
  type DtOp,
  type DtUpdateResp,
  type Int64,
  type MapEntry,
  type MapField,
  type MapFieldType,
  type MapOp,
  type MapUpdate,
  MessageCode,
} from "../messages.ts";
import { type Command, command } from "./command.ts";
import {
  type Bytes,
  label,
  type Location,
  quorum,
  type QuorumValue,
  toBytes,
  toText,
} from "./values.ts";

/** A data type's location: the bucket type is required. */
export type DataTypeLocation = Location & { type: string };

/** Options of a fetch. */
export interface FetchOptions {
  r?: QuorumValue;
  pr?: QuorumValue;
  basicQuorum?: boolean;
  notfoundOk?: boolean;
  /** Default true: return the context that removals need. */
  includeContext?: boolean;
  serverTimeoutMs?: number;
}

/** Options of an update. */
export interface UpdateOptions {
  /** The context from a fetch; required to remove set members or map fields safely. */
  context?: Uint8Array;
  w?: QuorumValue;
  dw?: QuorumValue;
  pw?: QuorumValue;
  /** Return the new value (and context). */
  returnBody?: boolean;
  serverTimeoutMs?: number;
}

/** A fetched set. */
export interface SetValue {
  found: boolean;
  members: Uint8Array[];
  context?: Uint8Array;
}

/** A fetched counter (0 when not found). */
export interface CounterValue {
  found: boolean;
  value: Int64;
}

/**
 * A fetched map, by field type and then field name (UTF-8). A field name may appear under
 * several types: they are different fields.
 */
export interface MapValue {
  counters: Record<string, Int64>;
  sets: Record<string, Uint8Array[]>;
  registers: Record<string, Uint8Array>;
  flags: Record<string, boolean>;
  maps: Record<string, MapValue>;
}

/** A fetched map with its context. */
export interface FetchedMap {
  found: boolean;
  value: MapValue;
  context?: Uint8Array;
}

/** What an update returned: the generated key, and the value with returnBody. */
export interface UpdateResult<T> {
  key?: Uint8Array;
  context?: Uint8Array;
  value?: T;
}

/** Set changes. */
export interface SetChange {
  add?: Bytes[];
  remove?: Bytes[];
}

function fetchMessage(location: DataTypeLocation, options: FetchOptions): DtFetchReq {
  return {
    bucket: toBytes(location.bucket),
    key: toBytes(location.key),
    type: toBytes(location.type),
    r: quorum(options.r),
    pr: quorum(options.pr),
    basic_quorum: options.basicQuorum,
    notfound_ok: options.notfoundOk,
    timeout: options.serverTimeoutMs,
    include_context: options.includeContext,
  };
}

function fetchCommand<T>(
  location: DataTypeLocation,
  options: FetchOptions,
  parse: (r: DtFetchResp) => T,
) {
  return command({
    code: MessageCode.DtFetchReq,
    message: fetchMessage(location, options),
    responseCode: MessageCode.DtFetchResp,
    idempotent: true,
    label: label(MessageCode.DtFetchReq, location),
    parse,
  });
}

/** Builds a set fetch. */
export function fetchSetCommand(
  location: DataTypeLocation,
  options: FetchOptions = {},
): Command<SetValue> {
  return fetchCommand(location, options, (response) => ({
    found: response.value !== undefined,
    members: response.value?.set_value ?? [],
    context: response.context,
  }));
}

/** Builds a counter fetch. */
export function fetchCounterCommand(
  location: DataTypeLocation,
  options: FetchOptions = {},
): Command<CounterValue> {
  return fetchCommand(location, options, (response) => ({
    found: response.value !== undefined,
    value: response.value?.counter_value ?? 0,
  }));
}

/** Builds a map fetch. */
export function fetchMapCommand(
  location: DataTypeLocation,
  options: FetchOptions = {},
): Command<FetchedMap> {
  return fetchCommand(location, options, (response) => ({
    found: response.value !== undefined,
    value: mapFromEntries(response.value?.map_value ?? []),
    context: response.context,
  }));
}

/** Converts fetched map entries into a {@link MapValue}. */
export function mapFromEntries(entries: MapEntry[]): MapValue {
  const map: MapValue = { counters: {}, sets: {}, registers: {}, flags: {}, maps: {} };
  for (const entry of entries) {
    const name = toText(entry.field.name);
    switch (entry.field.type) {
      case "COUNTER":
        map.counters[name] = entry.counter_value ?? 0;
        break;
      case "SET":
        map.sets[name] = entry.set_value ?? [];
        break;
      case "REGISTER":
        map.registers[name] = entry.register_value ?? new Uint8Array(0);
        break;
      case "FLAG":
        map.flags[name] = entry.flag_value === true;
        break;
      case "MAP":
        map.maps[name] = mapFromEntries(entry.map_value ?? []);
        break;
    }
  }
  return map;
}

/** A data type update's location: without a key, Riak generates one. */
export type DataTypeUpdateLocation = Omit<DataTypeLocation, "key"> & { key?: Bytes };

function updateCommand<T>(
  location: DataTypeUpdateLocation,
  op: DtOp,
  options: UpdateOptions,
  idempotent: boolean,
  value: (response: DtUpdateResp) => T,
): Command<UpdateResult<T>> {
  return command({
    code: MessageCode.DtUpdateReq,
    message: {
      bucket: toBytes(location.bucket),
      key: location.key === undefined ? undefined : toBytes(location.key),
      type: toBytes(location.type),
      context: options.context,
      op,
      w: quorum(options.w),
      dw: quorum(options.dw),
      pw: quorum(options.pw),
      return_body: options.returnBody,
      timeout: options.serverTimeoutMs,
    },
    responseCode: MessageCode.DtUpdateResp,
    // without a key, a repeat creates another object under another generated key
    idempotent: idempotent && location.key !== undefined,
    label: label(MessageCode.DtUpdateReq, location),
    parse: (response) => ({
      key: response.key,
      context: response.context,
      value: options.returnBody ? value(response) : undefined,
    }),
  });
}

/** Builds a set update. */
export function updateSetCommand(
  location: DataTypeUpdateLocation,
  change: SetChange,
  options: UpdateOptions = {},
): Command<UpdateResult<Uint8Array[]>> {
  const op = { set_op: { adds: change.add?.map(toBytes), removes: change.remove?.map(toBytes) } };
  return updateCommand(location, op, options, true, (response) => response.set_value ?? []);
}

/** Builds a counter increment (negative to decrement). Never retried once it may have been applied. */
export function updateCounterCommand(
  location: DataTypeUpdateLocation,
  increment: Int64,
  options: UpdateOptions = {},
): Command<UpdateResult<Int64>> {
  return updateCommand(
    location,
    { counter_op: { increment } },
    options,
    false,
    (r) => r.counter_value ?? 0,
  );
}

/** Builds a map update from a raw MapOp (see {@link mapField} and the `MapUpdate` type). */
export function updateMapCommand(
  location: DataTypeUpdateLocation,
  op: MapOp,
  options: UpdateOptions = {},
): Command<UpdateResult<MapValue>> {
  return updateCommand(
    location,
    { map_op: op },
    options,
    !touchesCounter(op),
    (response) => mapFromEntries(response.map_value ?? []),
  );
}

/** A map field identity for a MapOp: its name (text or bytes) and type. */
export function mapField(name: Bytes, type: MapFieldType): MapField {
  return { name: toBytes(name), type };
}

function touchesCounter(op: MapOp): boolean {
  return (op.updates ?? []).some((update: MapUpdate) =>
    update.counter_op !== undefined ||
    (update.map_op !== undefined && touchesCounter(update.map_op))
  );
}
