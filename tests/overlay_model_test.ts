/**
 * Model-based (differential) test of the overlay: for each Riak-backed preset and a few fixed
 * seeds, a seeded PRNG generates a sequence of random filesystem operations over a small
 * namespace (four names at the top, two below each), applied both through the mount and to a
 * plain directory under /tmp, the reference. Every operation must end the same way on both:
 * both succeed (with the same answer for readlink, read and lstat), or both fail with the same
 * error code. The whole trees (names, types, bytes, symlink targets, mode bits, and the mtime
 * of files whose mtime utimes set) are compared every few operations and at the end; at the
 * end, once the upload queue is empty, Riak must hold exactly the reference tree, and in
 * shadow and migrate so must the source. Except in riak, a sequence starts with a small legacy
 * tree made directly in the source (and the reference) before the mount starts.
 *
 * Both sides go through the same node:fs calls, so Deno's own semantics apply to both: its
 * unlink removes an empty directory (and reports ENOTEMPTY for a full one) instead of EISDIR.
 *
 * A mismatch names the seed, the operation's index and the operations up to it, as JSON that
 * {@link runSequence} replays; the shrunk reproductions of mismatches found so far are tests
 * of their own at the end of the file, and run with the suite. The random sequences run only
 * when asked: `RIAKFS_MODEL_SEEDS=1,2,3` or `=100-300` (and `RIAKFS_MODEL_OPS=400` for longer
 * ones, `RIAKFS_MODEL_PRESETS=shadow,migrate` for only some presets).
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom } from "../src/util/random.ts";
import {
  apply,
  assertMountMatches,
  assertStoredTrees,
  COMPARE_EVERY,
  generate,
  LEGACY_OPERATIONS,
  legacyCountOf,
  mountWarnings,
  type Op,
  outcomeMismatch,
  PRESETS,
  randomRuns,
  reproduction,
  sameOutcome,
  snapshotOf,
} from "./_model.ts";
import { type OverlayMount, withOverlayEnv } from "./_overlay.ts";

/**
 * The random sequences (`RIAKFS_MODEL_SEEDS`, `RIAKFS_MODEL_PRESETS`, `RIAKFS_MODEL_OPS`):
 * none by default. They run as a stress tool
 * (`RIAKFS_MODEL_SEEDS=1,2,3 deno test -A tests/overlay_model_test.ts`): their operations are
 * fixed by the seed, but the mount's queues run them against its own timing, and a rare
 * mismatch that depends on it would make the suite fail by chance. What they found is below,
 * shrunk to sequences that fail every time without the fixes.
 */
const RANDOM = randomRuns("RIAKFS_MODEL", 150);

/**
 * Applies `ops` (or, with `seed`, `count` generated ones) to a fresh mount of `preset` and to
 * a reference directory; throws at the first mismatch with a reproduction.
 */
async function runModel(
  preset: string,
  source: { ops: Op[] } | { seed: number; count: number },
): Promise<void> {
  await withOverlayEnv(async (env) => {
    const reference = fs.mkdtempSync(join(tmpdir(), "riakfs-model-ref-"));
    const random = "seed" in source ? seededRandom(source.seed) : undefined;
    const given = "seed" in source ? [] : source.ops;
    const legacyCount = random ? (preset === "riak" ? 0 : LEGACY_OPERATIONS) : legacyCountOf(given);
    const count = random ? legacyCount + (source as { count: number }).count : given.length;
    const label = random ? `${preset}, seed ${(source as { seed: number }).seed}` : `${preset}`;
    const done: Op[] = [];
    const fail = (problem: string) => new Error(reproduction(label, done, problem));
    const compareTrees = (when: string) =>
      assertMountMatches(reference, env.mountpoint, when, fail);
    let mounted: OverlayMount | undefined;
    try {
      for (let index = 0; index < legacyCount; index++) {
        const op = random ? generate(random, reference, true) : given[index];
        done.push(op);
        // Both local: the same outcome; only what they make matters.
        await apply(reference, op);
        await apply(env.source, op);
      }
      mounted = await env.mount(preset);
      for (let index = legacyCount; index < count; index++) {
        const op = random ? generate(random, reference) : given[index];
        done.push(op);
        const expected = await apply(reference, op);
        const actual = await apply(env.mountpoint, op);
        if (!sameOutcome(expected, actual)) {
          throw fail(outcomeMismatch(index, op, expected, actual));
        }
        if ((index + 1) % COMPARE_EVERY === 0) compareTrees(`after operation ${index}`);
      }
      compareTrees("at the end");
      await assertStoredTrees(env, preset, snapshotOf(reference), legacyCount > 0, fail);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${mountWarnings(mounted)}`);
    } finally {
      fs.rmSync(reference, { recursive: true, force: true });
    }
  });
}

/** Replays a fixed sequence (a shrunk reproduction) against `preset`. */
export function runSequence(preset: string, ops: Op[]): Promise<void> {
  return runModel(preset, { ops });
}

for (const preset of RANDOM.presets) {
  for (const seed of RANDOM.seeds) {
    Deno.test(`${preset}: ${RANDOM.operations} random operations, seed ${seed}, agree with a local directory`, async () => {
      await runModel(preset, { seed, count: RANDOM.operations });
    });
  }
}

// ---- The mismatches the random sequences found, shrunk; each failed every time before ----

// Linux gives a directory made in a set-group-ID directory the set-group-ID bit too (the
// overlay made it with the mode mkdir asked for, in Riak and chmod'ed so in the source).
for (const preset of PRESETS) {
  Deno.test(`${preset}: a directory made in a set-group-ID directory inherits the bit`, async () => {
    await runSequence(preset, [
      { op: "mkdir", path: "d", mode: 0o755 },
      { op: "chmod", path: "d", mode: 0o2755 },
      { op: "mkdir", path: "d/x", mode: 0o755 },
      { op: "lstat", path: "d/x" },
    ]);
  });
}

// Where writes are staged (riak, drain), a chmod or utimes right after a write's close is
// kept (it was lost about one time in four: the release of the written file was committing,
// and the change went into the session it then let go). Repeated on a dozen files.
for (const preset of ["riak", "drain"]) {
  Deno.test(`${preset}: chmod and utimes right after a write are kept`, async () => {
    const ops: Op[] = [];
    for (let index = 0; index < 12; index++) {
      const path = `f${index}`;
      ops.push(
        { op: "writeFile", path, size: 79, seed: index },
        { op: "utimes", path, mtimeMs: 1_139_365_507_000 },
        { op: "chmod", path, mode: 0o755 },
        { op: "writeFile", path, size: 118, seed: 100 + index },
        { op: "lstat", path },
      );
    }
    await runSequence(preset, ops);
  });
}

// A file written or copied into a legacy directory (only in the source) makes the directory
// in Riak with the source directory's attributes (it got the defaults, 0755, which drain's
// union then showed for a directory that is 0700).
Deno.test("drain: a legacy directory keeps its mode once a file is written in it", async () => {
  await runSequence("drain", [
    { op: "mkdir", path: "d", mode: 0o700, legacy: true },
    { op: "writeFile", path: "d/x", size: 5, seed: 1, legacy: true },
    { op: "appendFile", path: "d/y", size: 0, seed: 2 },
    { op: "mkdir", path: "d/z", mode: 0o700 },
    { op: "lstat", path: "d" },
  ]);
});

// In drain, a chmod or utimes right after a write of a legacy file succeeds (it failed with
// ENOENT most times: the setattr looked at the local copy, then waited for the upload, which
// deleted that copy). The test rewrites six files.
Deno.test("drain: utimes right after rewriting a legacy file succeeds", async () => {
  const paths = ["f0", "f1", "f2", "f3", "f4", "f5"];
  await runSequence("drain", [
    ...paths.map((path, seed): Op => ({ op: "writeFile", path, size: 198, seed, legacy: true })),
    ...paths.flatMap((path, seed): Op[] => [
      { op: "writeFile", path, size: 35_635, seed: 100 + seed },
      { op: "utimes", path, mtimeMs: 1_327_288_283_000 },
    ]),
  ]);
});

// In drain, reading a legacy file again while its copy-on-read moves it into Riak never
// answers ENOENT (an open found the local copy, which the transfer then deleted before the
// open reached it; about one sequence in eight failed). Repeated on a dozen files.
Deno.test("drain: reads of a legacy file while its copy moves it into Riak find it", async () => {
  const ops: Op[] = [];
  for (let index = 0; index < 12; index++) {
    const path = `f${index}`;
    ops.push({ op: "writeFile", path, size: index % 2 === 0 ? 0 : 300, seed: index, legacy: true });
  }
  for (let index = 0; index < 12; index++) {
    for (let read = 0; read < 5; read++) ops.push({ op: "readFile", path: `f${index}` });
  }
  await runSequence("drain", ops);
});

/** A write big enough that four of them keep the mount's upload slots busy a while. */
function largeWrite(path: string, seed: number): Op {
  return { op: "writeFile", path, size: 1_600_000, seed };
}

/** Two directories, b and c, with two large files each: the four upload slots are busy. */
function busyUploadSlots(seed: number): Op[] {
  return [
    { op: "mkdir", path: "b", mode: 0o755 },
    { op: "mkdir", path: "c", mode: 0o755 },
    largeWrite("b/x", seed),
    largeWrite("b/y", seed + 1),
    largeWrite("c/x", seed + 2),
    largeWrite("c/y", seed + 3),
  ];
}

// In migrate, a directory made where a file was just removed lists (readdir, rmdir) while the
// file's removal from Riak is still queued: lstat answered from the source (a directory), but
// the listing asked Riak, which still held the file, and failed with ENOTDIR. Four large
// writes first keep the upload slots busy, so that the removal waits (it failed every time).
Deno.test("migrate: a directory made over a file whose removal is queued lists", async () => {
  await runSequence("migrate", [
    { op: "writeFile", path: "a", size: 100, seed: 1 },
    ...busyUploadSlots(2),
    { op: "unlink", path: "a" },
    { op: "mkdir", path: "a", mode: 0o700 },
    { op: "rmdir", path: "a" },
    { op: "mkdir", path: "a", mode: 0o750 },
    { op: "writeFile", path: "a/x", size: 10, seed: 6 },
  ]);
});

// In migrate, a file renamed into such a directory (made where a file's removal from Riak is
// still queued) is renamed: Riak's rename met the file still there (ENOTDIR) and the rename
// was undone; it is journaled behind the removal instead, as mkdir and symlink are.
Deno.test("migrate: a rename into a directory made over a file whose removal is queued", async () => {
  await runSequence("migrate", [
    { op: "writeFile", path: "a", size: 100, seed: 1 },
    { op: "writeFile", path: "e", size: 50, seed: 2 },
    ...busyUploadSlots(3),
    { op: "unlink", path: "a" },
    { op: "mkdir", path: "a", mode: 0o755 },
    { op: "rename", from: "e", to: "a/x" },
    { op: "readFile", path: "a/x" },
  ]);
});

// In migrate, a file removed from a directory that is renamed while the file's removal from
// Riak is still queued stays removed: Riak's rename carried the old file to the new name,
// where nothing removed it (found by 400-operation sequences; this failed nine times in ten).
Deno.test("migrate: a file removed just before its directory is renamed stays removed", async () => {
  await runSequence("migrate", [
    { op: "mkdir", path: "b", mode: 0o755 },
    { op: "writeFile", path: "b/x", size: 100, seed: 1 },
    { op: "readFile", path: "b/x" },
    { op: "mkdir", path: "d", mode: 0o755 },
    largeWrite("d/x", 2),
    largeWrite("d/y", 3),
    largeWrite("e", 4),
    largeWrite("f", 5),
    { op: "unlink", path: "b/x" },
    { op: "rename", from: "b", to: "c" },
    { op: "lstat", path: "c/x" },
  ]);
});

// In drain, a chmod of a legacy directory right after a file was written in it is kept: the
// file's upload had made the directory in Riak (with the old mode), while the chmod asked
// Riak through the absence of the directory a lookup had cached, and left Riak's copy, which
// the union then showed, as it was (found by drain's random sequences; failed every time).
Deno.test("drain: a chmod of a legacy directory right after a write in it is kept", async () => {
  await runSequence("drain", [
    { op: "mkdir", path: "c", mode: 0o755, legacy: true },
    { op: "writeFile", path: "c/x", size: 140, seed: 1 },
    { op: "chmod", path: "c", mode: 0o2775 },
    { op: "lstat", path: "c" },
  ]);
});

// In drain, a directory renamed after a file written in it reached Riak is renamed in Riak
// too: the lookup's cached "not in Riak" of the directory, from before the upload made it
// there, made the rename skip Riak, and the file stayed under the old name (found by drain's
// 400-operation random sequences, seeds 76 and 77; failed every time).
Deno.test("drain: a legacy directory renamed after a write in it takes the file along", async () => {
  await runSequence("drain", [
    { op: "mkdir", path: "a", mode: 0o755, legacy: true },
    { op: "mkdir", path: "b", mode: 0o755, legacy: true },
    { op: "writeFile", path: "a/y", size: 0, seed: 2 },
    { op: "rename", from: "a", to: "b" },
  ]);
});

// In drain, a directory is not renamed over one that is empty in the source but holds a file
// in Riak: with Riak's absence of the target remembered from before the file's upload made it,
// the rename answered success and left the file behind under the name it took over (found by
// drain's 400-operation random sequences, seed 76; failed every time).
Deno.test("drain: a rename over a directory whose files are only in Riak is ENOTEMPTY", async () => {
  await runSequence("drain", [
    { op: "mkdir", path: "b", mode: 0o755, legacy: true },
    { op: "mkdir", path: "d", mode: 0o755, legacy: true },
    { op: "lstat", path: "b" }, // Riak's absence of b is remembered...
    { op: "writeFile", path: "b/y", size: 10, seed: 1 }, // ...when this upload makes it.
    { op: "rename", from: "d", to: "b" },
    { op: "readFile", path: "b/y" },
  ]);
});

// In shadow, a file renamed where a directory was, whose entries' removals from Riak are still
// queued, is renamed: looking for those entries under the new name (below a file now) failed
// with ENOTDIR, and the rename was undone and answered ENOTDIR (seeds 59, 109 and 123 of
// shadow's 400-operation sequences, seed 93 of migrate's; likely the "shadow rename d->b
// ENOTDIR" seen once before). Riak's rename is left to the journal when the removal of what
// the name was is queued: it would have carried Riak's old directory to the new name. This
// failed every time.
Deno.test("shadow: a file renamed from where a directory's removal is queued", async () => {
  await runSequence("shadow", [
    { op: "mkdir", path: "a", mode: 0o755 },
    { op: "writeFile", path: "a/x", size: 100, seed: 1 },
    ...busyUploadSlots(2),
    { op: "unlink", path: "a/x" },
    { op: "rmdir", path: "a" },
    { op: "writeFile", path: "a", size: 10, seed: 6 },
    { op: "rename", from: "a", to: "d" },
  ]);
});

// In shadow, an empty directory removed just before its parent is renamed, its removal from
// Riak still queued, stays removed: Riak's rename carried it to the new name, where nothing
// removed it (seed 220 of shadow's 400-operation sequences; failed every time).
Deno.test("shadow: an empty directory removed just before its parent is renamed stays removed", async () => {
  await runSequence("shadow", [
    { op: "mkdir", path: "e", mode: 0o755 },
    { op: "mkdir", path: "e/x", mode: 0o755 },
    ...busyUploadSlots(2),
    { op: "rmdir", path: "e/x" },
    { op: "rename", from: "e", to: "a" },
  ]);
});
