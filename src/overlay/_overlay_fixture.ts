/**
 * Test support for the overlay tests: a started overlay (every queue, the journal, the
 * control socket) over a temporary source directory and a fresh store on the test Riak,
 * plus helpers that drive the FileSystem methods the way the kernel would.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, type FileSystem, FuseError, type RequestContext } from "../fuse/filesystem.ts";
import { ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { type StoreFixture, withStore } from "../store/_test_support.ts";
import type { StoreClient } from "../store/client.ts";
import type { ObjectLocation } from "../store/layout.ts";
import { normalizePath } from "../store/path.ts";
import { Store, type StoreOptions } from "../store/store.ts";
import { Logger } from "./log.ts";
import { overlaySettingsFromOptions } from "./mount_options.ts";
import { type OverlayRuntime, type OverlayStartOptions, startOverlay } from "./runtime.ts";

/** Riak requests the overlay's store sent, by kind (the fixture's own `store` is not counted). */
export interface RequestCounts {
  /** Gets with the value. */
  gets: number;
  /** Head-only gets. */
  heads: number;
  puts: number;
  deletes: number;
  setFetches: number;
  setUpdates: number;
  /** The most gets, head-only gets and set fetches that were in flight at once. */
  mostReadsAtOnce: number;
}

/** What an overlay test gets. */
export interface OverlayFixture extends StoreFixture {
  source: string;
  spool: string;
  mountpoint: string;
  runDirectory: string;
  runtime: OverlayRuntime;
  fs: FileSystem;
  logLines: string[];
  /** What the overlay asked Riak so far; reset it with {@link resetCounts}. */
  requests: RequestCounts;
  /** Sets every request count back to zero. */
  resetCounts(): void;
  /** Starts another runtime over the same source and spool (a restart). */
  restart(extra?: Record<string, unknown>): Promise<OverlayRuntime>;
  /** Holds the overlay's next put until released; see {@link RequestHold}. */
  holdPuts(): RequestHold;
  /**
   * Holds the overlay's next get of the whole object at `key` (a file's path without its
   * leading slash) until released: a read-back of what an upload stored, say.
   */
  holdGet(key: string): RequestHold;
  /**
   * Holds the answer of the overlay's next set fetch (a listing's shard, say; given `key`, the
   * next one of the set at that key, such as `d/` for directory `/d`'s root shard) until
   * released: the set is read at once, as it is then, and handed over only when released.
   */
  holdFetchedSet(key?: string): RequestHold;
  /**
   * Makes the overlay's store see a put of the file at `path` that failed while Riak may
   * still apply it (see {@link Store.lateWritesSettled}), until the returned function is
   * called: its answer came.
   */
  latePut(path: string): () => void;
  /**
   * Makes Riak refuse the overlay's set requests (fetches and updates) as it refuses those
   * of a bucket type never created (`--sets-bucket-type` misspelt), until the returned
   * function is called; objects still go through.
   */
  refuseSets(): () => void;
}

/**
 * Runs `body` while the test Riak answers nothing (requests wait, as during an outage
 * that the overlay's Riak timeout reports), and lets it answer again afterwards, also when
 * `body` fails.
 */
export async function whilePaused<T>(
  riak: StoreFixture["riak"],
  body: () => Promise<T>,
): Promise<T> {
  const faults = riak.faults;
  faults.pause();
  try {
    return await body();
  } finally {
    faults.resume();
  }
}

/**
 * The overlay's next request of a kind held back (later ones go through): a test makes a
 * request overtake it, as a slow upload of a large value is overtaken on a real cluster, or
 * makes something happen while it waits.
 */
export interface RequestHold {
  /** Resolves when the held request arrived (it is not sent yet). */
  reached: Promise<void>;
  /** Sends the held request. */
  release(): void;
}

/** What {@link countingClient} holds back until the promise returned resolves. */
export interface RequestGate {
  puts?: () => Promise<void>;
  /** Undefined: this get goes through. */
  gets?: (location: ObjectLocation, head: boolean) => Promise<void> | undefined;
  /**
   * Called once a set was fetched, before its answer is handed over; undefined: this answer
   * goes through.
   */
  fetchedSets?: (location: ObjectLocation) => Promise<void> | undefined;
  /** Set requests go to this bucket type instead of their own (one Riak lacks: refused). */
  setsBucketType?: string;
}

/** A request context of root, as the kernel sends it. */
export const ROOT_CTX: RequestContext = {
  uid: 0,
  gid: 0,
  pid: 0,
  signal: new AbortController().signal,
  commit: () => {},
  withoutDeadline: (wait) => wait(),
};

/** The fields of {@link RequestCounts}, all zero. */
export function noRequests(): RequestCounts {
  return {
    gets: 0,
    heads: 0,
    puts: 0,
    deletes: 0,
    setFetches: 0,
    setUpdates: 0,
    mostReadsAtOnce: 0,
  };
}

/**
 * `client`, counting every request into `counts`; puts and gets wait for `gate`'s when set; a key
 * of `latePuts` has a put that may still land until its promise resolves.
 */
export function countingClient(
  client: StoreClient,
  counts: RequestCounts,
  gate: RequestGate = {},
  latePuts = new Map<string, Promise<void>>(),
): StoreClient {
  const latePutOf = (location: ObjectLocation) =>
    latePuts.get(Buffer.from(location.key).toString("latin1"));
  let readsInFlight = 0;
  const setAt = (location: ObjectLocation): ObjectLocation =>
    gate.setsBucketType === undefined ? location : { ...location, bucketType: gate.setsBucketType };
  const reading = <T>(request: () => Promise<T>): Promise<T> => {
    counts.mostReadsAtOnce = Math.max(counts.mostReadsAtOnce, ++readsInFlight);
    return request().finally(() => readsInFlight--);
  };
  return {
    get: (location, options) => {
      if (options?.head) counts.heads++;
      else counts.gets++;
      return reading(async () => {
        await gate.gets?.(location, options?.head ?? false);
        return client.get(location, options);
      });
    },
    put: async (location, content, options) => {
      counts.puts++;
      await gate.puts?.();
      return client.put(location, content, options);
    },
    delete: (location, options) => {
      counts.deletes++;
      return client.delete(location, options);
    },
    fetchSet: (location) => {
      counts.setFetches++;
      return reading(async () => {
        const fetched = await client.fetchSet(setAt(location));
        await gate.fetchedSets?.(location);
        return fetched;
      });
    },
    updateSet: (location, change) => {
      counts.setUpdates++;
      return client.updateSet(setAt(location), change);
    },
    listKeys: (bucketType, bucket) => client.listKeys(bucketType, bucket),
    lateWritesSettled: async (location) => {
      await latePutOf(location);
      await client.lateWritesSettled?.(location);
    },
    awaitsLateWrites: (location) =>
      latePutOf(location) !== undefined || (client.awaitsLateWrites?.(location) ?? false),
  };
}

/**
 * `client`, whose requests fail once `stopped()` holds, also those sent before whose answer
 * comes after: what a process that exited hears of Riak, and sends it.
 */
function endingWith(client: StoreClient, stopped: () => boolean): StoreClient {
  const ended = () => new Error("the runtime that sent this request stopped");
  const untilStopped = async <T>(request: () => Promise<T>): Promise<T> => {
    if (stopped()) throw ended();
    const answer = await request();
    if (stopped()) throw ended();
    return answer;
  };
  return {
    ...client,
    get: (location, options) => untilStopped(() => client.get(location, options)),
    put: (location, content, options) => untilStopped(() => client.put(location, content, options)),
    delete: (location, options) => untilStopped(() => client.delete(location, options)),
    fetchSet: (location) => untilStopped(() => client.fetchSet(location)),
    updateSet: (location, change) => untilStopped(() => client.updateSet(location, change)),
    listKeys: async function* (bucketType, bucket) {
      for await (const keys of client.listKeys(bucketType, bucket)) {
        if (stopped()) throw ended();
        yield keys;
      }
    },
  };
}

/**
 * Runs `body` with an overlay in `preset` (+ raw option overrides, + start options such as
 * `entryTimeout` or a clock, + options of the overlay's store and the fixture's, such as a
 * small chunk size), cleaning up after.
 */
export async function withOverlay(
  preset: string,
  body: (fixture: OverlayFixture) => Promise<void>,
  extra: Record<string, unknown> = {},
  startOptions: Partial<OverlayStartOptions> = {},
  storeOptions: StoreOptions = {},
): Promise<void> {
  await withStore(async (store) => {
    const requests = noRequests();
    const gate: RequestGate = {};
    /** A hold whose `wait` is called by the held request, once: those after it overtake it. */
    const holdOne = (install: (wait: () => Promise<void>) => void, uninstall: () => void) => {
      let arrived!: () => void;
      const reached = new Promise<void>((resolve) => arrived = resolve);
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      install(() => {
        uninstall();
        arrived();
        return released;
      });
      return {
        reached,
        release: () => {
          uninstall();
          release();
        },
      };
    };
    const holdPuts = (): RequestHold =>
      holdOne((wait) => gate.puts = wait, () => gate.puts = undefined);
    const holdGet = (key: string): RequestHold =>
      holdOne(
        (wait) =>
          gate.gets = (location, head) =>
            !head && location.key.toString() === key ? wait() : undefined,
        () => gate.gets = undefined,
      );
    const holdFetchedSet = (key?: string): RequestHold =>
      holdOne(
        (wait) =>
          gate.fetchedSets = (location) =>
            key === undefined || location.key.toString() === key ? wait() : undefined,
        () => gate.fetchedSets = undefined,
      );
    const latePuts = new Map<string, Promise<void>>();
    // The overlay's own store, on the same namespace, so its requests can be counted.
    const overlayStoreUntil = (stopped: () => boolean) =>
      new Store(endingWith(countingClient(store.client, requests, gate, latePuts), stopped), {
        ...storeOptions,
        namespace: { ...storeOptions.namespace, bucket: store.bucket },
      });
    // Its layout names the keys of latePut; each runtime has a store of its own (see start).
    const overlayStore = overlayStoreUntil(() => false);
    const directory = await mkdtemp(join(tmpdir(), "riakfs-overlay-"));
    const source = join(directory, "source");
    const spool = join(directory, "spool");
    const runDirectory = join(directory, "run");
    const mountpoint = join(directory, "mnt");
    await mkdir(source);
    const logLines: string[] = [];
    const logger = new Logger({
      format: "json",
      level: "debug",
      sink: { write: (line: string) => logLines.push(line) },
    });
    const runtimes: OverlayRuntime[] = [];
    const start = async (more: Record<string, unknown>) => {
      // Each runtime gets its own store, whose requests end with its stop, as with a process
      // that exits: a request already sent may still be applied (the paused Riak answers it
      // once resumed), but its answer is heard by no one and nothing follows it. An upload
      // still running at a stop(0) during an outage otherwise went on once Riak was back,
      // beside the next runtime's replay of the same journal, and landed an upload under a
      // name that replay was removing.
      let stopped = false;
      const settings = overlaySettingsFromOptions({
        preset,
        spool,
        runDir: runDirectory,
        riakReadTimeout: "2000",
        // The tests' files are moments old: deleted once verified, as the tests expect.
        deleteQuietPeriod: "0",
        ...extra,
        ...more,
      });
      const runtime = await startOverlay({
        settings,
        source: settings.mode.reads === "riak" ? undefined : source,
        mountpoint,
        store: overlayStoreUntil(() => stopped),
        riakNodes: store.riak.nodes,
        logger,
        // Directory mtimes are written when the runtime settles or stops, not at a moment a
        // test counting requests cannot foresee; a test of the delay sets its own.
        directoryTimeDelayMs: 3_600_000,
        ...startOptions,
      });
      const stop = runtime.stop;
      runtime.stop = async (drainTimeoutMs) => {
        try {
          return await stop(drainTimeoutMs);
        } finally {
          stopped = true;
        }
      };
      runtimes.push(runtime);
      return runtime;
    };
    try {
      const runtime = await start({});
      await body({
        ...store,
        source,
        spool,
        mountpoint,
        runDirectory,
        runtime,
        fs: runtime.fileSystem,
        logLines,
        requests,
        resetCounts: () => Object.assign(requests, noRequests()),
        restart: start,
        holdPuts,
        holdGet,
        holdFetchedSet,
        latePut: (path) => {
          const key = Buffer.from(overlayStore.layout.file(normalizePath(path)).object.key)
            .toString("latin1");
          let landed!: () => void;
          latePuts.set(key, new Promise<void>((resolve) => landed = resolve));
          return () => {
            latePuts.delete(key);
            landed();
          };
        },
        refuseSets: () => {
          gate.setsBucketType = "riakfs-test-no-such-type";
          return () => gate.setsBucketType = undefined;
        },
      });
    } finally {
      await store.riak.faults.clear();
      for (const runtime of runtimes) await runtime.stop(5_000);
      await rm(directory, { recursive: true, force: true });
    }
  }, storeOptions);
}

/** Turns the event loop until `done()` holds (a request the test started reached a step). */
export async function until(done: () => boolean): Promise<void> {
  for (let turn = 0; !done(); turn++) {
    if (turn > 100_000) throw new Error("the awaited step never came");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Resolves once `done()` holds, looked at every 10 ms: a background job's step (an upload
 * landing, a line logged) that the test cannot await. Fails after `limitMs`.
 */
export async function eventually(
  what: string,
  done: () => boolean,
  limitMs = 20_000,
): Promise<void> {
  for (let waited = 0; !done(); waited += 10) {
    if (waited > limitMs) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Resolves once the overlay found Riak away: a lookup of a name never seen failed (ENOENT,
 * as such a name looks during an outage), and the verdict is logged.
 */
export async function outageNoticed(fs: FileSystem, logLines: string[]): Promise<void> {
  await assert.rejects(
    lookupPath(fs, "/never-looked-at"),
    (error) => error instanceof FuseError && error.errno === Errno.ENOENT,
  );
  await eventually(
    "the outage logged",
    () => logLines.some((line) => line.includes("Riak unreachable")),
  );
}

/**
 * How far an outage test moves the overlay's clock before Riak goes away: well past the entry
 * timeout (1 s), so that what Riak answered before the outage has expired, as in a long one.
 */
export const LONG_AGO_MS = 60_000;

/** For `assert.rejects`: whether the error is the FUSE answer `errno`. */
export function isFuseError(errno: number): (error: unknown) => boolean {
  return (error: unknown) => error instanceof FuseError && error.errno === errno;
}

/** The node id of `path`, looked up component by component (each lookup takes a reference). */
export async function lookupPath(fs: FileSystem, path: string): Promise<number> {
  let node = ROOT_NODE_ID;
  for (const name of path.split("/").filter((part) => part !== "")) {
    node = (await fs.lookup!(ROOT_CTX, node, name)).nodeid;
  }
  return node;
}

/** Reads a whole file through open/read/release, in `piece`-byte reads. */
export async function readThrough(fs: FileSystem, path: string, piece = 65536): Promise<Buffer> {
  const node = await lookupPath(fs, path);
  const { fh } = await fs.open!(ROOT_CTX, node, 0);
  const parts: Uint8Array[] = [];
  try {
    for (let offset = 0;; offset += piece) {
      const part = await fs.read!(ROOT_CTX, node, fh, offset, piece);
      parts.push(part);
      if (part.length < piece) break;
    }
  } finally {
    await fs.release!(ROOT_CTX, node, fh, 0);
  }
  return Buffer.concat(parts);
}

/** Creates (or truncates) `path` and writes `content` through create/write/flush/release. */
export async function writeThrough(
  fs: FileSystem,
  path: string,
  content: Uint8Array,
  mode = 0o644,
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const parent = await lookupPath(fs, path.slice(0, slash) || "/");
  const created = await fs.create!(ROOT_CTX, parent, path.slice(slash + 1), 0o1101, mode, 0o022);
  const { nodeid } = created.entry;
  const fh = created.opened.fh;
  try {
    for (let offset = 0; offset < content.length; offset += 131072) {
      await fs.write!(ROOT_CTX, nodeid, fh, offset, content.subarray(offset, offset + 131072));
    }
    await fs.flush!(ROOT_CTX, nodeid, fh);
  } finally {
    await fs.release!(ROOT_CTX, nodeid, fh, 0);
  }
}

/** The names a directory lists (without `.` and `..`), sorted: listings come in no order. */
export async function listThrough(fs: FileSystem, path: string): Promise<string[]> {
  const node = await lookupPath(fs, path);
  const { fh } = await fs.opendir!(ROOT_CTX, node, 0);
  const names: string[] = [];
  try {
    await fs.readdir!(ROOT_CTX, node, fh, 0, {
      add: (entry) => {
        names.push(entry.name);
        return true;
      },
      addPlus: () => true,
      fits: () => true,
    });
  } finally {
    await fs.releasedir!(ROOT_CTX, node, fh);
  }
  return names.filter((name) => name !== "." && name !== "..").sort();
}
