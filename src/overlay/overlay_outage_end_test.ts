/**
 * The window right after a Riak outage ends in the modes that stage writes (drain, riak):
 * while what was journaled during the outage is replayed into Riak, the mount shows what it
 * showed during the outage (new names and bytes, removed and renamed-away names absent), at
 * every step of the replay, and Riak holds the same once it is done.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Attr } from "../fuse/abi.ts";
import { Errno, FuseError, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import type { OverlayRuntime } from "./runtime.ts";
import {
  eventually,
  listThrough,
  lookupPath,
  outageNoticed,
  type OverlayFixture,
  readThrough,
  type RequestHold,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";

/** Well past the entry timeout (1 s): what the mount cached from Riak has expired. */
const LONG_AGO_MS = 60_000;

const O_WRONLY = 0o1;
const O_TRUNC = 0o1000;

/** What Riak holds before the outage, the mount having looked at all of it. */
const BEFORE: Record<string, string> = {
  "/d/kept.txt": "kept",
  "/d/over.txt": "riak's old bytes",
  "/d/gone.txt": "gone",
  "/d/old.txt": "renamed file",
  "/tree/x.txt": "x",
  "/tree/sub/y.txt": "y",
};

/** The files the mount shows once the outage's changes are made, with their bytes. */
const FILES: Record<string, string> = {
  "/d/kept.txt": "kept",
  "/d/new.txt": "made during the outage",
  "/d/over.txt": "overwritten during the outage",
  "/d/renamed.txt": "renamed file",
  "/moved/x.txt": "x",
  "/moved/sub/y.txt": "y",
};

/** The directories the mount shows, with the names each lists. */
const LISTINGS: Record<string, string[]> = {
  "/": ["d", "moved"],
  "/d": ["kept.txt", "made", "new.txt", "over.txt", "renamed.txt"],
  "/d/made": [],
  "/moved": ["sub", "x.txt"],
  "/moved/sub": ["y.txt"],
};

/** The files whose bytes the mount holds during the outage (the others' need Riak). */
const WRITTEN = ["/d/new.txt", "/d/over.txt"];

/** Names the outage's changes took away. */
const ABSENT = ["/d/gone.txt", "/d/old.txt", "/tree", "/tree/x.txt"];

function isFuseError(errno: number): (error: unknown) => boolean {
  return (error: unknown) => error instanceof FuseError && error.errno === errno;
}

/** Opens the file at `path` with O_TRUNC and writes `content` into it, as `cp` over it does. */
async function overwrite(fs: OverlayFixture["fs"], path: string, content: string): Promise<void> {
  const node = await lookupPath(fs, path);
  const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
  try {
    await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from(content));
    await fs.flush!(ROOT_CTX, node, fh);
  } finally {
    await fs.release!(ROOT_CTX, node, fh, 0);
  }
}

/** A file's size and mtime as the mount shows them. */
function sizeAndMtime({ attr }: { attr: Attr }): string {
  return `${attr.size} bytes, mtime ${attr.mtime.sec}.${attr.mtime.nsec}`;
}

/** Each file's {@link sizeAndMtime} as the mount shows them. */
async function fileAttributes(fs: OverlayFixture["fs"]): Promise<Record<string, string>> {
  const shown: Record<string, string> = {};
  for (const path of Object.keys(FILES)) {
    shown[path] = sizeAndMtime(await fs.getattr!(ROOT_CTX, await lookupPath(fs, path), undefined));
  }
  return shown;
}

/** The names the outage's renames took away or gave, with the names below them. */
const RENAMED = ["/d/old.txt", "/d/renamed.txt", "/tree", "/moved"];

/**
 * Whether `error`, of a request about `path`, is its wait for the replay of a rename done
 * during the outage giving up after Riak's deadline (EIO): once Riak is back, such a name
 * waits for its move to reach Riak, and the test holds the replay for longer than that.
 */
function gaveUpWaitingForMove(path: string, error: unknown): boolean {
  return RENAMED.some((renamed) => path === renamed || path.startsWith(`${renamed}/`)) &&
    error instanceof Error && /^Riak upload /.test(error.message);
}

/**
 * Checks what the mount shows against what the outage's changes left: `attributes` as
 * {@link fileAttributes} gave them then, the bytes, the listings, the names taken away. The
 * checks run at once, as the kernel's requests do. With `riakAway`, only what the mount
 * answers without Riak: not the listings of Riak's directories, nor the bytes only Riak
 * holds. With `replayHeld`, a check of a renamed name may wait for its move and give up
 * (see {@link gaveUpWaitingForMove}); no check answers wrong.
 */
async function checkView(
  fs: OverlayFixture["fs"],
  attributes: Record<string, string>,
  when: string,
  { riakAway = false, replayHeld = false } = {},
): Promise<void> {
  const checks: { path: string; run: () => Promise<void> }[] = [
    ...Object.keys(FILES).map((path) => ({
      path,
      run: async () => {
        const node = await lookupPath(fs, path);
        assert.equal(
          sizeAndMtime(await fs.getattr!(ROOT_CTX, node, undefined)),
          attributes[path],
          `${path}, ${when}`,
        );
        if (riakAway && !WRITTEN.includes(path)) return;
        assert.equal((await readThrough(fs, path)).toString(), FILES[path], `${path}, ${when}`);
      },
    })),
    ...Object.entries(riakAway ? {} : LISTINGS).map(([path, names]) => ({
      path,
      run: async () => assert.deepEqual(await listThrough(fs, path), names, `${path}, ${when}`),
    })),
    ...ABSENT.map((path) => ({
      path,
      run: () =>
        lookupPath(fs, path).then(
          () => assert.fail(`${path} shown, ${when}`),
          (error) => {
            if (!isFuseError(Errno.ENOENT)(error)) throw error;
          },
        ),
    })),
  ];
  const outcomes = await Promise.allSettled(checks.map(({ run }) => run()));
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    if (!replayHeld || !gaveUpWaitingForMove(checks[index].path, outcome.reason)) {
      throw outcome.reason;
    }
  });
}

/** Every file Riak holds at or below `path`, with its bytes, and every directory, sorted. */
async function riakTree(store: OverlayFixture["store"], path = "/"): Promise<string[]> {
  const tree: string[] = [];
  for await (const entry of store.list(path)) {
    const child = `${path === "/" ? "" : path}/${entry.name.toString()}`;
    if (entry.type === "directory") tree.push(`${child}/`, ...await riakTree(store, child));
    else tree.push(`${child}: ${(await store.readFile(child)).toString()}`);
  }
  return tree.sort();
}

/** Resolves once the mount found Riak back after the outage (its ping answered). */
function riakFoundBack(logLines: string[]): Promise<void> {
  return eventually(
    "Riak found back",
    () => logLines.some((line) => line.includes("Riak reachable again")),
  );
}

/**
 * Runs a `preset` mount through an outage in which it makes every kind of change (files
 * created, overwritten, removed and renamed, a directory made, a directory it had listed
 * whole renamed), and with `restarted` is stopped and started again before Riak is back
 * (only its journal knows the changes then). Brings Riak back with the replay's first put
 * held and, once the mount found Riak back, calls `duringReplay` with the mount serving,
 * that put, how to hold the next one, and `check(when)`, which checks the mount's view
 * (also with what it cached from Riak expired). Checks the view and Riak's tree once the
 * replay is done.
 */
async function afterOutage(
  preset: string,
  restarted: boolean,
  duringReplay: (
    mounted: OverlayRuntime,
    firstPut: RequestHold,
    holdPut: () => RequestHold,
    check: (when: string) => Promise<void>,
  ) => Promise<void>,
): Promise<void> {
  let clock = Date.now();
  /**
   * Whether Riak is away, as the mount's ping would find it. A mount asks before it ends an
   * outage; without that, the first request Riak answered would end it, before the replay.
   */
  let riakAway = false;
  await withOverlay(
    preset,
    async ({ fs, store, riak, runtime, logLines, holdPuts, restart }) => {
      for (const [path, content] of Object.entries(BEFORE)) {
        await store.writeFile(path, Buffer.from(content));
      }
      // The mount reads the whole trees, as `ls -lR` does.
      for (const path of ["/", "/d", "/tree", "/tree/sub"]) await listThrough(fs, path);
      // Their stats still fresh in the outage: a file only Riak holds is written over only so.
      for (const path of Object.keys(BEFORE)) await lookupPath(fs, path);
      riakAway = true;
      const { attributes, mounted, firstPut } = await whilePaused(riak, async () => {
        await outageNoticed(fs, logLines);
        const d = await lookupPath(fs, "/d");
        await writeThrough(fs, "/d/new.txt", Buffer.from(FILES["/d/new.txt"]));
        await overwrite(fs, "/d/over.txt", FILES["/d/over.txt"]);
        await fs.unlink!(ROOT_CTX, d, "gone.txt");
        await fs.rename!(ROOT_CTX, d, "old.txt", d, "renamed.txt", 0);
        await fs.mkdir!(ROOT_CTX, d, "made", 0o755, 0o022);
        await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "tree", ROOT_NODE_ID, "moved", 0);
        const attributes = await fileAttributes(fs);
        await checkView(fs, attributes, "during the outage", { riakAway: true });
        let mounted = runtime;
        if (restarted) {
          await runtime.stop(0);
          mounted = await restart({});
        }
        riakAway = false;
        return { attributes, mounted, firstPut: holdPuts() };
      });
      await riakFoundBack(logLines);
      const view = mounted.fileSystem;
      await duringReplay(mounted, firstPut, holdPuts, async (when) => {
        await checkView(view, attributes, when, { replayHeld: true });
        clock += LONG_AGO_MS;
        await checkView(view, attributes, `${when}, asking Riak`, { replayHeld: true });
      });
      assert.equal(await mounted.settle(10_000), 0);
      await checkView(view, attributes, "once the replay is done");
      clock += LONG_AGO_MS;
      await checkView(view, attributes, "once the replay is done, asking Riak");
      assert.deepEqual(await riakTree(store), [
        "/d/",
        "/d/kept.txt: kept",
        "/d/made/",
        "/d/new.txt: made during the outage",
        "/d/over.txt: overwritten during the outage",
        "/d/renamed.txt: renamed file",
        "/moved/",
        "/moved/sub/",
        "/moved/sub/y.txt: y",
        "/moved/x.txt: x",
      ]);
    },
    { riakReadTimeout: "300", uploadConcurrency: "1" },
    { now: () => clock, riakAnswers: () => Promise.resolve(!riakAway) },
  );
}

for (const preset of ["drain", "riak"]) {
  for (const restarted of [false, true]) {
    Deno.test(`${preset}: while the changes made during an outage${restarted ? " (the mount then stopped and started again)" : ""} are replayed into Riak one at a time, held at each put, the mount shows them at every step, also once what it cached expired`, async () => {
      await afterOutage(preset, restarted, async (mounted, firstPut, holdPut, check) => {
        let steps = 0;
        for (let put = firstPut;; put = holdPut()) {
          let held = false;
          put.reached.then(() => held = true);
          await eventually(
            "the replay's next put, or its end",
            () => held || mounted.pendingUploads() === 0,
          );
          if (!held) {
            put.release(); // Takes the hold away.
            break;
          }
          steps++;
          await check(`at the replay's put ${steps}`);
          // The next hold is set before this put's answer could bring the next one.
          put.release();
        }
        assert.ok(steps >= 6, `${steps} puts`);
      });
    });
  }
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a directory renamed during an outage is listed under its new name only while its move runs in Riak once it is back`, async () => {
    /** Whether Riak is away, as the mount's ping would find it. */
    let riakAway = false;
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, logLines, holdPuts }) => {
        await store.writeFile("/tree/x.txt", Buffer.from("x"));
        assert.deepEqual(await listThrough(fs, "/"), ["tree"]);
        assert.deepEqual(await listThrough(fs, "/tree"), ["x.txt"]);
        riakAway = true;
        const move = await whilePaused(riak, async () => {
          await outageNoticed(fs, logLines);
          await fs.rename!(ROOT_CTX, ROOT_NODE_ID, "tree", ROOT_NODE_ID, "moved", 0);
          riakAway = false;
          return holdPuts();
        });
        await riakFoundBack(logLines);
        await move.reached;
        const riakNames = [];
        for await (const entry of store.list("/")) riakNames.push(entry.name.toString());
        assert.deepEqual(riakNames, ["tree"], "the move's first put not sent");
        assert.deepEqual(await listThrough(fs, "/"), ["moved"]);
        move.release();
        assert.equal(await runtime.settle(10_000), 0);
        assert.deepEqual(await listThrough(fs, "/"), ["moved"]);
        assert.deepEqual(await listThrough(fs, "/moved"), ["x.txt"]);
      },
      { riakReadTimeout: "300" },
      { riakAnswers: () => Promise.resolve(!riakAway) },
    );
  });
}
