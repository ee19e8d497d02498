import assert from "node:assert/strict";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { KEPT_COPIES_NAME, KeptCopies, keptCopiesIn } from "./kept_copies.ts";
import { withSourceAndState } from "./_test_support.ts";

/** Runs `body` with a source holding `a.log` and `b.log`, and a spool directory. */
async function withKeptTree(body: (source: string, spool: string) => void): Promise<void> {
  await withSourceAndState((source, state) => {
    writeFileSync(join(source, "a.log"), "line 0\n");
    writeFileSync(join(source, "b.log"), "12345");
    const spool = join(state.path, "spool");
    mkdirSync(spool);
    body(source, spool);
    return Promise.resolve();
  });
}

Deno.test("kept copies: counted while the same file is there, at its size now; one replaced, deleted or gone is not", async () => {
  await withKeptTree((source, spool) => {
    const errors: Error[] = [];
    const record = new KeptCopies(spool, source, (error) => errors.push(error));
    record.kept("/a.log", "local-active");
    record.kept("/b.log", "local-changed");
    record.kept("/never-there", "local-active");
    record.close();
    assert.deepEqual(keptCopiesIn(spool, source), { files: 2, bytes: 12 });
    // Still written by the process that held it open: still the copy kept.
    appendFileSync(join(source, "a.log"), "line 1\n");
    assert.deepEqual(keptCopiesIn(spool, source), { files: 2, bytes: 19 });
    writeFileSync(join(source, "b.new"), "another file");
    renameSync(join(source, "b.new"), join(source, "b.log"));
    assert.deepEqual(keptCopiesIn(spool, source), { files: 1, bytes: 14 });
    record.gone("/a.log");
    record.close();
    assert.deepEqual(keptCopiesIn(spool, source), { files: 0, bytes: 0 });
    const recorded = () =>
      Object.keys(JSON.parse(readFileSync(join(spool, KEPT_COPIES_NAME), "utf8")));
    assert.deepEqual(recorded(), ["/b.log"]);
    // A later mount loads only what is still there, and writes that at its first change.
    const later = new KeptCopies(spool, source, (error) => errors.push(error));
    later.kept("/a.log", "local-active");
    later.close();
    assert.deepEqual(recorded(), ["/a.log"]);
    later.gone("/a.log");
    later.close();
    assert.equal(existsSync(join(spool, KEPT_COPIES_NAME)), false, "none kept: no record");
    assert.deepEqual(errors, []);
  });
});

Deno.test("kept copies: a record that cannot be written is reported, and counts nothing", async () => {
  await withKeptTree((source, spool) => {
    const errors: Error[] = [];
    const record = new KeptCopies(join(spool, "missing"), source, (error) => errors.push(error));
    record.kept("/a.log", "local-active");
    record.close();
    assert.equal(errors.length, 1);
    assert.deepEqual(keptCopiesIn(join(spool, "missing"), source), { files: 0, bytes: 0 });
    writeFileSync(join(spool, KEPT_COPIES_NAME), "not json");
    assert.deepEqual(keptCopiesIn(spool, source), { files: 0, bytes: 0 });
  });
});
