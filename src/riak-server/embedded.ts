/**
 * Starting and stopping a whole embedded Riak server: keyspace, optional on-disk log,
 * engine and listener.
 *
 * @module
 */
import { isIPv6 } from "node:net";
import { isHostName } from "../util/host.ts";
import { type BucketTypeSpec, typePropsAtStart } from "./bucket_types.ts";
import { RiakEngine } from "./engine.ts";
import type { FaultInjector } from "./faults.ts";
import { type ChangeRecord, Keyspace } from "./keyspace.ts";
import { DataLog, type DataLogOptions } from "./log.ts";
import { RiakNetworkServer, type SecurityOptions } from "./server.ts";

/** Options of {@link startEmbeddedRiak}. */
export interface EmbeddedRiakOptions {
  /** `host:port` to listen on; default `127.0.0.1:0` (a free port). */
  listen?: string;
  /** Directory of the append-only log; without it the server keeps everything in memory. */
  dataDir?: string;
  /** Keep everything in memory even if `dataDir` is given (the `--memory` flag). */
  memory?: boolean;
  /** Bucket types to create besides `default`, `sets`, `maps`, `counters`: name -> props. */
  bucketTypes?: Record<string, BucketTypeSpec>;
  /** Require StartTls + Auth with this certificate, key and user list. */
  tls?: SecurityOptions;
  /** Log compaction and durability tuning (tests). */
  log?: DataLogOptions;
}

/** A running embedded server. */
export interface EmbeddedRiakServer {
  /** `host:port` it listens on, e.g. `127.0.0.1:40123`. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Fault injection, see faults.ts. */
  readonly faults: FaultInjector;
  /** The request engine (tests may inspect `engine.keyspace`). */
  readonly engine: RiakEngine;
  /** The data log, when the server persists. */
  readonly log: DataLog | undefined;
  /** Stops listening, drops connections, flushes and closes the log. */
  close(): Promise<void>;
}

/** Interval of the tombstone reaper (Riak keeps tombstones 3 s). */
const REAP_INTERVAL_MS = 1000;

/**
 * Starts an embedded Riak server.
 *
 * @example
 * ```ts
 * const riak = await startEmbeddedRiak({ memory: true, bucketTypes: { kvmulti: {} } });
 * console.log(riak.address); // 127.0.0.1:40123
 * await riak.close();
 * ```
 * @throws {Error} when the address is malformed or taken, or the data directory unusable.
 */
export async function startEmbeddedRiak(
  options: EmbeddedRiakOptions = {},
): Promise<EmbeddedRiakServer> {
  const { host, port } = parseListenAddress(options.listen ?? "127.0.0.1:0");
  const keyspace = new Keyspace();
  const log = options.dataDir !== undefined && options.memory !== true
    ? await DataLog.open(options.dataDir, keyspace, options.log)
    : undefined;
  const engine = new RiakEngine(keyspace, { durability: log });
  const network = new RiakNetworkServer(engine, { host, port, security: options.tls });
  try {
    await keepBucketTypes(keyspace, log, options.bucketTypes ?? {});
    await network.listen();
  } catch (error) {
    await log?.close();
    throw error;
  }
  const reaper = setInterval(() => void engine.reapTombstones().catch(() => {}), REAP_INTERVAL_MS);
  reaper.unref();
  return {
    address: `${host.includes(":") ? `[${host}]` : host}:${network.port}`,
    host,
    port: network.port,
    faults: network.faults,
    engine,
    log,
    async close() {
      clearInterval(reaper);
      await network.close();
      await log?.close();
    },
  };
}

/**
 * Creates or updates the bucket types given at start (see {@link typePropsAtStart}), in the
 * log too: a type created in a data directory stays there, as a created Riak type stays,
 * whether or not it is given again.
 */
async function keepBucketTypes(
  keyspace: Keyspace,
  log: DataLog | undefined,
  bucketTypes: Record<string, BucketTypeSpec>,
): Promise<void> {
  for (const [type, spec] of Object.entries(bucketTypes)) {
    const props = typePropsAtStart(type, keyspace.types.get(type), spec);
    if (props === undefined) continue;
    const record: ChangeRecord = { t: "type", type, props };
    const durable = log?.commit(record);
    keyspace.apply(record);
    await durable;
  }
}

/**
 * Parses `host:port` (`[v6]:port` for IPv6).
 *
 * @throws {Error} with a one-line reason when malformed.
 */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  const hostOk = match !== null &&
    (match[1] !== undefined ? isIPv6(match[1]) : isHostName(match[2]));
  if (!hostOk || port > 65535) {
    throw new Error(`listen address '${address}': expected HOST:PORT, e.g. 127.0.0.1:8087`);
  }
  return { host: match![1] ?? match![2], port };
}
