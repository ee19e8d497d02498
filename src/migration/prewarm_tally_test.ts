/**
 * The pass tally (state.json's `currentPass`, then `lastCompletePass`) must count each file of
 * the tree once, in one outcome, however many budget-limited runs the pass took and whatever
 * was retried along the way. Each test is one sequence of runs that once broke that.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import { failingUntilRecovered, withSourceAndState, wrappedStore } from "./_test_support.ts";
import { waitOutRacyWindow } from "./local_file.ts";
import { EXIT_COMPLETE, EXIT_FAILED, EXIT_PARTIAL, runPrewarm } from "./prewarm.ts";
import { type PassTally, pathFromHex } from "./state.ts";
import { compareWalkOrder } from "./walk.ts";

function text(path: unknown): string {
  return Buffer.from(path as Uint8Array).toString();
}

/** `count` small files named f00, f01, ..., old enough not to be "being written". */
async function makeFiles(source: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(2, "0")}`);
  for (const name of names) {
    writeFileSync(join(source, name), `file ${name}`);
    utimesSync(join(source, name), 1_600_000_000, 1_600_000_000);
  }
  await waitOutRacyWindow();
  return names;
}

function files(tally: PassTally): Record<string, number> {
  return Object.fromEntries(Object.entries(tally).map(([key, value]) => [key, value.files]));
}

/** What a pass tally of a tree of `count` files, all in Riak at the end, must show. */
function assertEachFileOnce(tally: PassTally | undefined, count: number): void {
  assert.ok(tally, "the pass completed");
  const shown = JSON.stringify(files(tally));
  assert.ok(tally.inRiak.files <= tally.seen.files, `inRiak <= seen: ${shown}`);
  assert.equal(tally.seen.files, count, `each file seen once in the pass: ${shown}`);
  assert.equal(tally.inRiak.files, count, `each file in Riak once: ${shown}`);
  assert.equal(tally.failed.files, 0, `nothing failed that is in Riak at the end: ${shown}`);
  assert.equal(tally.busy.files, 0, `nothing busy that is in Riak at the end: ${shown}`);
}

Deno.test("pass tally: a file failed in a partial run and stored by the next run is counted once", async () => {
  await withSourceAndState(async (source, state) => {
    const names = await makeFiles(source, 10);
    await withStore(async ({ store }) => {
      // f02's upload fails during the first run only.
      const { store: flaky, recover } = failingUntilRecovered(store, "f02");
      // The budget is spent: no end-of-run retry, f02 goes to the retry list.
      const first = await runPrewarm({ source, store: flaky, state, maxFiles: 5, concurrency: 1 });
      assert.equal(first.exitCode, EXIT_FAILED);
      assert.equal(first.stopReason, "max-files");
      assert.deepEqual(first.failures.map((f) => f.path), ["/f02"]);
      assert.ok(state.loadState().cursorHex, "the pass goes on in the next run");
      recover();
      const second = await runPrewarm({ source, store: flaky, state, concurrency: 1 });
      assert.equal(second.exitCode, EXIT_COMPLETE, JSON.stringify(second.failures));
      for (const name of names) assert.ok(await store.tryStat(name), `${name} stored`);
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, names.length);
    });
  });
});

Deno.test("pass tally: a directory failed in a partial run and created by the next run is no failure of the pass", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "a0"), "a0");
    mkdirSync(join(source, "d"));
    for (let i = 0; i < 4; i++) writeFileSync(join(source, `e${i}`), `e${i}`);
    for (const name of ["a0", "e0", "e1", "e2", "e3"]) {
      utimesSync(join(source, name), 1_600_000_000, 1_600_000_000);
    }
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      let down = true; // creating d fails during the first run only
      const flaky = wrappedStore(store, {
        mkdir: (path, options) =>
          down && text(path) === "d"
            ? Promise.reject(new Error("Riak is restarting"))
            : store.mkdir(path, options),
      });
      // Walk order a0, d, e0...: a0 and e0 spend the budget, after d failed.
      const first = await runPrewarm({ source, store: flaky, state, maxFiles: 2, concurrency: 1 });
      assert.equal(first.exitCode, EXIT_FAILED);
      assert.deepEqual(first.failures.map((f) => f.path), ["/d"]);
      assert.ok(state.loadState().cursorHex, "the pass goes on in the next run");
      down = false;
      const second = await runPrewarm({ source, store: flaky, state, concurrency: 1 });
      assert.equal(second.exitCode, EXIT_COMPLETE, JSON.stringify(second.failures));
      assert.equal((await store.stat("d")).type, "directory");
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, 5);
    });
  });
});

Deno.test("pass tally: the last pass's failure is left to the next pass's walk and counted once", async () => {
  await withSourceAndState(async (source, state) => {
    const names = await makeFiles(source, 6);
    await withStore(async ({ store }) => {
      // f05's uploads fail during the first pass only.
      const { store: flaky, recover } = failingUntilRecovered(store, "f05");
      // Pass 1, one run: walked to the end, f05 failed (also at the end-of-run retry).
      const pass1 = await runPrewarm({ source, store: flaky, state, concurrency: 1 });
      assert.equal(pass1.exitCode, EXIT_FAILED);
      assert.deepEqual(pass1.failures.map((f) => f.path), ["/f05"]);
      assert.equal(state.loadState().cursorHex, undefined, "pass 1 is complete");
      assert.equal(state.loadState().retryHex?.length, 1);

      // f00..f04 change, so pass 2's walk has uploads to spend its budget on.
      for (const name of names.slice(0, 5)) {
        writeFileSync(join(source, name), `changed ${name}`);
        utimesSync(join(source, name), 1_700_000_000, 1_700_000_000);
      }
      await waitOutRacyWindow();
      recover();
      // Pass 2, run 1: the walk starts over, so f05 waits for it; the budget stops it early.
      const run1 = await runPrewarm({ source, store: flaky, state, maxFiles: 2, concurrency: 1 });
      assert.equal(run1.exitCode, EXIT_PARTIAL, JSON.stringify(run1.failures));
      assert.ok(state.loadState().cursorHex, "pass 2 goes on in the next run");
      assert.equal(await store.tryStat("f05"), undefined, "not retried ahead of the walk");
      // Pass 2, run 2: walks on from the cursor, to f05.
      const run2 = await runPrewarm({ source, store: flaky, state, concurrency: 1 });
      assert.equal(run2.exitCode, EXIT_COMPLETE, JSON.stringify(run2.failures));
      assert.ok(await store.tryStat("f05"), "the walk stored f05");
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, names.length);
    });
  });
});

Deno.test("pass tally: a file stored, then retried at the end of the run after its local deletion failed, is in Riak once", async () => {
  await withSourceAndState(async (source, state) => {
    await makeFiles(source, 1);
    await withStore(async ({ store }) => {
      let readBackFails = true; // the first read-back of f00 (to verify before deleting) fails
      const flaky = wrappedStore(store, {
        readRange: (path, offset, length) => {
          if (readBackFails && text(path) === "f00") {
            readBackFails = false;
            throw new Error("Riak timed out");
          }
          return store.readRange(path, offset, length);
        },
      });
      // f00: uploaded (inRiak), deletion fails (failed); the end-of-run retry finds it in Riak.
      const result = await runPrewarm({ source, store: flaky, state, deleteLocal: true });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
      assert.equal(result.tally.deleted.files, 1, "deleted by the end-of-run retry");
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, 1);
    });
  });
});

Deno.test("run tally: a file the end-of-run retry uploads again counts once as uploaded, with the bytes of both", async () => {
  await withSourceAndState(async (source, state) => {
    await makeFiles(source, 1);
    await withStore(async ({ store }) => {
      let readBackFails = true; // f00's first read-back fails, and f00 changes meanwhile
      const flaky = wrappedStore(store, {
        readRange: (path, offset, length) => {
          if (readBackFails && text(path) === "f00") {
            readBackFails = false;
            writeFileSync(join(source, "f00"), "rewritten meanwhile, longer");
            throw new Error("Riak timed out");
          }
          return store.readRange(path, offset, length);
        },
      });
      const result = await runPrewarm({ source, store: flaky, state, deleteLocal: true });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
      assert.equal(readBackFails, false, "the first read-back failed");
      const sent = "file f00".length + "rewritten meanwhile, longer".length;
      assert.deepEqual(result.tally.uploaded, { files: 1, bytes: sent }, "a file, two uploads");
      assert.equal(result.tally.inRiak.files, 1);
      assert.equal(result.tally.deleted.files, 1);
      assert.equal(state.readHistory().at(-1)?.tally.uploaded.files, 1, "the rate's count");
    });
  });
});

Deno.test("pass tally: a file found in Riak that changes while hashed for deletion is in Riak once", async () => {
  await withSourceAndState(async (source, state) => {
    await makeFiles(source, 1);
    await withStore(async ({ store }) => {
      assert.equal((await runPrewarm({ source, store, state })).exitCode, EXIT_COMPLETE);
      let rewrite = true; // f00 is rewritten once, right after its look-up in Riak
      const changing = wrappedStore(store, {
        tryStat: (path, options) => {
          if (rewrite && text(path) === "f00") {
            rewrite = false;
            writeFileSync(join(source, "f00"), "rewritten meanwhile, longer");
          }
          return store.tryStat(path, options);
        },
      });
      // Attempt 1 counts f00 inRiak, then its hash read sees the change; a later attempt
      // counts the new version in Riak again.
      const drain = await runPrewarm({
        source,
        store: changing,
        state,
        deleteLocal: true,
        changeRetries: 10,
      });
      assert.equal(rewrite, false, "the file was rewritten during the run");
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.equal((await store.readFile("f00")).toString(), "rewritten meanwhile, longer");
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, 1);
    });
  });
});

Deno.test("pass tally: a listed failure ahead of the cursor is left to the walk and counted once", async () => {
  await withSourceAndState(async (source, state) => {
    // Enough files that the last one is past whatever the first run had in flight.
    const names = await makeFiles(source, 12);
    const last = names[names.length - 1];
    await withStore(async ({ store }) => {
      const first = await runPrewarm({ source, store, state, maxFiles: 4, concurrency: 1 });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      const cursor = pathFromHex(state.loadState().cursorHex!);
      assert.ok(compareWalkOrder(Buffer.from(last), cursor) > 0, `${last} is ahead of the cursor`);
      // As a run that checked ahead would leave it: the last file, past the cursor, failed and
      // counted.
      const saved = state.loadState();
      const lastFile = { files: 1, bytes: `file ${last}`.length };
      saved.currentPass!.tally.seen.files += 1;
      saved.currentPass!.tally.seen.bytes += lastFile.bytes;
      saved.currentPass!.tally.failed.files += 1;
      saved.currentPass!.tally.failed.bytes += lastFile.bytes;
      const counted = JSON.stringify({ seen: lastFile, failed: lastFile });
      const lastEntry = `${Buffer.from(last).toString("hex")} ${counted}`;
      state.saveState({ ...saved, retryHex: [...(saved.retryHex ?? []), lastEntry] });
      const second = await runPrewarm({ source, store, state, concurrency: 1 });
      assert.equal(second.exitCode, EXIT_COMPLETE, JSON.stringify(second.failures));
      // Every file the first run did not upload (deferred and retried, or walked), once.
      assert.equal(second.tally.seen.files, names.length - 4);
      assertEachFileOnce(state.loadState().lastCompletePass?.tally, names.length);
    });
  });
});
