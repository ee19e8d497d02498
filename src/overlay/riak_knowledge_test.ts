import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { FileStat } from "../store/store.ts";
import { rootStat } from "./attributes.ts";
import type { PendingUpload, SeenFile } from "./journal.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import { NewToRiak } from "./new_to_riak.ts";
import { RiakKnowledge } from "./riak_knowledge.ts";

const STARTED_NS = 1_700_000_000_000_000_000n;
const ENTRY_TIMEOUT_S = 1;

/** A clock the tests move by hand, in ms. */
interface Clock {
  now: number;
}

/**
 * A {@link RiakKnowledge} in `mode` (default riak, which writes Riak only) over a fake queue
 * whose pending uploads are `pending` (by path), with tables bounded by `limits`.
 */
function knowledge(
  {
    mode = PRESETS.riak,
    limits = { stats: 100, paths: 100 },
    entryTimeout = ENTRY_TIMEOUT_S,
    pending = {},
    clock = { now: 1_000 },
  }: {
    mode?: MountMode;
    limits?: { stats: number; paths: number };
    entryTimeout?: number;
    pending?: Record<string, PendingUpload>;
    clock?: Clock;
  } = {},
): { known: RiakKnowledge; newToRiak: NewToRiak } {
  const newToRiak = new NewToRiak();
  const known = new RiakKnowledge({
    mode,
    limits,
    entryTimeout,
    now: () => clock.now,
    startedNs: STARTED_NS,
    uploads: {
      newToRiak,
      pendingPathsBelow: (path) => Object.keys(pending).filter((at) => isAtOrBelow(at, path)),
      pendingFor: (path) => pending[path],
      findPendingBelow: (path, wanted = () => true) =>
        Object.keys(pending).find((at) => at !== path && isAtOrBelow(at, path) && wanted(at)),
    },
    defaultUid: 500,
    defaultGid: 501,
  });
  return { known, newToRiak };
}

/** Whether `path` is `directory` or below it. */
function isAtOrBelow(path: string, directory: string): boolean {
  return directory === "/" || path === directory || path.startsWith(`${directory}/`);
}

/** Riak's stat of a file at `path`. */
function riakFile(path: string, fields: Partial<FileStat> = {}): FileStat {
  return {
    ...rootStat(5_000n),
    path: Buffer.from(path.slice(1)),
    type: "file",
    size: 3,
    sha256: "ab".repeat(32),
    mode: 0o644,
    uid: 7,
    gid: 8,
    ...fields,
  };
}

/** Riak's stat of a directory at `path`. */
function riakDirectory(path: string): FileStat {
  return { ...rootStat(6_000n), path: Buffer.from(path.slice(1)) };
}

/** A staged upload of `path` by `uid`. */
function upload(path: string, uid = 1000): PendingUpload {
  return { id: 1, path, staged: "s1", mode: 0o644, uid, gid: uid + 1, mtimeNs: "9", size: 1 };
}

const SEEN: SeenFile = { size: 3, mtimeNs: "5000", mode: 0o644, uid: 7, gid: 8 };

/** Which of `paths` the knowledge holds as known in Riak. */
function knownOf(known: RiakKnowledge, paths: string[]): string[] {
  return paths.filter((path) => known.isKnownInRiak(path));
}

Deno.test("names known in Riak are bounded, the one remembered longest ago going first", () => {
  const { known } = knowledge({ limits: { stats: 100, paths: 2 } });
  known.rememberInRiak("/a", true);
  known.rememberInRiak("/b", true);
  known.rememberInRiak("/a", true); // Seen again: the newest now.
  known.rememberInRiak("/c", true);
  assert.deepEqual(knownOf(known, ["/a", "/b", "/c"]), ["/a", "/c"]);
  assert.equal(known.sizes().knownInRiak, 2);
  known.rememberInRiak("/a", false);
  assert.deepEqual(knownOf(known, ["/a", "/b", "/c"]), ["/c"]);
});

Deno.test("files seen are bounded by the stats limit, the oldest going first", () => {
  const { known } = knowledge({ limits: { stats: 2, paths: 100 } });
  for (const path of ["/a", "/b", "/a", "/c"]) known.rememberFileSeen(path, SEEN);
  assert.equal(known.fileSeen("/b"), undefined);
  assert.deepEqual(known.fileSeen("/a"), SEEN);
  assert.deepEqual(known.fileSeen("/c"), SEEN);
  assert.equal(known.sizes().riakFilesSeen, 2);
});

Deno.test("a file seen keeps the version as shown, and only in modes that write Riak only", () => {
  const { known } = knowledge();
  known.rememberFileSeen("/a", riakFile("/a", { managed: false, atimeNs: 4_000n }));
  assert.deepEqual(known.fileSeen("/a"), {
    size: 3,
    mtimeNs: "5000",
    mode: 0o644,
    uid: 500,
    gid: 501,
    atimeNs: "4000",
  });
  known.rememberFileSeen("/a", riakDirectory("/a"));
  assert.equal(known.fileSeen("/a"), undefined, "no file there any more");

  const mirroring = knowledge({ mode: PRESETS.migrate }).known;
  mirroring.rememberFileSeen("/a", SEEN);
  assert.equal(mirroring.fileSeen("/a"), undefined);
});

Deno.test("Riak's answers are cached for the entry timeout, the expired and the oldest going first", () => {
  const clock = { now: 1_000 };
  const { known } = knowledge({ limits: { stats: 2, paths: 100 }, clock });
  known.rememberStat("/a", riakFile("/a"), clock.now);
  known.rememberStat("/b", undefined, clock.now);
  assert.equal(known.cached("/a")?.expires, 2_000);
  assert.equal(known.cached("/b")?.stat, undefined);
  known.rememberStat("/c", undefined, clock.now); // Over the bound: /a goes.
  assert.equal(known.cached("/a"), undefined);
  assert.deepEqual([known.cached("/b")?.expires, known.cached("/c")?.expires], [2_000, 2_000]);
  clock.now = 2_500; // Both expired: a new answer drops them.
  known.rememberStat("/d", undefined, clock.now);
  assert.deepEqual([known.cached("/b"), known.cached("/c")], [undefined, undefined]);
  assert.equal(known.sizes().statCache, 1);
  known.uncache("/d");
  assert.equal(known.sizes().statCache, 0);
});

Deno.test("Riak's directories outlive their cached stats, bounded by the stats limit", () => {
  const clock = { now: 1_000 };
  const { known } = knowledge({ limits: { stats: 2, paths: 100 }, clock });
  known.rememberStat("/d", riakDirectory("/d"), clock.now);
  clock.now = 5_000;
  known.rememberStat("/e", riakDirectory("/e"), clock.now);
  assert.equal(known.cached("/d"), undefined, "expired");
  assert.ok(known.riakDirectory("/d"), "kept for an outage");
  known.rememberStat("/f", riakDirectory("/f"), clock.now);
  assert.equal(known.riakDirectory("/d"), undefined, "the oldest went");
  assert.deepEqual([known.riakDirectory("/e")?.type, known.riakDirectory("/f")?.type], [
    "directory",
    "directory",
  ]);
  known.rememberStat("/e", riakFile("/e"), clock.now);
  assert.equal(known.riakDirectory("/e"), undefined, "a file there now");
});

Deno.test("without an entry timeout nothing is cached, but directories are still kept", () => {
  const { known } = knowledge({ entryTimeout: 0 });
  known.rememberStat("/d", riakDirectory("/d"), 1_000);
  known.rememberStat("/a", undefined, 1_000);
  known.rememberAbsent("/", ["b"], 0);
  assert.equal(known.sizes().statCache, 0);
  assert.ok(known.riakDirectory("/d"));
});

Deno.test("a listing's absent names are cached, but not one the mount changed since the look", () => {
  const { known, newToRiak } = knowledge();
  const look = newToRiak.look();
  newToRiak.changed("/d/b");
  known.rememberAbsent("/d", ["a", "b"], look);
  assert.deepEqual(known.cached("/d/a"), { stat: undefined, expires: 2_000 });
  assert.equal(known.cached("/d/b"), undefined);
  const tooMany = knowledge({ limits: { stats: 1, paths: 100 } }).known;
  tooMany.rememberAbsent("/d", ["a", "b"], 0);
  assert.equal(tooMany.sizes().statCache, 0, "more names than the cache holds: none");
});

Deno.test("names unseen are bounded, the one marked first going first, and cover what is below", () => {
  const { known } = knowledge({ limits: { stats: 100, paths: 2 } });
  assert.deepEqual(known.unseenMark("/a"), {});
  known.markUnseen("/a");
  known.markUnseen("/b");
  known.markUnseen("/a"); // Marked already: stays where it was.
  known.markUnseen("/c");
  assert.deepEqual(known.unseenMark("/a/x/y"), {}, "/a went first");
  assert.deepEqual(known.unseenMark("/b/x/y"), { unseen: true });
  assert.deepEqual(known.unseenMark("/c"), { unseen: true });
  known.forgetUnseen("/c");
  assert.deepEqual(known.unseenMark("/c"), {});
  known.markUnseen("/");
  assert.deepEqual(known.unseenMark("/anything"), { unseen: true });
});

Deno.test("directories the journal's uploads went into are Riak's while those uploads are pending", () => {
  const pending: Record<string, PendingUpload> = { "/d/e/f": upload("/d/e/f", 1234) };
  const { known } = knowledge({ pending });
  assert.equal(known.sizes().replayedDirectories, 2);
  const stat = known.replayedDirectoryStat("/d");
  assert.equal(stat?.type, "directory");
  assert.equal(stat?.mtimeNs, STARTED_NS);
  assert.deepEqual([stat?.uid, stat?.gid, stat?.path.toString()], [1234, 1235, "d"]);
  assert.equal(known.replayedDirectoryStat("/d/e/f"), undefined, "not a directory above one");
  known.forgetReplayed("/d/e"); // Riak answered for it.
  assert.equal(known.replayedDirectoryStat("/d/e"), undefined);
  delete pending["/d/e/f"]; // Landed.
  assert.equal(known.replayedDirectoryStat("/d"), undefined);
  assert.equal(known.sizes().replayedDirectories, 0, "forgotten once nothing is pending below");
});

Deno.test("local versions Riak holds are bounded by the paths limit, the oldest going first", () => {
  const { known } = knowledge({ limits: { stats: 100, paths: 2 } });
  const version = { size: 3n, mtimeNs: 5n, ctimeNs: 6n };
  for (const path of ["/a", "/b", "/a", "/c"]) known.rememberMirrored(path, version);
  assert.equal(known.holdsMirrored("/b", version), false);
  assert.equal(known.holdsMirrored("/a", version), true);
  assert.equal(known.holdsMirrored("/a", { size: 3n, mtimeNs: 7n }), false, "another version");
  assert.equal(known.sizes().mirrored, 2);
});

Deno.test("a change drops Riak's stats at and below the path, and the version of its file only", () => {
  const { known } = knowledge();
  for (const path of ["/d", "/d/e", "/de"]) {
    known.rememberStat(path, riakDirectory(path), 1_000);
    known.rememberFileSeen(path, SEEN);
  }
  known.rememberFileSeen("/d/f", SEEN);
  known.changed("/d");
  for (const path of ["/d", "/d/e"]) {
    assert.equal(known.cached(path), undefined, path);
    assert.equal(known.riakDirectory(path), undefined, path);
  }
  assert.ok(known.cached("/de"), "a name that only begins the same stays");
  assert.ok(known.riakDirectory("/de"));
  assert.equal(known.fileSeen("/d"), undefined);
  assert.deepEqual([known.fileSeen("/d/f"), known.fileSeen("/de")], [SEEN, SEEN]);
});

Deno.test("a removal forgets the name itself: known, seen, listed and mirrored", () => {
  const { known } = knowledge();
  known.listed.listed("/d", ["a", "b"]);
  known.rememberInRiak("/d/a", true);
  known.rememberInRiak("/d/a/x", true);
  known.rememberFileSeen("/d/a", SEEN);
  known.rememberMirrored("/d/a", { size: 3n, mtimeNs: 5n, ctimeNs: 6n });
  known.forget("/d/a");
  assert.deepEqual(knownOf(known, ["/d/a", "/d/a/x"]), ["/d/a/x"]);
  assert.equal(known.fileSeen("/d/a"), undefined);
  assert.equal(known.holdsMirrored("/d/a", { size: 3n, mtimeNs: 5n }), false);
  assert.deepEqual([...known.listed.namesIn("/d")!], ["b"]);
});

Deno.test("a rename carries what Riak held to the new name and forgets the rest at and below both", () => {
  const { known } = knowledge();
  known.rememberInRiak("/a", true);
  known.rememberFileSeen("/a", SEEN);
  known.rememberFileSeen("/a/below", SEEN);
  known.rememberFileSeen("/b/below", SEEN);
  known.rememberStat("/b", riakFile("/b"), 1_000);
  known.rememberStat("/b/c", riakDirectory("/b/c"), 1_000);
  known.rememberMirrored("/a", { size: 3n, mtimeNs: 5n, ctimeNs: 6n });
  known.listed.listed("/a", ["x"]);
  known.renamed("/a", "/b");
  assert.deepEqual(knownOf(known, ["/a", "/b"]), ["/b"]);
  assert.equal(known.fileSeen("/a"), undefined);
  assert.deepEqual(known.fileSeen("/b"), SEEN, "Riak's file keeps its version");
  assert.deepEqual([known.fileSeen("/a/below"), known.fileSeen("/b/below")], [
    undefined,
    undefined,
  ]);
  assert.deepEqual([known.cached("/b"), known.cached("/b/c")], [undefined, undefined]);
  assert.equal(known.riakDirectory("/b/c"), undefined);
  assert.equal(known.holdsMirrored("/a", { size: 3n, mtimeNs: 5n }), false);
  assert.equal(known.listed.namesIn("/a"), undefined);

  const unknown = knowledge().known;
  unknown.rememberInRiak("/b", true);
  unknown.renamed("/a", "/b");
  assert.deepEqual(knownOf(unknown, ["/a", "/b"]), [], "nothing known of /a: nor of /b now");
});

Deno.test("what is known at or below a directory moves with it to its new name", () => {
  const { known } = knowledge();
  known.rememberStat("/d", riakDirectory("/d"), 1_000);
  known.rememberStat("/d/s", riakDirectory("/d/s"), 1_000);
  known.rememberStat("/dx", riakDirectory("/dx"), 1_000);
  known.listed.listed("/d", ["s", "f"], undefined, ["f"]);
  known.listed.listed("/d/s", []);
  for (const path of ["/d", "/d/s", "/d/f", "/dx"]) known.rememberInRiak(path, true);
  known.rememberFileSeen("/d/f", SEEN);
  const carried = known.atOrBelow("/d");
  assert.deepEqual(carried.directories.map(([path]) => path), ["/d", "/d/s"]);
  assert.deepEqual(carried.files, [["/d/f", SEEN]]);
  assert.deepEqual(carried.names, ["/d", "/d/s", "/d/f"]);
  assert.deepEqual(carried.listings, [["/d", ["s", "f"], ["f"]], ["/d/s", [], []]]);

  known.renamed("/d", "/e");
  known.moved("/d", "/e", carried);
  assert.deepEqual(knownOf(known, ["/d/s", "/d/f", "/e", "/e/s", "/e/f", "/dx"]), [
    "/e",
    "/e/s",
    "/e/f",
    "/dx",
  ]);
  assert.equal(known.riakDirectory("/e/s")?.path.toString(), "e/s");
  assert.deepEqual(known.fileSeen("/e/f"), SEEN);
  assert.deepEqual([...known.listed.namesIn("/e")!], ["s", "f"]);
  assert.equal(known.listed.isFile("/e/f"), true);
  assert.equal(known.listed.namesIn("/d"), undefined);
});
