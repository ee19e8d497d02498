/**
 * The Riak operations the store needs, as one narrow interface. `riakStoreClient()` in
 * riak_adapter.ts implements it over the project's Riak client (src/riak); keeping the
 * store's needs in one place makes the layout code independent of the client's shape.
 *
 * @module
 */
import type { QuorumValue } from "../riak/mod.ts";
import type { ObjectLocation } from "./layout.ts";
import type { UsermetaPair } from "./usermeta.ts";

/** One content (sibling) of a Riak object. */
export interface StoredContent {
  /** The value; empty for a head-only get. */
  value: Uint8Array;
  contentType?: string;
  usermeta: UsermetaPair[];
  /** Riak's last-modified time, nanoseconds since the epoch (microsecond precision). */
  lastModifiedNs?: bigint;
}

/** What a get returned: no contents = not found. */
export interface FetchedObject {
  contents: StoredContent[];
  vclock?: Uint8Array;
}

/** A value to put. */
export interface ContentToStore {
  value: Uint8Array;
  contentType: string;
  usermeta: UsermetaPair[];
}

/** Write quorum values, as numbers or Riak's symbolic names. */
export type WriteQuorum = QuorumValue;

/** Options of a put. */
export interface PutOptions {
  /** Vector clock of the version being replaced (from a previous get). */
  vclock?: Uint8Array;
  w?: WriteQuorum;
  dw?: WriteQuorum;
  /** Repeating the put is harmless (a chunk: same bytes under a fresh key), so it may be retried. */
  idempotent?: boolean;
  /**
   * Store only if the key holds no object (a tombstone does not count): Riak's `if_none_match`.
   * When it does, the put rejects with `KeyExistsError` (errors.ts) and nothing was stored.
   */
  ifNoneMatch?: boolean;
  /**
   * Store only if the key still holds the version of `vclock`: Riak's `if_not_modified`. When
   * it does not (changed, or gone), the put rejects with `KeyModifiedError` (errors.ts).
   */
  ifNotModified?: boolean;
}

/** Options of a delete. */
export interface DeleteOptions {
  /** Vector clock of the version being deleted (from a get). */
  vclock?: Uint8Array;
  w?: WriteQuorum;
  dw?: WriteQuorum;
}

/** A fetched set: its members and the opaque context removals need. */
export interface FetchedSet {
  members: Uint8Array[];
  context?: Uint8Array;
}

/** Adds and removes applied to a set in one update. */
export interface SetChange {
  add?: Uint8Array[];
  remove?: Uint8Array[];
  /** Context from the fetch the removals were decided on; required when removing. */
  context?: Uint8Array;
  w?: WriteQuorum;
  dw?: WriteQuorum;
}

/** The Riak operations of the store. Every method rejects on a failed or unacknowledged request. */
export interface StoreClient {
  /**
   * Gets an object; `head` returns usermeta without the value. `notfoundOk: false` makes a
   * replica holding the object outweigh replicas answering not found (Riak's default lets
   * the first not-found answers stand: fallbacks after a node failure hold nothing).
   */
  get(
    location: ObjectLocation,
    options?: { head?: boolean; notfoundOk?: false },
  ): Promise<FetchedObject>;
  /** Puts one value; resolves once Riak acknowledged it with the given w/dw. */
  put(location: ObjectLocation, content: ContentToStore, options?: PutOptions): Promise<void>;
  /**
   * Deletes an object (a missing object is not an error); with `vclock` (from a get), only
   * the versions it covers: on an `allow_mult` type, one written since stays.
   */
  delete(location: ObjectLocation, options?: DeleteOptions): Promise<void>;
  /**
   * Fetches a set (bucket type with datatype=set); undefined when it does not exist.
   * `notfoundOk: false` as for {@link get}.
   */
  fetchSet(
    location: ObjectLocation,
    options?: { notfoundOk?: false },
  ): Promise<FetchedSet | undefined>;
  /** Applies adds/removes to a set. */
  updateSet(location: ObjectLocation, change: SetChange): Promise<void>;
  /** Streams the keys of a bucket. Scans the cluster: for administrative commands only. */
  listKeys(bucketType: string, bucket: Uint8Array): AsyncIterable<Uint8Array[]>;
  /**
   * Frees the memory a fetched value arrived in now, instead of when the garbage collector
   * gets to it, given any view into that value. Only for a value whose last user the caller
   * is: every view of it reads as empty afterwards. Optional; a client may do nothing.
   */
  release?(value: Uint8Array): void;
  /**
   * Resolves once no put or set update of `location` that failed while Riak may still apply
   * it (it timed out, or its node stopped answering; also when a retry then succeeded) can
   * land unheard: each was answered late, or its connection closed, or the client stopped
   * waiting. Optional; without it, none is awaited.
   */
  lateWritesSettled?(location: ObjectLocation): Promise<void>;
  /**
   * Whether a put or set update of `location` awaits its late answer (see
   * {@link lateWritesSettled}).
   */
  awaitsLateWrites?(location: ObjectLocation): boolean;
}

/**
 * `client` with its writes refused: puts, deletes and set updates reject without reaching
 * Riak; reads go through. For a store that must only look ({@link Store.readOnly}).
 */
export function writesRefused(client: StoreClient): StoreClient {
  const refuse = () => Promise.reject(new Error("a read-only store was asked to write to Riak"));
  return {
    get: (location, options) => client.get(location, options),
    fetchSet: (location, options) => client.fetchSet(location, options),
    listKeys: (bucketType, bucket) => client.listKeys(bucketType, bucket),
    put: refuse,
    delete: refuse,
    updateSet: refuse,
    ...client.release ? { release: (value: Uint8Array) => client.release!(value) } : {},
  };
}
