import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import { withSourceAndState, wrappedStore } from "./_test_support.ts";
import { OpenWriters } from "./open_writers.ts";
import { EXIT_COMPLETE, EXIT_FAILED, type PrewarmResult, runPrewarm } from "./prewarm.ts";
import { pathFromHex } from "./state.ts";

type Kind = "file" | "symlink" | "directory";

/** Makes `SOURCE/x` a `kind`, with its own content (`tag`); a directory holds a subtree. */
function makeLocal(source: string, kind: Kind, tag: string): void {
  const x = join(source, "x");
  rmSync(x, { recursive: true, force: true });
  if (kind === "file") writeFileSync(x, `file ${tag}`);
  else if (kind === "symlink") symlinkSync(`target-${tag}`, x);
  else {
    mkdirSync(join(x, "sub"), { recursive: true });
    writeFileSync(join(x, "in"), `in ${tag}`);
    writeFileSync(join(x, "sub", "deeper"), `deeper ${tag}`);
  }
}

/** Makes `SOURCE/x` a directory ({@link makeLocal}) whose files date from 2025. */
function makeOldDirectory(source: string): void {
  makeLocal(source, "directory", "old");
  const copiedAt = new Date("2025-01-01T00:00:00Z");
  for (const file of ["x/in", "x/sub/deeper"]) utimesSync(join(source, file), copiedAt, copiedAt);
}

/** Asserts that Riak holds at `x` the `kind` {@link makeLocal} made with `tag`, and nothing else. */
async function assertRiakHolds(store: Store, kind: Kind, tag: string): Promise<void> {
  const found = await store.stat("x");
  assert.equal(found.type, kind);
  if (kind === "file") assert.equal((await store.readFile("x")).toString(), `file ${tag}`);
  if (kind === "symlink") assert.equal((await store.readlink("x")).toString(), `target-${tag}`);
  if (kind === "directory") {
    assert.equal((await store.readFile("x/in")).toString(), `in ${tag}`);
    assert.equal((await store.readFile("x/sub/deeper")).toString(), `deeper ${tag}`);
  }
  const names = [];
  for await (const entry of store.list("")) names.push(`${entry.type}:${entry.name}`);
  assert.deepEqual(names, [`${kind}:x`], "the old entry is gone from the listing");
}

/**
 * A drain's options: writers looked for in /proc at each deletion (a shared index up to a
 * second old could name the inode a new file just took over from another process's).
 */
const DRAIN = { deleteLocal: true, inUse: { openWriters: new OpenWriters({ maxAgeMs: 0 }) } };

/** What a run left undone, for an assertion's message. */
function outcomeOf(run: PrewarmResult): string {
  const { failures, busy, keptActive } = run;
  return JSON.stringify({ failures, busy, keptActive });
}

const KINDS: Kind[] = ["file", "symlink", "directory"];
const CHANGES = KINDS.flatMap((before) =>
  KINDS.filter((after) => after !== before).map((after) => [before, after] as const)
);

Deno.test("a path whose type changed in SOURCE takes its new type in Riak, every way, and the next run finds it done", async () => {
  for (const [before, after] of CHANGES) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        makeLocal(source, before, "old");
        assert.equal((await runPrewarm({ source, store, state })).exitCode, EXIT_COMPLETE);
        makeLocal(source, after, "new");
        const dry = await runPrewarm({ source, store, state, dryRun: true });
        assert.deepEqual(dry.failures, [], `${before} -> ${after} (dry run)`);
        assert.equal((await store.stat("x")).type, before, "a dry run changes nothing");
        const changed = await runPrewarm({ source, store, state });
        const what = `${before} -> ${after}: ${outcomeOf(changed)}`;
        assert.equal(changed.exitCode, EXIT_COMPLETE, what);
        await assertRiakHolds(store, after, "new");
        if (before === "directory") {
          assert.equal(await store.tryStat("x/in"), undefined, `${what}: its files went with it`);
        }
        const next = await runPrewarm({ source, store, state });
        assert.equal(next.exitCode, EXIT_COMPLETE, what);
        assert.equal(next.tally.uploaded.files, 0, what);
      });
    });
  }
});

Deno.test("a drain leaves Riak's file or directory of files where SOURCE now has another type: one failure saying what to do, until it is moved aside", async () => {
  for (const [before, after] of CHANGES.filter(([before]) => before !== "symlink")) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        makeLocal(source, before, "old");
        const drained = await runPrewarm({ source, store, state, ...DRAIN });
        assert.equal(drained.exitCode, EXIT_COMPLETE, outcomeOf(drained));
        makeLocal(source, after, "new");
        const what = `${before} -> ${after}`;
        // Every night the same one line, nothing below it counted, Riak's copies untouched.
        for (let night = 0; night < 2; night++) {
          const run = await runPrewarm({ source, store, state, ...DRAIN });
          assert.equal(run.exitCode, EXIT_FAILED, what);
          assert.deepEqual(
            run.failures.map((failure) => failure.path),
            ["/x"],
            JSON.stringify(run.failures),
          );
          assert.match(
            run.failures[0].error,
            new RegExp(
              `^Riak holds a ${before} where SOURCE now has a ${after}, left in Riak \\(SOURCE is drained: .*` +
                `\\): rename the local ${after}, or move Riak's ${before} aside`,
            ),
          );
          const failed = run.tally.failed.files + (run.tally.failedDirectories?.files ?? 0);
          assert.equal(failed, 1, `${what}: counted once`);
          assert.equal(run.tally.seen.files, after === "directory" ? 0 : 1, what);
          assert.equal((await store.stat("x")).type, before, what);
          if (before === "file") assert.equal((await store.readFile("x")).toString(), "file old");
          else assert.equal((await store.readFile("x/sub/deeper")).toString(), "deeper old");
        }
        assert.ok(lstatSync(join(source, "x"), { throwIfNoEntry: false }), `${what}: kept local`);

        await store.rename("x", "x.old"); // what the operator does, through a mount
        const cleared = await runPrewarm({ source, store, state, ...DRAIN });
        assert.equal(cleared.exitCode, EXIT_COMPLETE, outcomeOf(cleared));
        assert.equal((await store.stat("x")).type, after, what);
        if (after === "directory") {
          assert.equal((await store.readFile("x/sub/deeper")).toString(), "deeper new");
          assert.ok(!existsSync(join(source, "x/sub/deeper")), `${what}: drained now`);
        }
      });
    });
  }
});

Deno.test("a drain replaces Riak's symlink or empty directory where SOURCE now has another type", async () => {
  const changes: [Kind, Kind, (source: string) => void][] = [
    ["symlink", "file", (source) => makeLocal(source, "file", "new")],
    ["symlink", "directory", (source) => makeLocal(source, "directory", "new")],
    // A directory whose files were all removed from Riak (through a mount) holds nothing.
    ["directory", "symlink", (source) => makeLocal(source, "symlink", "new")],
  ];
  for (const [before, after, change] of changes) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        if (before === "directory") mkdirSync(join(source, "x"));
        else makeLocal(source, before, "old");
        assert.equal(
          (await runPrewarm({ source, store, state, ...DRAIN })).exitCode,
          EXIT_COMPLETE,
        );
        change(source);
        const run = await runPrewarm({ source, store, state, ...DRAIN });
        assert.equal(run.exitCode, EXIT_COMPLETE, outcomeOf(run));
        assert.equal((await store.stat("x")).type, after, `${before} -> ${after}`);
      });
    });
  }
});

Deno.test("Riak's directory holding a file written after SOURCE's replacement stays, one failure; one holding older copies goes", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      makeOldDirectory(source);
      await runPrewarm({ source, store, state });
      makeLocal(source, "file", "new");
      const replacedAt = new Date("2026-01-01T00:00:00Z");
      utimesSync(join(source, "x"), replacedAt, replacedAt);
      // Written into Riak's directory after that (through a mount, by another host).
      await store.writeFile("x/sub/later", Buffer.from("later"), {
        mtimeNs: BigInt(replacedAt.getTime() + 1000) * 1_000_000n,
      });
      const run = await runPrewarm({ source, store, state });
      assert.equal(run.exitCode, EXIT_FAILED);
      assert.deepEqual(run.failures.map((failure) => failure.path), ["/x"]);
      assert.match(run.failures[0].error, /\(\/x\/sub\/later in it is newer than the local file\)/);
      assert.equal((await store.readFile("x/sub/later")).toString(), "later");

      await store.remove("x/sub/later");
      const next = await runPrewarm({ source, store, state });
      assert.equal(next.exitCode, EXIT_COMPLETE, outcomeOf(next));
      await assertRiakHolds(store, "file", "new");
    });
  });
});

Deno.test("a kept directory left to the next run of the pass is looked at again first: still kept, one failure; moved aside, it comes in with its files", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      makeLocal(source, "file", "old");
      await runPrewarm({ source, store, state, ...DRAIN });
      makeLocal(source, "directory", "new");
      for (const name of ["z1", "z2", "z3"]) writeFileSync(join(source, name), name);
      const stopped = await runPrewarm({ source, store, state, ...DRAIN, maxFiles: 1 });
      assert.deepEqual(stopped.failures.map((failure) => failure.path), ["/x"]);
      assert.notEqual(state.loadState().cursorHex, undefined, "the pass goes on");

      const still = await runPrewarm({ source, store, state, ...DRAIN, maxFiles: 1 });
      assert.deepEqual(still.failures.map((failure) => failure.path), ["/x"]);
      assert.equal(still.tally.failedDirectories?.files, 1);
      assert.equal(still.tally.failed.files, 0, "nothing below it failed");
      assert.equal(still.tally.uploaded.files, 1, "z2");

      await store.rename("x", "x.old");
      const cleared = await runPrewarm({ source, store, state, ...DRAIN });
      assert.equal(cleared.exitCode, EXIT_COMPLETE, outcomeOf(cleared));
      assert.equal((await store.readFile("x.old")).toString(), "file old");
      assert.equal((await store.readFile("x/sub/deeper")).toString(), "deeper new");
      assert.equal((await store.readFile("z3")).toString(), "z3");
      assert.ok(!existsSync(join(source, "x/sub/deeper")), "drained");
    });
  });
});

Deno.test("a large file where Riak holds a directory is sent only once that directory is gone", async () => {
  for (const drain of [true, false]) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        makeOldDirectory(source);
        await runPrewarm({ source, store, state, ...(drain ? DRAIN : {}) });
        rmSync(join(source, "x"), { recursive: true, force: true });
        writeFileSync(join(source, "x"), Buffer.alloc(3 << 20, 1));
        const written: string[] = [];
        const recording = wrappedStore(store, {
          writeFile: (path, content, options) => {
            written.push(Buffer.from(path as Uint8Array).toString());
            return store.writeFile(path, content, options);
          },
        });
        const run = await runPrewarm({ source, store: recording, state, ...(drain ? DRAIN : {}) });
        assert.deepEqual(written, drain ? [] : ["x"], `drain: ${drain}`);
        assert.equal(run.exitCode, drain ? EXIT_FAILED : EXIT_COMPLETE, `drain: ${drain}`);
        assert.equal((await store.stat("x")).type, drain ? "directory" : "file");
      });
    });
  }
});

Deno.test("a run resuming inside a kept directory looks at it first: nothing below it fails", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      makeLocal(source, "file", "old");
      await runPrewarm({ source, store, state, ...DRAIN });
      makeLocal(source, "directory", "new");
      for (let i = 0; i < 20; i++) writeFileSync(join(source, "x", `f${i}`), `f${i}`);
      writeFileSync(join(source, "z"), "z");
      // Interrupted as it fails: the walk stops inside it (at most 4 entries in flight).
      const interrupt = new AbortController();
      const stopped = await runPrewarm({
        source,
        store,
        state,
        ...DRAIN,
        concurrency: 1,
        signal: interrupt.signal,
        onEvent: (event) => event.kind === "failed" && interrupt.abort(),
      });
      assert.deepEqual(stopped.failures.map((failure) => failure.path), ["/x"]);
      const cursor = pathFromHex(state.loadState().cursorHex!).toString();
      assert.match(cursor, /^x(\/|$)/, "resumes at or inside it");

      const resumed = await runPrewarm({ source, store, state, ...DRAIN });
      assert.deepEqual(resumed.failures.map((failure) => failure.path), ["/x"]);
      assert.equal(resumed.tally.failed.files, 0, "nothing below it failed");
      assert.equal((await store.readFile("z")).toString(), "z");
    });
  });
});

Deno.test("a run without --delete-local keeps Riak's files where SOURCE's type changed once SOURCE was drained, by an earlier run or a mount", async () => {
  for (const drainedBy of ["an earlier run", "a mount"]) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        makeLocal(source, "directory", "old");
        const drainedElsewhere = drainedBy === "a mount";
        await runPrewarm({ source, store, state, ...(drainedElsewhere ? {} : DRAIN) });
        makeLocal(source, "file", "new");
        const run = await runPrewarm({ source, store, state, drainedElsewhere });
        assert.equal(run.exitCode, EXIT_FAILED, drainedBy);
        assert.match(run.failures[0].error, /\(SOURCE is drained: it may hold drained files\)/);
        assert.equal((await store.readFile("x/sub/deeper")).toString(), "deeper old", drainedBy);
      });
    });
  }
});

/**
 * `store`, where `write` is done (once) just before the first removal, after the replacement
 * of Riak's entry was decided on: a write through a mount landing between the two.
 */
function writingBeforeRemoval(store: Store, write: () => Promise<unknown>) {
  let written: Promise<unknown> | undefined;
  const first = () => written ??= write();
  return wrappedStore(store, {
    remove: async (path, options) => (await first(), await store.remove(path, options)),
    removeIfUnchanged: async (examined) => (await first(), await store.removeIfUnchanged(examined)),
  });
}

Deno.test("what is written into Riak's directory, or over Riak's file, after the type change was decided on stays: one failure", async () => {
  const later = Buffer.from("later");
  const writeLater = (path: string) => (store: Store) => store.writeFile(path, later);
  const readLater = (path: string) => (store: Store) => store.readFile(path);
  const cases: [
    Kind,
    Kind,
    (store: Store) => Promise<unknown>,
    (store: Store) => Promise<Buffer>,
  ][] = [
    ["directory", "file", writeLater("x/sub/later"), readLater("x/sub/later")],
    ["directory", "symlink", writeLater("x/later"), readLater("x/later")],
    [
      "directory",
      "file",
      async (
        store,
      ) => (await store.remove("x/sub", { recursive: true }), await writeLater("x/sub")(store)),
      readLater("x/sub"),
    ],
    ["file", "directory", writeLater("x"), readLater("x")],
    [
      "symlink",
      "file",
      async (store) => (await store.remove("x"), await store.symlink("x", later)),
      (store) => store.readlink("x"),
    ],
  ];
  for (const [before, after, write, read] of cases) {
    await withSourceAndState(async (source, state) => {
      await withStore(async ({ store }) => {
        if (before === "directory") makeOldDirectory(source);
        else makeLocal(source, before, "old");
        await runPrewarm({ source, store, state });
        makeLocal(source, after, "new");
        const what = `${before} -> ${after}`;
        const racing = writingBeforeRemoval(store, () => write(store));
        const run = await runPrewarm({ source, store: racing, state });
        assert.equal(run.exitCode, EXIT_FAILED, `${what}: ${outcomeOf(run)}`);
        assert.deepEqual(run.failures.map((failure) => failure.path), ["/x"], what);
        assert.match(
          run.failures[0].error,
          new RegExp(
            `^Riak holds a ${before} where SOURCE now has a ${after}, left in Riak ` +
              `\\(written to in Riak while being replaced\\): rename the local ${after}`,
          ),
          `${what}: ${run.failures[0].error}`,
        );
        assert.deepEqual(await read(store), later, `${what}: the later write is in Riak`);
        assert.equal((await store.stat("x")).type, before, what);
      });
    });
  }
});

Deno.test("a symlink changed in Riak after the run looked at it stays when SOURCE's link points elsewhere: newer in Riak", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      makeLocal(source, "symlink", "old");
      await runPrewarm({ source, store, state });
      makeLocal(source, "symlink", "new");
      // `ln -sf` through a mount (a link made aside, renamed over), between the look and the
      // removal.
      const relinked = writingBeforeRemoval(store, async () => {
        await store.symlink("x.tmp", Buffer.from("target-mount"));
        await store.rename("x.tmp", "x");
      });
      const run = await runPrewarm({ source, store: relinked, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, outcomeOf(run));
      await assertRiakHolds(store, "symlink", "mount");
      assert.equal(run.tally.newerInRiak.files, 1);
      assert.equal(run.tally.uploaded.files, 0);
    });
  });
});
