/**
 * The layout of files in Riak (docs/layout.md) and the store over it: stat, ranged reads
 * with per-chunk verification, chunked writes with generations, sharded directories,
 * rename, remove, attributes, verify and chunk garbage collection.
 *
 * @example
 * ```ts
 * import { openRiakStoreClient, Store } from "./src/store/mod.ts";
 * const { client, close } = openRiakStoreClient({ nodes: "127.0.0.1:8087" });
 * const store = new Store(client, { namespace: { bucket: "photos" } });
 * await store.writeFile("test/images/a.jpg", { file: "/srv/legacy/test/images/a.jpg" });
 * for await (const part of store.readRange("test/images/a.jpg", 0, 4096)) process.stdout.write(part);
 * await close();
 * ```
 *
 * @module
 */
export type {
  ContentToStore,
  FetchedObject,
  FetchedSet,
  PutOptions,
  SetChange,
  StoreClient,
  StoredContent,
  WriteQuorum,
} from "./client.ts";
export { contentTypeFor, DEFAULT_CONTENT_TYPE } from "./content_type.ts";
export { DirectoryIndex, type ShardSettings } from "./directory.ts";
export {
  AlreadyExistsError,
  ChecksumMismatchError,
  CorruptObjectError,
  DirectoryNotEmptyError,
  InvalidPathError,
  KeyExistsError,
  KeyModifiedError,
  NewerVersionError,
  NotFoundError,
  RiakRequestError,
  StoreError,
  type StoreErrorCode,
  WrongTypeError,
} from "./errors.ts";
export { DEFAULT_GC_MIN_AGE_MS } from "./defaults.ts";
export { collectGarbage, type GarbageGeneration, type GcOptions, type GcReport } from "./gc.ts";
export {
  DEFAULT_CHUNK_SIZE,
  describeLocation,
  type DirectoryPlacement,
  type FilePlacement,
  Layout,
  type LayoutPreset,
  type Namespace,
  type NamespaceOptions,
  type ObjectLocation,
  placementNames,
  resolveNamespace,
  type RiakFuseNames,
} from "./layout.ts";
export {
  chunkKey,
  decodeManifest,
  encodeManifest,
  type Manifest,
  MANIFEST_CONTENT_TYPE,
  MANIFEST_FORMAT,
  parseChunkKey,
  parseRenameStampKey,
  renameStampKey,
} from "./manifest.ts";
export {
  DEFAULT_LISTED_DIRECTORIES_KEPT,
  DEFAULT_LISTED_NAMES_HELD,
  DEFAULT_LISTED_NAMES_TTL_MS,
  ListedNames,
  type ListedNamesOptions,
  type ListedNamesSource,
} from "./listed_names.ts";
export { displayBytes, displayPath, normalizePath, type StorePath } from "./path.ts";
export { type OpenedStoreClient, openRiakStoreClient, riakStoreClient } from "./riak_adapter.ts";
export { DEFAULT_SHARD_CAPACITY, DEFAULT_SHARD_FANOUT, type ShardEntry } from "./shards.ts";
export { chooseSibling, type SiblingCandidate } from "./siblings.ts";
export {
  DEFAULT_READ_AHEAD,
  DEFAULT_UPLOAD_CONCURRENCY,
  type DirEntry,
  type FileStat,
  GenerationChangedError,
  type StatOptions,
  Store,
  type StoreOptions,
  type VerifyResult,
  type WriteOptions,
  type WriteSource,
} from "./store.ts";
export {
  type EntryType,
  type FileAttributes,
  LAYOUT_VERSION,
  type ObjectMeta,
  type Storage,
  USERMETA,
} from "./usermeta.ts";
