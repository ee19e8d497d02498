/**
 * Fixtures of the pre-warm, progress and verify end-to-end tests: the test Riak (an embedded
 * server in this process, or RIAKFS_TEST_RIAK's nodes behind a fault proxy) with a Store on a
 * fresh namespace, and a `dist/riakfs` child that can be watched
 * while it runs (for faults and concurrent writers).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestRiak, type TestRiak } from "../src/riak-server/testing.ts";
import { openRiakStoreClient } from "../src/store/riak_adapter.ts";
import type { StoreClient } from "../src/store/client.ts";
import { Store } from "../src/store/store.ts";
import {
  type FullFilesystem,
  type FullFilesystemOptions,
  withFullFilesystem,
} from "../src/util/_full_filesystem.ts";
import { RIAKFS_BINARY, type RunResult, stateDirProblem } from "./_riakfs.ts";

/** What a migration test gets. */
export interface MigrationFixture {
  riak: TestRiak;
  store: Store;
  client: StoreClient;
  /** A fresh source directory. */
  source: string;
  /** A fresh state directory (passed as `--state-dir` by {@link MigrationFixture.flags}). */
  stateDir: string;
  /** `--riak`, `--bucket` and `--state-dir` for the binary. */
  flags: string[];
}

/** Runs `fn` with the test Riak, a fresh source and state directory; cleans all up. */
export async function withMigration(
  fn: (fixture: MigrationFixture) => Promise<void>,
): Promise<void> {
  const riak = await startTestRiak();
  const opened = openRiakStoreClient({ nodes: riak.nodes });
  const source = mkdtempSync(join(tmpdir(), "riakfs-e2e-src-"));
  const stateDir = mkdtempSync(join(tmpdir(), "riakfs-e2e-state-"));
  try {
    const bucket = `${riak.prefix}-files`;
    const store = new Store(opened.client, { namespace: { bucket } });
    await fn({
      riak,
      store,
      client: opened.client,
      source,
      stateDir,
      flags: ["--riak", riak.nodes.join(","), "--bucket", bucket, "--state-dir", stateDir],
    });
  } finally {
    await opened.close();
    await riak.close();
    rmSync(source, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** A running `dist/riakfs` whose output can be watched; {@link RunningRiakfs.done} settles at exit. */
export interface RunningRiakfs {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<RunResult>;
  /** Kills the child by its pid if it still runs. */
  kill(): void;
}

/** Starts `dist/riakfs args` without waiting for it. */
export function startRiakfs(args: string[]): RunningRiakfs {
  const child = spawn(RIAKFS_BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const problem = stateDirProblem(args, code);
      if (problem) reject(new Error(problem));
      else resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, "SIGKILL");
      }
    },
  };
}

/** What {@link withStateOnFullDisk} gives a test. */
export interface StateOnFullDisk {
  /** The small filesystem, empty but for what the test put there; the test fills it. */
  disk: FullFilesystem;
  /** A source directory on it, holding `files`. */
  legacy: string;
  /** A state directory on it. */
  stateDir: string;
  /** The fixture's flags with `--state-dir` giving {@link StateOnFullDisk.stateDir}. */
  flags: string[];
}

/**
 * Runs `body` with a source (holding `files`, by name) and a state directory made on a small
 * tmpfs of their own, as on the disk that filled up; the test fills it.
 */
export async function withStateOnFullDisk(
  fixture: MigrationFixture,
  files: Record<string, Uint8Array>,
  options: FullFilesystemOptions,
  body: (full: StateOnFullDisk) => Promise<void>,
): Promise<void> {
  await withFullFilesystem(async (disk) => {
    const legacy = join(disk.directory, "legacy");
    mkdirSync(legacy);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(legacy, name), content);
    const stateDir = join(disk.directory, "state");
    mkdirSync(stateDir);
    const riak = fixture.flags.slice(0, fixture.flags.indexOf("--state-dir"));
    await body({ disk, legacy, stateDir, flags: [...riak, "--state-dir", stateDir] });
  }, { ...options, empty: true });
}
