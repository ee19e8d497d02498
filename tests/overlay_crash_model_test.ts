/**
 * Crash-and-restart model test of the overlay's durability promise: what an operation's
 * return acknowledged (a write's close, an unlink, rename, mkdir, rmdir, chmod, utimes,
 * symlink) survives a SIGKILL of riakfs, also while Riak is unreachable: the next mount
 * replays the journal before it serves, and nothing acknowledged comes back, vanishes or ends
 * torn. The operations are the model's (tests/_model.ts), applied through the mount and to a
 * reference directory; between two operations (never during one, so that no operation is
 * half done) the mount is killed and mounted again on the same source and spool, and the
 * tree through the new mount must equal the reference at once. At the end, once the upload
 * queue is empty, Riak must hold exactly the reference tree (and in shadow and migrate so
 * must the source).
 *
 * Some crashes come after an outage: Riak is killed, a few operations run, then riakfs is
 * killed and Riak started again (before the new mount, or, for some, right after it: the
 * replayed uploads then retry until Riak is back, and the comparison waits for them). During the outage an operation may be
 * refused: an error the local filesystem would not have answered (EIO, or ENOENT for a name
 * Riak could not be asked about) means it did not happen, and the reference is put back as
 * it was before it. An operation the mount acknowledged during the outage must have happened.
 *
 * A mismatch names the seed and the steps up to it, as JSON that {@link runCrashSteps}
 * replays. The random sequences run only when asked: `RIAKFS_CRASH_SEEDS=1-50` (and
 * `RIAKFS_CRASH_OPS=60` for longer ones, `RIAKFS_CRASH_PRESETS=drain,riak` for some presets);
 * the short sequences at the end run with the suite.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom } from "../src/util/random.ts";
import {
  eventually,
  killMount,
  type OverlayEnv,
  type OverlayMount,
  statusOf,
  withOverlayEnv,
} from "./_overlay.ts";
import * as model from "./_model.ts";
import type { Op, Outcome } from "./_model.ts";

/**
 * The random sequences (`RIAKFS_CRASH_SEEDS=1-50`, `RIAKFS_CRASH_PRESETS=drain,riak`,
 * `RIAKFS_CRASH_OPS=60`): none by default; operations of each, crashes not counted.
 */
const RANDOM = model.randomRuns("RIAKFS_CRASH", 40);
/** Operations making a random sequence's legacy tree (not in riak, which ignores it). */
const LEGACY_OPERATIONS = 8;
/** The chance of a crash after an operation of a random sequence. */
const CRASH_CHANCE = 0.12;
/** The chance that a crash of a random sequence comes at the end of an outage. */
const OUTAGE_CHANCE = 0.4;

/**
 * A step of a sequence: an operation, the start of an outage (Riak killed), or a crash of
 * riakfs (SIGKILL, then a new mount of the same source and spool). A crash ends an outage:
 * Riak starts again before the new mount, or right after it (`riakBack: "after-mount"`).
 */
type Step = Op | { outage: true } | { crash: true; riakBack?: "after-mount" };

function isOp(step: Step): step is Op {
  return "op" in step;
}

/** The steps of a random sequence, made as it goes (operations follow the reference). */
function* randomSteps(
  random: () => number,
  reference: () => string,
  legacy: number,
  count: number,
): Generator<Step> {
  for (let index = 0; index < legacy; index++) yield model.generate(random, reference(), true);
  for (let index = 0; index < count;) {
    if (random() < CRASH_CHANCE) {
      if (random() < OUTAGE_CHANCE) {
        yield { outage: true };
        const during = 1 + Math.floor(random() * 4);
        for (let left = during; left > 0 && index < count; left--, index++) {
          yield model.generate(random, reference());
        }
        yield random() < 0.3 ? { crash: true, riakBack: "after-mount" } : { crash: true };
      } else yield { crash: true };
      continue;
    }
    yield model.generate(random, reference());
    index++;
  }
}

/** Runs `body` with `path`'s tree as it is now put back in place if `body` says so. */
function withUndo(path: string, body: () => Promise<boolean>): Promise<boolean> {
  const saved = `${path}.before`;
  fs.rmSync(saved, { recursive: true, force: true });
  // cp -a: modes (set-user-ID ones too), mtimes and symlinks exactly as they are.
  execFileSync("cp", ["-a", path, saved]);
  return body().then((undo) => {
    if (undo) {
      fs.rmSync(path, { recursive: true, force: true });
      fs.renameSync(saved, path);
    } else fs.rmSync(saved, { recursive: true, force: true });
    return undo;
  });
}

/** Whether the mount refused an operation during an outage: an error the reference lacks. */
function refused(expected: Outcome, actual: Outcome): boolean {
  return !actual.ok && !model.sameOutcome(expected, actual);
}

/**
 * Runs a sequence of steps (given, or generated from `seed`) on fresh mounts of `preset` and
 * on a reference directory; throws at the first mismatch with a reproduction.
 */
function runCrashModel(
  preset: string,
  sequence: { seed: number; count: number } | { steps: Step[] },
): Promise<void> {
  return withOverlayEnv(async (env) => {
    const work = fs.mkdtempSync(join(tmpdir(), "riakfs-crash-ref-"));
    const reference = join(work, "tree");
    fs.mkdirSync(reference);
    const seeded = "seed" in sequence;
    const given = seeded ? [] : sequence.steps;
    const legacy = seeded
      ? (preset === "riak" ? 0 : LEGACY_OPERATIONS)
      : model.legacyCountOf(given.map((step) => isOp(step) ? step : { op: "lstat", path: "a" }));
    const steps = seeded
      ? randomSteps(seededRandom(sequence.seed), () => reference, legacy, sequence.count)
      : given.values();
    const label = seeded ? `${preset}, seed ${sequence.seed}` : preset;
    const done: Step[] = [];
    const fail = (problem: string) =>
      new Error(model.reproduction(label, done, problem, "runCrashSteps"));
    let mounted: OverlayMount | undefined;
    /** The mounts killed so far, for their logs. */
    const earlier: OverlayMount[] = [];
    let outage = false;
    let crashes = 0;
    try {
      for (const step of steps) {
        done.push(step);
        if (done.length <= legacy) {
          // Both local: the same outcome; only what they make matters.
          await model.apply(reference, step as Op);
          await model.apply(env.source, step as Op);
          continue;
        }
        mounted ??= await env.mount(preset);
        if ("outage" in step) {
          await env.riak.stop();
          outage = true;
        } else if ("crash" in step) {
          earlier.push(mounted);
          mounted = await crashAndRemount(env, preset, mounted, outage, step.riakBack);
          outage = false;
          model.assertMountMatches(reference, env.mountpoint, `after crash ${++crashes}`, fail);
        } else if (outage) {
          let problem: string | undefined;
          await withUndo(reference, async () => {
            const expected = await model.apply(reference, step);
            const actual = await model.apply(env.mountpoint, step);
            if (actual.ok && !model.sameOutcome(expected, actual)) {
              problem = model.outcomeMismatch(done.length - 1, step, expected, actual);
            }
            return refused(expected, actual);
          });
          if (problem) throw fail(`during an outage, ${problem}`);
        } else {
          const expected = await model.apply(reference, step);
          const actual = await model.apply(env.mountpoint, step);
          if (!model.sameOutcome(expected, actual)) {
            throw fail(model.outcomeMismatch(done.length - 1, step, expected, actual));
          }
        }
      }
      mounted ??= await env.mount(preset);
      if (outage) {
        await env.riak.restart();
        outage = false;
        // Until the mount finds Riak again, its listings are the source's alone.
        await reachedAgain(env);
      }
      model.assertMountMatches(reference, env.mountpoint, "at the end", fail);
      // A copy-on-read cut off by a crash or an outage is not retried (the next full read
      // is), and the reads of this mount may come from the page cache: a fresh mount reads
      // every legacy file again, with Riak up.
      await env.unmount(mounted);
      earlier.push(mounted);
      mounted = await env.mount(preset);
      model.assertMountMatches(reference, env.mountpoint, "after a clean remount", fail);
      await model.assertStoredTrees(env, preset, model.snapshotOf(reference), legacy > 0, fail);
      await env.unmount(mounted);
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nmount warnings and errors:\n${
          [...earlier, ...(mounted ? [mounted] : [])].map((each, index) =>
            `mount ${index + 1}:\n${model.warningsOf(each.stderr())}`
          ).join("\n")
        }`,
      );
    } finally {
      if (outage) await env.riak.restart();
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
}

/**
 * Kills the mount (SIGKILL) and mounts `preset` again on the same source and spool; an
 * outage ends with Riak started again before the new mount, or right after it.
 */
async function crashAndRemount(
  env: OverlayEnv,
  preset: string,
  mounted: OverlayMount,
  outage: boolean,
  riakBack: "after-mount" | undefined,
): Promise<OverlayMount> {
  await killMount(env, mounted);
  if (outage && riakBack === undefined) await env.riak.restart();
  const again = await env.mount(preset);
  if (outage && riakBack === "after-mount") {
    await env.riak.restart();
    await reachedAgain(env);
  }
  return again;
}

/**
 * Waits until the mount's replayed uploads reached Riak and the mount found Riak reachable
 * again (its client pings a node that was down about once a second): until then a mode that
 * reads Riak answers EIO, or lists the local files only, as during the outage, and a
 * copy-on-read of the comparison's reads would fail (and is not retried).
 */
async function reachedAgain(env: OverlayEnv): Promise<void> {
  await eventually("the mount reaches Riak again, its uploads done", async () => {
    // A request of its own first: the mount's view of Riak comes from its last request.
    await fsp.readdir(env.mountpoint);
    const { riak, metrics: { uploads } } = await statusOf(env);
    return riak.reachable && uploads.pending === 0 && uploads.active === 0;
  }, 60_000);
}

/** Replays a fixed sequence of steps (a shrunk reproduction) against `preset`. */
export function runCrashSteps(preset: string, steps: Step[]): Promise<void> {
  return runCrashModel(preset, { steps });
}

for (const preset of RANDOM.presets) {
  for (const seed of RANDOM.seeds) {
    Deno.test(`${preset}: ${RANDOM.operations} random operations with crashes, seed ${seed}, agree with a local directory`, async () => {
      await runCrashModel(preset, { seed, count: RANDOM.operations });
    });
  }
}

// ---- Short sequences that run with the suite ----

for (const preset of model.PRESETS) {
  const legacy: Step[] = preset === "riak" ? [] : [
    { op: "mkdir", path: "c", mode: 0o750, legacy: true },
    { op: "writeFile", path: "c/x", size: 3000, seed: 1, legacy: true },
  ];
  Deno.test(`${preset}: what was acknowledged before a crash is there after the restart`, async () => {
    await runCrashSteps(preset, [
      ...legacy,
      { op: "mkdir", path: "d", mode: 0o755 },
      { op: "writeFile", path: "d/x", size: 70_000, seed: 2 },
      { op: "writeFile", path: "a", size: 100, seed: 3 },
      { op: "symlink", target: "d/x", path: "b" },
      { crash: true },
      { op: "rename", from: "a", to: "d/y" },
      { op: "unlink", path: "d/x" },
      { op: "chmod", path: "d", mode: 0o700 },
      { op: "utimes", path: "d/y", mtimeMs: 1_200_000_000_000 },
      { op: "pwrite", path: "d/y", offset: 50, size: 200, seed: 4 },
      { crash: true },
      { op: "unlink", path: "b" },
      { op: "rmdir", path: "c" },
      { op: "mkdir", path: "a", mode: 0o700 },
    ]);
  });
  // Only where there is no legacy data: a legacy file is copied into Riak when it is read
  // whole, and a copy that an outage or a crash cut off is not tried again by design (the
  // next pre-warm moves what applications did not), so whether the end finds it in Riak
  // depends on timing. RIAKFS_CRASH_SEEDS runs them in every preset.
  if (preset !== "riak") continue;
  Deno.test(`${preset}: what was acknowledged during an outage is there after the restart`, async () => {
    await runCrashSteps(preset, [
      ...legacy,
      { op: "writeFile", path: "a", size: 200, seed: 5 },
      { op: "mkdir", path: "d", mode: 0o755 },
      { outage: true },
      { op: "writeFile", path: "b", size: 1_100_000, seed: 6 },
      { op: "appendFile", path: "a", size: 300, seed: 7 },
      { op: "unlink", path: "a" },
      { op: "mkdir", path: "d/x", mode: 0o700 },
      { crash: true },
      { op: "readFile", path: "b" },
      { outage: true },
      { op: "writeFile", path: "d/y", size: 10, seed: 8 },
      { op: "truncate", path: "b", length: 1000 },
      { crash: true, riakBack: "after-mount" },
    ]);
  });
}

// An unlink right after a close calls the file's upload off (its look at Riak under way, or
// not started behind the others) and drops it with its journal entry: across a crash the file
// stays removed and the files written beside it, uploaded or still queued, stay there.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: files removed before their uploads went out stay removed after a crash`, async () => {
    const steps: Step[] = [];
    const names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    for (const [index, path] of names.entries()) {
      steps.push({ op: "writeFile", path, size: 100 + index, seed: index });
      if (index % 3 === 2) steps.push({ op: "unlink", path });
    }
    steps.push({ op: "unlink", path: "a" }, { crash: true });
    await runCrashSteps(preset, steps);
  });
}

// ---- Shrunk reproductions of random sequences that failed; each fails without its fix ----

// riakfs killed after Riak stored a closed file's object and before its entry in the
// directory listing: the replayed upload wrote over the object and left it unlisted, so
// lstat found the file and readdir did not (failed every time).
Deno.test("riak: a file closed and read before a crash is listed after the restart", async () => {
  await runCrashSteps("riak", [
    { op: "writeFile", path: "d", size: 43, seed: 145632 },
    { op: "readFile", path: "d" },
    { crash: true },
  ]);
});

// A chmod after close() and before the kernel's RELEASE changed the lingering write session,
// which nothing committed again, and a crash lost it. It depends on timing (about one write in
// six lost its chmod), hence a dozen files.
for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: a chmod right after a write's close survives a crash`, async () => {
    const steps: Step[] = [];
    for (const path of ["d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"]) {
      steps.push(
        { op: "appendFile", path, size: 108, seed: 27479 },
        { op: "chmod", path, mode: 0o700 },
      );
    }
    await runCrashSteps(preset, [...steps, { crash: true }]);
  });
}

// A chmod of a legacy directory during an outage was answered EIO yet changed the directory
// in the source, which the restart then showed (failed every time).
Deno.test("drain: a chmod of a legacy directory during an outage survives a crash", async () => {
  await runCrashSteps("drain", [
    { op: "mkdir", path: "a", mode: 0o750, legacy: true },
    { op: "mkdir", path: "a/x", mode: 0o700, legacy: true },
    { outage: true },
    { op: "chmod", path: "a/x", mode: 0o750 },
    { crash: true },
  ]);
});

// A symlink made in a legacy directory made the directory in Riak with the default mode, not
// the source's, and migrate's union then showed that (failed every time).
Deno.test("migrate: a symlink in a legacy directory keeps the directory's mode across a crash", async () => {
  await runCrashSteps("migrate", [
    { op: "mkdir", path: "a", mode: 0o755, legacy: true },
    { op: "chmod", path: "a", mode: 0o444 },
    { outage: true },
    { op: "symlink", target: "b/x", path: "a/y" },
    { crash: true },
  ]);
});

// A write over a legacy file, and riakfs killed before its upload ended: the local copy it
// superseded goes once the upload lands, which only memory remembered, so the upload the
// restart replayed left it in the source; the rename took it along, and during the outage the
// mount served its old bytes in place of Riak's (drain, seed 18; failed every time).
Deno.test("drain: a local copy a write superseded is not served during an outage after a crash", async () => {
  await runCrashSteps("drain", [
    { op: "writeFile", path: "c", size: 40, seed: 1, legacy: true },
    { op: "writeFile", path: "c", size: 100, seed: 2 },
    { crash: true },
    { op: "rename", from: "c", to: "d" },
    { outage: true },
    { op: "readFile", path: "d" },
  ]);
});
