import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NamespaceOptions, placementNames, resolveNamespace } from "../store/layout.ts";
import { withFullFilesystem } from "../util/_full_filesystem.ts";
import { UploadJournal } from "./journal.ts";
import { journalPending } from "./_spool_fixture.ts";
import { Logger } from "./log.ts";
import { Spool } from "./spool.ts";
import {
  claimSpool,
  readSpoolRecord,
  recordedModeDeletingLocal,
  recordedModeHidingDrained,
  recordedNamespaceOtherThan,
  SpoolNamespaceError,
  type SpoolRecord,
  writeSpoolRecord,
} from "./spool_record.ts";

/** The record of a drain mount of `namespace` at /mnt. */
function recordFor(namespace: NamespaceOptions): SpoolRecord {
  return {
    namespace: placementNames(resolveNamespace(namespace)),
    mode: "--preset drain",
    mountpoint: "/mnt",
  };
}

/** A logger whose lines the test reads. */
function collectingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger({
    format: "json",
    level: "debug",
    sink: { write: (line) => lines.push(line) },
  });
  return { logger, lines };
}

/** A spool directory for `body`, removed afterwards. */
async function withSpool(body: (spool: Spool) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-spool-record-"));
  try {
    await body(Spool.open(join(directory, "spool")));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** What is in the spool directory, and the journal's bytes. */
async function contentOf(spool: Spool): Promise<unknown> {
  return {
    names: (await readdir(spool.directory)).sort(),
    staged: (await readdir(join(spool.directory, "staged"))).sort(),
    journal: await readFile(spool.journalFile, "utf8"),
  };
}

Deno.test("a spool whose journal holds entries for another namespace refuses the mount in one line naming both, and nothing changes", async () => {
  await withSpool(async (spool) => {
    const { logger } = collectingLogger();
    const colA = recordFor({ bucket: "colA" });
    await claimSpool(spool.directory, colA, logger);
    assert.deepEqual(readSpoolRecord(spool.directory), colA);
    await journalPending(spool.directory, "/a-file.txt");
    const before = await contentOf(spool);
    const colB = recordFor({ bucket: "colB" });
    await assert.rejects(claimSpool(spool.directory, colB, logger), (error: Error) => {
      assert.ok(error instanceof SpoolNamespaceError);
      assert.doesNotMatch(error.message, /\n/);
      assert.match(
        error.message,
        /holds 1 upload\(s\) journaled for bucket-type=default bucket=colA sets-bucket-type=sets layout=default, not for this mount's bucket-type=default bucket=colB sets-bucket-type=sets layout=default: mount again with bucket-type=default bucket=colA sets-bucket-type=sets layout=default so they land there .*then mount with the new namespace/,
      );
      return true;
    });
    assert.deepEqual(await contentOf(spool), before);
    assert.deepEqual(readSpoolRecord(spool.directory), colA);
    // The namespace it was written for takes it, with its entry.
    await claimSpool(spool.directory, colA, logger);
    assert.deepEqual(await contentOf(spool), before);
  });
});

Deno.test("a spool's riak-fuse names and layout count as its namespace", async () => {
  await withSpool(async (spool) => {
    const { logger } = collectingLogger();
    const fuse = { preset: "riak-fuse", bucket: "b", riakFuse: { contentPrefix: "IMG_" } } as const;
    await claimSpool(spool.directory, recordFor(fuse), logger);
    await journalPending(spool.directory, "/a-file.txt");
    const otherPrefix = recordFor({ ...fuse, riakFuse: { contentPrefix: "PIC_" } });
    await assert.rejects(
      claimSpool(spool.directory, otherPrefix, logger),
      /riak-fuse-content-prefix=IMG_, not for this mount's .*riak-fuse-content-prefix=PIC_/,
    );
    await assert.rejects(
      claimSpool(spool.directory, recordFor({ bucket: "b" }), logger),
      /layout=riak-fuse .*, not for this mount's .*layout=default/,
    );
  });
});

Deno.test("a spool with nothing pending is taken over by another namespace", async () => {
  await withSpool(async (spool) => {
    const { logger, lines } = collectingLogger();
    await claimSpool(spool.directory, recordFor({ bucket: "colA" }), logger);
    const id = await journalPending(spool.directory, "/a-file.txt");
    const { journal } = await UploadJournal.open(spool.journalFile);
    await journal.complete(id);
    await journal.close();
    const colB = recordFor({ bucket: "colB" });
    await claimSpool(spool.directory, colB, logger);
    assert.deepEqual(readSpoolRecord(spool.directory), colB);
    assert.ok(lines.some((line) => line.includes("taken over") && line.includes("bucket=colA")));
  });
});

Deno.test("a spool an older riakfs left (no record) is replayed by whatever mounts it, and recorded from then on", async () => {
  await withSpool(async (spool) => {
    const { logger } = collectingLogger();
    await journalPending(spool.directory, "/a-file.txt");
    const colB = recordFor({ bucket: "colB" });
    await claimSpool(spool.directory, colB, logger);
    assert.deepEqual(readSpoolRecord(spool.directory), colB);
  });
});

Deno.test("on a disk without room for the record, the old one goes: the spool is not taken as written for a namespace it was not", async () => {
  await withFullFilesystem(async ({ directory, fill }) => {
    const { logger, lines } = collectingLogger();
    const spool = Spool.open(join(directory, "spool"));
    assert.ok(writeSpoolRecord(spool.directory, recordFor({ bucket: "colA" })));
    fill();
    await claimSpool(spool.directory, recordFor({ bucket: "colB" }), logger);
    assert.equal(readSpoolRecord(spool.directory), undefined);
    assert.deepEqual((await readdir(spool.directory)).sort(), ["staged"]);
    assert.ok(lines.some((line) => line.includes("no room on its disk to record")));
  }, { empty: true });
});

Deno.test("on a disk without room for a new record of the same namespace, the old one stays: another namespace is still refused the spool's pending entries", async () => {
  await withFullFilesystem(async ({ directory, fill }) => {
    const { logger } = collectingLogger();
    const spool = Spool.open(join(directory, "spool"));
    const colA = recordFor({ bucket: "colA" });
    assert.ok(writeSpoolRecord(spool.directory, colA));
    await journalPending(spool.directory, "/a-file.txt");
    fill();
    await claimSpool(
      spool.directory,
      { ...colA, mode: "--preset riak", mountpoint: "/m2" },
      logger,
    );
    assert.deepEqual(readSpoolRecord(spool.directory), colA);
    await assert.rejects(
      claimSpool(spool.directory, recordFor({ bucket: "colB" }), logger),
      SpoolNamespaceError,
    );
  }, { empty: true });
});

Deno.test("recordedNamespaceOtherThan names both namespaces where the record names another, nothing where it names the same or there is none", async () => {
  await withSpool((spool) => {
    const ours = placementNames(resolveNamespace({ bucket: "s14" }));
    assert.equal(recordedNamespaceOtherThan(spool.directory, ours), undefined, "no record");
    assert.ok(writeSpoolRecord(spool.directory, recordFor({ bucket: "s14" })));
    assert.equal(recordedNamespaceOtherThan(spool.directory, ours), undefined, "the same");
    const typo = placementNames(resolveNamespace({ bucket: "s14-typo" }));
    assert.deepEqual(recordedNamespaceOtherThan(spool.directory, typo), {
      recorded: "bucket-type=default bucket=s14 sets-bucket-type=sets layout=default",
      given: "bucket-type=default bucket=s14-typo sets-bucket-type=sets layout=default",
    });
    return Promise.resolve();
  });
});

Deno.test("recordedModeHidingDrained names a recorded mode that reads or lists the source alone, where a drain's deleted copies would vanish", async () => {
  await withSpool((spool) => {
    assert.equal(recordedModeHidingDrained(spool.directory), undefined, "no record");
    const recorded = (mode: string) => {
      assert.ok(writeSpoolRecord(spool.directory, { ...recordFor({}), mode }));
      return recordedModeHidingDrained(spool.directory);
    };
    assert.equal(recorded("--preset drain"), undefined);
    assert.equal(recorded("--preset migrate"), undefined);
    // riak-fuse's line without -dell: shadow, -rreadcontent alone, -rreaddir alone.
    assert.deepEqual(recorded("--preset shadow"), {
      mode: "--preset shadow",
      reason: "it reads and lists the local files alone",
    });
    const readsRiak =
      "--reads riak-then-local --copy-on-read yes --writes local+riak --after-transfer keep";
    assert.deepEqual(recorded(`${readsRiak} --listings local`), {
      mode: `${readsRiak} --listings local`,
      reason: "it lists the local files alone",
    });
    assert.equal(recorded(`${readsRiak} --listings union`), undefined);
    assert.equal(recorded("--preset no-such-preset"), undefined, "unknown: not refused on it");
    return Promise.resolve();
  });
});

Deno.test("recordedModeDeletingLocal tells a recorded mode that deletes local copies once in Riak", async () => {
  await withSpool((spool) => {
    assert.equal(recordedModeDeletingLocal(spool.directory), false, "no record");
    const recorded = (mode: string) => {
      assert.ok(writeSpoolRecord(spool.directory, { ...recordFor({}), mode }));
      return recordedModeDeletingLocal(spool.directory);
    };
    assert.equal(recorded("--preset drain"), true);
    const migrateDeleting = "--reads riak-then-local --copy-on-read yes --writes riak+local " +
      "--after-transfer delete --listings union";
    assert.equal(recorded(migrateDeleting), true);
    assert.equal(recorded("--preset migrate"), false);
    assert.equal(recorded("--preset shadow"), false);
    return Promise.resolve();
  });
});
