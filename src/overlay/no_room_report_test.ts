import assert from "node:assert/strict";
import { Errno, type ReaderCounts } from "../fuse/filesystem.ts";
import { Logger } from "./log.ts";
import { NO_ROOM_REPORT_MS, NoRoomReport } from "./no_room_report.ts";

function logged(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ sink: { write: (line: string) => lines.push(line) } }), lines };
}

/** Polls `done` every 10 ms, for at most 5 s. */
async function waitUntil(done: () => boolean): Promise<void> {
  for (const started = Date.now(); !done();) {
    if (Date.now() - started > 5_000) throw new Error("never came");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("refusals for lack of room are logged once a minute, with how many there were since", () => {
  const { logger, lines } = logged();
  let now = 1_000_000;
  const report = new NoRoomReport(logger, () => now);
  report.refused("write", "ENOSPC: no space left on device, write");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /a disk of the mount is full: .*ENOSPC.* operation=write .*refused=1/);
  for (let second = 1; second < 60; second++) {
    now += 1_000;
    report.refused("create", "ENOSPC: no space left on device, open");
  }
  assert.equal(lines.length, 1, "not one line per request");
  now += NO_ROOM_REPORT_MS - 59_000;
  report.refused("flush", "upload journal j: ENOSPC: no space left on device, write");
  assert.equal(lines.length, 2);
  assert.match(lines[1], /operation=flush .*refused=60/);
});

Deno.test("the writes the reader threads refused are counted from their counters", async () => {
  const { logger, lines } = logged();
  const report = new NoRoomReport(logger);
  const counts: ReaderCounts = {
    ops: { write: 10 },
    errnos: new Map([[Errno.ENOSPC, 3], [Errno.EBADF, 1]]),
    bytesRead: 0,
    bytesWritten: 0,
  };
  try {
    report.watchReaders(() => structuredClone(counts));
    await waitUntil(() => lines.length > 0);
    assert.match(lines[0], /operation=write .*refused=3/);
    counts.errnos.set(Errno.ENOSPC, 7);
    counts.errnos.set(Errno.EDQUOT, 1);
    report.close(); // The last refusals are counted: a mount stopping right after logs them.
    assert.equal(lines.length, 1, "within the minute");
  } finally {
    report.close();
  }
});

Deno.test("refusals the reader threads answered just before the mount stops are logged", () => {
  const { logger, lines } = logged();
  const report = new NoRoomReport(logger);
  report.watchReaders(() => ({
    ops: {},
    errnos: new Map([[Errno.ENOSPC, 2]]),
    bytesRead: 0,
    bytesWritten: 0,
  }));
  report.close();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /refused=2/);
});
