/**
 * Riak data types (CRDTs) on a single node: counters, sets (ORSWOT), maps, HyperLogLogs and
 * grow-only sets, with Riak's context rules and error texts.
 *
 * One node means one actor, so a dot is just the object's update counter. A set element or a
 * map field remembers the dot of the update that last added it; a remove that carries a
 * context removes it only when that dot is covered by the context, so an add the client did
 * not see survives a concurrent remove (add wins, as riak_dt_orswot and riak_dt_map do).
 * Without a context Riak removes whatever is there and refuses to remove what is absent
 * (08-crdt set-remove-absent-no-ctx).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type {
  DtOp,
  DtValue,
  MapEntry,
  MapField,
  MapFieldType,
  MapOp,
  MapUpdate,
  SetOp,
} from "../riak/messages.ts";
import type { DataTypeName } from "./bucket_types.ts";
import { crashError, erlangBinary, RiakRequestError } from "./errors.ts";

/** An ORSWOT's elements (bytes as latin1 strings) and the dot that last added each. */
export type ElementDots = Map<string, number>;

/** One field of a map: its identity, the dot of its last update and its value. */
export interface MapFieldState {
  name: string;
  type: MapFieldType;
  dot: number;
  counter?: number;
  set?: ElementDots;
  register?: string;
  flag?: boolean;
  map?: MapFields;
}

/** A map's fields by identity (`type` + NUL + name). */
export type MapFields = Map<string, MapFieldState>;

/** The state of one data type instance; `clock` is the counter of its last update. */
export type CrdtState =
  | { kind: "counter"; clock: number; value: number }
  | { kind: "set"; clock: number; elements: ElementDots }
  | { kind: "map"; clock: number; fields: MapFields }
  | { kind: "hll"; clock: number; elements: Set<string> }
  | { kind: "gset"; clock: number; elements: Set<string> };

/** The DtFetchResp.type enum name of each datatype. */
export const DT_TYPE_NAMES = {
  counter: "COUNTER",
  set: "SET",
  map: "MAP",
  hll: "HLL",
  gset: "GSET",
} as const;

/** A fresh, empty instance of `kind`. */
export function emptyCrdt(kind: DataTypeName): CrdtState {
  switch (kind) {
    case "counter":
      return { kind, clock: 0, value: 0 };
    case "set":
      return { kind, clock: 0, elements: new Map() };
    case "map":
      return { kind, clock: 0, fields: new Map() };
    case "hll":
    case "gset":
      return { kind, clock: 0, elements: new Set() };
  }
}

/** Which datatype an operation is for: the first member present, or undefined for an empty op. */
export function operationKind(op: DtOp): DataTypeName | undefined {
  if (op.counter_op !== undefined) return "counter";
  if (op.set_op !== undefined) return "set";
  if (op.map_op !== undefined) return "map";
  if (op.hll_op !== undefined) return "hll";
  if (op.gset_op !== undefined) return "gset";
  return undefined;
}

/**
 * Checks an update's operation against the bucket type's datatype, as Riak does.
 *
 * @throws {RiakRequestError} an Erlang crash (and closed connection) for an empty op
 * (08-crdt dt-update-empty-op), or Riak's text for an op of another type (dt-update-wrong-op).
 */
export function checkOperation(op: DtOp, datatype: DataTypeName): void {
  const kind = operationKind(op);
  if (kind === undefined) {
    throw crashError("function_clause:[{riak_pb_dt_codec,decode_operation,[{dtop,undefined}]}]");
  }
  if (kind !== datatype) {
    // Riak's text has two spaces before "bucket" (riak_kv_pb_crdt).
    throw new RiakRequestError(
      `Operation type is \`${kind}\` but  bucket type is \`${datatype}\`.`,
    );
  }
}

/** Whether an operation removes anything (only removes can be refused, see {@link applyOperation}). */
export function hasRemoves(op: DtOp): boolean {
  return (op.set_op?.removes?.length ?? 0) > 0 ||
    (op.map_op !== undefined && mapOpRemoves(op.map_op));
}

function mapOpRemoves(op: MapOp): boolean {
  return (op.removes?.length ?? 0) > 0 ||
    (op.updates ?? []).some((update) =>
      (update.set_op?.removes?.length ?? 0) > 0 ||
      (update.map_op !== undefined && mapOpRemoves(update.map_op))
    );
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
const fromLatin1 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
const toNumber = (value: number | bigint | undefined, fallback: number): number =>
  value === undefined ? fallback : Number(value);

/**
 * Applies an update in place and advances the state's clock (except for a set update that
 * only removes: riak_dt_orswot leaves its clock alone then, 08-crdt set-remove-present-ctx).
 * `context` is the clock the client's context covers, or undefined when it sent none.
 *
 * @throws {RiakRequestError} when a remove without context names something absent.
 */
export function applyOperation(state: CrdtState, op: DtOp, context: number | undefined): void {
  const advances = state.kind !== "set" || (op.set_op?.adds?.length ?? 0) > 0;
  const dot = advances ? state.clock + 1 : state.clock;
  switch (state.kind) {
    case "counter":
      state.value += toNumber(op.counter_op?.increment, 1);
      break;
    case "set":
      applySetOp(state.elements, op.set_op ?? {}, dot, context);
      break;
    case "map":
      applyMapOp(state.fields, op.map_op ?? {}, dot, context);
      break;
    case "hll":
      for (const element of op.hll_op?.adds ?? []) state.elements.add(latin1(element));
      break;
    case "gset":
      for (const element of op.gset_op?.adds ?? []) state.elements.add(latin1(element));
      break;
  }
  state.clock = dot;
}

function applySetOp(elements: ElementDots, op: SetOp, dot: number, context: number | undefined) {
  // riak_dt_orswot applies the sorted op list: add_all before remove_all.
  for (const element of op.adds ?? []) elements.set(latin1(element), dot);
  for (const element of op.removes ?? []) {
    const name = latin1(element);
    const added = elements.get(name);
    if (added === undefined) {
      if (context === undefined) {
        throw new RiakRequestError(`{precondition,{not_present,${erlangBinary(element)}}}`);
      }
      continue;
    }
    if (context === undefined || added <= context) elements.delete(name);
  }
}

const FIELD_MODULES: Record<MapFieldType, string> = {
  COUNTER: "riak_dt_emcntr",
  REGISTER: "riak_dt_lwwreg",
  MAP: "riak_dt_map",
  FLAG: "riak_dt_od_flag",
  SET: "riak_dt_orswot",
};

function fieldId(field: MapField): string {
  return `${field.type}\0${latin1(field.name)}`;
}

function applyMapOp(fields: MapFields, op: MapOp, dot: number, context: number | undefined) {
  for (const field of op.removes ?? []) {
    const id = fieldId(field);
    const state = fields.get(id);
    if (state === undefined) {
      if (context === undefined) {
        throw new RiakRequestError(
          `{precondition,{not_present,{${erlangBinary(field.name)},${FIELD_MODULES[field.type]}}}}`,
        );
      }
      continue;
    }
    if (context === undefined || state.dot <= context) fields.delete(id);
  }
  for (const update of op.updates ?? []) applyFieldUpdate(fields, update, dot, context);
}

function applyFieldUpdate(
  fields: MapFields,
  update: MapUpdate,
  dot: number,
  context: number | undefined,
): void {
  const id = fieldId(update.field);
  let field = fields.get(id);
  const created = field === undefined;
  field ??= { name: latin1(update.field.name), type: update.field.type, dot };
  switch (update.field.type) {
    case "COUNTER":
      field.counter = (field.counter ?? 0) + toNumber(update.counter_op?.increment, 1);
      break;
    case "REGISTER":
      field.register = latin1(update.register_op ?? new Uint8Array(0));
      break;
    case "FLAG":
      field.flag = update.flag_op === "ENABLE";
      break;
    case "SET":
      field.set ??= new Map();
      applySetOp(field.set, update.set_op ?? {}, dot, context);
      break;
    case "MAP":
      field.map ??= new Map();
      applyMapOp(field.map, update.map_op ?? {}, dot, context);
      break;
  }
  field.dot = dot;
  if (created) fields.set(id, field);
}

/** The value a fetch reports (DtValue) for a state. */
export function crdtValue(state: CrdtState): DtValue {
  switch (state.kind) {
    case "counter":
      return { counter_value: state.value };
    case "set":
      return { set_value: sortedElements(state.elements.keys()) };
    case "map":
      return { map_value: mapEntries(state.fields) };
    case "hll":
      return { hll_value: state.elements.size };
    case "gset":
      return { gset_value: sortedElements(state.elements.values()) };
  }
}

function sortedElements(elements: Iterable<string>): Uint8Array[] | undefined {
  const sorted = [...elements].sort();
  return sorted.length === 0 ? undefined : sorted.map(fromLatin1);
}

// riak_dt_map orders fields by {Name, Module}: for one name, emcntr < lwwreg < map < od_flag < orswot.
const FIELD_ORDER: Record<MapFieldType, number> = {
  COUNTER: 0,
  REGISTER: 1,
  MAP: 2,
  FLAG: 3,
  SET: 4,
};

function mapEntries(fields: MapFields): MapEntry[] | undefined {
  if (fields.size === 0) return undefined;
  const sorted = [...fields.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : FIELD_ORDER[a.type] - FIELD_ORDER[b.type]
  );
  return sorted.map((field) => {
    const entry: MapEntry = { field: { name: fromLatin1(field.name), type: field.type } };
    switch (field.type) {
      case "COUNTER":
        entry.counter_value = field.counter ?? 0;
        break;
      case "REGISTER":
        entry.register_value = fromLatin1(field.register ?? "");
        break;
      case "FLAG":
        entry.flag_value = field.flag ?? false;
        break;
      case "SET":
        entry.set_value = sortedElements(field.set?.keys() ?? []);
        break;
      case "MAP":
        entry.map_value = mapEntries(field.map ?? new Map());
        break;
    }
    return entry;
  });
}

/** Whether fetches and updates of this kind carry a context (Riak: only sets and maps). */
export function hasContext(state: CrdtState): boolean {
  return state.kind === "set" || state.kind === "map";
}

/** A JSON-safe copy of a state, for the log and for KV gets of a CRDT object. */
export function crdtToJson(state: CrdtState): unknown {
  switch (state.kind) {
    case "counter":
      return state;
    case "set":
      return { ...state, elements: [...state.elements] };
    case "map":
      return { ...state, fields: fieldsToJson(state.fields) };
    case "hll":
    case "gset":
      return { ...state, elements: [...state.elements] };
  }
}

function fieldsToJson(fields: MapFields): unknown[] {
  return [...fields].map(([id, field]) => [id, {
    ...field,
    set: field.set && [...field.set],
    map: field.map && fieldsToJson(field.map),
  }]);
}

/** Rebuilds a state written by {@link crdtToJson}. */
export function crdtFromJson(json: unknown): CrdtState {
  // deno-lint-ignore no-explicit-any
  const state = json as any;
  switch (state.kind) {
    case "set":
      return { ...state, elements: new Map(state.elements) };
    case "map":
      return { ...state, fields: fieldsFromJson(state.fields) };
    case "hll":
    case "gset":
      return { ...state, elements: new Set(state.elements) };
    default:
      return state as CrdtState;
  }
}

// deno-lint-ignore no-explicit-any
function fieldsFromJson(json: any[]): MapFields {
  return new Map(json.map(([id, field]) => [id, {
    ...field,
    set: field.set && new Map(field.set),
    map: field.map && fieldsFromJson(field.map),
  }]));
}
