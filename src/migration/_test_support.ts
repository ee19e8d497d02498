/**
 * Test support for the pre-warm tests: a store whose operations a test replaces, to fail or
 * act at an exact point.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PrewarmStore } from "./prewarm.ts";
import { ListedNames } from "../store/listed_names.ts";
import type { Store } from "../store/store.ts";
import { StateDirectory } from "./state.ts";

/**
 * `store` with some operations replaced, and no `list` (every file gets its own look-up, as
 * against a store that cannot list).
 */
export function wrappedStore(
  store: PrewarmStore,
  overrides: Partial<PrewarmStore> = {},
): PrewarmStore {
  return {
    tryStat: (path, options) => store.tryStat(path, options),
    mkdir: (path, options) => store.mkdir(path, options),
    symlink: (path, target, options) => store.symlink(path, target, options),
    readRange: (path, offset, length) => store.readRange(path, offset, length),
    readlink: (path) => store.readlink(path),
    remove: (path, options) => store.remove(path, options),
    writeFile: (path, content, options) => store.writeFile(path, content, options),
    ensureListed: (path, options) => store.ensureListed(path, options),
    setAttributes: (path, attributes, onlyOver) => store.setAttributes(path, attributes, onlyOver),
    list: (path) => store.list(path),
    removeIfUnchanged: (examined) => store.removeIfUnchanged(examined),
    removeOrphanEntry: (path) => store.removeOrphanEntry(path),
    ...overrides,
  };
}

/**
 * `store` whose directories' indexes read as empty (entries not written yet, or read before
 * they were): every name is believed new. `onRead` is called for each shard read.
 */
export function listingNothing(store: Store, onRead: () => void = () => {}): PrewarmStore {
  return {
    ...wrappedStore(store),
    listedNames: () =>
      new ListedNames({
        placement: (directory) => store.layout.directory(directory),
        shardNames: () => {
          onRead();
          return Promise.resolve({ names: new Set<string>(), levels: [1] });
        },
        listedWithoutEntry: () => false,
      }),
  };
}

/** `store`, whose writes of a path fail with the error `failure(path)` returns, if any. */
export function failingWrites(
  store: PrewarmStore,
  failure: (path: string) => Error | undefined,
): PrewarmStore {
  return wrappedStore(store, {
    writeFile: (path, content, options) => {
      const error = failure(Buffer.from(path as Uint8Array).toString());
      return error ? Promise.reject(error) : store.writeFile(path, content, options);
    },
  });
}

/** `store`, whose writes of `failing` fail ("Riak is restarting") until `recover()`. */
export function failingUntilRecovered(
  store: PrewarmStore,
  failing: string,
): { store: PrewarmStore; recover: () => void } {
  let down = true;
  return {
    store: failingWrites(
      store,
      (path) => down && path === failing ? new Error("Riak is restarting") : undefined,
    ),
    recover: () => down = false,
  };
}

/** Whether this process may mount a tmpfs (the tests of mount points below SOURCE need it). */
export const CAN_MOUNT: boolean = process.getuid?.() === 0;

/** Runs `body` with a fresh tmpfs mounted on `directory` (which exists), unmounted after. */
export async function withTmpfsAt(directory: string, body: () => Promise<void>): Promise<void> {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "riakfs-test", directory]);
  try {
    await body();
  } finally {
    execFileSync("umount", [directory]);
  }
}

/** A child process holding a file open; `release` kills it by its pid and waits for its end. */
export interface FileHolder {
  pid: number;
  release(): Promise<void>;
}

/**
 * Starts `sh` holding `file` open (`>>`: for writing, appending, as a daemon's log; `<`: only
 * for reading) until released, and resolves once it holds it; with `ownMountNamespace`, from
 * a mount namespace of its own (needs root).
 */
export async function holdOpen(
  file: string,
  how: ">>" | "<" = ">>",
  options: { ownMountNamespace?: boolean } = {},
): Promise<FileHolder> {
  const shell = ["sh", "-c", `exec 3${how}"$1"; echo held; read line`, "sh", file];
  // unshare execs the shell in place: the pid is the holder's, in a mount namespace of its
  // own (as a systemd service with PrivateTmp=, or a container, runs).
  const command = options.ownMountNamespace
    ? ["unshare", "--mount", "--propagation", "private", ...shell]
    : shell;
  const child = spawn(command[0], command.slice(1), {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const release = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`sh ended (${code}) before it held ${file}`)));
      child.stdout!.once("data", () => resolve());
    });
  } catch (error) {
    await release();
    throw error;
  }
  child.stdout!.resume();
  return { pid: child.pid!, release };
}

/** Runs `body` with a fresh source directory and state directory, both removed after. */
export async function withSourceAndState(
  body: (source: string, state: StateDirectory) => Promise<void>,
): Promise<void> {
  const source = mkdtempSync(join(tmpdir(), "riakfs-prewarm-"));
  const state = new StateDirectory(mkdtempSync(join(tmpdir(), "riakfs-state-")));
  try {
    await body(source, state);
  } finally {
    rmSync(source, { recursive: true, force: true });
    rmSync(state.path, { recursive: true, force: true });
  }
}

/** What an application that saves atomically does: writes `file.tmp`, renames it over `file`. */
export function saveAtomically(file: Buffer | string, content: string): void {
  const temporary = Buffer.concat([Buffer.from(file), Buffer.from(".tmp")]);
  writeFileSync(temporary, content);
  renameSync(temporary, file);
}
