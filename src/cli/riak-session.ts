/**
 * Resolves the shared Riak options of src/cli/riak-options.ts (flags over environment over
 * config file over defaults) into settings, and runs a command's body with a Riak client
 * or a store on the configured namespace. Loaded when a command runs, not for `--help`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Buffer } from "node:buffer";
import type { Command } from "commander";
import {
  type ClusterOptions,
  ConnectionError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STALL_CHECK_AFTER_MS,
  parseNodeList,
  type QuorumValue,
  readPassword,
  RiakClient,
  RiakError,
  TimeoutError,
} from "../riak/mod.ts";
import type { LayoutPreset, NamespaceOptions } from "../store/layout.ts";
import type { NodePing } from "../overlay/control.ts";
import { StoreError } from "../store/errors.ts";
import { riakStoreClient } from "../store/riak_adapter.ts";
import { Store } from "../store/store.ts";
import { MAX_TIMER_MS } from "../util/timers.ts";
import { decimal } from "./numbers.ts";
import { ClosedPipe, type Output, StdoutWriteError, watchStdout, writeStdout } from "./stdout.ts";
import { DEFAULT_RIAK_NODE, PASSWORD_ENV, riakEnvOf, TLS_ENV } from "./riak-options.ts";

/** Connection settings resolved from flags, environment and config file. */
export interface RiakSettings {
  /** Nodes as `host:port`. */
  nodes: string[];
  /** TLS (RpbStartTls) settings; undefined = plain TCP. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Riak security credentials; undefined = no authentication. */
  auth?: { user: string; password: string };
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Wait for an answer after which a node is pinged, slow or hung? 0: never. */
  stallCheckAfterMs: number;
  /** A node whose ping is not answered within this leaves rotation (unless it is the last). */
  pingTimeoutMs: number;
  /** Write quorums a write must reach to be reported stored. */
  w?: QuorumValue;
  dw?: QuorumValue;
}

/** Everything a command needs to reach its namespace. */
export interface RiakCommandSettings {
  riak: RiakSettings;
  namespace: NamespaceOptions;
}

/** The shape of the config file (JSON); every field optional, same meaning as the flag. */
export interface RiakConfigFile {
  riak?: string | string[];
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  user?: string;
  passwordFile?: string;
  connectTimeout?: number;
  requestTimeout?: number;
  stallCheckAfter?: number;
  pingTimeout?: number;
  w?: QuorumValue;
  dw?: QuorumValue;
  bucketType?: string;
  bucket?: string;
  setsBucketType?: string;
  layout?: LayoutPreset;
  chunkSize?: number;
  riakFuse?: NamespaceOptions["riakFuse"];
  /** Config file only (no flag): they rarely change, and never once data is written. */
  chunkBucket?: string;
  directoryBucket?: string;
  shardCapacity?: number;
  shardFanout?: number;
}

/** Bad connection configuration: one line naming the setting, reported as a usage error. */
export class RiakConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RiakConfigError";
  }
}

/** Raw option values as commander parses them: the config file's names, as strings. */
type RawOptions =
  & {
    [
      K in Exclude<
        keyof RiakConfigFile,
        "tls" | "riakFuse" | "chunkBucket" | "directoryBucket" | "shardCapacity" | "shardFanout"
      >
    ]?: string;
  }
  & { tls?: boolean; config?: string }
  & { [K in keyof typeof RIAK_FUSE_FLAGS]?: string };

/** The riak-fuse flags (raw option keys) and the `riakFuse` names of the config file they set. */
const RIAK_FUSE_FLAGS = {
  riakFuseContentPrefix: "contentPrefix",
  riakFuseDirectoryPrefix: "directoryPrefix",
  riakFuseDirectoryKey: "directoryKey",
  riakFuseContentType: "contentType",
} as const;

/**
 * Resolves the shared options of a command (as commander parsed them) into settings, reading
 * the config file and the password. Throws {@link RiakConfigError} on bad values.
 *
 * `environmentOnly` names the shared flags the command has with another meaning (mount's
 * `--request-timeout`): their setting comes from the environment or the config file alone,
 * and an error names the environment variable, not the command's own flag.
 */
export function riakSettingsFromOptions(
  opts: Record<string, unknown>,
  command?: Command,
  environmentOnly: readonly string[] = [],
): RiakCommandSettings {
  const raw = { ...opts } as RawOptions & Record<string, unknown>;
  for (const flag of environmentOnly) raw[keyOf(flag)] = process.env[riakEnvOf(flag)];
  // An empty one (RIAKFS_CONFIG= or --config "$FILE" with FILE unset) must not quietly
  // mean "no config file": the settings it was meant to bring would be defaults.
  if (raw.config === "") throw new RiakConfigError("--config must not be empty");
  const config = raw.config !== undefined ? readConfigFile(raw.config) : {};
  /**
   * What an error calls a setting: its flag, or where its value came from when that was not
   * the command line (an operator reading "--w" looks for it there, not in the environment).
   */
  const named = (flag: string, given: unknown): string => {
    const key = keyOf(flag);
    if (given === undefined) {
      return raw.config === undefined ? flag : `--config ${raw.config}: ${key}`;
    }
    if (environmentOnly.includes(flag)) return riakEnvOf(flag);
    return command?.getOptionValueSource(key) === "env" ? `${riakEnvOf(flag)} (${flag})` : flag;
  };
  const nodesText = raw.riak ?? joinNodes(config.riak) ?? DEFAULT_RIAK_NODE;
  let nodes: string[];
  try {
    nodes = parseNodeList(nodesText).map(({ host, port }) =>
      host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
    );
  } catch (error) {
    throw new RiakConfigError(`${named("--riak", raw.riak)}: ${(error as Error).message}`);
  }
  const tlsFiles = {
    caFile: raw.tlsCa ?? config.tlsCa,
    certFile: raw.tlsCert ?? config.tlsCert,
    keyFile: raw.tlsKey ?? config.tlsKey,
  };
  const tlsOn = (raw.tls ?? switchFromEnv(TLS_ENV) ?? config.tls ?? false) ||
    tlsFiles.caFile !== undefined || tlsFiles.certFile !== undefined;
  if (tlsOn) checkTlsFiles(tlsFiles);
  const user = raw.user ?? config.user;
  if (user === undefined && (raw.passwordFile ?? config.passwordFile) !== undefined) {
    throw new RiakConfigError("--password-file needs --user");
  }
  if (user !== undefined && !tlsOn) {
    throw new RiakConfigError(
      `--user ${user} needs --tls: Riak accepts credentials only over TLS (add --tls and --tls-ca)`,
    );
  }
  let auth: RiakSettings["auth"];
  if (user !== undefined) {
    try {
      auth = {
        user,
        // Flag, then environment, then config file, as every other setting.
        password: raw.passwordFile !== undefined
          ? readPassword({ file: raw.passwordFile })
          : readPassword({ env: PASSWORD_ENV, file: config.passwordFile }),
      };
    } catch (error) {
      throw new RiakConfigError(
        `--user ${user}: ${(error as Error).message}; set ${PASSWORD_ENV} or --password-file`,
      );
    }
  }
  const layout = raw.layout ?? config.layout;
  if (layout !== undefined && layout !== "default" && layout !== "riak-fuse") {
    throw new RiakConfigError(
      `${named("--layout", raw.layout)} must be default or riak-fuse, got ${
        JSON.stringify(layout)
      }`,
    );
  }
  const chunkSize = raw.chunkSize ?? config.chunkSize;
  for (
    const [flag, value] of [["--bucket", raw.bucket], ["--bucket-type", raw.bucketType], [
      "--sets-bucket-type",
      raw.setsBucketType,
    ]]
  ) {
    if (value === "") throw new RiakConfigError(`${named(flag!, value)} must not be empty`);
  }
  return {
    riak: {
      nodes,
      tls: tlsOn ? tlsFiles : undefined,
      auth,
      connectTimeoutMs: positiveInteger(
        raw.connectTimeout ?? config.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
        named("--connect-timeout", raw.connectTimeout),
        MAX_TIMER_MS,
      ),
      requestTimeoutMs: positiveInteger(
        raw.requestTimeout ?? config.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS,
        named("--request-timeout", raw.requestTimeout),
        MAX_TIMER_MS,
      ),
      stallCheckAfterMs: wholeNumber(
        raw.stallCheckAfter ?? config.stallCheckAfter ?? DEFAULT_STALL_CHECK_AFTER_MS,
        named("--stall-check-after", raw.stallCheckAfter),
        MAX_TIMER_MS,
        " (0 turns the check off)",
      ),
      pingTimeoutMs: positiveInteger(
        raw.pingTimeout ?? config.pingTimeout ?? DEFAULT_PING_TIMEOUT_MS,
        named("--ping-timeout", raw.pingTimeout),
        MAX_TIMER_MS,
      ),
      w: parseQuorum(raw.w ?? config.w, named("--w", raw.w)),
      dw: parseQuorum(raw.dw ?? config.dw, named("--dw", raw.dw)),
    },
    namespace: {
      bucketType: raw.bucketType ?? config.bucketType,
      bucket: raw.bucket ?? config.bucket,
      setsBucketType: raw.setsBucketType ?? config.setsBucketType,
      preset: layout,
      riakFuse: riakFuseNames(raw, config.riakFuse),
      chunkSize: chunkSize === undefined
        ? undefined
        : chunkSizeOf(chunkSize, named("--chunk-size", raw.chunkSize)),
      chunkBucket: config.chunkBucket,
      directoryBucket: config.directoryBucket,
      shardCapacity: config.shardCapacity === undefined
        ? undefined
        : positiveInteger(config.shardCapacity, `--config ${raw.config}: shardCapacity`),
      shardFanout: config.shardFanout === undefined
        ? undefined
        : shardFanout(config.shardFanout, `--config ${raw.config}: shardFanout`),
    },
  };
}

/** The riak-fuse names of the config file, with those the flags (or environment) give over them. */
function riakFuseNames(
  raw: RawOptions,
  fromConfig: NamespaceOptions["riakFuse"],
): NamespaceOptions["riakFuse"] {
  const names = { ...fromConfig };
  for (const [key, name] of Object.entries(RIAK_FUSE_FLAGS)) {
    const value = raw[key as keyof typeof RIAK_FUSE_FLAGS];
    if (value !== undefined) names[name] = value;
  }
  return Object.keys(names).length > 0 ? names : undefined;
}

/** The Riak client's cluster options for resolved settings. */
export function clusterOptionsFromSettings(riak: RiakSettings): ClusterOptions {
  return {
    nodes: riak.nodes,
    connectTimeoutMs: riak.connectTimeoutMs,
    requestTimeoutMs: riak.requestTimeoutMs,
    stallCheckAfterMs: riak.stallCheckAfterMs,
    pingTimeoutMs: riak.pingTimeoutMs,
    tls: riak.tls,
    auth: riak.auth,
  };
}

/**
 * Pings one node on a connection of its own (one attempt), within `timeoutMs` for connecting
 * and for the answer: whether that node answers now, whatever the other nodes do.
 */
export async function pingNode(
  riak: RiakSettings,
  node: string,
  timeoutMs = Math.min(riak.connectTimeoutMs, riak.requestTimeoutMs),
): Promise<NodePing> {
  const single = new RiakClient({
    ...clusterOptionsFromSettings(riak),
    nodes: [node],
    maxAttempts: 1,
    stallCheckAfterMs: 0, // this ping is the check, with its own bound
    connectTimeoutMs: Math.min(riak.connectTimeoutMs, timeoutMs),
    requestTimeoutMs: Math.min(riak.requestTimeoutMs, timeoutMs),
  });
  try {
    const started = performance.now();
    await single.ping();
    return { node, ms: performance.now() - started };
  } catch (error) {
    return { node, error: (error as Error).message };
  } finally {
    await single.close();
  }
}

/**
 * Whether Riak answers a mount again: a node answers a ping on a connection of its own
 * (`pings`, one look per node, as `riakfs status` shows them), and `client`, the mount's
 * own, has a node back in rotation within `timeoutMs` (the nodes it took out are pinged
 * now, not at their next interval). Until the client takes a node back, every request of
 * the mount fails at once ("every Riak node is down"): an outage declared over on the pings
 * alone began again with the first requests after it, logged twice, and failed them.
 */
export async function riakAnswersAgain(
  pings: () => Promise<NodePing[]>,
  client: RiakClient,
  timeoutMs: number,
): Promise<boolean> {
  if (!(await pings()).some((ping) => ping.ms !== undefined)) return false;
  return await client.cluster.whenReachable(timeoutMs);
}

/**
 * The longest `riakfs status` waits for a node's ping (the status command waits 5 s in all;
 * a status report during an outage waits less).
 */
export const STATUS_PING_TIMEOUT_MS = 2_000;

/**
 * How a mount asks Riak whether it answers, beside its requests. `pingRiak` pings every node
 * for `riakfs status`, within `timeoutMs` (default `--ping-timeout`, at most
 * {@link STATUS_PING_TIMEOUT_MS}). `riakAnswers` tells whether a request's deadline that passed
 * is an outage, and whether an outage is over: its pings wait `timeoutMs`, by default
 * `--ping-timeout` as the client's own do, so a node that answers pings slowly under load is
 * no outage to the mount (with 2 s fixed here, a node answering in 2.5 s kept an outage going
 * for good).
 */
export function mountRiakChecks(riak: RiakSettings, client: RiakClient): {
  pingRiak: (timeoutMs?: number) => Promise<NodePing[]>;
  riakAnswers: (timeoutMs?: number) => Promise<boolean>;
  whyUnanswered: () => string | undefined;
} {
  const pingRiak = (timeoutMs = Math.min(riak.pingTimeoutMs, STATUS_PING_TIMEOUT_MS)) =>
    Promise.all(riak.nodes.map((node) => pingNode(riak, node, timeoutMs)));
  let lastPings: NodePing[] = [];
  return {
    pingRiak,
    riakAnswers: (timeoutMs = riak.pingTimeoutMs) =>
      riakAnswersAgain(async () => lastPings = await pingRiak(timeoutMs), client, timeoutMs),
    whyUnanswered: () => unansweredPings(lastPings),
  };
}

/**
 * Why none of `pings` answered, node by node (what refused, timed out, or spoke no Riak
 * protocol); undefined when one did.
 */
export function unansweredPings(pings: readonly NodePing[]): string | undefined {
  if (pings.length === 0 || pings.some((ping) => ping.ms !== undefined)) return undefined;
  return pings.map((ping) => ping.error ?? `${ping.node}: no answer`).join("; ");
}

/**
 * Runs a command body with a Riak client: bad settings are usage errors (exit 2); Riak and
 * store failures print one line and exit 1; the client is closed in every case.
 */
export async function runWithRiak(
  command: Command,
  opts: Record<string, unknown>,
  body: (riak: RiakClient, settings: RiakCommandSettings, out: Output) => Promise<void>,
): Promise<void> {
  let settings: RiakCommandSettings;
  try {
    settings = riakSettingsFromOptions(opts, command);
  } catch (error) {
    if (error instanceof RiakConfigError) {
      command.error(`riakfs: ${error.message}`, { exitCode: 2 });
    }
    throw error;
  }
  const riak = new RiakClient(clusterOptionsFromSettings(settings.riak));
  // Also for what a command writes to stdout itself (a dry run's lines): `| head` ends quietly.
  watchStdout();
  try {
    await body(riak, settings, writeStdout);
  } catch (error) {
    if (
      error instanceof StoreError || error instanceof RiakError ||
      error instanceof ConnectionError || error instanceof TimeoutError ||
      error instanceof StdoutWriteError
    ) {
      process.stderr.write(`riakfs ${command.name()}: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (error instanceof ClosedPipe) return;
    throw error;
  } finally {
    await riak.close();
  }
}

/** {@link runWithRiak} with a {@link Store} on the configured namespace. */
export function runWithStore(
  command: Command,
  opts: Record<string, unknown>,
  body: (store: Store, out: Output, riak: RiakClient) => Promise<void>,
): Promise<void> {
  return runWithRiak(command, opts, (riak, settings, out) =>
    body(
      new Store(riakStoreClient(riak), {
        namespace: settings.namespace,
        w: settings.riak.w,
        dw: settings.riak.dw,
      }),
      out,
      riak,
    ));
}

/** The option key commander and the config file use for a flag: `--chunk-size` -> chunkSize. */
function keyOf(flag: string): string {
  return flag.slice(2).replace(/-(.)/g, (_, letter: string) => letter.toUpperCase());
}

function joinNodes(nodes: string | string[] | undefined): string | undefined {
  return Array.isArray(nodes) ? nodes.join(",") : nodes;
}

function readConfigFile(file: string): RiakConfigFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RiakConfigError(`--config ${file}: ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error("not a JSON object");
    }
    checkConfigTypes(value);
    return withPathsFrom(dirname(resolve(file)), value as RiakConfigFile);
  } catch (error) {
    throw new RiakConfigError(`--config ${file}: ${(error as Error).message}`);
  }
}

/** The config file's settings that name a file. */
const CONFIG_PATHS = ["tlsCa", "tlsCert", "tlsKey", "passwordFile"] as const;

/**
 * The config file's relative paths taken from its own directory, whatever the working
 * directory: a background mount runs in /, and a file that worked for `doctor` run beside it
 * must name the same file for every command.
 */
function withPathsFrom(directory: string, config: RiakConfigFile): RiakConfigFile {
  const resolved = { ...config };
  for (const key of CONFIG_PATHS) {
    const path = config[key];
    if (path !== undefined) resolved[key] = resolve(directory, path);
  }
  return resolved;
}

/** What each setting of the config file may hold. */
const CONFIG_TYPES: Record<keyof RiakConfigFile, "string" | "number" | "boolean" | "quorum"> = {
  riak: "string",
  tls: "boolean",
  tlsCa: "string",
  tlsCert: "string",
  tlsKey: "string",
  user: "string",
  passwordFile: "string",
  connectTimeout: "number",
  requestTimeout: "number",
  stallCheckAfter: "number",
  pingTimeout: "number",
  w: "quorum",
  dw: "quorum",
  bucketType: "string",
  bucket: "string",
  setsBucketType: "string",
  layout: "string",
  chunkSize: "number",
  riakFuse: "string", // an object of strings, checked below
  chunkBucket: "string",
  directoryBucket: "string",
  shardCapacity: "number",
  shardFanout: "number",
};

/** The names `riakFuse` may set. */
const RIAK_FUSE_NAMES = [
  "contentPrefix",
  "directoryPrefix",
  "directoryBucketType",
  "directoryKey",
  "contentType",
  "imagesFolder",
];

/**
 * Throws on a setting the file should not hold: an unknown name (a typo would otherwise be
 * ignored) or a value of the wrong type (it failed later, in words of the runtime's).
 */
function checkConfigTypes(config: Record<string, unknown>): void {
  const known = Object.keys(CONFIG_TYPES);
  for (const [key, value] of Object.entries(config)) {
    const type = CONFIG_TYPES[key as keyof RiakConfigFile];
    if (type === undefined) {
      const like = known.find((name) => name.toLowerCase() === key.toLowerCase());
      throw new Error(`unknown setting "${key}"${like ? ` (did you mean "${like}"?)` : ""}`);
    }
    const wrong = (expected: string) =>
      new Error(`"${key}" must be ${expected}, got ${JSON.stringify(value)}`);
    if (key === "riak") {
      const nodes = Array.isArray(value) ? value : [value];
      if (!nodes.every((node) => typeof node === "string" && node !== "")) {
        throw wrong("a host:port text or a list of them");
      }
    } else if (key === "riakFuse") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw wrong(`an object of texts (${RIAK_FUSE_NAMES.join(", ")})`);
      }
      for (const [name, text] of Object.entries(value)) {
        if (!RIAK_FUSE_NAMES.includes(name)) throw new Error(`unknown setting "riakFuse.${name}"`);
        if (typeof text !== "string" || text === "") throw wrong("an object of non-empty texts");
      }
    } else if (type === "quorum") {
      if (typeof value !== "string" && typeof value !== "number") {
        throw wrong("a number or one, quorum, all, default");
      }
    } else if (type === "string") {
      if (typeof value !== "string" || value === "") throw wrong("a non-empty text");
    } else if (type === "number") {
      if (typeof value !== "number") throw wrong("a number");
    } else if (typeof value !== "boolean") {
      throw wrong("true or false");
    }
  }
}

/**
 * Reads the TLS files now, so a missing or unreadable one, or one that is not PEM, is an
 * error naming its flag at start, not a failure of every connection.
 */
function checkTlsFiles(files: { caFile?: string; certFile?: string; keyFile?: string }): void {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new RiakConfigError("--tls-cert and --tls-key go together");
  }
  const check = (file: string | undefined, flag: string, parse: (pem: Buffer) => unknown) => {
    if (file === undefined) return;
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (error) {
      throw new RiakConfigError(`${flag} ${file}: ${(error as Error).message}`);
    }
    try {
      parse(pem);
    } catch (error) {
      throw new RiakConfigError(`${flag} ${file}: not usable PEM (${(error as Error).message})`);
    }
  };
  check(files.caFile, "--tls-ca", (pem) => new X509Certificate(pem));
  check(files.certFile, "--tls-cert", (pem) => new X509Certificate(pem));
  check(files.keyFile, "--tls-key", (pem) => createPrivateKey(pem));
}

/** An on/off environment variable; undefined when unset. */
function switchFromEnv(name: string): boolean | undefined {
  const value = process.env[name]?.trim().toLowerCase();
  if (value === undefined) return undefined;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off", ""].includes(value)) return false;
  throw new RiakConfigError(`${name} must be 1 or 0 (true/false, yes/no, on/off), got ${value}`);
}

/**
 * Riak's default `object.size.maximum` (50MB in riak.conf): a larger chunk is refused by
 * every put, so such a `--chunk-size` is refused before any.
 */
const RIAK_OBJECT_SIZE_MAXIMUM = 50 * 1024 * 1024;

/**
 * The smallest chunk size taken: each chunk costs a put and a round trip, so `--chunk-size 1`
 * made a 1 MB file a million puts (minutes, and nothing stops between them but an interrupt).
 */
const MIN_CHUNK_SIZE = 4096;

/** A chunk size between {@link MIN_CHUNK_SIZE} and {@link RIAK_OBJECT_SIZE_MAXIMUM}. */
function chunkSizeOf(value: string | number, flag: string): number {
  const size = positiveInteger(value, flag, RIAK_OBJECT_SIZE_MAXIMUM);
  if (size < MIN_CHUNK_SIZE) {
    throw new RiakConfigError(`${flag} must be at least ${MIN_CHUNK_SIZE}, got ${size}`);
  }
  return size;
}

/** A shard fanout: each level must have more shards than the one before. */
function shardFanout(value: number, flag: string): number {
  const fanout = positiveInteger(value, flag);
  if (fanout < 2) throw new RiakConfigError(`${flag} must be at least 2, got ${fanout}`);
  return fanout;
}

function positiveInteger(
  value: string | number,
  flag: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const number = typeof value === "number" ? value : decimal(value);
  if (!Number.isSafeInteger(number) || number <= 0) {
    throw new RiakConfigError(
      `${flag} must be a positive whole number, got ${shown(value)}`,
    );
  }
  if (number > max) throw new RiakConfigError(`${flag} must be at most ${max}, got ${number}`);
  return number;
}

/** A whole number from 0 to `max`; `zeroMeans` tells in the error what 0 is for. */
function wholeNumber(value: string | number, flag: string, max: number, zeroMeans: string): number {
  const number = typeof value === "number" ? value : decimal(value);
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new RiakConfigError(`${flag} must be a whole number${zeroMeans}, got ${shown(value)}`);
  }
  return number === 0 ? 0 : positiveInteger(number, flag, max);
}

function parseQuorum(value: string | number | undefined, flag: string): QuorumValue | undefined {
  if (value === undefined) return undefined;
  if (value === "one" || value === "quorum" || value === "all" || value === "default") return value;
  const number = typeof value === "number" ? value : decimal(value);
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new RiakConfigError(
      `${flag} must be a number, one, quorum, all or default, got ${shown(value)}`,
    );
  }
  return number;
}

/** A value as the error shows it: text quoted, so an empty one is seen; a number as it is. */
function shown(value: string | number): string {
  // JSON.stringify would show a config file's 1e400 (Infinity) as null.
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}
