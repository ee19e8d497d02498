/**
 * Serving a filesystem at a mountpoint for the life of the mount: mount, watchdog,
 * request loop, and unmount on SIGTERM/SIGINT, in the order that never leaves a dead mount.
 *
 * @module
 */
import * as fs from "node:fs";
import type { FileSystem } from "./filesystem.ts";
import {
  abortConnection,
  MountError,
  mountFuse,
  type MountOptions,
  startWatchdog,
  unmount,
} from "./mount.ts";
import { FuseSession, type SessionOptions } from "./session.ts";

/** Options of {@link serveFileSystem}. */
export interface ServeOptions extends MountOptions, SessionOptions {
  /**
   * Unmount on SIGTERM and SIGINT, force on the second one, and force on an uncaught
   * error (default true). Forcing detaches the mount and aborts its connection, so the
   * process can always exit: Node cannot exit while its reader threads serve a mount.
   */
  handleSignals?: boolean;
  /**
   * Runs on the first SIGTERM/SIGINT while the mount keeps serving, before it unmounts
   * (for example, draining uploads). Its failure is logged and the unmount goes ahead.
   */
  beforeUnmount?: () => Promise<void>;
  /**
   * Readahead of the mount in KiB (default 4096: four max-size requests, so both reader
   * threads have one to serve while the reader copies the last). The kernel caps a FUSE
   * mount's readahead at 128 KiB in INIT; root raises it afterwards through
   * /sys/class/bdi, so page-cache reads arrive as 1 MiB requests. 0 leaves the kernel's.
   */
  readaheadKb?: number;
}

/** Readahead of a mount unless {@link ServeOptions.readaheadKb} says otherwise. */
export const DEFAULT_READAHEAD_KB = 4096;

/** A mounted, served filesystem. */
export interface ServedMount {
  session: FuseSession;
  /** Settles when the mount is gone and the request loop has stopped. */
  finished: Promise<void>;
  /**
   * Unmounts; if the mount is busy, detaches it lazily (it goes away when its last
   * user does, and `finished` settles then).
   */
  stop(): Promise<void>;
  /** Detaches the mount and aborts its connection: pending requests fail, `finished` settles. */
  abort(): Promise<void>;
  /** Whether it was aborted (a second signal, a fatal error): nothing more is waited for. */
  readonly aborted: boolean;
}

/**
 * Mounts `fileSystem` at `options.mountpoint` and serves it; resolves once the kernel's
 * INIT was answered, i.e. the mount is usable.
 */
export async function serveFileSystem(
  fileSystem: FileSystem,
  options: ServeOptions,
): Promise<ServedMount> {
  const log = options.log ?? ((message: string) => process.stderr.write(`riakfs: ${message}\n`));
  // Signals are taken from before the mount exists: Node's default action would kill the
  // process, and one that arrives while the mount comes up is acted on once it is up.
  let signals = 0;
  let served: { stop(): Promise<void>; abort(): Promise<void> } | undefined = undefined;
  const actOnSignals = () => {
    if (!served || signals === 0) return;
    if (signals > 1) {
      void served.abort();
      return;
    }
    const { stop } = served;
    const before = options.beforeUnmount?.() ?? Promise.resolve();
    void before.catch((error: Error) => log(`before unmounting: ${error.message}`)).finally(stop);
  };
  const onSignal = () => {
    signals++;
    actOnSignals();
  };
  const onFatal = (error: unknown) => {
    log(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
    void served?.abort();
  };
  const removeHandlers = () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("uncaughtException", onFatal);
    process.off("unhandledRejection", onFatal);
  };
  if (options.handleSignals ?? true) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
  const mounted = await mountFuse(options).catch((error: unknown) => {
    removeHandlers();
    throw error;
  });
  const watchdog = startWatchdog(mounted.mountpoint);
  if (watchdog.pid === undefined) {
    log(`no watchdog (cannot run sh): a crash would leave ${mounted.mountpoint} stale`);
  }
  const session = new FuseSession(mounted.fd, fileSystem, { ...options, log }).start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= unmount(mounted.mountpoint).catch(async (error: Error) => {
      log(`${error.message}; detaching it lazily, it goes when its last user does`);
      await unmount(mounted.mountpoint, true).catch((lazyError: Error) => log(lazyError.message));
    });
  let aborting: Promise<void> | undefined;
  const abort = () =>
    aborting ??= (async () => {
      await unmount(mounted.mountpoint, true).catch(() => {});
      if (await abortConnection(mounted.device) === "failed") {
        log(`could not abort the FUSE connection of ${mounted.mountpoint}`);
      }
    })();
  served = { stop, abort };
  if (options.handleSignals ?? true) {
    process.on("uncaughtException", onFatal);
    process.on("unhandledRejection", onFatal);
  }
  actOnSignals();
  const finished = session.closed.finally(async () => {
    removeHandlers();
    fs.closeSync(mounted.fd);
    await watchdog.disarm();
  });
  finished.catch(() => {}); // The caller awaits it; never an unhandled rejection.
  let refused: Error | undefined;
  await Promise.race([session.initialized.catch((error: Error) => refused = error), finished]);
  if (refused) {
    // The kernel answers ECONNREFUSED to every access of a mount whose INIT failed.
    await abort();
    await finished.catch(() => {});
    throw new MountError(mounted.mountpoint, refused.message);
  }
  const readaheadKb = options.readaheadKb ?? DEFAULT_READAHEAD_KB;
  if (readaheadKb > 0 && mounted.device) {
    await fs.promises.writeFile(`/sys/class/bdi/${mounted.device}/read_ahead_kb`, `${readaheadKb}`)
      .catch((error: Error) => log(`could not raise readahead: ${error.message}`));
  }
  return {
    session,
    finished,
    stop,
    abort,
    get aborted() {
      return aborting !== undefined;
    },
  };
}
