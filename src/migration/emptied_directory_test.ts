import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync, mkdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type StoreFixture, withStore } from "../store/_test_support.ts";
import { withSourceAndState } from "./_test_support.ts";
import { type EmptiedBounds, emptiedSubtree } from "./emptied_directory.ts";
import { PathFilter } from "./glob.ts";
import { RACY_WINDOW_MS } from "./local_file.ts";
import { OpenWriters } from "./open_writers.ts";
import {
  EXIT_COMPLETE,
  type PrewarmEvent,
  type PrewarmOptions,
  type PrewarmResult,
  runPrewarm,
} from "./prewarm.ts";
import type { StateDirectory } from "./state.ts";

/** Past a tick of the filesystem's clock: what exists now was born before a pass begun later. */
function aTickLater(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2 * RACY_WINDOW_MS));
}

const inUse = { openWriters: new OpenWriters({ maxAgeMs: 0 }) };

/** A drain of `gone/x.txt` (gone/ made before its pass), then gone/ removed by another host. */
async function drainedThenRemovedElsewhere(
  source: string,
  state: StateDirectory,
  { store, another }: Pick<StoreFixture, "store" | "another">,
): Promise<void> {
  mkdirSync(join(source, "gone"));
  writeFileSync(join(source, "gone/x.txt"), "drained");
  await aTickLater();
  await runPrewarm({ source, store, state, deleteLocal: true, inUse });
  await another().remove("gone", { recursive: true });
}

/** A run of the pre-warm, and what it said as it went. */
async function runHeard(
  options: PrewarmOptions,
): Promise<{ run: PrewarmResult; events: PrewarmEvent[] }> {
  const events: PrewarmEvent[] = [];
  const run = await runPrewarm({ ...options, onEvent: (event) => events.push(event) });
  return { run, events };
}

Deno.test("a drain removes its emptied local directory another host removed from Riak, and still uploads an empty one an application made since", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store, another }) => {
      mkdirSync(join(source, "gone/sub"), { recursive: true });
      mkdirSync(join(source, "kept"));
      writeFileSync(join(source, "gone/x.txt"), "drained, then removed elsewhere");
      writeFileSync(join(source, "gone/sub/y.txt"), "drained, then removed elsewhere too");
      writeFileSync(join(source, "kept/z.txt"), "drained");
      await aTickLater();
      const drain = await runPrewarm({ source, store, state, deleteLocal: true, inUse });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain));
      assert.equal(drain.tally.deleted.files, 3);
      assert.equal(existsSync(join(source, "gone/sub")), true, "a drain leaves its directories");

      // Another host removes gone/ from Riak, its files first, as an `rm -rf` through its mount.
      await another().remove("gone", { recursive: true });
      // An application on this host makes empty directories after the pass (one in gone/'s place
      // would be born after it too); they are new, and go to Riak.
      mkdirSync(join(source, "fresh"));
      mkdirSync(join(source, "kept/new"));

      const { run: next, events } = await runHeard({
        source,
        store,
        state,
        deleteLocal: true,
        inUse,
      });
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next));
      assert.equal(await store.tryStat("gone"), undefined, "not made in Riak again");
      assert.equal(existsSync(join(source, "gone")), false, "its empty leftover removed locally");
      assert.deepEqual(
        events.filter((event) => event.kind === "removed-elsewhere"),
        [{ kind: "removed-elsewhere", path: "/gone", dryRun: false }],
      );
      assert.equal((await store.stat("fresh")).type, "directory");
      assert.equal((await store.stat("kept/new")).type, "directory");
      assert.equal((await store.stat("kept")).type, "directory");
      assert.equal(existsSync(join(source, "fresh")), true);
      assert.equal(existsSync(join(source, "kept/new")), true);
    });
  });
});

Deno.test("a dry run of a drain says it would remove the emptied directory, and removes nothing", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async (riak) => {
      const { store } = riak;
      await drainedThenRemovedElsewhere(source, state, riak);
      const { events } = await runHeard({
        source,
        store,
        state,
        deleteLocal: true,
        dryRun: true,
        inUse,
      });
      assert.deepEqual(events, [{ kind: "removed-elsewhere", path: "/gone", dryRun: true }]);
      assert.equal(existsSync(join(source, "gone")), true);
      assert.equal(await store.tryStat("gone"), undefined);
    });
  });
});

Deno.test("without --delete-local, or a directory changed within the quiet period, the directory is made in Riak again", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async (riak) => {
      const { store, another } = riak;
      await drainedThenRemovedElsewhere(source, state, riak);
      const mirror = await runPrewarm({ source, store, state, inUse });
      assert.equal(mirror.exitCode, EXIT_COMPLETE, JSON.stringify(mirror));
      assert.equal((await store.stat("gone")).type, "directory", "a mirror puts it back");
      assert.equal(existsSync(join(source, "gone")), true);

      await another().remove("gone");
      const changedMs = Number(
        statSync(join(source, "gone"), { bigint: true }).ctimeNs / 1_000_000n,
      );
      const quiet = { ...inUse, quietPeriodMs: 60_000, now: () => changedMs + 59_000 };
      await runPrewarm({ source, store, state, deleteLocal: true, inUse: quiet });
      assert.equal((await store.stat("gone")).type, "directory", "changed too recently");
      assert.equal(existsSync(join(source, "gone")), true);
    });
  });
});

Deno.test("an empty directory Riak has no index of (one that never held a file there, or a Riak that lost it all) is made in Riak again", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store, another, bucket }) => {
      mkdirSync(join(source, "gone"));
      mkdirSync(join(source, "never-held-a-file"));
      writeFileSync(join(source, "gone/x.txt"), "drained");
      await aTickLater();
      await runPrewarm({ source, store, state, deleteLocal: true, inUse });
      await another().remove("gone", { recursive: true });
      await another().remove("never-held-a-file");
      // The same state against a namespace holding nothing: as a Riak that lost it all.
      const emptied = another({ namespace: { bucket: `${bucket}-emptied` } });
      const { run, events } = await runHeard({
        source,
        store: emptied,
        state,
        deleteLocal: true,
        inUse,
      });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run));
      assert.deepEqual(events, []);
      assert.equal((await emptied.stat("gone")).type, "directory");
      assert.equal((await emptied.stat("never-held-a-file")).type, "directory");
      assert.equal(existsSync(join(source, "gone")), true);
      assert.equal(existsSync(join(source, "never-held-a-file")), true);

      // Back in the namespace that held gone/'s file: its emptied index tells it.
      const { events: back } = await runHeard({ source, store, state, deleteLocal: true, inUse });
      assert.deepEqual(back, [{ kind: "removed-elsewhere", path: "/gone", dryRun: false }]);
      assert.equal((await store.stat("never-held-a-file")).type, "directory");
      assert.equal(existsSync(join(source, "never-held-a-file")), true);
    });
  });
});

/** Bounds under which everything in `source` (made a tick before) counts as walked. */
function boundsFor(source: string, more: Partial<EmptiedBounds> = {}): EmptiedBounds {
  return {
    passStartMs: Date.now(),
    quietSinceMs: Date.now() + 1000,
    device: statSync(source, { bigint: true }).dev,
    ...more,
  };
}

Deno.test("emptiedSubtree: only directories born before the pass, taking part, with nothing else below", async () => {
  await withSourceAndState(async (source) => {
    const root = Buffer.from(source);
    mkdirSync(join(source, "a/b/c"), { recursive: true });
    mkdirSync(join(source, "f/g"), { recursive: true });
    writeFileSync(join(source, "f/g/file"), "");
    mkdirSync(join(source, "s"));
    writeFileSync(join(source, "s/.riakfs-deleting.0a1b.x"), "a deletion a crash cut off");
    mkdirSync(join(source, "x/cache"), { recursive: true });
    await aTickLater();
    const found = await emptiedSubtree(root, Buffer.from("a"), boundsFor(source));
    assert.deepEqual(found?.map(String), ["a/b/c", "a/b", "a"], "deepest first");
    assert.equal(await emptiedSubtree(root, Buffer.from("f"), boundsFor(source)), undefined);
    assert.equal(await emptiedSubtree(root, Buffer.from("s"), boundsFor(source)), undefined);
    const filter = new PathFilter([], ["cache/"]);
    assert.equal(
      await emptiedSubtree(root, Buffer.from("x"), boundsFor(source, { filter })),
      undefined,
      "an excluded directory was never made in Riak",
    );
    assert.equal(
      await emptiedSubtree(root, Buffer.from("a"), boundsFor(source, { passStartMs: 0 })),
      undefined,
      "born after the pass began",
    );
    utimesSync(join(source, "a/b/c"), 1, 1);
    assert.equal(
      await emptiedSubtree(root, Buffer.from("a"), boundsFor(source, { quietSinceMs: 0 })),
      undefined,
      "changed within the quiet period (its ctime, whatever its mtime)",
    );
  });
});
