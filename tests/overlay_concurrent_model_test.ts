/**
 * Concurrent model test of the overlay: several workers apply random operations (the
 * generator and appliers of tests/_model.ts) through ONE mount at the same time, each to its
 * own part of the namespace and to a reference directory of its own, so that every worker's
 * answers stay deterministic while the mount's shared machinery (upload queue, journal,
 * copy-on-read queue, write sessions, reader threads, node table, stat caches) serves them
 * all. Workers come in three kinds, taken in turn:
 *
 * - own: a directory `w<i>` of its own, names a-d in it;
 * - shared: names `a<i>`-`d<i>` in the directory `s` that all shared workers use, so that
 *   listings and the parent's attributes are shared state (they are never compared);
 * - cross: names a-c in its own `w<i>`, and `o<i>` in the next worker's directory, so that
 *   its renames cross directories another worker is busy in.
 *
 * Symlink targets never lead a worker to another's names (they resolve below the symlink's
 * own directory, to the worker's names or to names nobody makes). Every operation must end
 * the same way on the mount and on the worker's reference; each worker's part of the tree is
 * compared every few operations, the whole tree at the end against the union of the
 * references, then Riak (once the queues are empty) and, in shadow and migrate, the source.
 *
 * The workers are concurrent async calls: Deno runs each file operation on a thread of its
 * own, so they overlap in the kernel. That is checked once per run: the mount's process is
 * stopped while every worker's first operation goes in, until the kernel's FUSE connection
 * counts them all as waiting at once.
 *
 * The random runs are opt-in: `RIAKFS_CONCURRENT_SEEDS=1-40` (with `RIAKFS_CONCURRENT_OPS`,
 * `RIAKFS_CONCURRENT_WORKERS`, `RIAKFS_CONCURRENT_PRESETS=shadow,riak` and
 * `RIAKFS_CONCURRENT_KINDS=shared` for only some kinds). A mismatch names the seed and every
 * worker's operations, as JSON that {@link runConcurrent} replays (concurrently again, so a
 * replay may need a few tries).
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { seededRandom } from "../src/util/random.ts";
import * as model from "./_model.ts";
import type { Entry, Op, Outcome, Space } from "./_model.ts";
import { eventually, type OverlayEnv, type OverlayMount, withOverlayEnv } from "./_overlay.ts";

const KINDS = ["own", "shared", "cross"] as const;
type Kind = typeof KINDS[number];

/** The random runs' seeds (none by default), presets and operations of each worker. */
const RANDOM = model.randomRuns("RIAKFS_CONCURRENT", 100);
const SEED_KINDS = (process.env.RIAKFS_CONCURRENT_KINDS ?? "").split(",").filter(Boolean)
  .map((kind) => {
    if (!(KINDS as readonly string[]).includes(kind)) throw new Error(`no worker kind ${kind}`);
    return kind as Kind;
  });
const WORKERS = Number(process.env.RIAKFS_CONCURRENT_WORKERS ?? 6);
/** The directory the shared workers share. */
const SHARED = "s";

/** Where a worker's operations go, and the directories that hold its names. */
interface WorkerSpace extends Space {
  tops: string[];
  containers: string[];
  /** Its part of the tree: its names, and where writes through its dangling symlinks go. */
  owned: string[];
}

/** The space of worker `index` among `kinds.length` workers of these kinds. */
function spaceOf(kinds: Kind[], index: number): WorkerSpace {
  const containerOf = (worker: number) => kinds[worker] === "shared" ? SHARED : `w${worker}`;
  const home = containerOf(index);
  const tops = kinds[index] === "own"
    ? model.TOP.map((name) => `${home}/${name}`)
    : kinds[index] === "shared"
    ? model.TOP.map((name) => `${home}/${name}${index}`)
    : [
      ...model.TOP.slice(0, 3).map((name) => `${home}/${name}`),
      `${containerOf((index + 1) % kinds.length)}/o${index}`,
    ];
  const namespace = [
    ...tops,
    ...tops.flatMap((top) => model.BELOW.map((name) => `${top}/${name}`)),
  ];
  // A target resolves below the symlink's directory: to the worker's own names when they
  // all share one directory (a cross worker's full paths resolve to nothing), or to a name
  // of the worker's that nothing but a write through the symlink makes.
  const dangling = `nope${index}`;
  const targets = kinds[index] === "cross"
    ? [...namespace, dangling]
    : [...namespace.map((path) => path.slice(home.length + 1)), dangling];
  const containers = [...new Set(tops.map((top) => top.slice(0, top.indexOf("/"))))];
  const owned = [...tops, ...containers.map((container) => `${container}/${dangling}`)];
  return { namespace, targets, tops, containers, owned };
}

/** Whether a walk for the worker of `space` visits `path`: its names and what holds them. */
function walksTo(space: WorkerSpace): (path: string) => boolean {
  return (path) =>
    space.owned.some((top) =>
      path === top || path.startsWith(`${top}/`) || top.startsWith(`${path}/`)
    );
}

/**
 * The file holding the kernel's count of the FUSE requests of the mount on `mountpoint` not
 * yet answered. Found before the mount's process stops: a stat of the mount would then hang.
 */
function waitingFileOf(mountpoint: string): string {
  // The connection's folder is named by the mount's device number (major 0, the minor split
  // across st_dev's bits as the kernel encodes it).
  const dev = fs.statSync(mountpoint).dev;
  const minor = (dev & 0xff) | ((dev >> 12) & ~0xff);
  return `/sys/fs/fuse/connections/${minor}/waiting`;
}

/** What a failure says: the seed, the problem and every worker's operations so far. */
function reproduction(label: string, done: Op[][], problem: string): string {
  const lists = done.map((ops, worker) =>
    `  [ // worker ${worker}\n${
      ops.map((op, index) => `    /* ${index} */ ${JSON.stringify(op)},`).join("\n")
    }\n  ],`
  );
  return `${label}: ${problem}\nreproduce with runConcurrent(preset, [\n${lists.join("\n")}\n])`;
}

/** The union of the workers' references: the tree the mount must hold. */
function unionOf(references: string[]): Map<string, Entry> {
  const union = new Map<string, Entry>();
  for (const reference of references) {
    for (const [path, entry] of model.snapshotOf(reference)) union.set(path, entry);
  }
  return union;
}

/**
 * Runs the workers on a fresh mount of `preset`: with `given`, worker i applies `given[i]`
 * (its `legacy` operations first, in the source before the mount starts); otherwise worker i
 * of `kinds` generates `count` operations from `seed`. Throws at the first mismatch.
 */
async function runWorkers(
  preset: string,
  kinds: Kind[],
  source: { given: Op[][] } | { seed: number; count: number },
): Promise<void> {
  await withOverlayEnv(async (env) => {
    const spaces = kinds.map((_, index) => spaceOf(kinds, index));
    const references = kinds.map(() => fs.mkdtempSync(join(tmpdir(), "riakfs-conc-ref-")));
    const label = "seed" in source ? `${preset}, seed ${source.seed}` : preset;
    const done: Op[][] = kinds.map(() => []);
    const fail = (problem: string) => new Error(reproduction(label, done, problem));
    const randoms = kinds.map((_, index) =>
      "seed" in source ? seededRandom(source.seed * 1000 + index) : undefined
    );
    // Each worker's operations one by one: the given ones, or generated from its reference.
    const hasLegacy = preset !== "riak";
    const nextOps = kinds.map((_, worker) => {
      let position = 0;
      const made = { legacy: 0, later: 0 };
      return (legacy: boolean): Op | undefined => {
        if ("given" in source) {
          const op = source.given[worker][position];
          if (op === undefined || (op.legacy ?? false) !== legacy) return undefined;
          position++;
          return op;
        }
        if (
          legacy
            ? made.legacy >= (hasLegacy ? model.LEGACY_OPERATIONS : 0)
            : made.later >= source.count
        ) {
          return undefined;
        }
        // The workers start together with a lookup each: creations in one directory would
        // wait for each other on the directory's lock, in the kernel but short of the mount.
        if (!legacy && made.later++ === 0) return { op: "lstat", path: spaces[worker].tops[0] };
        if (legacy) made.legacy++;
        return model.generate(randoms[worker]!, references[worker], legacy, spaces[worker]);
      };
    });
    let mounted: OverlayMount | undefined;
    try {
      for (const [worker, space] of spaces.entries()) {
        for (const container of space.containers) {
          fs.mkdirSync(join(references[worker], container), { mode: 0o755 });
          if (hasLegacy) {
            fs.mkdirSync(join(env.source, container), { recursive: true, mode: 0o755 });
          }
        }
        for (let op = nextOps[worker](true); op; op = nextOps[worker](true)) {
          done[worker].push(op);
          // Both local: the same outcome; only what they make matters.
          await model.apply(references[worker], op);
          await model.apply(env.source, op);
        }
      }
      mounted = await env.mount(preset);
      for (const container of new Set(spaces.flatMap((space) => space.containers))) {
        // Looked up before the workers start: two lookups of one name wait for each other in
        // the kernel, and the start below counts on a request of every worker in the mount.
        if (hasLegacy) fs.lstatSync(join(env.mountpoint, container));
        else fs.mkdirSync(join(env.mountpoint, container), { mode: 0o755 });
      }
      const check = (worker: number, op: Op, expected: Outcome, actual: Outcome) => {
        if (!model.sameOutcome(expected, actual)) {
          throw fail(
            `worker ${worker}, ${
              model.outcomeMismatch(done[worker].length - 1, op, expected, actual)
            }`,
          );
        }
      };
      await startTogether(env, mounted, kinds.length, async (worker) => {
        const op = nextOps[worker](false);
        if (!op) return undefined;
        done[worker].push(op);
        const expected = await model.apply(references[worker], op);
        return async () => check(worker, op, expected, await model.apply(env.mountpoint, op));
      });
      let stopped = false;
      const results = await Promise.allSettled(
        kinds.map(async (_, worker) => {
          const within = walksTo(spaces[worker]);
          let count = 1;
          for (let op = nextOps[worker](false); op && !stopped; op = nextOps[worker](false)) {
            done[worker].push(op);
            const expected = await model.apply(references[worker], op);
            check(worker, op, expected, await model.apply(env.mountpoint, op));
            if (++count % model.COMPARE_EVERY !== 0) continue;
            let mine: Map<string, Entry>;
            try {
              mine = model.snapshotOf(env.mountpoint, false, within);
            } catch (error) {
              throw fail(
                `worker ${worker}: walking its part of the mount failed: ${
                  (error as Error).message
                }`,
              );
            }
            const problems = model.differences(model.snapshotOf(references[worker]), mine);
            if (problems.length > 0) {
              throw fail(
                `worker ${worker}'s part of the mount differs:\n  ${problems.join("\n  ")}`,
              );
            }
          }
        }).map((running) =>
          running.catch((error) => {
            // The others stop at their next operation: the first mismatch is the one to report.
            stopped = true;
            throw error;
          })
        ),
      );
      const failed = results.find((result) => result.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const want = unionOf(references);
      const problems = model.differences(want, model.snapshotOf(env.mountpoint));
      if (problems.length > 0) {
        throw fail(`the mount differs from the references at the end:\n  ${problems.join("\n  ")}`);
      }
      await model.assertStoredTrees(env, preset, want, hasLegacy, fail);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${model.mountWarnings(mounted)}`);
    } finally {
      for (const reference of references) fs.rmSync(reference, { recursive: true, force: true });
    }
  });
}

/**
 * Starts every worker's first operation on the mount while the mount's process is stopped,
 * and lets it go on once the kernel holds a request of each at once: the workers overlap in
 * the kernel. `prepare(worker)` does what comes before (the reference's side) and returns
 * the mount's side (none: the worker has nothing left).
 */
async function startTogether(
  env: OverlayEnv,
  mounted: OverlayMount,
  workers: number,
  prepare: (worker: number) => Promise<(() => Promise<void>) | undefined>,
): Promise<void> {
  const onTheMount = (await Promise.all(Array.from({ length: workers }, (_, i) => prepare(i))))
    .filter((start) => start !== undefined);
  const pid = mounted.server.pid!;
  const waitingFile = waitingFileOf(env.mountpoint);
  const waiting = () => Number(fs.readFileSync(waitingFile, "utf8").trim());
  const before = waiting();
  process.kill(pid, "SIGSTOP");
  let running: Promise<PromiseSettledResult<void>[]> | undefined;
  let seen = before;
  try {
    // The signal takes a moment: a request answered meanwhile would never be counted.
    await eventually("the mount's process stopped", () => Promise.resolve(isStopped(pid)));
    running = Promise.allSettled(onTheMount.map((start) => start()));
    await eventually(
      `${onTheMount.length} requests waiting in the kernel at once (${before} before)`,
      () => Promise.resolve((seen = waiting()) >= before + onTheMount.length),
      20_000,
    ).catch((error) => {
      throw new Error(`${error.message}; ${seen} waiting`);
    });
  } finally {
    process.kill(pid, "SIGCONT");
  }
  const failed = (await running).find((result) => result.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Whether every thread of process `pid` is stopped (by a signal). */
function isStopped(pid: number): boolean {
  return fs.readdirSync(`/proc/${pid}/task`).every((task) => {
    // The state follows the command's closing parenthesis (the command may hold spaces).
    const stat = fs.readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  });
}

/** The kinds of `count` workers, taken in turn from `kinds`. */
function kindsOf(count: number, kinds: readonly Kind[] = KINDS): Kind[] {
  return Array.from({ length: count }, (_, index) => kinds[index % kinds.length]);
}

/**
 * Replays every worker's operations (a reproduction) concurrently against `preset`; the
 * workers' kinds are taken in turn (own, shared, cross) unless given.
 */
export function runConcurrent(
  preset: string,
  given: Op[][],
  kinds: Kind[] = kindsOf(given.length),
): Promise<void> {
  return runWorkers(preset, kinds, { given });
}

for (const preset of RANDOM.presets) {
  for (const seed of RANDOM.seeds) {
    const kinds = kindsOf(WORKERS, SEED_KINDS.length > 0 ? SEED_KINDS : KINDS);
    Deno.test(`${preset}: ${WORKERS} workers (${kinds.join(", ")}), ${RANDOM.operations} random operations each, seed ${seed}`, async () => {
      await runWorkers(preset, kinds, { seed, count: RANDOM.operations });
    });
  }
}

// Always: a short run per preset, six workers of every kind.
for (const preset of model.PRESETS) {
  Deno.test(`${preset}: six concurrent workers agree with their references`, async () => {
    await runWorkers(preset, kindsOf(6), { seed: 1, count: 25 });
  });
}
