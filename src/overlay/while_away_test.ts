import assert from "node:assert/strict";
import type { JournalEntry, PendingMirror, PendingUpload, SeenFile } from "./journal.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import type { WriteSession } from "./session_table.ts";
import { WhileAway } from "./while_away.ts";

const STARTED_NS = 1_700_000_000_000_000_000n;

/** A {@link WhileAway} over a fake queue (each path's jobs, oldest first) and fake tables. */
function whileAway(
  { mode = PRESETS.riak, jobs = {}, reachable = false, seen = {}, unseen = [] }: {
    mode?: MountMode;
    jobs?: Record<string, JournalEntry[]>;
    reachable?: boolean;
    seen?: Record<string, SeenFile>;
    unseen?: string[];
  } = {},
): WhileAway {
  const jobsOf = (path: string) => jobs[path] ?? [];
  const isUpload = (entry: JournalEntry): entry is PendingUpload => !("mirror" in entry);
  return new WhileAway({
    mode,
    uploads: {
      newestOf: (path) => jobsOf(path).at(-1),
      pendingFor: (path) => {
        const newest = jobsOf(path).at(-1);
        return newest && isUpload(newest) ? newest : undefined;
      },
      pendingUploadsOf: (path) => jobsOf(path).filter(isUpload),
    },
    health: { reachable },
    knowledge: {
      fileSeen: (path) => seen[path],
      unseenMark: (path) => unseen.includes(path) ? { unseen: true } : {},
    },
    startedNs: STARTED_NS,
  });
}

/** A staged upload of `path` journaled with `fields`. */
function upload(path: string, fields: Partial<PendingUpload> = {}): PendingUpload {
  return {
    id: 1,
    path,
    staged: "s1",
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtimeNs: "5000",
    size: 5,
    ...fields,
  };
}

/** A mirror job of `path` journaled with `fields`. */
function mirror(path: string, fields: Omit<PendingMirror, "id" | "path">): PendingMirror {
  return { id: 2, path, ...fields };
}

const SEEN: SeenFile = { size: 3, mtimeNs: "3000", mode: 0o600, uid: 7, gid: 8 };

Deno.test("names are journaled only in modes that stage writes, all of them while Riak is away", () => {
  assert.equal(whileAway({ mode: PRESETS.migrate }).journalsNames("/a"), false);
  assert.equal(whileAway({ mode: PRESETS.drain }).journalsNames("/a"), true);
  assert.equal(whileAway({ mode: PRESETS.riak }).journalsNames("/a"), true);
});

Deno.test("once Riak is back, a name stays journaled while a change of it is on its way", () => {
  for (const change of ["remove", "directory", "move"] as const) {
    const queries = whileAway({
      reachable: true,
      jobs: { "/a": [mirror("/a", { mirror: change })] },
    });
    assert.equal(queries.journalsNames("/a"), true, change);
  }
  const others = whileAway({
    reachable: true,
    jobs: { "/u": [upload("/u")], "/t": [mirror("/t", { mirror: "attributes" })] },
  });
  assert.equal(others.journalsNames("/u"), false);
  assert.equal(others.journalsNames("/t"), false);
  assert.equal(others.journalsNames("/none"), false);
});

Deno.test("a directory made while away shows its journaled attributes, else the mount's start", () => {
  const queries = whileAway({
    jobs: {
      "/d": [mirror("/d", {
        mirror: "directory",
        set: { mode: 0o750, uid: 5, gid: 6, mtimeNs: "9000000001" },
      })],
      "/bare": [mirror("/bare", { mirror: "directory" })],
    },
  });
  const made = queries.madeWhileAway("/d")!;
  assert.equal(made.type, "directory");
  assert.equal(made.path.toString(), "d");
  assert.deepEqual([made.mode, made.uid, made.gid, made.mtimeNs], [0o750, 5, 6, 9000000001n]);
  const bare = queries.madeWhileAway("/bare")!;
  assert.deepEqual([bare.mode, bare.uid, bare.gid, bare.mtimeNs], [0o755, 0, 0, STARTED_NS]);
});

Deno.test("a directory made while away is that no longer once a later job of the name is newest", () => {
  const queries = whileAway({
    jobs: { "/d": [mirror("/d", { mirror: "directory" }), mirror("/d", { mirror: "remove" })] },
  });
  assert.equal(queries.madeWhileAway("/d"), undefined);
  assert.equal(queries.madeWhileAway("/never"), undefined);
});

Deno.test("a file moved while away is the version moved, without its old name", () => {
  const queries = whileAway({
    jobs: {
      "/to": [mirror("/to", { mirror: "move", moves: { ...SEEN, from: "/from" } })],
      "/over": [
        mirror("/over", { mirror: "move", moves: { ...SEEN, from: "/from" } }),
        upload("/over"),
      ],
    },
  });
  assert.deepEqual(queries.movedWhileAway("/to"), SEEN);
  assert.equal(queries.movedWhileAway("/over"), undefined, "a write after the move is newest");
  assert.equal(queries.directoryMovedWhileAway("/to"), undefined);
});

Deno.test("a directory moved while away shows the attributes journaled with the move", () => {
  const movesDirectory = { from: "/old", mode: 0o700, uid: 3, gid: 4, mtimeNs: "42" };
  const queries = whileAway({
    jobs: { "/new": [mirror("/new", { mirror: "move", movesDirectory })] },
  });
  const moved = queries.directoryMovedWhileAway("/new")!;
  assert.equal(moved.type, "directory");
  assert.equal(moved.path.toString(), "new");
  assert.deepEqual([moved.mode, moved.uid, moved.gid, moved.mtimeNs], [0o700, 3, 4, 42n]);
  assert.equal(queries.movedWhileAway("/new"), undefined);
  assert.equal(queries.madeWhileAway("/new"), undefined);
});

Deno.test("Riak's version under a name is the open session's, else the first pending upload's that knows it", () => {
  const replaces = { size: 9, mtimeNs: "900" };
  const queries = whileAway({
    jobs: {
      "/r": [upload("/r"), upload("/r", { replaces }), upload("/r", { creates: true })],
      "/c": [upload("/c", { creates: true })],
      "/old": [upload("/old")],
    },
  });
  assert.deepEqual(queries.versionInRiak("/r", undefined), replaces);
  assert.equal(queries.versionInRiak("/c", undefined), "nothing");
  assert.equal(queries.versionInRiak("/old", undefined), undefined, "an older riakfs's line");
  const session = { inRiak: { size: 1, mtimeNs: "1" } } as WriteSession;
  assert.deepEqual(queries.versionInRiak("/r", session), { size: 1, mtimeNs: "1" });
});

Deno.test("a rename over a name only Riak holds removes the version seen or moved there", () => {
  const queries = whileAway({
    seen: { "/seen": SEEN },
    jobs: { "/moved": [mirror("/moved", { mirror: "move", moves: { ...SEEN, from: "/x" } })] },
  });
  const version = { size: SEEN.size, mtimeNs: SEEN.mtimeNs };
  for (const to of ["/seen", "/moved"]) {
    assert.deepEqual(queries.versionRenamedOver(to, undefined), version);
    assert.deepEqual(queries.removalRenamedOver(to, undefined), [
      { path: to, mirror: "remove", removes: version },
    ]);
  }
  assert.equal(queries.versionRenamedOver("/unknown", undefined), undefined);
  assert.deepEqual(queries.removalRenamedOver("/unknown", undefined), []);
});

Deno.test("a rename over a staged name removes what its uploads go over, with their versions", () => {
  const replaces = { size: 9, mtimeNs: "900" };
  const queries = whileAway({
    seen: { "/staged": SEEN },
    jobs: { "/staged": [upload("/staged", { replaces, size: 5, mtimeNs: "5000" })] },
  });
  assert.deepEqual(queries.versionRenamedOver("/staged", undefined), replaces);
  assert.deepEqual(queries.removalRenamedOver("/staged", undefined), [{
    path: "/staged",
    mirror: "remove",
    removes: replaces,
    // Its own upload, and the version seen since: an upload of it that landed.
    ours: [{ size: 5, mtimeNs: "5000" }, { size: SEEN.size, mtimeNs: SEEN.mtimeNs }],
  }]);
});

Deno.test("a rename over a session that created its file removes only the mount's own", () => {
  const session = { inRiak: "nothing" } as WriteSession;
  const queries = whileAway({ jobs: { "/new": [upload("/new", { creates: true })] } });
  assert.equal(queries.versionRenamedOver("/new", session), "nothing");
  assert.deepEqual(queries.removalRenamedOver("/new", session), [{
    path: "/new",
    mirror: "remove",
    created: true,
    ours: [{ size: 5, mtimeNs: "5000" }],
  }]);
});

Deno.test("a removal that knows no version of Riak's file lists the uploads' only under an unseen name", () => {
  const jobs = { "/u": [upload("/u")] };
  assert.deepEqual(whileAway({ jobs }).removalWhileAway("/u", undefined), {
    path: "/u",
    mirror: "remove",
  });
  assert.deepEqual(whileAway({ jobs, unseen: ["/u"] }).removalWhileAway("/u", undefined), {
    path: "/u",
    mirror: "remove",
    unseen: true,
    ours: [{ size: 5, mtimeNs: "5000" }],
  });
});

Deno.test("an upload moved with its directory keeps its bytes and takes the new name's marks", () => {
  const staged = upload("/d/f", {
    unseen: true,
    supersedes: { dev: "1", ino: "2", size: "5", mtimeNs: "5000", ctimeNs: "5000" },
    replaces: { size: 9, mtimeNs: "900" },
    away: true,
    atimeNs: "4000",
  });
  const bytes = {
    staged: "s1",
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtimeNs: "5000",
    atimeNs: "4000",
    size: 5,
  };
  assert.deepEqual(whileAway({ reachable: true }).uploadMovedTo(staged, "/e/f"), {
    ...bytes,
    path: "/e/f",
  });
  assert.deepEqual(whileAway({ unseen: ["/e/f"] }).uploadMovedTo(staged, "/e/f"), {
    ...bytes,
    path: "/e/f",
    unseen: true,
    away: true,
  });
});

Deno.test("uploads journaled while Riak is away are marked away", () => {
  assert.deepEqual(whileAway({ reachable: false }).awayMark(), { away: true });
  assert.deepEqual(whileAway({ reachable: true }).awayMark(), {});
});
