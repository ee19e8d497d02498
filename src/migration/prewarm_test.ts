import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectionError } from "../riak/errors.ts";
import { startTestRiak } from "../riak-server/testing.ts";
import { RiakRequestError } from "../store/errors.ts";
import { openRiakStoreClient } from "../store/riak_adapter.ts";
import { putLegacyRiakFuseFile, withStore } from "../store/_test_support.ts";
import type { StoreClient } from "../store/client.ts";
import { DirectoryIndex } from "../store/directory.ts";
import { Store } from "../store/store.ts";
import {
  CAN_MOUNT,
  failingWrites,
  holdOpen,
  listingNothing,
  saveAtomically,
  withSourceAndState,
  withTmpfsAt,
  wrappedStore,
} from "./_test_support.ts";
import { PathFilter } from "./glob.ts";
import { OpenWriters } from "./open_writers.ts";
import { acquireLock, LockedError } from "../util/lock.ts";
import {
  EXIT_COMPLETE,
  EXIT_FAILED,
  EXIT_PARTIAL,
  FAILED_LIST_FILE,
  type LiveRun,
  type PrewarmEvent,
  type PrewarmStore,
  runPrewarm,
} from "./prewarm.ts";
import { dailyRate, progressFromState } from "./progress.ts";
import { verifyTree } from "./verify.ts";
import { FileChangedError } from "./file_identity.ts";
import { waitOutRacyWindow } from "./local_file.ts";
import { emptyTally, StateDirectory } from "./state.ts";
import { hashStoredFile } from "./stored_file.ts";
import { currentIdentity } from "./file_identity.ts";
import { deleteIfVerified } from "./verified_delete.ts";
import { withFullFilesystem } from "../util/_full_filesystem.ts";

/** A request that found no Riak node, as the store reports it. */
function unanswered(): RiakRequestError {
  const refused = new ConnectionError("every Riak node is down (connect ECONNREFUSED)", "cluster");
  return new RiakRequestError("get", undefined, refused);
}

function makeSource(): string {
  const root = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  mkdirSync(join(root, "d/e"), { recursive: true });
  mkdirSync(join(root, "empty-dir"));
  writeFileSync(join(root, "a.txt"), "alpha");
  writeFileSync(join(root, "empty"), "");
  writeFileSync(join(root, "d/b.bin"), Buffer.alloc(3000, 7));
  writeFileSync(join(root, "d/e/c.tmp"), "scratch");
  symlinkSync("a.txt", join(root, "link"));
  return root;
}

/**
 * A mkdir of `path` cut off between the directory's object and its entry in the parent (a
 * crash, a connection lost): the directory is in Riak, no listing names it.
 */
async function mkdirCutOff(client: StoreClient, bucket: string, path: string): Promise<void> {
  // Cut off for good: neither the entry nor the object's undoing reaches Riak.
  const cutOff = new Store({
    ...client,
    updateSet: () => Promise.reject(new Error("connection lost")),
    delete: () => Promise.reject(new Error("connection lost")),
  }, { namespace: { bucket } });
  await assert.rejects(cutOff.mkdir(path), /connection lost/);
}

Deno.test("prewarm uploads what Riak lacks, skips what it holds and re-uploads changes", async () => {
  const source = makeSource();
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    await withStore(async ({ store }) => {
      const first = await runPrewarm({ source, store, state, concurrency: 3 });
      assert.equal(first.exitCode, EXIT_COMPLETE, JSON.stringify(first.failures));
      assert.equal(first.tally.seen.files, 5);
      assert.equal(first.tally.uploaded.files, 5);
      assert.equal((await store.stat("empty-dir")).type, "directory");
      assert.equal((await store.stat("link")).type, "symlink");
      assert.equal((await hashStoredFile(store, Buffer.from("d/b.bin"))).size, 3000);

      const second = await runPrewarm({ source, store, state });
      assert.equal(second.tally.uploaded.files, 0);
      assert.equal(second.tally.inRiak.files, 5);

      writeFileSync(join(source, "a.txt"), "alpha, longer");
      const tomorrow = new Date(Date.now() + 86_400_000); // newer than Riak's copy
      utimesSync(join(source, "d/b.bin"), tomorrow, tomorrow);
      const dry = await runPrewarm({ source, store, state, dryRun: true });
      assert.equal(dry.tally.differing.files, 2);
      assert.equal(dry.tally.uploaded.files, 0);
      const third = await runPrewarm({ source, store, state, checksum: true });
      assert.equal(third.tally.uploaded.files, 2);
      assert.equal(third.tally.verified.files, 2, "unchanged files were hashed and compared");
      assert.equal((await store.stat("a.txt")).size, 13);
      assert.equal(state.readHistory().length, 3, "dry runs leave no record");
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

Deno.test("prewarm stops at --max-files with exit 3 and the next run resumes", async () => {
  await withSourceAndState(async (source, state) => {
    for (let i = 0; i < 10; i++) writeFileSync(join(source, `f${i}`), `file ${i}`);
    writeFileSync(join(source, "skip.tmp"), "excluded");
    await withStore(async ({ store }) => {
      const filter = new PathFilter([], ["*.tmp"]);
      const first = await runPrewarm({ source, store, state, maxFiles: 4, filter });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      assert.equal(first.stopReason, "max-files");
      assert.equal(first.tally.uploaded.files, 4);
      const second = await runPrewarm({ source, store, state, filter });
      assert.equal(second.exitCode, EXIT_COMPLETE);
      assert.equal(second.tally.seen.files, 6, "resumed after the last finished file");
      assert.equal(second.tally.uploaded.files, 6);
      assert.equal(await store.tryStat("skip.tmp"), undefined);
      const saved = state.loadState();
      assert.equal(saved.cursorHex, undefined);
      assert.equal(saved.lastCompletePass?.tally.seen.files, 10);
    });
  });
});

Deno.test("a first pass counts the tree alongside: progress has a total, also when resumed", async () => {
  await withSourceAndState(async (source, state) => {
    for (let i = 0; i < 10; i++) writeFileSync(join(source, `f${i}`), `file ${i}`);
    writeFileSync(join(source, "skip.tmp"), "excluded");
    symlinkSync("f0", join(source, "link"));
    await withStore(async ({ store }) => {
      const filter = new PathFilter([], ["*.tmp"]);
      const runs: LiveRun[] = [];
      // Uploads wait for the count, so the test sees it whatever the machine's speed.
      const countKnown = async () => {
        while (runs.at(-1)?.expectedFiles === undefined) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      };
      const gated = wrappedStore(store);
      const counted: PrewarmStore = {
        ...gated,
        writeFile: async (path, content, options) => {
          await countKnown();
          return gated.writeFile(path, content, options);
        },
      };
      const onStart = (started: LiveRun) => runs.push(started);
      const first = await runPrewarm({
        source,
        store: counted,
        state,
        filter,
        maxFiles: 4,
        onStart,
      });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      assert.equal(runs[0].expectedFiles, 11, "10 files and a symlink; *.tmp excluded");
      const second = await runPrewarm({ source, store: counted, state, filter, onStart });
      assert.equal(second.exitCode, EXIT_COMPLETE);
      assert.equal(runs[1].expectedFiles, 7, "what the resumed walk has left");
      assert.equal(second.tally.seen.files, 7);
      await runPrewarm({ source, store, state, filter, onStart });
      assert.equal(runs[2].expectedFiles, 11, "after a complete pass: that pass's count");
    });
  });
});

Deno.test("prewarm refuses to run while another holds the lock", async () => {
  const source = makeSource();
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    await withStore(async ({ store }) => {
      state.ensure();
      const held = acquireLock(state.lockFile, process.ppid);
      try {
        await assert.rejects(runPrewarm({ source, store, state }), LockedError);
      } finally {
        rmSync(state.lockFile, { force: true });
        held.release();
      }
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

/**
 * Uploads `file` as "aaaa", then makes it "bbbb" with the same size and mtime: other content
 * that only a hash of the local file tells apart.
 */
async function uploadThenRewriteKeepingSizeAndMtime(
  file: string,
  run: { source: string; store: Store; state: StateDirectory },
): Promise<void> {
  writeFileSync(file, "aaaa");
  utimesSync(file, new Date(2_000_000), new Date(2_000_000));
  assert.equal((await runPrewarm(run)).exitCode, EXIT_COMPLETE);
  writeFileSync(file, "bbbb");
  utimesSync(file, new Date(2_000_000), new Date(2_000_000));
}

Deno.test("a drain finding other bytes in Riak (same size and mtime) uploads the local file, then deletes it", async () => {
  await withSourceAndState(async (source, state) => {
    const file = join(source, "same-size-and-mtime");
    await withStore(async ({ store }) => {
      await uploadThenRewriteKeepingSizeAndMtime(file, { source, store, state });
      const drain = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.equal(drain.tally.uploaded.files, 1, "uploaded");
      assert.equal(drain.tally.inRiak.files, 1, "counted once");
      assert.equal(drain.tally.deleted.files, 1);
      assert.equal(existsSync(file), false);
      assert.equal((await store.readFile("same-size-and-mtime")).toString(), "bbbb");
    });
  });
});

Deno.test("a drain puts back the file a deletion killed halfway left set aside, then uploads it: an atomic save then is not lost", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      const file = join(source, "doc");
      writeFileSync(file, "first");
      // Pre-warmed with its file's mtime, as a run does; a store's "now" could be later than
      // the coarser clock of the application's save below, and Riak's copy then newer.
      const firstMtimeNs = statSync(file, { bigint: true }).mtimeNs;
      await store.writeFile("doc", Buffer.from("first"), { mtimeNs: firstMtimeNs });
      const hashed = {
        identity: (await currentIdentity(file))!,
        sha256: (await hashStoredFile(store, Buffer.from("doc"))).sha256,
      };
      // Killed right after the move: the application's new version is set aside.
      const killed = deleteIfVerified(store, Buffer.from("doc"), file, hashed, undefined, {
        beforeStep: (step) => {
          if (step === "set-aside") saveAtomically(file, "second");
          else throw new Error("killed");
        },
      });
      await assert.rejects(killed, /killed/);
      assert.equal(existsSync(file), false);
      const events: PrewarmEvent[] = [];
      const drain = await runPrewarm({
        source,
        store,
        state,
        deleteLocal: true,
        onEvent: (event) => events.push(event),
      });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.deepEqual(events, [{ kind: "set-aside", path: "/doc", restored: true }]);
      assert.equal((await store.readFile("doc")).toString(), "second");
      assert.equal(drain.tally.deleted.files, 1);
      assert.deepEqual(readdirSync(source), [], "nothing left set aside");
    });
  });
});

Deno.test("a drain's upload of other bytes is only over the version it read: a newer one written since stays", async () => {
  await withSourceAndState(async (source, state) => {
    const file = join(source, "f");
    await withStore(async ({ store }) => {
      await uploadThenRewriteKeepingSizeAndMtime(file, { source, store, state });
      // Written through the mount between the drain's look-up and its upload.
      let raced = false;
      const racing = wrappedStore(store, {
        writeFile: async (path, content, options) => {
          if (!raced) {
            raced = true;
            await store.writeFile(path, Buffer.from("cccc"), { mode: 0o644 });
          }
          return await store.writeFile(path, content, options);
        },
      });
      const drain = await runPrewarm({ source, store: racing, state, deleteLocal: true });
      assert.equal(raced, true);
      assert.notEqual(drain.tally.deleted.files, 1);
      assert.equal(existsSync(file), true, "the local copy stays");
      assert.equal((await store.readFile("f")).toString(), "cccc", "the newer write stays");
    });
  });
});

Deno.test("prewarm, its count and verify leave a mount's spool and temporary files alone, also with --delete-local", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "a.txt"), "data");
    // A mount's: its journal and a staged file owe Riak uploads; a publish in progress.
    mkdirSync(join(source, ".riakfs-spool", "staged"), { recursive: true });
    writeFileSync(join(source, ".riakfs-spool", "journal"), '{"op":"add","id":1}\n');
    writeFileSync(join(source, ".riakfs-spool", "staged", "s1"), "staged");
    writeFileSync(join(source, ".riakfs-publish-0a1b2c3d4e5f"), "half");
    // Only the top one is a spool: below, the name is the user's data.
    mkdirSync(join(source, "photos", ".riakfs-spool"), { recursive: true });
    writeFileSync(join(source, "photos", ".riakfs-spool", "keep.txt"), "mine");
    // Not the form of a deletion's private name (.riakfs-deleting.<12 hex>...) nor of a
    // publish's (.riakfs-publish-<12 hex>): the user's.
    writeFileSync(join(source, "photos", ".riakfs-deleting.notes"), "mine too");
    writeFileSync(join(source, "photos", ".riakfs-publish-notes"), "mine as well");
    await withStore(async ({ store }) => {
      const verified = await verifyTree({ source, store });
      assert.equal(verified.checked, 4);
      assert.deepEqual(verified.differences.map((file) => file.path).sort(), [
        "/a.txt",
        "/photos/.riakfs-deleting.notes",
        "/photos/.riakfs-publish-notes",
        "/photos/.riakfs-spool/keep.txt",
      ]);
      const run = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.equal(run.tally.seen.files, 4);
      assert.equal(progressFromState(state).total?.files, 4);
      assert.equal(
        (await store.readFile("photos/.riakfs-deleting.notes")).toString(),
        "mine too",
      );
      assert.equal(
        (await store.readFile("photos/.riakfs-publish-notes")).toString(),
        "mine as well",
      );
      assert.equal(await store.tryStat(".riakfs-spool"), undefined);
      assert.equal(await store.tryStat(".riakfs-publish-0a1b2c3d4e5f"), undefined);
      assert.equal((await store.readFile("photos/.riakfs-spool/keep.txt")).toString(), "mine");
      assert.equal(readFileSync(join(source, ".riakfs-spool", "staged", "s1"), "utf8"), "staged");
      assert.equal(existsSync(join(source, ".riakfs-spool", "journal")), true);
      assert.equal(existsSync(join(source, ".riakfs-publish-0a1b2c3d4e5f")), true);
      assert.equal(existsSync(join(source, "a.txt")), false, "drained");
    });
  });
});

Deno.test("prewarm retries failed files once at the end of the run", async () => {
  await withSourceAndState(async (source, state) => {
    for (let i = 0; i < 5; i++) writeFileSync(join(source, `f${i}`), `file ${i}`);
    await withStore(async ({ store }) => {
      let outage = 3; // the first three uploads fail, as while a node restarts
      const flaky = failingWrites(
        store,
        () => outage-- > 0 ? new Error("Riak is restarting") : undefined,
      );
      const result = await runPrewarm({ source, store: flaky, state, concurrency: 1 });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
      assert.deepEqual(result.tally.seen, { files: 5, bytes: 30 });
      assert.equal(result.tally.uploaded.files, 5);
      assert.equal(result.tally.failed.files, 0);
      assert.deepEqual(state.loadState().retryHex, []);

      outage = 100; // down for good: failed, listed, remembered for the next run
      writeFileSync(join(source, "late"), "late");
      const down = await runPrewarm({ source, store: flaky, state });
      assert.equal(down.exitCode, EXIT_FAILED);
      assert.deepEqual(down.failures.map((f) => f.path), ["/late"]);
      assert.equal(down.tally.failed.files, 1);
      assert.equal(down.tally.seen.files, 6);
      assert.deepEqual(state.loadState().retryHex, [Buffer.from("late").toString("hex")]);
    });
  });
});

Deno.test("prewarm never replaces a newer version written through the mount", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      writeFileSync(join(source, "doc"), "old local bytes");
      utimesSync(join(source, "doc"), new Date(3_000_000), new Date(3_000_000));
      await store.writeFile("doc", Buffer.from("new"), { mtimeNs: 4_000_000_000_000n });
      const result = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
      assert.equal(result.tally.uploaded.files, 0);
      assert.equal(result.tally.newerInRiak.files, 1);
      assert.equal((await store.readFile("doc")).toString(), "new");
      assert.equal(existsSync(join(source, "doc")), true, "not Riak's content: kept");
    });
  });
});

Deno.test("every failed file is listed and retried, beyond what is held in memory", async () => {
  await withSourceAndState(async (source, state) => {
    const names = Array.from({ length: 7 }, (_, i) => `f${i}`);
    for (const name of names) writeFileSync(join(source, name), name);
    const retryList = () => {
      const { retryHex = [], retryMoreFile } = state.loadState();
      const more = retryMoreFile
        ? readFileSync(join(state.path, retryMoreFile), "utf8").split("\n").filter(Boolean)
        : [];
      return [...retryHex, ...more].map((hex) => Buffer.from(hex, "hex").toString()).sort();
    };
    await withStore(async ({ store }) => {
      let down = true;
      const flaky = failingWrites(store, () => down ? new Error("Riak is down") : undefined);
      const failed = await runPrewarm({ source, store: flaky, state, failuresInMemory: 2 });
      assert.equal(failed.exitCode, EXIT_FAILED);
      assert.equal(failed.tally.failed.files, 7);
      assert.equal(failed.failures.length, 2, "the summary lists what memory holds");
      assert.equal(failed.failuresFile, join(state.path, FAILED_LIST_FILE));
      const listed = readFileSync(failed.failuresFile!, "utf8").trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.deepEqual(listed.map((f) => f.path).sort(), names.map((n) => `/${n}`));
      assert.ok(listed.every((f) => f.error === "Riak is down"));
      assert.deepEqual(retryList(), names);
      assert.deepEqual(state.loadState().retryHex?.length, 2);
      assert.equal(existsSync(join(state.path, "failed.spill")), false, "spill file removed");

      // A run that crashed after writing its retry list, before state.json named it: the
      // list is not this state's, so it is neither retried nor kept.
      const orphan = join(state.path, "retry-more-crashed.txt");
      writeFileSync(orphan, names.map((name) => Buffer.from(name).toString("hex") + "\n").join(""));

      // Riak is back, but the budget covers three uploads: the rest stays on the list.
      down = false;
      const partial = await runPrewarm({
        source,
        store: flaky,
        state,
        failuresInMemory: 2,
        maxFiles: 3,
      });
      assert.equal(partial.exitCode, EXIT_PARTIAL, JSON.stringify(partial.failures));
      assert.equal(partial.tally.uploaded.files, 3);
      assert.equal(retryList().length, 4);
      assert.equal(existsSync(orphan), false, "the crashed run's list is removed");

      const done = await runPrewarm({ source, store: flaky, state, failuresInMemory: 2 });
      assert.equal(done.exitCode, EXIT_COMPLETE, JSON.stringify(done.failures));
      assert.deepEqual(retryList(), []);
      assert.deepEqual(readdirSync(state.path).filter((name) => name.startsWith("retry-more")), []);
      assert.equal(existsSync(join(state.path, FAILED_LIST_FILE)), false);
      for (const name of names) assert.equal((await store.readFile(name)).toString(), name);
    });
  });
});

Deno.test("files Riak holds but its listing misses keep their newer version and are not re-sent", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    mkdirSync(join(source, "d"));
    for (const name of ["newer.txt", "same.txt", "z-new.txt"]) {
      writeFileSync(join(source, "d", name), `local ${name}`);
    }
    await withStore(async ({ store }) => {
      const localMtimeNs = (name: string) =>
        statSync(join(source, "d", name), { bigint: true }).mtimeNs;
      await store.mkdir("d");
      await store.writeFile("d/newer.txt", Buffer.from("written through the mount"), {
        mtimeNs: localMtimeNs("newer.txt") + 1_000_000_000n,
      });
      await store.writeFile("d/same.txt", Buffer.from("local same.txt"), {
        mtimeNs: localMtimeNs("same.txt"),
      });
      let listings = 0;
      // A listing that names nothing (written before their entries, or a stale listing).
      const unlisting = listingNothing(store, () => listings++);
      const result = await runPrewarm({
        source,
        store: unlisting,
        state,
        concurrency: 1,
        maxFiles: 1, // refused puts give their file back: z-new.txt still fits
      });
      assert.ok(listings > 0, "the directory was listed");
      assert.equal(result.exitCode, EXIT_COMPLETE);
      assert.equal(result.tally.uploaded.files, 1);
      assert.equal(result.tally.newerInRiak.files, 1);
      assert.equal(result.tally.inRiak.files, 3);
      assert.equal((await store.readFile("d/newer.txt")).toString(), "written through the mount");
      assert.equal((await store.readFile("d/same.txt")).toString(), "local same.txt");
      assert.equal((await store.readFile("d/z-new.txt")).toString(), "local z-new.txt");
    });
  } finally {
    rmSync(source, { recursive: true, force: true });
    rmSync(state.path, { recursive: true, force: true });
  }
});

Deno.test("a directory its parent's listing does not name is created with the local attributes, never over a file", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    mkdirSync(join(source, "taken"));
    mkdirSync(join(source, "new"), { mode: 0o750 });
    chmodSync(join(source, "new"), 0o750);
    writeFileSync(join(source, "new", "inside.txt"), "inside");
    await withStore(async ({ store }) => {
      await store.writeFile("taken", Buffer.from("a file where the source has a directory"));
      const unlisting = listingNothing(store);
      const result = await runPrewarm({ source, store: unlisting, state });
      assert.equal(result.exitCode, EXIT_FAILED);
      assert.deepEqual(result.failures.map((failure) => failure.path), ["/taken"]);
      assert.match(result.failures[0].error, /Riak holds a file where SOURCE now has a directory/);
      assert.equal((await store.stat("taken")).type, "file");
      const created = await store.stat("new");
      assert.equal(created.type, "directory");
      assert.equal(created.mode, 0o750);
      assert.equal((await store.readFile("new/inside.txt")).toString(), "inside");
    });
  } finally {
    rmSync(source, { recursive: true, force: true });
    rmSync(state.path, { recursive: true, force: true });
  }
});

Deno.test("a file busy in a partial run is retried first by the next run", async () => {
  await withSourceAndState(async (source, state) => {
    for (let i = 0; i < 20; i++) {
      const file = join(source, `f${String(i).padStart(2, "0")}`);
      writeFileSync(file, "x");
      utimesSync(file, 1_600_000_000, 1_600_000_000);
    }
    // Not being written right now: their ctime (set by utimes) is past the racy window.
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      let hot = true; // f01 keeps changing while it is read, during the first run only
      const changing = wrappedStore(store);
      changing.writeFile = (path, content, options) =>
        hot && Buffer.from(path as Uint8Array).toString() === "f01"
          ? Promise.reject(new FileChangedError("f01"))
          : store.writeFile(path, content, options);
      const first = await runPrewarm({
        source,
        store: changing,
        state,
        maxFiles: 12,
        concurrency: 1,
        changeRetries: 1,
      });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      assert.deepEqual(first.busy, ["/f01"]);
      hot = false;
      const second = await runPrewarm({ source, store: changing, state, concurrency: 1 });
      assert.equal(second.exitCode, EXIT_COMPLETE);
      assert.ok(await store.tryStat("f01"), "the busy file, walked past, is stored");
      const pass = state.loadState().lastCompletePass!.tally;
      assert.deepEqual(
        [pass.seen.files, pass.inRiak.files, pass.busy.files],
        [20, 20, 0],
        "the pass counts f01 once, in Riak",
      );
    });
  });
});

Deno.test("a directory replaced by a symlink after it was listed is not followed out of SOURCE", async () => {
  const base = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const source = join(base, "src");
  const outside = join(base, "outside");
  mkdirSync(join(source, "b"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(source, "b/y.txt"), "y");
  writeFileSync(join(outside, "secret.txt"), "outside the source");
  const state = new StateDirectory(join(base, "state"));
  try {
    await withStore(async ({ store }) => {
      // A first pass, so that the second counts nothing ahead: only its walk asks the filter.
      assert.equal((await runPrewarm({ source, store, state })).exitCode, EXIT_COMPLETE);
      class SwappingFilter extends PathFilter {
        override walksInto(path: Uint8Array): boolean {
          if (Buffer.from(path).toString() === "b") {
            // Swapped after the root was listed, before b is walked into.
            renameSync(join(source, "b"), join(base, "b-moved"));
            symlinkSync(outside, join(source, "b"));
          }
          return true;
        }
      }
      const result = await runPrewarm({
        source,
        store,
        state,
        deleteLocal: true,
        concurrency: 1,
        filter: new SwappingFilter(),
      });
      assert.equal(result.exitCode, EXIT_FAILED, "b is reported, not walked");
      assert.equal(await store.tryStat("b/secret.txt"), undefined, "nothing outside uploaded");
      assert.ok(existsSync(join(outside, "secret.txt")), "nothing outside deleted");
    });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("a newer version written to Riak while prewarm uploads the older local file is kept", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "big.iso"), Buffer.alloc(3 * 1024 * 1024, 1));
    utimesSync(join(source, "big.iso"), 1_600_000_000, 1_600_000_000);
    await withStore(async ({ store }) => {
      await store.writeFile("big.iso", Buffer.from("oldest"), {
        mtimeNs: 1_500_000_000_000_000_000n,
      });
      const newer = Buffer.from("written through the mount meanwhile");
      const racing = wrappedStore(store);
      racing.writeFile = (path, content, options) => {
        async function* whileUploading() {
          let first = true;
          for await (const piece of content as AsyncIterable<Buffer>) {
            yield piece;
            if (!first) continue;
            first = false;
            await store.writeFile(path, newer, { mtimeNs: 1_700_000_000_000_000_000n });
          }
        }
        return store.writeFile(path, whileUploading(), options);
      };
      const result = await runPrewarm({ source, store: racing, state, concurrency: 1 });
      assert.equal(result.exitCode, EXIT_COMPLETE);
      assert.equal(result.tally.newerInRiak.files, 1);
      assert.ok(newer.equals(await store.readFile("big.iso")), "the newer version stays");
    });
  });
});

Deno.test("a local symlink older than what Riak holds under its name leaves Riak's version", async () => {
  await withSourceAndState(async (source, state) => {
    symlinkSync("old-target", join(source, "link"));
    lutimesSync(join(source, "link"), 1_500_000_000, 1_500_000_000);
    await withStore(async ({ store }) => {
      await store.writeFile("link", Buffer.from("a file written through the mount"), {
        mtimeNs: 1_700_000_000_000_000_000n,
      });
      const result = await runPrewarm({ source, store, state });
      assert.equal(result.exitCode, EXIT_COMPLETE);
      assert.equal(result.tally.newerInRiak.files, 1);
      assert.equal((await store.stat("link")).type, "file");
    });
  });
});

Deno.test("a subtree left to walk is walked by the next runs, resuming inside it past a budget", async () => {
  await withSourceAndState(async (source, state) => {
    const files = ["b/1", "b/2", "b/3", "b/4", "b/5", "b/6", "b/c/7", "d/8"];
    for (const file of files) {
      mkdirSync(join(source, file, ".."), { recursive: true });
      writeFileSync(join(source, file), file);
    }
    const hex = (path: string) => Buffer.from(path).toString("hex");
    await withStore(async ({ store }) => {
      // As a run leaves it when it could not read b: its pass goes on past b (its cursor on d),
      // and b is listed.
      await store.mkdir("b");
      await store.mkdir("d");
      state.saveState({
        format: "riakfs-migration-state/1",
        cursorHex: hex("d"),
        currentPass: { startedAt: new Date().toISOString(), kind: "prewarm", tally: emptyTally() },
        retryHex: [`${hex("b")}/`],
      });
      const first = await runPrewarm({ source, store, state, maxFiles: 2, concurrency: 1 });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      assert.equal(first.tally.uploaded.files, 2);
      // The budget stopped the walk below b: it resumes there, after the last entry done.
      const resumes = state.loadState().retryHex!.filter((entry) =>
        entry.startsWith(`${hex("b")}/`)
      );
      assert.equal(resumes.length, 1, JSON.stringify(state.loadState().retryHex));
      assert.notEqual(resumes[0], `${hex("b")}/`, "after an entry below b");
      const rest = await runPrewarm({ source, store, state });
      assert.equal(rest.exitCode, EXIT_COMPLETE, JSON.stringify(rest.failures));
      assert.equal(rest.tally.uploaded.files, files.length - 2);
      for (const file of files) assert.equal((await store.readFile(file)).toString(), file);
      assert.equal(
        state.loadState().lastCompletePass?.tally.seen.files,
        files.length,
        "each file once",
      );
    });
  });
});

Deno.test("a file in Riak without its directory entry gets it back, before a drain deletes it", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "d"));
    for (const name of ["x", "y", "z"]) {
      writeFileSync(join(source, "d", name), `file ${name}`);
      utimesSync(join(source, "d", name), 1_600_000_000, 1_600_000_000);
    }
    await withStore(async ({ client, store }) => {
      // d/z stored by a write that ended before its entry (a put that landed after its client
      // gave up): the object is there, its directory does not name it.
      const zObject = store.layout.file(Buffer.from("d/z")).object;
      await store.writeFile("d/z", Buffer.from("file z"), { mtimeNs: 1_600_000_000_000_000_000n });
      const stored = await client.get(zObject);
      await store.remove("d/z");
      const { value, usermeta, contentType } = stored.contents[0];
      await client.put(zObject, { value, usermeta, contentType: contentType! });
      const names = async () => (await Array.fromAsync(store.list("d"))).map((e) => `${e.name}`);
      await runPrewarm({ source, store, state, dryRun: true });
      assert.deepEqual(await names(), [], "a dry run changes nothing");
      const relisted: string[] = [];
      const run = await runPrewarm({
        source,
        store,
        state,
        deleteLocal: true,
        onEvent: (event) => event.kind === "relisted" && relisted.push(event.path),
      });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(relisted, ["/d/z"]);
      assert.deepEqual((await names()).sort(), ["x", "y", "z"]);
      assert.deepEqual(readdirSync(join(source, "d")), [], "drained once listed");
    });
  });
});

Deno.test("a directory in Riak without its entry (a mkdir cut off) is listed again, and so are its files", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "d/e"), { recursive: true });
    writeFileSync(join(source, "d/e/f"), "file f");
    await withStore(async ({ client, bucket, store }) => {
      await store.mkdir("d");
      await mkdirCutOff(client, bucket, "d/e");
      const names = async (path: string) =>
        (await Array.fromAsync(store.list(path))).map((e) => `${e.name}`);
      assert.deepEqual(await names("d"), []);
      const relisted: string[] = [];
      const run = await runPrewarm({
        source,
        store,
        state,
        onEvent: (event) => event.kind === "relisted" && relisted.push(event.path),
      });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(relisted, ["/d/e"]);
      assert.deepEqual(await names("d"), ["e"]);
      assert.deepEqual(await names("d/e"), ["f"]);
      assert.equal((await store.readFile("d/e/f")).toString(), "file f");
    });
  });
});

/**
 * `store` recording each write's path and whether it was a put of a name believed new
 * (`unlisted`), with `before` run ahead of each such put; its listings are the store's own.
 */
function recordingBlindPuts(
  store: Store,
  before: (path: string) => Promise<void> = () => Promise.resolve(),
): { store: PrewarmStore; blind: string[]; writes: string[] } {
  const blind: string[] = [];
  const writes: string[] = [];
  const recording: PrewarmStore = {
    ...wrappedStore(store, {
      writeFile: async (path, content, options) => {
        const name = Buffer.from(path as Uint8Array).toString();
        writes.push(name);
        if (options?.unlisted) {
          blind.push(name);
          await before(name);
        }
        return await store.writeFile(path, content, options);
      },
    }),
    listedNames: (options) => store.listedNames(options),
  };
  return { store: recording, blind, writes };
}

/**
 * Stores a file as a write cut off between its object and its directory entry leaves it (a
 * crash, a put that landed after its client gave up): readable by key, in no listing.
 */
async function fileWithoutEntry(
  client: StoreClient,
  store: Store,
  path: string,
  content: string,
  mtimeNs: bigint,
): Promise<void> {
  const object = store.layout.file(Buffer.from(path)).object;
  await store.writeFile(path, Buffer.from(content), { mtimeNs });
  const stored = await client.get(object);
  await store.remove(path);
  const { value, usermeta, contentType } = stored.contents[0];
  await client.put(object, { value, usermeta, contentType: contentType! });
}

Deno.test("files Riak holds without their entry (crash leftovers) are never put over blind: each is decided on as found, and listed again", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "d"));
    for (const name of ["listed", "newer", "same", "older", "new"]) {
      writeFileSync(join(source, "d", name), `local ${name}`);
      utimesSync(join(source, "d", name), 1_600_000_000, 1_600_000_000);
    }
    const localNs = 1_600_000_000_000_000_000n;
    await withStore(async ({ client, store }) => {
      await store.writeFile("d/listed", Buffer.from("local listed"), { mtimeNs: localNs });
      await fileWithoutEntry(client, store, "d/newer", "written through a mount", localNs + 1n);
      await fileWithoutEntry(client, store, "d/same", "local same", localNs);
      await fileWithoutEntry(client, store, "d/older", "an older version", localNs - 1n);
      const names = async () =>
        (await Array.fromAsync(store.list("d"))).map((entry) => `${entry.name}`).sort();
      assert.deepEqual(await names(), ["listed"]);
      const recording = recordingBlindPuts(store);
      const relisted: string[] = [];
      const run = await runPrewarm({
        source,
        store: recording.store,
        state,
        concurrency: 1,
        onEvent: (event) => event.kind === "relisted" && relisted.push(event.path),
      });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      // Believed new from d's listing: put only if absent, which Riak refused for the three.
      assert.deepEqual(recording.blind.sort(), ["d/new", "d/newer", "d/older", "d/same"]);
      assert.equal((await store.readFile("d/newer")).toString(), "written through a mount");
      assert.equal((await store.readFile("d/same")).toString(), "local same");
      assert.equal((await store.readFile("d/older")).toString(), "local older");
      assert.equal((await store.readFile("d/new")).toString(), "local new");
      assert.equal(run.tally.newerInRiak.files, 1);
      assert.equal(run.tally.uploaded.files, 2, "older and new; same is not sent again");
      assert.deepEqual(relisted.sort(), ["/d/newer", "/d/same"]);
      assert.deepEqual(await names(), ["listed", "new", "newer", "older", "same"]);
    });
  });
});

Deno.test("a file written through a mount between the listing and the put is kept, in a directory Riak had and in one the run made", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "had"));
    mkdirSync(join(source, "made"));
    for (const path of ["had/other", "had/x", "made/y"]) {
      writeFileSync(join(source, path), `local ${path}`);
      utimesSync(join(source, path), 1_600_000_000, 1_600_000_000);
    }
    await withStore(async ({ store, another }) => {
      const mount = another();
      await mount.mkdir("had");
      await mount.writeFile("had/other", Buffer.from("local had/other"), {
        mtimeNs: 1_600_000_000_000_000_000n,
      });
      const written: string[] = [];
      const recording = recordingBlindPuts(store, async (path) => {
        if (path === "had/other") return;
        // The listing said absent; the mount writes the name before the pre-warm's put.
        written.push(path);
        await mount.writeFile(path, Buffer.from(`the mount's ${path}`), {
          mtimeNs: 1_700_000_000_000_000_000n,
        });
      });
      const run = await runPrewarm({ source, store: recording.store, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(written.sort(), ["had/x", "made/y"]);
      assert.equal((await store.readFile("had/x")).toString(), "the mount's had/x");
      assert.equal((await store.readFile("made/y")).toString(), "the mount's made/y");
      assert.equal(run.tally.newerInRiak.files, 2);
      assert.equal(run.tally.uploaded.files, 0);
    });
  });
});

Deno.test("a file whose name Riak lists as a directory is not put: the directory and what is in it stay", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "d"));
    writeFileSync(join(source, "d/x"), "a local file named as Riak's directory");
    writeFileSync(join(source, "d/new"), "new");
    await withStore(async ({ store }) => {
      await store.mkdir("d");
      await store.mkdir("d/x");
      await store.writeFile("d/x/inner", Buffer.from("inner"));
      const recording = recordingBlindPuts(store);
      const run = await runPrewarm({ source, store: recording.store, state });
      assert.equal(run.exitCode, EXIT_FAILED);
      assert.deepEqual(run.failures.map((failure) => failure.path), ["/d/x"]);
      assert.deepEqual(recording.blind, ["d/new"], "x is listed: looked up, never put blind");
      assert.equal((await store.stat("d/x")).type, "directory");
      assert.equal(await store.tryStat("d/x", { fileOnly: true }), undefined, "no file beside it");
      assert.equal((await store.readFile("d/x/inner")).toString(), "inner");
      assert.equal((await store.readFile("d/new")).toString(), "new");
    });
  });
});

Deno.test("a directory Riak lists tens of thousands of entries of: its new files are still put without a look-up each", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "big"));
    const local = ["e000007", "new-1", "new-2", "new-3"];
    for (const name of local) writeFileSync(join(source, "big", name), `local ${name}`);
    await withStore(async ({ client, store }) => {
      await store.mkdir("big");
      // Entries alone, added the way writes add them: more than one shard level holds.
      const index = new DirectoryIndex(client, { capacity: 2000, fanout: 16 });
      const directory = store.layout.directory(Buffer.from("big"));
      for (let start = 0; start < 30_000; start += 10_000) {
        await index.add(
          directory,
          Array.from({ length: 10_000 }, (_, i) => ({
            type: "file" as const,
            name: Buffer.from(`e${String(start + i).padStart(6, "0")}`),
          })),
        );
      }
      await store.writeFile("big/e000007", Buffer.from("in Riak"), {
        mtimeNs: statSync(join(source, "big/e000007"), { bigint: true }).mtimeNs + 1n,
      });
      const recording = recordingBlindPuts(store);
      const run = await runPrewarm({ source, store: recording.store, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(recording.blind.sort(), ["big/new-1", "big/new-2", "big/new-3"]);
      assert.equal((await store.readFile("big/e000007")).toString(), "in Riak");
      assert.equal((await store.readFile("big/new-2")).toString(), "local new-2");
    });
  });
});

Deno.test("a directory whose own step failed is made by its first file with the source's attributes", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "private"), { mode: 0o700 });
    chmodSync(join(source, "private"), 0o700);
    writeFileSync(join(source, "private/f"), "f");
    await withStore(async ({ store }) => {
      const refusing = wrappedStore(store, {
        mkdir: () => Promise.reject(new RiakRequestError("put", undefined, new Error("timeout"))),
      });
      const run = await runPrewarm({ source, store: refusing, state });
      assert.equal((await store.readFile("private/f")).toString(), "f");
      assert.equal((await store.stat("private")).mode, 0o700, "not the default 0755");
      // Retried at the end of the run, the directory is found made: no failure is left.
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
    });
  });
});

Deno.test("a symlink keeps its own mtime in Riak, so one made again later replaces it", async () => {
  await withSourceAndState(async (source, state) => {
    const link = join(source, "L");
    const dated = (seconds: number) =>
      execFileSync("touch", ["-h", "-d", `@${seconds}`, link], { stdio: "ignore" });
    await withStore(async ({ store }) => {
      symlinkSync("a", link);
      dated(1_609_459_200); // 2021-01-01
      await runPrewarm({ source, store, state });
      assert.equal((await store.stat("L")).mtimeNs, 1_609_459_200_000_000_000n);
      // Made again, pointing elsewhere, with a later time (as cp -a, tar or rsync leave it).
      rmSync(link);
      symlinkSync("b", link);
      dated(1_640_995_200); // 2022-01-01
      const again = await runPrewarm({ source, store, state });
      assert.equal(again.exitCode, EXIT_COMPLETE, JSON.stringify(again.failures));
      assert.equal((await store.readlink("L")).toString(), "b");
    });
  });
});

Deno.test("a run stops early when file after file finds no Riak node, and the next run resumes", async () => {
  await withSourceAndState(async (source, state) => {
    for (let i = 0; i < 300; i++) {
      writeFileSync(join(source, `f${String(i).padStart(3, "0")}`), `${i}`);
    }
    await withStore(async ({ store }) => {
      const away = () => Promise.reject(unanswered());
      const down = wrappedStore(store, { tryStat: away, writeFile: away });
      const stopped = await runPrewarm({
        source,
        store: down,
        state,
        concurrency: 2,
        unreachableStopMs: 0,
      });
      assert.equal(stopped.exitCode, EXIT_FAILED);
      assert.equal(stopped.stopReason, "riak-unreachable");
      assert.ok(stopped.tally.failed.files < 100, `${stopped.tally.failed.files} failed, not 300`);
      const back = await runPrewarm({ source, store, state });
      assert.equal(back.exitCode, EXIT_COMPLETE, JSON.stringify(back.failures));
      assert.equal((await Array.fromAsync(store.list(""))).length, 300);
    });
  });
});

Deno.test("a run whose files all failed with no Riak node answering, up to the end of the tree, completes no pass", async () => {
  await withSourceAndState(async (source, state) => {
    for (const name of ["a", "b", "c"]) writeFileSync(join(source, name), name);
    await withStore(async ({ store }) => {
      const away = () => Promise.reject(unanswered());
      const down = wrappedStore(store, { tryStat: away, writeFile: away });
      const failed = await runPrewarm({ source, store: down, state });
      assert.equal(failed.exitCode, EXIT_FAILED);
      assert.equal(failed.tally.failed.files, 3);
      assert.equal(state.loadState().lastCompletePass, undefined, "no complete pass");
      const report = progressFromState(state);
      assert.equal(report.lastCompletePass, undefined);
      assert.equal(report.passUnfinished, true);
      assert.equal(report.inRiakShare, undefined, "no share of a tree no pass covered");
      // Riak back: the next run retries them and closes the pass.
      const back = await runPrewarm({ source, store, state });
      assert.equal(back.exitCode, EXIT_COMPLETE, JSON.stringify(back.failures));
      const complete = progressFromState(state);
      assert.ok(complete.lastCompletePass, "the pass is complete now");
      assert.deepEqual(complete.inRiak.files, 3);
      assert.equal(complete.inRiakShare, 1);
      assert.equal(complete.failed.files, 0);
      // Down again: the complete pass stands, the new one goes on.
      const again = await runPrewarm({ source, store: down, state });
      assert.equal(again.exitCode, EXIT_FAILED);
      assert.equal(
        state.loadState().lastCompletePass?.startedAt,
        complete.lastCompletePass.startedAt,
      );
      assert.equal(progressFromState(state).passUnfinished, true);
    });
  });
});

Deno.test("a drain finding Riak's copy damaged uploads the local file again, then deletes it", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "f"), "the legacy bytes");
    utimesSync(join(source, "f"), 1_600_000_000, 1_600_000_000);
    await withStore(async ({ client, store }) => {
      await runPrewarm({ source, store, state });
      // Riak's copy damaged (a bit flipped on a disk): same size, mtime and recorded sha256.
      const location = store.layout.file(Buffer.from("f")).object;
      const stored = await client.get(location);
      const { value, usermeta, contentType } = stored.contents[0];
      const damaged = Buffer.from(value);
      damaged[3] ^= 1;
      await client.put(location, { value: damaged, usermeta, contentType: contentType! }, {
        vclock: stored.vclock,
      });
      const drain = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.equal(drain.tally.uploaded.files, 1, "uploaded again");
      assert.equal(drain.tally.deleted.files, 1);
      assert.equal((await store.readFile("f")).toString(), "the legacy bytes");
      assert.deepEqual(readdirSync(source), []);
    });
  });
});

Deno.test("special files are reported once each, counted, and left in place; the run completes", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  mkdirSync(join(source, "d"));
  writeFileSync(join(source, "a.txt"), "alpha");
  writeFileSync(join(source, "d/f.txt"), "file");
  execFileSync("mkfifo", [join(source, "d/pipe")]);
  // A socket file exists only while its server listens.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(source, "d/sock"), resolve));
  try {
    await withStore(async ({ store }) => {
      const special: string[] = [];
      const onEvent = (event: PrewarmEvent) => {
        if (event.kind === "special") special.push(`${event.path} ${event.type}`);
      };
      const dry = await runPrewarm({ source, store, state, dryRun: true, onEvent });
      assert.equal(dry.tally.special.files, 2);
      assert.deepEqual(special.splice(0), ["/d/pipe FIFO", "/d/sock socket"]);

      const drain = await runPrewarm({ source, store, state, deleteLocal: true, onEvent });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.deepEqual(special, ["/d/pipe FIFO", "/d/sock socket"], "each path once");
      assert.deepEqual(drain.tally.special, { files: 2, bytes: 0 });
      assert.equal(drain.tally.seen.files, 2, "special files are not files to move");
      assert.equal(drain.tally.deleted.files, 2);
      assert.deepEqual(readdirSync(join(source, "d")).sort(), ["pipe", "sock"], "left in place");
      assert.equal(await store.tryStat("d/pipe"), undefined);
      assert.equal(await store.tryStat("d/sock"), undefined);
      assert.deepEqual(state.loadState().lastCompletePass?.tally.special, { files: 2, bytes: 0 });
      assert.deepEqual(state.readHistory().at(-1)?.tally.special, { files: 2, bytes: 0 });
      assert.deepEqual(progressFromState(state).special, { files: 2, bytes: 0 });
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

Deno.test("a special file is counted once in a pass that a stop right after it splits in two", async () => {
  await withSourceAndState(async (source, state) => {
    for (const name of ["a", "b", "d", "e"]) writeFileSync(join(source, name), name);
    execFileSync("mkfifo", [join(source, "c-pipe")]);
    await withStore(async ({ store }) => {
      const interruption = new AbortController();
      const first = await runPrewarm({
        source,
        store,
        state,
        concurrency: 1,
        signal: interruption.signal,
        // Stopped before the walk takes the entry after the FIFO.
        onEvent: (event) => event.kind === "special" && interruption.abort(),
      });
      assert.equal(first.exitCode, EXIT_PARTIAL, JSON.stringify(first.failures));
      assert.equal(first.stopReason, "interrupted");
      assert.equal(first.tally.special.files, 1);
      const second = await runPrewarm({ source, store, state });
      assert.equal(second.exitCode, EXIT_COMPLETE, JSON.stringify(second.failures));
      assert.equal(second.tally.special.files, 0, "the resumed walk starts after the FIFO");
      const pass = state.loadState().lastCompletePass?.tally;
      assert.deepEqual([pass?.seen.files, pass?.special.files], [4, 1]);
      for (const name of ["a", "b", "d", "e"]) assert.ok(await store.tryStat(name), name);
    });
  });
});

Deno.test("Riak refusing every request is reachable, no early stop; refused connections stop the run", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  const files = 120;
  for (let i = 0; i < files; i++) {
    writeFileSync(join(source, `f${String(i).padStart(3, "0")}`), `${i}`);
  }
  const riak = await startTestRiak();
  const opened = openRiakStoreClient({ nodes: riak.nodes, healthCheckIntervalMs: 50 });
  try {
    const store = new Store(opened.client, { namespace: { bucket: `${riak.prefix}-files` } });
    const faults = riak.faults;
    const options = { source, store, state, concurrency: 2, unreachableStopMs: 0 };
    // A node answers every request, with an error: Riak is there, refusing.
    faults.respondWithError("{error,enospc}", 0, 1_000_000);
    const refusing = await runPrewarm(options);
    assert.equal(refusing.exitCode, EXIT_FAILED);
    assert.equal(refusing.stopReason, undefined, "not stopped as unreachable");
    assert.equal(refusing.tally.failed.files, files, "every file was tried");
    assert.match(refusing.failures[0].error, /enospc/);

    await faults.clear();
    await faults.stopAccepting();
    faults.dropConnections();
    const away = await runPrewarm(options);
    assert.equal(away.exitCode, EXIT_FAILED);
    assert.equal(away.stopReason, "riak-unreachable");
    assert.ok(away.tally.failed.files < files, `${away.tally.failed.files} failed, not ${files}`);

    await faults.resumeAccepting();
    assert.ok(await opened.riak.cluster.whenReachable(10_000), "the node is back");
    const back = await runPrewarm(options);
    assert.equal(back.exitCode, EXIT_COMPLETE, JSON.stringify(back.failures));
    assert.equal((await Array.fromAsync(store.list(""))).length, files);
  } finally {
    await opened.close();
    await riak.close();
    rmSync(source, { recursive: true });
    rmSync(state.path, { recursive: true });
  }
});

Deno.test("a symlink or a directory stored ends a streak of files no Riak node answered", async () => {
  await withSourceAndState(async (source, state) => {
    // 105 files failing in walk order, but for a symlink and a directory between them; 50 in a
    // row would stop the run.
    for (const prefix of ["a", "c", "e"]) {
      for (let i = 0; i < 35; i++) {
        writeFileSync(join(source, `${prefix}${String(i).padStart(2, "0")}`), "x");
      }
    }
    symlinkSync("a00", join(source, "b-link"));
    mkdirSync(join(source, "d-dir"));
    // "In a row" is the order in which entries finish: the c files fail only once the link is
    // stored, the e files once the directory is. A macrotask later, the run has counted it.
    const stored = () => {
      let done!: () => void;
      const promise = new Promise<void>((resolve) => done = () => setImmediate(resolve));
      return { promise, done };
    };
    const link = stored();
    const directory = stored();
    const failAfter: Record<string, Promise<void>> = {
      a: Promise.resolve(),
      c: link.promise,
      e: directory.promise,
    };
    await withStore(async ({ store }) => {
      const gate = (path: unknown) => failAfter[Buffer.from(path as Uint8Array).toString()[0]];
      const down = wrappedStore(store, {
        tryStat: (path, options) =>
          gate(path)?.then(() => Promise.reject(unanswered())) ?? store.tryStat(path, options),
        symlink: (path, target, options) => store.symlink(path, target, options).finally(link.done),
        mkdir: (path, options) => store.mkdir(path, options).finally(directory.done),
      });
      const run = await runPrewarm({
        source,
        store: down,
        state,
        concurrency: 1,
        unreachableStopMs: 0,
      });
      assert.equal(run.stopReason, undefined, "walked to the end");
      assert.equal(run.tally.seen.files, 106);
      assert.equal(run.tally.failed.files, 105);
      assert.equal((await store.stat("b-link")).type, "symlink");
      assert.equal((await store.stat("d-dir")).type, "directory");
    });
  });
});

Deno.test("a riak-fuse folder (its listing set, no directory object) is no failure for a first pass", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "shop/images"), { recursive: true });
    writeFileSync(join(source, "shop/images/new.jpg"), "a new picture");
    await withStore(async ({ client, riak, another }) => {
      const riakFuse = {
        contentPrefix: `${riak.prefix}IMG_`,
        directoryPrefix: `${riak.prefix}IMGDIR_`,
      };
      const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
      // Left by riak-fuse: shop/images is its listing set alone, no riakfs object or entry.
      await putLegacyRiakFuseFile(client, riakFuse, "shop", "old.jpg", "an old picture");
      const run = await runPrewarm({ source, store, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(run.failures, []);
      const names = async (path: string) =>
        (await Array.fromAsync(store.list(path))).map((e) => `${e.name}`).sort();
      assert.deepEqual(await names("shop"), ["images"]);
      assert.deepEqual(await names("shop/images"), ["new.jpg", "old.jpg"]);
    });
  });
});

Deno.test("a riak-fuse object holding the local bytes is left as riak-fuse wrote it", async () => {
  await withSourceAndState(async (source, state) => {
    const content = Buffer.alloc(3 * 1024 * 1024 + 17, 7); // Above the chunk size.
    writeFileSync(join(source, "big.bin"), content);
    utimesSync(join(source, "big.bin"), 2_000_000_000, 2_000_000_000); // After Riak stored it.
    await withStore(async ({ client, bucket, store }) => {
      const location = {
        bucketType: "default",
        bucket: Buffer.from(bucket),
        key: Buffer.from("big.bin"),
      };
      await client.put(location, { value: content, contentType: "image/jpeg", usermeta: [] });
      const run = await runPrewarm({ source, store, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.equal(run.tally.uploaded.files, 0, "not uploaded again");
      const after = await client.get(location);
      assert.equal(after.contents[0].contentType, "image/jpeg", "still riak-fuse's whole value");
      assert.ok(Buffer.from(after.contents[0].value).equals(content));
    });
  });
});

Deno.test("a directory a crash left unlisted is listed again also after a file found in Riak", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "a.txt"), "uploaded by the run before the crash");
    await withStore(async ({ client, bucket, store }) => {
      // The run that crashed: a.txt stored, d made, then d/e's mkdir cut off between its
      // object and its entry in d (a SIGKILL after objectStored let the files below go).
      assert.equal((await runPrewarm({ source, store, state })).exitCode, EXIT_COMPLETE);
      mkdirSync(join(source, "d/e"), { recursive: true });
      writeFileSync(join(source, "d/e/f"), "file f");
      await store.mkdir("d");
      await mkdirCutOff(client, bucket, "d/e");
      const names = async (path: string) =>
        (await Array.fromAsync(store.list(path))).map((e) => `${e.name}`);
      assert.deepEqual(await names("d"), []);
      const run = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.deepEqual(readdirSync(join(source, "d/e")), [], "f drained");
      // f is now only in Riak: its directory must be reachable from the root's listing.
      assert.deepEqual(await names("d"), ["e"]);
      assert.deepEqual(await names("d/e"), ["f"]);
    });
  });
});

Deno.test("a chmod or chown after the upload reaches Riak, and a drain waits for it", async () => {
  await withSourceAndState(async (source, state) => {
    const file = join(source, "secret");
    writeFileSync(file, "only for uid 1000");
    chmodSync(file, 0o644);
    await withStore(async ({ store }) => {
      assert.equal((await runPrewarm({ source, store, state })).exitCode, EXIT_COMPLETE);
      chmodSync(file, 0o600);
      chownSync(file, 1000, 1000);
      // Riak refusing the attributes: the local copy, the only one with them, stays.
      const refusing = wrappedStore(store, {
        setAttributes: () => Promise.reject(new Error("Riak refused the put")),
      });
      const refused = await runPrewarm({ source, store: refusing, state, deleteLocal: true });
      assert.equal(refused.exitCode, EXIT_FAILED);
      assert.equal(existsSync(file), true);
      assert.equal((await store.stat("secret")).mode, 0o644);

      const updated = await runPrewarm({ source, store, state });
      assert.equal(updated.exitCode, EXIT_COMPLETE, JSON.stringify(updated.failures));
      assert.equal(updated.tally.attributesUpdated.files, 1);
      assert.equal(updated.tally.uploaded.files, 0, "the content was not sent again");
      const stored = await store.stat("secret");
      assert.deepEqual([stored.mode, stored.uid, stored.gid], [0o600, 1000, 1000]);

      chownSync(file, 1001, 1001);
      const drain = await runPrewarm({ source, store, state, deleteLocal: true });
      assert.equal(drain.exitCode, EXIT_COMPLETE, JSON.stringify(drain.failures));
      assert.equal(drain.tally.deleted.files, 1);
      assert.equal(existsSync(file), false);
      const drained = await store.stat("secret");
      assert.deepEqual([drained.mode, drained.uid, drained.gid], [0o600, 1001, 1001]);
    });
  });
});

Deno.test({
  name: "a drain never crosses into another filesystem mounted below SOURCE",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withSourceAndState(async (source, state) => {
      writeFileSync(join(source, "local.txt"), "on SOURCE's filesystem");
      mkdirSync(join(source, "mnt"));
      await withTmpfsAt(join(source, "mnt"), async () => {
        writeFileSync(join(source, "mnt/mounted.txt"), "on another filesystem");
        await withStore(async ({ store }) => {
          const events: PrewarmEvent[] = [];
          const onEvent = (event: PrewarmEvent) => events.push(event);
          for (const deleteLocal of [false, true]) {
            const result = await runPrewarm({ source, store, state, deleteLocal, onEvent });
            assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
            assert.equal(result.tally.mountPoints.files, 1);
            assert.equal(result.tally.seen.files, 1, "only local.txt");
          }
          assert.deepEqual(events, [
            { kind: "mount-point", path: "/mnt" },
            { kind: "mount-point", path: "/mnt" },
          ]);
          assert.equal(existsSync(join(source, "mnt/mounted.txt")), true);
          assert.equal(existsSync(join(source, "local.txt")), false, "drained");
          assert.equal(await store.tryStat("mnt/mounted.txt"), undefined);
          const verified = await verifyTree({ source, store });
          assert.equal(verified.mountPoints, 1);
          assert.equal(verified.checked, 0);
        });
      });
    });
  },
});

Deno.test("an interrupt stops an upload between its chunks: not recorded as uploaded, the run is partial", async () => {
  await withSourceAndState(async (source, state) => {
    // Tiny chunks: the whole file is read in one piece, then sent as 8192 chunk puts.
    writeFileSync(join(source, "big.bin"), Buffer.alloc(64 * 1024, 3));
    await withStore(async ({ client, bucket }) => {
      const interruption = new AbortController();
      let chunkPuts = 0;
      const counting = new Store({
        ...client,
        put: (location, content, options) => {
          if (location.bucket.includes("chunk") && ++chunkPuts === 10) interruption.abort();
          return client.put(location, content, options);
        },
      }, { namespace: { bucket, chunkSize: 8 } });
      const run = await runPrewarm({
        source,
        store: counting,
        state,
        signal: interruption.signal,
      });
      assert.equal(run.outcome, "partial");
      assert.equal(run.exitCode, EXIT_PARTIAL);
      assert.equal(run.tally.uploaded.files, 0);
      assert.equal(run.tally.inRiak.files, 0);
      assert.ok(chunkPuts < 100, `stopped between chunks, not after ${chunkPuts} of 8192`);
      assert.equal(await counting.tryStat("big.bin"), undefined);
      assert.deepEqual(state.loadState().retryHex, [Buffer.from("big.bin").toString("hex")]);

      const next = await runPrewarm({ source, store: counting, state });
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
      assert.equal(next.tally.uploaded.files, 1);
      assert.equal((await counting.readFile("big.bin")).length, 64 * 1024);
    });
  });
});

Deno.test("a file that keeps changing is not done: the run is partial and progress counts it pending", async () => {
  await withSourceAndState(async (source, state) => {
    writeFileSync(join(source, "calm"), "calm");
    writeFileSync(join(source, "log"), "line 1\n");
    // "calm" is not being written right now: its ctime is past the racy window.
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const changing = wrappedStore(store);
      changing.writeFile = (path, content, options) =>
        Buffer.from(path as Uint8Array).toString() === "log"
          ? Promise.reject(new FileChangedError("log"))
          : store.writeFile(path, content, options);
      for (const run of [1, 2]) {
        const result = await runPrewarm({ source, store: changing, state, changeRetries: 1 });
        assert.deepEqual(result.busy, ["/log"], `run ${run}`);
        assert.equal(result.outcome, "partial", `run ${run}`);
        assert.equal(result.exitCode, EXIT_PARTIAL, `run ${run}`);
        const progress = progressFromState(state);
        assert.deepEqual(progress.pending, { files: 1, bytes: 7 }, `run ${run}`);
        assert.deepEqual(progress.inRiak, { files: 1, bytes: 4 }, `run ${run}`);
        assert.notEqual(progress.etaDays, 0, `run ${run}: not done`);
        assert.equal(state.readHistory().at(-1)?.outcome, "partial");
      }
    });
  });
});

// A log appended to while it was uploaded was seen at its first size and stored at its last:
// progress then showed "in Riak: 381.9 MB (100.1%)" of a 381.5 MB tree, and nothing pending
// by bytes while files were.
Deno.test("a file that grew while it was uploaded is seen at the size it was stored at", async () => {
  await withSourceAndState(async (source, state) => {
    const log = join(source, "log");
    writeFileSync(log, "line 1\n");
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      let attempts = 0;
      const growing = wrappedStore(store);
      growing.writeFile = (path, content, options) => {
        if (attempts++ > 0) return store.writeFile(path, content, options);
        appendFileSync(log, "line 2\n");
        return Promise.reject(new FileChangedError("log"));
      };
      const run = await runPrewarm({ source, store: growing, state });
      assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
      assert.equal(attempts, 2);
      assert.deepEqual(run.tally.seen, { files: 1, bytes: 14 });
      assert.deepEqual(run.tally.inRiak, { files: 1, bytes: 14 });
      const progress = progressFromState(state);
      assert.deepEqual(progress.total, { files: 1, bytes: 14 });
      assert.equal(progress.inRiakShare, 1);
    });
  });
});

Deno.test("a drained file changed after its upload is not done either: partial, and pending", async () => {
  await withSourceAndState(async (source, state) => {
    const log = join(source, "log");
    writeFileSync(log, "line 1\n");
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      // Appended to between its upload and its deletion, every time.
      const appending = wrappedStore(store, {
        writeFile: async (path, content, options) => {
          const written = await store.writeFile(path, content, options);
          appendFileSync(log, "one more line\n");
          return written;
        },
      });
      const drain = await runPrewarm({ source, store: appending, state, deleteLocal: true });
      assert.deepEqual(drain.busy, ["/log"]);
      assert.equal(drain.exitCode, EXIT_PARTIAL);
      // "396 uploaded, -6 already in Riak" was the summary of such files: uploaded, not in Riak.
      assert.deepEqual(drain.tally.uploaded, { files: 0, bytes: 7 }, "its bytes moved, no file");
      assert.equal(drain.tally.inRiak.files, 0, "its local version is not in Riak");
      assert.equal(dailyRate(state.readHistory())?.files, 0, "no file moved for the rate");
      assert.equal(existsSync(log), true);
      assert.equal(progressFromState(state).pending.files, 1);
    });
  });
});

Deno.test("other globs than the pass in progress was walked with start a new pass, which goes back for what they select", async () => {
  await withSourceAndState(async (source, state) => {
    for (const name of ["a.tmp", "b.txt", "c.txt", "d.txt"]) {
      writeFileSync(join(source, name), name);
    }
    await waitOutRacyWindow();
    await withStore(async ({ store }) => {
      const excluding = new PathFilter([], ["*.tmp"]);
      const first = await runPrewarm({
        source,
        store,
        state,
        filter: excluding,
        maxFiles: 2,
        concurrency: 1,
      });
      assert.equal(first.exitCode, EXIT_PARTIAL);
      assert.equal(await store.tryStat("a.tmp"), undefined);
      // The same globs, in another order too, resume the pass.
      const events: PrewarmEvent[] = [];
      const same = await runPrewarm({
        source,
        store,
        state,
        filter: new PathFilter([], ["*.tmp"]),
        maxFiles: 0,
        onEvent: (event) => events.push(event),
      });
      assert.equal(same.exitCode, EXIT_PARTIAL);
      assert.equal(events.length, 0, JSON.stringify(events));

      const everything = await runPrewarm({
        source,
        store,
        state,
        onEvent: (event) => events.push(event),
      });
      assert.deepEqual(events, [{
        kind: "globs-changed",
        before: { include: [], exclude: ["*.tmp"] },
        now: { include: [], exclude: [] },
      }]);
      assert.equal(everything.exitCode, EXIT_COMPLETE, JSON.stringify(everything.failures));
      assert.ok(await store.tryStat("a.tmp"), "the file the old globs skipped is uploaded");
      const pass = state.loadState().lastCompletePass!.tally;
      assert.deepEqual([pass.seen.files, pass.inRiak.files], [4, 4]);
      assert.equal(progressFromState(state).pending.files, 0);
    });
  });
});

Deno.test({
  name:
    "a drain with its state directory on the disk that filled up runs, frees it, and records the run",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withFullFilesystem(async ({ directory, makeRoom, fill }) => {
      makeRoom(64 * 1024);
      const source = join(directory, "legacy");
      mkdirSync(source);
      for (let index = 0; index < 4; index++) {
        writeFileSync(join(source, `f${index}`), Buffer.alloc(8192, index));
      }
      const state = new StateDirectory(join(directory, "state"));
      state.ensure();
      fill();
      await withStore(async ({ store }) => {
        const events: PrewarmEvent[] = [];
        const run = await runPrewarm({
          source,
          store,
          state,
          deleteLocal: true,
          onEvent: (event) => events.push(event),
        });
        assert.equal(run.exitCode, EXIT_COMPLETE, JSON.stringify(run.failures));
        assert.equal(run.tally.deleted.files, 4);
        assert.deepEqual(readdirSync(source), [], "the local copies are gone");
        assert.deepEqual(events, [{ kind: "state-not-saved", directory: state.path }]);
        assert.equal((await store.readFile("f3")).length, 8192);
        // Room was made by then: the run's record and state are written, no leftovers.
        assert.equal(state.readHistory().length, 1);
        assert.deepEqual(readdirSync(state.path).sort(), ["history.jsonl", "state.json"]);
      });
    });
  },
});

// `prewarm --dry-run --include 'c/'` said "would create directory /a, /a/b" for directories
// holding nothing included, and a real run made them, empty, in Riak.
const INCLUDED = new PathFilter(["c/", "e/**/*.gz"]);
/** The directories a run with {@link INCLUDED} makes in Riak: those on the way to its files. */
const MADE_FOR_INCLUDED = ["/c", "/c/empty", "/d", "/d/c", "/e", "/e/f"];

/** A source with directories {@link INCLUDED} selects, and others it selects nothing of. */
function treeWithIncludedParts(): string {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  for (const directory of ["a/b", "c/empty", "d/c", "e/f", "g"]) {
    mkdirSync(join(source, directory), { recursive: true });
  }
  writeFileSync(join(source, "a/b/x.txt"), "not included");
  writeFileSync(join(source, "c/y.txt"), "y");
  writeFileSync(join(source, "d/c/z.txt"), "z");
  writeFileSync(join(source, "e/f/w.gz"), "w");
  writeFileSync(join(source, "g/v.txt"), "not included");
  return source;
}

/** Every directory Riak lists below the root, sorted. */
async function directoriesIn(store: Store): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string) => {
    for await (const entry of store.list(path)) {
      if (entry.type !== "directory") continue;
      const below = `${path === "/" ? "" : path}/${entry.name}`;
      found.push(below);
      await walk(below);
    }
  };
  await walk("/");
  return found.sort();
}

for (const runs of ["one run", "runs of one entry each"] as const) {
  Deno.test(`an include makes in Riak only the directories on the way to what it selects (${runs}), and a dry run says so`, async () => {
    const source = treeWithIncludedParts();
    const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
    try {
      await withStore(async ({ store }) => {
        const events: PrewarmEvent[] = [];
        const onEvent = (event: PrewarmEvent) => events.push(event);
        await runPrewarm({ source, store, state, filter: INCLUDED, dryRun: true, onEvent });
        const wouldCreate = events.flatMap((event) =>
          event.kind === "would-create-directory" ? [event.path] : []
        );
        assert.deepEqual(wouldCreate.sort(), MADE_FOR_INCLUDED, "in any order: they go at once");
        // Stopped by the budget and resumed, a run brings in what is on the way to its files.
        const maxFiles = runs === "one run" ? undefined : 1;
        for (let run = 1;; run++) {
          const done = await runPrewarm({ source, store, state, filter: INCLUDED, maxFiles });
          assert.deepEqual(done.failures, []);
          if (done.exitCode === EXIT_COMPLETE) break;
          assert.ok(run < 20, "the runs come to an end");
        }
        assert.deepEqual(await directoriesIn(store), MADE_FOR_INCLUDED);
        assert.equal((await store.readFile("/d/c/z.txt")).toString(), "z");
        assert.equal((await store.readFile("/e/f/w.gz")).toString(), "w");
      });
    } finally {
      rmSync(source, { recursive: true });
      rmSync(state.path, { recursive: true });
    }
  });
}

Deno.test("a drain keeps a file another process holds open for writing (a daemon's log), and deletes it on a run after it is closed", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      const log = join(source, "daemon.log");
      writeFileSync(log, "line 0\n");
      writeFileSync(join(source, "done.txt"), "closed long ago");
      const inUse = { openWriters: new OpenWriters({ maxAgeMs: 0 }) };
      const events: PrewarmEvent[] = [];
      const holder = await holdOpen(log, ">>");
      try {
        const run = await runPrewarm({
          source,
          store,
          state,
          deleteLocal: true,
          inUse,
          onEvent: (event) => events.push(event),
        });
        assert.equal(run.exitCode, EXIT_PARTIAL, "a drain that kept a file is not done");
        assert.deepEqual(run.keptActive, ["/daemon.log"]);
        assert.equal(run.tally.keptActive.files, 1);
        assert.equal(run.tally.deleted.files, 1);
        assert.equal(existsSync(log), true);
        assert.equal(existsSync(join(source, "done.txt")), false);
        assert.equal((await store.readFile("daemon.log")).toString(), "line 0\n");
        const kept = events.find((event) => event.kind === "kept-active");
        assert.match(kept?.kind === "kept-active" ? kept.detail : "", /open for writing/);
      } finally {
        await holder.release();
      }
      const next = await runPrewarm({ source, store, state, deleteLocal: true, inUse });
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next));
      assert.equal(next.tally.deleted.files, 1, "the kept file, retried");
      assert.equal(existsSync(log), false);
      assert.equal((await store.readFile("daemon.log")).toString(), "line 0\n");
    });
  });
});

Deno.test("a drain keeps a file changed within the quiet period, and deletes it once the period is over", async () => {
  await withSourceAndState(async (source, state) => {
    await withStore(async ({ store }) => {
      const file = join(source, "reopened-per-line.log");
      writeFileSync(file, "line 0\n");
      // Its mtime long ago: the ctime (now) still says it was just changed.
      utimesSync(file, new Date(2_000_000), new Date(2_000_000));
      const changedMs = Number(statSync(file, { bigint: true }).ctimeNs / 1_000_000n);
      const inUse = (now: number) => ({
        quietPeriodMs: 60_000,
        now: () => now,
        openWriters: new OpenWriters({ maxAgeMs: 0 }),
      });
      const run = await runPrewarm({
        source,
        store,
        state,
        deleteLocal: true,
        inUse: inUse(changedMs + 59_000),
      });
      assert.equal(run.exitCode, EXIT_PARTIAL);
      assert.equal(run.tally.keptActive.files, 1);
      assert.equal(run.tally.deleted.files, 0);
      assert.equal(existsSync(file), true);
      const later = await runPrewarm({
        source,
        store,
        state,
        deleteLocal: true,
        inUse: inUse(changedMs + 61_000),
      });
      assert.equal(later.exitCode, EXIT_COMPLETE, JSON.stringify(later));
      assert.equal(later.tally.deleted.files, 1);
      assert.equal(existsSync(file), false);
      assert.equal((await store.readFile("reopened-per-line.log")).toString(), "line 0\n");
    });
  });
});

Deno.test("a path to retry whose directory became a file meanwhile is gone, not a failure listed again every night", async () => {
  await withSourceAndState(async (source, state) => {
    for (const name of ["a", "z1", "z2"]) writeFileSync(join(source, name), name);
    // As a run leaves it that failed a/b/c and was stopped by its budget after z1; the
    // directory a/b has become a file since (a/b/c: ENOTDIR).
    state.saveState({
      format: "riakfs-migration-state/1",
      cursorHex: Buffer.from("z1").toString("hex"),
      currentPass: { startedAt: new Date().toISOString(), kind: "prewarm", tally: emptyTally() },
      retryHex: [Buffer.from("a/b/c").toString("hex")],
    });
    await withStore(async ({ store }) => {
      const result = await runPrewarm({ source, store, state });
      assert.deepEqual(result.failures, []);
      assert.equal(result.exitCode, EXIT_COMPLETE);
      assert.deepEqual(state.loadState().retryHex ?? [], []);
    });
  });
});

Deno.test("a directory replaced by a file after the walk listed it is not made a directory in Riak; the file goes there", async () => {
  await withSourceAndState(async (source, state) => {
    mkdirSync(join(source, "d"));
    await withStore(async ({ store }) => {
      // Riak is asked about d, and meanwhile d becomes a file.
      const replacing = wrappedStore(store, {
        tryStat: async (path, options) => {
          const found = await store.tryStat(path, options);
          if (
            Buffer.from(path as Uint8Array).toString() === "d" &&
            statSync(join(source, "d")).isDirectory()
          ) {
            rmSync(join(source, "d"), { recursive: true });
            writeFileSync(join(source, "d"), "now a file");
          }
          return found;
        },
      });
      await runPrewarm({ source, store: replacing, state });
      assert.notEqual((await store.tryStat("d"))?.type, "directory");

      const next = await runPrewarm({ source, store, state });
      assert.equal(next.exitCode, EXIT_COMPLETE, JSON.stringify(next.failures));
      assert.equal((await store.readFile("d")).toString(), "now a file");
    });
  });
});

Deno.test({
  name:
    "a run whose failures outgrow memory while its state directory's disk is full goes on, lists them, and says it is not recorded",
  ignore: !CAN_MOUNT,
  fn: async () => {
    const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
    try {
      for (let index = 0; index < 3; index++) writeFileSync(join(source, `f${index}`), "x");
      await withFullFilesystem(async ({ directory, makeRoom, fill }) => {
        makeRoom(64 * 1024);
        const state = new StateDirectory(join(directory, "state"));
        state.ensure();
        fill();
        await withStore(async ({ store }) => {
          // Riak answers, and refuses every put: the run goes on, failing file after file.
          const refusing = failingWrites(store, () => new Error("refused"));
          const run = await runPrewarm({ source, store: refusing, state, failuresInMemory: 1 });
          assert.equal(run.exitCode, EXIT_FAILED);
          assert.equal(run.tally.failed.files, 3);
          assert.deepEqual(run.failures.map((failure) => failure.path).sort(), [
            "/f0",
            "/f1",
            "/f2",
          ]);
          assert.equal(run.notRecorded, true);
        });
      });
    } finally {
      rmSync(source, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name:
    "a drain never crosses a bind mount below SOURCE, also of a directory or file of SOURCE's own filesystem",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withSourceAndState(async (source, state) => {
      // On the same filesystem as SOURCE (same st_dev), outside it.
      const outside = mkdtempSync(join(tmpdir(), "riakfs-outside-"));
      writeFileSync(join(outside, "theirs.txt"), "someone else's file");
      writeFileSync(join(outside, "bound.txt"), "a file bound into SOURCE");
      writeFileSync(join(source, "local.txt"), "SOURCE's own");
      mkdirSync(join(source, "bound dir"));
      writeFileSync(join(source, "bound-file.txt"), "");
      execFileSync("mount", ["--bind", outside, join(source, "bound dir")]);
      try {
        execFileSync("mount", [
          "--bind",
          join(outside, "bound.txt"),
          join(source, "bound-file.txt"),
        ]);
        try {
          await withStore(async ({ store }) => {
            const result = await runPrewarm({ source, store, state, deleteLocal: true });
            assert.equal(result.exitCode, EXIT_COMPLETE, JSON.stringify(result.failures));
            assert.equal(result.tally.mountPoints.files, 2);
            assert.equal(result.tally.seen.files, 1, "only local.txt");
            assert.deepEqual(readdirSync(outside).sort(), ["bound.txt", "theirs.txt"]);
            assert.equal(await store.tryStat("bound dir/theirs.txt"), undefined);
            const verified = await verifyTree({ source, store });
            assert.equal(verified.mountPoints, 2);
            assert.equal(verified.checked, 0);
          });
        } finally {
          execFileSync("umount", [join(source, "bound-file.txt")]);
        }
      } finally {
        execFileSync("umount", [join(source, "bound dir")]);
        rmSync(outside, { recursive: true, force: true });
      }
    });
  },
});

Deno.test("a symlink removed while Riak is asked about it never replaces what Riak holds at its name", async () => {
  await withSourceAndState(async (source, state) => {
    symlinkSync("old-target", join(source, "latest"));
    await withStore(async ({ store }) => {
      // Written through the mount since: a file, newer than the local link.
      await store.writeFile("latest", Buffer.from("written through the mount"));
      const removing = wrappedStore(store, {
        tryStat: async (path, options) => {
          const found = await store.tryStat(path, options);
          if (Buffer.from(path as Uint8Array).toString() === "latest") {
            rmSync(join(source, "latest"), { force: true });
          }
          return found;
        },
      });
      await runPrewarm({ source, store: removing, state });
      assert.equal((await store.readFile("latest")).toString(), "written through the mount");
    });
  });
});
