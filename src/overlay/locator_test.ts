import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, open, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import { lstatIfExists } from "../migration/file_identity.ts";
import type { FileStat } from "../store/store.ts";
import { rootStat, S_IFDIR } from "./attributes.ts";
import { isOutageError } from "./health.ts";
import type { PendingUpload, SeenFile } from "./journal.ts";
import { Locator } from "./locator.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import { NewToRiak } from "./new_to_riak.ts";
import { NodeTable } from "./node_table.ts";
import { RiakCalls } from "./riak_calls.ts";
import { RiakKnowledge } from "./riak_knowledge.ts";
import { SessionTable, type WriteSession } from "./session_table.ts";
import { ShownToKernel } from "./shown_to_kernel.ts";
import { SILENT_LOGGER } from "./log.ts";

const STARTED_NS = 1_700_000_000_000_000_000n;
const DEFAULT_UID = 500;
const DEFAULT_GID = 501;

/** What a test's Riak, queues and outage memory hold; each field is read when asked. */
interface World {
  /** Riak's stats by path; a missing path is absent from Riak. */
  riak: Record<string, FileStat>;
  /** Riak cannot be asked: every stat fails as in an outage. */
  away?: boolean;
  /** The uploads pending, by path. */
  pending?: Record<string, PendingUpload>;
  /** Paths whose local file is the newest (open for writing through the mount). */
  localNewest?: Set<string>;
  madeWhileAway?: Record<string, FileStat>;
  movedWhileAway?: Record<string, SeenFile>;
  /** Mtimes of Riak directories whose entries changed here, not written to Riak yet. */
  directoryMtimes?: Record<string, bigint>;
}

/** A {@link Locator} under test and what it reads, for the test to look at or change. */
interface Fixture {
  locator: Locator;
  knowledge: RiakKnowledge;
  sessions: SessionTable;
  newToRiak: NewToRiak;
  /** The paths whose stat Riak was asked for, in order. */
  asked: string[];
  /** The mount's clock, in ms, moved by hand. */
  clock: { now: number };
}

function fileStat(path: string, size: number, mtimeNs = 5_000n): FileStat {
  return {
    ...rootStat(mtimeNs),
    path: Buffer.from(path.slice(1)),
    type: "file",
    size,
    mode: 0o640,
    uid: 10,
    gid: 20,
  };
}

function directoryStat(path: string, mtimeNs = 5_000n): FileStat {
  return { ...rootStat(mtimeNs), path: Buffer.from(path.slice(1)), mode: 0o750, uid: 10, gid: 20 };
}

function outage(): Error {
  return Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
}

/**
 * A {@link Locator} in `mode` over the source directory `source` (none: a Riak-only mode),
 * the spool directory `spool` and the fakes of `world`, with the real tables it reads
 * (knowledge, sessions, nodes, what was shown) and the real stat cache of {@link RiakCalls}.
 */
function locatorOf(
  mode: MountMode,
  source: string | undefined,
  spool: string,
  world: World,
): Fixture {
  const clock = { now: 1_000_000 };
  const newToRiak = new NewToRiak();
  const asked: string[] = [];
  const uploads = {
    newToRiak,
    pendingFor: (path: string) => world.pending?.[path],
    pendingPathsBelow: () => [],
    findPendingBelow: () => undefined,
  };
  const knowledge = new RiakKnowledge({
    mode,
    limits: { stats: 100, paths: 100 },
    entryTimeout: 1,
    now: () => clock.now,
    startedNs: STARTED_NS,
    uploads,
    defaultUid: DEFAULT_UID,
    defaultGid: DEFAULT_GID,
  });
  const riak = new RiakCalls({
    store: {
      tryStat: (path) => {
        asked.push(String(path));
        if (world.away) return Promise.reject(outage());
        return Promise.resolve(world.riak[String(path)]);
      },
    },
    health: { run: (_operation, _timeoutMs, request) => request() },
    uploads: {
      hasPending: () => false,
      hurry: () => {},
      settled: () => Promise.resolve(),
      settledBelow: () => Promise.resolve(),
      acknowledged: 0,
    },
    copies: { hold: () => Promise.resolve(() => {}), pause: () => Promise.resolve(() => {}) },
    logger: SILENT_LOGGER,
    riakTimeoutMs: 1_000,
    cache: { prime: () => {} },
    knowledge,
    now: () => clock.now,
  });
  const sessions = new SessionTable();
  const lstat = (path: string) =>
    source === undefined ? Promise.resolve(undefined) : lstatIfExists(join(source, path));
  const locator = new Locator({
    mode,
    source,
    sourceTree: { lstat, lstatAt: (local) => lstatIfExists(local) },
    spool: { pathOf: (name) => join(spool, name) },
    uploads,
    health: {
      get reachable() {
        return !world.away;
      },
    },
    riak,
    knowledge,
    sessions,
    localWriters: { localIsNewest: (path) => world.localNewest?.has(path) ?? false },
    whileAway: {
      madeWhileAway: (path) => world.madeWhileAway?.[path],
      directoryMovedWhileAway: () => undefined,
      movedWhileAway: (path) => world.movedWhileAway?.[path],
    },
    nodes: new NodeTable(),
    directoryTimes: { mtimeOf: (path) => world.directoryMtimes?.[path] },
    shown: new ShownToKernel(100),
    defaultUid: DEFAULT_UID,
    defaultGid: DEFAULT_GID,
    now: () => clock.now,
    startedNs: STARTED_NS,
    directoryMoveSettled: () => Promise.resolve(),
  });
  return { locator, knowledge, sessions, newToRiak, asked, clock };
}

/** A write session of `path` on the open file `handle` (a file of the test's). */
function writeSession(
  path: string,
  handle: WriteSession["handle"],
  extra: Partial<WriteSession> = {},
): WriteSession {
  return {
    path,
    staged: "staged-1",
    handle,
    refs: 1,
    dirty: false,
    committed: false,
    mode: 0o600,
    uid: 7,
    gid: 8,
    queue: Promise.resolve(),
    detached: false,
    ...extra,
  };
}

function isErrno(errno: number): (error: unknown) => boolean {
  return (error) => error instanceof FuseError && error.errno === errno;
}

/** Runs `body` with a fresh source and spool directory, removed afterwards. */
async function withDirectories(
  body: (source: string, spool: string) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "locator-"));
  try {
    const source = join(root, "source");
    const spool = join(root, "spool");
    await mkdir(source);
    await mkdir(spool);
    await body(source, spool);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Runs `body` with a handle open on an empty staged file of `spool`, closed afterwards. */
async function withStagedFile(
  spool: string,
  body: (handle: WriteSession["handle"]) => Promise<void>,
): Promise<void> {
  await writeFile(join(spool, "staged-1"), "");
  const handle = await open(join(spool, "staged-1"), "r+");
  try {
    await body(handle);
  } finally {
    await handle.close();
  }
}

Deno.test("an open write session is where its path is; pastSession looks past it", async () => {
  await withDirectories(async (_source, spool) => {
    const world: World = { riak: { "/f": fileStat("/f", 3) } };
    const { locator, sessions } = locatorOf(PRESETS.riak, undefined, spool, world);
    await withStagedFile(spool, async (handle) => {
      const session = writeSession("/f", handle);
      await sessions.starting("/f", () => Promise.resolve(session), () => {});
      const found = await locator.locate("/f");
      assert.equal(found.where, "open");
      assert.equal(found.where === "open" && found.session, session);
      const past = await locator.locate("/f", false, { pastSession: true });
      assert.equal(past.where, "riak");
      assert.equal(past.where === "riak" && past.stat.size, 3);
    });
  });
});

Deno.test("a pending upload's staged file comes before Riak's copy, while the spool has it", async () => {
  await withDirectories(async (_source, spool) => {
    const upload: PendingUpload = {
      id: 1,
      path: "/f",
      staged: "up-1",
      mode: 0o600,
      uid: 1,
      gid: 2,
      mtimeNs: "7000",
      size: 5,
    };
    const world: World = { riak: { "/f": fileStat("/f", 3) }, pending: { "/f": upload } };
    const { locator } = locatorOf(PRESETS.riak, undefined, spool, world);
    await writeFile(join(spool, "up-1"), "12345");
    const staged = await locator.locate("/f");
    assert.equal(staged.where, "spool");
    assert.equal(staged.where === "spool" && staged.stats.size, 5n);
    const attr = await locator.attrOf("/f", staged);
    assert.equal(attr.size, 5);
    assert.equal(attr.mode & 0o7777, 0o600);
    // Landed meanwhile: its staged file went, Riak has it.
    await unlink(join(spool, "up-1"));
    const landed = await locator.locate("/f");
    assert.equal(landed.where, "riak");
  });
});

Deno.test("reads=local: the source's file or ENOENT, Riak never asked", async () => {
  await withDirectories(async (source, spool) => {
    await writeFile(join(source, "a"), "abc");
    const world: World = { riak: { "/b": fileStat("/b", 1) } };
    const { locator, asked } = locatorOf(PRESETS.shadow, source, spool, world);
    const found = await locator.locate("/a");
    assert.equal(found.where, "local");
    assert.equal(found.where === "local" && found.stats.size, 3n);
    await assert.rejects(locator.locate("/b"), isErrno(Errno.ENOENT));
    const root = await locator.locate("/");
    assert.ok(root.where === "local" && root.stats.isDirectory());
    assert.deepEqual(asked, []);
  });
});

Deno.test("a file being written through the mount is the source's, where Riak is read first", async () => {
  await withDirectories(async (source, spool) => {
    await writeFile(join(source, "f"), "local bytes");
    const world: World = { riak: { "/f": fileStat("/f", 3) }, localNewest: new Set(["/f"]) };
    const { locator, asked } = locatorOf(PRESETS.migrate, source, spool, world);
    const newest = await locator.locate("/f");
    assert.equal(newest.where, "local");
    assert.deepEqual(asked, []);
    world.localNewest!.clear();
    const riak = await locator.locate("/f");
    assert.equal(riak.where, "riak");
    assert.deepEqual(asked, ["/f"]);
  });
});

Deno.test("while Riak is away: the source's copy unverified, what Riak was seen to hold as it was, other names ENOENT and unseen", async () => {
  await withDirectories(async (source, spool) => {
    await writeFile(join(source, "a"), "abc");
    const world: World = {
      riak: { "/d": directoryStat("/d"), "/f": fileStat("/f", 9, 6_000n) },
    };
    const { locator: migrate } = locatorOf(PRESETS.migrate, source, spool, world);
    const riakOnly = locatorOf(PRESETS.riak, undefined, spool, world);
    await riakOnly.locator.locate("/d");
    await riakOnly.locator.locate("/f");
    world.away = true;
    riakOnly.clock.now += 5_000; // The cached stats expired.

    const local = await migrate.locate("/a");
    assert.ok(local.where === "local" && local.unverified === true);

    const directory = await riakOnly.locator.locate("/d");
    assert.ok(directory.where === "riak" && directory.stat.type === "directory");
    const file = await riakOnly.locator.locate("/f");
    assert.ok(file.where === "riak" && file.stale === true);
    assert.equal(file.stat.size, 9);
    assert.equal(file.stat.mtimeNs, 6_000n);
    const root = await riakOnly.locator.locate("/");
    assert.ok(root.where === "riak" && root.stat.mtimeNs === STARTED_NS);

    assert.equal(riakOnly.knowledge.unseenMark("/new").unseen, undefined);
    await assert.rejects(riakOnly.locator.locate("/new"), isErrno(Errno.ENOENT));
    assert.equal(riakOnly.knowledge.unseenMark("/new").unseen, true);

    // Back: Riak's answer stands, and the name is no longer unseen.
    world.away = false;
    await assert.rejects(riakOnly.locator.locate("/new"), isErrno(Errno.ENOENT));
    assert.equal(riakOnly.knowledge.unseenMark("/new").unseen, undefined);
  });
});

Deno.test("made while Riak is away is Riak's; moved while away is shown as it was until Riak is back", async () => {
  await withDirectories(async (_source, spool) => {
    const seen: SeenFile = { size: 4, mtimeNs: "8000", mode: 0o644, uid: 3, gid: 4 };
    const world: World = {
      riak: {},
      away: true,
      madeWhileAway: { "/m": directoryStat("/m") },
      movedWhileAway: { "/mv": seen },
    };
    const { locator, asked } = locatorOf(PRESETS.riak, undefined, spool, world);
    const made = await locator.locate("/m");
    assert.ok(made.where === "riak" && made.stat.type === "directory");
    const moved = await locator.locate("/mv");
    assert.ok(moved.where === "riak" && moved.stale === true && moved.stat.size === 4);
    assert.deepEqual(asked, []);
    world.away = false;
    world.riak["/mv"] = fileStat("/mv", 4, 8_000n);
    const back = await locator.locate("/mv");
    assert.ok(back.where === "riak" && back.stale === undefined);
    assert.deepEqual(asked, ["/mv"]);
  });
});

Deno.test("an absence Riak answered is asked again once the source lost the file, not right after both lacked it", async () => {
  await withDirectories(async (source, spool) => {
    await writeFile(join(source, "f"), "abc");
    const world: World = { riak: {} };
    const { locator, asked, clock } = locatorOf(PRESETS.migrate, source, spool, world);
    assert.equal((await locator.locate("/f")).where, "local");
    assert.deepEqual(asked, ["/f"]);
    // A pre-warm with --delete-local moved it into Riak within the entry timeout.
    world.riak["/f"] = fileStat("/f", 3);
    await unlink(join(source, "f"));
    clock.now += 10;
    const moved = await locator.locate("/f");
    assert.equal(moved.where, "riak");
    assert.deepEqual(asked, ["/f", "/f"]);

    // Both lacked /g: the CREATE right after its LOOKUP takes the absence as it is.
    await assert.rejects(locator.locate("/g"), isErrno(Errno.ENOENT));
    world.riak["/g"] = fileStat("/g", 1);
    clock.now += 50;
    await assert.rejects(locator.locate("/g"), isErrno(Errno.ENOENT));
    assert.deepEqual(asked, ["/f", "/f", "/g"]);
    // Later (still within the entry timeout), Riak is asked once more.
    clock.now += 100;
    assert.equal((await locator.locate("/g")).where, "riak");
    assert.deepEqual(asked, ["/f", "/f", "/g", "/g"]);
  });
});

Deno.test("exists: Riak's absence for a new file is remembered; EEXIST over a name taken", async () => {
  await withDirectories(async (_source, spool) => {
    const world: World = { riak: { "/f": fileStat("/f", 3) } };
    const { locator, newToRiak, knowledge } = locatorOf(PRESETS.riak, undefined, spool, world);
    assert.equal(await locator.exists("/f"), true);
    await assert.rejects(locator.refuseExisting("/f"), isErrno(Errno.EEXIST));
    assert.equal(await locator.exists("/n"), false);
    assert.equal(newToRiak.isNew("/n"), false);
    assert.equal(await locator.exists("/n", true), false);
    assert.equal(newToRiak.isNew("/n"), true);
    // The absence just cached would hide the file about to be made.
    assert.equal(knowledge.cached("/n"), undefined);
    await locator.refuseExisting("/n");
  });
});

Deno.test("exists while Riak is away: a name Riak was seen to hold is answered from the source, or as it was seen", async () => {
  await withDirectories(async (source, spool) => {
    const world: World = { riak: { "/k": fileStat("/k", 3) } };
    const migrate = locatorOf(PRESETS.migrate, source, spool, world);
    const riakOnly = locatorOf(PRESETS.riak, undefined, spool, world);
    await migrate.locator.locate("/k");
    await riakOnly.locator.locate("/k");
    world.away = true;
    migrate.clock.now += 5_000;
    riakOnly.clock.now += 5_000;
    // Known in Riak, and not a file seen (migrate keeps none): locate fails with the outage.
    await assert.rejects(migrate.locator.locate("/k"), isOutageError);
    assert.equal(await migrate.locator.exists("/k"), false);
    await writeFile(join(source, "k"), "x");
    assert.equal(await migrate.locator.exists("/k"), true);
    // The Riak-only mode shows the file it saw.
    assert.equal(await riakOnly.locator.exists("/k"), true);
    await assert.rejects(riakOnly.locator.refuseExisting("/k"), isErrno(Errno.EEXIST));
  });
});

Deno.test("a Riak directory's attributes show the mtime its entries' changes gave it here", async () => {
  await withDirectories(async (_source, spool) => {
    const world: World = {
      riak: { "/d": directoryStat("/d", 5_000_000_000n) },
      directoryMtimes: { "/d": 9_000_000_000n },
    };
    const { locator } = locatorOf(PRESETS.riak, undefined, spool, world);
    const attr = await locator.attrOf("/d", await locator.locate("/d"));
    assert.equal(attr.mode, S_IFDIR | 0o750);
    assert.deepEqual([attr.mtime.sec, attr.uid, attr.gid], [9, 10, 20]);
    // An older one does not go back.
    world.directoryMtimes!["/d"] = 1_000_000_000n;
    const older = await locator.attrWhereLocated("/d", await locator.locate("/d"));
    assert.equal(older.mtime.sec, 5);
  });
});

Deno.test("an open session's attributes are its own; one let go meanwhile is found where its file is", async () => {
  await withDirectories(async (_source, spool) => {
    const world: World = { riak: { "/f": fileStat("/f", 3) } };
    const { locator } = locatorOf(PRESETS.riak, undefined, spool, world);
    await withStagedFile(spool, async (handle) => {
      const session = writeSession("/f", handle, {
        unstaged: { size: 3 },
        mtimeNs: 2_000_000_000n,
      });
      const attr = await locator.attrOf("/f", { where: "open", session });
      assert.deepEqual([attr.size, attr.mode & 0o7777, attr.uid, attr.gid], [3, 0o600, 7, 8]);
      assert.equal(attr.mtime.sec, 2);
      session.closed = true;
      const after = await locator.attrOf("/f", { where: "open", session });
      assert.deepEqual([after.size, after.mode & 0o7777, after.uid], [3, 0o640, 10]);
    });
  });
});

Deno.test("a reader of a session not staged yet reads where its bytes are", async () => {
  await withDirectories(async (_source, spool) => {
    const world: World = { riak: { "/f": fileStat("/f", 3) } };
    const { locator, sessions } = locatorOf(PRESETS.riak, undefined, spool, world);
    await withStagedFile(spool, async (handle) => {
      const session = writeSession("/f", handle, { unstaged: { size: 3 } });
      await sessions.starting("/f", () => Promise.resolve(session), () => {});
      const unstaged = await locator.locateForReading("/f");
      assert.equal(unstaged.located.where, "riak");
      assert.equal(unstaged.unstaged, session);
      session.unstaged = undefined;
      const staged = await locator.locateForReading("/f");
      assert.equal(staged.located.where, "open");
      assert.equal(staged.unstaged, undefined);
    });
  });
});

Deno.test("a directory Riak keeps no attributes for shows its local directory's, else the mount's defaults", async () => {
  await withDirectories(async (source, spool) => {
    await mkdir(join(source, "d"), { mode: 0o711 });
    const bare: FileStat = { ...directoryStat("/d", 0n), managed: false };
    const world: World = { riak: { "/d": bare } };
    const withSource = await locatorOf(PRESETS.migrate, source, spool, world).locator.locate("/d");
    assert.ok(withSource.where === "riak");
    assert.equal(withSource.stat.mode & 0o7777, 0o711);
    assert.notEqual(withSource.stat.mtimeNs, 0n);
    const riakOnly = await locatorOf(PRESETS.riak, undefined, spool, world).locator.locate("/d");
    assert.ok(riakOnly.where === "riak");
    assert.deepEqual(
      [riakOnly.stat.uid, riakOnly.stat.gid, riakOnly.stat.mtimeNs, riakOnly.stat.managed],
      [DEFAULT_UID, DEFAULT_GID, STARTED_NS, true],
    );
  });
});
