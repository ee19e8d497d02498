/**
 * The store: files, directories and symlinks of one namespace in Riak, in the layout of
 * docs/layout.md. Every method either completes with Riak's acknowledgement (w/dw as
 * configured) or rejects with a {@link StoreError}.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { setImmediate } from "node:timers";
import {
  type ContentToStore,
  type FetchedObject,
  type StoreClient,
  type StoredContent,
  type WriteQuorum,
  writesRefused,
} from "./client.ts";
import { contentTypeFor } from "./content_type.ts";
import { DirectoryIndex } from "./directory.ts";
import { ListedNames, type ListedNamesOptions } from "./listed_names.ts";
import {
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
  WrongTypeError,
} from "./errors.ts";
import {
  describeLocation,
  Layout,
  type Namespace,
  type NamespaceOptions,
  type ObjectLocation,
  resolveNamespace,
} from "./layout.ts";
import {
  chunkKey,
  decodeManifest,
  encodeManifest,
  type Manifest,
  MANIFEST_CONTENT_TYPE,
  ManifestFormatError,
  newGenerationId,
  renameStampKey,
} from "./manifest.ts";
import {
  childPath,
  displayPath,
  isSameOrBelow,
  normalizePath,
  splitParent,
  type StorePath,
} from "./path.ts";
import { chooseSibling } from "./siblings.ts";
import { collect } from "../util/async_iterable.ts";
import { ownedBytes } from "../util/owned_bytes.ts";
import {
  decodeUsermeta,
  encodeUsermeta,
  type EntryType,
  type FileAttributes,
  LAYOUT_VERSION,
  mergedRenameMarks,
  type ObjectMeta,
  renameMarks,
  renamePartners,
  type Storage,
  USERMETA,
  UsermetaFormatError,
  withRenameMark,
} from "./usermeta.ts";

/** Default number of chunk uploads in flight per file. */
export const DEFAULT_UPLOAD_CONCURRENCY = 4;

/** Default number of chunks fetched ahead of the reader. */
export const DEFAULT_READ_AHEAD = 2;

/** Parallel object operations while renaming or removing a directory tree. */
const TREE_PARALLELISM = 8;

/** Directories a store remembers as existing (to skip checking parents on every write). */
const KNOWN_DIRECTORIES_LIMIT = 100_000;
/** How long a directory seen to exist is trusted to (ms), against a removal by another host. */
const KNOWN_DIRECTORY_MS = 10_000;

/** How often a read restarts when the file is overwritten under it. */
const READ_RETRIES = 3;

const EMPTY_SHA256 = createHash("sha256").digest("hex");

/** Options of a {@link Store}. */
export interface StoreOptions {
  /** Which buckets and which layout; see docs/layout.md. */
  namespace?: NamespaceOptions;
  /** Write quorum every put and delete must reach (default: the bucket's). */
  w?: WriteQuorum;
  /** Durable write quorum (default: the bucket's). */
  dw?: WriteQuorum;
  /** Chunk uploads in flight per file; default {@link DEFAULT_UPLOAD_CONCURRENCY}. */
  uploadConcurrency?: number;
  /**
   * Chunks fetched ahead of a sequential reader; default {@link DEFAULT_READ_AHEAD}. At most
   * `readAhead + 1` gets are in flight; the next one goes out as soon as a chunk arrives,
   * while that chunk is verified.
   */
  readAhead?: number;
  /** The clock (ms) the store's own caches expire by; default `Date.now`. */
  now?: () => number;
  /** Write nothing to Riak: see {@link Store.readOnly}. */
  readOnly?: boolean;
  /**
   * Every get, and the fetch of the set naming the manifest buckets, asks Riak with
   * `notfound_ok: false`, so that a replica holding an object outweighs replicas answering
   * not found; for a caller that deletes what it finds absent (gc). Default false: a
   * not-found answer then waits for more replicas, as a mount's look-up of a new name would.
   */
  authoritativeReads?: boolean;
}

/** What {@link Store.stat} reports. */
export interface FileStat extends FileAttributes {
  /** The normalised path (bytes). */
  path: Buffer;
  type: EntryType;
  storage: Storage;
  size: number;
  /** sha256 of the whole content, lowercase hex. */
  sha256: string;
  /** Content type the object carries. */
  contentType: string;
  /** The object at the path key (for a directory: its attributes object). */
  location: ObjectLocation;
  /** False for objects riakfs did not write (riak-fuse, foreign) and implicit directories. */
  managed: boolean;
  /** An inline file's verified bytes, when the stat was asked {@link StatOptions.withContent}. */
  content?: Buffer;
}

/** A directory entry. */
export interface DirEntry {
  /** The entry's name as bytes. */
  name: Buffer;
  type: EntryType;
}

/** Attributes of a new directory, and how {@link Store.mkdir} may go about it. */
export interface MkdirOptions extends Partial<FileAttributes> {
  /**
   * The caller read the parent directory's entries moments ago and found none of this name.
   * The look for anything else at the path then runs beside the put of the directory's
   * object instead of before it (one round trip fewer); should it find something, the object
   * just made is deleted again and the mkdir throws {@link AlreadyExistsError}.
   */
  unlisted?: boolean;
  /**
   * Called once Riak acknowledged the directory's object, before its entry in the parent is
   * added: writes below it may start (a crash in between leaves a directory no listing
   * names, which {@link Store.ensureListed} repairs).
   */
  objectStored?: () => void;
}

/** Attributes and content type of a write. */
export interface WriteOptions extends Partial<FileAttributes> {
  /** Content type; default from the name's extension. */
  contentType?: string;
  /**
   * The mode, uid and gid given are the ones the writer saw, not ones it set: a file the
   * write goes over keeps its own (another host's chmod or chown since stays); a new file
   * takes the given ones.
   */
  keepFoundAttributes?: boolean;
  /**
   * What a stat of this store found at the path just before (`null`: nothing at the file
   * key), so the write skips its own head-only gets. A stat from anywhere else, or a
   * directory's, is ignored and the write looks for itself.
   */
  previous?: FileStat | null;
  /**
   * The caller read the parent directory's entries moments ago and found none of this name
   * (a file believed new). The write then skips the look for a directory of the same name (a
   * directory is listed in its parent; only a mkdir cut off between its object and its entry
   * leaves one unlisted), and should Riak hold an object at the file key after all (written
   * and not yet listed, or since), it stores nothing and throws {@link AlreadyExistsError}:
   * the caller looks at that object and decides.
   */
  unlisted?: boolean;
  /**
   * Called once Riak acknowledged a new file's object, before its directory entry is added:
   * what is left is a small set update, so a caller bounding transfers can start the next.
   */
  objectStored?: () => void;
  /**
   * Called each time Riak acknowledged one chunk of a chunked file: a caller waiting for a
   * large upload sees it move, chunk by chunk, long before it ends.
   */
  chunkStored?: () => void;
  /**
   * Never replace a version with a later mtime than this write's (a newer file written
   * elsewhere while this one uploaded, as the mount's own writes are): when Riak moved on
   * since the version looked at (every put over a file is conditional on it,
   * `if_not_modified`), or holds a file where none was seen, a later mtime refuses the write
   * with {@link NewerVersionError}; anything else is written over.
   */
  keepNewer?: boolean;
  /**
   * Asked about a file the write is about to go over that it was not given as `previous`
   * (found by the put with `if_none_match`, or written since the version looked at): true
   * says the caller moved that file away (a version it did not expect, set aside), and the
   * write puts as a new file instead, asking again should another be there by then; false
   * writes over it. Asked only then: a write that finds what it was given costs nothing more.
   */
  setAside?: (found: FileStat) => Promise<boolean>;
  /**
   * Attributes of a missing parent directory the write makes (its normalised path, bytes):
   * a migrated file's own directory's, say. Without it, or when it answers undefined, the
   * directory gets the defaults.
   */
  parentAttributes?: (directory: Buffer) => Promise<Partial<FileAttributes> | undefined>;
  /**
   * Aborting it stops the upload before its next chunk, or before the object at the path is
   * put (all a small file sends): the write rejects (the signal's reason as the cause),
   * stores nothing under the path, and leaves the chunks already sent for gc, as a crash
   * would (deleting them could take as long as sending them did). Aborted later, the write
   * goes on: the object may be on its way.
   */
  signal?: AbortSignal;
}

/** Options of {@link Store.rename}. */
export interface RenameOptions {
  /**
   * The rename of a directory may have run before and been cut short (a crash, replayed from a
   * journal): a directory at the new name with the attributes of the one at the old name (its
   * rename copies them), holding under the names both hold copies of what the old one holds,
   * is the one it made, and what is left under the old name is moved into it instead of
   * ENOTEMPTY. Any other directory there is treated as without it.
   */
  resume?: boolean;
}

/** Options of {@link Store.tryStat}. */
export interface StatOptions {
  /**
   * Look only for a file or symlink: one head-only get, and a directory (or nothing) at the
   * path reads as undefined. Pass the result to {@link WriteOptions.previous}.
   */
  fileOnly?: boolean;
  /**
   * Fetch the file key with its value (still one round trip) and hand a small file's verified
   * bytes back as {@link FileStat.content}: a caller about to read the file saves the read's get.
   */
  withContent?: boolean;
  /**
   * The caller expects nothing at the path (a name about to be created): the file key, the
   * directory object and the directory's index are asked at once, so absence costs one round
   * trip instead of two, and what is there costs two extra head-only gets. Same answer.
   * Ignored with {@link fileOnly}.
   */
  likelyAbsent?: boolean;
}

/**
 * What a file's bytes come from: a local file's path, bytes, or a stream of bytes. A stream's
 * buffers are uploaded as they are, without a copy: do not reuse a buffer once yielded.
 */
export type WriteSource = { file: string } | Uint8Array | AsyncIterable<Uint8Array>;

/** Result of {@link Store.verify}. */
export interface VerifyResult {
  path: string;
  matches: boolean;
  local: { size: number; sha256: string };
  remote?: { size: number; sha256: string };
  /** Why it does not match. */
  problem?: string;
}

/** An object at a path key after sibling resolution. */
interface ResolvedObject {
  content: StoredContent;
  meta: ObjectMeta;
  managed: boolean;
  vclock?: Uint8Array;
}

/** A file's bytes once uploaded: inline (one object) or chunks plus their manifest. */
interface UploadedContent {
  size: number;
  sha256: string;
  contentType: string;
  /** A small file's bytes, stored as the object's value. */
  inline?: Buffer;
  /** A chunked file's manifest, stored as the object's value once its chunks are in Riak. */
  manifest?: Manifest;
}

/** A stale read: the file changed generation while being read. */
export class GenerationChangedError extends StoreError {
  constructor(path: string) {
    super("EIO", `${path}: overwritten while being read`, { path });
  }
}

/**
 * Files in Riak.
 *
 * @example
 * ```ts
 * const store = new Store(client, { namespace: { bucket: "photos" } });
 * await store.writeFile("a/b.txt", new TextEncoder().encode("hi"));
 * for await (const entry of store.list("a")) console.log(entry.name.toString());
 * ```
 */
export class Store {
  /** The namespace with defaults filled in. */
  readonly namespace: Namespace;
  /** Maps paths to Riak locations. */
  readonly layout: Layout;
  readonly #client: StoreClient;
  readonly #options: StoreOptions;
  readonly #index: DirectoryIndex;
  readonly #w?: WriteQuorum;
  readonly #dw?: WriteQuorum;
  readonly #uploadConcurrency: number;
  readonly #readAhead: number;
  /**
   * Directories known to exist (latin1 of the path), to skip re-checking parents, until when
   * (ms): another host may remove one, and a write must then make it again, not fill shards
   * nobody lists.
   */
  readonly #knownDirectories = new Map<string, number>();
  /** Looks at directory objects not sent yet, by directory (see #directoryObjectFromNow). */
  readonly #unsentDirectoryChecks = new Map<string, Promise<ResolvedObject | undefined>>();
  /** Buckets this store named in {@link Layout.manifestBuckets} (or found named there). */
  readonly #manifestBucketsNamed = new Set<string>();
  readonly #now: () => number;
  /** Resolves siblings for its callers alone, adds no missing entry, and refuses writes. */
  readonly #readOnly: boolean;
  /** The object behind each file stat this store returned (its vclock, for a write). */
  readonly #statObjects = new WeakMap<FileStat, ResolvedObject>();
  /** This store with authoritative reads, made once ({@link withAuthoritativeReads}). */
  #authoritative: Store | undefined;

  constructor(client: StoreClient, options: StoreOptions = {}) {
    this.namespace = resolveNamespace(options.namespace);
    this.layout = new Layout(this.namespace);
    this.#options = options;
    this.#readOnly = options.readOnly ?? false;
    if (this.#readOnly) client = writesRefused(client);
    this.#client = client;
    this.#index = new DirectoryIndex(client, {
      capacity: this.namespace.shardCapacity,
      fanout: this.namespace.shardFanout,
      w: options.w,
      dw: options.dw,
    });
    this.#w = options.w;
    this.#dw = options.dw;
    this.#uploadConcurrency = options.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
    this.#readAhead = options.readAhead ?? DEFAULT_READ_AHEAD;
    this.#now = options.now ?? Date.now;
  }

  /** What every get (and the fetch of the manifest buckets' set) asks besides its location. */
  get #readOptions(): { notfoundOk?: false } {
    return this.#options.authoritativeReads ? { notfoundOk: false } : {};
  }

  /**
   * This store as one that writes nothing to Riak, for a caller that must only look (`riakfs
   * gc`'s dry run): siblings it reads resolve to the same winner, which is not written back; a
   * directory missing from its parent's listing is not listed there; any write rejects.
   */
  readOnly(): Store {
    return this.#readOnly ? this : new Store(this.#client, { ...this.#options, readOnly: true });
  }

  /**
   * This store with {@link StoreOptions.authoritativeReads}, on the same client and namespace
   * (made once, with caches of its own).
   */
  withAuthoritativeReads(): Store {
    if (this.#options.authoritativeReads) return this;
    return this.#authoritative ??= new Store(this.#client, {
      ...this.#options,
      authoritativeReads: true,
    });
  }

  /** Attributes of a path: one head-only get for a file. */
  async stat(path: StorePath): Promise<FileStat> {
    const p = normalizePath(path);
    const found = await this.#statOrUndefined(p);
    if (!found) throw new NotFoundError(displayPath(p));
    return found;
  }

  /** Like {@link stat}, but undefined when nothing is there. */
  async tryStat(path: StorePath, options: StatOptions = {}): Promise<FileStat | undefined> {
    const p = normalizePath(path);
    const withContent = options.withContent ?? false;
    if (options.fileOnly) return await this.#fileStatOrUndefined(p, withContent);
    return options.likelyAbsent
      ? await this.#statAtOnce(p, withContent)
      : await this.#statOrUndefined(p, withContent);
  }

  /**
   * Streams bytes `[offset, offset + length)` of a file, verifying every chunk's sha256
   * (and a small file's whole sha256) before yielding it; fetches chunks ahead.
   */
  async *readRange(path: StorePath, offset = 0, length = Infinity): AsyncGenerator<Buffer> {
    const p = normalizePath(path);
    const object = await this.#fileObject(p);
    const end = Math.min(object.meta.size, offset + length);
    if (offset >= end) return;
    if (object.meta.storage === "inline") {
      yield this.#verifiedInline(p, object).subarray(offset, end);
      return;
    }
    const manifest = this.#manifestOf(p, object);
    yield* this.#readChunks(p, manifest, offset, end);
  }

  /**
   * Frees the memory of bytes {@link readRange} yielded, now rather than when the garbage
   * collector gets to them: for a reader that streams a file through and keeps nothing (a
   * large file's 1 MiB chunks otherwise cost a major collection for every 64 MiB). Only for
   * bytes whose last user the caller is, views of them included: they all read as empty
   * afterwards. With a client that cannot free early this does nothing.
   */
  releaseRead(bytes: Uint8Array): void {
    this.#client.release?.(bytes);
  }

  /**
   * Resolves once no write of the file at `path`, nor of its entry in its parent's listing,
   * that failed while Riak may still apply it (a put or a set update that timed out: see
   * {@link StoreClient.lateWritesSettled}) can land unheard. A removal of the name waits for
   * this first: a put landing after it would bring the file back, unlisted but found by its
   * key; an add of its entry landing after it would list the name again, with nothing behind
   * it (Riak's sets are add-wins).
   */
  async lateWritesSettled(path: StorePath): Promise<void> {
    const placement = this.layout.file(normalizePath(path));
    await Promise.all([
      this.#client.lateWritesSettled?.(placement.object),
      this.#index.lateAddsSettled(this.layout.directory(placement.parent), [placement.name]),
    ]);
  }

  /**
   * Whether a write of the file at `path`, or of its entry, awaits its late answer
   * ({@link lateWritesSettled}).
   */
  awaitsLateWrites(path: StorePath): boolean {
    const placement = this.layout.file(normalizePath(path));
    return (this.#client.awaitsLateWrites?.(placement.object) ?? false) ||
      this.#index.awaitsLateAdds(this.layout.directory(placement.parent), placement.name);
  }

  /**
   * The whole content of a file in memory, verified; retries if the file is overwritten
   * meanwhile. For large files stream with {@link readRange} instead.
   */
  async readFile(path: StorePath): Promise<Buffer> {
    const p = normalizePath(path);
    for (let attempt = 1;; attempt++) {
      try {
        const object = await this.#fileObject(p);
        const size = object.meta.size;
        if (size === 0) return Buffer.alloc(0);
        // A small file is its one get: its bytes are returned without a generator's turns.
        if (object.meta.storage === "inline") {
          return this.#verifiedInline(p, object).subarray(0, size);
        }
        const parts: Buffer[] = [];
        for await (const part of this.#readChunks(p, this.#manifestOf(p, object), 0, size)) {
          parts.push(part);
        }
        return parts.length === 1 ? parts[0] : Buffer.concat(parts);
      } catch (error) {
        if (!(error instanceof GenerationChangedError) || attempt >= READ_RETRIES) throw error;
      }
    }
  }

  /** The target of a symlink. */
  async readlink(path: StorePath): Promise<Buffer> {
    const p = normalizePath(path);
    const object = await this.#getResolved(this.layout.file(p).object, false, p);
    if (!object && !await this.#statOrUndefined(p)) {
      throw new NotFoundError(displayPath(p), describeLocation(this.layout.file(p).object));
    }
    if (!object || object.meta.type !== "symlink") {
      throw new StoreError("EINVAL", `${displayPath(p)}: not a symlink`, { path: displayPath(p) });
    }
    return view(object.content.value);
  }

  /**
   * Writes a file: small files as one object, larger ones as chunks (hashed while uploading,
   * `uploadConcurrency` in flight) and then the manifest. Missing parent directories are
   * created. An overwrite writes a new generation, switches the manifest, then deletes the
   * old generation's chunks.
   *
   * Unless {@link WriteOptions.previous} names a file, the object is put with Riak's
   * `if_none_match`, so a new file costs no look-up of an older version: only when Riak finds
   * one does the write fetch its vclock and put again over it.
   */
  async writeFile(
    path: StorePath,
    source: WriteSource,
    options: WriteOptions = {},
  ): Promise<FileStat> {
    const p = normalizePath(path);
    const placement = this.layout.file(p);
    await this.#ensureDirectory(placement.parent, options.parentAttributes);
    const known = options.previous ? this.#statObjects.get(options.previous) : undefined;
    if (known && known.meta.type !== "file") throw new AlreadyExistsError(displayPath(p));
    // A file object and a directory of the same name never coexist (mkdir and writeFile each
    // refuse the other), so a known file needs no directory check; otherwise the check runs
    // alongside the upload and the put.
    const directoryCheck = known || options.unlisted
      ? undefined
      : this.#getResolved(this.layout.directory(p).object, true, p);
    directoryCheck?.catch(() => {}); // awaited by #create; not lost if the upload fails first
    // Read now, not at the stat: its manifest, and its rename marks (a rename of a partner
    // since may have named a new holder of its chunks).
    const replacedObject = known?.meta.storage === "chunked"
      ? await this.#fileObject(p)
      : undefined;
    const replacedManifest = replacedObject ? this.#manifestOf(p, replacedObject) : undefined;
    const contentType = options.contentType ??
      (placement.riakFuse
        ? this.namespace.riakFuse.contentType
        : contentTypeFor(placement.name.toString("utf8")));
    const uploaded = await this.#upload(p, source, contentType, options);
    if (options.signal?.aborted) throw uploadFailure(p, options.signal.reason);
    const meta = known
      ? await this.#replace(p, uploaded, options, known, replacedManifest, replacedObject)
      : await this.#create(p, uploaded, options, directoryCheck);
    if (known) {
      // The stat saw the object, not its entry: a write cut off between the two (a crash, an
      // update Riak refused) left it unlisted, and this write is its repair. A look in the
      // listing when the entry is there, as it mostly is; an update only when it is not.
      await this.#addOwnEntry(placement, "file", options.parentAttributes);
    }
    if (placement.riakFuseSizeSet) {
      await this.#setRiakFuseSize(placement.riakFuseSizeSet, meta.size);
    }
    return this.#statFrom(p, placement.object, {
      content: { value: new Uint8Array(), contentType, usermeta: [] },
      meta,
      managed: true,
    });
  }

  /** Creates a directory; the parent must exist. */
  async mkdir(path: StorePath, options: MkdirOptions = {}): Promise<FileStat> {
    const p = normalizePath(path);
    if (p.length === 0) throw new AlreadyExistsError(displayPath(p));
    const dir = this.layout.directory(p);
    // Looked for beside the put when the caller saw no entry of the name: a file, or an index
    // (a directory other tools made, without an object); the put itself finds a directory.
    const occupied = options.unlisted
      ? Promise.all([
        this.#getResolved(this.layout.file(p).object, true, p),
        this.#index.exists(dir),
      ]).then(([file, indexed]) => file !== undefined || indexed)
      : undefined;
    occupied?.catch(() => {}); // awaited below; not lost if the put fails first
    if (!occupied) {
      const existing = await this.#statAtOnce(p);
      if (existing !== undefined) {
        // One whose making was cut off before its entry is listed now, as it is found.
        if (existing.type === "directory") await this.#ensureDirectory(p);
        throw new AlreadyExistsError(displayPath(p));
      }
    }
    const { parent, name } = splitParent(p);
    await this.#requireDirectory(parent);
    const meta = directoryMeta(options);
    const made = await this.#putIfAbsent(dir.object, {
      value: new Uint8Array(),
      contentType: "text/plain",
      usermeta: encodeUsermeta(meta),
    });
    if (occupied && await occupied) {
      if (made) await this.#delete(dir.object);
      throw new AlreadyExistsError(displayPath(p));
    }
    // Made meanwhile (by a write below it, another host): theirs stands, siblings never.
    if (!made) throw new AlreadyExistsError(displayPath(p));
    this.#index.created(dir);
    this.#rememberDirectory(p);
    options.objectStored?.();
    try {
      // Neither a file nor a directory of the name was there: no older entry to look for.
      await this.#addEntries(parent, [{ type: "directory", name }], { absent: true });
    } catch (error) {
      // Below it, writes may have begun once its object was stored: then it stays.
      await this.#leftUnlisted(p, dir.object, options.objectStored === undefined);
      throw error;
    }
    return this.#statFrom(p, dir.object, {
      content: { value: new Uint8Array(), usermeta: [] },
      meta,
      managed: true,
    });
  }

  /**
   * Creates a symlink at `path` pointing at `target`; missing parents are created (with
   * `parentAttributes`' attributes, as a write makes them).
   */
  async symlink(
    path: StorePath,
    target: StorePath,
    options: Partial<FileAttributes> & Pick<WriteOptions, "parentAttributes"> = {},
  ): Promise<FileStat> {
    const p = normalizePath(path);
    const placement = this.layout.file(p);
    await this.#ensureDirectory(placement.parent, options.parentAttributes);
    if (await this.#statOrUndefined(p)) throw new AlreadyExistsError(displayPath(p));
    const value = typeof target === "string" ? Buffer.from(target) : Buffer.from(target);
    const meta: ObjectMeta = {
      layout: LAYOUT_VERSION,
      type: "symlink",
      storage: "inline",
      size: value.length,
      sha256: sha256(value),
      mode: options.mode ?? 0o777,
      uid: options.uid ?? 0,
      gid: options.gid ?? 0,
      mtimeNs: options.mtimeNs ?? nowNs(),
    };
    // Only where nothing is: a file another host wrote since the look must not be replaced.
    const made = await this.#putIfAbsent(placement.object, {
      value,
      contentType: "text/plain",
      usermeta: encodeUsermeta(meta),
    });
    if (!made) throw new AlreadyExistsError(displayPath(p));
    try {
      await this.#addOwnEntry(placement, "symlink", options.parentAttributes);
    } catch (error) {
      await this.#leftUnlisted(p, placement.object, true);
      throw error;
    }
    return this.#statFrom(p, placement.object, {
      content: { value, usermeta: [] },
      meta,
      managed: true,
    });
  }

  /**
   * Adds the directory entry of the file, symlink or directory stored at `path` where its
   * parent's index lacks it (a write or mkdir that ended between its object and its entry: a
   * crash, or a put that landed after its client gave up on it), making missing parents as a
   * write does. Resolves true when it added the entry.
   *
   * @throws {NotFoundError} when nothing is stored at `path`.
   */
  async ensureListed(
    path: StorePath,
    options: Pick<WriteOptions, "parentAttributes"> = {},
  ): Promise<boolean> {
    const p = normalizePath(path);
    const placement = this.layout.file(p);
    const [object, directoryObject] = await Promise.all([
      this.#getResolved(placement.object, true, p),
      p.length > 0 ? this.#getResolved(this.layout.directory(p).object, true, p) : undefined,
    ]);
    // A directory may have no object of its own: one other tools made (a riak-fuse folder's
    // listing set) is there by its index alone.
    const type = object
      ? object.meta.type
      : directoryObject || (p.length > 0 && await this.#index.exists(this.layout.directory(p)))
      ? "directory"
      : undefined;
    if (!type || (object && type === "directory")) {
      throw new NotFoundError(displayPath(p), describeLocation(placement.object));
    }
    const directory = this.layout.directory(placement.parent);
    if ((await this.#index.lookup(directory, placement.name))?.type === type) return false;
    await this.#ensureDirectory(placement.parent, options.parentAttributes);
    await this.#addOwnEntry(placement, type, options.parentAttributes);
    // riak-fuse stored such a file (-ddir) without its size set too, and reading from Riak it
    // finds a file only by that set.
    if (type === "file" && placement.riakFuseSizeSet) {
      await this.#setRiakFuseSize(placement.riakFuseSizeSet, object!.meta.size);
    }
    return true;
  }

  /** The entries of a directory, shard by shard. */
  async *list(path: StorePath): AsyncGenerator<DirEntry> {
    const p = normalizePath(path);
    await this.#requireDirectory(p);
    const images = this.layout.riakFuseImagesOf(p);
    if (images === undefined) return yield* this.#index.list(this.layout.directory(p));
    // A riak-fuse folder lists its images folder, also where only riak-fuse's set says so.
    const imagesName = Buffer.from(this.namespace.riakFuse.imagesFolder);
    let imagesListed = false;
    for await (const entry of this.#index.list(this.layout.directory(p))) {
      if (entry.name.equals(imagesName)) imagesListed = true;
      yield entry;
    }
    if (!imagesListed && await this.#index.exists(images)) {
      yield { name: imagesName, type: "directory" };
    }
  }

  /**
   * Answers whether directories' indexes name entries, reading only the shards a name can be
   * in, each once for many names ({@link ListedNames}): for a caller deciding about the names
   * of a directory in turn. A stale answer is possible (see there).
   */
  listedNames(options?: ListedNamesOptions): ListedNames {
    const imagesFolder = Buffer.from(this.namespace.riakFuse.imagesFolder);
    return new ListedNames({
      placement: (directory) => this.layout.directory(directory),
      shardNames: (directory, count, index) => this.#index.shardNames(directory, count, index),
      // Store.list names it also where only riak-fuse's set does.
      listedWithoutEntry: (directory, name) =>
        name.equals(imagesFolder) && this.layout.riakFuseImagesOf(directory) !== undefined,
    }, options);
  }

  /**
   * Whether a directory at `path` ever held entries in Riak: its index is there, emptied or
   * not, whether or not the directory still is (its removal empties its sets, never deletes
   * them). False for one never given an entry, and where nothing was ever made.
   */
  async everHeldEntries(path: StorePath): Promise<boolean> {
    return await this.#index.everWritten(this.layout.directory(normalizePath(path)));
  }

  /** Every path below a directory, depth first, directories before their entries. */
  async *walk(path: StorePath = ""): AsyncGenerator<DirEntry & { path: Buffer }> {
    const p = normalizePath(path);
    for await (const entry of this.list(p)) {
      const child = childPath(p, entry.name);
      yield { ...entry, path: child };
      if (entry.type === "directory") yield* this.walk(child);
    }
  }

  /**
   * Removes a file, symlink or directory (a non-empty one only with `recursive`; only a
   * directory with `directoryOnly`, as rmdir). The entry goes first, then the object, then a
   * chunked file's chunks.
   */
  async remove(
    path: StorePath,
    options: { recursive?: boolean; directoryOnly?: boolean } = {},
  ): Promise<void> {
    const p = normalizePath(path);
    if (p.length === 0) throw new InvalidPathError("/", "the root cannot be removed");
    await this.lateWritesSettled(p);
    const stat = await this.stat(p);
    if (options.directoryOnly && stat.type !== "directory") {
      throw new WrongTypeError("ENOTDIR", displayPath(p));
    }
    const { parent, name } = splitParent(p);
    if (stat.type === "directory") {
      const dir = this.layout.directory(p);
      if (options.recursive) {
        const children = await collect(this.#index.list(dir));
        await mapLimit(
          children,
          TREE_PARALLELISM,
          (entry) =>
            this.remove(childPath(p, entry.name), { recursive: true }).catch(async (error) => {
              if (!(error instanceof NotFoundError)) throw error;
              // An entry whose object is gone (a crash in a directory rename left it).
              await this.#index.remove(dir, [entry.name]);
            }),
        );
      } else if (await this.#index.hasEntries(dir)) {
        throw new DirectoryNotEmptyError(displayPath(p));
      }
      await this.#removeDirectoryLast(p);
      return;
    }
    await this.#index.remove(this.layout.directory(parent), [name]);
    await this.#removeFileObject(p);
  }

  /**
   * Removes the emptied directory `p`: its entry in its parent, then its object, then it looks
   * for entries once more. Another host writing below it at the same moment adds its entry,
   * then makes sure the directory's object is still there ({@link #keepDirectory}): so one of
   * the two sees the other, and either this removal finds the entry (the directory is put back,
   * ENOTEMPTY) or the writer finds the object gone (and makes the directory again). Its shards
   * are never deleted: a delete would take entries added after the last look with it, unseen.
   */
  async #removeDirectoryLast(p: Buffer): Promise<void> {
    const dir = this.layout.directory(p);
    const { parent, name } = splitParent(p);
    const object = await this.#getResolved(dir.object, false, p);
    await this.#index.remove(this.layout.directory(parent), [name]);
    if (object) await this.#delete(dir.object);
    this.#forgetDirectories(p);
    if (!await this.#index.hasEntries(dir)) return;
    if (object) {
      await this.#putIfAbsent(dir.object, {
        value: object.content.value,
        contentType: object.content.contentType ?? "text/plain",
        usermeta: object.content.usermeta,
      });
    }
    await this.#addEntries(parent, [{ type: "directory", name }]);
    throw new DirectoryNotEmptyError(displayPath(p));
  }

  /**
   * Removes the file or symlink `examined` (a stat this store returned) only as it was then,
   * for a caller that decided on what it saw and must not take a version written since with
   * it. Its entry is removed only once the object is still that version (read after the
   * listing the removal works from, so an entry added since stays), and the object is deleted
   * with the stat's vclock: on a bucket type with `allow_mult`, a version written between the
   * look and the delete stays, a sibling the delete did not cover (without it, Riak keeps the
   * later of the two: a write landing in that one round trip is lost, Riak has no conditional
   * delete). Other names are never touched: a file written beside it stays. The
   * path is looked at once more afterwards, and what is stored there by then is listed again.
   *
   * Resolves true once nothing is stored at the path (removed, or gone already); false when it
   * holds something else (written, or its attributes set, since the stat), which stays, listed.
   */
  async removeIfUnchanged(examined: FileStat): Promise<boolean> {
    const seenVclock = this.#statObjects.get(examined)?.vclock;
    if (examined.type === "directory" || seenVclock === undefined) {
      throw new TypeError("removeIfUnchanged: not a stat of a file or symlink of this store");
    }
    const p = examined.path;
    await this.lateWritesSettled(p);
    const placement = this.layout.file(p);
    const { parent, name } = splitParent(p);
    let current: ResolvedObject | undefined;
    let unchanged: boolean | undefined;
    const stillSeen = async () => {
      current = await this.#getResolved(placement.object, false, p);
      unchanged = current === undefined ||
        (current.vclock !== undefined && Buffer.compare(current.vclock, seenVclock) === 0);
      return unchanged;
    };
    await this.#index.remove(this.layout.directory(parent), [name], { onlyIf: stillSeen });
    if (!(unchanged ?? await stillSeen())) return false;
    const left = await this.#deleteSeenVersion(placement.object, current, p);
    const stored = left?.meta.type ?? (await this.#directoryStatOrUndefined(p))?.type;
    if (stored) {
      await this.#addEntries(parent, [{ type: stored, name }]);
      return false;
    }
    if (current) await this.#releaseFileObject(p, current);
    return true;
  }

  /**
   * Removes the entries of `path` in its parent when nothing is stored at `path`: an orphan
   * entry ({@link stat} and {@link remove} answer not found for it, so nothing else removes
   * it). Resolves true when it removed one; false when nothing was listed, or something is
   * stored there after all.
   *
   * The entries are removed with the context of the read that preceded the last look at the
   * path (see DirectoryIndex.remove), so an entry added after that read stays (add-wins). A
   * writer that stored the name meanwhile may have added nothing, though, finding the orphan
   * entry in place (a symlink, a rename, an overwrite; or a write below a directory that
   * found it listed, see {@link #keepDirectory}): so the path is looked at once more after
   * the removal, and what is stored there by then is listed again. A writer storing it after
   * that look finds the entry gone and adds its own. Both looks ask with `notfound_ok: false`
   * (see {@link StoreOptions.authoritativeReads}), whatever this store's reads: absent here
   * means an entry goes, and replicas that do not hold the object (fallbacks while nodes are
   * down) must not answer for one that does.
   */
  async removeOrphanEntry(path: StorePath): Promise<boolean> {
    const p = normalizePath(path);
    if (p.length === 0) throw new InvalidPathError("/", "the root has no entry");
    const { parent, name } = splitParent(p);
    const looks = this.withAuthoritativeReads();
    const removed = await this.#index.remove(
      this.layout.directory(parent),
      [name],
      { onlyIf: async () => await looks.tryStat(p) === undefined },
    );
    if (!removed) return false;
    const stored = await looks.tryStat(p);
    if (stored === undefined) return true;
    await this.#addEntries(parent, [{ type: stored.type, name }]);
    return false;
  }

  /**
   * Renames a file, symlink or directory. The new object(s) and entries are written before the
   * old ones are removed: a crash leaves a duplicate, never a loss. A file replaces an existing
   * file; a directory replaces only an empty directory (see {@link RenameOptions.resume}).
   */
  async rename(from: StorePath, to: StorePath, options: RenameOptions = {}): Promise<void> {
    const f = normalizePath(from);
    const t = normalizePath(to);
    if (f.equals(t)) return;
    if (f.length === 0 || t.length === 0) {
      throw new InvalidPathError(displayPath(f.length === 0 ? f : t), "the root cannot be renamed");
    }
    if (isSameOrBelow(t, f)) throw new InvalidPathError(displayPath(t), "inside the source");
    // The old name goes: a put of it landing late would bring it back.
    await this.lateWritesSettled(f);
    const source = await this.stat(f);
    const target = await this.#statOrUndefined(t);
    if (target) {
      if (source.type === "directory" && target.type !== "directory") {
        throw new WrongTypeError("ENOTDIR", displayPath(t));
      }
      if (source.type !== "directory" && target.type === "directory") {
        throw new WrongTypeError("EISDIR", displayPath(t));
      }
      const resumed = options.resume === true && source.type === "directory" &&
        madeByRenameOf(target, source) && await this.#holdsCopiesOnly(f, t);
      if (target.type === "directory" && !resumed) await this.remove(t); // empty, or ENOTEMPTY
    }
    await this.#requireDirectory(splitParent(t).parent);
    if (source.type === "directory") await this.#renameDirectory(f, t);
    else await this.#renameFile(f, t);
  }

  /**
   * Whether every file directory `t` holds under a name `f` (or a directory below it) still
   * holds too is a copy of it (same bytes): what a directory rename of `f` to `t` cut short
   * leaves, and what going on with it may overwrite. Another's file there is never taken for
   * one, and stays.
   */
  async #holdsCopiesOnly(f: Buffer, t: Buffer): Promise<boolean> {
    for await (const entry of this.#index.list(this.layout.directory(f))) {
      const [from, to] = [childPath(f, entry.name), childPath(t, entry.name)];
      const [original, copy] = await Promise.all([
        this.#statOrUndefined(from),
        this.#statOrUndefined(to),
      ]);
      if (original === undefined || copy === undefined) continue;
      if (original.type !== copy.type) return false;
      if (original.type === "directory") {
        if (!await this.#holdsCopiesOnly(from, to)) return false;
      } else if (original.sha256 !== copy.sha256 || original.size !== copy.size) return false;
    }
    return true;
  }

  /**
   * Changes mode, owner or mtime; the content is written back unchanged. Given `onlyOver`
   * (the version a caller looked at), a file Riak holds in another version by now (written
   * since, through a mount say) is left alone: GenerationChangedError, since attributes
   * meant for one version must not land on another.
   */
  async setAttributes(
    path: StorePath,
    attributes: Partial<FileAttributes>,
    onlyOver?: Pick<FileStat, "sha256" | "mtimeNs">,
  ): Promise<FileStat> {
    const p = normalizePath(path);
    const stat = await this.stat(p);
    const location = stat.type === "directory"
      ? this.layout.directory(p).object
      : this.layout.file(p).object;
    for (let attempt = 1;; attempt++) {
      const object = await this.#getResolved(location, false, p);
      // Removed or renamed away since the stat: not made again (only a directory other tools
      // made has no object, and gets one).
      if (object === undefined && (stat.type !== "directory" || stat.managed)) {
        throw new NotFoundError(displayPath(p));
      }
      if (
        onlyOver &&
        (object?.meta.sha256 !== onlyOver.sha256 || object.meta.mtimeNs !== onlyOver.mtimeNs)
      ) throw new GenerationChangedError(displayPath(p));
      const meta: ObjectMeta = {
        ...(object?.meta ?? directoryMeta({})),
        ...definedOnly(attributes),
        layout: LAYOUT_VERSION,
      };
      const content: StoredContent = object?.content ??
        { value: new Uint8Array(), contentType: "text/plain", usermeta: [] };
      // An object made here: a directory another host removed while a write below it went on
      // is found by that write's entry alone, and the write lists it again only where it finds
      // no object (#keepDirectory). So it is listed first, as #ensureDirectory lists one.
      if (object === undefined && p.length > 0) await this.#listDirectory(p);
      try {
        // Only over the version read: an overwrite meanwhile must not be undone by putting
        // its predecessor's value (a manifest whose chunks are gone) back.
        await this.#put(
          location,
          {
            value: content.value,
            contentType: content.contentType ?? "application/octet-stream",
            // A rename's marks stay: they keep chunks two names share from being deleted.
            usermeta: [...encodeUsermeta(meta), ...renameMarks(content.usermeta)],
          },
          object?.vclock,
          false,
          true,
        );
      } catch (error) {
        if (error instanceof KeyModifiedError && attempt < SET_ATTRIBUTES_ATTEMPTS) continue;
        throw error;
      }
      return this.#statFrom(p, location, { content, meta, managed: true });
    }
  }

  /** Compares a local file with what Riak holds, reading (and verifying) every remote byte. */
  async verify(path: StorePath, localFile: string): Promise<VerifyResult> {
    const p = normalizePath(path);
    const local = await hashStream(createReadStream(localFile)).catch((error) => {
      throw new StoreError("EIO", `${localFile}: cannot read the local file: ${error.message}`, {
        path: displayPath(p),
        cause: error,
      });
    });
    const result: VerifyResult = { path: displayPath(p), matches: false, local };
    try {
      const stat = await this.stat(p);
      if (stat.type !== "file") return { ...result, problem: `is a ${stat.type} in Riak` };
      const remote = await this.#hashRemote(p);
      result.remote = remote;
      if (remote.size !== local.size) {
        return { ...result, problem: `size differs: local ${local.size}, Riak ${remote.size}` };
      }
      if (remote.sha256 !== local.sha256) return { ...result, problem: "content differs" };
      return { ...result, matches: true };
    } catch (error) {
      if (error instanceof NotFoundError) return { ...result, problem: "not in Riak" };
      if (error instanceof ChecksumMismatchError || error instanceof CorruptObjectError) {
        return { ...result, problem: error.message };
      }
      throw error;
    }
  }

  /** The manifest of a chunked file, or undefined for any other path. */
  async manifest(path: StorePath): Promise<Manifest | undefined> {
    const p = normalizePath(path);
    const object = await this.#getResolved(this.layout.file(p).object, false, p);
    if (!object || object.meta.storage !== "chunked") return undefined;
    return this.#manifestOf(p, object);
  }

  /**
   * The content buckets besides the namespace's own that hold manifests: riak-fuse folders'
   * buckets a chunked file was written to ({@link Layout.manifestBuckets}).
   */
  async manifestBuckets(): Promise<string[]> {
    const registry = this.layout.manifestBuckets();
    const set = await this.#client.fetchSet(registry, this.#readOptions).catch((error) => {
      throw new RiakRequestError("set fetch", describeLocation(registry), error);
    });
    return (set?.members ?? []).map((member) => Buffer.from(member).toString("latin1")).sort();
  }

  /**
   * The generations the object at `key` of content bucket `bucket` references, one per
   * sibling holding a manifest (for gc: a sibling not yet resolved still counts); undefined
   * when no object is there.
   */
  async generationsAt(bucket: string, key: string): Promise<string[] | undefined> {
    const location = {
      bucketType: this.namespace.bucketType,
      bucket: Buffer.from(bucket, "latin1"),
      key: Buffer.from(key, "latin1"),
    };
    const p = location.key;
    const chunked = (content: StoredContent) =>
      this.#decodeMeta(content, p, location).meta.storage === "chunked";
    // A head-only get first: most keys hold small files, whose values are not needed here.
    const { contents } = await this.#get(location, true);
    if (contents.length === 0) return undefined;
    if (!contents.some(chunked)) return [];
    const fetched = await this.#get(location, false);
    const generations: string[] = [];
    for (const content of fetched.contents) {
      if (!chunked(content)) continue;
      try {
        generations.push(decodeManifest(content.value).generation);
      } catch (error) {
        if (!(error instanceof ManifestFormatError)) throw error;
        throw new CorruptObjectError(`${bucket}/${key}`, describeLocation(location), error.message);
      }
    }
    return generations;
  }

  /** Keys of the chunk bucket (a cluster-wide list-keys: administrative use only). */
  chunkKeys(): AsyncGenerator<string> {
    return this.#keysOf(Buffer.from(this.namespace.chunkBucket));
  }

  /**
   * Keys of the content bucket (or of `bucket`, one of {@link manifestBuckets}: latin1 of its
   * bytes), listed or not (a cluster-wide list-keys: administrative use only). A file's key is
   * its path; a directory's object ends with `/`.
   */
  contentKeys(bucket?: string): AsyncGenerator<string> {
    return this.#keysOf(
      bucket === undefined ? Buffer.from(this.namespace.bucket) : Buffer.from(bucket, "latin1"),
    );
  }

  async *#keysOf(bucket: Buffer): AsyncGenerator<string> {
    try {
      for await (const keys of this.#client.listKeys(this.namespace.bucketType, bucket)) {
        for (const key of keys) yield Buffer.from(key).toString("latin1");
      }
    } catch (error) {
      throw new RiakRequestError(
        "list keys",
        describeLocation({ bucketType: this.namespace.bucketType, bucket, key: Buffer.alloc(0) }),
        error,
      );
    }
  }

  /**
   * Riak's last-modified time of a key of the chunk bucket (a chunk, a rename stamp), the
   * newest of its siblings; undefined if it is gone.
   */
  async chunkLastModifiedNs(key: string): Promise<bigint | undefined> {
    const fetched = await this.#get(this.layout.chunk(key), true);
    let newest: bigint | undefined;
    for (const { lastModifiedNs } of fetched.contents) {
      const modified = lastModifiedNs ?? 0n;
      if (newest === undefined || modified > newest) newest = modified;
    }
    return newest;
  }

  /** Deletes one chunk by key (for gc). */
  async deleteChunk(key: string): Promise<void> {
    await this.#delete(this.layout.chunk(key));
  }

  // ---- internals ----

  /**
   * Puts an uploaded file where the caller saw no file: with `if_none_match`, while
   * `directoryCheck` looks for a directory of the same name (none: the caller's listing had
   * no entry of the name). A new file then gets its entry; a file found after all is replaced
   * ({@link #replace}), or refused when the write was {@link WriteOptions.unlisted}; a
   * directory refuses the write.
   */
  async #create(
    p: Buffer,
    uploaded: UploadedContent,
    options: WriteOptions,
    directoryCheck: Promise<ResolvedObject | undefined> | undefined,
  ): Promise<ObjectMeta> {
    const placement = this.layout.file(p);
    const meta = fileMeta(uploaded, options);
    const [put, directory] = await Promise.allSettled([
      this.#putIfAbsent(placement.object, fileContent(uploaded, meta)),
      directoryCheck,
    ]);
    if (put.status === "rejected") throw put.reason; // may have been applied: chunks stay for gc
    // A put resent after an attempt that may have been applied (a timeout) finds that
    // attempt: the object there names this upload's generation. It is this write, stored.
    const created = put.value ||
      (uploaded.manifest !== undefined && await this.#holdsGeneration(p, uploaded.manifest));
    // Stored, but the check failed: look once more rather than leave an object without its
    // entry (if this throws too, it is like a crash before the entry is added).
    const directoryFound = directory.status === "fulfilled"
      ? directory.value
      : await this.#getResolved(this.layout.directory(p).object, true, p);
    if (!created && options.unlisted) {
      if (uploaded.manifest) await this.#deleteChunks(uploaded.manifest);
      throw new AlreadyExistsError(displayPath(p));
    }
    if (directoryFound) {
      // Rare (a file written over a directory): undo the object this put created, which was
      // briefly visible, and the new chunks no manifest in Riak refers to any more.
      if (created) await this.#delete(placement.object);
      if (uploaded.manifest) await this.#deleteChunks(uploaded.manifest);
      throw new WrongTypeError("EISDIR", displayPath(p));
    }
    if (!created) return await this.#replaceFound(p, uploaded, options);
    options.objectStored?.();
    await this.#addOwnEntry(placement, "file", options.parentAttributes, true);
    return meta;
  }

  /** Whether the file object at `p` is the manifest of `manifest`'s generation. */
  async #holdsGeneration(p: Buffer, manifest: Manifest): Promise<boolean> {
    const found = await this.#getResolved(this.layout.file(p).object, false, p);
    return found?.meta.storage === "chunked" &&
      this.#manifestOf(p, found).generation === manifest.generation;
  }

  /** The put of {@link #create} found an object at the file key: write over it. */
  async #replaceFound(
    p: Buffer,
    uploaded: UploadedContent,
    options: WriteOptions,
  ): Promise<ObjectMeta> {
    const placement = this.layout.file(p);
    const found = await this.#getResolved(placement.object, true, p);
    if (!found) {
      // Deleted in between: nothing to replace, so this is a new file after all.
      const meta = fileMeta(uploaded, options);
      await this.#put(placement.object, fileContent(uploaded, meta));
      await this.#addOwnEntry(placement, "file", options.parentAttributes);
      return meta;
    }
    if (found.meta.type !== "file") {
      if (uploaded.manifest) await this.#deleteChunks(uploaded.manifest);
      throw new AlreadyExistsError(displayPath(p));
    }
    if (await this.#setAside(p, found, options)) {
      return await this.#create(p, uploaded, options, undefined);
    }
    if (options.keepNewer && found.meta.mtimeNs > (options.mtimeNs ?? 0n)) {
      if (uploaded.manifest) await this.#deleteChunks(uploaded.manifest);
      throw new NewerVersionError(displayPath(p));
    }
    const previous = found.meta.storage === "chunked" ? await this.#fileObject(p) : found;
    const replaced = previous.meta.storage === "chunked"
      ? this.#manifestOf(p, previous)
      : undefined;
    const meta = await this.#replace(p, uploaded, options, previous, replaced);
    // The writer saw no entry: one the object never got (a crash in between) is added now.
    await this.#addOwnEntry(placement, "file", options.parentAttributes);
    return meta;
  }

  /** Whether the caller moved `found`, the file at `p` a write would go over, away. */
  async #setAside(p: Buffer, found: ResolvedObject, options: WriteOptions): Promise<boolean> {
    if (!options.setAside) return false;
    return await options.setAside(this.#statFrom(p, this.layout.file(p).object, found));
  }

  /**
   * Puts an uploaded file over `previous` (with its vclock), keeping its mode and owner unless
   * given, then deletes the replaced generation's chunks unless a name in the rename marks of
   * `replacedObject` (the object as read just before, by default `previous`) still uses them.
   */
  async #replace(
    p: Buffer,
    uploaded: UploadedContent,
    options: WriteOptions,
    previous: ResolvedObject,
    replacedManifest: Manifest | undefined,
    replacedObject: ResolvedObject = previous,
  ): Promise<ObjectMeta> {
    const meta = fileMeta(uploaded, options, previous.meta);
    // If this put fails the new chunks stay for `riakfs gc`: a failed put may still have been
    // applied, and deleting the chunks then would break the version Riak now holds.
    const location = this.layout.file(p).object;
    try {
      // Only over the version looked at: one changed since (another host's write, or a rename
      // marking it as sharing its chunks with a new name) is read again, so the chunks deleted
      // below are never ones a rename partner still uses.
      await this.#put(location, fileContent(uploaded, meta), previous.vclock, false, true);
    } catch (error) {
      if (!(error instanceof KeyModifiedError)) throw error;
      // Written elsewhere since it was looked at: over it, unless asked to keep a newer one.
      const now = await this.#getResolved(location, false, p);
      if (now?.meta.type === "file" && await this.#setAside(p, now, options)) {
        return await this.#create(p, uploaded, options, undefined);
      }
      if (now && now.meta.mtimeNs > meta.mtimeNs) {
        if (options.keepNewer) {
          if (uploaded.manifest) await this.#deleteChunks(uploaded.manifest);
          throw new NewerVersionError(displayPath(p));
        }
        // Put as it would have been without the condition: a sibling of the newer version
        // where the type keeps siblings (the newer wins their resolution), over it elsewhere.
        // No chunks are deleted: the versions in between may still use them.
        await this.#put(location, fileContent(uploaded, meta), previous.vclock);
        return meta;
      }
      if (!now) return await this.#replaceFound(p, uploaded, options);
      const replaced = now.meta.storage === "chunked" ? this.#manifestOf(p, now) : undefined;
      return await this.#replace(p, uploaded, options, now, replaced);
    }
    if (
      replacedManifest && replacedManifest.generation !== uploaded.manifest?.generation &&
      // The manifest read may be newer than the version the vclock named (another writer in
      // between): on a type with siblings that version lives on, its chunks with it.
      replacedManifest.sha256 === previous.meta.sha256 &&
      !await this.#sharedWithRenamePartner(replacedObject, replacedManifest)
    ) {
      await this.#deleteChunks(replacedManifest);
    }
    return meta;
  }

  /** A file or symlink at `p` (one get), remembered for a write's vclock. */
  async #fileStatOrUndefined(p: Buffer, withContent = false): Promise<FileStat | undefined> {
    if (p.length === 0) return undefined;
    const location = this.layout.file(p).object;
    const object = await this.#getResolved(location, !withContent, p);
    return object ? this.#fileStatFrom(p, location, object, withContent) : undefined;
  }

  #fileStatFrom(
    p: Buffer,
    location: ObjectLocation,
    object: ResolvedObject,
    withContent: boolean,
  ): FileStat {
    const stat = this.#statFrom(p, location, object);
    if (withContent && object.meta.type === "file" && object.meta.storage === "inline") {
      // Corrupt bytes leave `content` unset: the stat stands, and the read reports the mismatch.
      try {
        stat.content = this.#verifiedInline(p, object);
      } catch (error) {
        if (!(error instanceof ChecksumMismatchError)) throw error;
      }
    }
    this.#statObjects.set(stat, object);
    return stat;
  }

  /**
   * {@link #statOrUndefined} with its look-ups asked at once: one round trip where that takes
   * up to two in turn. For callers expecting nothing at `p`; a stat of what exists is cheaper
   * in turn.
   */
  async #statAtOnce(p: Buffer, withContent = false): Promise<FileStat | undefined> {
    if (p.length === 0) return await this.#statOrUndefined(p, withContent);
    const location = this.layout.file(p).object;
    const dir = this.layout.directory(p);
    const images = this.layout.riakFuseImagesOf(p);
    const [file, directory, listed, imagesListed] = await Promise.all([
      this.#getResolved(location, !withContent, p),
      this.#getResolved(dir.object, true, p),
      this.#index.exists(dir),
      images !== undefined && this.#index.exists(images),
    ]);
    if (file) return this.#fileStatFrom(p, location, file, withContent);
    return this.#directoryStat(p, dir.object, directory, listed || imagesListed);
  }

  async #statOrUndefined(p: Buffer, withContent = false): Promise<FileStat | undefined> {
    if (p.length > 0) {
      const location = this.layout.file(p).object;
      const object = await this.#getResolved(location, !withContent, p);
      if (object) return this.#fileStatFrom(p, location, object, withContent);
    }
    return await this.#directoryStatOrUndefined(p);
  }

  /** The directory at `p`, from its object or its listing alone (other tools make no object). */
  async #directoryStatOrUndefined(p: Buffer): Promise<FileStat | undefined> {
    const dir = this.layout.directory(p);
    const images = this.layout.riakFuseImagesOf(p);
    // Both asked at once: a name that is not there (a negative lookup) costs one round trip
    // after the file's, and a directory made by other tools has no object of its own.
    const [object, listed, imagesListed] = await Promise.all([
      this.#getResolved(dir.object, true, p),
      p.length === 0 || this.#index.exists(dir),
      images !== undefined && this.#index.exists(images),
    ]);
    return this.#directoryStat(p, dir.object, object, listed || imagesListed);
  }

  /** The directory at `p`, from its object and whether its index exists; undefined: none. */
  #directoryStat(
    p: Buffer,
    location: ObjectLocation,
    object: ResolvedObject | undefined,
    listed: boolean,
  ): FileStat | undefined {
    if (object?.meta.type === "directory") return this.#statFrom(p, location, object);
    if (!listed) return undefined;
    return this.#statFrom(p, location, {
      content: { value: new Uint8Array(), usermeta: [] },
      meta: directoryMeta({ mtimeNs: 0n }),
      managed: false,
    });
  }

  #statFrom(p: Buffer, location: ObjectLocation, object: ResolvedObject): FileStat {
    const { meta } = object;
    // Callers keep stats (the overlay caches ten thousand): as views into Node's shared pool
    // of small Buffers, their path and location would each keep a 64 KiB slab alive.
    const path = ownedBytes(p);
    return {
      path,
      type: meta.type,
      storage: meta.storage,
      size: meta.size,
      sha256: meta.sha256,
      mode: meta.mode,
      uid: meta.uid,
      gid: meta.gid,
      mtimeNs: meta.mtimeNs,
      ...(meta.atimeNs === undefined ? {} : { atimeNs: meta.atimeNs }),
      contentType: object.content.contentType ?? "application/octet-stream",
      location: {
        bucketType: location.bucketType,
        bucket: ownedBytes(location.bucket),
        key: location.key === p ? path : ownedBytes(location.key),
      },
      managed: object.managed,
    };
  }

  /** The object at a file path, with its value; ENOENT/EISDIR as appropriate. */
  async #fileObject(p: Buffer): Promise<ResolvedObject> {
    if (p.length === 0) throw new WrongTypeError("EISDIR", "/");
    const object = await this.#getResolved(this.layout.file(p).object, false, p);
    if (object) {
      if (object.meta.type === "symlink") {
        throw new StoreError("EINVAL", `${displayPath(p)}: is a symlink`, {
          path: displayPath(p),
        });
      }
      return object;
    }
    if (await this.#statOrUndefined(p)) throw new WrongTypeError("EISDIR", displayPath(p));
    throw new NotFoundError(displayPath(p), describeLocation(this.layout.file(p).object));
  }

  /** An inline file's bytes; ChecksumMismatchError unless they hash to what riakfs recorded. */
  #verifiedInline(p: Buffer, object: ResolvedObject): Buffer {
    const value = view(object.content.value);
    if (object.managed) {
      const actual = sha256(value);
      if (actual !== object.meta.sha256) {
        throw new ChecksumMismatchError(
          displayPath(p),
          describeLocation(this.layout.file(p).object),
          object.meta.sha256,
          actual,
        );
      }
    }
    return value;
  }

  #manifestOf(p: Buffer, object: ResolvedObject): Manifest {
    try {
      return decodeManifest(object.content.value);
    } catch (error) {
      if (!(error instanceof ManifestFormatError)) throw error;
      throw new CorruptObjectError(
        displayPath(p),
        describeLocation(this.layout.file(p).object),
        error.message,
      );
    }
  }

  async *#readChunks(
    p: Buffer,
    manifest: Manifest,
    start: number,
    end: number,
  ): AsyncGenerator<Buffer> {
    const first = Math.floor(start / manifest.chunkSize);
    const last = Math.floor((end - 1) / manifest.chunkSize);
    const pending: Array<Promise<Buffer>> = [];
    let next = first;
    const fetchNext = () => {
      const promise = this.#fetchChunk(p, manifest, next++);
      promise.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
      pending.push(promise);
    };
    for (let i = first; i <= last; i++) {
      while (next <= last && pending.length <= this.#readAhead) fetchNext();
      const fetched = await pending.shift()!;
      // Refill before verifying, so Riak serves the next chunks while this one is hashed.
      while (next <= last && pending.length <= this.#readAhead) fetchNext();
      const chunk = this.#verifyChunk(p, manifest, i, fetched);
      const chunkStart = i * manifest.chunkSize;
      yield chunk.subarray(
        Math.max(0, start - chunkStart),
        Math.min(chunk.length, end - chunkStart),
      );
    }
  }

  /** Chunk `index` of the manifest's generation, not yet verified. */
  async #fetchChunk(p: Buffer, manifest: Manifest, index: number): Promise<Buffer> {
    const location = this.layout.chunk(chunkKey(manifest.generation, index));
    const fetched = await this.#get(location, false);
    const content = fetched.contents[0];
    if (!content) {
      const current = await this.#getResolved(this.layout.file(p).object, false, p);
      if (
        !current || current.meta.storage !== "chunked" ||
        this.#manifestOf(p, current).generation !== manifest.generation
      ) {
        throw new GenerationChangedError(displayPath(p));
      }
      throw new CorruptObjectError(displayPath(p), describeLocation(location), "chunk missing");
    }
    return view(content.value);
  }

  /** `value` if its sha256 is the manifest's for chunk `index`, else ChecksumMismatchError. */
  #verifyChunk(p: Buffer, manifest: Manifest, index: number, value: Buffer): Buffer {
    const location = this.layout.chunk(chunkKey(manifest.generation, index));
    const actual = sha256(value);
    if (actual !== manifest.chunks[index]) {
      throw new ChecksumMismatchError(
        displayPath(p),
        describeLocation(location),
        manifest.chunks[index],
        actual,
      );
    }
    return value;
  }

  /** Size and sha256 of a file's verified bytes, streamed; restarts if it is overwritten. */
  async #hashRemote(p: Buffer): Promise<{ size: number; sha256: string }> {
    for (let attempt = 1;; attempt++) {
      try {
        return await hashStream(this.readRange(p));
      } catch (error) {
        if (!(error instanceof GenerationChangedError) || attempt >= READ_RETRIES) throw error;
      }
    }
  }

  async #upload(
    p: Buffer,
    source: WriteSource,
    contentType: string,
    { signal, chunkStored }: Pick<WriteOptions, "signal" | "chunkStored">,
  ): Promise<UploadedContent> {
    const chunkSize = this.namespace.chunkSize;
    const pieces = rechunk(sourceBytes(source, chunkSize), chunkSize)[Symbol.asyncIterator]();
    let first: Buffer;
    let secondPiece: IteratorResult<Buffer>;
    try {
      const firstPiece = await pieces.next();
      first = firstPiece.done ? Buffer.alloc(0) : firstPiece.value;
      secondPiece = first.length === chunkSize
        ? await pieces.next()
        : { done: true, value: undefined };
    } catch (error) {
      await pieces.return(undefined).catch(() => {}); // closes the source (a file handle)
      throw uploadFailure(p, error);
    }
    if (secondPiece.done) {
      return { size: first.length, sha256: sha256(first), inline: first, contentType };
    }
    const generation = newGenerationId();
    const whole = createHash("sha256");
    const chunkHashes: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let size = 0;
    const uploadChunk = async (index: number, bytes: Buffer) => {
      await this.#put(
        this.layout.chunk(chunkKey(generation, index)),
        {
          value: bytes,
          contentType: "application/octet-stream",
          usermeta: [],
        },
        undefined,
        true,
      );
      chunkStored?.();
    };
    const send = async (bytes: Buffer) => {
      while (inFlight.size >= this.#uploadConcurrency) await Promise.race(inFlight);
      if (failure) throw failure;
      // Checked per chunk, not per read: with small chunks one read is thousands of puts.
      signal?.throwIfAborted();
      const index = chunkHashes.length;
      size += bytes.length;
      // The put goes out first and the hashing overlaps with Riak storing the chunk; the
      // manifest (written last) still waits for both.
      const promise = uploadChunk(index, bytes).then(
        () => {
          inFlight.delete(promise);
        },
        (error) => {
          failure ??= error;
          inFlight.delete(promise);
        },
      );
      inFlight.add(promise);
      whole.update(bytes);
      chunkHashes.push(sha256(bytes));
    };
    // The next piece is asked for before this one is sent: its read (a file's, on libuv's
    // threads) then overlaps this piece's hashing here.
    let next: Promise<IteratorResult<Buffer>> | undefined;
    try {
      await send(first);
      next = pieces.next();
      await send(secondPiece.value);
      for (let piece = await next; !piece.done; piece = await next) {
        next = pieces.next();
        await send(piece.value);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
    } catch (error) {
      await next?.catch(() => {});
      await pieces.return(undefined).catch(() => {}); // closes the source (a file handle)
      await Promise.all(inFlight);
      const partial: Manifest = {
        size,
        chunkSize,
        sha256: EMPTY_SHA256,
        generation,
        chunks: chunkHashes,
        contentType,
      };
      if (!signal?.aborted) {
        await this.#deleteChunks(partial).catch(() => {}); // best effort; gc finds the rest
      }
      throw uploadFailure(p, error);
    }
    const manifest: Manifest = {
      size,
      chunkSize,
      sha256: whole.digest("hex"),
      generation,
      chunks: chunkHashes,
      contentType,
    };
    return { size, sha256: manifest.sha256, manifest, contentType };
  }

  async #deleteChunks(manifest: Manifest): Promise<void> {
    const keys = manifest.chunks.map((_, i) => chunkKey(manifest.generation, i));
    await mapLimit(
      keys,
      this.#uploadConcurrency * 2,
      (key) => this.#delete(this.layout.chunk(key)),
    );
  }

  async #setRiakFuseSize(sizeSet: ObjectLocation, size: number): Promise<void> {
    const current = await this.#client.fetchSet(sizeSet).catch((error) => {
      throw new RiakRequestError("set fetch", describeLocation(sizeSet), error);
    });
    const wanted = Buffer.from(String(size));
    const stale = (current?.members ?? []).filter((m) => !Buffer.from(m).equals(wanted));
    await this.#client.updateSet(sizeSet, {
      add: [wanted],
      remove: stale.length > 0 ? stale : undefined,
      context: stale.length > 0 ? current?.context : undefined,
      w: this.#w,
      dw: this.#dw,
    }).catch((error) => {
      throw new RiakRequestError("set update", describeLocation(sizeSet), error);
    });
  }

  async #clearRiakFuseSize(sizeSet: ObjectLocation): Promise<void> {
    const current = await this.#client.fetchSet(sizeSet).catch((error) => {
      throw new RiakRequestError("set fetch", describeLocation(sizeSet), error);
    });
    if (!current || current.members.length === 0) return;
    await this.#client.updateSet(sizeSet, {
      remove: current.members,
      context: current.context,
      w: this.#w,
      dw: this.#dw,
    })
      .catch((error) => {
        throw new RiakRequestError("set update", describeLocation(sizeSet), error);
      });
  }

  async #removeFileObject(p: Buffer): Promise<void> {
    const placement = this.layout.file(p);
    const object = await this.#getResolved(placement.object, false, p);
    const left = object && await this.#deleteSeenVersion(placement.object, object, p);
    if (left) {
      // Written after the look: it stays, listed (its entry went first), its chunks with it.
      await this.#addEntries(placement.parent, [{ type: left.meta.type, name: placement.name }]);
      return;
    }
    if (object) await this.#releaseFileObject(p, object);
    else if (placement.riakFuseSizeSet) await this.#clearRiakFuseSize(placement.riakFuseSizeSet);
  }

  /** What a deleted file `object` at `p` held besides itself: riak-fuse's size, its chunks. */
  async #releaseFileObject(p: Buffer, object: ResolvedObject): Promise<void> {
    const { riakFuseSizeSet } = this.layout.file(p);
    if (riakFuseSizeSet) await this.#clearRiakFuseSize(riakFuseSizeSet);
    if (object.meta.storage !== "chunked") return;
    const manifest = this.#manifestOf(p, object);
    if (await this.#sharedWithRenamePartner(object, manifest)) return;
    await this.#deleteChunks(manifest);
  }

  /**
   * True when the other name of a rename `object` took part in (its target, or its source,
   * which a crash may have left) still uses `manifest`'s generation: its chunks are that
   * name's too and must stay (`riakfs gc` takes them once nothing refers to them).
   *
   * An object marked as renamed to another name always keeps them: a rename marks its source
   * before it writes the new name, so a new name not holding the generation (yet) may be a
   * rename's copy on its way (another host's rename in progress), which would be left
   * pointing at deleted chunks.
   */
  async #sharedWithRenamePartner(object: ResolvedObject, manifest: Manifest): Promise<boolean> {
    if (renameMarks(object.content.usermeta).some((mark) => mark.key === USERMETA.renamedTo)) {
      return true;
    }
    return (await this.#sharingPartners(object, manifest.generation, [], 1)).length > 0;
  }

  /**
   * Copies the object at file path `f` to `t` (a chunked file shares its generation).
   *
   * Every name sharing the generation is marked with the others it shares it with, so a
   * removal never takes chunks another name still uses: `f` is marked before `t` exists (a
   * crash may leave both), `t` names `f` and the partners `f` still shares with (left by
   * earlier interrupted renames), and those partners learn of `t` before it is written, as `f`
   * did. In a directory rename, `movedAlong` gives the new name of a partner moving with it
   * (copied at the same time), which `t` names too. The chunks of a file `t` replaces are
   * returned for deletion only when no partner of it still uses them.
   */
  async #copyFileObject(
    f: Buffer,
    t: Buffer,
    movedAlong?: (partner: Buffer) => Buffer | undefined,
  ): Promise<
    { replaced?: Manifest; type: EntryType; copied: ObjectMeta; generation?: string }
  > {
    let source: ResolvedObject | undefined;
    let generation: string | undefined;
    for (let attempt = 1;; attempt++) {
      source = await this.#getResolved(this.layout.file(f).object, false, f);
      if (!source) throw new NotFoundError(displayPath(f));
      if (source.meta.storage !== "chunked") break;
      const read = this.#manifestOf(f, source).generation;
      // Stamped before the mark below succeeds, i.e. while `f` still holds the generation:
      // what makes gc sound (see gc.ts).
      if (read !== generation) await this.#stampRename(read);
      generation = read;
      // Marked only if unchanged since read: the manifest copied is the one marked.
      if (await this.#addRenameMark(f, source, t, attempt >= MARK_ATTEMPTS)) break;
    }
    const partners = generation === undefined
      ? []
      : await this.#sharingPartners(source, generation, [f, t]);
    const named = [f, ...partners];
    for (const partner of [f, ...partners]) {
      const moved = movedAlong?.(partner);
      if (moved && !moved.equals(t)) named.push(moved);
    }
    // The partners learn of `t` before it exists, as `f` did: one a crash left unaware of it
    // would take the chunks `t` uses once `f` is gone.
    for (const partner of partners) await this.#markPartner(partner, generation!, t);
    const target = this.layout.file(t);
    const previous = await this.#getResolved(target.object, false, t);
    const shared = generation === undefined ? [] : withRenameMark([], USERMETA.renamedFrom, named);
    await this.#put(target.object, {
      value: source.content.value,
      contentType: source.content.contentType ?? "application/octet-stream",
      usermeta: [...encodeUsermeta(source.meta), ...shared],
    }, previous?.vclock);
    if (target.riakFuseSizeSet) {
      // A file's size only: a symlink has no size set (docs/layout.md), as its symlink() makes
      // none; one it replaces a file of goes.
      if (source.meta.type === "file") {
        await this.#setRiakFuseSize(target.riakFuseSizeSet, source.meta.size);
      } else await this.#clearRiakFuseSize(target.riakFuseSizeSet);
    }
    const replaced = previous?.meta.storage === "chunked"
      ? this.#manifestOf(t, previous)
      : undefined;
    const keep = replaced === undefined || replaced.generation === generation ||
      await this.#sharedWithRenamePartner(previous!, replaced);
    return {
      type: source.meta.type,
      replaced: keep ? undefined : replaced,
      copied: source.meta,
      generation,
    };
  }

  /**
   * Puts the rename stamp of `generation` again ({@link renameStampKey}): `riakfs gc` leaves a
   * generation whose stamp is younger than its minimum age alone.
   */
  async #stampRename(generation: string): Promise<void> {
    const location = this.layout.chunk(renameStampKey(generation));
    // Over the version there: a bucket type keeping siblings would pile up one per rename.
    const { vclock } = await this.#get(location, true);
    await this.#put(
      location,
      { value: new Uint8Array(), contentType: "text/plain", usermeta: [] },
      vclock,
      true,
    );
  }

  /** Adds `named` to the marks of `partner` while it still holds `generation`. */
  async #markPartner(partner: Buffer, generation: string, named: Buffer): Promise<void> {
    for (let attempt = 1;; attempt++) {
      const object = await this.#getResolved(this.layout.file(partner).object, false, partner);
      if (
        object?.meta.storage !== "chunked" ||
        this.#manifestOf(partner, object).generation !== generation
      ) return; // Removed or overwritten meanwhile: it no longer shares the chunks.
      if (await this.#addRenameMark(partner, object, named, attempt >= MARK_ATTEMPTS)) return;
    }
  }

  /**
   * Puts `object` (at file path `p`) back with `named` added to its `riakfs-renamed-to`
   * mark, only if nobody wrote it since it was read: else false (read it again), or the
   * KeyModifiedError on the `lastAttempt` (the rename stops; what it wrote is a duplicate).
   */
  async #addRenameMark(
    p: Buffer,
    object: ResolvedObject,
    named: Buffer,
    lastAttempt: boolean,
  ): Promise<boolean> {
    try {
      await this.#put(
        this.layout.file(p).object,
        {
          value: object.content.value,
          contentType: object.content.contentType ?? MANIFEST_CONTENT_TYPE,
          usermeta: [
            ...encodeUsermeta(object.meta),
            ...withRenameMark(object.content.usermeta, USERMETA.renamedTo, [named]),
          ],
        },
        object.vclock,
        false,
        true,
      );
      return true;
    } catch (error) {
      if (error instanceof KeyModifiedError && !lastAttempt) return false;
      throw error;
    }
  }

  /**
   * The names `object`'s rename marks point to that still hold `generation` (a crash left
   * them), other than `excluded`; at most `enough` of them.
   */
  async #sharingPartners(
    object: ResolvedObject,
    generation: string,
    excluded: Buffer[],
    enough = Infinity,
  ): Promise<Buffer[]> {
    const partners: Buffer[] = [];
    for (const partner of renamePartners(object.content.usermeta)) {
      if (partners.length >= enough) break;
      if (excluded.some((name) => name.equals(partner))) continue;
      const other = await this.#getResolved(this.layout.file(partner).object, false, partner);
      if (
        other?.meta.storage === "chunked" &&
        this.#manifestOf(partner, other).generation === generation
      ) partners.push(partner);
    }
    return partners;
  }

  /**
   * Deletes the object at file path `f` that a rename copied (`copied`: its attributes), without
   * touching chunks (they moved with it). A version written there since it was copied (by
   * another host) is left alone: false. The delete takes only the version looked at; on a type
   * that keeps siblings a write landing between that look and the delete stays (also false),
   * elsewhere it is lost: the look narrows that to one round trip. `seen` is told what the look
   * found.
   */
  async #deleteMovedObject(
    f: Buffer,
    copied: ObjectMeta,
    seen?: (now: ResolvedObject | undefined) => void,
  ): Promise<boolean> {
    const placement = this.layout.file(f);
    const now = await this.#getResolved(placement.object, true, f);
    seen?.(now);
    if (
      now !== undefined &&
      (now.meta.type !== copied.type || now.meta.sha256 !== copied.sha256 ||
        now.meta.mtimeNs !== copied.mtimeNs)
    ) return false;
    if (now !== undefined && await this.#deleteSeenVersion(placement.object, now, f)) return false;
    if (placement.riakFuseSizeSet) await this.#clearRiakFuseSize(placement.riakFuseSizeSet);
    return true;
  }

  /**
   * Deletes the version `seen` of the object at `location` (only that one, see {@link #delete};
   * nothing when the look found none) and looks once more: resolves what is stored there by
   * then, written after the look (another host's overwrite, or its chmod of that version, kept
   * as a sibling), else undefined.
   */
  async #deleteSeenVersion(
    location: ObjectLocation,
    seen: ResolvedObject | undefined,
    p: Buffer,
  ): Promise<ResolvedObject | undefined> {
    if (seen) await this.#delete(location, seen.vclock);
    return await this.#getResolved(location, true, p);
  }

  async #renameFile(f: Buffer, t: Buffer): Promise<void> {
    const copied = await this.#copyFileObject(f, t);
    const to = splitParent(t);
    const from = splitParent(f);
    await this.#addEntries(to.parent, [{ type: copied.type, name: to.name }]);
    await this.#index.remove(this.layout.directory(from.parent), [from.name]);
    if (!await this.#deleteMovedFile(f, t, copied)) {
      // Written since it was copied: that version stays under the old name, listed.
      await this.#addEntries(from.parent, [{ type: copied.type, name: from.name }]);
    }
    if (copied.replaced) await this.#deleteChunks(copied.replaced);
  }

  /**
   * Deletes the old object of a file a rename copied from `f` to `t` ({@link #deleteMovedObject};
   * false: written since, left), then marks `t` for renames of `f` other hosts ran at the same
   * time ({@link #markConcurrentRenames}).
   */
  async #deleteMovedFile(
    f: Buffer,
    t: Buffer,
    copied: { copied: ObjectMeta; generation?: string },
  ): Promise<boolean> {
    let source: ResolvedObject | undefined;
    if (!await this.#deleteMovedObject(f, copied.copied, (now) => source = now)) return false;
    if (copied.generation !== undefined) {
      await this.#markConcurrentRenames(f, t, copied.generation, source);
    }
    return true;
  }

  /**
   * Once a chunked file's rename to `t` deleted its old object `source` (undefined: it was gone
   * already), marks `t` renamed-to the names of renames of `f` that ran at the same time on
   * other hosts, so that removing or overwriting `t` keeps the chunks those share: the names
   * `source`'s marks give that do not hold the generation yet (their copy may be on its way),
   * or `f` when another host deleted `f` first (its rename's new name is unknown here).
   */
  async #markConcurrentRenames(
    f: Buffer,
    t: Buffer,
    generation: string,
    source: ResolvedObject | undefined,
  ): Promise<void> {
    const others = source === undefined ? [f] : [];
    if (source !== undefined) {
      const targets = renamePartners(
        renameMarks(source.content.usermeta).filter((mark) => mark.key === USERMETA.renamedTo),
      ).filter((name) => !name.equals(t));
      const holding = await this.#sharingPartners(source, generation, [f, t]);
      others.push(...targets.filter((name) => !holding.some((held) => held.equals(name))));
    }
    for (const other of others) await this.#markPartner(t, generation, other);
  }

  /**
   * `movedAlong` maps a path inside the directory being renamed (the top one, in a nested
   * call) to its new name (see {@link copyFileObject}).
   *
   * Another host may write into `f` meanwhile. Its entries are moved round after round until a
   * listing shows nothing new; then `f`'s entry in its parent and its object go, and a last
   * series of rounds moves what was added before that: a writer adding an entry after it
   * finds the object gone and makes `f` again ({@link #keepDirectory}), so no entry stays
   * in a directory nobody reaches. The old shards are emptied entry by entry, never deleted
   * (a delete would take an entry added meanwhile with it).
   */
  async #renameDirectory(
    f: Buffer,
    t: Buffer,
    movedAlong: (path: Buffer) => Buffer | undefined = (path) =>
      isSameOrBelow(path, f) ? Buffer.concat([t, path.subarray(f.length)]) : undefined,
  ): Promise<void> {
    const source = this.layout.directory(f);
    const target = this.layout.directory(t);
    const object = await this.#getResolved(source.object, false, f);
    const attributes = {
      value: new Uint8Array(),
      contentType: "text/plain",
      usermeta: encodeUsermeta(object?.meta ?? directoryMeta({})),
    };
    await this.#put(target.object, attributes);
    const to = splitParent(t);
    await this.#addEntries(to.parent, [{ type: "directory", name: to.name }]);
    this.#rememberDirectory(t);
    const replaced: Manifest[] = [];
    const moved = new Set<string>();
    await this.#moveEntries(f, t, movedAlong, moved, replaced);
    const from = splitParent(f);
    await this.#index.remove(this.layout.directory(from.parent), [from.name]);
    await this.#delete(source.object);
    this.#forgetDirectories(f);
    if (await this.#moveEntries(f, t, movedAlong, moved, replaced)) {
      // Still written to after every round: it stays, listed, with what is left in it.
      await this.#putIfAbsent(source.object, attributes);
      await this.#addEntries(from.parent, [{ type: "directory", name: from.name }]);
    }
    await mapLimit(replaced, TREE_PARALLELISM, (manifest) => this.#deleteChunks(manifest));
  }

  /**
   * One series of rounds of {@link #renameDirectory}: each lists `f`, copies what it has not
   * moved yet to `t`, then removes the old objects and entries (a file written again since its
   * copy is not removed, and is moved again in the next round). Resolves true when the last
   * round still found something to move.
   */
  async #moveEntries(
    f: Buffer,
    t: Buffer,
    movedAlong: (path: Buffer) => Buffer | undefined,
    moved: Set<string>,
    replaced: Manifest[],
  ): Promise<boolean> {
    const source = this.layout.directory(f);
    for (let round = 0; round < RENAME_LISTINGS; round++) {
      const listed = await collect(this.#index.list(source));
      // A name moved in an earlier round had its entry removed: listed again with something
      // stored under it, it was written again since (by another host) and moves again.
      const again = new Set<DirEntry>();
      await mapLimit(
        listed.filter((entry) => moved.has(entry.name.toString("latin1"))),
        TREE_PARALLELISM,
        async (entry) => {
          if (await this.#statOrUndefined(childPath(f, entry.name))) again.add(entry);
        },
      );
      const fresh = listed.filter((entry) =>
        again.has(entry) || !moved.has(entry.name.toString("latin1"))
      );
      if (fresh.length === 0) return false;
      for (const entry of fresh) moved.add(entry.name.toString("latin1"));
      const files = fresh.filter((entry) => entry.type !== "directory");
      const copies = new Map<DirEntry, { copied: ObjectMeta; generation?: string }>();
      // Entries whose object is gone: a rename cut short (a crash) deletes a moved file's old
      // object before its old entry, and resumed, finds the file under the new name already.
      // Removed as gc removes one: a file stored there meanwhile stays listed, and is moved.
      const objectless: Buffer[] = [];
      await mapLimit(files, TREE_PARALLELISM, async (entry) => {
        // Its old name goes: a put of it landing late would bring it back (see rename).
        await this.lateWritesSettled(childPath(f, entry.name));
        try {
          const copied = await this.#copyFileObject(
            childPath(f, entry.name),
            childPath(t, entry.name),
            movedAlong,
          );
          copies.set(entry, copied);
          if (copied.replaced) replaced.push(copied.replaced);
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
          objectless.push(entry.name);
        }
      });
      await mapLimit(objectless, TREE_PARALLELISM, async (name) => {
        if (!await this.removeOrphanEntry(childPath(f, name))) {
          moved.delete(name.toString("latin1"));
        }
      });
      await this.#addEntries(t, files.filter((entry) => copies.has(entry)));
      for (const entry of fresh.filter((e) => e.type === "directory")) {
        await this.#renameDirectory(
          childPath(f, entry.name),
          childPath(t, entry.name),
          movedAlong,
        );
      }
      // This round's files exist under the new name: now the old ones go.
      const gone: Buffer[] = [];
      await mapLimit(
        files.filter((entry) => copies.has(entry)),
        TREE_PARALLELISM,
        async (entry) => {
          const [from, to] = [childPath(f, entry.name), childPath(t, entry.name)];
          if (await this.#deleteMovedFile(from, to, copies.get(entry)!)) {
            gone.push(entry.name);
          } else moved.delete(entry.name.toString("latin1"));
        },
      );
      await this.#index.remove(source, gone);
    }
    return true;
  }

  /** Adds the entry of `placement`'s own name, of `type`, to its parent ({@link #addEntries}). */
  #addOwnEntry(
    placement: { parent: Buffer; name: Buffer },
    type: EntryType,
    attributesOf: WriteOptions["parentAttributes"],
    absent = false,
  ): Promise<void> {
    return this.#addEntries(
      placement.parent,
      [{ type, name: placement.name }],
      absent ? { absent } : {},
      attributesOf,
    );
  }

  /**
   * Adds entries to the directory `parent`, and when that wrote one, makes sure `parent` is
   * still there ({@link #keepDirectory}): another host may have removed or renamed it since it
   * was looked at, and an entry must not stay in a directory nobody reaches.
   */
  async #addEntries(
    parent: Buffer,
    entries: DirEntry[],
    options: { absent?: boolean } = {},
    attributesOf?: WriteOptions["parentAttributes"],
  ): Promise<void> {
    const directory = this.layout.directory(parent);
    if (!await this.#index.add(directory, entries, options)) return;
    // Riak-fuse's listing sets are never emptied nor deleted: nothing to look for.
    if (directory.entries.kind === "riak-fuse") return;
    await this.#keepDirectory(parent, attributesOf);
  }

  /**
   * `p`'s directory object as a get sent from now on finds it. Callers that come before the
   * get is sent share it (every file of one batched set update asks at once), as it is sent
   * after each of their entries was added, which is all {@link #keepDirectory} needs; a
   * get already sent may have read the object before this caller's entry was there.
   */
  #directoryObjectFromNow(p: Buffer): Promise<ResolvedObject | undefined> {
    const key = p.toString("latin1");
    let check = this.#unsentDirectoryChecks.get(key);
    if (check === undefined) {
      check = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#unsentDirectoryChecks.delete(key);
        return this.#getResolved(this.layout.directory(p).object, true, p);
      });
      this.#unsentDirectoryChecks.set(key, check);
    }
    return check;
  }

  /**
   * Called after an entry was added below `p`: when `p`'s object is gone and its parent does
   * not list it, another host removed (or renamed away) the directory before it could see
   * the entry (#removeDirectoryLast deletes the object last, then looks for entries), so it
   * is made again, as a write makes missing parents.
   */
  async #keepDirectory(
    p: Buffer,
    attributesOf?: WriteOptions["parentAttributes"],
  ): Promise<void> {
    if (p.length === 0) return;
    const dir = this.layout.directory(p);
    if (await this.#directoryObjectFromNow(p)) return;
    const { parent, name } = splitParent(p);
    // No object of its own, but listed: one other tools made (a riak-fuse folder).
    if ((await this.#index.lookup(this.layout.directory(parent), name))?.type === "directory") {
      return;
    }
    this.#knownDirectories.delete(p.toString("latin1"));
    await this.#putIfAbsent(dir.object, {
      value: new Uint8Array(),
      contentType: "text/plain",
      usermeta: encodeUsermeta(directoryMeta((await attributesOf?.(p)) ?? {})),
    });
    await this.#addEntries(parent, [{ type: "directory", name }], {}, attributesOf);
  }

  /** Adds the entry of directory `p` to its parent's listing where it is not there. */
  async #listDirectory(p: Buffer): Promise<void> {
    const { parent, name } = splitParent(p);
    if ((await this.#index.lookup(this.layout.directory(parent), name))?.type === "directory") {
      return;
    }
    await this.#addEntries(parent, [{ type: "directory", name }]);
  }

  /**
   * Throws unless `p` is an existing directory; like {@link #ensureDirectory}, gives one its
   * parent's listing lacks its entry.
   */
  async #requireDirectory(p: Buffer): Promise<void> {
    await this.#ensureDirectory(p, undefined, { create: false });
  }

  /** Creates `p` and its missing ancestors (mkdir -p); `create: false`: throws instead. */
  async #ensureDirectory(
    p: Buffer,
    attributesOf?: WriteOptions["parentAttributes"],
    { create = true }: { create?: boolean } = {},
  ): Promise<void> {
    if (p.length === 0 || this.#isKnownDirectory(p)) return;
    const { parent, name } = splitParent(p);
    // Its entry is looked for at once: a directory made by other tools (riak-fuse's IMGDIR_
    // set), or one whose making was cut off between its object and its entry (a crash, an
    // outage), has none, and nothing else would add it for the tree (ls /, gc's walk) to
    // reach what is written or made below it.
    const [stat, entry] = await Promise.all([
      this.#statOrUndefined(p),
      this.#index.lookup(this.layout.directory(parent), name),
    ]);
    if (stat) {
      if (stat.type !== "directory") throw new WrongTypeError("ENOTDIR", displayPath(p));
      if (entry?.type !== "directory" && !this.#readOnly) {
        await this.#ensureDirectory(parent, attributesOf);
        await this.#addEntries(parent, [{ type: "directory", name }], {}, attributesOf);
      }
      this.#rememberDirectory(p);
      return;
    }
    if (!create) throw new NotFoundError(displayPath(p));
    await this.#ensureDirectory(parent, attributesOf);
    const attributes = (await attributesOf?.(p)) ?? {};
    // Only if nobody made it meanwhile: a blind put beside a mkdir of it would make siblings,
    // and these default attributes, newer, would win over the ones asked for.
    await this.#putIfAbsent(this.layout.directory(p).object, {
      value: new Uint8Array(),
      contentType: "text/plain",
      usermeta: encodeUsermeta(directoryMeta(attributes)),
    });
    await this.#addEntries(parent, [{ type: "directory", name }], {}, attributesOf);
    this.#rememberDirectory(p);
  }

  /**
   * What a mkdir or symlink does when Riak failed it between its object and its entry: with
   * `undo`, the object is deleted (Riak permitting), so the failure leaves nothing a look-up
   * finds and no listing names; and a directory is no longer taken as known, so a write, a
   * mkdir below it or a mkdir of it that finds it lists it.
   */
  async #leftUnlisted(p: Buffer, location: ObjectLocation, undo: boolean): Promise<void> {
    this.#knownDirectories.delete(p.toString("latin1"));
    if (undo) await this.#delete(location).catch(() => {});
  }

  #rememberDirectory(p: Buffer): void {
    // A bound, not an LRU: forgetting only costs one head-only get on the next write.
    if (this.#knownDirectories.size >= KNOWN_DIRECTORIES_LIMIT) this.#knownDirectories.clear();
    this.#knownDirectories.set(p.toString("latin1"), this.#now() + KNOWN_DIRECTORY_MS);
  }

  #isKnownDirectory(p: Buffer): boolean {
    const key = p.toString("latin1");
    const until = this.#knownDirectories.get(key);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#knownDirectories.delete(key);
    return false;
  }

  #forgetDirectories(p: Buffer): void {
    for (const known of [...this.#knownDirectories.keys()]) {
      if (isSameOrBelow(Buffer.from(known, "latin1"), p)) this.#knownDirectories.delete(known);
    }
  }

  /** Gets an object, resolving siblings deterministically and writing the winner back. */
  async #getResolved(
    location: ObjectLocation,
    head: boolean,
    p: Buffer,
  ): Promise<ResolvedObject | undefined> {
    let fetched = await this.#get(location, head);
    if (fetched.contents.length > 1 && head) fetched = await this.#get(location, false);
    if (fetched.contents.length === 0) return undefined;
    let needsValueForMeta = false;
    const candidates = fetched.contents.map((content) => {
      const decoded = this.#decodeMeta(content, p, location);
      if (!decoded.managed && head) needsValueForMeta = true;
      return {
        mtimeNs: decoded.meta.mtimeNs,
        sha256: decoded.meta.sha256,
        value: content.value,
        usermeta: content.usermeta,
        contentType: content.contentType,
        item: { content, ...decoded },
      };
    });
    if (needsValueForMeta) return await this.#getResolved(location, false, p);
    const winner = chooseSibling(candidates);
    if (fetched.contents.length > 1 && !this.#readOnly) {
      // Every sibling's rename marks stay: a loser's may be the only one naming a name that
      // shares the winner's chunks (a rename marked a version another host changed meanwhile).
      const usermeta = [
        ...winner.content.usermeta.filter((pair) => renameMarks([pair]).length === 0),
        ...mergedRenameMarks(fetched.contents.map((content) => content.usermeta)),
      ];
      await this.#put(location, {
        value: winner.content.value,
        contentType: winner.content.contentType ?? "application/octet-stream",
        usermeta,
      }, fetched.vclock);
      const written = await this.#get(location, head);
      return { ...winner, content: { ...winner.content, usermeta }, vclock: written.vclock };
    }
    return { ...winner, vclock: fetched.vclock };
  }

  #decodeMeta(
    content: StoredContent,
    p: Buffer,
    location: ObjectLocation,
  ): { meta: ObjectMeta; managed: boolean } {
    let meta: ObjectMeta | undefined;
    try {
      meta = decodeUsermeta(content.usermeta);
    } catch (error) {
      if (!(error instanceof UsermetaFormatError)) throw error;
      throw new CorruptObjectError(displayPath(p), describeLocation(location), error.message);
    }
    if (meta) return { meta, managed: true };
    // Not written by riakfs (riak-fuse or foreign): a plain file holding the value.
    return {
      managed: false,
      meta: {
        layout: 0,
        type: "file",
        storage: "inline",
        size: content.value.length,
        sha256: sha256(content.value),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtimeNs: content.lastModifiedNs ?? 0n,
      },
    };
  }

  async #get(location: ObjectLocation, head: boolean): Promise<FetchedObject> {
    try {
      return await this.#client.get(location, { head, ...this.#readOptions });
    } catch (error) {
      throw new RiakRequestError(head ? "head" : "get", describeLocation(location), error);
    }
  }

  /**
   * Before a manifest goes into a content bucket besides the namespace's own (a riak-fuse
   * folder's), names that bucket in {@link Layout.manifestBuckets}: else `riakfs gc`, run
   * with another layout or other riak-fuse prefixes, took its chunks for garbage.
   */
  async #registerManifestBucket(location: ObjectLocation, content: ContentToStore): Promise<void> {
    const bucket = Buffer.from(location.bucket);
    const name = bucket.toString("latin1");
    if (
      this.#manifestBucketsNamed.has(name) || bucket.equals(Buffer.from(this.namespace.bucket)) ||
      !content.usermeta.some((pair) => pair.key === USERMETA.storage && pair.value === "chunked")
    ) return;
    const registry = this.layout.manifestBuckets();
    await this.#client.updateSet(registry, { add: [bucket], w: this.#w, dw: this.#dw })
      .catch((error) => {
        throw new RiakRequestError("set update", describeLocation(registry), error);
      });
    this.#manifestBucketsNamed.add(name);
  }

  async #put(
    location: ObjectLocation,
    content: ContentToStore,
    vclock?: Uint8Array,
    idempotent = false,
    ifNotModified = false,
  ): Promise<void> {
    await this.#registerManifestBucket(location, content);
    try {
      await this.#client.put(location, content, {
        vclock,
        w: this.#w,
        dw: this.#dw,
        idempotent,
        ifNotModified: ifNotModified && vclock !== undefined,
      });
    } catch (error) {
      if (error instanceof KeyModifiedError) throw error;
      throw new RiakRequestError("put", describeLocation(location), error);
    }
  }

  /** Puts with `if_none_match`: false (nothing stored) when the key already holds an object. */
  async #putIfAbsent(location: ObjectLocation, content: ContentToStore): Promise<boolean> {
    await this.#registerManifestBucket(location, content);
    try {
      await this.#client.put(location, content, { w: this.#w, dw: this.#dw, ifNoneMatch: true });
      return true;
    } catch (error) {
      if (error instanceof KeyExistsError) return false;
      throw new RiakRequestError("put", describeLocation(location), error);
    }
  }

  /**
   * Deletes the object at `location`; with `vclock`, the one of the version last looked at,
   * only that version. RpbDelReq carries the vclock of an earlier get (shared riak-facts.md,
   * "Del: vclock"; ../shared/riak-golden/02-kv-basics delete-with-vclock, 03-siblings-kvmulti
   * delete-siblings); on a type that keeps siblings a write that vclock does not cover stays,
   * as it stays beside a put with a stale vclock (03-siblings-kvmulti put-stale-c; no golden
   * step deletes with a stale vclock: Riak's PB docs give the vclock to keep a delete from
   * taking what changed since the get, and the embedded server's `deleteObject` keeps it). So
   * another host's overwrite landing after the look is not lost there. On a type without
   * siblings the delete takes it all the same: the window stays (docs/layout.md, "Several
   * hosts").
   */
  async #delete(location: ObjectLocation, vclock?: Uint8Array): Promise<void> {
    try {
      await this.#client.delete(location, { vclock, w: this.#w, dw: this.#dw });
    } catch (error) {
      throw new RiakRequestError("delete", describeLocation(location), error);
    }
  }
}

function directoryMeta(options: Partial<FileAttributes>): ObjectMeta {
  return {
    layout: LAYOUT_VERSION,
    type: "directory",
    storage: "inline",
    size: 0,
    sha256: EMPTY_SHA256,
    mode: options.mode ?? 0o755,
    uid: options.uid ?? 0,
    gid: options.gid ?? 0,
    mtimeNs: options.mtimeNs ?? nowNs(),
  };
}

/** Usermeta of a written file: the given attributes, else the replaced version's, else defaults. */
function fileMeta(
  uploaded: UploadedContent,
  options: WriteOptions,
  replaced?: ObjectMeta,
): ObjectMeta {
  const given = replaced && options.keepFoundAttributes ? {} : options;
  return {
    layout: LAYOUT_VERSION,
    type: "file",
    storage: uploaded.manifest ? "chunked" : "inline",
    size: uploaded.size,
    sha256: uploaded.sha256,
    mode: given.mode ?? replaced?.mode ?? 0o644,
    uid: given.uid ?? replaced?.uid ?? 0,
    gid: given.gid ?? replaced?.gid ?? 0,
    mtimeNs: options.mtimeNs ?? nowNs(),
    // A write moves the mtime, not the access time set before.
    ...definedOnly({ atimeNs: options.atimeNs ?? replaced?.atimeNs }),
  };
}

/** The object at a file's path key: its bytes, or the manifest of its chunks. */
function fileContent(uploaded: UploadedContent, meta: ObjectMeta): ContentToStore {
  return {
    value: uploaded.manifest ? encodeManifest(uploaded.manifest) : uploaded.inline!,
    contentType: uploaded.manifest ? MANIFEST_CONTENT_TYPE : uploaded.contentType,
    usermeta: encodeUsermeta(meta),
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A Buffer over the same memory (Buffer.from(Uint8Array) would copy). */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function sha256(bytes: Uint8Array): string {
  // The one-shot form: no Hash object per chunk and per small file.
  return hash("sha256", bytes, "hex");
}

async function hashStream(
  stream: AsyncIterable<Uint8Array | string>,
): Promise<{ size: number; sha256: string }> {
  const hasher = createHash("sha256");
  let size = 0;
  for await (const part of stream) {
    const bytes = typeof part === "string" ? Buffer.from(part) : part;
    hasher.update(bytes);
    size += bytes.length;
  }
  return { size, sha256: hasher.digest("hex") };
}

async function* sourceBytes(source: WriteSource, chunkSize: number): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
  } else if ("file" in source && typeof source.file === "string") {
    yield* createReadStream(source.file, { highWaterMark: chunkSize }) as AsyncIterable<Buffer>;
  } else {
    yield* source as AsyncIterable<Uint8Array>;
  }
}

/** Regroups a byte stream into pieces of exactly `size` bytes (the last may be shorter). */
async function* rechunk(input: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const data of input) {
    let bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    while (bytes.length > 0) {
      const take = Math.min(size - held, bytes.length);
      if (held === 0 && take === size) {
        // A whole piece as it came: no copy (the caller must not reuse yielded buffers).
        yield bytes.subarray(0, take);
        bytes = bytes.subarray(take);
        continue;
      }
      parts.push(bytes.subarray(0, take)); // a view: yielded buffers are never reused
      held += take;
      bytes = bytes.subarray(take);
      if (held === size) {
        yield parts.length === 1 ? parts[0] : Buffer.concat(parts);
        parts = [];
        held = 0;
      }
    }
  }
  if (parts.length > 0) yield parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure. */
async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

/** Listings of a directory being renamed, each moving what the ones before did not show. */
const RENAME_LISTINGS = 5;

/** Reads and conditional puts of a setAttributes that keeps losing to concurrent writes. */
const SET_ATTRIBUTES_ATTEMPTS = 5;
/** Conditional puts of a rename mark before one is put over whatever is there. */
const MARK_ATTEMPTS = 5;

/** A failed upload of `p` as a typed error (a store error as it is; a source's error wrapped). */
function uploadFailure(p: Buffer, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError("EIO", `${displayPath(p)}: upload failed: ${(error as Error).message}`, {
    path: displayPath(p),
    cause: error,
  });
}

/**
 * Whether directory `target` is one {@link Store.rename} of directory `source` made: it copies
 * the source's attributes, mtime to the nanosecond included, which nothing else gives a
 * directory of another name (a directory without an object of its own has none to copy).
 */
function madeByRenameOf(target: FileStat, source: FileStat): boolean {
  return target.type === "directory" && source.managed && target.managed &&
    target.mode === source.mode && target.uid === source.uid && target.gid === source.gid &&
    target.mtimeNs === source.mtimeNs;
}
