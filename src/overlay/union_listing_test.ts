import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import { StoreError } from "../store/errors.ts";
import type { DirEntry } from "../store/store.ts";
import { S_IFDIR, S_IFREG } from "./attributes.ts";
import { ListedInRiak } from "./listed_in_riak.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import { NewToRiak } from "./new_to_riak.ts";
import { SessionTable } from "./session_table.ts";
import { UnionListing } from "./union_listing.ts";

/** What a test's Riak and queues hold; each field is read at the time the listing asks. */
interface World {
  /** Riak's entries of each directory, or the error its listing fails with. */
  riak: Record<string, DirEntry[] | Error>;
  pending?: string[];
  mirrored?: string[];
  movedOut?: string[];
  made?: string[];
  seenInRiak?: boolean;
  /** Called as Riak's listing begins (an upload landing meanwhile, say). */
  onList?: () => void;
}

function entry(name: string, type: DirEntry["type"] = "file"): DirEntry {
  return { name: Buffer.from(name), type };
}

async function* riakListing(entries: DirEntry[] | Error): AsyncGenerator<DirEntry> {
  if (entries instanceof Error) throw entries;
  yield* entries;
}

function outage(): Error {
  return Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
}

/**
 * A {@link UnionListing} in `mode` over the source directory `source` (none: a Riak-only
 * mode) and the fakes of `world`; `absent` collects what it remembers as absent from Riak.
 */
function listing(
  mode: MountMode,
  source: string | undefined,
  world: World,
): { union: UnionListing; absent: [string, string[]][] } {
  const absent: [string, string[]][] = [];
  const union = new UnionListing({
    mode,
    source,
    sourceTree: { localPath: (path) => Promise.resolve(join(source!, path)) },
    store: {
      list: (path) => {
        world.onList?.();
        return riakListing(world.riak[String(path)] ?? new StoreError("ENOENT", `${path}: absent`));
      },
    },
    uploads: {
      newToRiak: new NewToRiak(),
      mirroredNamesIn: () => world.mirrored ?? [],
      directoriesMovedOutOf: () => world.movedOut ?? [],
      pendingNamesIn: () => world.pending ?? [],
      directoriesMadeIn: () => world.made ?? [],
      filesMovedIn: () => [],
    },
    copies: { watchNamesIn: () => ({ names: new Set(), end: () => {} }), namesIn: () => [] },
    riak: { run: (_operation, request) => request() },
    knowledge: {
      rememberAbsent: (path, names) => absent.push([path, names]),
      listed: new ListedInRiak(100),
    },
    sessions: new SessionTable(),
    localWriters: { localIsNewest: () => false },
    whileAway: { madeWhileAway: () => undefined },
    limits: { stats: 100 },
    directoryMoveSettled: () => Promise.resolve(),
    seenInRiak: () => world.seenInRiak ?? false,
  });
  return { union, absent };
}

async function names(union: UnionListing, path: string): Promise<string[]> {
  const listed: string[] = [];
  for await (const { name } of union.entries(path)) listed.push(name);
  return listed;
}

async function withSource(body: (source: string) => Promise<void>): Promise<void> {
  const source = await mkdtemp(join(tmpdir(), "union-listing-"));
  try {
    await body(source);
  } finally {
    await rm(source, { recursive: true, force: true });
  }
}

Deno.test("the union lists the source's names, then Riak's others, then those on their way", async () => {
  await withSource(async (source) => {
    await mkdir(join(source, "d"));
    await writeFile(join(source, "d", "a"), "");
    await writeFile(join(source, "d", "b"), "");
    const { union, absent } = listing(PRESETS.migrate, source, {
      riak: { "/d": [entry("b"), entry("c"), entry("removed"), entry("moved", "directory")] },
      pending: ["c", "new"],
      mirrored: ["removed"],
      movedOut: ["moved"],
    });
    const listed = await names(union, "/d");
    assert.deepEqual(listed.slice(0, 2), [".", ".."]);
    assert.deepEqual(new Set(listed.slice(2, 4)), new Set(["a", "b"]));
    // Names changed through the mount are left out of Riak's; "c" comes once, from Riak.
    assert.deepEqual(listed.slice(4), ["c", "new"]);
    assert.deepEqual(absent, [["/d", ["a"]]]);
  });
});

Deno.test("the names on their way are taken before Riak's listing begins", async () => {
  // The upload lands as Riak's listing begins, which was read before it landed.
  const world: World = { riak: { "/d": [] }, pending: ["landing"] };
  world.onList = () => world.pending = [];
  const { union } = listing(PRESETS.riak, undefined, world);
  assert.deepEqual(await names(union, "/d"), [".", "..", "landing"]);
});

Deno.test("a listing degrades to the source's while Riak is unreachable", async () => {
  await withSource(async (source) => {
    await mkdir(join(source, "d"));
    await writeFile(join(source, "d", "a"), "");
    const { union, absent } = listing(PRESETS.migrate, source, { riak: { "/d": outage() } });
    assert.deepEqual(await names(union, "/d"), [".", "..", "a"]);
    assert.deepEqual(absent, []);
  });
});

Deno.test("a directory only Riak holds fails with EIO while it is away, if the mount saw it", async () => {
  await withSource(async (source) => {
    const seen = listing(PRESETS.migrate, source, { riak: { "/d": outage() }, seenInRiak: true });
    await assert.rejects(
      names(seen.union, "/d"),
      (error) => error instanceof FuseError && error.errno === Errno.EIO,
    );
    const unseen = listing(PRESETS.migrate, source, { riak: { "/d": outage() } });
    await assert.rejects(
      names(unseen.union, "/d"),
      (error) => error instanceof FuseError && error.errno === Errno.ENOENT,
    );
  });
});

Deno.test("Riak-only listings do not degrade while Riak is unreachable", async () => {
  const { union } = listing(PRESETS.riak, undefined, { riak: { "/d": outage() } });
  await assert.rejects(names(union, "/d"), /ECONNREFUSED/);
});

Deno.test("a directory neither side holds is ENOENT, one with a name on its way is listed", async () => {
  const absent = listing(PRESETS.riak, undefined, { riak: {} });
  await assert.rejects(
    names(absent.union, "/d"),
    (error) => error instanceof FuseError && error.errno === Errno.ENOENT,
  );
  assert.equal(await absent.union.hasEntries("/"), false);
  const uploading = listing(PRESETS.riak, undefined, { riak: {}, pending: ["f"] });
  assert.deepEqual(await names(uploading.union, "/d"), [".", "..", "f"]);
  assert.equal(await uploading.union.hasEntries("/d"), true);
});

Deno.test("the names on their way carry their types, and none where Riak is not written", () => {
  const world: World = { riak: {}, pending: ["file"], made: ["directory"] };
  const riak = listing(PRESETS.riak, undefined, world).union;
  assert.deepEqual(
    riak.namesOnTheirWay("/d"),
    new Map([["file", S_IFREG], ["directory", S_IFDIR]]),
  );
  // Directories made while Riak was away exist in modes that write Riak only.
  const migrate = listing(PRESETS.migrate, "/nowhere", world).union;
  assert.deepEqual(migrate.namesOnTheirWay("/d"), new Map([["file", S_IFREG]]));
  const passthrough = listing(PRESETS.passthrough, "/nowhere", world).union;
  assert.deepEqual(passthrough.namesOnTheirWay("/d"), new Map());
});
