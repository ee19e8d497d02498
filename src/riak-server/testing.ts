/**
 * The Riak every test uses: a real node when `RIAKFS_TEST_RIAK` names one (reached through a
 * proxy that injects the same faults as the embedded server), otherwise an embedded server
 * in memory on a free port of 127.0.0.1.
 *
 * @example
 * ```ts
 * const riak = await startTestRiak();
 * try {
 *   // connect to riak.nodes[0]; name buckets `${riak.prefix}-...` so runs never collide
 * } finally {
 *   await riak.close();
 * }
 * ```
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { type BucketTypeSpec, TEST_BUCKET_TYPES } from "./bucket_types.ts";
import { type EmbeddedRiakServer, startEmbeddedRiak } from "./embedded.ts";
import { startFaultProxy } from "./fault_proxy.ts";
import type { FaultInjector } from "./faults.ts";

/** Options of {@link startTestRiak}. */
export interface TestRiakOptions {
  /** Extra bucket types for the embedded server (a real node must already have them). */
  bucketTypes?: Record<string, BucketTypeSpec>;
  /** Persist in this directory instead of memory (embedded server only). */
  dataDir?: string;
  /**
   * Ignore RIAKFS_TEST_RIAK and always start an embedded server: for what only it has (its
   * data directory, TLS and security, several single-node clusters at once).
   */
  embedded?: boolean;
}

/** The Riak a test talks to. */
export interface TestRiak {
  /** Nodes as `host:port`. */
  nodes: string[];
  /** True when the nodes come from RIAKFS_TEST_RIAK (a real Riak, behind a fault proxy). */
  external: boolean;
  /** Faults injected into every node's requests and answers (see faults.ts). */
  faults: FaultInjector;
  /** A fresh random bucket prefix for this test, e.g. `t1a2b3c4d`. */
  prefix: string;
  /** The embedded server, when one was started. */
  server?: EmbeddedRiakServer;
  /** Stops the embedded server, or the proxy in front of the external nodes. */
  close(): Promise<void>;
}

/** Environment variable naming external Riak nodes: `host:port[,host:port...]`. */
export const TEST_RIAK_ENV = "RIAKFS_TEST_RIAK";

/** The nodes `RIAKFS_TEST_RIAK` names (`host:port`), or undefined when it names none. */
export function externalTestNodes(): string[] | undefined {
  const nodes = (process.env[TEST_RIAK_ENV] ?? "").split(",")
    .map((node) => node.trim())
    .filter((node) => node !== "");
  return nodes.length > 0 ? nodes : undefined;
}

/**
 * Starts (or points at) the Riak a test uses. The embedded server has the bucket types
 * `default`, `sets`, `maps`, `counters`, `kvmulti` (allow_mult) and `lww` (last_write_wins).
 */
export async function startTestRiak(options: TestRiakOptions = {}): Promise<TestRiak> {
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const nodes = externalTestNodes();
  if (nodes !== undefined && options.embedded !== true) {
    const proxy = await startFaultProxy(nodes);
    return {
      nodes: proxy.addresses,
      external: true,
      prefix,
      faults: proxy.faults,
      close: () => proxy.close(),
    };
  }
  const server = await startEmbeddedRiak({
    listen: "127.0.0.1:0",
    memory: options.dataDir === undefined,
    dataDir: options.dataDir,
    bucketTypes: { ...TEST_BUCKET_TYPES, ...options.bucketTypes },
  });
  return {
    nodes: [server.address],
    external: false,
    prefix,
    faults: server.faults,
    server,
    close: () => server.close(),
  };
}
