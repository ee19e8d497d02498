import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeletionLog,
  deletionLogName,
  isDeletionLogName,
  readDeletionLog,
  removeDeletionLogs,
} from "./deletion_log.ts";

Deno.test("a deletion log counts its whole lines, and a marker save moves on to the next file", () => {
  const directory = mkdtempSync(join(tmpdir(), "riakfs-deleted-"));
  try {
    const first = deletionLogName(1_765_170_000_000, 0);
    const second = deletionLogName(1_765_170_000_000, 1);
    assert.ok(isDeletionLogName(first) && isDeletionLogName(second));
    assert.equal(isDeletionLogName("../state.json"), false);
    const log = new DeletionLog(directory, first);
    assert.equal(existsSync(join(directory, first)), false, "no file before a deletion");
    log.add(10);
    log.add(0);
    log.add(32);
    assert.deepEqual(readDeletionLog(directory, first), { files: 3, bytes: 42 });
    log.switchTo(second);
    log.add(5);
    removeDeletionLogs(directory, second);
    assert.deepEqual(readdirSync(directory), [second]);
    // A line cut short by a full disk is no whole deletion: not counted.
    appendFileSync(join(directory, second), "12");
    assert.deepEqual(readDeletionLog(directory, second), { files: 1, bytes: 5 });
    assert.deepEqual(readDeletionLog(directory, first), { files: 0, bytes: 0 }, "gone");
    log.close();
    removeDeletionLogs(directory);
    assert.deepEqual(readdirSync(directory), []);
  } finally {
    rmSync(directory, { recursive: true });
  }
});
