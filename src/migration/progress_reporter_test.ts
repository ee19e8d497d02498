import assert from "node:assert/strict";
import {
  formatBytes,
  formatDuration,
  progressBar,
  progressLine,
  ProgressReporter,
} from "./progress_reporter.ts";
import { emptyTally } from "./state.ts";

function snapshot(expectedFiles?: number) {
  const tally = emptyTally();
  tally.seen = { files: 250, bytes: 0 };
  tally.uploaded = { files: 100, bytes: 30_000_000 };
  tally.failed = { files: 2, bytes: 0 };
  return { tally, elapsedMs: 10_000, expectedFiles };
}

Deno.test("progressLine summarises counts, rate and ETA for logs", () => {
  assert.equal(
    progressLine(snapshot(1000)),
    "250 files checked of ~1000, 100 uploaded (30.0 MB, 3.0 MB/s), 2 failed, elapsed 10s, ETA 30s",
  );
  assert.equal(
    progressLine(snapshot()),
    "250 files checked, 100 uploaded (30.0 MB, 3.0 MB/s), 2 failed, elapsed 10s",
  );
});

Deno.test("progressBar draws the fraction done with rate and ETA", () => {
  assert.equal(
    progressBar(snapshot(1000), 10),
    "[###.......] 25% 250/1000 files 3.0 MB/s ETA 30s 2 failed",
  );
  assert.equal(
    progressBar(snapshot(), 10),
    "250 files checked, 100 uploaded, 3.0 MB/s, 2 failed",
  );
});

// A second pass over a tree that grew printed "3113 files checked of ~3096, ..., ETA 0s" for
// minutes while the new files were uploaded.
Deno.test("past the expected count, the ETA is not given: what is left is unknown", () => {
  assert.equal(
    progressLine(snapshot(200)),
    "250 files checked of ~200, 100 uploaded (30.0 MB, 3.0 MB/s), 2 failed, elapsed 10s",
  );
  assert.equal(progressBar(snapshot(200), 10), "[##########] 100% 250/200 files 3.0 MB/s 2 failed");
});

Deno.test("formatBytes and formatDuration", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.5 MB");
  assert.equal(formatDuration(42_000), "42s");
  assert.equal(formatDuration(185_000), "3m05s");
  assert.equal(formatDuration(3_720_000), "1h02m");
  assert.equal(formatDuration(273_600_000), "3d04h");
});

Deno.test("ProgressReporter prints whole lines on a non-terminal and clears its bar on a terminal", async () => {
  // The reporter's timer is unref'd: hold the event loop open while waiting on it.
  const keepAlive = setTimeout(() => {}, 60_000);
  const lines: string[] = [];
  const reporter = new ProgressReporter({
    sink: { write: (text: string) => lines.push(text), isTTY: false },
    label: "riakfs prewarm",
    intervalMs: 1,
  });
  let calls = 0;
  const done = new Promise<void>((resolve) => {
    reporter.start(() => {
      if (++calls === 2) resolve();
      return snapshot();
    });
  });
  await done;
  reporter.stop();
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.match(line, /^riakfs prewarm: 250 files checked, .*\n$/);

  const drawn: string[] = [];
  const bar = new ProgressReporter({
    sink: { write: (text: string) => drawn.push(text), isTTY: true },
    label: "x",
    redrawMs: 1,
  });
  const drawnOnce = new Promise<void>((resolve) => bar.start(() => (resolve(), snapshot(1000))));
  await drawnOnce;
  bar.stop();
  clearTimeout(keepAlive);
  assert.equal(drawn.at(-1), "\r\x1b[K");
  assert.ok(drawn.slice(0, -1).every((text) => text.startsWith("\r\x1b[K[")));
});
