/**
 * The embedded Riak-protocol server: a single-node stand-in for Riak KV 3.x, for trials and
 * tests (production means real Riak). It speaks the protocol-buffers API with the codec of
 * `src/riak`, keeps data in memory or in an fsynced append-only log, and offers fault
 * injection for reliability tests.
 *
 * @example
 * ```ts
 * import { startEmbeddedRiak } from "./mod.ts";
 * const riak = await startEmbeddedRiak({ listen: "127.0.0.1:0", memory: true });
 * riak.faults.setLatency(20);
 * await riak.close();
 * ```
 *
 * @module
 */
export {
  type EmbeddedRiakOptions,
  type EmbeddedRiakServer,
  parseListenAddress,
  startEmbeddedRiak,
} from "./embedded.ts";
export {
  type BucketTypeSpec,
  createdTypeProps,
  parseBucketTypeArgument,
  TEST_BUCKET_TYPES,
} from "./bucket_types.ts";
export { type FaultInjector, type InjectedError } from "./faults.ts";
export { type SecurityOptions } from "./server.ts";
export { DataLogError } from "./log.ts";
export { startTestRiak, TEST_RIAK_ENV, type TestRiak, type TestRiakOptions } from "./testing.ts";
