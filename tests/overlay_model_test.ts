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
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { seededBytes } from "../src/store/_test_support.ts";
import { seededRandom } from "../src/util/random.ts";
import {
  eventually,
  type OverlayEnv,
  type OverlayMount,
  statusOf,
  withOverlayEnv,
} from "./_overlay.ts";

const PRESETS = ["shadow", "migrate", "drain", "riak"];
/**
 * Seeds of the random sequences: none by default. They run as a stress tool
 * (`RIAKFS_MODEL_SEEDS=1,2,3 deno test -A tests/overlay_model_test.ts`): their operations are
 * fixed by the seed, but the mount's queues run them against its own timing, and a rare
 * mismatch that depends on it would make the suite fail by chance. What they found is below,
 * shrunk to sequences that fail every time without the fixes.
 */
const SEEDS = seedsOf(process.env.RIAKFS_MODEL_SEEDS ?? "");
/** The presets the random sequences run on (`RIAKFS_MODEL_PRESETS=shadow,migrate`): all. */
const SEED_PRESETS = (process.env.RIAKFS_MODEL_PRESETS ?? "").split(",").filter(Boolean);
const OPERATIONS = Number(process.env.RIAKFS_MODEL_OPS ?? 150);
/** Seeds and ranges of them, `1,2,3` or `100-300` or `5,100-120`, in order. */
function seedsOf(text: string): number[] {
  return text.split(",").filter(Boolean).flatMap((part) => {
    const range = /^(\d+)-(\d+)$/.exec(part.trim());
    if (!range) return [Number(part)];
    const [first, last] = [Number(range[1]), Number(range[2])];
    return Array.from({ length: Math.max(0, last - first + 1) }, (_, index) => first + index);
  });
}
/** Operations making the legacy tree in the source first (not in riak, which ignores it). */
const LEGACY_OPERATIONS = 15;
/** Trees are compared after every this many operations (and at the end). */
const COMPARE_EVERY = 25;
/** utimes sets mtimes before this; a file's mtime before it was set by utimes, not a write. */
const UTIMES_BEFORE = Date.UTC(2020, 0, 1);

const TOP = ["a", "b", "c", "d"];
const BELOW = ["x", "y"];
/** Every path of the namespace: two levels, whatever each name turns out to be. */
const NAMESPACE = [...TOP, ...TOP.flatMap((top) => BELOW.map((name) => `${top}/${name}`))];
/** chmod's modes, the special bits among them. */
const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o750, 0o1777, 0o4755, 0o2775];

/**
 * One filesystem operation; data comes from `seededBytes(seed, size)`. A `legacy` one is made
 * directly in the source before the mount starts (legacy data, as a migration finds it).
 */
type Op =
  & { legacy?: true }
  & (
    | { op: "writeFile"; path: string; size: number; seed: number }
    | { op: "appendFile"; path: string; size: number; seed: number }
    | { op: "pwrite"; path: string; offset: number; size: number; seed: number }
    | { op: "truncate"; path: string; length: number }
    | { op: "rename"; from: string; to: string }
    | { op: "unlink"; path: string }
    | { op: "mkdir"; path: string; mode: number }
    | { op: "rmdir"; path: string }
    | { op: "symlink"; target: string; path: string }
    | { op: "readlink"; path: string }
    | { op: "chmod"; path: string; mode: number }
    | { op: "utimes"; path: string; mtimeMs: number }
    | { op: "readFile"; path: string }
    | { op: "lstat"; path: string }
  );

/** How an operation ended: its answer, or the error code. */
type Outcome = { ok: true; value?: string } | { ok: false; code: string };

/** A buffer briefly: its length and the start of its sha256, for outcome comparisons. */
function describeBytes(bytes: Uint8Array): string {
  return `${bytes.length} bytes, sha256 ${
    createHash("sha256").update(bytes).digest("hex").slice(0, 16)
  }`;
}

/** Applies `op` below `root`; every fd opened here is closed before it returns. */
async function apply(root: string, op: Op): Promise<Outcome> {
  const at = (path: string) => join(root, path);
  try {
    switch (op.op) {
      case "writeFile":
        await fsp.writeFile(at(op.path), seededBytes(op.seed, op.size));
        return { ok: true };
      case "appendFile":
        await fsp.appendFile(at(op.path), seededBytes(op.seed, op.size));
        return { ok: true };
      case "pwrite": {
        const handle = await fsp.open(at(op.path), "r+");
        try {
          const data = seededBytes(op.seed, op.size);
          await handle.write(data, 0, data.length, op.offset);
        } finally {
          await handle.close();
        }
        return { ok: true };
      }
      case "truncate":
        await fsp.truncate(at(op.path), op.length);
        return { ok: true };
      case "rename":
        await fsp.rename(at(op.from), at(op.to));
        return { ok: true };
      case "unlink":
        await fsp.unlink(at(op.path));
        return { ok: true };
      case "mkdir":
        await fsp.mkdir(at(op.path), { mode: op.mode });
        return { ok: true };
      case "rmdir":
        await fsp.rmdir(at(op.path));
        return { ok: true };
      case "symlink":
        await fsp.symlink(op.target, at(op.path));
        return { ok: true };
      case "readlink":
        return { ok: true, value: await fsp.readlink(at(op.path)) };
      case "chmod":
        await fsp.chmod(at(op.path), op.mode);
        return { ok: true };
      case "utimes": {
        const when = new Date(op.mtimeMs);
        await fsp.utimes(at(op.path), when, when);
        return { ok: true };
      }
      case "readFile":
        return { ok: true, value: describeBytes(await fsp.readFile(at(op.path))) };
      case "lstat": {
        const stats = await fsp.lstat(at(op.path));
        const type = typeOf(stats);
        const mode = type === "symlink" ? "" : ` mode ${(stats.mode & 0o7777).toString(8)}`;
        const size = type === "file" ? ` size ${stats.size}` : "";
        return { ok: true, value: `${type}${mode}${size}` };
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== "string") throw error;
    return { ok: false, code };
  }
}

function typeOf(stats: fs.Stats): string {
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "directory";
  if (stats.isSymbolicLink()) return "symlink";
  return "other";
}

/** Every path below `root` (lstat, depth first, sorted), names starting `.riakfs` left out. */
function pathsOf(root: string, skipRiakfs = false): Map<string, fs.Stats> {
  const found = new Map<string, fs.Stats>();
  const visit = (relative: string) => {
    for (const name of fs.readdirSync(join(root, relative)).sort()) {
      if (skipRiakfs && name.startsWith(".riakfs")) continue;
      const path = relative === "" ? name : `${relative}/${name}`;
      const stats = fs.lstatSync(join(root, path));
      found.set(path, stats);
      if (stats.isDirectory()) visit(path);
    }
  };
  visit("");
  return found;
}

/** What a tree holds at a path, as compared between trees. */
interface Entry {
  type: string;
  mode?: number;
  content?: Buffer;
  target?: string;
  /** Only for files whose mtime utimes set. */
  mtimeMs?: number;
}

function snapshotOf(root: string, skipRiakfs = false): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const [path, stats] of pathsOf(root, skipRiakfs)) {
    const type = typeOf(stats);
    const entry: Entry = { type };
    if (type !== "symlink") entry.mode = stats.mode & 0o7777;
    if (type === "file") {
      entry.content = fs.readFileSync(join(root, path));
      if (stats.mtimeMs < UTIMES_BEFORE) entry.mtimeMs = stats.mtimeMs;
    }
    if (type === "symlink") entry.target = fs.readlinkSync(join(root, path));
    entries.set(path, entry);
  }
  return entries;
}

/** What {@link differences} leaves out. */
interface Leniency {
  /** Entries of these types may be missing from `actual` (but never differ when there). */
  mayMiss?: string[];
  /** Mode bits of these types are not compared. */
  anyModeOf?: string[];
}

/** The differences between two snapshots, one line each (empty: the same). */
function differences(
  expected: Map<string, Entry>,
  actual: Map<string, Entry>,
  leniency: Leniency = {},
): string[] {
  const problems: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (!got) {
      if (leniency.mayMiss?.includes(want.type)) continue;
      problems.push(`${path}: missing (expected a ${want.type})`);
      continue;
    }
    if (got.type !== want.type) {
      problems.push(`${path}: a ${got.type}, expected a ${want.type}`);
      continue;
    }
    if (want.content && got.content && !want.content.equals(got.content)) {
      let first = 0;
      while (
        first < want.content.length && first < got.content.length &&
        want.content[first] === got.content[first]
      ) first++;
      problems.push(
        `${path}: content differs (${got.content.length} bytes, expected ${want.content.length}; first difference at byte ${first})`,
      );
    }
    if (want.target !== got.target) {
      problems.push(`${path}: symlink to ${got.target}, expected ${want.target}`);
    }
    if (
      !leniency.anyModeOf?.includes(want.type) && want.mode !== undefined &&
      want.mode !== got.mode
    ) {
      problems.push(`${path}: mode ${got.mode?.toString(8)}, expected ${want.mode.toString(8)}`);
    }
    if (want.mtimeMs !== undefined) {
      const gotMtime = got.mtimeMs;
      if (gotMtime !== want.mtimeMs) {
        problems.push(
          `${path}: mtime ${
            gotMtime === undefined ? "not set by utimes" : new Date(gotMtime).toISOString()
          }, expected ${new Date(want.mtimeMs).toISOString()}`,
        );
      }
    }
  }
  for (const [path, got] of actual) {
    if (!expected.has(path)) problems.push(`${path}: unexpected ${got.type}`);
  }
  return problems;
}

/** What Riak holds below the root, in the same shape as {@link snapshotOf}. */
async function riakSnapshot(env: OverlayEnv): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  for await (const found of env.store.walk("")) {
    const path = found.path.toString();
    const entry: Entry = { type: found.type };
    if (found.type === "symlink") {
      entry.target = (await env.store.readlink(path)).toString();
    } else {
      const stat = await env.store.stat(path);
      entry.mode = stat.mode & 0o7777;
      if (found.type === "file") {
        entry.content = await env.store.readFile(path);
        const mtimeMs = Number(stat.mtimeNs / 1_000_000n);
        if (mtimeMs < UTIMES_BEFORE) entry.mtimeMs = mtimeMs;
      }
    }
    entries.set(path, entry);
  }
  return entries;
}

/** Generates the next operation from `random`, biased towards paths the reference holds. */
function generate(random: () => number, reference: string, legacy = false): Op {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const existing = [...pathsOf(reference).keys()];
  const anyPath = () => pick(NAMESPACE);
  const path = () => existing.length > 0 && random() < 0.7 ? pick(existing) : anyPath();
  const size = () => {
    const roll = random();
    if (roll < 0.15) return 0;
    if (roll < 0.65) return 1 + Math.floor(random() * 200);
    if (roll < 0.95) return 1 + Math.floor(random() * 70_000);
    return 1_048_576 + Math.floor(random() * 600_000);
  };
  const seed = () => Math.floor(random() * 1_000_000);
  const ops: [number, () => Op][] = [
    [14, () => ({ op: "writeFile", path: path(), size: size(), seed: seed() })],
    [7, () => ({ op: "appendFile", path: path(), size: size() % 5000, seed: seed() })],
    [8, () => {
      const roll = random();
      // Mostly inside or just past the end; sometimes across the 1 MiB chunk boundary.
      const offset = roll < 0.85
        ? Math.floor(random() * 5000)
        : 1_048_576 - 100 + Math.floor(random() * 200);
      return {
        op: "pwrite",
        path: path(),
        offset,
        size: 1 + Math.floor(random() * 300),
        seed: seed(),
      };
    }],
    [6, () => {
      const roll = random();
      const length = roll < 0.3
        ? 0
        : roll < 0.9
        ? Math.floor(random() * 5000)
        : 1_048_576 + Math.floor(random() * 1000);
      return { op: "truncate", path: path(), length };
    }],
    [12, () => ({ op: "rename", from: path(), to: random() < 0.5 ? path() : anyPath() })],
    [6, () => ({ op: "unlink", path: path() })],
    [10, () => ({ op: "mkdir", path: anyPath(), mode: pick([0o755, 0o700, 0o750]) })],
    [5, () => ({ op: "rmdir", path: path() })],
    // Targets never hold "..": a symlink resolves below its own directory wherever it moves,
    // so nothing outside the two roots is ever reached.
    [6, () => ({ op: "symlink", target: pick([...NAMESPACE, "nope"]), path: anyPath() })],
    [4, () => ({ op: "readlink", path: path() })],
    [6, () => ({ op: "chmod", path: path(), mode: pick(MODES) })],
    [6, () => ({
      op: "utimes",
      path: path(),
      // Whole milliseconds between 2001 and 2017.
      mtimeMs: 1_000_000_000_000 + Math.floor(random() * 500_000_000) * 1000,
    })],
    [6, () => ({ op: "readFile", path: path() })],
    [4, () => ({ op: "lstat", path: path() })],
  ];
  // Legacy data is made, not changed: files, directories, symlinks and their attributes.
  const kinds = legacy ? ops.filter((_, index) => [0, 6, 8, 10, 11].includes(index)) : ops;
  let roll = random() * kinds.reduce((sum, [weight]) => sum + weight, 0);
  for (const [weight, make] of kinds) {
    roll -= weight;
    if (roll < 0) return legacy ? { ...make(), legacy: true } : make();
  }
  return legacy ? { ...kinds[0][1](), legacy: true } : kinds[0][1]();
}

/** What a failure says: where it happened and the operations to replay. */
function reproduction(label: string, ops: Op[], problem: string): string {
  return `${label}: ${problem}\nreproduce with runSequence(preset, [\n${
    ops.map((op, index) => `  /* ${index} */ ${JSON.stringify(op)},`).join("\n")
  }\n])`;
}

/** Waits until the mount has nothing left to send to Riak; says what is left if it never does. */
async function waitForQuiet(env: OverlayEnv): Promise<void> {
  let left = "";
  try {
    await eventually("the upload and copy-on-read queues empty", async () => {
      const { uploads, copyOnRead } = (await statusOf(env)).metrics;
      left = JSON.stringify({ uploads, copyOnRead });
      return uploads.pending === 0 && uploads.active === 0 && copyOnRead.queued === 0 &&
        copyOnRead.active === 0;
    }, 30_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}; the mount's counts: ${left}`);
  }
}

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
    const legacyCount = random
      ? (preset === "riak" ? 0 : LEGACY_OPERATIONS)
      : given.findIndex((op) => !op.legacy) === -1
      ? given.length
      : given.findIndex((op) => !op.legacy);
    const count = random ? legacyCount + (source as { count: number }).count : given.length;
    const label = random ? `${preset}, seed ${(source as { seed: number }).seed}` : `${preset}`;
    const done: Op[] = [];
    const fail = (problem: string) => new Error(reproduction(label, done, problem));
    const compareTrees = (when: string) => {
      let mounted: Map<string, Entry>;
      try {
        mounted = snapshotOf(env.mountpoint);
      } catch (error) {
        // A walk of the mount that fails (ENOTDIR from a directory lstat just called one,
        // say) is a mismatch too: report it with the operations that led to it.
        throw fail(`walking the mount ${when} failed: ${(error as Error).message}`);
      }
      const problems = differences(snapshotOf(reference), mounted);
      if (problems.length > 0) {
        throw fail(`the mount differs from the reference ${when}:\n  ${problems.join("\n  ")}`);
      }
    };
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
        if (JSON.stringify(expected) !== JSON.stringify(actual)) {
          throw fail(
            `operation ${index} (${JSON.stringify(op)}): the mount answered ${
              JSON.stringify(actual)
            }, the local filesystem ${JSON.stringify(expected)}`,
          );
        }
        if ((index + 1) % COMPARE_EVERY === 0) compareTrees(`after operation ${index}`);
      }
      compareTrees("at the end");
      const want = snapshotOf(reference);
      // Legacy directories and symlinks reach Riak only when something is written below or
      // over them (and a directory Riak makes for a copied file has its own mode); legacy
      // files are all there, as the comparisons read each one whole (copy-on-read).
      const riakLeniency: Leniency = legacyCount > 0
        ? { mayMiss: ["directory", "symlink"], anyModeOf: ["directory"] }
        : {};
      await waitForQuiet(env);
      let riakProblems: string[] = [];
      try {
        await eventually("Riak holds the reference tree", async () => {
          riakProblems = differences(want, await riakSnapshot(env), riakLeniency);
          return riakProblems.length === 0;
        }, 10_000);
      } catch {
        throw fail(
          `Riak differs from the reference once the queues are empty:\n  ${
            riakProblems.join("\n  ")
          }`,
        );
      }
      if (preset === "shadow" || preset === "migrate") {
        let sourceProblems: string[] = [];
        try {
          await eventually("the source holds the reference tree", () => {
            sourceProblems = differences(want, snapshotOf(env.source, true));
            return Promise.resolve(sourceProblems.length === 0);
          }, 10_000);
        } catch {
          throw fail(
            `the source differs from the reference at the end:\n  ${sourceProblems.join("\n  ")}`,
          );
        }
      }
    } catch (error) {
      // Its warnings and errors, logged as JSON or as text lines ("<time> warn ...").
      const stderr = (mounted?.stderr() ?? "").split("\n").filter((line) =>
        /"level":"(warn|error)"|^\S+ (warn|error) /.test(line)
      ).slice(-20).join("\n");
      throw new Error(`${(error as Error).message}\nmount warnings and errors:\n${stderr}`);
    } finally {
      fs.rmSync(reference, { recursive: true, force: true });
    }
  });
}

/** Replays a fixed sequence (a shrunk reproduction) against `preset`. */
export function runSequence(preset: string, ops: Op[]): Promise<void> {
  return runModel(preset, { ops });
}

for (const preset of SEED_PRESETS.length > 0 ? SEED_PRESETS : PRESETS) {
  for (const seed of SEEDS) {
    Deno.test(`${preset}: ${OPERATIONS} random operations, seed ${seed}, agree with a local directory`, async () => {
      await runModel(preset, { seed, count: OPERATIONS });
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
