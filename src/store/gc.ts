/**
 * Garbage collection of chunks: chunks of generations no manifest references (uploads that
 * failed or crashed, overwrites whose cleanup was interrupted, losing siblings).
 *
 * Finding them needs every manifest: those of every key in the content bucket (listed in a
 * directory or not: a crash between a file's object and its entry leaves one unlisted), of
 * every key in the buckets riak-fuse folders' chunked files were written to (named in a set
 * of the namespace), and those a walk of the directory tree from the root finds. And every
 * chunk key: list-keys on the chunk bucket. These scans are cluster-wide: an administrative
 * job, never part of a mount. A generation whose newest key in the chunk bucket is younger
 * than `minAgeMs` is left alone: its upload may still be running and its manifest not yet
 * written, or a rename moved it lately (below); a listed chunk key Riak no longer holds
 * (real Riak lists deleted keys for a while) is not garbage.
 *
 * Renames by other hosts during the run: the scans are not a snapshot, and a file moved from
 * a key the content scan has not read yet to one it has already passed, then from a directory
 * the walk has not listed yet into one it has, is seen by neither (one rename alone is seen
 * by the walk: a rename writes the new name and its entry before it deletes the old name);
 * nor is one whose only manifest is in a rename's memory while the old name is removed.
 * Hence the rename stamp: every copy of a chunked file to a new name (a rename, each file
 * of a directory rename) puts `<generation>.renamed` in the chunk bucket, counted with the
 * generation's chunks, before it marks the old name, so while the old name still holds the
 * generation. Sound, given that no single copy runs longer than `minAgeMs` (as for uploads):
 * if a manifest still references a generation the scans missed, follow the names holding it
 * back to the last one written before the run began. That one held it until before the scans
 * read its key (else they found it), and the copy that read it next stamped the generation
 * before then, so before the chunk bucket is listed, and less than `minAgeMs` before that
 * copy wrote its new name, which was after the run began: the stamp is younger than
 * `minAgeMs` at the start of the run, and the generation is left alone.
 *
 * The walk also finds orphan entries: names a directory lists with nothing stored behind them
 * (stat and rm answer not found, so besides gc only a mount removing a directory listing
 * nothing else removes them). Objects are written before their entries and entries removed
 * before their objects, so an orphan is left by an entry's add that Riak applied after its
 * name was removed (it timed out, and the process that could have waited for it died), or by a
 * crash in a directory rename (which deletes a moved file's old object before its old entry).
 * Only a directory rename in progress shows one briefly; removing such an entry takes away
 * what the rename is about to remove. A riak-fuse folder and its images folder have no object
 * of their own: they are never reported (their stat finds their sets, or they hold no entries
 * to reach).
 *
 * gc writes nothing but the deletions of `delete`: it reads through {@link Store.readOnly},
 * so siblings it meets stay unresolved and every sibling's manifest counts. A losing
 * sibling's generation is garbage once a reader's resolution has dropped its manifest, and a
 * dry run reports what `delete` would delete.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { DEFAULT_GC_MIN_AGE_MS } from "./defaults.ts";
import { NotFoundError, WrongTypeError } from "./errors.ts";
import { parseChunkKey, parseRenameStampKey } from "./manifest.ts";
import { childPath, displayBytes } from "./path.ts";
import type { Store } from "./store.ts";
import type { EntryType } from "./usermeta.ts";

/** Options of {@link collectGarbage}. */
export interface GcOptions {
  /** Delete what was found; default false (dry run). */
  delete?: boolean;
  /** Generations whose newest chunk is younger than this are skipped; default one hour. */
  minAgeMs?: number;
  /** The current time in ms (tests pass a fixed one); default `Date.now()`. */
  nowMs?: number;
}

/** One unreferenced generation. */
export interface GarbageGeneration {
  generation: string;
  /** Its chunk keys present in the chunk bucket. */
  keys: string[];
  /** The key of its rename stamp, when present (deleted with the chunks). */
  renameStamp?: string;
}

/** A directory entry with nothing stored at its path. */
export interface OrphanEntry {
  /** Its path below the root, as `riakfs ls` prints names. */
  path: string;
  /** The type its entry names. */
  type: EntryType;
}

/** What {@link collectGarbage} found and did. */
export interface GcReport {
  /** Objects holding a manifest: at keys of the content and manifest buckets, or found by the walk. */
  manifests: number;
  /** Chunk keys in the chunk bucket (rename stamps are none). */
  chunks: number;
  /** Unreferenced generations old enough to collect. */
  garbage: GarbageGeneration[];
  /** Unreferenced generations skipped because they are younger than `minAgeMs`. */
  recent: string[];
  /** Keys in the chunk bucket that are not chunk keys (left alone). */
  foreignKeys: number;
  /** Chunks deleted (0 in a dry run). */
  deleted: number;
  /** Entries the walk found with nothing stored at their path. */
  orphanEntries: OrphanEntry[];
  /** Orphan entries removed (0 in a dry run; one listed again meanwhile stays). */
  deletedEntries: number;
}

/**
 * Finds (and with `delete`, removes) chunks that no manifest reachable from the root references,
 * and the orphan entries a walk from the root meets.
 *
 * @example
 * ```ts
 * const report = await collectGarbage(store, { delete: false });
 * console.log(report.garbage.length, "unreferenced generations");
 * ```
 */
export async function collectGarbage(
  storeGiven: Store,
  options: GcOptions = {},
): Promise<GcReport> {
  // Absent here means garbage: a not-found answer of replicas that do not hold the object
  // (fallbacks while nodes are down) must not stand for one that holds it.
  const store = storeGiven.withAuthoritativeReads();
  const minAgeMs = options.minAgeMs ?? DEFAULT_GC_MIN_AGE_MS;
  const nowMs = options.nowMs ?? Date.now();
  // Only the deletions below write: siblings met are left as they are (a dry run must change
  // nothing, and --delete then deletes what it reported), and each one's manifest counts.
  const reader = store.readOnly();
  const referenced = new Set<string>();
  /** Chunked files found, by bucket and key of their object: the scans overlap. */
  const chunked = new Set<string>();
  const objectId = (bucket: string, key: string) => `${bucket}\0${key}`;
  /**
   * Notes the generations of the object at `key` of content bucket `bucket`; false when no
   * object is there.
   */
  const scan = async (bucket: string, key: string): Promise<boolean> => {
    const generations = await reader.generationsAt(bucket, key);
    if (generations === undefined) return false;
    if (generations.length > 0) chunked.add(objectId(bucket, key));
    for (const generation of generations) referenced.add(generation);
    return true;
  };
  /** Notes the generations of the object at `path`, as a scan does; false when none is there. */
  const look = async (path: Buffer): Promise<boolean> => {
    const { bucket, key } = store.layout.file(path).object;
    const [bucketName, keyName] = [Buffer.from(bucket).toString("latin1"), key.toString("latin1")];
    return chunked.has(objectId(bucketName, keyName)) || await scan(bucketName, keyName);
  };
  // Read at their keys, not through the layout: under the riak-fuse preset a key of the
  // pattern <folder>/images/<file> holds a file the default layout wrote, which no path
  // reaches.
  for await (const key of reader.contentKeys()) {
    if (!key.endsWith("/")) await scan(Buffer.from(store.namespace.bucket).toString("latin1"), key);
  }
  const orphans: Array<{ path: Buffer; type: EntryType }> = [];
  /** Walks `directory`; false when no directory is there (its listing is refused). */
  const walk = async (directory: Buffer): Promise<boolean> => {
    let listed = false;
    try {
      for await (const entry of reader.list(directory)) {
        listed = true;
        const path = childPath(directory, entry.name);
        const found = entry.type === "directory"
          ? await walk(path) || riakFuseFolder(store, path)
          : await look(path);
        // A name may change type: an entry of the old one is no orphan while the new is there.
        const stored = found ? undefined : await reader.tryStat(path);
        if (!found && stored === undefined) orphans.push({ path, type: entry.type });
        // A directory listed as a file (one an earlier build made in a riak-fuse folder, whose
        // type it did not keep): walked all the same.
        if (stored?.type === "directory" && entry.type !== "directory") await walk(path);
      }
    } catch (error) {
      const notThere = error instanceof NotFoundError || error instanceof WrongTypeError;
      if (listed || !notThere) throw error;
      return false;
    }
    return true;
  };
  await walk(Buffer.alloc(0));
  // Manifests riak-fuse folders' buckets hold, found whatever layout and prefixes gc runs
  // with: the walk reaches them only with the ones they were written with.
  for (const bucket of await reader.manifestBuckets()) {
    for await (const key of reader.contentKeys(bucket)) await scan(bucket, key);
  }
  const manifests = chunked.size;
  const byGeneration = new Map<string, string[]>();
  let chunks = 0;
  let foreignKeys = 0;
  for await (const key of reader.chunkKeys()) {
    const chunk = parseChunkKey(key);
    const generation = chunk?.generation ?? parseRenameStampKey(key);
    if (generation === undefined) {
      foreignKeys++;
      continue;
    }
    if (chunk) chunks++;
    if (referenced.has(generation)) continue;
    const keys = byGeneration.get(generation) ?? [];
    keys.push(key);
    byGeneration.set(generation, keys);
  }
  /** A chunk's index; a rename stamp goes after the chunks. */
  const order = (key: string) => parseChunkKey(key)?.index ?? Infinity;
  const garbage: GarbageGeneration[] = [];
  const recent: string[] = [];
  for (const [generation, keys] of [...byGeneration].sort(([a], [b]) => a < b ? -1 : 1)) {
    keys.sort((a, b) => order(a) - order(b));
    let newestMs = -Infinity;
    const held: string[] = [];
    for (const key of keys) {
      const modified = await reader.chunkLastModifiedNs(key);
      if (modified === undefined) continue; // Deleted already (a tombstone still listed).
      held.push(key);
      newestMs = Math.max(newestMs, Number(modified / 1_000_000n));
    }
    if (held.length === 0) continue;
    if (nowMs - newestMs < minAgeMs) recent.push(generation);
    else {
      const renameStamp = held.find((key) => parseChunkKey(key) === undefined);
      const chunkKeys = held.filter((key) => key !== renameStamp);
      garbage.push({ generation, keys: chunkKeys, ...renameStamp ? { renameStamp } : {} });
    }
  }
  let deleted = 0;
  if (options.delete) {
    for (const generation of garbage) {
      for (const key of generation.keys) {
        await store.deleteChunk(key);
        deleted++;
      }
      // No chunk: not counted.
      if (generation.renameStamp) await store.deleteChunk(generation.renameStamp);
    }
  }
  let deletedEntries = 0;
  if (options.delete) {
    for (const orphan of orphans) {
      if (await store.removeOrphanEntry(orphan.path)) deletedEntries++;
    }
  }
  return {
    manifests,
    chunks,
    garbage,
    recent,
    foreignKeys,
    deleted,
    orphanEntries: orphans.map(({ path, type }) => ({ path: displayBytes(path), type })),
    deletedEntries,
  };
}

/**
 * True for a riak-fuse folder or its images folder: directories with no object of their own
 * by design, which stay listed once their files are gone.
 */
function riakFuseFolder(store: Store, path: Buffer): boolean {
  return store.layout.riakFuseImagesOf(path) !== undefined ||
    store.layout.directory(path).entries.kind === "riak-fuse";
}
