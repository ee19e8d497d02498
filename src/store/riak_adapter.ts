/**
 * The store's Riak operations ({@link StoreClient}) on the project's Riak client.
 *
 * @module
 */
import { type ClusterOptions, releaseFrame, RiakClient, RiakError } from "../riak/mod.ts";
import type { StoreClient } from "./client.ts";
import { KeyExistsError, KeyModifiedError } from "./errors.ts";
import { describeLocation } from "./layout.ts";

/** Riak's answer to a put with if_none_match on a key that holds an object. */
const MATCH_FOUND = "match_found";
/** Riak's answers to a put with if_not_modified whose vclock is not the key's (02-kv-basics). */
const MODIFIED = "modified";
const NOT_FOUND = "notfound";

/**
 * Adapts a {@link RiakClient} to the operations the store needs.
 *
 * @example
 * ```ts
 * const riak = new RiakClient({ nodes: "127.0.0.1:8087" });
 * const store = new Store(riakStoreClient(riak));
 * ```
 */
export function riakStoreClient(riak: RiakClient): StoreClient {
  return {
    async get(location, options = {}) {
      const result = await riak.get(
        { type: location.bucketType, bucket: location.bucket, key: location.key },
        { head: options.head, notfoundOk: options.notfoundOk },
      );
      return {
        vclock: result.vclock,
        contents: result.siblings.filter((sibling) => !sibling.deleted).map((sibling) => ({
          value: sibling.value,
          contentType: sibling.contentType,
          usermeta: sibling.usermeta ?? [],
          lastModifiedNs: sibling.lastModifiedUs === undefined
            ? undefined
            : BigInt(sibling.lastModifiedUs) * 1000n,
        })),
      };
    },
    async put(location, content, options = {}) {
      try {
        await riak.put(
          { type: location.bucketType, bucket: location.bucket, key: location.key },
          { value: content.value, contentType: content.contentType, usermeta: content.usermeta },
          {
            vclock: options.vclock,
            w: options.w,
            dw: options.dw,
            idempotent: options.idempotent,
            ifNoneMatch: options.ifNoneMatch,
            ifNotModified: options.ifNotModified,
          },
        );
      } catch (error) {
        if (options.ifNoneMatch && error instanceof RiakError && error.errmsg === MATCH_FOUND) {
          throw new KeyExistsError(describeLocation(location), error);
        }
        if (
          options.ifNotModified && error instanceof RiakError &&
          (error.errmsg === MODIFIED || error.errmsg === NOT_FOUND)
        ) {
          throw new KeyModifiedError(describeLocation(location), error);
        }
        throw error;
      }
    },
    async delete(location, options = {}) {
      await riak.delete(
        { type: location.bucketType, bucket: location.bucket, key: location.key },
        { vclock: options.vclock, w: options.w, dw: options.dw },
      );
    },
    async fetchSet(location, options = {}) {
      const set = await riak.fetchSet({
        type: location.bucketType,
        bucket: location.bucket,
        key: location.key,
      }, { notfoundOk: options.notfoundOk });
      return set.found ? { members: set.members, context: set.context } : undefined;
    },
    async updateSet(location, change) {
      await riak.updateSet(
        { type: location.bucketType, bucket: location.bucket, key: location.key },
        { add: change.add, remove: change.remove },
        { context: change.context, w: change.w, dw: change.dw },
      );
    },
    listKeys(bucketType, bucket) {
      return riak.listKeys({ type: bucketType, bucket });
    },
    release(value) {
      // Values are views into the answer's frame; a long frame holds nothing else.
      releaseFrame(value);
    },
    lateWritesSettled(location) {
      return riak.lateWritesSettled({
        type: location.bucketType,
        bucket: location.bucket,
        key: location.key,
      });
    },
    awaitsLateWrites(location) {
      return riak.awaitsLateWrites({
        type: location.bucketType,
        bucket: location.bucket,
        key: location.key,
      });
    },
  };
}

/** A Riak client opened for the store, and how to close it. */
export interface OpenedStoreClient {
  riak: RiakClient;
  client: StoreClient;
  close(): Promise<void>;
}

/** Opens a {@link RiakClient} on `options.nodes` and adapts it for the store. */
export function openRiakStoreClient(options: ClusterOptions): OpenedStoreClient {
  const riak = new RiakClient(options);
  return { riak, client: riakStoreClient(riak), close: () => riak.close() };
}
