import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import type { FileStat } from "../store/store.ts";
import { rootStat } from "./attributes.ts";
import type { JournalEntry, NewEntry, SeenFile } from "./journal.ts";
import type { Located } from "./located.ts";
import { SILENT_LOGGER } from "./log.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import { ROOT_CTX } from "./_overlay_fixture.ts";
import { NamesWhileAway } from "./names_while_away.ts";
import { NewToRiak } from "./new_to_riak.ts";
import { RiakKnowledge } from "./riak_knowledge.ts";
import { SessionTable } from "./session_table.ts";

const NOW_MS = 1_700_000_000_000;

const ctx = ROOT_CTX;

/** What a test's queue, Riak and overlay hold; each field is read when asked. */
interface World {
  reachable?: boolean;
  /** The newest journal entry of each path (an upload or a mirror job). */
  newest?: Record<string, JournalEntry>;
  /** Where the locator finds each path; absent: ENOENT. */
  located?: Record<string, Located>;
  /** Names on their way into each directory (uploads, directories made). */
  onTheirWay?: Record<string, string[]>;
}

/** A {@link NamesWhileAway} under test and what it did, for the test to look at. */
interface Fixture {
  names: NamesWhileAway;
  knowledge: RiakKnowledge;
  /** The journal lines submitted, each the entries of one line. */
  journaled: NewEntry[][];
  /** The overlay's steps called back, in order (name and paths). */
  calls: string[];
}

function directoryStat(path: string): FileStat {
  return { ...rootStat(5_000n), path: Buffer.from(path.slice(1)), mode: 0o750, uid: 1, gid: 2 };
}

function isErrno(errno: number): (error: unknown) => boolean {
  return (error) => error instanceof FuseError && error.errno === errno;
}

/**
 * A {@link NamesWhileAway} in `mode` (default riak, Riak-only: no source) over the fakes of
 * `world`, with the real tables it reads (knowledge, sessions); the overlay's steps it calls
 * back are recorded in `calls`.
 */
function namesOf(world: World, mode: MountMode = PRESETS.riak): Fixture {
  const journaled: NewEntry[][] = [];
  const calls: string[] = [];
  const newest = () => world.newest ?? {};
  const uploads = {
    newToRiak: new NewToRiak(),
    pendingFor: () => undefined,
    pendingPathsBelow: (path: string) =>
      Object.keys(newest()).filter((at) => at === path || at.startsWith(`${path}/`)),
    findPendingBelow: () => undefined,
  };
  const knowledge = new RiakKnowledge({
    mode,
    limits: { stats: 100, paths: 100 },
    entryTimeout: 1,
    now: () => NOW_MS,
    startedNs: 0n,
    uploads,
  });
  const call = (name: string) => (...args: unknown[]) => {
    calls.push(`${name} ${args.filter((arg) => typeof arg === "string").join(" ")}`);
  };
  const names = new NamesWhileAway({
    mode,
    source: undefined,
    sourceTree: {
      lstat: () => Promise.resolve(undefined),
      localPath: (path) => Promise.resolve(path),
      unlink: () => Promise.resolve(),
    },
    uploads: {
      submitTogether: (entries) => {
        journaled.push([...entries]);
        return Promise.resolve([]);
      },
      pendingFor: () => undefined,
      newestOf: (path) => newest()[path],
      pendingPathsBelow: uploads.pendingPathsBelow,
      hasPending: (path) => newest()[path] !== undefined,
    },
    health: {
      get reachable() {
        return world.reachable ?? false;
      },
    },
    knowledge,
    sessions: new SessionTable(),
    whileAway: {
      movedWhileAway: () => undefined,
      removalWhileAway: (path) => ({ path, mirror: "remove" }),
      removalRenamedOver: () => [],
      versionRenamedOver: () => undefined,
      uploadMovedTo: (upload, to) => ({ ...upload, path: to }),
      awayMark: () => ({}),
    },
    locator: {
      locate: (path) => {
        const found = world.located?.[path];
        return found ? Promise.resolve(found) : Promise.reject(new FuseError(Errno.ENOENT));
      },
      exists: (path) => Promise.resolve(world.located?.[path] !== undefined),
    },
    listing: {
      namesOnTheirWay: (path) =>
        new Map((world.onTheirWay?.[path] ?? []).map((name) => [name, 0o100000])),
    },
    removedWhileOpen: { copyOpenContent: (path) => Promise.resolve(call("copyOpenContent")(path)) },
    directoryTimes: { forget: (path) => Promise.resolve(call("forgetDirectoryTime")(path)) },
    logger: SILENT_LOGGER,
    now: () => NOW_MS,
    changed: call("changed"),
    forgetPath: call("forgetPath"),
    entriesChanged: call("entriesChanged"),
    renamed: call("renamed"),
    moveSession: call("moveSession"),
    renameLocally: (from, to) => Promise.resolve(call("renameLocally")(from, to)),
    moveOpenFiles: (from, to) => Promise.resolve(call("moveOpenFiles")(from, to)),
    refuseRenameOver: (from, to) => Promise.resolve(call("refuseRenameOver")(from, to)),
    unlinkNow: (path) => Promise.resolve(call("unlinkNow")(path)),
    keepBytesOf: () => Promise.resolve(),
    stageNow: () => Promise.resolve(),
    uploadOf: () => Promise.reject(new Error("no session's upload in these tests")),
  });
  return { names, knowledge, journaled, calls };
}

/** Riak was seen to hold the file `path` as `seen` (looked up before the outage). */
function seeFile(knowledge: RiakKnowledge, path: string, seen: SeenFile): void {
  knowledge.rememberInRiak(path, true);
  knowledge.rememberFileSeen(path, seen);
}

const SEEN: SeenFile = { size: 4, mtimeNs: "8000", mode: 0o644, uid: 3, gid: 4 };

Deno.test("mkdir while Riak is away is journaled with its attributes, unless Riak was seen to hold the name", async () => {
  const { names, knowledge, journaled, calls } = namesOf({});
  await names.mkdirWhileAway("/new", { mode: 0o755, uid: 1, gid: 2 });
  assert.deepEqual(journaled, [[{
    path: "/new",
    mirror: "directory",
    set: { mode: 0o755, uid: 1, gid: 2, mtimeNs: String(BigInt(NOW_MS) * 1_000_000n) },
  }]]);
  assert.deepEqual(calls, ["changed /new"]);

  knowledge.markUnseen("/unseen");
  await names.mkdirWhileAway("/unseen", { mode: 0o700, uid: 1, gid: 2 });
  assert.equal(journaled[1][0].unseen, true);

  knowledge.rememberInRiak("/held", true);
  await assert.rejects(
    names.mkdirWhileAway("/held", { mode: 0o755, uid: 1, gid: 2 }),
    isErrno(Errno.EIO),
  );
  assert.equal(journaled.length, 2);
});

Deno.test("unlink while Riak is away of a file Riak was seen to hold removes that version; any other goes the usual way", async () => {
  const { names, knowledge, journaled, calls } = namesOf({});
  seeFile(knowledge, "/d/f", SEEN);
  await names.unlinkWhileAway("/d/f", ctx);
  assert.deepEqual(journaled, [[{
    path: "/d/f",
    mirror: "remove",
    removes: { size: 4, mtimeNs: "8000" },
  }]]);
  assert.deepEqual(calls, ["copyOpenContent /d/f", "forgetPath /d/f", "entriesChanged /d"]);

  calls.length = 0;
  await names.unlinkWhileAway("/d/unknown", ctx);
  assert.equal(journaled.length, 1);
  assert.deepEqual(calls, ["unlinkNow /d/unknown"]);
});

Deno.test("rmdir while Riak is away: only of a directory whose whole listing was read, and empty", async () => {
  const world: World = {};
  const { names, knowledge, journaled, calls } = namesOf(world);
  // Never seen in Riak, or seen with its listing not read: the mount knows too little.
  assert.equal(await names.rmdirSeenWhileAway("/d"), false);
  knowledge.rememberStat("/d", directoryStat("/d"), NOW_MS);
  assert.equal(await names.rmdirSeenWhileAway("/d"), false);

  knowledge.listed.listed("/d", ["a"]);
  await assert.rejects(names.rmdirSeenWhileAway("/d"), isErrno(Errno.ENOTEMPTY));
  // Its one name removed through the mount (the removal on its way), but a file on its way in.
  world.newest = { "/d/a": { id: 1, path: "/d/a", mirror: "remove" } };
  world.onTheirWay = { "/d": ["b"] };
  await assert.rejects(names.rmdirSeenWhileAway("/d"), isErrno(Errno.ENOTEMPTY));
  assert.equal(journaled.length, 0);

  world.onTheirWay = {};
  assert.equal(await names.rmdirSeenWhileAway("/d"), true);
  assert.deepEqual(journaled, [[{ path: "/d", mirror: "remove", directory: true }]]);
  assert.deepEqual(calls, ["forgetDirectoryTime /d", "forgetPath /d", "entriesChanged /"]);

  // Riak answers: it is Riak's to say.
  world.reachable = true;
  assert.equal(await names.rmdirSeenWhileAway("/d"), false);
});

Deno.test("rename while Riak is away of a file Riak was seen to hold journals its move; of an unknown one EIO", async () => {
  const { names, knowledge, journaled, calls } = namesOf({});
  seeFile(knowledge, "/f", SEEN);
  await names.renameWhileAway("/f", "/g", ctx, () => {});
  assert.deepEqual(journaled, [[
    { path: "/g", mirror: "move", moves: { ...SEEN, from: "/f" } },
    { path: "/f", mirror: "remove", removes: { size: 4, mtimeNs: "8000" }, movedAway: true },
  ]]);
  assert.deepEqual(calls, ["refuseRenameOver /f /g", "moveOpenFiles /f /g", "renamed /f /g"]);

  await assert.rejects(names.renameWhileAway("/x", "/y", ctx, () => {}), isErrno(Errno.EIO));
  assert.equal(journaled.length, 1);
});

Deno.test("a directory's rename while Riak is away waits for what the gate let through below it, and holds back what comes after", async () => {
  const made: JournalEntry = { id: 1, path: "/d", mirror: "directory", set: { mode: 0o755 } };
  const world: World = {
    newest: { "/d": made },
    located: { "/d": { where: "riak", stat: directoryStat("/d") } },
  };
  const { names, journaled, calls } = namesOf(world);
  let letGo!: () => void;
  const before = names.gated(() => ["/d/x"], async (paths) => {
    await new Promise<void>((resolve) => letGo = resolve);
    calls.push(`before ${paths.join(" ")}`);
  });
  const renamed = names.gated(
    () => ["/d", "/e"],
    (_paths, ungate) => names.renameWhileAway("/d", "/e", ctx, ungate),
  );
  // Every step of the rename here is a promise resolved at once: one turn of the event loop
  // takes it as far as it goes.
  await new Promise((resolve) => setTimeout(resolve, 0));
  // The rename is under way: what comes now at or below its names waits for it, then finds
  // its paths again (the rename moved them).
  const after = names.gated(
    () => [calls.includes("renamed /d /e") ? "/e/y" : "/d/y"],
    (paths) => {
      calls.push(`after ${paths.join(" ")}`);
      return Promise.resolve();
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(journaled, []);
  assert.deepEqual(calls, []);
  letGo();
  await Promise.all([before, renamed, after]);
  assert.deepEqual(journaled, [[
    { path: "/d", mirror: "remove", directory: true },
    { path: "/e", mirror: "directory", set: { mode: 0o755 } },
  ]]);
  assert.deepEqual(calls, [
    "before /d/x",
    "moveOpenFiles /d /e",
    "renamed /d /e",
    "after /e/y",
  ]);
});
