/**
 * The Riak client: commands run on a {@link RiakCluster}, which picks nodes and retries.
 *
 * @example
 * ```ts
 * const riak = new RiakClient({ nodes: "127.0.0.1:8087" });
 * await riak.put({ bucket: "b", key: "k" }, { value: new TextEncoder().encode("v") });
 * const got = await riak.get({ bucket: "b", key: "k" });
 * if (got.found) console.log(got.siblings[0].value);
 * await riak.close();
 * ```
 *
 * @module
 */
import { type Int64, type MapOp, MessageCode, type RpbBucketProps } from "./messages.ts";
import { type ClusterOptions, RiakCluster } from "./cluster.ts";
import type { Connection } from "./connection.ts";
import type { Command, StreamCommand } from "./commands/command.ts";
import {
  type CounterValue,
  type DataTypeLocation,
  type DataTypeUpdateLocation,
  fetchCounterCommand,
  type FetchedMap,
  fetchMapCommand,
  type FetchOptions,
  fetchSetCommand,
  type MapValue,
  type SetChange,
  type SetValue,
  updateCounterCommand,
  updateMapCommand,
  type UpdateOptions,
  type UpdateResult,
  updateSetCommand,
} from "./commands/crdt.ts";
import {
  getBucketPropsCommand,
  getBucketTypePropsCommand,
  resetBucketPropsCommand,
  setBucketPropsCommand,
} from "./commands/bucket.ts";
import {
  type IndexBatch,
  type IndexEntry,
  type IndexQuery,
  indexQueryCommand,
} from "./commands/index_query.ts";
import {
  deleteCommand,
  type DeleteOptions,
  getCommand,
  type GetOptions,
  type GetResult,
  putCommand,
  type PutLocation,
  type PutOptions,
  type PutResult,
} from "./commands/kv.ts";
import { listBucketsCommand, listKeysCommand } from "./commands/listing.ts";
import { pingCommand, type ServerInfo, serverInfoCommand } from "./commands/server.ts";
import {
  type BucketLocation,
  type ContentToPut,
  label,
  type Location,
  type RiakContent,
} from "./commands/values.ts";

/** Merges siblings into the one content to write back. */
export type SiblingResolver = (siblings: RiakContent[]) => ContentToPut;

/** A page of 2i results: every entry of the page and the next page's continuation. */
export interface IndexPage {
  entries: IndexEntry[];
  continuation?: Uint8Array;
}

/** Writes Riak may still apply after their client gave up on them, when they name a key. */
const LATE_LANDING_WRITES: ReadonlySet<number> = new Set([
  MessageCode.PutReq,
  // A data type update: a set's add applied late gives its member a new dot, which no
  // remove sent before covers (riak_dt_orswot ignores an add's context), so it wins.
  MessageCode.DtUpdateReq,
]);

/**
 * Sends one command on one connection and parses its answer; a write of a key given up on (a
 * put, a data type update) waits `lateAnswerMs` for its answer still (see
 * {@link RiakCluster.lateWritesSettled}).
 */
function send<T>(connection: Connection, command: Command<T>, lateAnswerMs?: number): Promise<T> {
  const awaitsLateAnswer = LATE_LANDING_WRITES.has(command.code) &&
    command.label.key !== undefined;
  return connection.request(command.code, command.message as never, command.responseCode, {
    label: command.label,
    ...(awaitsLateAnswer && lateAnswerMs !== undefined ? { awaitLateAnswerMs: lateAnswerMs } : {}),
  }).then((response) => command.parse(response));
}

/** A Riak KV client over a cluster of nodes. */
export class RiakClient {
  /** The cluster the commands run on (node states, pools). */
  readonly cluster: RiakCluster;

  /** Connects lazily to `options.nodes` (`host:port,host:port`). */
  constructor(options: ClusterOptions) {
    this.cluster = new RiakCluster(options);
  }

  /** Runs any one-answer command on the cluster. */
  run<T>(command: Command<T>): Promise<T> {
    const check = command.appliedCheck;
    return this.cluster.execute(
      (connection) => send(connection, command, this.cluster.lateAnswerMs),
      {
        idempotent: command.idempotent,
        label: command.label,
        verifyApplied: check &&
          ((connection) => send(connection, check.read()).then((found) => check.decide(found))),
      },
    );
  }

  /** Runs any streamed command on the cluster, yielding each parsed frame. */
  async *runStream<T>(command: StreamCommand<T>): AsyncGenerator<T> {
    for await (
      const frame of this.cluster.stream((connection) =>
        connection.stream(
          command.code,
          command.message as never,
          command.responseCode,
          command.isLast,
          {
            label: command.label,
          },
        )
      )
    ) {
      yield command.parse(frame);
    }
  }

  /**
   * Resolves once no write of `location` given up on (a put, a data type update) may still be
   * applied without this client hearing of it (see {@link RiakCluster.lateWritesSettled}).
   */
  lateWritesSettled(location: Location): Promise<void> {
    return this.cluster.lateWritesSettled(label(MessageCode.PutReq, location));
  }

  /** Whether a write of `location` given up on (a put, a data type update) awaits its answer. */
  awaitsLateWrites(location: Location): boolean {
    return this.cluster.awaitsLateWrites(label(MessageCode.PutReq, location));
  }

  /** Pings a node. */
  ping(): Promise<void> {
    return this.run(pingCommand());
  }

  /** Name and version of a node. */
  serverInfo(): Promise<ServerInfo> {
    return this.run(serverInfoCommand());
  }

  /** Reads an object: every sibling and the vclock; `found: false` when missing. */
  get(location: Location, options?: GetOptions): Promise<GetResult> {
    return this.run(getCommand(location, options));
  }

  /**
   * Reads an object and, when it has several siblings, merges them with `resolve` and writes
   * the merge back with the vclock (so the siblings collapse). Returns the written version.
   */
  async getResolved(
    location: Location,
    resolve: SiblingResolver,
    options: GetOptions & { put?: PutOptions } = {},
  ): Promise<GetResult> {
    const { put, ...getOptions } = options;
    const result = await this.get(location, getOptions);
    if (result.siblings.length <= 1) return result;
    const written = await this.put(location, resolve(result.siblings), {
      ...put,
      vclock: result.vclock,
      returnBody: true,
    });
    return { found: true, unchanged: false, vclock: written.vclock, siblings: written.siblings };
  }

  /**
   * Writes an object (pass the vclock of the version it replaces). After a failure that may
   * have applied it, a put with a key is verified by a read and sent again only if it was not
   * applied; a put without a key then fails with `maybeApplied` (see docs/riak-client.md).
   */
  put(location: PutLocation, content: ContentToPut, options?: PutOptions): Promise<PutResult> {
    return this.run(putCommand(location, content, options));
  }

  /** Deletes an object; a missing one is not an error. */
  delete(location: Location, options?: DeleteOptions): Promise<void> {
    return this.run(deleteCommand(location, options));
  }

  /** A bucket's properties. */
  getBucketProps(location: BucketLocation): Promise<RpbBucketProps> {
    return this.run(getBucketPropsCommand(location));
  }

  /** Changes the given properties of a bucket. */
  setBucketProps(location: BucketLocation, props: RpbBucketProps): Promise<void> {
    return this.run(setBucketPropsCommand(location, props));
  }

  /** Resets a bucket's properties to those of its type. */
  resetBucketProps(location: BucketLocation): Promise<void> {
    return this.run(resetBucketPropsCommand(location));
  }

  /** A bucket type's properties. */
  getBucketTypeProps(type: string): Promise<RpbBucketProps> {
    return this.run(getBucketTypePropsCommand(type));
  }

  /** Streams bucket names in batches. Walks the whole cluster: not for production paths. */
  listBuckets(options?: { type?: string; serverTimeoutMs?: number }): AsyncGenerator<Uint8Array[]> {
    return this.runStream(listBucketsCommand(options));
  }

  /** Streams the keys of a bucket in batches. Walks the whole cluster: not for production paths. */
  listKeys(
    location: BucketLocation,
    options?: { serverTimeoutMs?: number },
  ): AsyncGenerator<Uint8Array[]> {
    return this.runStream(listKeysCommand(location, options));
  }

  /** Streams 2i results in batches; the last batch carries the continuation when paging. */
  queryIndex(query: IndexQuery): AsyncGenerator<IndexBatch> {
    return this.runStream(indexQueryCommand(query));
  }

  /** Runs a 2i query to the end of its page and returns the entries with the continuation. */
  async queryIndexPage(query: IndexQuery): Promise<IndexPage> {
    const page: IndexPage = { entries: [] };
    for await (const batch of this.queryIndex(query)) {
      page.entries.push(...batch.entries);
      if (batch.continuation !== undefined) page.continuation = batch.continuation;
    }
    return page;
  }

  /** Fetches a set. */
  fetchSet(location: DataTypeLocation, options?: FetchOptions): Promise<SetValue> {
    return this.run(fetchSetCommand(location, options));
  }

  /** Adds and removes set members (removals need `options.context`). */
  updateSet(
    location: DataTypeUpdateLocation,
    change: SetChange,
    options?: UpdateOptions,
  ): Promise<UpdateResult<Uint8Array[]>> {
    return this.run(updateSetCommand(location, change, options));
  }

  /** Fetches a counter. */
  fetchCounter(location: DataTypeLocation, options?: FetchOptions): Promise<CounterValue> {
    return this.run(fetchCounterCommand(location, options));
  }

  /** Increments (or with a negative amount decrements) a counter. Never repeated once maybe applied. */
  updateCounter(
    location: DataTypeUpdateLocation,
    increment: Int64,
    options?: UpdateOptions,
  ): Promise<UpdateResult<Int64>> {
    return this.run(updateCounterCommand(location, increment, options));
  }

  /** Fetches a map. */
  fetchMap(location: DataTypeLocation, options?: FetchOptions): Promise<FetchedMap> {
    return this.run(fetchMapCommand(location, options));
  }

  /** Applies field removals and updates to a map (removals need `options.context`). */
  updateMap(
    location: DataTypeUpdateLocation,
    op: MapOp,
    options?: UpdateOptions,
  ): Promise<UpdateResult<MapValue>> {
    return this.run(updateMapCommand(location, op, options));
  }

  /** Closes every connection; requests still waiting fail with ClosedError. */
  close(): Promise<void> {
    return this.cluster.close();
  }
}
