/**
 * Mounting with the built binary for end-to-end tests: every mount made here is unmounted
 * and its serving process killed by pid in `finally`, also when the test fails.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runtimePaths } from "../src/overlay/control.ts";
import { isProcessAlive } from "../src/util/process.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

/** A mount served by a `dist/riakfs mount --foreground` child process. */
export interface TestMount {
  /** The source directory (a fresh temporary directory unless given). */
  source: string;
  /** Where the mount is. */
  mountpoint: string;
  /** The serving process. */
  server: ChildProcess;
  /** What the server wrote to stderr so far. */
  stderr(): string;
  /**
   * The mount's `--run-dir`, where `riakfs umount` and `status` find its control socket: one
   * given in `args`, else RUN in the mount's own temporary directory, removed with it.
   */
  runDirectory: string;
}

/** Options of {@link withMount}. */
export interface WithMountOptions {
  /** `-o` option list, e.g. "attr_timeout=0". */
  options?: string;
  /** Use this source directory instead of a fresh one (it is not deleted). */
  source?: string;
  /** More `riakfs mount` arguments, e.g. `["--run-dir", dir]` (default one of its own). */
  args?: string[];
  /** Empty files made in the mountpoint before it is mounted over (hidden while mounted). */
  hidden?: string[];
  /** The preset; default passthrough (a Riak-backed one needs `--riak`... in `args`). */
  preset?: string;
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passed; returns whether it held. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether `mountpoint` appears as a FUSE mount in /proc/self/mountinfo. */
export function isMounted(mountpoint: string): boolean {
  return fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((line) => {
    const fields = line.split(" ");
    return fields[4] === mountpoint && line.includes(" - fuse.");
  });
}

/**
 * Whether a filesystem mounted on `mountpoint` answers: a stale mount left by a crash is
 * listed in mountinfo but answers ENOTCONN, and counting it as live let a test read the bare
 * directory in the moment between its removal and the new mount.
 */
export async function isServing(mountpoint: string): Promise<boolean> {
  try {
    // Asynchronous: the answer may need a proxy or server living in this process.
    const [mounted, parent] = await Promise.all([
      fs.promises.stat(mountpoint),
      fs.promises.stat(dirname(mountpoint)),
    ]);
    return mounted.dev !== parent.dev;
  } catch {
    return false;
  }
}

/** The pids of the watchdogs among the direct children of `pid`. */
export function watchdogsOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (parent === pid && argv.includes("riakfs-watchdog")) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/**
 * Kills a mount's watchdog, then its serving process (SIGKILL both, by pid), and waits until
 * both are gone: the mount is left stale, as after a crash that took the watchdog along.
 */
export async function crashLeavingStaleMount(server: ChildProcess): Promise<void> {
  let watchdogs: number[] = [];
  await waitFor(() => (watchdogs = watchdogsOf(server.pid!)).length > 0, 5_000);
  if (watchdogs.length !== 1) throw new Error(`${watchdogs.length} watchdogs, not one`);
  process.kill(watchdogs[0], "SIGKILL");
  if (!(await waitFor(() => !isProcessAlive(watchdogs[0]), 5_000))) {
    throw new Error("the watchdog survived SIGKILL");
  }
  process.kill(server.pid!, "SIGKILL");
  if (!(await waitFor(() => server.exitCode !== null || server.signalCode !== null, 5_000))) {
    throw new Error("the mount survived SIGKILL");
  }
}

/** Runs a command to completion; resolves with its exit code and output. */
export function run(
  file: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Makes a fresh temporary directory (under /tmp). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(join(tmpdir(), prefix));
}

/** Starts a foreground mount and waits until it is live. The caller must call {@link stopMount}. */
export async function startMount(options: WithMountOptions = {}): Promise<TestMount> {
  const base = tempDir("riakfs-mount-");
  fs.chmodSync(base, 0o755); // Let the unprivileged user of permission tests reach the mount.
  const source = options.source ?? join(base, "source");
  const mountpoint = join(base, "mnt");
  fs.mkdirSync(source, { recursive: true });
  fs.mkdirSync(mountpoint);
  for (const name of options.hidden ?? []) fs.writeFileSync(join(mountpoint, name), "");
  const preset = options.preset ?? "passthrough";
  const args = ["mount", "--preset", preset, "--foreground", source, mountpoint];
  if (options.options) args.push("-o", options.options);
  const extra = options.args ?? [];
  args.push(...extra);
  // Its pid file and control socket go with the rest: in /run/riakfs, those of a mount
  // killed with SIGKILL stayed for good.
  const given = extra.indexOf("--run-dir");
  const runDirectory = given >= 0 ? extra[given + 1] : join(base, "run");
  if (given < 0) args.push("--run-dir", runDirectory);
  // A spool of its own, removed with the rest: the default one outlives the test.
  if (preset !== "passthrough" && !args.includes("--spool")) {
    args.push("--spool", join(base, "spool"));
  }
  if (!fs.existsSync(RIAKFS_BINARY)) {
    throw new Error(`${RIAKFS_BINARY} does not exist: run 'npm run build' first`);
  }
  const server = spawn(RIAKFS_BINARY, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  server.on("error", (error) => stderr += `cannot start ${RIAKFS_BINARY}: ${error.message}\n`);
  server.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
  const mount = { source, mountpoint, server, stderr: () => stderr, runDirectory };
  const live = await waitFor(() => isMounted(mountpoint) || server.exitCode !== null, 10_000);
  if (!live || !isMounted(mountpoint)) {
    await stopMount(mount);
    throw new Error(`mount did not come up: ${stderr}`);
  }
  return mount;
}

/**
 * Unmounts (riakfs umount, then lazily if needed), waits for the server to exit, kills it
 * by pid if it does not, and removes the temporary directories (a source given to
 * {@link startMount} lives elsewhere and stays). Fails if a mount at `mountpoint` left its
 * pid file, control socket or log in the default run directory, which it removes: every
 * test mount belongs in a run directory of its own.
 */
export async function stopMount(mount: TestMount): Promise<void> {
  const { server, mountpoint } = mount;
  try {
    if (isMounted(mountpoint)) {
      const runDir = ["--run-dir", mount.runDirectory];
      const result = await runRiakfs(["umount", ...runDir, mountpoint]);
      if (result.code !== 0) await runRiakfs(["umount", "--lazy", ...runDir, mountpoint]);
    }
    const exited = await waitFor(
      () => server.exitCode !== null || server.signalCode !== null,
      10_000,
    );
    if (!exited && server.pid !== undefined) process.kill(server.pid, "SIGKILL");
  } finally {
    if (server.exitCode === null && server.signalCode === null && server.pid !== undefined) {
      try {
        process.kill(server.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
    fs.rmSync(join(mountpoint, ".."), { recursive: true, force: true });
    removeFromDefaultRunDirectory(mountpoint);
  }
}

/**
 * Removes what a mount at `mountpoint` left in the default run directory, /run/riakfs, and
 * throws if there was any: nothing but the test's mounts are named after its temporary paths.
 */
function removeFromDefaultRunDirectory(mountpoint: string): void {
  const left = Object.values(runtimePaths(mountpoint)).filter((path) => fs.existsSync(path));
  for (const path of left) fs.rmSync(path, { force: true });
  if (left.length > 0) {
    throw new Error(`a mount without --run-dir left ${left.join(", ")} (removed)`);
  }
}

/** Mounts a fresh source, runs `body`, and always unmounts and kills the server. */
export async function withMount(
  body: (mount: TestMount) => Promise<void>,
  options: WithMountOptions = {},
): Promise<void> {
  const mount = await startMount(options);
  try {
    await body(mount);
  } finally {
    await stopMount(mount);
  }
}
