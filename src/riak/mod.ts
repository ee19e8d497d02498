/**
 * The Riak protocol-buffers client: codec and framing, connections, node pools, the cluster
 * (node choice, retries, wait queue) and the commands (KV, siblings, 2i, listing, bucket
 * properties, CRDT sets, maps and counters).
 *
 * @example
 * ```ts
 * import { RiakClient } from "./src/riak/mod.ts";
 * const riak = new RiakClient({ nodes: "10.0.0.1:8087,10.0.0.2:8087" });
 * const put = await riak.put({ type: "kvmulti", bucket: "b", key: "k" }, { value }, { returnBody: true });
 * const got = await riak.get({ type: "kvmulti", bucket: "b", key: "k" });
 * await riak.updateSet({ type: "sets", bucket: "dirs", key: "/" }, { add: ["a.txt"] });
 * await riak.close();
 * ```
 *
 * @module
 */
export { type IndexPage, RiakClient, type SiblingResolver } from "./client.ts";
export {
  type ClusterOptions,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_QUEUE_LIMIT,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  type ExecuteOptions,
  type NodeSelection,
  type NodeStatus,
  RiakCluster,
} from "./cluster.ts";
export {
  DEFAULT_HEALTH_CHECK_INTERVAL_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MIN_CONNECTIONS,
  DEFAULT_RIAK_PORT,
  type NodeOptions,
  type NodeState,
  parseNodeList,
  RiakNode,
} from "./node.ts";
export {
  type AuthOptions,
  Connection,
  type ConnectionOptions,
  type RequestOptions,
  type TlsOptions,
} from "./connection.ts";
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STALL_CHECK_AFTER_MS,
} from "./defaults.ts";
export { readPassword } from "./password.ts";
export {
  ClosedError,
  ConnectionError,
  noNodeAnswered,
  ProtocolError,
  QueueFullError,
  type RequestLabel,
  riakAnswerOf,
  RiakError,
  TimeoutError,
  type TimeoutPhase,
} from "./errors.ts";
export {
  CodecError,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  INLINE_BYTES_LIMIT,
  isKnownMessageCode,
} from "./codec.ts";
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeFrameHeader,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameError,
  releaseFrame,
} from "./frame.ts";
export * from "./messages.ts";
export {
  type AppliedCheck,
  appliedCheck,
  type Command,
  command,
  type StreamCommand,
  streamCommand,
} from "./commands/command.ts";
export {
  type BucketLocation,
  type Bytes,
  type ContentToPut,
  type Location,
  type QuorumValue,
  type RiakContent,
  type TextPair,
  toBytes,
  toText,
} from "./commands/values.ts";
export {
  deleteCommand,
  type DeleteOptions,
  getCommand,
  type GetOptions,
  type GetResult,
  putAppliedResult,
  putCommand,
  type PutLocation,
  type PutOptions,
  type PutResult,
} from "./commands/kv.ts";
export {
  type CounterValue,
  type DataTypeLocation,
  type DataTypeUpdateLocation,
  fetchCounterCommand,
  type FetchedMap,
  fetchMapCommand,
  type FetchOptions,
  fetchSetCommand,
  mapField,
  mapFromEntries,
  type MapValue,
  type SetChange,
  type SetValue,
  updateCounterCommand,
  updateMapCommand,
  type UpdateOptions,
  type UpdateResult,
  updateSetCommand,
} from "./commands/crdt.ts";
export {
  getBucketPropsCommand,
  getBucketTypePropsCommand,
  resetBucketPropsCommand,
  setBucketPropsCommand,
} from "./commands/bucket.ts";
export {
  type IndexBatch,
  type IndexEntry,
  type IndexQuery,
  indexQueryCommand,
} from "./commands/index_query.ts";
export { listBucketsCommand, listKeysCommand } from "./commands/listing.ts";
export { pingCommand, type ServerInfo, serverInfoCommand } from "./commands/server.ts";
