/**
 * Replays every golden transcript (../shared/riak-golden) against the embedded server, as the
 * transcripts' README describes: fresh bucket prefix, requests in order on their logical
 * connections, `ref` values taken from this server's own answers, opaque values compared by
 * identity, timestamps and server info by presence, streamed answers by content with the
 * `compare` hints, and `closed` events.
 */
import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { encodeFrame, type Frame } from "../riak/frame.ts";
import { type ConnectionEvent, TestConnection } from "./_test_connection.ts";
import {
  bytesToHex,
  digestLargeBytes,
  type GoldenStep,
  goldenToMessage,
  type GoldenTranscript,
  loadGoldenTranscripts,
} from "../riak/golden.ts";
import { startEmbeddedRiak } from "./embedded.ts";
import { TEST_BUCKET_TYPES } from "./bucket_types.ts";

/** Steps not replayed, with the reason. */
const SKIPPED: Record<string, string> = {
  "08-crdt/counter-with-context":
    "Riak answers 'timeout' only after its 60 s default; the embedded server applies the increment",
  "08-crdt/kv-get-set-object":
    "a KV get of a CRDT returns Riak's serialized riak_dt_orswot binary (with actor ids), not reproducible",
};

/** A crash report of Riak's connection process: only its start is compared (it embeds Erlang state). */
const CRASH_PREFIX = "Error processing incoming message: error:";

/** Opaque kinds compared by identity (the rest by presence). */
const IDENTITY_KINDS = new Set(["vclock", "vtag", "context", "key", "continuation", "client_id"]);

type Event = ConnectionEvent;

interface ReplayState {
  transcript: GoldenTranscript;
  /** Decoded answers of each step, for `ref`. */
  answers: Map<string, Record<string, unknown>[]>;
  /** Recorded opaque id -> replayed hex, and back. */
  idToHex: Map<string, string>;
  hexToId: Map<string, string>;
}

function withFreshPrefix(transcript: GoldenTranscript): GoldenTranscript {
  const fresh = `rg${randomBytes(4).toString("hex")}`;
  const old = transcript.prefix;
  const toHex = (s: string) => Buffer.from(s).toString("hex");
  const text = JSON.stringify(transcript).replaceAll(old, fresh).replaceAll(
    toHex(old),
    toHex(fresh),
  );
  return JSON.parse(text);
}

function lookupPath(message: Record<string, unknown>, path: string): unknown {
  let value: unknown = message;
  for (const part of path.split(".")) value = (value as Record<string, unknown>)?.[part];
  return value;
}

/** Replaces request opaque values that carry `ref` with this server's own answers. */
function resolveRefs(value: unknown, state: ReplayState): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveRefs(item, state));
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  if ("$opaque" in object && object.ref !== undefined) {
    const ref = object.ref as { step: string; path: string; frame: number | "last" };
    const frames = state.answers.get(ref.step) ?? [];
    const carrying = frames.filter((frame) => lookupPath(frame, ref.path) !== undefined);
    const frame = ref.frame === "last" ? carrying[carrying.length - 1] : frames[ref.frame];
    const bytes = frame === undefined ? undefined : lookupPath(frame, ref.path);
    assert.ok(bytes instanceof Uint8Array, `ref ${ref.step}/${ref.path} has no value`);
    return { hex: bytesToHex(bytes) };
  }
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(object)) copy[name] = resolveRefs(field, state);
  return copy;
}

function requestBytes(step: GoldenStep, state: ReplayState): Uint8Array {
  const request = step.request;
  if (request.raw === true) return Buffer.from(request.hex!, "hex");
  const fields = goldenToMessage(resolveRefs(request.fields ?? {}, state)) as object;
  return encodeFrame(request.code!, encodeMessage(request.code!, fields));
}

/** Compares a recorded field value with a decoded one; returns the differences. */
function compare(expected: unknown, actual: unknown, path: string, state: ReplayState): string[] {
  if (expected === undefined) {
    return actual === undefined ? [] : [`${path}: unexpected ${show(actual)}`];
  }
  if (actual === undefined) return [`${path}: missing, expected ${show(expected)}`];
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${path}: expected ${show(expected)}, got ${show(actual)}`];
    }
    return expected.flatMap((item, i) => compare(item, actual[i], `${path}.${i}`, state));
  }
  if (expected !== null && typeof expected === "object") {
    const object = expected as Record<string, unknown>;
    if ("$opaque" in object) {
      if (!IDENTITY_KINDS.has(object.$opaque as string)) return [];
      const id = object.id as string;
      const hex = bytesToHex(actual as Uint8Array);
      const mappedHex = state.idToHex.get(id);
      const mappedId = state.hexToId.get(hex);
      if (mappedHex === undefined && mappedId === undefined) {
        state.idToHex.set(id, hex);
        state.hexToId.set(hex, id);
        return [];
      }
      return mappedHex === hex && mappedId === id ? [] : [
        `${path}: opaque ${id} maps to ${mappedHex ?? "-"}, got ${hex} (seen as ${
          mappedId ?? "-"
        })`,
      ];
    }
    if ("utf8" in object || "hex" in object || "$big" in object || "hex_redacted" in object) {
      const want = goldenToMessage(object);
      const redacted = "hex_redacted" in object; // only crash reports held build paths
      if (redacted || (typeof object.utf8 === "string" && object.utf8.startsWith(CRASH_PREFIX))) {
        const text = new TextDecoder().decode(actual as Uint8Array);
        return text.startsWith(CRASH_PREFIX)
          ? []
          : [`${path}: expected a crash report, got ${text}`];
      }
      return deepEqualOrDiff(want, digestLargeBytes(actual), path);
    }
    if (typeof actual !== "object" || actual === null) {
      return [`${path}: expected ${show(expected)}, got ${show(actual)}`];
    }
    const names = new Set([...Object.keys(object), ...Object.keys(actual)]);
    return [...names].flatMap((name) =>
      compare(object[name], (actual as Record<string, unknown>)[name], `${path}.${name}`, state)
    );
  }
  if (typeof expected === "string" && /^-?\d+$/.test(expected)) {
    return String(actual) === expected
      ? []
      : [`${path}: expected ${expected}, got ${show(actual)}`];
  }
  return expected === actual ? [] : [`${path}: expected ${show(expected)}, got ${show(actual)}`];
}

function deepEqualOrDiff(want: unknown, got: unknown, path: string): string[] {
  try {
    assert.deepEqual(got, want);
    return [];
  } catch {
    return [`${path}: expected ${show(want)}, got ${show(got)}`];
  }
}

function show(value: unknown): string {
  if (value instanceof Uint8Array) return JSON.stringify(new TextDecoder().decode(value));
  return JSON.stringify(
    value,
    (_k, v) =>
      v instanceof Uint8Array ? new TextDecoder().decode(v) : typeof v === "bigint" ? String(v) : v,
  )
    ?.slice(0, 300);
}

/** Collects a step's answer frames by its `collect` rule. */
async function collect(connection: TestConnection, step: GoldenStep): Promise<Event[]> {
  const timeout = Math.min(step.timeout_ms ?? 10000, 15000);
  const events: Event[] = [];
  const expectsClose = step.responses.some((r) => r.event === "closed");
  const want = step.collect.mode === "frames" ? step.collect.n! : 1;
  while (true) {
    const event = await connection.next(timeout);
    events.push(event);
    if (event === "closed" || event === "timeout") return events;
    const frames = events.filter((e) => typeof e === "object").length;
    if (event.code === 0) {
      if (expectsClose) events.push(await connection.next(2000));
      return events;
    }
    if (step.collect.mode === "stream") {
      const decoded = decodeMessage(event.code, event.body) as { done?: boolean };
      if (decoded.done === true) return events;
      continue;
    }
    if (step.collect.mode === "window") continue;
    if (frames >= want) return events;
  }
}

function compareStep(step: GoldenStep, events: Event[], state: ReplayState): string[] {
  const frames = events.filter((e): e is Frame => typeof e === "object");
  const decoded = frames.map((f) => decodeMessage(f.code, f.body) as Record<string, unknown>);
  state.answers.set(step.id, decoded);
  const expectedFrames = step.responses.filter((r) => r.event === undefined);
  const differences: string[] = [];
  const closedExpected = step.responses.some((r) => r.event === "closed");
  const closedSeen = events.includes("closed");
  if (closedExpected !== closedSeen) {
    differences.push(`closed: expected ${closedExpected}, got ${closedSeen}`);
  }
  if (step.compare !== undefined) {
    const field = step.compare.unordered;
    const ownPrefix = step.compare.own_prefix;
    const itemsOf = (messages: Record<string, unknown>[], recorded: boolean) => {
      const items: string[] = [];
      for (const message of messages) {
        for (const item of (message[field] as unknown[] | undefined) ?? []) {
          const value = recorded ? goldenToMessage(item) : item;
          const text = field === "results"
            ? `${show((value as { key: unknown }).key)}=${
              show((value as { value: unknown }).value)
            }`
            : show(value);
          if (ownPrefix === undefined || text.startsWith(JSON.stringify(ownPrefix).slice(0, -1))) {
            items.push(text);
          }
        }
      }
      return items.sort();
    };
    const recorded = expectedFrames.map((r) => r.fields ?? {});
    differences.push(...deepEqualOrDiff(itemsOf(recorded, true), itemsOf(decoded, false), field));
    const codes = (list: { code?: number }[]) => [...new Set(list.map((f) => f.code))].sort();
    differences.push(...deepEqualOrDiff(codes(expectedFrames), codes(frames), "codes"));
    const rest = (messages: Record<string, unknown>[]) =>
      Object.assign({}, ...messages.map((m) => ({ ...m, [field]: undefined })));
    differences.push(...compare(rest(recorded), rest(decoded), "rest", state));
    return differences;
  }
  if (expectedFrames.length !== frames.length) {
    differences.push(
      `frames: expected ${expectedFrames.length} (${expectedFrames.map((f) => f.name)}), got ${
        frames.map((f) => f.code)
      } ${show(decoded)}`,
    );
    return differences;
  }
  expectedFrames.forEach((expected, i) => {
    if (expected.code !== frames[i].code) {
      differences.push(
        `frame ${i}: expected code ${expected.code}, got ${frames[i].code} ${show(decoded[i])}`,
      );
      return;
    }
    differences.push(...compare(expected.fields ?? {}, decoded[i], `r${i}`, state));
  });
  return differences;
}

async function replay(transcript: GoldenTranscript, port: number): Promise<string[]> {
  const fresh = withFreshPrefix(transcript);
  const state: ReplayState = {
    transcript: fresh,
    answers: new Map(),
    idToHex: new Map(),
    hexToId: new Map(),
  };
  const connections = new Map<string, TestConnection>();
  const failures: string[] = [];
  try {
    for (const step of fresh.steps) {
      const name = `${transcript.scenario}/${step.id}`;
      if (SKIPPED[name] !== undefined) continue;
      let connection = connections.get(step.conn);
      if (step.new_connection !== true && connection?.closed === true) {
        failures.push(`${name}: the connection was closed, Riak kept it open`);
      }
      if (step.new_connection === true || connection === undefined || connection.closed) {
        connection?.destroy();
        connection = new TestConnection(port);
        connections.set(step.conn, connection);
      }
      const bytes = requestBytes(step, state);
      if (step.split !== undefined) {
        connection.write(bytes.subarray(0, step.split.at));
        await new Promise((resolve) => setTimeout(resolve, Math.min(step.split!.delay_ms, 50)));
        connection.write(bytes.subarray(step.split.at));
      } else {
        connection.write(bytes);
      }
      const events = await collect(connection, step);
      for (const difference of compareStep(step, events, state)) {
        failures.push(`${name}: ${difference}`);
      }
    }
  } finally {
    for (const connection of connections.values()) connection.destroy();
  }
  return failures;
}

for (const transcript of loadGoldenTranscripts()) {
  Deno.test(`golden replay ${transcript.scenario}`, async () => {
    const riak = await startEmbeddedRiak({
      memory: true,
      bucketTypes: { ...TEST_BUCKET_TYPES, hlls: { datatype: "hll" }, gsets: { datatype: "gset" } },
    });
    try {
      const failures = await replay(transcript, riak.port);
      assert.deepEqual(failures, [], failures.join("\n"));
    } finally {
      await riak.close();
    }
  });
}
