/**
 * Directory entries in Riak sets: the sharded index of the default layout (see shards.ts)
 * and riak-fuse's flat `directory` set, behind one interface.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { FetchedSet, StoreClient, WriteQuorum } from "./client.ts";
import { RiakRequestError } from "./errors.ts";
import { describeLocation, type DirectoryPlacement, type ObjectLocation } from "./layout.ts";
import {
  decodeMember,
  DEFAULT_SHARD_BYTES,
  encodeEntryMember,
  encodeMarkerMember,
  ENTRY_MEMBER_OVERHEAD,
  levelsFromMarkers,
  nextLevel,
  type ShardEntry,
  shardIndex,
  shardKey,
} from "./shards.ts";

/**
 * How long this process trusts its own picture of a directory's levels and shard sizes.
 * Another host's changes within that time may push a shard slightly past capacity (lookups
 * still find everything); it never loses an entry.
 */
const SHARD_STATE_TTL_MS = 2_000;

/** Shards fetched at once while listing. */
const LIST_PARALLELISM = 8;

/** Bounds of the sharded index, and the write quorums of its set updates. */
export interface ShardSettings {
  /** Entries a shard holds at most. */
  capacity: number;
  /** Bytes of members a shard holds at most; default {@link DEFAULT_SHARD_BYTES}. */
  maxBytes?: number;
  fanout: number;
  w?: WriteQuorum;
  dw?: WriteQuorum;
}

/** Reads and changes the entries of directories. */
export class DirectoryIndex {
  readonly #client: StoreClient;
  readonly #settings: ShardSettings;
  /** Entries waiting to be added, per directory (latin1 of its path). */
  readonly #pendingAdds = new Map<
    string,
    {
      directory: DirectoryPlacement;
      entries: PendingEntry[];
      waiters: Array<{
        names: string[];
        resolve(added: boolean): void;
        reject(error: unknown): void;
      }>;
    }
  >();
  /** Directories whose adds are being written. */
  readonly #addingTo = new Set<string>();
  /** Recently read levels per directory (latin1 of its path). */
  readonly #levels = new Map<string, { levels: number[]; at: number }>();
  /** Recently read sizes per shard (latin1 of its key). */
  readonly #sizes = new Map<string, ShardSize & { at: number }>();
  /**
   * Adds of entries that Riak may still apply after the client gave up on them (see
   * {@link lateAddsSettled}), by directory and name ({@link entryId}): each the client's
   * promise that the update's shard has no such write left.
   */
  readonly #lateAdds = new Map<string, Set<Promise<void>>>();

  constructor(client: StoreClient, settings: ShardSettings) {
    this.#client = client;
    this.#settings = settings;
  }

  /**
   * Every entry of a directory, shard by shard (never list-keys), each name once.
   *
   * A name lives in one shard per level: at level `count`, shard `hash(name) mod count`. Each
   * level's count is a multiple of the one before, so the shards that may hold a name seen in
   * shard `j` of a level are shard `j mod c` of each coarser level `c`. The shards are read
   * depth first along that tree, holding only the names of the shards on the path down to
   * the one being read: a name also found higher up (removed there and added again to the
   * newest level while this listing ran, or added by two hosts at once) is skipped, in memory
   * bounded by the levels' capacity, not by the directory. An entry that is there from the
   * start to the end of the listing is listed: entries never move between shards.
   */
  async *list(directory: DirectoryPlacement): AsyncGenerator<ShardEntry> {
    const entries = directory.entries;
    if (entries.kind === "riak-fuse") {
      const [set, types] = await Promise.all([
        this.#fetch(entries.set),
        this.#madeTypes(directory),
      ]);
      for (const member of set?.members ?? []) {
        const name = Buffer.from(member);
        yield { type: types.get(name.toString("latin1")) ?? "file", name };
      }
      return;
    }
    const root = await this.#fetch(this.#shard(directory, 1, 0));
    const { levels, entries: rootEntries } = readShard(root);
    const rootNames = new Set<string>();
    for (const entry of rootEntries) {
      const id = entry.name.toString("latin1");
      if (rootNames.has(id)) continue;
      rootNames.add(id);
      yield entry;
    }
    const tree = levelsDividing(levels);
    const order = tree
      ? depthFirst(levels)
      : levels.slice(1).flatMap((count, depth) =>
        Array.from({ length: count }, (_, index) => ({ depth: depth + 1, count, index }))
      );
    // The names of the shards on the path down to the one being read, by depth. Levels whose
    // counts do not divide each other (hosts with other fanouts) make no tree: every name read
    // is held then.
    const above: Set<string>[] = [rootNames];
    const fetched = (i: number) => {
      const set = this.#fetch(this.#shard(directory, order[i].count, order[i].index));
      set.catch(() => {}); // Awaited in turn; a listing given up early leaves it unawaited.
      return set;
    };
    const ahead = order.slice(0, LIST_PARALLELISM).map((_, i) => fetched(i));
    for (let i = 0; i < order.length; i++) {
      const set = await ahead.shift()!;
      if (i + LIST_PARALLELISM < order.length) ahead.push(fetched(i + LIST_PARALLELISM));
      if (tree) above.length = order[i].depth;
      const names = tree ? new Set<string>() : rootNames;
      for (const entry of readShard(set).entries) {
        const id = entry.name.toString("latin1");
        if (names.has(id) || above.some((held) => held.has(id))) continue;
        names.add(id);
        yield entry;
      }
      if (tree) above.push(names);
    }
  }

  /**
   * The types of the names riakfs made in a riak-fuse folder as directories or symlinks (latin1
   * of the name), from the default layout's index of the folder: riak-fuse made only files, so
   * every other name of its set is one. Small: it holds no files.
   */
  async #madeTypes(directory: DirectoryPlacement): Promise<Map<string, ShardEntry["type"]>> {
    const types = new Map<string, ShardEntry["type"]>();
    for await (const entry of this.list(typedIndexOf(directory))) {
      types.set(entry.name.toString("latin1"), entry.type);
    }
    return types;
  }

  /** True when the directory has at least one entry. */
  async hasEntries(directory: DirectoryPlacement): Promise<boolean> {
    for await (const _ of this.list(directory)) return true;
    return false;
  }

  /**
   * True when the directory's index holds an entry. Level markers alone do not count: a
   * removed directory's root shard keeps them (its shards are emptied, never deleted, see
   * {@link remove}), and a name must not stay a directory for them.
   */
  async exists(directory: DirectoryPlacement): Promise<boolean> {
    if (directory.entries.kind === "riak-fuse") {
      const set = await this.#fetch(directory.entries.set);
      return set !== undefined && set.members.length > 0;
    }
    const root = readShard(await this.#fetch(this.#shard(directory, 1, 0)));
    if (root.entries.length > 0) return true;
    return root.levels.length > 1 && await this.hasEntries(directory);
  }

  /**
   * True when the directory's index was ever written, emptied since or not: its root shard
   * (a riak-fuse directory's one set) is there. A removed directory's sets stay (see
   * {@link remove}); a directory never given an entry may have none.
   */
  async everWritten(directory: DirectoryPlacement): Promise<boolean> {
    const root = directory.entries.kind === "riak-fuse"
      ? directory.entries.set
      : this.#shard(directory, 1, 0);
    return await this.#fetch(root) !== undefined;
  }

  /**
   * Notes that `directory` was just made where {@link exists} found no index: its first
   * additions need not fetch its levels and size.
   */
  created(directory: DirectoryPlacement): void {
    if (directory.entries.kind === "riak-fuse") return;
    const at = Date.now();
    remember(this.#levels, directory.path.toString("latin1"), {
      levels: levelsFromMarkers([]),
      at,
    });
    remember(this.#sizes, this.#shard(directory, 1, 0).key.toString("latin1"), {
      entries: 0,
      bytes: 0,
      at,
    });
  }

  /**
   * The names (latin1) in shard `index` of the level of `count` shards, and the levels the
   * directory has when that is its root shard (level 1). A riak-fuse directory's one set is
   * its root shard, with no further levels.
   */
  async shardNames(
    directory: DirectoryPlacement,
    count: number,
    index: number,
  ): Promise<{ names: Set<string>; levels: number[] }> {
    if (directory.entries.kind === "riak-fuse") {
      const set = await this.#fetch(directory.entries.set);
      const names = new Set<string>();
      for (const member of set?.members ?? []) names.add(Buffer.from(member).toString("latin1"));
      return { names, levels: [1] };
    }
    const { levels, entries } = readShard(await this.#fetch(this.#shard(directory, count, index)));
    return { names: new Set(entries.map((entry) => entry.name.toString("latin1"))), levels };
  }

  /** The entry called `name`, if any. */
  async lookup(directory: DirectoryPlacement, name: Uint8Array): Promise<ShardEntry | undefined> {
    const found = await this.#find(directory, [Buffer.from(name)]);
    return found.get(Buffer.from(name).toString("latin1"))?.[0]?.entry;
  }

  /**
   * Adds (or retypes) entries. Concurrent calls for one directory are merged into batches,
   * and a batch is grouped by shard: one fetch and one update per shard touched. A new level
   * opens when the newest one cannot take the batch without exceeding capacity. Resolves
   * only once Riak acknowledged the update holding this call's entries: true when it wrote
   * one of them, false when all were there already.
   *
   * `options.absent`: the caller just saw no object under any of these names. An entry never
   * exists without its object (docs/layout.md, order of writes), so there is no older entry
   * to look for in older levels, which saves fetching a shard per level.
   */
  add(
    directory: DirectoryPlacement,
    additions: readonly ShardEntry[],
    options: { absent?: boolean } = {},
  ): Promise<boolean> {
    if (additions.length === 0) return Promise.resolve(false);
    const mayExist = options.absent !== true;
    const id = directory.path.toString("latin1");
    return new Promise((resolve, reject) => {
      let batch = this.#pendingAdds.get(id);
      if (!batch) {
        batch = { directory, entries: [], waiters: [] };
        this.#pendingAdds.set(id, batch);
      }
      for (const entry of additions) batch.entries.push({ entry, mayExist });
      batch.waiters.push({
        names: additions.map((entry) => entry.name.toString("latin1")),
        resolve,
        reject,
      });
      if (!this.#addingTo.has(id)) void this.#drainAdds(id);
    });
  }

  async #drainAdds(id: string): Promise<void> {
    this.#addingTo.add(id);
    try {
      for (let batch = this.#pendingAdds.get(id); batch; batch = this.#pendingAdds.get(id)) {
        this.#pendingAdds.delete(id);
        try {
          const written = await this.#addNow(batch.directory, batch.entries);
          for (const waiter of batch.waiters) {
            waiter.resolve(waiter.names.some((name) => written.has(name)));
          }
        } catch (error) {
          for (const waiter of batch.waiters) waiter.reject(error);
        }
      }
    } finally {
      this.#addingTo.delete(id);
    }
  }

  /** Writes `additions`; resolves to the names (latin1) it wrote, retyped ones included. */
  async #addNow(
    directory: DirectoryPlacement,
    additions: readonly PendingEntry[],
  ): Promise<Set<string>> {
    const unique = new Map<string, PendingEntry>();
    for (const addition of additions) {
      const id = addition.entry.name.toString("latin1");
      const mayExist = addition.mayExist || unique.get(id)?.mayExist === true;
      unique.set(id, { entry: addition.entry, mayExist });
    }
    const entries = [...unique.values()].map((addition) => addition.entry);
    const toCheck = [...unique.values()].filter((a) => a.mayExist).map((a) => a.entry);
    if (directory.entries.kind === "riak-fuse") {
      const typed = typedIndexOf(directory);
      const made = [...unique.values()].filter((a) => a.entry.type !== "file");
      const files = toCheck.filter((entry) => entry.type === "file").map((entry) => entry.name);
      // Its type first: a crash before the name is in riak-fuse's set leaves it unlisted, never
      // listed as a file.
      if (made.length > 0) await this.#addNow(typed, made);
      // A file where riakfs made a directory or symlink: its type goes.
      if (files.length > 0) await this.remove(typed, files);
      await this.#updateAdding(directory, directory.entries.set, entries.map((e) => e.name), {
        add: entries.map((e) => e.name),
      });
      return new Set(unique.keys());
    }
    const fetch = this.#cachedFetch();
    const root = this.#shard(directory, 1, 0);
    let levels = await this.#levelsOf(directory, fetch);
    let toAdd = entries;
    if (toCheck.length > 0) {
      // An entry may sit in an older level (find it there rather than add a duplicate), or
      // under the other type (a file where a directory was: its old member goes).
      const existing = await this.#find(directory, toCheck.map((e) => e.name), fetch);
      toAdd = entries.filter((entry) =>
        !(existing.get(entry.name.toString("latin1")) ?? []).some((f) =>
          f.entry.type === entry.type
        )
      );
      for (const entry of toCheck) {
        for (const found of existing.get(entry.name.toString("latin1")) ?? []) {
          if (found.entry.type === entry.type) continue;
          await this.#update(found.shard, {
            remove: [encodeEntryMember(found.entry.type, found.entry.name)],
            context: found.context,
          });
        }
      }
    }
    const written = new Set(toAdd.map((entry) => entry.name.toString("latin1")));
    if (toAdd.length === 0) return written;
    let count = levels[levels.length - 1];
    for (;;) {
      const groups = [...groupByShard(toAdd, count)].map(([index, group]) => ({
        shard: this.#shard(directory, count, index),
        group,
      }));
      const adding = groups.map(({ group }) => sizeOf(group));
      const sizes = await Promise.all(
        groups.map(({ shard }, i) => this.#shardSize(shard, adding[i], fetch)),
      );
      if (sizes.every((size, i) => this.#fits(size, adding[i]))) {
        await Promise.all(groups.map(async ({ shard, group }, i) => {
          await this.#updateAdding(directory, shard, group.map((entry) => entry.name), {
            add: group.map((entry) => encodeEntryMember(entry.type, entry.name)),
          });
          this.#adjustSize(shard, adding[i]);
        }));
        return written;
      }
      count = nextLevel(count, this.#settings.fanout);
      if (!levels.includes(count)) {
        await this.#update(root, { add: [encodeMarkerMember(count)] });
        levels = [...levels, count];
        remember(this.#levels, directory.path.toString("latin1"), { levels, at: Date.now() });
      }
    }
  }

  /** The levels of a directory, from a cache younger than {@link SHARD_STATE_TTL_MS}. */
  async #levelsOf(
    directory: DirectoryPlacement,
    fetch: (location: ObjectLocation) => Promise<FetchedSet | undefined>,
  ): Promise<number[]> {
    const id = directory.path.toString("latin1");
    const cached = this.#levels.get(id);
    if (cached && Date.now() - cached.at < SHARD_STATE_TTL_MS) return cached.levels;
    const levels = readShard(await fetch(this.#shard(directory, 1, 0))).levels;
    remember(this.#levels, id, { levels, at: Date.now() });
    return levels;
  }

  /**
   * Whether a shard of `size` takes `adding` within both bounds. A single entry always fits
   * an empty shard, whatever its name's length: else no level would ever take it.
   */
  #fits(size: ShardSize, adding: ShardSize): boolean {
    if (size.entries + adding.entries > this.#settings.capacity) return false;
    if (size.entries === 0 && adding.entries === 1) return true;
    return size.bytes + adding.bytes <= (this.#settings.maxBytes ?? DEFAULT_SHARD_BYTES);
  }

  /**
   * The size of a shard: a cached one (kept up to date with this process's own adds) while it
   * is young and takes `adding`, else a fresh fetch.
   */
  async #shardSize(
    shard: ObjectLocation,
    adding: ShardSize,
    fetch: (location: ObjectLocation) => Promise<FetchedSet | undefined>,
  ): Promise<ShardSize> {
    const id = shard.key.toString("latin1");
    const cached = this.#sizes.get(id);
    if (cached && Date.now() - cached.at < SHARD_STATE_TTL_MS && this.#fits(cached, adding)) {
      return cached;
    }
    const size = sizeOf(readShard(await fetch(shard)).entries);
    remember(this.#sizes, id, { ...size, at: Date.now() });
    return size;
  }

  #adjustSize(shard: ObjectLocation, change: ShardSize, sign = 1): void {
    const cached = this.#sizes.get(shard.key.toString("latin1"));
    if (!cached) return;
    cached.entries = Math.max(0, cached.entries + sign * change.entries);
    cached.bytes = Math.max(0, cached.bytes + sign * change.bytes);
  }

  /**
   * Resolves once no add of an entry called one of `names` that the client gave up on (it
   * timed out, or its node stopped answering: see {@link StoreClient.lateWritesSettled}) can
   * still land unheard. Riak's sets are add-wins: an add applied late gives its member a new
   * dot, which no remove sent before covers, whatever context it carried (riak_dt_orswot
   * ignores an add's context), so the name would come back, listed with nothing behind it.
   */
  async lateAddsSettled(
    directory: DirectoryPlacement,
    names: readonly Uint8Array[],
  ): Promise<void> {
    const waits = names.flatMap((name) => [...this.#lateAdds.get(entryId(directory, name)) ?? []]);
    await Promise.all(waits);
  }

  /** Whether an add of the entry `name` awaits its late answer ({@link lateAddsSettled}). */
  awaitsLateAdds(directory: DirectoryPlacement, name: Uint8Array): boolean {
    return this.#lateAdds.has(entryId(directory, name));
  }

  /**
   * Removes the entries called `names` wherever they are, once their adds that may still
   * land are settled ({@link lateAddsSettled}). Resolves true when it removed one.
   *
   * `options.onlyIf` is asked after the shards holding them were read and before anything is
   * removed, and false keeps them all: the removal carries the context of that read, so an
   * add that lands after it stays (add-wins), and one that landed before it is one whose
   * object `onlyIf` can already see (an object is written before its entry).
   */
  async remove(
    directory: DirectoryPlacement,
    names: readonly Uint8Array[],
    options: { onlyIf?: () => Promise<boolean> } = {},
  ): Promise<boolean> {
    if (names.length === 0) return false;
    await this.lateAddsSettled(directory, names);
    const confirmed = async (found: number) =>
      found > 0 && (options.onlyIf === undefined || await options.onlyIf());
    if (directory.entries.kind === "riak-fuse") {
      const set = await this.#fetch(directory.entries.set);
      const wanted = new Set(names.map((n) => Buffer.from(n).toString("latin1")));
      const remove = (set?.members ?? []).filter((m) =>
        wanted.has(Buffer.from(m).toString("latin1"))
      );
      if (!await confirmed(remove.length)) return false;
      // Its type first: a crash before the name leaves riak-fuse's set lists it as a file,
      // where a type left behind would retype a file made under that name later.
      await this.remove(typedIndexOf(directory), names);
      await this.#update(directory.entries.set, { remove, context: set?.context });
      return true;
    }
    const found = await this.#find(directory, names.map((n) => Buffer.from(n)));
    if (!await confirmed(found.size)) return false;
    const byShard = new Map<
      string,
      { shard: ObjectLocation; context?: Uint8Array; remove: Buffer[] }
    >();
    for (const matches of found.values()) {
      for (const match of matches) {
        const id = match.shard.key.toString("latin1");
        const group = byShard.get(id) ?? { shard: match.shard, context: match.context, remove: [] };
        group.remove.push(encodeEntryMember(match.entry.type, match.entry.name));
        byShard.set(id, group);
      }
    }
    await Promise.all(
      [...byShard.values()].map(async (group) => {
        await this.#update(group.shard, { remove: group.remove, context: group.context });
        this.#adjustSize(group.shard, {
          entries: group.remove.length,
          bytes: group.remove.reduce((total, member) => total + member.length, 0),
        }, -1);
      }),
    );
    return true;
  }

  /** For each name, where it is: one shard per level, fetched in parallel. */
  async #find(
    directory: DirectoryPlacement,
    names: readonly Buffer[],
    fetch: (location: ObjectLocation) => Promise<FetchedSet | undefined> = (location) =>
      this.#fetch(location),
  ): Promise<
    Map<string, Array<{ entry: ShardEntry; shard: ObjectLocation; context?: Uint8Array }>>
  > {
    const result = new Map<
      string,
      Array<{ entry: ShardEntry; shard: ObjectLocation; context?: Uint8Array }>
    >();
    if (directory.entries.kind === "riak-fuse") {
      const [set, made] = await Promise.all([
        fetch(directory.entries.set),
        this.#find(typedIndexOf(directory), names),
      ]);
      const members = new Set((set?.members ?? []).map((m) => Buffer.from(m).toString("latin1")));
      for (const name of names) {
        const id = name.toString("latin1");
        if (members.has(id)) {
          result.set(id, [{
            entry: { type: made.get(id)?.[0]?.entry.type ?? "file", name },
            shard: directory.entries.set,
            context: set?.context,
          }]);
        }
      }
      return result;
    }
    const root = this.#shard(directory, 1, 0);
    const rootSet = await fetch(root);
    const { levels } = readShard(rootSet);
    const wanted = new Set(names.map((n) => n.toString("latin1")));
    const shardIds = new Map<string, ObjectLocation>();
    for (const count of levels.slice(1)) {
      for (const name of names) {
        const shard = this.#shard(directory, count, shardIndex(name, count));
        shardIds.set(shard.key.toString("latin1"), shard);
      }
    }
    const fetched: Array<[ObjectLocation, FetchedSet | undefined]> = [[root, rootSet]];
    const others = [...shardIds.values()];
    for (let start = 0; start < others.length; start += LIST_PARALLELISM) {
      const batch = others.slice(start, start + LIST_PARALLELISM);
      const sets = await Promise.all(batch.map((shard) => fetch(shard)));
      batch.forEach((shard, i) => fetched.push([shard, sets[i]]));
    }
    for (const [shard, set] of fetched) {
      for (const entry of readShard(set).entries) {
        const id = entry.name.toString("latin1");
        if (!wanted.has(id)) continue;
        const list = result.get(id) ?? [];
        list.push({ entry, shard, context: set?.context });
        result.set(id, list);
      }
    }
    return result;
  }

  #shard(directory: DirectoryPlacement, count: number, index: number): ObjectLocation {
    if (directory.entries.kind !== "sharded") throw new Error("not a sharded directory");
    return {
      bucketType: directory.entries.bucketType,
      bucket: directory.entries.bucket,
      key: shardKey(directory.entries.dirKey, count, index),
    };
  }

  /** A fetch that reads each set at most once (for one batch). */
  #cachedFetch(): (location: ObjectLocation) => Promise<FetchedSet | undefined> {
    const cache = new Map<string, Promise<FetchedSet | undefined>>();
    return (location) => {
      const id = location.key.toString("latin1");
      let fetched = cache.get(id);
      if (!fetched) {
        fetched = this.#fetch(location);
        cache.set(id, fetched);
      }
      return fetched;
    };
  }

  async #fetch(location: ObjectLocation): Promise<FetchedSet | undefined> {
    try {
      return await this.#client.fetchSet(location);
    } catch (error) {
      throw new RiakRequestError("set fetch", describeLocation(location), error);
    }
  }

  /**
   * {@link #update} adding the entries called `names` to `shard`; an add of them the client
   * gave up on, which Riak may still apply, is remembered until it settles
   * ({@link lateAddsSettled}), also when a retry stored them.
   */
  async #updateAdding(
    directory: DirectoryPlacement,
    shard: ObjectLocation,
    names: readonly Uint8Array[],
    change: { add: Uint8Array[] },
  ): Promise<void> {
    try {
      await this.#update(shard, change);
    } finally {
      // Also where the shard's late write is another add (of other names): waiting for it
      // costs no more than that wait, and the client does not tell writes of a key apart.
      if (this.#client.awaitsLateWrites?.(shard)) {
        const settled = this.#client.lateWritesSettled?.(shard) ?? Promise.resolve();
        for (const name of names) this.#rememberLateAdd(entryId(directory, name), settled);
      }
    }
  }

  /** Remembers `settled` for the entry `id` until it settles ({@link lateAddsSettled}). */
  #rememberLateAdd(id: string, settled: Promise<void>): void {
    const waits = this.#lateAdds.get(id) ?? new Set<Promise<void>>();
    this.#lateAdds.set(id, waits);
    waits.add(settled);
    const forget = () => {
      waits.delete(settled);
      if (waits.size === 0 && this.#lateAdds.get(id) === waits) this.#lateAdds.delete(id);
    };
    settled.then(forget, forget);
  }

  async #update(
    location: ObjectLocation,
    change: { add?: Uint8Array[]; remove?: Uint8Array[]; context?: Uint8Array },
  ): Promise<void> {
    try {
      await this.#client.updateSet(location, {
        ...change,
        w: this.#settings.w,
        dw: this.#settings.dw,
      });
    } catch (error) {
      throw new RiakRequestError("set update", describeLocation(location), error);
    }
  }
}

/** A riak-fuse folder's index of the names riakfs made there as directories or symlinks. */
function typedIndexOf(directory: DirectoryPlacement): DirectoryPlacement {
  if (directory.entries.kind !== "riak-fuse") throw new Error("not a riak-fuse directory");
  return { ...directory, entries: directory.entries.typed };
}

/** The key of the entry `name` of `directory` in {@link DirectoryIndex}'s late adds. */
function entryId(directory: DirectoryPlacement, name: Uint8Array): string {
  return `${directory.path.toString("latin1")}\0${Buffer.from(name).toString("latin1")}`;
}

/** An entry waiting to be added, and whether an older entry of that name may exist. */
interface PendingEntry {
  entry: ShardEntry;
  mayExist: boolean;
}

/** Cached shard states kept at most; past it the cache starts over (it only saves fetches). */
const SHARD_STATE_LIMIT = 100_000;

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= SHARD_STATE_LIMIT) cache.clear();
  cache.set(key, value);
}

function readShard(set: FetchedSet | undefined): { levels: number[]; entries: ShardEntry[] } {
  const markers: number[] = [];
  const entries: ShardEntry[] = [];
  for (const member of set?.members ?? []) {
    const decoded = decodeMember(member);
    if (decoded.kind === "entry") entries.push(decoded.entry);
    else if (decoded.kind === "marker") markers.push(decoded.shardCount);
  }
  return { levels: levelsFromMarkers(markers), entries };
}

/** Entries of a shard, and the bytes of their members. */
interface ShardSize {
  entries: number;
  bytes: number;
}

function sizeOf(entries: readonly ShardEntry[]): ShardSize {
  let bytes = 0;
  for (const entry of entries) bytes += entry.name.length + ENTRY_MEMBER_OVERHEAD;
  return { entries: entries.length, bytes };
}

/** Whether every level's shard count divides the next one's (a tree of shards). */
function levelsDividing(levels: readonly number[]): boolean {
  return levels.every((count, i) => i === 0 || count % levels[i - 1] === 0);
}

/**
 * The shards of the levels below the root, depth first: under shard `j` of a level come the
 * shards `j + count * t` of the next level, the ones holding names of the same hash residue.
 */
function depthFirst(
  levels: readonly number[],
): Array<{ depth: number; count: number; index: number }> {
  const order: Array<{ depth: number; count: number; index: number }> = [];
  const visit = (depth: number, index: number) => {
    const count = levels[depth];
    order.push({ depth, count, index });
    if (depth + 1 >= levels.length) return;
    for (let child = index; child < levels[depth + 1]; child += count) visit(depth + 1, child);
  };
  if (levels.length > 1) { for (let index = 0; index < levels[1]; index++) visit(1, index); }
  return order;
}

function groupByShard(entries: readonly ShardEntry[], count: number): Map<number, ShardEntry[]> {
  const groups = new Map<number, ShardEntry[]>();
  for (const entry of entries) {
    const index = shardIndex(entry.name, count);
    const group = groups.get(index) ?? [];
    group.push(entry);
    groups.set(index, group);
  }
  return groups;
}
