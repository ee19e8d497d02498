/**
 * End-to-end data-integrity exerciser: random writes, truncates, reads, renames, appends and
 * unlinks at random offsets, applied to a passthrough mount and to a plain directory side
 * by side, with the outcome (bytes or errno) compared after every step.
 *
 * Deterministic by default (seed 1, 2,000 operations). Any seed or length:
 *   deno test -A tests/fuse_integrity_test.ts -- --seed=42 --ops=20000
 * or the environment variables RIAKFS_INTEGRITY_SEED and RIAKFS_INTEGRITY_OPS.
 * RIAKFS_INTEGRITY_MOUNT_OPTIONS (e.g. "attr_timeout=0,direct_io") mounts with `-o` options.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { tempDir, withMount } from "./_mount.ts";
import { seededRandom } from "../src/util/random.ts";

function setting(name: string, variable: string, fallback: number): number {
  const flag = Deno.args.find((arg) => arg.startsWith(`--${name}=`));
  const text = flag?.slice(name.length + 3) ?? Deno.env.get(variable);
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`bad --${name}: ${text}`);
  return value;
}

const SEED = setting("seed", "RIAKFS_INTEGRITY_SEED", 1);
const OPERATIONS = setting("ops", "RIAKFS_INTEGRITY_OPS", 2_000);
const MOUNT_OPTIONS = Deno.env.get("RIAKFS_INTEGRITY_MOUNT_OPTIONS") || undefined;

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

async function outcome(action: () => Promise<unknown>): Promise<Outcome> {
  try {
    const value = await action();
    return {
      ok: true,
      value: value instanceof Uint8Array ? Buffer.from(value).toString("hex") : value,
    };
  } catch (error) {
    return { ok: false, code: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

Deno.test(`integrity exerciser: ${OPERATIONS} random operations, seed ${SEED}`, async () => {
  const plain = tempDir("riakfs-plain-");
  try {
    await withMount(async ({ mountpoint }) => {
      const next = seededRandom(SEED);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
      const int = (below: number) => Math.floor(next() * below);
      const names = ["a", "b", "c", "d", "sub/e", "sub/f", "sub/deeper/g"];
      for (const root of [plain, mountpoint]) {
        fs.mkdirSync(join(root, "sub/deeper"), { recursive: true });
      }
      const offsetOf = () => {
        const roll = next();
        if (roll < 0.6) return int(256 * 1024);
        if (roll < 0.95) return int(2 * 1024 * 1024);
        return int(8 * 1024 * 1024); // Sparse: far past the end.
      };
      const lengthOf = () => {
        const roll = next();
        if (roll < 0.5) return 1 + int(4096);
        if (roll < 0.9) return 1 + int(128 * 1024);
        return 1 + int(1536 * 1024); // Crosses the 1 MiB request size.
      };
      const bytes = (length: number) => {
        const data = Buffer.allocUnsafe(length);
        const seed = int(256);
        for (let i = 0; i < length; i++) data[i] = (seed + i * 13 + (i >> 11)) & 0xff;
        return data;
      };

      let step = 0;
      const both = async (what: string, action: (root: string) => Promise<unknown>) => {
        const expected = await outcome(() => action(plain));
        const actual = await outcome(() => action(mountpoint));
        assert.deepEqual(actual, expected, `step ${step} (seed ${SEED}): ${what}`);
      };
      const compareFile = async (name: string) => {
        await both(`content of ${name}`, (root) => fs.promises.readFile(join(root, name)));
      };

      for (step = 0; step < OPERATIONS; step++) {
        const name = pick(names);
        const roll = next();
        if (roll < 0.35) {
          const offset = offsetOf();
          const data = bytes(lengthOf());
          await both(`write ${data.length} at ${offset} to ${name}`, async (root) => {
            const handle = await fs.promises.open(join(root, name), "a+").then(async (h) => {
              await h.close();
              return fs.promises.open(join(root, name), "r+");
            });
            try {
              return (await handle.write(data, 0, data.length, offset)).bytesWritten;
            } finally {
              await handle.close();
            }
          });
          await compareFile(name);
        } else if (roll < 0.45) {
          const data = bytes(lengthOf());
          await both(
            `append ${data.length} to ${name}`,
            (root) => fs.promises.appendFile(join(root, name), data),
          );
          await compareFile(name);
        } else if (roll < 0.6) {
          const size = offsetOf();
          await both(
            `truncate ${name} to ${size}`,
            (root) => fs.promises.truncate(join(root, name), size),
          );
          await compareFile(name);
        } else if (roll < 0.8) {
          const offset = offsetOf();
          const length = lengthOf();
          await both(`read ${length} at ${offset} of ${name}`, async (root) => {
            const handle = await fs.promises.open(join(root, name), "r");
            try {
              const buffer = Buffer.alloc(length);
              const { bytesRead } = await handle.read(buffer, 0, length, offset);
              return buffer.subarray(0, bytesRead);
            } finally {
              await handle.close();
            }
          });
        } else if (roll < 0.93) {
          const target = pick(names);
          await both(
            `rename ${name} to ${target}`,
            (root) => fs.promises.rename(join(root, name), join(root, target)),
          );
          await compareFile(target);
          await compareFile(name);
        } else {
          await both(`unlink ${name}`, (root) => fs.promises.unlink(join(root, name)));
        }
        if (step % 100 === 99 || step === OPERATIONS - 1) {
          for (const candidate of names) {
            await both(
              `size of ${candidate}`,
              async (root) => (await fs.promises.stat(join(root, candidate))).size,
            );
            await compareFile(candidate);
          }
        }
      }
    }, { options: MOUNT_OPTIONS });
  } finally {
    fs.rmSync(plain, { recursive: true, force: true });
  }
});
