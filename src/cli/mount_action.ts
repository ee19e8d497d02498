/**
 * What `riakfs mount` does (src/cli/mount.ts defines the command; this loads when it runs):
 * validates the settings, then serves in the foreground or starts itself in the background.
 *
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { join, resolve, sep } from "node:path";
import type { Command, Option } from "commander";
import { checkMountpoint, fsnameFor, type ServedMount, serveFileSystem } from "../fuse/mod.ts";
import { runtimePaths } from "../overlay/control.ts";
import { Logger, reopenStandardError } from "../overlay/log.ts";
import { ModeError, usesRiak } from "../overlay/modes.ts";
import { type OverlaySettings, overlaySettingsFromOptions } from "../overlay/mount_options.ts";
import { openPassthrough } from "../overlay/passthrough.ts";
import { type OverlayRuntime, startOverlay } from "../overlay/runtime.ts";
import { type NodeStatus, RiakClient } from "../riak/mod.ts";
import { riakStoreClient } from "../store/riak_adapter.ts";
import { Store } from "../store/store.ts";
import { type FuseOptionSet, MOUNT_SUBTYPE, type MountFlags, parseFuseOptions } from "./mount.ts";
import {
  clusterOptionsFromSettings,
  mountRiakChecks,
  type RiakCommandSettings,
  RiakConfigError,
  riakSettingsFromOptions,
} from "./riak-session.ts";
import { makeDirectories, makeOptionDirectory } from "../util/directories.ts";
import { requireTextPath } from "./raw_args.ts";
import { decimal } from "./numbers.ts";
import { MAX_TIMER_MS } from "../util/timers.ts";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";
import { backgroundFailureLines } from "./background_failure.ts";
import { mountPrivilegeProblem } from "./mount_privilege.ts";
import { refuseUnusableBucketTypes } from "./bucket_types.ts";
import { readAnswer, ReadyChannel, StartLogger } from "./ready_channel.ts";
import { resolveNamespace } from "../store/layout.ts";

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

/** Mounts SOURCE at MOUNTPOINT as the flags ask: in this process, or in the background. */
export async function mountCommand(
  source: string,
  mountpoint: string,
  flags: MountFlags,
  command: Command,
): Promise<void> {
  refuseEmptyPaths(command);
  absolutePathsFromEnvironment(command, flags as unknown as Record<string, unknown>);
  let fuseOptions: FuseOptionSet;
  try {
    fuseOptions = parseFuseOptions(flags.options);
  } catch (error) {
    command.error(`riakfs: ${(error as Error).message}`, { exitCode: 2, code: "riakfs.usage" });
  }
  const timeout = decimal(flags.requestTimeout, { fraction: true });
  if (!Number.isFinite(timeout) || timeout <= 0) {
    command.error(
      `riakfs: --request-timeout needs seconds > 0, got ${JSON.stringify(flags.requestTimeout)}`,
      {
        exitCode: 2,
        code: "riakfs.usage",
      },
    );
  }
  if (timeout * 1000 > MAX_TIMER_MS) {
    command.error(
      `riakfs: --request-timeout must be at most ${MAX_TIMER_MS / 1000} seconds, got ${timeout}`,
      { exitCode: 2, code: "riakfs.usage" },
    );
  }
  let overlay: OverlaySettings;
  let riak: RiakCommandSettings | undefined;
  try {
    overlay = overlaySettingsFromOptions(flags as unknown as Record<string, unknown>);
    // Mount's --request-timeout is the FUSE deadline (seconds); the Riak client's comes from
    // RIAKFS_REQUEST_TIMEOUT or the config file, as for every other command. Checked for the
    // passthrough too, which uses none of them: a config file that does not parse, or a
    // --riak typo, was accepted without a word until the first Riak-backed mount.
    const settings = riakSettingsFromOptions({ ...flags }, command, ["--request-timeout"]);
    if (usesRiak(overlay.mode)) riak = settings;
  } catch (error) {
    if (error instanceof RiakConfigError) {
      command.error(`riakfs: ${error.message}`, { exitCode: 2, code: "riakfs.usage" });
    }
    if (error instanceof ModeError) {
      command.error(`riakfs: ${namedAsGiven(command, error.message)}`, {
        exitCode: 2,
        code: "riakfs.usage",
      });
    }
    throw error;
  }
  const paths = await checkedPaths(source, mountpoint, overlay!, command);
  const privilege = mountPrivilegeProblem("mounting");
  if (privilege !== undefined) throw new Error(privilege);
  if (!flags.foreground) {
    process.exitCode = await startInBackground(paths, flags, command, overlay!.runDirectory);
    return;
  }
  await serveInForeground(paths.source, paths.mountpoint, fuseOptions!, flags, timeout * 1000, {
    overlay: overlay!,
    riak,
  });
}

/**
 * One line each time the Riak client takes a node out of rotation or back: a hung node among
 * several is no outage of the mount, and said nowhere else.
 */
function logNodeState(logger: Logger, node: NodeStatus): void {
  if (node.state === "down") {
    logger.warn("Riak node taken out of rotation until it answers a ping", {
      node: node.address,
      error: node.lastFailure,
    });
  } else if (node.state === "up" && node.lastResort) {
    logger.warn(
      "Riak node back in rotation though it did not answer in time: every other node is out; its requests wait for their own timeout",
      { node: node.address, error: node.lastFailure },
    );
  } else if (node.state === "up") {
    logger.info("Riak node answers again: back in rotation", { node: node.address });
  }
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
  // Started in the background by `riakfs mount`: stderr is the log file it opened.
  const inBackground = process.env[READY_FD_VARIABLE] !== undefined;
  const starter = new ReadyChannel(process.env[READY_FD_VARIABLE]);
  delete process.env[READY_FD_VARIABLE];
  const { overlay, riak } = settings;
  const logger = new StartLogger(starter, { format: overlay.logFormat });
  const client = riak && new RiakClient({
    ...clusterOptionsFromSettings(riak.riak),
    onNodeStateChange: (node) => logNodeState(logger, node),
  });
  /** What the FUSE layer reports goes through the mount's logger (--log-format). */
  const fuseLog = (message: string) => logger.warn(message);
  // A hangup (a closed terminal, a log rotation script) must not take the filesystem away
  // from under its applications, undrained: ignored from before the mount is up. In the
  // background it opens the log file again, which logrotate's postrotate sends it for.
  const logFile = inBackground
    ? flags.logFile ?? runtimePaths(mountpoint, overlay.runDirectory).logFile
    : undefined;
  const hangup = () => {
    if (logFile === undefined) {
      logger.info("SIGHUP ignored: the mount keeps serving (riakfs umount or SIGTERM ends it)");
      return;
    }
    try {
      reopenStandardError(logFile);
      logger.info("SIGHUP: log file opened again; the mount keeps serving", { log: logFile });
    } catch (error) {
      logger.warn("SIGHUP: cannot open the log file again; logging on where it was", {
        log: logFile,
        error: (error as Error).message,
      });
    }
  };
  process.on("SIGHUP", hangup);
  let runtime: OverlayRuntime | undefined;
  let served: ServedMount | undefined;
  try {
    const namespace = riak?.namespace;
    if (riak) await refuseUnusableBucketTypes(riak.riak, resolveNamespace(namespace));
    const store = riak && new Store(riakStoreClient(client!), {
      namespace: namespace!,
      w: riak.riak.w,
      dw: riak.riak.dw,
    });
    const checks = riak && mountRiakChecks(riak.riak, client!);
    runtime = await startOverlay({
      settings: overlay,
      source: overlay.mode.reads === "riak" ? undefined : source,
      sourceArgument: source,
      mountpoint,
      store,
      riakNodes: riak?.riak.nodes ?? [],
      pingRiak: checks?.pingRiak,
      riakAnswers: checks?.riakAnswers,
      whyRiakUnanswered: checks?.whyUnanswered,
      logger,
      localFileSystem: () =>
        openPassthrough(source, {
          log: fuseLog,
          entryTimeout: options.entryTimeout,
          attrTimeout: options.attrTimeout,
          directIo: options.directIo,
          keepCache: options.keepCache,
        }),
      entryTimeout: options.entryTimeout,
      attrTimeout: options.attrTimeout,
      directIo: options.directIo,
    });
    const overlayRuntime = runtime;
    // The kernel already applied the caller's umask; ours must not mask again.
    process.umask(0);
    served = await serveFileSystem(overlayRuntime.fileSystem, {
      log: fuseLog,
      mountpoint: await realpathUnlessStale(mountpoint),
      fsname: options.fsname ?? fsnameFor(source),
      subtype: options.subtype ?? MOUNT_SUBTYPE,
      allowOther: options.allowOther,
      // Requests run as root: with allow_other the kernel must check the callers'
      // permissions; without it only root can reach the mount, and checking root's costs a
      // GETATTR of every directory on each path when attributes are not cached.
      defaultPermissions: options.allowOther || options.defaultPermissions,
      extraOptions: options.generic,
      requestTimeoutMs,
      // What the caller got: EIO, whatever the handler ends with later.
      onTimedOut: () => overlayRuntime.metrics.countError("EIO"),
      // Without attribute caching it would cost a GETATTR per cached read (see SessionOptions).
      autoInvalData: options.attrTimeout !== 0,
      // SIGTERM/SIGINT: keep serving while the upload queue drains (at most
      // --drain-timeout, outcome logged), then unmount.
      beforeUnmount: () => {
        logger.info("draining uploads before unmounting");
        return overlayRuntime.drainUploads().then(() => {});
      },
    });
    const pidFile = flags.pidFile ?? runtimePaths(mountpoint, overlay.runDirectory).pidFile;
    try {
      if (!flags.pidFile) makeDirectories(overlay.runDirectory);
      fs.writeFileSync(pidFile, `${process.pid}\n`);
      // Whatever the umask (0 here): a PID file others can write names whom root signals.
      fs.chmodSync(pidFile, 0o644);
    } catch (error) {
      // The mount is up already: reported as failed, it must not stay behind, served by a
      // process nobody knows of.
      await served.stop();
      await served.finished.catch(() => {});
      const flag = flags.pidFile ? `--pid-file ${pidFile}` : `--run-dir ${overlay.runDirectory}`;
      throw new Error(`${flag}: ${(error as Error).message}`);
    }
    starter.end("ready");
    try {
      await served.finished;
    } finally {
      removeIfOurs(pidFile);
    }
  } catch (error) {
    starter.end(`error ${(error as Error).message}`);
    throw error;
  } finally {
    // Unmounted: uploads still pending get what is left of the drain timeout (all of
    // --drain-timeout when unmounted without a drain); the rest stays journaled. Aborted
    // (a second signal): no more waiting.
    await runtime?.stop(served?.aborted ? 0 : undefined);
    await client?.close();
    process.off("SIGHUP", hangup);
    if (served !== undefined) exitOnceReported();
  }
}

/**
 * SOURCE and MOUNTPOINT made absolute, once nothing stands in the way of the mount: checked
 * before the journal is replayed or a socket made (a mount refused late touched a live
 * one's), and before a source that is not there is taken for an empty one.
 */
async function checkedPaths(
  source: string,
  mountpoint: string,
  overlay: OverlaySettings,
  command: Command,
): Promise<{ source: string; mountpoint: string }> {
  const usage = (message: string): never =>
    command.error(`riakfs: ${message}`, { exitCode: 2, code: "riakfs.usage" });
  requireTextPath(command, "SOURCE", source);
  requireTextPath(command, "MOUNTPOINT", mountpoint);
  const paths = { source: resolve(source), mountpoint: resolve(mountpoint) };
  // First: a stat of a hung mount there would never return.
  await checkMountpoint(paths.mountpoint);
  const wrongMountpoint = await notADirectory(paths.mountpoint);
  if (wrongMountpoint) usage(`mountpoint ${paths.mountpoint} ${wrongMountpoint}`);
  const realMountpoint = await realpathUnlessStale(paths.mountpoint);
  const inMountpoint = (path: string | undefined) =>
    path !== undefined && isWithin(resolve(path), realMountpoint);
  if (inMountpoint(overlay.spool)) usage(`--spool ${overlay.spool} is inside the mountpoint`);
  if (inMountpoint(overlay.runDirectory)) {
    usage(`--run-dir ${overlay.runDirectory} is inside the mountpoint`);
  }
  if (overlay.mode.reads !== "riak") {
    await checkSource(paths, realMountpoint, overlay.spool, usage);
  }
  // Only once nothing refuses the mount.
  const hidden = await fs.promises.readdir(realMountpoint).catch(() => []);
  if (hidden.length > 0) {
    new Logger({ format: overlay.logFormat }).warn(
      `${paths.mountpoint} is not empty; its ${hidden.length} entries are hidden while mounted`,
    );
  }
  // As the mount table lists it, where umount and status look for its control socket (a
  // symlink given as MOUNTPOINT named the socket and pid file after itself).
  return { source: paths.source, mountpoint: realMountpoint };
}

/** The source must be a directory, and neither hold the mountpoint nor lie inside it. */
async function checkSource(
  paths: { source: string; mountpoint: string },
  realMountpoint: string,
  spool: string | undefined,
  usage: (message: string) => never,
): Promise<void> {
  const wrongSource = await notADirectory(paths.source);
  if (wrongSource) usage(`source ${paths.source} ${wrongSource}`);
  try {
    await fs.promises.stat(paths.source);
  } catch (error) {
    throw new Error(`source ${paths.source}: ${(error as Error).message}`);
  }
  const realSource = await fs.promises.realpath(paths.source);
  if (isWithin(realMountpoint, realSource) || isWithin(realSource, realMountpoint)) {
    // Its files would be reached through the mount itself, which then waits on itself.
    usage(
      `the source ${paths.source} and the mountpoint ${paths.mountpoint} must not be one ` +
        "inside the other (to take the old directory's place, move it aside and mount there: " +
        "mv /data /data.old && mkdir /data && riakfs mount ... /data.old /data)",
    );
  }
  // Only SOURCE/.riakfs-spool is known for a spool there: anywhere else in SOURCE, the
  // pre-warm would upload the journal and staged files, and --delete-local delete them.
  if (spool === undefined) return;
  const wanted = resolve(spool);
  const inSource = [paths.source, realSource].find((source) => isWithin(wanted, source));
  if (inSource !== undefined && wanted !== join(inSource, SPOOL_DIRECTORY_NAME)) {
    usage(
      `--spool ${spool} is inside the source ${paths.source}; a spool there must be ` +
        `${join(paths.source, SPOOL_DIRECTORY_NAME)} (the default), or outside the source`,
    );
  }
}

/**
 * What makes `path` no directory to mount (a usage error, as a bad flag): "does not exist"
 * or "is not a directory"; undefined otherwise, also when it cannot be told (a stale mount,
 * a permission), which the checks after this report.
 */
async function notADirectory(path: string): Promise<string | undefined> {
  try {
    return (await fs.promises.stat(path)).isDirectory() ? undefined : "is not a directory";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? "does not exist" : undefined;
  }
}

/** Whether `path` is `directory` or below it (both absolute, resolved). */
function isWithin(path: string, directory: string): boolean {
  return path === directory ||
    path.startsWith(directory.endsWith(sep) ? directory : directory + sep);
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
 * How an error names `option`: its flag, with its environment variable first where the value
 * came from there, as the Riak settings' errors do (an operator who never gave the flag looks
 * for it on the command line in vain).
 */
function optionNamed(command: Command, option: Option): string {
  const fromEnvironment = command.getOptionValueSource(option.attributeName()) === "env";
  return fromEnvironment ? `${option.envVar} (${option.long})` : option.long!;
}

/** `message` about the option it starts with (`--delete-quiet-period must be...`), so named. */
function namedAsGiven(command: Command, message: string): string {
  const flag = /^--[a-z-]+/.exec(message)?.[0];
  const option = command.options.find((candidate) => candidate.long === flag);
  return option ? optionNamed(command, option) + message.slice(flag!.length) : message;
}

/**
 * Refuses a path option given empty (`--spool "$UNSET"`, `RIAKFS_RUN_DIR=`): resolved, it was
 * the working directory, which got a spool's journal, or the socket and pid file in / (where
 * the background process runs) while the log went to the working directory.
 */
function refuseEmptyPaths(command: Command): void {
  for (const option of command.options) {
    const key = option.attributeName();
    if (!PATH_OPTIONS.has(option.long ?? "") || command.getOptionValue(key) !== "") continue;
    command.error(`riakfs: ${optionNamed(command, option)} must not be empty`, {
      exitCode: 2,
      code: "riakfs.usage",
    });
  }
}

/**
 * Path options set through RIAKFS_* variables, made absolute here and in the environment the
 * background process inherits: it runs in /, where a relative one names another file (a run
 * directory under /run that `riakfs umount` run beside this one would not find).
 */
function absolutePathsFromEnvironment(command: Command, flags: Record<string, unknown>): void {
  for (const option of command.options) {
    const key = option.attributeName();
    const value = command.getOptionValue(key);
    if (option.envVar === undefined || !PATH_OPTIONS.has(option.long ?? "")) continue;
    // An empty one was refused by refuseEmptyPaths.
    if (command.getOptionValueSource(key) !== "env" || typeof value !== "string" || !value) {
      continue;
    }
    const absolute = resolve(value);
    process.env[option.envVar] = absolute;
    command.setOptionValueWithSource(key, absolute, "env");
    flags[key] = absolute;
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

/**
 * glibc malloc settings of the background serving process (the environment overrides them):
 * one arena per thread (reader threads, the libuv pool) holds freed 1 MiB buffers apart,
 * which costs tens of MB of resident memory for nothing. A process cannot set this for
 * itself once started, so only the process started here gets it.
 */
const SERVING_ALLOCATOR = { MALLOC_ARENA_MAX: "2" };

async function startInBackground(
  paths: { source: string; mountpoint: string },
  flags: MountFlags,
  command: Command,
  runDirectory: string,
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
  // Never this command's stderr: whoever reads it (cron, a script) would wait for the mount.
  let logFile = flags.logFile && resolve(flags.logFile);
  if (!logFile) {
    makeOptionDirectory("--run-dir", runDirectory);
    logFile = runtimePaths(paths.mountpoint, runDirectory).logFile;
  }
  let log: number;
  try {
    log = fs.openSync(logFile, "a");
  } catch (error) {
    throw new Error(`--log-file ${logFile}: cannot open it: ${(error as Error).message}`);
  }
  const logStart = fs.fstatSync(log).size;
  const child = spawn(self.file, args, {
    cwd: "/",
    detached: true,
    env: { ...SERVING_ALLOCATOR, ...process.env, [READY_FD_VARIABLE]: "3" },
    stdio: ["ignore", log, log, "pipe"],
  });
  fs.closeSync(log);
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
  if (!/^(ready|error )/m.test(answer) && child.exitCode === null && child.signalCode === null) {
    // Its descriptor closed as it exited: its last lines are in the log once it is gone.
    await new Promise((resolveExit) => child.once("exit", resolveExit));
  }
  child.unref();
  const { warnings, last } = readAnswer(answer);
  for (const warning of warnings) process.stderr.write(`riakfs: warning: ${warning}\n`);
  if (last === "ready") return 0;
  const lines = last.startsWith("error ")
    ? [`riakfs: ${last.slice("error ".length)}`]
    : backgroundFailureLines(writtenSince(logFile, logStart), logFile);
  process.stderr.write(lines.map((line) => `${line}\n`).join(""));
  return 1;
}

/** What was appended to `file` from `offset` on (at most its last 64 KiB); "" if unreadable. */
function writtenSince(file: string, offset: number): string {
  try {
    const text = fs.readFileSync(file);
    return text.subarray(Math.max(offset, text.length - 65_536)).toString("utf8");
  } catch {
    return "";
  }
}

/**
 * Removes the PID file if it still names this process: a mount of the same mountpoint
 * started while this one lingered (detached lazily, draining) has written its own.
 */
function removeIfOurs(pidFile: string): void {
  let text: string;
  try {
    text = fs.readFileSync(pidFile, "utf8");
  } catch {
    return;
  }
  if (text.trim() === String(process.pid)) fs.rmSync(pidFile, { force: true });
}

/**
 * Ends the serving process once its exit code is set (by the caller, right after this
 * action). Unmounted and stopped, it has nothing left to do, but a request to a hung Riak
 * node (an upload that outlived its grace, whose journal entry is replayed next time) would
 * keep it alive until the client's request timeout. stderr and stdout are synchronous on
 * Linux, pipes too: nothing written is lost.
 */
function exitOnceReported(): void {
  setImmediate(() => process.exit(typeof process.exitCode === "number" ? process.exitCode : 0));
}
