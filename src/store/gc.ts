/**
 * Garbage collection of chunks: chunks of generations no manifest references (uploads that
 * failed or crashed, overwrites whose cleanup was interrupted, losing siblings).
 *
 * Finding them needs every manifest: those of every key in the content bucket (listed in a
 * directory or not: a crash between a file's object and its entry leaves one unlisted), of
 * every key in the buckets riak-fuse folders' chunked files were written to (named in a set
 * of the namespace), and those a walk of the directory tree from the root finds. And every
 * chunk key: list-keys on the chunk bucket. These scans are cluster-wide: an administrative
 * job, never part of a mount. A generation younger than `minAgeMs` is left alone, since its upload may still be running and its manifest not yet
 * written; a listed chunk key Riak no longer holds (real Riak lists deleted keys for a
 * while) is not garbage.
 *
 * @module
 */
import { DEFAULT_GC_MIN_AGE_MS } from "./defaults.ts";
import { parseChunkKey } from "./manifest.ts";
import type { Store } from "./store.ts";

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
}

/** What {@link collectGarbage} found and did. */
export interface GcReport {
  /** Files with a manifest found by the walk. */
  manifests: number;
  /** Chunk keys in the chunk bucket. */
  chunks: number;
  /** Unreferenced generations old enough to collect. */
  garbage: GarbageGeneration[];
  /** Unreferenced generations skipped because they are younger than `minAgeMs`. */
  recent: string[];
  /** Keys in the chunk bucket that are not chunk keys (left alone). */
  foreignKeys: number;
  /** Chunks deleted (0 in a dry run). */
  deleted: number;
}

/**
 * Finds (and with `delete`, removes) chunks that no manifest reachable from the root references.
 *
 * @example
 * ```ts
 * const report = await collectGarbage(store, { delete: false });
 * console.log(report.garbage.length, "unreferenced generations");
 * ```
 */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const minAgeMs = options.minAgeMs ?? DEFAULT_GC_MIN_AGE_MS;
  const nowMs = options.nowMs ?? Date.now();
  const referenced = new Set<string>();
  /** Chunked files found, by path: the two scans overlap. */
  const chunked = new Set<string>();
  const look = async (path: Buffer) => {
    const at = path.toString("latin1");
    if (chunked.has(at)) return;
    const stat = await store.tryStat(path, { fileOnly: true });
    if (stat?.type !== "file" || stat.storage !== "chunked") return;
    const manifest = await store.manifest(path);
    if (!manifest) return;
    referenced.add(manifest.generation);
    chunked.add(at);
  };
  for await (const key of store.contentKeys()) {
    if (!key.endsWith("/")) await look(Buffer.from(key, "latin1"));
  }
  for await (const entry of store.walk("")) {
    if (entry.type === "file") await look(entry.path);
  }
  // Manifests riak-fuse folders' buckets hold, found whatever layout and prefixes gc runs
  // with: the walk reaches them only with the ones they were written with.
  let elsewhere = 0;
  for (const bucket of await store.manifestBuckets()) {
    for await (const key of store.contentKeys(bucket)) {
      const generations = await store.generationsAt(bucket, key);
      // The walk found it too when gc runs with the layout it was written with.
      if (generations.some((generation) => !referenced.has(generation))) elsewhere++;
      for (const generation of generations) referenced.add(generation);
    }
  }
  const manifests = chunked.size + elsewhere;
  const byGeneration = new Map<string, string[]>();
  let chunks = 0;
  let foreignKeys = 0;
  for await (const key of store.chunkKeys()) {
    const parsed = parseChunkKey(key);
    if (!parsed) {
      foreignKeys++;
      continue;
    }
    chunks++;
    if (referenced.has(parsed.generation)) continue;
    const keys = byGeneration.get(parsed.generation) ?? [];
    keys.push(key);
    byGeneration.set(parsed.generation, keys);
  }
  const garbage: GarbageGeneration[] = [];
  const recent: string[] = [];
  for (const [generation, keys] of [...byGeneration].sort(([a], [b]) => a < b ? -1 : 1)) {
    keys.sort((a, b) => parseChunkKey(a)!.index - parseChunkKey(b)!.index);
    let newestMs = -Infinity;
    const held: string[] = [];
    for (const key of keys) {
      const modified = await store.chunkLastModifiedNs(key);
      if (modified === undefined) continue; // Deleted already (a tombstone still listed).
      held.push(key);
      newestMs = Math.max(newestMs, Number(modified / 1_000_000n));
    }
    if (held.length === 0) continue;
    if (nowMs - newestMs < minAgeMs) recent.push(generation);
    else garbage.push({ generation, keys: held });
  }
  let deleted = 0;
  if (options.delete) {
    for (const generation of garbage) {
      for (const key of generation.keys) {
        await store.deleteChunk(key);
        deleted++;
      }
    }
  }
  return { manifests, chunks, garbage, recent, foreignKeys, deleted };
}
