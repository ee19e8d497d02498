/**
 * `riakfs mount --preset PRESET SOURCE MOUNTPOINT`: mounts a preset of the overlay
 * (passthrough, shadow, migrate, drain, riak; see src/overlay/modes.ts), with the Riak
 * connection options of src/cli/riak-options.ts and the overlay's own options.
 *
 * Without `--foreground` the command starts itself again in the background, waits until
 * the mount answers, and exits 0 (or 1 with the background process's one-line error).
 *
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { serveFileSystem } from "../fuse/mod.ts";
import { Logger } from "../overlay/log.ts";
import { ModeError, PRESETS as MODE_PRESETS, usesRiak } from "../overlay/modes.ts";
import {
  addOverlayOptions,
  type OverlaySettings,
  overlaySettingsFromOptions,
} from "../overlay/mount_options.ts";
import { openPassthrough } from "../overlay/passthrough.ts";
import { type OverlayRuntime, startOverlay } from "../overlay/runtime.ts";
import { RiakClient } from "../riak/mod.ts";
import { riakStoreClient } from "../store/riak_adapter.ts";
import { Store } from "../store/store.ts";
import {
  addRiakOptions,
  clusterOptionsFromSettings,
  type RiakCommandSettings,
  RiakConfigError,
  riakSettingsFromOptions,
} from "./riak-options.ts";

/** The mount presets (the overlay's mode presets). */
export const PRESETS: readonly string[] = Object.keys(MODE_PRESETS);

/** Options whose value is a path: made absolute before the background process gets them. */
const PATH_OPTIONS = new Set([
  "--pid-file",
  "--log-file",
  "--spool",
  "--run-dir",
  "--config",
  "--tls-ca",
  "--tls-cert",
  "--tls-key",
  "--password-file",
]);

/** Environment variable naming the descriptor a background child reports readiness on. */
const READY_FD_VARIABLE = "RIAKFS_READY_FD";

/** Options parsed from `-o a,b=c`. */
export interface FuseOptionSet {
  allowOther: boolean;
  fsname?: string;
  subtype?: string;
  entryTimeout?: number;
  attrTimeout?: number;
  directIo: boolean;
  keepCache: boolean;
  /** Generic mount(8) options passed through as they are. */
  generic: string[];
}

/** Generic mount options that pass through to mount(8) unchanged. */
const GENERIC_OPTIONS = new Set([
  "ro",
  "rw",
  "nosuid",
  "suid",
  "nodev",
  "dev",
  "noexec",
  "exec",
  "noatime",
  "atime",
  "relatime",
  "norelatime",
  "strictatime",
  "lazytime",
  "sync",
  "async",
  "dirsync",
]);

/**
 * Parses `-o` option lists (may be given several times). Throws a one-line Error naming
 * the first unknown or malformed option.
 */
export function parseFuseOptions(lists: string[]): FuseOptionSet {
  const result: FuseOptionSet = {
    allowOther: false,
    directIo: false,
    keepCache: false,
    generic: [],
  };
  const seconds = (name: string, value: string | undefined) => {
    const number = Number(value);
    if (value === undefined || value === "" || !Number.isFinite(number) || number < 0) {
      throw new Error(`-o ${name} needs a number of seconds >= 0, got ${value ?? "nothing"}`);
    }
    return number;
  };
  for (const list of lists) {
    for (const item of list.split(",")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const name = eq < 0 ? item : item.slice(0, eq);
      const value = eq < 0 ? undefined : item.slice(eq + 1);
      switch (name) {
        case "allow_other":
          result.allowOther = true;
          break;
        case "default_permissions":
          break; // Always on: requests run as root and the kernel must check permissions.
        case "fsname":
        case "subtype":
          if (!value || !/^[A-Za-z0-9_.:/@+-]+$/.test(value)) {
            throw new Error(`-o ${name} needs a value of letters, digits and _.:/@+-`);
          }
          result[name] = value;
          break;
        case "entry_timeout":
          result.entryTimeout = seconds(name, value);
          break;
        case "attr_timeout":
          result.attrTimeout = seconds(name, value);
          break;
        case "direct_io":
          result.directIo = true;
          break;
        case "keep_cache":
          result.keepCache = true;
          break;
        default:
          if (value === undefined && GENERIC_OPTIONS.has(name)) result.generic.push(name);
          else throw new Error(`unknown mount option -o ${item}`);
      }
    }
  }
  return result;
}

interface MountFlags {
  preset: string;
  foreground?: boolean;
  options: string[];
  pidFile?: string;
  logFile?: string;
  requestTimeout: string;
}

/** Registers `riakfs mount`. */
export function installMount(program: Command): void {
  const mount = program.command("mount")
    .description("mount a preset of the overlay at MOUNTPOINT (needs root or CAP_SYS_ADMIN)")
    .argument("<source>", "the local directory to serve")
    .argument("<mountpoint>", "an existing directory to mount on")
    .addOption(
      new Option("--preset <preset>", "what the mount does").choices(PRESETS).makeOptionMandatory(),
    )
    .option("-f, --foreground", "serve in this process until unmounted")
    .option(
      "-o, --options <list>",
      "comma-separated: allow_other, fsname=, subtype=, entry_timeout=, attr_timeout=, " +
        "direct_io, keep_cache, and generic mount options (ro, nosuid, noatime...)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option("--pid-file <file>", "write the serving process's pid here while mounted")
    .option("--log-file <file>", "append the background process's messages here")
    .option("--request-timeout <seconds>", "answer EIO to requests slower than this", "30");
  addOverlayOptions(mount, { preset: false });
  addRiakOptions(mount, ["--request-timeout"]);
  mount
    .action(async (source: string, mountpoint: string, flags: MountFlags, command: Command) => {
      let fuseOptions: FuseOptionSet;
      try {
        fuseOptions = parseFuseOptions(flags.options);
      } catch (error) {
        command.error((error as Error).message, { exitCode: 2, code: "riakfs.usage" });
      }
      const timeout = Number(flags.requestTimeout);
      if (!Number.isFinite(timeout) || timeout <= 0) {
        command.error(`--request-timeout needs seconds > 0, got ${flags.requestTimeout}`, {
          exitCode: 2,
          code: "riakfs.usage",
        });
      }
      let overlay: OverlaySettings;
      let riak: RiakCommandSettings | undefined;
      try {
        overlay = overlaySettingsFromOptions(flags as unknown as Record<string, unknown>);
        // Mount's --request-timeout is the FUSE deadline (seconds), not the Riak client's.
        if (usesRiak(overlay.mode)) {
          riak = riakSettingsFromOptions({ ...flags, requestTimeout: undefined });
        }
      } catch (error) {
        if (error instanceof ModeError || error instanceof RiakConfigError) {
          command.error(error.message, { exitCode: 2, code: "riakfs.usage" });
        }
        throw error;
      }
      const paths = { source: resolve(source), mountpoint: resolve(mountpoint) };
      if (!flags.foreground) {
        process.exitCode = await startInBackground(paths, flags, command);
        return;
      }
      await serveInForeground(paths.source, paths.mountpoint, fuseOptions!, flags, timeout * 1000, {
        overlay: overlay!,
        riak,
      });
    });
}

async function serveInForeground(
  source: string,
  mountpoint: string,
  options: FuseOptionSet,
  flags: MountFlags,
  requestTimeoutMs: number,
  settings: { overlay: OverlaySettings; riak?: RiakCommandSettings },
): Promise<void> {
  // Many concurrent requests each wait on one libuv pool thread (4 by default); this must
  // be set before the pool's first use, which is below.
  process.env.UV_THREADPOOL_SIZE ??= "16";
  const readyFd = process.env[READY_FD_VARIABLE];
  delete process.env[READY_FD_VARIABLE];
  const report = (line: string) => {
    if (readyFd === undefined) return;
    try {
      fs.writeSync(Number(readyFd), `${line}\n`);
      fs.closeSync(Number(readyFd));
    } catch {
      // The parent is gone; nobody to tell.
    }
  };
  const { overlay, riak } = settings;
  const client = riak && new RiakClient(clusterOptionsFromSettings(riak.riak));
  const logger = new Logger({ format: overlay.logFormat });
  let runtime: OverlayRuntime | undefined;
  try {
    const store = riak && new Store(riakStoreClient(client!), {
      namespace: {
        ...riak.namespace,
        riakFuse: { ...riak.namespace.riakFuse, ...overlay.riakFuse },
      },
      w: riak.riak.w,
      dw: riak.riak.dw,
    });
    runtime = await startOverlay({
      settings: overlay,
      source: overlay.mode.reads === "riak" ? undefined : source,
      mountpoint,
      store,
      riakNodes: riak?.riak.nodes ?? [],
      logger,
      localFileSystem: () =>
        openPassthrough(source, {
          entryTimeout: options.entryTimeout,
          attrTimeout: options.attrTimeout,
          directIo: options.directIo,
          keepCache: options.keepCache,
        }),
      entryTimeout: options.entryTimeout,
      attrTimeout: options.attrTimeout,
    });
    const overlayRuntime = runtime;
    // The kernel already applied the caller's umask; ours must not mask again.
    process.umask(0);
    const served = await serveFileSystem(overlayRuntime.fileSystem, {
      mountpoint: await realpathUnlessStale(mountpoint),
      fsname: options.fsname ?? source,
      subtype: options.subtype ?? "riakfs",
      allowOther: options.allowOther,
      defaultPermissions: true,
      extraOptions: options.generic,
      requestTimeoutMs,
      // Without attribute caching it would cost a GETATTR per cached read (see SessionOptions).
      autoInvalData: options.attrTimeout !== 0,
      // SIGTERM/SIGINT: keep serving while the upload queue drains (at most
      // --drain-timeout, outcome logged), then unmount.
      beforeUnmount: () => {
        logger.info("draining uploads before unmounting");
        return overlayRuntime.drainUploads().then(() => {});
      },
    });
    if (flags.pidFile) fs.writeFileSync(flags.pidFile, `${process.pid}\n`);
    report("ready");
    try {
      await served.finished;
    } finally {
      if (flags.pidFile) fs.rmSync(flags.pidFile, { force: true });
    }
  } catch (error) {
    report(`error ${(error as Error).message}`);
    throw error;
  } finally {
    // Unmounted: uploads still pending get what is left of the drain timeout (all of
    // --drain-timeout when unmounted without a drain); the rest stays journaled.
    await runtime?.stop();
    await client?.close();
  }
}

/** The real path of a mountpoint, or its absolute path when a dead mount hides it. */
async function realpathUnlessStale(mountpoint: string): Promise<string> {
  try {
    return await fs.promises.realpath(mountpoint);
  } catch {
    return mountpoint;
  }
}

/**
 * The options given on the command line, as flags again (paths made absolute: the
 * background process runs in /). Options from the environment reach it by inheritance.
 */
function flagsGiven(command: Command): string[] {
  const args: string[] = [];
  for (const option of command.options) {
    const key = option.attributeName();
    if (option.long === undefined || option.long === "--foreground") continue;
    if (command.getOptionValueSource(key) !== "cli") continue;
    const value = command.getOptionValue(key);
    if (typeof value === "boolean") {
      if (value) args.push(option.long);
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) {
      args.push(option.long, PATH_OPTIONS.has(option.long) ? resolve(String(item)) : String(item));
    }
  }
  return args;
}

/** How to start this same program again: the SEA binary, or the runtime plus the script. */
export function selfInvocation(): { file: string; args: string[] } {
  if ("Deno" in globalThis) {
    return { file: process.execPath, args: ["run", "-A", process.argv[1]] };
  }
  // In the single-executable binary argv[1] repeats argv[0] as typed (relative, or a bare
  // name found on PATH), so only node:sea tells reliably that there is no script to pass.
  const sea = process.getBuiltinModule?.("node:sea") as { isSea(): boolean } | undefined;
  if (sea?.isSea() || process.argv[1] === undefined) {
    return { file: process.execPath, args: [] };
  }
  return { file: process.execPath, args: [...process.execArgv, process.argv[1]] };
}

async function startInBackground(
  paths: { source: string; mountpoint: string },
  flags: MountFlags,
  command: Command,
): Promise<number> {
  const self = selfInvocation();
  const args = [
    ...self.args,
    "mount",
    ...flagsGiven(command),
    "--foreground",
    paths.source,
    paths.mountpoint,
  ];
  const log = flags.logFile ? fs.openSync(resolve(flags.logFile), "a") : "ignore";
  const child = spawn(self.file, args, {
    cwd: "/",
    detached: true,
    env: { ...process.env, [READY_FD_VARIABLE]: "3" },
    stdio: ["ignore", log, log, "pipe"],
  });
  if (typeof log === "number") fs.closeSync(log);
  const channel = child.stdio[3] as NodeJS.ReadableStream;
  const answer = await new Promise<string>((resolveAnswer) => {
    let text = "";
    channel.setEncoding("utf8");
    channel.on("data", (chunk: string) => text += chunk);
    channel.on("end", () => resolveAnswer(text.trim()));
    channel.on("error", () => resolveAnswer(text.trim()));
    child.on(
      "error",
      (error) => resolveAnswer(`error cannot start ${self.file}: ${error.message}`),
    );
  });
  child.unref();
  if (answer === "ready") return 0;
  const message = answer.startsWith("error ")
    ? answer.slice("error ".length)
    : "the background process exited before the mount was ready";
  process.stderr.write(`riakfs: ${message}\n`);
  return 1;
}
