/**
 * A state directory an earlier build (7cc39b4, before drainedEarlier) left behind, read by
 * this one: an upgrade in the middle of a migration.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import { progressFromState } from "./progress.ts";
import { EXIT_COMPLETE, runPrewarm } from "./prewarm.ts";
import { waitOutRacyWindow } from "./local_file.ts";
import { StateDirectory, TALLY_KEYS } from "./state.ts";

/** A tally as 7cc39b4 wrote it: every category, these ones non-zero. */
function oldTally(counted: Record<string, [number, number]>): string {
  return JSON.stringify(Object.fromEntries(TALLY_KEYS.map((key) => {
    const [files, bytes] = counted[key] ?? [0, 0];
    return [key, { files, bytes }];
  })));
}

/** What a drain of `files` files of `bytes` bytes counted in 7cc39b4: all of them deleted. */
function oldDrainTally(files: number, bytes: number): string {
  const all: [number, number] = [files, bytes];
  return oldTally({ seen: all, inRiak: all, uploaded: all, verified: all, deleted: all });
}

/**
 * 7cc39b4's state directory after two complete `prewarm --delete-local` passes: the first
 * drained 20 files, the second the 5 written since. Its state.json kept only the last pass.
 */
function writeOldDrainState(state: StateDirectory): void {
  state.ensure();
  writeFileSync(
    join(state.path, "state.json"),
    `{"format":"riakfs-migration-state/1","lastCompletePass":{` +
      `"startedAt":"2026-12-08T04:37:33.470Z","kind":"prewarm","tally":${
        oldDrainTally(5, 50000)
      },"globs":{"include":[],"exclude":[]},"endedAt":"2026-12-08T04:37:33.539Z"},` +
      `"retryHex":[]}\n`,
  );
  const record = (startedAt: string, endedAt: string, tally: string) =>
    `{"startedAt":"${startedAt}","endedAt":"${endedAt}","command":"prewarm",` +
    `"outcome":"complete","exitCode":0,"dryRun":false,"tally":${tally},"failures":[]}\n`;
  writeFileSync(
    join(state.path, "history.jsonl"),
    record("2026-12-08T04:37:33.180Z", "2026-12-08T04:37:33.295Z", oldDrainTally(20, 200000)) +
      record("2026-12-08T04:37:33.470Z", "2026-12-08T04:37:33.539Z", oldDrainTally(5, 50000)),
  );
}

/** Runs `fn` with a fresh SOURCE and a state directory 7cc39b4 left, as `writeOld` writes it. */
async function withOldState(
  writeOld: (state: StateDirectory) => void,
  fn: (source: string, state: StateDirectory) => Promise<void>,
): Promise<void> {
  const source = mkdtempSync(join(tmpdir(), "riakfs-compat-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    writeOld(state);
    await fn(source, state);
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
}

// It showed "total: 5 files" and "drained: 5 files ... by every drain so far" after the
// upgrade, and every later pass started from those 5.
Deno.test("an earlier build's drain state counts the copies its earlier passes deleted, from its history", async () => {
  await withOldState(writeOldDrainState, (_source, state) => {
    const report = progressFromState(state);
    const all = { files: 25, bytes: 250000 };
    assert.deepEqual(report.total, all);
    assert.deepEqual(report.inRiak, all);
    assert.deepEqual(report.drained, all);
    assert.equal(report.inRiakShare, 1);
    assert.equal(report.etaDays, 0);
    return Promise.resolve();
  });
});

Deno.test("the first pass of this build over an earlier build's drain state starts with every copy drained before it", async () => {
  await withOldState(writeOldDrainState, async (source, state) => {
    writeFileSync(join(source, "new"), "x".repeat(10));
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const result = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result));
    });
    const saved = JSON.parse(readFileSync(join(state.path, "state.json"), "utf8"));
    assert.deepEqual(saved.lastCompletePass.drainedEarlier, { files: 25, bytes: 250000 });
    const report = progressFromState(state);
    assert.deepEqual(report.total, { files: 26, bytes: 250010 });
    assert.deepEqual(report.drained, { files: 26, bytes: 250010 });
  });
});

/** Hex of a path, as state.json keeps it. */
function hex(path: string): string {
  return Buffer.from(path).toString("hex");
}

/**
 * 7cc39b4's state of a `prewarm --delete-local` stopped by SIGTERM mid-pass: a cursor, the
 * paths under way left to retry (bare hex), a count of the tree, and no drainedEarlier.
 */
function writeOldPassInProgress(state: StateDirectory): void {
  state.ensure();
  const [moved, drained]: [number, number][] = [[270, 76995135], [70, 14000000]];
  const tally = oldTally({
    seen: moved,
    inRiak: moved,
    uploaded: moved,
    verified: drained,
    deleted: drained,
  });
  writeFileSync(
    join(state.path, "state.json"),
    `{"format":"riakfs-migration-state/1","currentPass":{"startedAt":"2026-12-08T04:35:56.800Z",` +
      `"kind":"prewarm","tally":${tally},"globs":{"include":[],"exclude":[]},` +
      `"treeFiles":442},"cursorHex":"${hex("many/m319")}","cursorGlobs":{"include":[],` +
      `"exclude":[]},"retryHex":["${hex("many/m305")}","${hex("many/m319")}"]}\n`,
  );
}

Deno.test("a pass an earlier build's drain left in progress shows as it did, and this build's run resumes it at its cursor and retries", async () => {
  await withOldState(writeOldPassInProgress, async (source, state) => {
    const before = progressFromState(state);
    assert.deepEqual(before.total, { files: 270, bytes: 76995135 });
    assert.equal(before.totalIsLowerBound, true);
    assert.equal(before.estimatedTotal?.files, 442);
    assert.deepEqual(before.inRiak, { files: 270, bytes: 76995135 });
    assert.deepEqual(before.drained, { files: 70, bytes: 14000000 });
    mkdirSync(join(source, "many"));
    // Before the cursor (walked by the pass already), a retry, and after the cursor.
    for (const name of ["m2", "m305", "m4"]) writeFileSync(join(source, "many", name), "x");
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const result = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result));
    });
    assert.deepEqual(readdirSync(join(source, "many")), ["m2"]);
    const after = progressFromState(state);
    assert.deepEqual(after.total, { files: 272, bytes: 76995137 });
    assert.deepEqual(after.drained, { files: 72, bytes: 14000002 });
  });
});
