import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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

Deno.test("kept copies: counted while there as kept; a copy changed, deleted or gone is not", async () => {
  await withKeptTree((source, spool) => {
    const errors: Error[] = [];
    const record = new KeptCopies(spool, source, (error) => errors.push(error));
    record.kept("/a.log", "local-active");
    record.kept("/b.log", "local-changed");
    record.kept("/never-there", "local-active");
    record.close();
    assert.deepEqual(keptCopiesIn(spool, source), { files: 2, bytes: 12 });
    writeFileSync(join(source, "b.log"), "changed since");
    assert.deepEqual(keptCopiesIn(spool, source), { files: 1, bytes: 7 });
    record.gone("/a.log");
    record.close();
    assert.deepEqual(keptCopiesIn(spool, source), { files: 0, bytes: 0 });
    // A later mount loads what is still as it was kept, and drops the rest.
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(spool, KEPT_COPIES_NAME), "utf8"))), [
      "/b.log",
    ]);
    const later = new KeptCopies(spool, source, (error) => errors.push(error));
    later.gone("/b.log"); // Dropped at load already: nothing changes, nothing is written.
    later.close();
    assert.ok(existsSync(join(spool, KEPT_COPIES_NAME)));
    later.kept("/a.log", "local-active");
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
