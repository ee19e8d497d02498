import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import { withOverlay, writeThrough } from "./_overlay_fixture.ts";
import { journalPending } from "./_spool_fixture.ts";
import { pendingInJournal } from "./journal.ts";
import { Logger } from "./log.ts";
import { overlaySettingsFromOptions } from "./mount_options.ts";
import { startOverlay } from "./runtime.ts";
import { defaultSpoolDirectory } from "./spool.ts";
import { readSpoolRecord, SpoolNamespaceError } from "./spool_record.ts";
import { StrandedSpoolError } from "./stranded_spools.ts";

/** Directories of a mount: source, spool, run directory and mountpoint, removed afterwards. */
async function withDirectories(
  body: (paths: { source: string; spool: string; runDir: string; mountpoint: string }) => Promise<
    void
  >,
): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "riakfs-runtime-"));
  try {
    const source = join(base, "src");
    await mkdir(source);
    await body({
      source,
      spool: join(base, "spool"),
      runDir: join(base, "run"),
      mountpoint: join(base, "mnt"),
    });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

Deno.test("a drain mount of another namespace refuses a spool with pending entries, replays nothing, and the namespace that wrote them replays them", async () => {
  await withStore(async ({ store, another, riak }) => {
    await withDirectories(async ({ source, spool, runDir, mountpoint }) => {
      const lines: string[] = [];
      const logger = new Logger({ format: "json", sink: { write: (line) => lines.push(line) } });
      const start = (namespaceStore: Store) =>
        startOverlay({
          settings: overlaySettingsFromOptions({ preset: "drain", spool, runDir }),
          source,
          mountpoint,
          store: namespaceStore,
          riakNodes: riak.nodes,
          logger,
        });
      // The first mount records its namespace in the spool it makes.
      assert.equal(await (await start(store)).stop(0), 0);
      const written = readSpoolRecord(spool);
      assert.equal(written?.namespace.bucket, store.namespace.bucket);
      assert.equal(written?.mode, "--preset drain");
      await journalPending(spool, "/d/g.txt", "belongs-to-A\n");
      const journal = await readFile(join(spool, "journal"));
      const other = another({ namespace: { bucket: `${store.namespace.bucket}-B` } });
      await assert.rejects(start(other), SpoolNamespaceError);
      assert.deepEqual(await readFile(join(spool, "journal")), journal);
      assert.equal((await readdir(join(spool, "staged"))).length, 1);
      assert.equal(await other.tryStat("d/g.txt"), undefined);
      assert.ok(!lines.some((line) => line.includes("replaying")), lines.join("\n"));
      const runtime = await start(store);
      try {
        assert.equal(await runtime.settle(10_000), 0);
        assert.equal((await store.readFile("d/g.txt")).toString(), "belongs-to-A\n");
      } finally {
        await runtime.stop(0);
      }
    });
  });
});

Deno.test("a passthrough mount is refused while SOURCE/.riakfs-spool holds pending entries; its filesystem is never opened", async () => {
  await withDirectories(async ({ source, runDir, mountpoint }) => {
    await journalPending(join(source, ".riakfs-spool"), "/d/new.txt");
    let opened = false;
    await assert.rejects(
      startOverlay({
        settings: overlaySettingsFromOptions({ preset: "passthrough", runDir }),
        source,
        mountpoint,
        riakNodes: [],
        logger: new Logger({ format: "json", sink: { write: () => {} } }),
        localFileSystem: () => {
          opened = true;
          throw new Error("not to be opened");
        },
      }),
      StrandedSpoolError,
    );
    assert.equal(opened, false);
  });
});

Deno.test("a drain's outcome accounts for every upload it waited for: drained, made unneeded by a later write, or still pending", async () => {
  await withOverlay("riak", async ({ fs, riak, runtime, holdPuts }) => {
    const faults = riak.faults;
    const held = holdPuts();
    await writeThrough(fs, "/a.txt", Buffer.from("first"));
    await held.reached; // Its upload under way: the next version queues behind it.
    await writeThrough(fs, "/a.txt", Buffer.from("second"));
    await faults.stopAccepting();
    faults.dropConnections();
    try {
      const progress: number[] = [];
      const draining = runtime.drainUploads(1_500, (pending) => progress.push(pending));
      const waitedFor = progress[0];
      assert.equal(waitedFor, 2);
      // Riak gone as it is sent: it fails, and gives way to the version behind it.
      held.release();
      const outcome = await draining;
      assert.deepEqual(
        [outcome.pending, outcome.drained, outcome.unneeded, outcome.givenUp],
        [1, 0, 1, 0],
      );
      assert.equal(
        outcome.pending + outcome.drained + (outcome.unneeded ?? 0) + (outcome.givenUp ?? 0),
        waitedFor,
      );
    } finally {
      await faults.resumeAccepting();
    }
  });
});

/** A logger whose lines the test reads. */
function listeningLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    logger: new Logger({ format: "json", sink: { write: (line) => lines.push(line) } }),
    lines,
  };
}

Deno.test("the riak preset's default spool goes at a clean stop with nothing pending, also one an earlier mount left; one with pending entries stays", async () => {
  await withStore(async ({ store, riak }) => {
    await withDirectories(async ({ source, runDir, mountpoint }) => {
      const systemSpoolRoot = join(source, "..", "var-lib-riakfs");
      const spool = defaultSpoolDirectory(undefined, mountpoint, systemSpoolRoot);
      const { logger, lines } = listeningLogger();
      const start = () =>
        startOverlay({
          settings: overlaySettingsFromOptions({ preset: "riak", runDir }),
          mountpoint,
          store,
          riakNodes: riak.nodes,
          logger,
          systemSpoolRoot,
        });
      let runtime = await start();
      assert.ok(existsSync(join(spool, "journal")), "made by the mount");
      assert.equal(await runtime.stop(0), 0);
      assert.equal(existsSync(spool), false, lines.join("\n"));
      assert.ok(existsSync(systemSpoolRoot), "only the spool goes");
      // Left with an entry pending by an earlier mount: replayed, then removed.
      await journalPending(spool, "/a.txt", "written away\n");
      runtime = await start();
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal(await runtime.stop(0), 0);
      assert.equal((await store.readFile("/a.txt")).toString(), "written away\n");
      assert.equal(existsSync(spool), false, lines.join("\n"));
      // Pending while Riak is away: the spool and its entry stay for the next mount.
      await journalPending(spool, "/b.txt");
      await riak.faults.stopAccepting();
      riak.faults.dropConnections();
      try {
        runtime = await start();
        assert.equal(await runtime.stop(0), 1);
      } finally {
        await riak.faults.resumeAccepting();
      }
      assert.equal(await pendingInJournal(join(spool, "journal")), 1);
      assert.equal((await readdir(join(spool, "staged"))).length, 1);
    });
  });
});

Deno.test("at a clean stop a spool named with --spool stays; SOURCE/.riakfs-spool goes once SOURCE holds nothing else, unless it holds a file riakfs did not put there", async () => {
  await withStore(async ({ store, riak }) => {
    await withDirectories(async ({ source, spool, runDir, mountpoint }) => {
      const { logger } = listeningLogger();
      const inSource = join(source, ".riakfs-spool");
      const start = (options: Record<string, string> = {}) =>
        startOverlay({
          settings: overlaySettingsFromOptions({ preset: "drain", runDir, ...options }),
          source,
          mountpoint,
          store,
          riakNodes: riak.nodes,
          logger,
        });
      assert.equal(await (await start({ spool })).stop(0), 0);
      assert.ok(existsSync(join(spool, "journal")), "named by the operator");
      await writeFile(join(source, "legacy.txt"), "not drained yet\n");
      assert.equal(await (await start()).stop(0), 0);
      assert.ok(
        existsSync(join(inSource, "journal")),
        "SOURCE holds more: the spool keeps its room for the next mount",
      );
      await rm(join(source, "legacy.txt"));
      assert.equal(await (await start()).stop(0), 0);
      assert.equal(existsSync(inSource), false, "SOURCE drained: only the spool was left");
      assert.deepEqual(await readdir(source), []);
      // SOURCE drained, but the spool holds a file riakfs did not put there.
      const runtime = await start();
      await writeFile(join(inSource, "notes.txt"), "the operator's\n");
      assert.equal(await runtime.stop(0), 0);
      assert.equal(await readFile(join(inSource, "notes.txt"), "utf8"), "the operator's\n");
    });
  });
});
