/**
 * Helpers for the overlay's end-to-end tests: `riakfs serve-riak --data DIR` and
 * `riakfs mount --preset P --foreground` run as their own processes (the built binary). The
 * server must not live in the test process: the test's own file operations on the mount
 * would hold up the event loop that answers the mount's Riak requests. Outages are made
 * with SIGSTOP/SIGCONT or by killing and restarting the server on the same port. Every
 * helper unmounts what it mounted and kills what it started, by pid, also on failure.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { StatusReport } from "../src/overlay/control.ts";
import { externalTestNodes } from "../src/riak-server/testing.ts";
import { openRiakStoreClient } from "../src/store/riak_adapter.ts";
import type { StoreClient } from "../src/store/client.ts";
import { Store } from "../src/store/store.ts";
import { isMounted, isServing, stopMount, tempDir, waitFor } from "./_mount.ts";
import { PROJECT_ROOT, RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

/** A running overlay mount. */
export interface OverlayMount {
  server: ChildProcess;
  stderr(): string;
}

/**
 * The Riak of a test: a `riakfs serve-riak` process of its own, or the nodes of
 * `RIAKFS_TEST_RIAK` behind a fault proxy, which then plays the process's outages.
 */
export interface RiakProcess {
  /** `host:port`, the same across restarts. */
  nodes: string[];
  /** Freezes the server (SIGSTOP): requests hang, as with a dead node. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Kills it (SIGKILL) and waits until it is gone; connections are refused from then on. */
  stop(): Promise<void>;
  /** Starts the server again on the same port, holding what it held when it stopped. */
  restart(): Promise<void>;
  /** Stops it for good. */
  close(): Promise<void>;
}

/** What an overlay e2e test gets. */
export interface OverlayEnv {
  riak: RiakProcess;
  /** A store on the same namespace as the mount, to look at Riak directly. */
  store: Store;
  bucket: string;
  base: string;
  source: string;
  mountpoint: string;
  spool: string;
  runDirectory: string;
  /** The client under {@link OverlayEnv.store}, for raw looks at buckets and keys. */
  client: StoreClient;
  /**
   * Mounts with `preset` and extra flags, talking to `riak` (`host:port`, default the
   * server's; a proxy's, say); resolves once the mount answers.
   */
  mount(preset: string, extra?: string[], riak?: string): Promise<OverlayMount>;
  /**
   * Runs `riakfs mount ...args` exactly as given (a supervisord line, say); resolves once
   * the mountpoint answers.
   */
  mountArgs(args: string[]): Promise<OverlayMount>;
  /** Unmounts (riakfs umount, lazily if busy), waits for the process, kills it if needed. */
  unmount(mount: OverlayMount): Promise<void>;
}

/** Runs `body` with its own Riak, fresh directories and cleanup of every mount. */
export async function withOverlayEnv(
  body: (env: OverlayEnv) => Promise<void>,
  options: {
    /** Nodes to reach through the fault proxy; default RIAKFS_TEST_RIAK's, if it names any. */
    nodes?: string[];
  } = {},
): Promise<void> {
  const base = tempDir("riakfs-overlay-e2e-");
  let riak: RiakProcess;
  try {
    const nodes = options.nodes ?? externalTestNodes();
    riak = nodes
      ? await startFaultProxyProcess(nodes)
      : await startRiakProcess(join(base, "riak-data"));
  } catch (error) {
    fs.rmSync(base, { recursive: true, force: true });
    throw error;
  }
  const opened = openRiakStoreClient({ nodes: riak.nodes });
  const bucket = `t${randomBytes(4).toString("hex")}-overlay`;
  const store = new Store(opened.client, { namespace: { bucket } });
  const source = join(base, "source");
  // The mount gets a folder of its own: stopMount() removes the mountpoint's parent.
  const mountpoint = join(base, "m", "mnt");
  const spool = join(base, "spool");
  const runDirectory = join(base, "run");
  fs.mkdirSync(source);
  const mounts: OverlayMount[] = [];
  const unmount = (mounted: OverlayMount) =>
    stopMount({
      source,
      mountpoint,
      server: mounted.server,
      stderr: mounted.stderr,
      runDirectory,
    });
  const mount = (preset: string, extra: string[] = [], node = riak.nodes.join(",")) =>
    mountArgs([
      "--preset",
      preset,
      "--foreground",
      "--riak",
      node,
      "--bucket",
      bucket,
      "--spool",
      spool,
      "--run-dir",
      runDirectory,
      ...extra,
      source,
      mountpoint,
    ]);
  const mountArgs = async (args: string[]) => {
    // A stale mount left by a crash stays for the mount to clear (mkdir would fail on it).
    if (!isMounted(mountpoint)) fs.mkdirSync(mountpoint, { recursive: true });
    const server = spawn(RIAKFS_BINARY, ["mount", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    server.on("error", (error) => stderr += `cannot start ${RIAKFS_BINARY}: ${error.message}\n`);
    server.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    const mounted: OverlayMount = { server, stderr: () => stderr };
    mounts.push(mounted);
    const isLive = async () => await isServing(mountpoint) && isMounted(mountpoint);
    const live = await waitFor(async () => await isLive() || server.exitCode !== null, 15_000);
    if (!live || !await isLive()) {
      await unmount(mounted);
      throw new Error(`mount did not come up: ${stderr}`);
    }
    return mounted;
  };
  try {
    await body({
      riak,
      store,
      bucket,
      base,
      source,
      mountpoint,
      spool,
      runDirectory,
      client: opened.client,
      mount,
      mountArgs,
      unmount,
    });
  } finally {
    try {
      riak.resume();
      for (const mounted of mounts) await unmount(mounted);
    } finally {
      await opened.close();
      await riak.close();
      fs.rmSync(base, { recursive: true, force: true });
    }
  }
}

/**
 * Starts `riakfs serve-riak --data DIR` on `port` (0: a free one) and waits until it
 * listens. A restart on the same directory holds what the server held before.
 */
async function spawnServer(
  port: number,
  data: string,
): Promise<{ child: ChildProcess; port: number }> {
  const args = ["serve-riak", "--data", data, "--listen", `127.0.0.1:${port}`];
  const child = spawn(RIAKFS_BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const listening = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve-riak did not listen: ${output}`)),
      15_000,
    );
    const onData = (chunk: string) => {
      output += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.setEncoding("utf8").on("data", onData);
    child.stderr!.setEncoding("utf8").on("data", onData);
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`serve-riak exited: ${output}`));
    });
  }).catch((error) => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
    throw error;
  });
  return { child, port: listening };
}

/** A `riakfs serve-riak --data DATA` process on a free port, as {@link OverlayEnv.riak} is. */
export async function startRiakProcess(data: string): Promise<RiakProcess> {
  let server = await spawnServer(0, data);
  const port = server.port;
  const signal = (name: NodeJS.Signals) => {
    if (server.child.pid !== undefined && server.child.exitCode === null) {
      process.kill(server.child.pid, name);
    }
  };
  const stop = async () => {
    const child = server.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    signal("SIGCONT");
    signal("SIGKILL");
    await exited;
  };
  return {
    nodes: [`127.0.0.1:${port}`],
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    stop,
    restart: async () => {
      await stop();
      server = await spawnServer(port, data);
    },
    close: stop,
  };
}

/** A {@link RiakProcess} that is a fault proxy, which can also make Riak slow. */
export interface FaultProxyProcess extends RiakProcess {
  /** Delays every answer by `ms` milliseconds from now on (0: none), as over a network. */
  setLatency(ms: number): Promise<void>;
}

/**
 * `nodes` behind a fault proxy in a process of its own (tests/_fault_proxy_process.ts): its
 * outages are the proxy's, the nodes' data stays. Several in front of the same node play the
 * nodes of one cluster, each of which can hang (pause) on its own.
 */
export async function startFaultProxyProcess(nodes: string[]): Promise<FaultProxyProcess> {
  const script = join(PROJECT_ROOT, "tests", "_fault_proxy_process.ts");
  const child = spawn(process.execPath, ["run", "-A", script, ...nodes], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let failure = "";
  child.on("error", (error) => failure = `: ${error.message}`);
  child.stdin!.on("error", () => {}); // Its end shows as the end of its output.
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once("close", resolve));
  /** Its next line, within 15 s, as serve-riak's start is awaited. */
  const nextLine = async (what: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the fault proxy did not answer ${what}`)), 15_000);
    });
    try {
      const line = await Promise.race([lines.next(), late]);
      if (line.done) throw new Error(`the fault proxy ended before ${what}${failure}`);
      return line.value;
    } finally {
      clearTimeout(timer);
    }
  };
  const signal = (name: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, name);
  };
  const command = async (name: string) => {
    signal("SIGCONT");
    child.stdin!.write(`${name}\n`);
    if ((await nextLine(name)) !== "ok") throw new Error(`the fault proxy refused ${name}`);
  };
  let addresses: string;
  try {
    addresses = await nextLine("it listened");
  } catch (error) {
    signal("SIGKILL");
    throw error;
  }
  return {
    nodes: addresses.split(","),
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    stop: () => command("stop"),
    restart: async () => {
      await command("stop");
      await command("restart");
    },
    setLatency: (ms) => command(`latency ${ms}`),
    close: async () => {
      signal("SIGCONT");
      child.stdin!.end();
      const timer = setTimeout(() => signal("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * SIGKILLs a mount's serving process (by pid) and waits until its watchdog unmounted and the
 * process is gone, never a fixed sleep: a crash of riakfs that leaves its spool and journal.
 */
export async function killMount(env: OverlayEnv, mounted: OverlayMount): Promise<void> {
  process.kill(mounted.server.pid!, "SIGKILL");
  assert.ok(await waitFor(() => !isMounted(env.mountpoint), 10_000), "watchdog unmounted");
  assert.ok(
    await waitFor(
      () => mounted.server.exitCode !== null || mounted.server.signalCode !== null,
      10_000,
    ),
    "the killed mount's process is gone",
  );
}

/** `riakfs prewarm` of the env's source into its namespace; fails unless it exits 0. */
export async function prewarmSource(env: OverlayEnv): Promise<void> {
  const prewarm = await runRiakfs([
    "prewarm",
    env.source,
    ...["--riak", env.riak.nodes.join(","), "--bucket", env.bucket],
    ...["--state-dir", join(env.base, "state")],
  ]);
  assert.equal(prewarm.code, 0, prewarm.stderr + prewarm.stdout);
}

/** `riakfs status --json` of the env's mount, parsed. */
export async function statusOf(env: OverlayEnv): Promise<StatusReport> {
  const result = await runRiakfs([
    "status",
    "--json",
    "--run-dir",
    env.runDirectory,
    env.mountpoint,
  ]);
  if (result.code !== 0) throw new Error(`riakfs status failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Polls `check` until it resolves true, at most `timeoutMs`; throws with `what` otherwise. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  if (!(await waitFor(() => check().catch(() => false), timeoutMs))) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
  }
}

/**
 * Waits until the mount's log holds a line matching `pattern`: a line written as a request
 * is answered reaches the test through a pipe, after the answer.
 */
export function logged(mounted: OverlayMount, pattern: RegExp): Promise<void> {
  return eventually(`a log line ${pattern}`, () => Promise.resolve(pattern.test(mounted.stderr())));
}

/** Asserts that every file of `files` (name -> content) is in Riak, byte for byte. */
export async function assertInRiak(env: OverlayEnv, files: Map<string, Uint8Array>): Promise<void> {
  for (const [name, content] of files) {
    assert.ok(
      Buffer.from(content).equals(await env.store.readFile(name)),
      `${name} in Riak byte for byte`,
    );
  }
}

/**
 * Mounts `preset` again, waits until its journal replay put every file of `files` into
 * Riak, checks them byte for byte (and whatever `alsoReplayed` checks), and unmounts.
 */
export async function assertReplayedAfterRemount(
  env: OverlayEnv,
  files: Map<string, Uint8Array>,
  preset = "migrate",
  alsoReplayed?: () => Promise<void>,
): Promise<void> {
  const mounted = await env.mount(preset);
  try {
    for (const [name, content] of files) {
      await eventually(
        `${name} in Riak`,
        async () => (await env.store.tryStat(name))?.size === content.length,
      );
    }
    await assertInRiak(env, files);
    await alsoReplayed?.();
  } finally {
    await env.unmount(mounted);
  }
}

/**
 * Waits until the mount has nothing left to send to Riak or to copy; says what is left if it
 * never does.
 */
export async function waitForQuiet(env: OverlayEnv): Promise<void> {
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

/** `error` with the mount's log appended: failed handlers explain most failures. */
export function withLog(error: unknown, mounted: OverlayMount): Error {
  return new Error(`${(error as Error).stack}\nmount stderr:\n${mounted.stderr()}`);
}

/**
 * Runs `body` on a mount of `preset` (or the one `mount` makes); a failure carries what the
 * mount logged, and the mount goes whatever happens.
 */
export async function withMounted(
  env: OverlayEnv,
  preset: string | (() => Promise<OverlayMount>),
  body: (mounted: OverlayMount) => Promise<void>,
): Promise<void> {
  const mounted = await (typeof preset === "string" ? env.mount(preset) : preset());
  try {
    await body(mounted);
  } catch (error) {
    throw withLog(error, mounted);
  } finally {
    await env.unmount(mounted);
  }
}

/** A test step whose failure carries the mount's log (a failed step does not throw). */
export async function step(
  t: Deno.TestContext,
  mounted: OverlayMount,
  name: string,
  body: () => Promise<void> | void,
): Promise<void> {
  await t.step(name, async () => {
    try {
      await body();
    } catch (error) {
      throw withLog(error, mounted);
    }
  });
}

/** How an outage of {@link throughOutage} ends. */
export type OutageEnding = "riak back" | "killed";

/** A mount of {@link throughOutage}, whose Riak the test stops and brings back. */
export interface OutageMount {
  /** The mount serving now: another one once a `killed` ending mounted the preset again. */
  readonly mounted: OverlayMount;
  /**
   * Stops Riak (by pid) and waits until the mount logged the outage, which `trigger` (a
   * write, whose upload then fails) makes it find out.
   */
  stopRiak(trigger: () => Promise<void>): Promise<void>;
  /**
   * Ends the outage: Riak started again under the mount, or (`killed`) the mount SIGKILLed,
   * Riak started again, `meanwhile` run (another host's writes, say), and the preset mounted
   * again, replaying its journal.
   */
  end(ending: OutageEnding, meanwhile?: () => Promise<void>): Promise<void>;
}

/**
 * Runs `body` on a mount of `preset` without kernel caching (every lookup reaches the mount,
 * as once its entries expired) through an outage it makes; a failure carries what the mount
 * logged, and whatever happens Riak is running again and the mount goes.
 */
export async function throughOutage(
  env: OverlayEnv,
  preset: string,
  body: (outage: OutageMount) => Promise<void>,
): Promise<void> {
  const options = ["-o", "entry_timeout=0,attr_timeout=0"];
  let mounted = await env.mount(preset, options);
  let riakDown = false;
  const outage: OutageMount = {
    get mounted() {
      return mounted;
    },
    stopRiak: async (trigger) => {
      await env.riak.stop();
      riakDown = true;
      await trigger();
      await eventually(
        "the outage logged",
        () => Promise.resolve(mounted.stderr().includes("Riak unreachable")),
      );
    },
    end: async (ending, meanwhile) => {
      if (ending === "killed") await killMount(env, mounted);
      await env.riak.restart();
      riakDown = false;
      if (ending !== "killed") return;
      await meanwhile?.();
      mounted = await env.mount(preset, options);
    },
  };
  try {
    await body(outage);
  } catch (error) {
    throw withLog(error, mounted);
  } finally {
    if (riakDown) await env.riak.restart();
    await env.unmount(mounted);
  }
}

/** The names Riak lists in `directory`, sorted. */
export async function riakNames(env: OverlayEnv, directory: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of env.store.list(directory)) names.push(entry.name.toString());
  return names.sort();
}

/** Asserts that nothing is at `path` (lstat answers ENOENT). */
export async function assertGone(path: string): Promise<void> {
  await assert.rejects(fs.promises.lstat(path), { code: "ENOENT" }, `${path} is gone`);
}

/** What a scenario of {@link outageTests} is given. */
export interface OutageScenario {
  env: OverlayEnv;
  preset: string;
  ending: OutageEnding;
  outage: OutageMount;
}

/**
 * Registers `scenario` as a test of each preset that writes Riak only (drain, riak) with each
 * ending of its outage (Riak back under the mount; riakfs SIGKILLed and mounted again, named
 * with `killed`), each on an env of its own through {@link throughOutage}.
 */
export function outageTests(
  what: string,
  scenario: (given: OutageScenario) => Promise<void>,
  killed = ", riakfs killed",
): void {
  for (const preset of ["drain", "riak"]) {
    for (const ending of ["riak back", "killed"] as const) {
      Deno.test(`${preset}, Riak down${ending === "killed" ? killed : ""}: ${what}`, async () => {
        await withOverlayEnv((env) =>
          throughOutage(env, preset, (outage) => scenario({ env, preset, ending, outage }))
        );
      });
    }
  }
}
