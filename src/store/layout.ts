/**
 * Where each path lives in Riak: the namespace (bucket type + content bucket and the
 * buckets derived from it) and the mapping of a path to keys, for the default layout and
 * the riak-fuse preset. Pure: no Riak access.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { InvalidPathError } from "./errors.ts";
import { displayPath, pathSegments, splitParent } from "./path.ts";
import { DEFAULT_SHARD_CAPACITY, DEFAULT_SHARD_FANOUT, directoryKey } from "./shards.ts";

/** Key of {@link Layout.manifestBuckets}'s set in the directory bucket. */
export const MANIFEST_BUCKETS_KEY = "riakfs-manifest-buckets";

/** Default chunk size: 1 MiB, as Riak CS uses; objects stay well below Riak's 1 MB advice. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** Layout presets. */
export type LayoutPreset = "default" | "riak-fuse";

/** Names the original riak-fuse used, each overridable as its flags allowed. */
export interface RiakFuseNames {
  /** Prefix of the content bucket of a folder (`-rnp`); default `IMG_`. */
  contentPrefix: string;
  /** Prefix of the directory bucket of a folder (`-rdnp`); default `IMGDIR_`. */
  directoryPrefix: string;
  /** Bucket type of the directory buckets (`-rbt`); default `sets`. */
  directoryBucketType: string;
  /** Key of the listing set in a directory bucket (`-rdk`); default `directory`. */
  directoryKey: string;
  /** Content type riak-fuse wrote (`-rct`); default `application/octet-stream`. */
  contentType: string;
  /** The middle folder of the mapped pattern `<folder>/images/<file>`. */
  imagesFolder: string;
}

/** Options choosing a namespace; every field has a default. */
export interface NamespaceOptions {
  /** Bucket type of file objects and chunks; default `default`. */
  bucketType?: string;
  /** Content bucket; default `riakfs`. */
  bucket?: string;
  /** Chunk bucket (same bucket type); default `<bucket>.chunks`. */
  chunkBucket?: string;
  /** Bucket type of directory sets (datatype set); default `sets`. */
  setsBucketType?: string;
  /** Directory bucket (in `setsBucketType`); default `<bucket>.dirs`. */
  directoryBucket?: string;
  /** Layout preset; default `default`. */
  preset?: LayoutPreset;
  /** riak-fuse names, for the `riak-fuse` preset. */
  riakFuse?: Partial<RiakFuseNames>;
  /** Largest file kept as a single object, and the chunk size above it; default 1 MiB. */
  chunkSize?: number;
  /** Entries per directory shard before a new level opens; default 2000. */
  shardCapacity?: number;
  /** Shard count factor between levels; default 16. */
  shardFanout?: number;
}

/** A namespace with every default filled in. */
export interface Namespace {
  bucketType: string;
  bucket: string;
  chunkBucket: string;
  setsBucketType: string;
  directoryBucket: string;
  preset: LayoutPreset;
  riakFuse: RiakFuseNames;
  chunkSize: number;
  shardCapacity: number;
  shardFanout: number;
}

/** Fills in the defaults of a namespace and checks the numbers. */
export function resolveNamespace(options: NamespaceOptions = {}): Namespace {
  const bucket = options.bucket ?? "riakfs";
  const namespace: Namespace = {
    bucketType: options.bucketType ?? "default",
    bucket,
    chunkBucket: options.chunkBucket ?? `${bucket}.chunks`,
    setsBucketType: options.setsBucketType ?? "sets",
    directoryBucket: options.directoryBucket ?? `${bucket}.dirs`,
    preset: options.preset ?? "default",
    riakFuse: {
      contentPrefix: "IMG_",
      directoryPrefix: "IMGDIR_",
      directoryBucketType: options.setsBucketType ?? "sets",
      directoryKey: "directory",
      contentType: "application/octet-stream",
      imagesFolder: "images",
      ...options.riakFuse,
    },
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    shardCapacity: options.shardCapacity ?? DEFAULT_SHARD_CAPACITY,
    shardFanout: options.shardFanout ?? DEFAULT_SHARD_FANOUT,
  };
  if (namespace.preset !== "default" && namespace.preset !== "riak-fuse") {
    throw new RangeError(`unknown layout preset ${JSON.stringify(namespace.preset)}`);
  }
  for (
    const [name, value, min] of [
      ["chunkSize", namespace.chunkSize, 1],
      ["shardCapacity", namespace.shardCapacity, 1],
      ["shardFanout", namespace.shardFanout, 2],
    ] as const
  ) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
    }
  }
  for (const [name, value] of Object.entries(namespace)) {
    if (typeof value === "string" && value.length === 0) {
      throw new RangeError(`${name} must not be empty`);
    }
  }
  return namespace;
}

/**
 * The names of `namespace` that decide where a path's objects and sets are in Riak, keyed by
 * the flag (or config key) that sets each: two namespaces whose names differ put the same
 * path in different places. A name derived from another (the chunk and directory buckets from
 * the content bucket, riak-fuse's directory bucket type from the sets bucket type) is listed
 * only where it was set otherwise; the riak-fuse names only under that layout. Chunk size,
 * sharding and the content type written change how a file is kept, not where it is found.
 */
export function placementNames(namespace: Namespace): Record<string, string> {
  const names: Record<string, string> = {
    "bucket-type": namespace.bucketType,
    bucket: namespace.bucket,
    "sets-bucket-type": namespace.setsBucketType,
    layout: namespace.preset,
  };
  const derived = resolveNamespace({
    bucket: namespace.bucket,
    setsBucketType: namespace.setsBucketType,
  });
  if (namespace.chunkBucket !== derived.chunkBucket) names["chunk-bucket"] = namespace.chunkBucket;
  if (namespace.directoryBucket !== derived.directoryBucket) {
    names["directory-bucket"] = namespace.directoryBucket;
  }
  if (namespace.preset !== "riak-fuse") return names;
  const riakFuse = namespace.riakFuse;
  names["riak-fuse-content-prefix"] = riakFuse.contentPrefix;
  names["riak-fuse-directory-prefix"] = riakFuse.directoryPrefix;
  if (riakFuse.directoryBucketType !== derived.riakFuse.directoryBucketType) {
    names["riak-fuse-directory-bucket-type"] = riakFuse.directoryBucketType;
  }
  names["riak-fuse-directory-key"] = riakFuse.directoryKey;
  names["riak-fuse-images-folder"] = riakFuse.imagesFolder;
  return names;
}

/** One Riak object: bucket type, bucket and key. */
export interface ObjectLocation {
  bucketType: string;
  bucket: Buffer;
  key: Buffer;
}

/** Where a file (or symlink) path lives. */
export interface FilePlacement {
  /** The normalised path. */
  path: Buffer;
  /** The object at the path key: content, manifest or symlink. */
  object: ObjectLocation;
  /** The parent directory's path and this entry's name in it. */
  parent: Buffer;
  name: Buffer;
  /** True when the path matches the riak-fuse pattern (its object is in the folder's bucket). */
  riakFuse?: boolean;
  /** riak-fuse's per-file size set of such a path, unless it is named like the listing key. */
  riakFuseSizeSet?: ObjectLocation;
}

/** Where a directory path lives. */
export interface DirectoryPlacement {
  /** The normalised path (empty for the root). */
  path: Buffer;
  /** The directory object (attributes), key `<path>/`, in the content bucket. */
  object: ObjectLocation;
  /** How the entries are kept. */
  entries:
    | ShardedEntries
    | {
      kind: "riak-fuse";
      set: ObjectLocation;
      /**
       * The default layout's index of the directory: the types of the names riakfs made there
       * as directories or symlinks (the set names them bare; a name not in it is a file).
       */
      typed: ShardedEntries;
    };
}

/** A directory's entries in the default layout's sharded sets (see shards.ts). */
export interface ShardedEntries {
  kind: "sharded";
  bucketType: string;
  bucket: Buffer;
  dirKey: Buffer;
}

/**
 * Maps paths to Riak locations for one namespace.
 *
 * @example
 * ```ts
 * const layout = new Layout(resolveNamespace({ preset: "riak-fuse" }));
 * layout.file(normalizePath("test/images/a.jpg")).object.bucket.toString(); // "IMG_test"
 * ```
 */
export class Layout {
  /** The namespace this layout maps into. */
  readonly namespace: Namespace;

  constructor(namespace: Namespace) {
    this.namespace = namespace;
  }

  /** Placement of a file or symlink at a normalised, non-root path. */
  file(path: Buffer): FilePlacement {
    if (path.length === 0) throw new InvalidPathError("/", "the root is a directory");
    const { parent, name } = splitParent(path);
    const folder = this.riakFuseFolder(parent);
    if (folder) {
      return {
        path,
        parent,
        name,
        object: {
          bucketType: this.namespace.bucketType,
          bucket: Buffer.concat([Buffer.from(this.namespace.riakFuse.contentPrefix), folder]),
          key: name,
        },
        riakFuse: true,
        // A file named like the listing key has no size set: it would be the listing itself,
        // whose other names a size update takes out as stale sizes.
        riakFuseSizeSet: name.equals(Buffer.from(this.namespace.riakFuse.directoryKey))
          ? undefined
          : this.riakFuseDirectoryObject(folder, name),
      };
    }
    return { path, parent, name, object: this.contentObject(path) };
  }

  /** Placement of a directory at a normalised path (empty = root). */
  directory(path: Buffer): DirectoryPlacement {
    const dirKey = directoryKey(path);
    const object = this.contentObject(dirKey);
    const sharded: ShardedEntries = {
      kind: "sharded",
      bucketType: this.namespace.setsBucketType,
      bucket: Buffer.from(this.namespace.directoryBucket),
      dirKey,
    };
    const folder = this.riakFuseFolder(path);
    if (folder) {
      const listingKey = Buffer.from(this.namespace.riakFuse.directoryKey);
      return {
        path,
        object,
        entries: {
          kind: "riak-fuse",
          set: this.riakFuseDirectoryObject(folder, listingKey),
          typed: sharded,
        },
      };
    }
    return { path, object, entries: sharded };
  }

  /**
   * The set naming the content buckets besides the namespace's own that hold manifests
   * (riak-fuse folders' buckets): `riakfs gc` lists their keys too, whatever layout it runs
   * with. Its key has no `/`, which every directory key has.
   */
  manifestBuckets(): ObjectLocation {
    return {
      bucketType: this.namespace.setsBucketType,
      bucket: Buffer.from(this.namespace.directoryBucket),
      key: Buffer.from(MANIFEST_BUCKETS_KEY),
    };
  }

  /** Location of chunk `key` (see manifest.ts `chunkKey`). */
  chunk(key: string): ObjectLocation {
    return {
      bucketType: this.namespace.bucketType,
      bucket: Buffer.from(this.namespace.chunkBucket),
      key: Buffer.from(key),
    };
  }

  /** An object in the content bucket. */
  private contentObject(key: Buffer): ObjectLocation {
    return {
      bucketType: this.namespace.bucketType,
      bucket: Buffer.from(this.namespace.bucket),
      key,
    };
  }

  /** A set in riak-fuse's directory bucket of a folder (the listing, or a file's size set). */
  private riakFuseDirectoryObject(folder: Buffer, key: Buffer): ObjectLocation {
    const names = this.namespace.riakFuse;
    return {
      bucketType: names.directoryBucketType,
      bucket: Buffer.concat([Buffer.from(names.directoryPrefix), folder]),
      key,
    };
  }

  /**
   * Under the riak-fuse preset, for a top-level `<folder>`: the placement of its
   * `<folder>/images`, whose listing set riak-fuse made. A folder only riak-fuse wrote has no
   * object or set of its own: that set is what says it is there.
   */
  riakFuseImagesOf(folder: Buffer): DirectoryPlacement | undefined {
    if (this.namespace.preset !== "riak-fuse" || pathSegments(folder).length !== 1) {
      return undefined;
    }
    return this.directory(
      Buffer.concat([folder, Buffer.from("/"), Buffer.from(this.namespace.riakFuse.imagesFolder)]),
    );
  }

  /** For `<folder>/<images>` under the riak-fuse preset: the folder name; else undefined. */
  private riakFuseFolder(directory: Buffer): Buffer | undefined {
    if (this.namespace.preset !== "riak-fuse") return undefined;
    const segments = pathSegments(directory);
    if (segments.length !== 2) return undefined;
    if (!segments[1].equals(Buffer.from(this.namespace.riakFuse.imagesFolder))) return undefined;
    return segments[0];
  }
}

/** A location as text, for messages and `--json` output. */
export function describeLocation(location: ObjectLocation): {
  bucketType: string;
  bucket: string;
  key: string;
} {
  return {
    bucketType: location.bucketType,
    bucket: displayPath(location.bucket).slice(1),
    key: displayPath(location.key).slice(1),
  };
}
