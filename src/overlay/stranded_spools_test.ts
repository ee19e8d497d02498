import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock } from "../util/lock.ts";
import { journalPending } from "./_spool_fixture.ts";
import { Logger } from "./log.ts";
import { PRESETS } from "./modes.ts";
import {
  defaultSpoolDirectory,
  formerSystemSpoolDirectory,
  Spool,
  spoolLockFile,
} from "./spool.ts";
import { writeSpoolRecord } from "./spool_record.ts";
import {
  chooseSpoolDirectory,
  refuseStrandedSpools,
  StrandedSpoolError,
} from "./stranded_spools.ts";

/** What a test gets: a source, a root for the riak preset's spools, a logger's lines. */
interface Place {
  base: string;
  source: string;
  systemRoot: string;
  logger: Logger;
  lines: string[];
}

async function withPlace(body: (place: Place) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "riakfs-stranded-"));
  const lines: string[] = [];
  const logger = new Logger({
    format: "json",
    level: "debug",
    sink: { write: (line) => lines.push(line) },
  });
  try {
    const source = join(base, "src");
    const systemRoot = join(base, "var-lib-riakfs");
    await mkdir(source);
    await body({ base, source, systemRoot, logger, lines });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** Leaves `count` pending uploads in a spool at `directory`, recorded as `record` says. */
async function leavePending(
  directory: string,
  count: number,
  record?: { mode: string; mountpoint: string },
): Promise<void> {
  Spool.open(directory);
  if (record) writeSpoolRecord(directory, { namespace: { bucket: "nsA" }, ...record });
  for (let index = 0; index < count; index++) {
    await journalPending(directory, `/d/new-${index}.txt`);
  }
}

Deno.test("a mount that does not use SOURCE/.riakfs-spool is refused while drain left entries there, in one line: where, how many, and how to replay them", async () => {
  await withPlace(async ({ base, source, systemRoot, logger }) => {
    const left = join(source, ".riakfs-spool");
    await leavePending(left, 2, { mode: "--preset drain", mountpoint: "/m" });
    const before = await readFile(join(left, "journal"));
    const riakSpool = defaultSpoolDirectory(undefined, "/m", systemRoot);
    const surroundings = { source, mountpoint: "/m", logger, systemRoot };
    await assert.rejects(
      refuseStrandedSpools({ ...surroundings, spool: riakSpool, mode: PRESETS.riak }),
      (error: Error) => {
        assert.ok(error instanceof StrandedSpoolError);
        assert.doesNotMatch(error.message, /\n/);
        assert.equal(
          error.message,
          `${left} holds 2 upload(s) not yet in Riak, which this mount (--preset riak, spool ` +
            `${riakSpool}) would not replay: mount with --preset drain --spool ${left} to ` +
            "replay them (riakfs umount once they are drained), then mount as you meant to",
        );
        return true;
      },
    );
    // The passthrough would serve SOURCE without them: refused too.
    await assert.rejects(
      refuseStrandedSpools({ ...surroundings, mode: PRESETS.passthrough }),
      /holds 2 upload\(s\) .*\(--preset passthrough, which serves SOURCE as it is and has no spool\)/,
    );
    // So is a drain mount given a spool of its own.
    await assert.rejects(
      refuseStrandedSpools({ ...surroundings, spool: join(base, "own"), mode: PRESETS.drain }),
      StrandedSpoolError,
    );
    assert.deepEqual(await readFile(join(left, "journal")), before);
    // The mount that uses it replays it.
    await refuseStrandedSpools({ ...surroundings, spool: left, mode: PRESETS.migrate });
  });
});

Deno.test("a spool left by the riak preset for this mountpoint refuses the other presets; an older riakfs's spool names its presets", async () => {
  await withPlace(async ({ source, systemRoot, logger }) => {
    const riakSpool = defaultSpoolDirectory(undefined, "/m", systemRoot);
    await leavePending(riakSpool, 1);
    const surroundings = { source, mountpoint: "/m", logger, systemRoot };
    await assert.rejects(
      refuseStrandedSpools({
        ...surroundings,
        spool: join(source, ".riakfs-spool"),
        mode: PRESETS.drain,
      }),
      new RegExp(`${riakSpool} holds 1 upload\\(s\\).*mount with --preset riak --spool`),
    );
    await rm(riakSpool, { recursive: true });
    await leavePending(join(source, ".riakfs-spool"), 3);
    await assert.rejects(
      refuseStrandedSpools({ ...surroundings, mode: PRESETS.passthrough }),
      /holds 3 upload\(s\).*mount with the preset that wrote them \(drain, migrate or shadow\) --spool/,
    );
  });
});

Deno.test("spools with nothing pending, or served by a live mount, let a mount start", async () => {
  await withPlace(async ({ source, systemRoot, logger, lines }) => {
    const left = join(source, ".riakfs-spool");
    await leavePending(left, 0);
    const surroundings = { source, mountpoint: "/m", logger, systemRoot };
    await refuseStrandedSpools({ ...surroundings, mode: PRESETS.passthrough });
    await rm(left, { recursive: true });
    await leavePending(left, 1);
    const lock = acquireLock(spoolLockFile(left));
    try {
      await refuseStrandedSpools({ ...surroundings, mode: PRESETS.passthrough });
    } finally {
      lock.release();
    }
    await assert.rejects(
      refuseStrandedSpools({ ...surroundings, mode: PRESETS.passthrough }),
      StrandedSpoolError,
    );
    assert.deepEqual(lines, []);
  });
});

Deno.test("the riak preset replays the spool an older riakfs left under the mountpoint's former name, unless another mountpoint's riakfs recorded it as its own", async () => {
  await withPlace(async ({ systemRoot, logger, lines }) => {
    const mountpoint = "/x_y/m";
    const current = defaultSpoolDirectory(undefined, mountpoint, systemRoot);
    const former = formerSystemSpoolDirectory(mountpoint, systemRoot)!;
    const choose = () => chooseSpoolDirectory(undefined, undefined, mountpoint, logger, systemRoot);
    assert.equal(await choose(), current);
    await leavePending(former, 1);
    assert.equal(await choose(), former);
    assert.ok(lines.some((line) => line.includes("an older riakfs named")));
    const riak = { mountpoint, logger, systemRoot, mode: PRESETS.riak };
    await refuseStrandedSpools({ ...riak, spool: former });
    // Left where the new name has entries of its own: not replayed, and said.
    await leavePending(current, 1);
    assert.equal(await choose(), current);
    await assert.rejects(
      refuseStrandedSpools({ ...riak, spool: current }),
      new RegExp(`${former} holds 1 upload`),
    );
    await rm(current, { recursive: true });
    // /x/y/m's spool has that name now; recorded as its own, it is not this mount's.
    writeSpoolRecord(former, { namespace: {}, mode: "--preset riak", mountpoint: "/x/y/m" });
    assert.equal(await choose(), current);
    await refuseStrandedSpools({ ...riak, spool: current });
    assert.deepEqual(await readdir(systemRoot), [former.slice(systemRoot.length + 1)]);
  });
});
