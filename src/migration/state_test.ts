import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withFullFilesystem } from "../util/_full_filesystem.ts";
import {
  addTally,
  emptyTally,
  HISTORY_FAILURES_LIMIT,
  HISTORY_MAX_BYTES,
  pathFromHex,
  pathToHex,
  RUN_MARKER_FILE,
  type RunMarker,
  type RunRecord,
  StateDirectory,
  unfinishedRecord,
} from "./state.ts";

Deno.test("StateDirectory.for is stable per source and namespace", () => {
  const a = StateDirectory.for("/srv/data", "default/riakfs", "/state");
  assert.equal(a.path, StateDirectory.for("/srv/data/", "default/riakfs", "/state").path);
  assert.notEqual(a.path, StateDirectory.for("/srv/data", "default/other", "/state").path);
  assert.notEqual(a.path, StateDirectory.for("/srv/other", "default/riakfs", "/state").path);
  assert.match(a.path, /^\/state\/[0-9a-f]{16}$/);
  assert.equal(a.lockFile, `${a.path}/lock`);
});

Deno.test("state round-trips, and damaged state or history lines are tolerated", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-state-"));
  try {
    const warnings: string[] = [];
    const state = new StateDirectory(join(dir, "s"), (message) => warnings.push(message));
    assert.deepEqual(state.loadState(), { format: "riakfs-migration-state/1" });
    assert.deepEqual(state.readHistory(), []);
    const tally = emptyTally();
    tally.uploaded = { files: 2, bytes: 10 };
    state.saveState({
      format: "riakfs-migration-state/1",
      cursorHex: pathToHex(Buffer.from("a/b")),
    });
    assert.equal(pathFromHex(state.loadState().cursorHex!).toString(), "a/b");
    const record: RunRecord = {
      startedAt: "2026-11-24T01:00:00.000Z",
      endedAt: "2026-11-24T02:00:00.000Z",
      command: "prewarm",
      outcome: "complete",
      exitCode: 0,
      dryRun: false,
      tally,
      failures: [],
    };
    state.appendHistory(record);
    writeFileSync(join(state.path, "history.jsonl"), '{"cut short', { flag: "a" });
    state.appendHistory(record);
    assert.deepEqual(state.readHistory(), [record, record]);
    assert.deepEqual(warnings, []);
    // Damaged: set aside (never overwritten unseen), said, and started over.
    const damaged = [
      "garbage",
      "[]",
      JSON.stringify({ format: "other/9" }),
      JSON.stringify({ format: "riakfs-migration-state/1", lastCompletePass: "x" }),
      JSON.stringify({
        format: "riakfs-migration-state/1",
        currentPass: { tally: { seen: { files: "many", bytes: 1 } } },
      }),
    ];
    for (const [index, text] of damaged.entries()) {
      writeFileSync(join(state.path, "state.json"), text);
      assert.deepEqual(state.loadState(), { format: "riakfs-migration-state/1" }, text);
      assert.equal(warnings.length, index + 1, text);
      const aside: string = /kept as (\S+),/.exec(warnings[index])![1];
      assert.equal(readFileSync(aside, "utf8"), text);
      rmSync(aside);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("history keeps a few failed paths per run and drops its oldest runs past its bound", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-state-"));
  try {
    const state = new StateDirectory(join(dir, "s"));
    const failures = Array.from({ length: 1000 }, (_, index) => `/dir/${"x".repeat(200)}-${index}`);
    const record = (index: number): RunRecord => ({
      startedAt: new Date(Date.UTC(2026, 0, 1) + index * 86_400_000).toISOString(),
      endedAt: new Date(Date.UTC(2026, 0, 1) + index * 86_400_000 + 3_600_000).toISOString(),
      command: "prewarm",
      outcome: "failed",
      exitCode: 1,
      dryRun: false,
      tally: emptyTally(),
      failures,
    });
    state.appendHistory(record(0));
    assert.equal(state.readHistory()[0].failures.length, HISTORY_FAILURES_LIMIT);
    const runs = 2000;
    for (let index = 1; index < runs; index++) state.appendHistory(record(index));
    const size = statSync(join(state.path, "history.jsonl")).size;
    assert.ok(size <= HISTORY_MAX_BYTES, `${size} bytes`);
    const kept = state.readHistory();
    assert.ok(kept.length > 100 && kept.length < runs, `${kept.length} runs kept`);
    assert.equal(kept.at(-1)!.startedAt, record(runs - 1).startedAt, "the newest runs stay");
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("addTally sums every category", () => {
  const a = emptyTally();
  const b = emptyTally();
  b.seen = { files: 3, bytes: 30 };
  b.failed = { files: 1, bytes: 5 };
  addTally(a, b);
  addTally(a, b);
  assert.deepEqual(a.seen, { files: 6, bytes: 60 });
  assert.deepEqual(a.failed, { files: 2, bytes: 10 });
  assert.deepEqual(a.inRiak, { files: 0, bytes: 0 });
});

Deno.test("a run's marker is replaced by its record; one left by a run that died becomes an unfinished record", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-state-"));
  try {
    const state = new StateDirectory(join(dir, "s"));
    const marker = (day: number, files = 0): RunMarker => {
      const tally = emptyTally();
      tally.uploaded = { files, bytes: files * 10 };
      const startedAt = `2026-11-${day}T01:00:00.000Z`;
      return { startedAt, pid: 4242, savedAt: startedAt.replace("01:00", "01:30"), tally };
    };
    const ended = (day: number): RunRecord => ({
      ...unfinishedRecord(marker(day)),
      outcome: "complete",
      exitCode: 0,
    });
    assert.equal(state.unfinishedRun(), undefined);
    assert.equal(state.beginRun(marker(10)), undefined, "nothing left before the first run");
    assert.deepEqual(state.unfinishedRun(), marker(10));
    state.saveRunMarker(marker(10, 3));
    assert.deepEqual(state.unfinishedRun()?.tally.uploaded, { files: 3, bytes: 30 });
    state.endRun(ended(10));
    assert.equal(state.unfinishedRun(), undefined);
    assert.equal(existsSync(join(state.path, RUN_MARKER_FILE)), false);

    // Killed after saving its tallies: the next run records it, then marks itself.
    state.beginRun(marker(11));
    state.saveRunMarker(marker(11, 7));
    const left = state.beginRun(marker(12));
    assert.deepEqual(left, unfinishedRecord(marker(11, 7)));
    assert.deepEqual(state.readHistory().map((run) => [run.outcome, run.exitCode]), [
      ["complete", 0],
      ["unfinished", null],
    ]);
    assert.equal(state.readHistory()[1].endedAt, "2026-11-11T01:30:00.000Z", "last seen");
    assert.deepEqual(state.unfinishedRun(), marker(12));

    // Died between its record and the marker's removal: it did end, and is recorded once.
    state.appendHistory(ended(12));
    assert.equal(state.unfinishedRun(), undefined);
    assert.equal(state.beginRun(marker(13)), undefined);
    assert.equal(state.readHistory().length, 3);

    writeFileSync(join(state.path, RUN_MARKER_FILE), '{"startedAt": 5, "cut sh');
    assert.equal(state.unfinishedRun(), undefined, "a damaged marker is no run");
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a state directory its full disk has no room for says what to do; one already there takes its runs", async () => {
  await withFullFilesystem(({ directory, fillInodes }) => {
    const there = new StateDirectory(join(directory, "there"));
    there.ensure();
    fillInodes(); // Not a directory more, as on a full ext4.
    assert.throws(
      () => new StateDirectory(join(directory, "new")).ensure(),
      /cannot make the state directory .*new: .*the disk is full: give --state-dir on another filesystem/,
    );
    there.ensure();
  });
});

Deno.test("a state directory whose disk has no inode left for the lock says what to do", async () => {
  await withFullFilesystem(({ directory, fillInodes }) => {
    const there = new StateDirectory(join(directory, "there"));
    there.ensure();
    fillInodes();
    assert.throws(
      () => there.lock(),
      /cannot take the lock .*there\/lock: .*not even an inode: give --state-dir on another filesystem/,
    );
  });
});
