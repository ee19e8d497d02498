import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import {
  dailyRate,
  etaDays,
  progressFromState,
  type ProgressReport,
  rescan,
  RescanError,
} from "./progress.ts";
import { holdOpen, wrappedStore } from "./_test_support.ts";
import { waitOutRacyWindow } from "./local_file.ts";
import { PathFilter } from "./glob.ts";
import { LockedError } from "../util/lock.ts";
import { OpenWriters } from "./open_writers.ts";
import {
  EXIT_COMPLETE,
  EXIT_PARTIAL,
  type LiveRun,
  type PrewarmEvent,
  type PrewarmResult,
  runPrewarm,
} from "./prewarm.ts";
import { emptyTally, type RunMarker, type RunRecord, StateDirectory } from "./state.ts";

/** Runs `fn` on a fresh source holding `files` (name: content) and a fresh state directory. */
async function withTree(
  files: Record<string, string>,
  fn: (source: string, state: StateDirectory) => Promise<void>,
): Promise<void> {
  const source = mkdtempSync(join(tmpdir(), "riakfs-progress-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(source, name), content);
  try {
    await fn(source, state);
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
}

/** `count` files f00, f01, ... holding `content`. */
function numbered(count: number, content: string): Record<string, string> {
  return Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`f${String(i).padStart(2, "0")}`, content]),
  );
}

function run(startedAt: string, bytes: number, files: number): RunRecord {
  const tally = emptyTally();
  tally.uploaded = { files, bytes };
  return {
    startedAt,
    endedAt: startedAt,
    command: "prewarm",
    outcome: "partial",
    exitCode: 3,
    dryRun: false,
    tally,
    failures: [],
  };
}

Deno.test("dailyRate averages per calendar day over the last days with runs", () => {
  assert.equal(dailyRate([]), undefined);
  const history = [
    run("2026-11-01T01:00:00Z", 999_999, 999), // outside the 7-day window
    ...[2, 3, 4, 5, 6, 7].map((d) => run(`2026-11-0${d}T01:00:00Z`, 100, 10)),
    run("2026-11-08T01:00:00Z", 50, 5),
    run("2026-11-08T03:00:00Z", 50, 5),
  ];
  assert.deepEqual(dailyRate(history), { bytes: 100, files: 10, days: 7 });
  assert.equal(etaDays({ files: 30, bytes: 1000 }, { bytes: 100, files: 10 }), 10);
  assert.equal(etaDays({ files: 0, bytes: 0 }, { bytes: 100, files: 10 }), 0);
  assert.equal(etaDays({ files: 3, bytes: 0 }, { bytes: 0, files: 0 }), undefined);
});

Deno.test("progress reports recorded passes, and a rescan recomputes them", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-progress-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  for (let i = 0; i < 6; i++) writeFileSync(join(source, `f${i}`), "x".repeat(10));
  try {
    assert.equal(progressFromState(state).known, false);
    await withStore(async ({ store }) => {
      await runPrewarm({ source, store, state, maxFiles: 2 });
      const partial = progressFromState(state);
      assert.equal(partial.totalIsLowerBound, true);
      assert.equal(partial.inRiak.files, 2);
      assert.equal(partial.runs, 1);
      await runPrewarm({ source, store, state });
      const done = progressFromState(state);
      assert.equal(done.totalIsLowerBound, false);
      assert.deepEqual(done.total, { files: 6, bytes: 60 });
      assert.deepEqual(done.pending, { files: 0, bytes: 0 });
      assert.equal(done.etaDays, 0);
      writeFileSync(join(source, "new"), "fresh");
      // A pre-warm holding the run lock: the rescan waits for another time.
      writeFileSync(state.lockFile, `${process.ppid}\n`); // Alive, and not this process.
      await assert.rejects(rescan({ source, store, state }), LockedError);
      rmSync(state.lockFile);
      // Riak unreachable: the rescan fails and what was recorded stays.
      const unreachable = wrappedStore(store, {
        tryStat: () => Promise.reject(new Error("Riak is down")),
      });
      await assert.rejects(
        rescan({ source, store: unreachable, state }),
        (error) => error instanceof RescanError && /could not check 7 file/.test(error.message),
      );
      assert.deepEqual(progressFromState(state).pending, { files: 0, bytes: 0 }, "kept");
      assert.equal(existsSync(state.lockFile), false, "the failed rescan's lock is released");
      const rescanned = await rescan({ source, store, state });
      assert.equal(rescanned.lastCompletePass?.kind, "rescan");
      assert.equal(existsSync(state.lockFile), false, "the rescan's lock is released");
      assert.deepEqual(rescanned.total, { files: 7, bytes: 65 });
      assert.deepEqual(rescanned.pending, { files: 1, bytes: 5 });
      assert.ok(rescanned.etaDays! > 0);
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

// Every file a first pass reached is in Riak, which is not the tree: "in Riak: 671 files
// (100.0%)" was shown while the pass had the rest of the tree still to walk.
Deno.test("progress gives no share of the tree in Riak until a pass covered all of it", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-progress-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  for (let i = 0; i < 4; i++) writeFileSync(join(source, `f${i}`), "x".repeat(10));
  try {
    await withStore(async ({ store }) => {
      await runPrewarm({ source, store, state, maxFiles: 2 });
      const firstPass = progressFromState(state);
      assert.deepEqual(firstPass.inRiak, firstPass.total, "all it reached is in Riak");
      assert.equal(firstPass.inRiakShare, undefined, "but not the whole tree");
      await runPrewarm({ source, store, state, maxFiles: 1 });
      await runPrewarm({ source, store, state });
      assert.equal(progressFromState(state).inRiakShare, 1);
      writeFileSync(join(source, "new"), "y".repeat(40));
      assert.equal((await rescan({ source, store, state })).inRiakShare, 0.5);
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

Deno.test("progress tells a run under way from one that never ended, which the next run records", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-progress-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  for (let i = 0; i < 10; i++) writeFileSync(join(source, `f${i}`), "x".repeat(10));
  try {
    await withStore(async ({ store }) => {
      // Looked at from inside the run, whose marker is saved at every entry.
      const during: { report: ProgressReport; marker?: RunMarker }[] = [];
      const watched = wrappedStore(store, {
        writeFile: (path, content, options) => {
          during.push({ report: progressFromState(state), marker: state.unfinishedRun() });
          return store.writeFile(path, content, options);
        },
      });
      const run = await runPrewarm({
        source,
        store: watched,
        state,
        concurrency: 1,
        checkpointMs: 0,
      });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      const last = during.at(-1)!;
      assert.deepEqual(last.report.runInProgress, { startedAt: run.startedAt, pid: process.pid });
      assert.ok(last.marker!.tally.uploaded.files > 0, "the marker holds the tallies so far");
      const after = progressFromState(state);
      assert.equal(after.runInProgress, undefined);
      assert.equal(after.lastRun?.outcome, "complete");

      // What a run killed mid-way leaves behind: its marker as last saved, and its lock.
      const killed = { ...last.marker!, startedAt: new Date().toISOString(), pid: 999_999_999 };
      state.saveRunMarker(killed);
      writeFileSync(state.lockFile, `${killed.pid}\n`);
      const dead = progressFromState(state);
      assert.equal(dead.runInProgress, undefined);
      assert.deepEqual(dead.lastRun, {
        startedAt: killed.startedAt,
        endedAt: killed.savedAt,
        outcome: "unfinished",
        exitCode: null,
        failures: [],
      });

      writeFileSync(join(source, "new"), "fresh");
      const told: PrewarmEvent[] = [];
      const next = await runPrewarm({ source, store, state, onEvent: (e) => told.push(e) });
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
      assert.deepEqual(told.filter((event) => event.kind === "unfinished-run"), [
        { kind: "unfinished-run", startedAt: killed.startedAt, lastSeen: killed.savedAt },
      ]);
      const history = state.readHistory();
      assert.deepEqual(history.map((record) => record.outcome), [
        "complete",
        "unfinished",
        "complete",
      ]);
      assert.deepEqual(history[1].tally.uploaded, killed.tally.uploaded, "its moves count");
      const clean = progressFromState(state);
      assert.equal(clean.lastRun?.outcome, "complete");
      assert.equal(clean.runInProgress, undefined);
      assert.equal(state.unfinishedRun(), undefined);
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

/** What a pre-warm killed right after `run` leaves: its marker as last saved, and its lock. */
function leaveAsKilled(state: StateDirectory, run: PrewarmResult): void {
  state.saveRunMarker({
    startedAt: run.startedAt,
    pid: 999_999_999,
    savedAt: run.endedAt,
    tally: run.tally,
  });
  writeFileSync(state.lockFile, "999999999\n");
}

// A drain killed mid-way (a reboot, the OOM killer) had deleted local copies its pass never
// recorded; the next run does not see them, so progress lost them for good: "total: 6 files,
// in Riak: 6 (100.0%)" for a tree of 10 files, all of them in Riak.
Deno.test("a drain killed mid-way keeps the files it deleted in its pass, as last saved", async () => {
  await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const drain = { source, store, state, deleteLocal: true };
      assert.equal((await runPrewarm({ ...drain, maxFiles: 2 })).exitCode, EXIT_PARTIAL);
      // What the killed run leaves: the state as the run before it saved it.
      const before = {
        state: readFileSync(join(state.path, "state.json")),
        history: readFileSync(join(state.path, "history.jsonl")),
      };
      const killed = await runPrewarm({ ...drain, maxFiles: 4 });
      assert.ok(killed.tally.deleted.files > 0, JSON.stringify(killed.tally));
      writeFileSync(join(state.path, "state.json"), before.state);
      writeFileSync(join(state.path, "history.jsonl"), before.history);
      leaveAsKilled(state, killed);

      const next = await runPrewarm(drain);
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
      const report = progressFromState(state);
      assert.deepEqual(report.total, { files: 10, bytes: 100 });
      assert.deepEqual(report.inRiak, { files: 10, bytes: 100 });
      assert.deepEqual(report.verified, { files: 10, bytes: 100 });
      assert.equal(report.etaDays, 0);
    });
  });
});

Deno.test("a drain that died after saving its pass, before its history record, is not added twice", async () => {
  await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const drain = { source, store, state, deleteLocal: true };
      const died = await runPrewarm({ ...drain, maxFiles: 4 });
      assert.ok(died.tally.deleted.files > 0, JSON.stringify(died.tally));
      const history = join(state.path, "history.jsonl");
      writeFileSync(history, "");
      leaveAsKilled(state, died);

      const next = await runPrewarm(drain);
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next));
      assert.deepEqual(progressFromState(state).total, { files: 10, bytes: 100 });
    });
  });
});

/**
 * Drains with a marker save every `checkpointMs`, and leaves the state directory as a SIGKILL
 * at the start of its deletion number `killedAt + 1` would: the files as written until then,
 * its marker and lock of a process gone; that deletion and those after it never happen.
 * Deletions go one at a time, each once those before it are counted, so the moment is exact.
 * Returns the deletions its marker counts (the rest only its deletion log has).
 */
async function drainKilledAt(
  drain: { source: string; store: Store; state: StateDirectory; deleteLocal: true },
  killedAt: number,
  checkpointMs: number,
): Promise<number> {
  const directory = drain.state.path;
  let live: LiveRun | undefined;
  let started = 0;
  let left: Map<string, Buffer> | undefined;
  await runPrewarm({
    ...drain,
    // Few files in flight: the walk schedules files, and saves the marker, between deletions.
    concurrency: 1,
    checkpointMs,
    onStart: (run) => live = run,
    inUse: {
      beforeStep: async (step) => {
        if (step !== "set-aside") return;
        const number = ++started;
        while (live!.tally.deleted.files < Math.min(number - 1, killedAt)) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (number === killedAt + 1) {
          left = new Map(
            readdirSync(directory).map((name) => [name, readFileSync(join(directory, name))]),
          );
        }
        if (number > killedAt) throw new Error("killed");
      },
    },
  });
  assert.ok(left, `the drain made ${started} deletion(s), not ${killedAt + 1}`);
  for (const name of readdirSync(directory)) rmSync(join(directory, name));
  for (const [name, content] of left) writeFileSync(join(directory, name), content);
  const marker = JSON.parse(readFileSync(join(directory, "run.json"), "utf8")) as RunMarker;
  writeFileSync(join(directory, "run.json"), JSON.stringify({ ...marker, pid: 999_999_999 }));
  writeFileSync(drain.state.lockFile, "999999999\n");
  return marker.tally.deleted.files;
}

// A drain saves its tallies every 30 s: one killed in between lost every deletion since its last
// save from the counts for good ("total: 250 files, in Riak: 250 (100.0%)" for 400 files).
for (const checkpointMs of [3_600_000, 0]) {
  Deno.test(`a drain killed between marker saves counts every file it deleted (saved every ${checkpointMs} ms)`, async () => {
    await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
      await waitOutRacyWindow();
      await withStore(async ({ store }) => {
        const drain = { source, store, state, deleteLocal: true as const };
        const saved = await drainKilledAt(drain, 4, checkpointMs);
        // Saved often, the marker counts deletions its earlier logs had: none may count twice.
        assert.equal(saved > 0, checkpointMs === 0, `the marker counts ${saved} deletion(s)`);
        assert.equal(readdirSync(source).length, 6);

        const next = await runPrewarm(drain);
        assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
        assert.equal(next.tally.deleted.files, 6);
        const report = progressFromState(state);
        assert.deepEqual(report.total, { files: 10, bytes: 100 });
        assert.deepEqual(report.inRiak, { files: 10, bytes: 100 });
        assert.deepEqual(report.verified, { files: 10, bytes: 100 });
        const killed = state.readHistory().find((run) => run.outcome === "unfinished");
        assert.deepEqual(killed?.tally.deleted, { files: 4, bytes: 40 });
        assert.deepEqual(readdirSync(state.path).filter((name) => name.endsWith(".log")), []);
      });
    });
  });
}

Deno.test("two drains killed in a row between marker saves: the next run counts what both deleted", async () => {
  await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const drain = { source, store, state, deleteLocal: true as const };
      await drainKilledAt(drain, 3, 3_600_000);
      await drainKilledAt(drain, 2, 3_600_000);
      assert.equal(readdirSync(source).length, 5);

      const next = await runPrewarm(drain);
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
      const report = progressFromState(state);
      assert.deepEqual(report.total, { files: 10, bytes: 100 });
      assert.deepEqual(report.inRiak, { files: 10, bytes: 100 });
    });
  });
});

/** The totals `progress` gives: in all, in Riak, drained, and the share in Riak. */
function totals(state: StateDirectory) {
  const report = progressFromState(state);
  return {
    total: report.total,
    inRiak: report.inRiak,
    drained: report.drained,
    inRiakShare: report.inRiakShare,
  };
}

/** `count` files in `source` named `prefix`0, `prefix`1, ... holding `content`. */
function addFiles(source: string, prefix: string, count: number, content: string): void {
  for (let i = 0; i < count; i++) writeFileSync(join(source, `${prefix}${i}`), content);
}

// After the first complete pass of a drain, the total was only what was still in SOURCE:
// "total: 3 files, in Riak: 3 (100.0%)" once ten files were drained and three came since.
Deno.test("a drain's totals keep what it drained, across passes, runs and rescans", async () => {
  await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      // The files each run expects to see, for its progress bar and ETA.
      const expected: (number | undefined)[] = [];
      const drain = (maxFiles?: number) =>
        runPrewarm({
          source,
          store,
          state,
          deleteLocal: true,
          concurrency: 1,
          maxFiles,
          onStart: (live) => expected.push(live.expectedFiles),
        });
      const all = (files: number, bytes: number) => ({ files, bytes });
      assert.equal((await drain(4)).exitCode, EXIT_PARTIAL);
      assert.deepEqual(totals(state), {
        total: all(4, 40),
        inRiak: all(4, 40),
        drained: all(4, 40),
        inRiakShare: undefined,
      });
      assert.equal((await drain()).exitCode, EXIT_COMPLETE);
      const firstPass = { total: all(10, 100), inRiak: all(10, 100), drained: all(10, 100) };
      assert.deepEqual(totals(state), { ...firstPass, inRiakShare: 1 });

      // A second pass, over three new files: the first one's drained files are not walked.
      addFiles(source, "n", 3, "y".repeat(5));
      await waitOutRacyWindow();
      assert.equal((await drain(1)).exitCode, EXIT_PARTIAL);
      assert.equal(expected.at(-1), 0, "none of the first pass's files is left to walk");
      const during = progressFromState(state);
      assert.equal(during.passUnfinished, true);
      assert.deepEqual(during.total, all(11, 105));
      assert.deepEqual(during.inRiak, all(11, 105));
      assert.deepEqual(during.drained, all(11, 105));
      // A rescan during the pass finds the other two new files in SOURCE, not yet in Riak.
      const midway = await rescan({ source, store, state });
      assert.deepEqual(midway.total, all(13, 115));
      assert.deepEqual(midway.inRiak, all(11, 105));
      assert.deepEqual(midway.pending, all(2, 10));
      assert.deepEqual(midway.drained, all(11, 105));
      assert.equal((await drain()).exitCode, EXIT_COMPLETE);
      const secondPass = { total: all(13, 115), inRiak: all(13, 115), drained: all(13, 115) };
      assert.deepEqual(totals(state), { ...secondPass, inRiakShare: 1 });
      assert.deepEqual(progressFromState(state).verified, all(13, 115));
      assert.equal(progressFromState(state).etaDays, 0);

      // A rescan walks SOURCE, which holds none of them: they stay in the tree.
      const rescanned = await rescan({ source, store, state });
      assert.deepEqual(rescanned.total, all(13, 115));
      assert.deepEqual(rescanned.inRiak, all(13, 115));
      assert.equal(rescanned.inRiakShare, 1);
      // And a pass after it, over one more file, starts from them.
      addFiles(source, "m", 1, "z".repeat(7));
      await waitOutRacyWindow();
      assert.equal((await drain()).exitCode, EXIT_COMPLETE);
      const thirdPass = { total: all(14, 122), inRiak: all(14, 122), drained: all(14, 122) };
      assert.deepEqual(totals(state), { ...thirdPass, inRiakShare: 1 });
      assert.deepEqual(readdirSync(source), [], "all of it drained");
    });
  });
});

Deno.test("failed files are still to do: no ETA of 'done', and failed directories are no files", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-progress-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  mkdirSync(join(source, "d"));
  for (let i = 0; i < 7; i++) writeFileSync(join(source, i < 4 ? `d/f${i}` : `f${i}`), "x");
  try {
    // Files moved on an earlier day: a rate to divide by.
    state.appendHistory(run("2026-11-01T01:00:00Z", 100, 10));
    await withStore(async ({ store }) => {
      const refusing = wrappedStore(store, {
        writeFile: () => Promise.reject(new Error("Riak refused the put")),
        mkdir: () => Promise.reject(new Error("Riak refused the put")),
      });
      await runPrewarm({ source, store: refusing, state });
    });
    const report = progressFromState(state);
    assert.equal(report.total.files, 7);
    assert.equal(report.inRiak.files, 0);
    assert.equal(report.failed.files, 7);
    assert.equal(report.failedDirectories.files, 1);
    assert.notEqual(report.etaDays, 0, "nothing is in Riak: not done");
    assert.ok(report.etaDays! > 0);
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

Deno.test("history lines not of a record's shape are skipped as damaged ones are", () => {
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    const good = run("2026-11-02T01:00:00Z", 100, 10);
    state.appendHistory(good);
    for (
      const line of [
        '{"startedAt":5}',
        "[]",
        "null",
        '{"startedAt":"2026-11-03T01:00:00Z","endedAt":"x","command":"prewarm","tally":{}}',
        JSON.stringify({ ...good, failures: "not a list" }),
      ]
    ) appendFileSync(join(state.path, "history.jsonl"), line + "\n");
    const report = progressFromState(state);
    assert.equal(report.runs, 1);
    assert.deepEqual(report.lastRun?.failures, []);
    assert.equal(report.lastRun?.startedAt, good.startedAt);
    assert.deepEqual(report.dailyRate, { bytes: 100, files: 10, days: 1 });
  } finally {
    rmSync(state.path, { recursive: true });
  }
});

// `progress --rescan` during a pass added the pass's figures to the rescan's, which held them
// already: "in Riak ~510 (51%)" where 300 of 1000 were, and an ETA to match.
Deno.test("a rescan during a pass is exact, with the runs' globs; later runs add their uploads", async () => {
  const files = { ...numbered(20, "x"), "skip0.tmp": "excluded", "skip1.tmp": "excluded" };
  await withTree(files, async (source, state) => {
    await withStore(async ({ store }) => {
      const filter = new PathFilter([], ["*.tmp"]);
      for (let run = 0; run < 3; run++) {
        await runPrewarm({ source, store, state, filter, maxFiles: 2, concurrency: 1 });
      }
      const rescanned = await rescan({ source, store, state });
      assert.deepEqual(rescanned.total, { files: 20, bytes: 20 }, "*.tmp excluded, as the runs");
      assert.deepEqual(rescanned.lastCompletePass?.globs, { include: [], exclude: ["*.tmp"] });
      assert.deepEqual(rescanned.inRiak, { files: 6, bytes: 6 });
      assert.equal(rescanned.estimated, false, "exact");
      assert.equal(rescanned.inRiakShare, 0.3);
      assert.deepEqual(rescanned.pending, { files: 14, bytes: 14 });
      // Three runs today moved 6 files: 14 more take 14 / 6 days.
      assert.equal(rescanned.etaDays, 14 / 6);
      await runPrewarm({ source, store, state, filter, maxFiles: 2, concurrency: 1 });
      const after = progressFromState(state);
      assert.deepEqual(after.total, { files: 20, bytes: 20 });
      assert.deepEqual(after.inRiak, { files: 8, bytes: 8 });
      assert.equal(after.estimated, true);
      assert.equal(after.etaDays, 12 / 8);
    });
  });
});

// A first pass knows the tree's size (its runs count it alongside: "of ~1401" in their log
// lines), yet progress said "ETA: unknown" for all of it, weeks on a large tree.
Deno.test("during a first pass, the ETA is estimated from the runs' count of the tree", async () => {
  await withTree(numbered(10, "x".repeat(10)), async (source, state) => {
    await withStore(async ({ store }) => {
      await runPrewarm({ source, store, state, maxFiles: 2, concurrency: 1 });
      const first = progressFromState(state);
      assert.equal(first.totalIsLowerBound, true);
      assert.deepEqual(first.total, { files: 2, bytes: 20 });
      assert.deepEqual(first.estimatedTotal, { files: 10, bytes: 100 });
      assert.equal(first.etaDays, 8 / 2, "8 files to go at today's 2 a day");
      assert.equal(first.inRiakShare, undefined);
      // A resumed run counts what is ahead of it; the pass had covered the rest.
      await runPrewarm({ source, store, state, maxFiles: 2, concurrency: 1 });
      const second = progressFromState(state);
      assert.deepEqual(second.estimatedTotal, { files: 10, bytes: 100 });
      assert.equal(second.etaDays, 6 / 4);
      await runPrewarm({ source, store, state });
      const done = progressFromState(state);
      assert.equal(done.estimatedTotal, undefined, "a complete pass has the total itself");
      assert.equal(done.etaDays, 0);
    });
  });
});

// A file verify found missing in Riak, which a rescan then counted as missing too, was taken
// from "in Riak" a second time: "in Riak: 3345" of 3347 files with one missing, and that file
// shown as differing.
Deno.test("a file missing in Riak by both verify and a rescan is counted once, as pending", async () => {
  await withTree(numbered(2, "x".repeat(10)), async (source, state) => {
    await withStore(async ({ store }) => {
      await runPrewarm({ source, store, state });
      writeFileSync(join(source, "late"), "not yet");
      const saved = state.loadState();
      saved.lastVerify = {
        endedAt: new Date().toISOString(),
        checked: { files: 3, bytes: 27 },
        matched: { files: 2, bytes: 20 },
        differing: 1,
        differingBytes: 7,
        differences: [{ path: "/late", status: "missing", detail: "not in Riak" }],
      };
      state.saveState(saved);
      const report = await rescan({ source, store, state });
      assert.deepEqual(report.total, { files: 3, bytes: 27 });
      assert.deepEqual(report.inRiak, { files: 2, bytes: 20 });
      assert.deepEqual(report.pending, { files: 1, bytes: 7 });
      assert.deepEqual(report.differing, { files: 0, bytes: 0 });
    });
  });
});

// After verify found a file differing, progress said "differing: 0", "in Riak 100%" and
// "ETA: done"; files newer in Riak were not shown; "verified: 1401" stood against
// "total: 1399"; and a new pass that had just uploaded new files said "ETA: done".
Deno.test("progress shows what is left over: verify's differences, newer in Riak, an unfinished pass", async () => {
  await withTree(
    { ...numbered(4, "x".repeat(10)), doc: "old local bytes" },
    async (source, state) => {
      utimesSync(join(source, "doc"), new Date(3_000_000), new Date(3_000_000));
      await withStore(async ({ store }) => {
        await store.writeFile("doc", Buffer.from("new"), { mtimeNs: 4_000_000_000_000n });
        await runPrewarm({ source, store, state });
        const warmed = progressFromState(state);
        assert.deepEqual(warmed.newerInRiak, { files: 1, bytes: 15 });
        assert.equal(warmed.etaDays, 0, "done: Riak holds every file, one of them newer");
        // A verify of the tree as it was (two files more, removed since), finding f01 differing,
        // and doc, whose local copy is older than Riak's.
        const saved = state.loadState();
        saved.lastVerify = {
          endedAt: new Date().toISOString(),
          checked: { files: 7, bytes: 80 },
          matched: { files: 5, bytes: 55 },
          differing: 2,
          differingBytes: 25,
          differences: [{ path: "/f01", status: "differs", detail: "sha256 differs" }],
        };
        state.saveState(saved);
        const verified = progressFromState(state);
        assert.deepEqual(verified.total, { files: 5, bytes: 55 });
        assert.deepEqual(verified.differing, { files: 1, bytes: 10 });
        assert.deepEqual(verified.inRiak, { files: 4, bytes: 45 });
        assert.deepEqual(verified.pending, { files: 1, bytes: 10 });
        assert.equal(verified.inRiakShare, 45 / 55);
        assert.deepEqual(verified.verified, { files: 4, bytes: 45 }, "never more than in Riak");
        assert.ok(verified.etaDays! > 0, "not done while a file differs");
        delete saved.lastVerify;
        state.saveState(saved);
        // A new pass: its first run uploads new files, and stops before the end of the tree.
        for (let i = 0; i < 10; i++) writeFileSync(join(source, `a-new${i}`), "new");
        await runPrewarm({ source, store, state, maxFiles: 1, concurrency: 1 });
        const during = progressFromState(state);
        assert.equal(during.passUnfinished, true);
        assert.deepEqual(during.pending, { files: 0, bytes: 0 }, "nothing known pending");
        assert.equal(during.etaDays, undefined, "but not done: the pass has the rest to look at");
      });
    },
  );
});

/** What {@link withDrainTree} hands its test. */
interface DrainTree {
  source: string;
  state: StateDirectory;
  store: Store;
  /** A daemon's log in SOURCE, beside three other files. */
  log: string;
  /** A drain of SOURCE (`--delete-local`) that sees files held open for writing. */
  drain(budget?: { maxFiles?: number }): Promise<PrewarmResult>;
}

/** Runs `fn` on a fresh tree with a daemon's log, a state directory and a store. */
async function withDrainTree(fn: (tree: DrainTree) => Promise<void>): Promise<void> {
  await withTree(
    { "a-daemon.log": "line 0\n", ...numbered(3, "x".repeat(10)) },
    async (source, state) => {
      const log = join(source, "a-daemon.log");
      const inUse = { openWriters: new OpenWriters({ maxAgeMs: 0 }) };
      await withStore(async ({ store }) => {
        const drain = (budget: { maxFiles?: number } = {}) =>
          runPrewarm({ source, store, state, deleteLocal: true, inUse, concurrency: 1, ...budget });
        await fn({ source, state, store, log, drain });
      });
    },
  );
}

// A drain that kept a daemon's log (open for writing) in SOURCE said "ETA: done", as if the
// disk were empty; and a rescan during the drain's pass, which deletes nothing, forgot it.
Deno.test("a drain's local copies kept in use are told apart, and progress is not done while they remain", async () => {
  await withDrainTree(async ({ source, state, store, log, drain }) => {
    const holder = await holdOpen(log, ">>");
    try {
      const run = await drain();
      assert.equal(run.exitCode, EXIT_PARTIAL, JSON.stringify(run.failures));
      assert.deepEqual(run.keptActive, ["/a-daemon.log"]);
    } finally {
      await holder.release();
    }
    const kept = progressFromState(state);
    assert.equal(kept.passUnfinished, false);
    assert.deepEqual(kept.pending, { files: 0, bytes: 0 }, "all of it in Riak");
    assert.deepEqual(kept.keptActive, { files: 1, bytes: 7 });
    assert.equal(kept.etaDays, undefined, "not done: the log is still in SOURCE");
    const next = await drain();
    assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next));
    assert.equal(existsSync(log), false);
    const drained = progressFromState(state);
    assert.deepEqual(drained.keptActive, { files: 0, bytes: 0 });
    assert.equal(drained.etaDays, 0);

    // A pass that kept the log and stopped early; the rest is gone from SOURCE when a
    // rescan counts the tree.
    writeFileSync(log, "line 1\n");
    for (const [name, content] of Object.entries(numbered(3, "y"))) {
      writeFileSync(join(source, name), content);
    }
    const again = await holdOpen(log, ">>");
    try {
      const run = await drain({ maxFiles: 2 });
      assert.deepEqual(run.keptActive, ["/a-daemon.log"]);
      assert.equal(run.stopReason, "max-files");
    } finally {
      await again.release();
    }
    for (const name of ["f01", "f02"]) rmSync(join(source, name));
    const rescanned = await rescan({ source, store, state });
    assert.equal(rescanned.passUnfinished, false, "the rescan covered the tree");
    assert.deepEqual(rescanned.pending, { files: 0, bytes: 0 });
    assert.deepEqual(rescanned.keptActive, { files: 1, bytes: 7 });
    assert.equal(rescanned.etaDays, undefined, "not done: the log is still in SOURCE");
  });
});

// After a drain mount, SOURCE held the copies it kept, and progress said "ETA: done".
Deno.test("progress is not done while a drain mount's kept copies remain", async () => {
  await withDrainTree(async ({ state, drain }) => {
    assert.equal((await drain()).exitCode, EXIT_COMPLETE);
    assert.equal(progressFromState(state).etaDays, 0);
    const kept = progressFromState(state, { files: 1, bytes: 7 });
    assert.deepEqual(kept.keptByMount, { files: 1, bytes: 7 });
    assert.equal(kept.etaDays, undefined, "not done: the kept copy is still in SOURCE");
  });
});

// A rescan after a drain's complete pass, which deletes nothing and so keeps no copy in use,
// showed no copy kept, and "ETA: done" with the daemon's log still in SOURCE.
Deno.test("a rescan after a drain's complete pass keeps the count of the copies it kept in use", async () => {
  await withDrainTree(async ({ source, state, store, log, drain }) => {
    const holder = await holdOpen(log, ">>");
    try {
      const run = await drain();
      assert.deepEqual(run.keptActive, ["/a-daemon.log"]);
    } finally {
      await holder.release();
    }
    assert.equal(state.loadState().currentPass, undefined, "the pass is complete");
    for (const report of [await rescan({ source, store, state }), progressFromState(state)]) {
      assert.equal(report.lastCompletePass?.kind, "rescan");
      assert.deepEqual(report.keptActive, { files: 1, bytes: 7 });
      assert.equal(report.etaDays, undefined, "not done: the log is still in SOURCE");
    }
    const rescannedAgain = await rescan({ source, store, state });
    assert.deepEqual(rescannedAgain.keptActive, { files: 1, bytes: 7 });
    // The next drain deletes it, and its pass's count replaces the one kept.
    assert.equal((await drain()).exitCode, EXIT_COMPLETE);
    assert.equal(existsSync(log), false);
    assert.deepEqual(progressFromState(state).keptActive, { files: 0, bytes: 0 });
  });
});
