/**
 * The differential model of the overlay, shared by the model tests: a generator of random
 * filesystem operations over a small namespace, their application below a root (the mount or
 * a plain reference directory, through the same node:fs calls), snapshots of trees (local or
 * in Riak) and their comparison.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { seededBytes } from "../src/store/_test_support.ts";
import { eventually, type OverlayEnv, type OverlayMount, waitForQuiet } from "./_overlay.ts";

/** The Riak-backed presets the models run on. */
export const PRESETS = ["shadow", "migrate", "drain", "riak"];

/** Seeds and ranges of them, `1,2,3` or `100-300` or `5,100-120`, in order. */
export function seedsOf(text: string): number[] {
  return text.split(",").filter(Boolean).flatMap((part) => {
    const range = /^(\d+)-(\d+)$/.exec(part.trim());
    if (!range) return [Number(part)];
    const [first, last] = [Number(range[1]), Number(range[2])];
    return Array.from({ length: Math.max(0, last - first + 1) }, (_, index) => first + index);
  });
}
/** Operations making the legacy tree in the source first (not in riak, which ignores it). */
export const LEGACY_OPERATIONS = 15;
/** Trees are compared after every this many operations (and at the end). */
export const COMPARE_EVERY = 25;
/** utimes sets mtimes before this; a file's mtime before it was set by utimes, not a write. */
export const UTIMES_BEFORE = Date.UTC(2020, 0, 1);

/** The names at the top of the namespace. */
export const TOP = ["a", "b", "c", "d"];
/** The names below each of {@link TOP}. */
export const BELOW = ["x", "y"];
/** Every path of the namespace: two levels, whatever each name turns out to be. */
export const NAMESPACE = [...TOP, ...TOP.flatMap((top) => BELOW.map((name) => `${top}/${name}`))];
/** chmod's modes, the special bits among them. */
export const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o750, 0o1777, 0o4755, 0o2775];

/**
 * One filesystem operation; data comes from `seededBytes(seed, size)`. A `legacy` one is made
 * directly in the source before the mount starts (legacy data, as a migration finds it).
 */
export type Op =
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
export type Outcome = { ok: true; value?: string } | { ok: false; code: string };

/** A buffer briefly: its length and the start of its sha256, for outcome comparisons. */
export function describeBytes(bytes: Uint8Array): string {
  return `${bytes.length} bytes, sha256 ${
    createHash("sha256").update(bytes).digest("hex").slice(0, 16)
  }`;
}

/** Applies `op` below `root`; every fd opened here is closed before it returns. */
export async function apply(root: string, op: Op): Promise<Outcome> {
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

/** The type of what `stats` describes, as the snapshots name it. */
export function typeOf(stats: fs.Stats): string {
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "directory";
  if (stats.isSymbolicLink()) return "symlink";
  return "other";
}

/**
 * Every path below `root` (lstat, depth first, sorted), names starting `.riakfs` left out, and
 * with `within` only the paths it accepts (nothing below a path it refuses is read: others may
 * be changing it).
 */
export function pathsOf(
  root: string,
  skipRiakfs = false,
  within?: (path: string) => boolean,
): Map<string, fs.Stats> {
  const found = new Map<string, fs.Stats>();
  const visit = (relative: string) => {
    for (const name of fs.readdirSync(join(root, relative)).sort()) {
      if (skipRiakfs && name.startsWith(".riakfs")) continue;
      const path = relative === "" ? name : `${relative}/${name}`;
      if (within && !within(path)) continue;
      const stats = fs.lstatSync(join(root, path));
      found.set(path, stats);
      if (stats.isDirectory()) visit(path);
    }
  };
  visit("");
  return found;
}

/** What a tree holds at a path, as compared between trees. */
export interface Entry {
  type: string;
  mode?: number;
  content?: Buffer;
  target?: string;
  /** Only for files whose mtime utimes set. */
  mtimeMs?: number;
}

/** What the tree below `root` holds, by path; `within` as for {@link pathsOf}. */
export function snapshotOf(
  root: string,
  skipRiakfs = false,
  within?: (path: string) => boolean,
): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const [path, stats] of pathsOf(root, skipRiakfs, within)) {
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
export interface Leniency {
  /** Entries of these types may be missing from `actual` (but never differ when there). */
  mayMiss?: string[];
  /** Mode bits of these types are not compared. */
  anyModeOf?: string[];
}

/** The differences between two snapshots, one line each (empty: the same). */
export function differences(
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
export async function riakSnapshot(env: OverlayEnv): Promise<Map<string, Entry>> {
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

/**
 * Where {@link generate}'s operations go: the paths it names (and the paths below them it
 * finds in the reference), and the targets of the symlinks it makes.
 */
export interface Space {
  namespace: string[];
  targets: string[];
  /**
   * The reference's paths the operations may name are these and the paths below them (the
   * others are directories that hold them); all when left out.
   */
  tops?: string[];
}

/** The model's own space: {@link NAMESPACE}, and symlinks to its paths or to nothing. */
export const DEFAULT_SPACE: Space = { namespace: NAMESPACE, targets: [...NAMESPACE, "nope"] };

/** Generates the next operation from `random`, biased towards paths the reference holds. */
export function generate(
  random: () => number,
  reference: string,
  legacy = false,
  space = DEFAULT_SPACE,
): Op {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const existing = [...pathsOf(reference).keys()].filter((path) =>
    !space.tops || space.tops.some((top) => path === top || path.startsWith(`${top}/`))
  );
  const anyPath = () => pick(space.namespace);
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
    [6, () => ({ op: "symlink", target: pick(space.targets), path: anyPath() })],
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

/**
 * What a failure says: where it happened and the steps (operations, or a test's own steps) to
 * replay with the test's `replay` function.
 */
export function reproduction(
  label: string,
  steps: readonly unknown[],
  problem: string,
  replay = "runSequence",
): string {
  return `${label}: ${problem}\nreproduce with ${replay}(preset, [\n${
    steps.map((step, index) => `  /* ${index} */ ${JSON.stringify(step)},`).join("\n")
  }\n])`;
}

/** Whether two outcomes are the same answer. */
export function sameOutcome(expected: Outcome, actual: Outcome): boolean {
  return JSON.stringify(expected) === JSON.stringify(actual);
}

/** What a mismatch of one operation's outcome says. */
export function outcomeMismatch(index: number, op: Op, expected: Outcome, actual: Outcome): string {
  return `operation ${index} (${JSON.stringify(op)}): the mount answered ${
    JSON.stringify(actual)
  }, the local filesystem ${JSON.stringify(expected)}`;
}

/** How many operations at the start of `ops` are legacy ones. */
export function legacyCountOf(ops: readonly Op[]): number {
  const first = ops.findIndex((op) => !op.legacy);
  return first === -1 ? ops.length : first;
}

/**
 * What the environment asks of a model's random sequences: `<PREFIX>_SEEDS` (`1,2,3` or
 * `100-300`; none by default), `<PREFIX>_PRESETS` (default: all of {@link PRESETS}) and
 * `<PREFIX>_OPS`, the operations of each.
 */
export function randomRuns(
  prefix: string,
  defaultOperations: number,
): { seeds: number[]; presets: string[]; operations: number } {
  const presets = (process.env[`${prefix}_PRESETS`] ?? "").split(",").filter(Boolean);
  return {
    seeds: seedsOf(process.env[`${prefix}_SEEDS`] ?? ""),
    presets: presets.length > 0 ? presets : PRESETS,
    operations: Number(process.env[`${prefix}_OPS`] ?? defaultOperations),
  };
}

/**
 * Throws `fail(problem)` when the tree through `mountpoint` differs from `reference` (`when`
 * says at what point, for the message); a walk of the mount that fails (ENOTDIR from a
 * directory lstat just called one, say) is such a difference too.
 */
export function assertMountMatches(
  reference: string,
  mountpoint: string,
  when: string,
  fail: (problem: string) => Error,
): void {
  let mounted: Map<string, Entry>;
  try {
    mounted = snapshotOf(mountpoint);
  } catch (error) {
    throw fail(`walking the mount ${when} failed: ${(error as Error).message}`);
  }
  const problems = differences(snapshotOf(reference), mounted);
  if (problems.length > 0) {
    throw fail(`the mount differs from the reference ${when}:\n  ${problems.join("\n  ")}`);
  }
}

/**
 * Once the mount's queues are empty, Riak must hold `want`, and in shadow and migrate so must
 * the source; throws `fail(problem)` otherwise. `legacy`: the run began with legacy data.
 */
export async function assertStoredTrees(
  env: OverlayEnv,
  preset: string,
  want: Map<string, Entry>,
  legacy: boolean,
  fail: (problem: string) => Error,
): Promise<void> {
  // Legacy directories and symlinks reach Riak only when something is written below or
  // over them (and a directory Riak makes for a copied file has its own mode); legacy
  // files are all there, as the comparisons read each one whole (copy-on-read).
  const riakLeniency: Leniency = legacy
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
      `Riak differs from the reference once the queues are empty:\n  ${riakProblems.join("\n  ")}`,
    );
  }
  if (preset !== "shadow" && preset !== "migrate") return;
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

/** The last warnings and errors of a mount's stderr, logged as JSON or as text lines ("<time> warn ..."). */
export function warningsOf(stderr: string): string {
  return stderr.split("\n").filter((line) => /"level":"(warn|error)"|^\S+ (warn|error) /.test(line))
    .slice(-20).join("\n");
}

/** The mount's last warnings and errors, as a failure's message ends with them. */
export function mountWarnings(mounted: OverlayMount | undefined): string {
  return `mount warnings and errors:\n${warningsOf(mounted?.stderr() ?? "")}`;
}
