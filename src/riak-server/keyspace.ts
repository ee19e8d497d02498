/**
 * The server's state: bucket types, bucket property overrides and objects, plus the change
 * records that persist them. Every change goes through {@link Keyspace.apply}, both when a
 * request makes it and when the log is replayed at start, so the two cannot diverge.
 *
 * Names (types, buckets, keys) are kept as latin1 strings: one char per byte, lossless and
 * cheap to hash.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { RpbBucketProps, RpbContent } from "../riak/messages.ts";
import { builtInBucketTypes, mergeProps } from "./bucket_types.ts";
import type { CrdtState } from "./crdt.ts";

/** One sibling: a KV value with its metadata, or the object's CRDT. */
export interface Sibling {
  /** The object counter of the write that created it (covered by vclocks >= dot). */
  dot: number;
  /** The value and metadata as answered to gets (owned copies, with vtag and last_mod). */
  content?: RpbContent;
  /** The data type state, for the one CRDT sibling of an object in a datatype bucket. */
  crdt?: CrdtState;
}

/** One key's object: live when it has siblings, a tombstone when it has none. */
export interface StoredObject {
  /** Random per object; makes its vclocks and contexts unlike any other object's. */
  incarnation: string;
  /** Counter of the last write: the vclock. */
  counter: number;
  siblings: Sibling[];
  /** Milliseconds since the epoch at which it became a tombstone. */
  deletedAt?: number;
}

/** A change, as applied to memory and appended to the log. */
export type ChangeRecord =
  | { t: "object"; type: string; bucket: string; key: string; object: StoredObject | null }
  | { t: "bucket"; type: string; bucket: string; props: RpbBucketProps | null }
  | { t: "type"; type: string; props: RpbBucketProps };

/** Converts bytes to the latin1 string names are kept as. */
export function nameOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Converts a latin1 name back to bytes. */
export function bytesOf(name: string): Uint8Array {
  return new Uint8Array(Buffer.from(name, "latin1"));
}

/** Bucket types, bucket props and objects, in memory. */
export class Keyspace {
  /** Props of each bucket type by name. */
  readonly types: Map<string, RpbBucketProps> = builtInBucketTypes();
  /** Per type, per bucket: the props set with RpbSetBucketReq (over the type's). */
  readonly bucketProps: Map<string, Map<string, RpbBucketProps>> = new Map();
  /** Per type, per bucket, per key: the objects. */
  readonly objects: Map<string, Map<string, Map<string, StoredObject>>> = new Map();
  /** The tombstones, so reaping them does not walk every object. */
  private readonly tombstones = new Map<string, { type: string; bucket: string; key: string }>();

  /** The object under a key, live or tombstone. */
  get(type: string, bucket: string, key: string): StoredObject | undefined {
    return this.objects.get(type)?.get(bucket)?.get(key);
  }

  /** The keys of a bucket and their objects (empty when the bucket has none). */
  bucket(type: string, bucket: string): Map<string, StoredObject> {
    return this.objects.get(type)?.get(bucket) ?? new Map();
  }

  /** A bucket's effective props: its type's with its own overrides. */
  propsOf(type: string, bucket: string): RpbBucketProps | undefined {
    const typeProps = this.types.get(type);
    if (typeProps === undefined) return undefined;
    const own = this.bucketProps.get(type)?.get(bucket);
    return own === undefined ? typeProps : mergeProps(typeProps, own);
  }

  /** Applies one change to memory. */
  apply(record: ChangeRecord): void {
    switch (record.t) {
      case "object": {
        const id = `${record.type}\0${record.bucket}\0${record.key}`;
        if (record.object?.deletedAt === undefined) this.tombstones.delete(id);
        else this.tombstones.set(id, { type: record.type, bucket: record.bucket, key: record.key });
        let buckets = this.objects.get(record.type);
        if (buckets === undefined) this.objects.set(record.type, buckets = new Map());
        let keys = buckets.get(record.bucket);
        if (record.object === null) {
          keys?.delete(record.key);
          if (keys?.size === 0) buckets.delete(record.bucket);
          return;
        }
        if (keys === undefined) buckets.set(record.bucket, keys = new Map());
        keys.set(record.key, record.object);
        return;
      }
      case "bucket": {
        let buckets = this.bucketProps.get(record.type);
        if (buckets === undefined) this.bucketProps.set(record.type, buckets = new Map());
        if (record.props === null) buckets.delete(record.bucket);
        else buckets.set(record.bucket, record.props);
        return;
      }
      case "type":
        this.types.set(record.type, record.props);
        return;
    }
  }

  /** The change that restores what `record` is about to replace. */
  undoOf(record: ChangeRecord): ChangeRecord {
    switch (record.t) {
      case "object":
        return { ...record, object: this.get(record.type, record.bucket, record.key) ?? null };
      case "bucket":
        return { ...record, props: this.bucketProps.get(record.type)?.get(record.bucket) ?? null };
      case "type":
        return { ...record, props: this.types.get(record.type) ?? record.props };
    }
  }

  /** Whether `record` is still the latest change of what it changed. */
  isCurrent(record: ChangeRecord): boolean {
    switch (record.t) {
      case "object":
        return (this.get(record.type, record.bucket, record.key) ?? null) === record.object;
      case "bucket":
        return (this.bucketProps.get(record.type)?.get(record.bucket) ?? null) === record.props;
      case "type":
        return this.types.get(record.type) === record.props;
    }
  }

  /** The changes that forget tombstones deleted at or before `limit` (ms since the epoch). */
  expiredTombstones(limit: number): ChangeRecord[] {
    const expired: ChangeRecord[] = [];
    for (const { type, bucket, key } of this.tombstones.values()) {
      const deletedAt = this.get(type, bucket, key)?.deletedAt;
      if (deletedAt !== undefined && deletedAt <= limit) {
        expired.push({ t: "object", type, bucket, key, object: null });
      }
    }
    return expired;
  }

  /**
   * Every change that rebuilds the current state from nothing (types, props, objects): what
   * a compaction writes.
   */
  *snapshot(): Generator<ChangeRecord> {
    for (const [type, props] of this.types) yield { t: "type", type, props };
    for (const [type, buckets] of this.bucketProps) {
      for (const [bucket, props] of buckets) yield { t: "bucket", type, bucket, props };
    }
    for (const [type, buckets] of this.objects) {
      for (const [bucket, keys] of buckets) {
        for (const [key, object] of keys) yield { t: "object", type, bucket, key, object };
      }
    }
  }
}
