/**
 * FUSE in pure TypeScript: the kernel protocol over /dev/fuse, an inode-based filesystem
 * interface, and mounting as root. Knows nothing of Riak or overlays.
 *
 * @example
 * ```ts
 * import { Errno, fail, type FileSystem, serveFileSystem } from "./mod.ts";
 * const empty: FileSystem = {
 *   lookup: () => Promise.reject(fail(Errno.ENOENT)),
 * };
 * const served = await serveFileSystem(empty, { mountpoint: "/mnt/empty" });
 * await served.stop();
 * await served.finished;
 * ```
 *
 * @module
 */
export * from "./abi.ts";
export * from "./filesystem.ts";
export { MAX_RECORDED_FILE_SIZE, READ_BLOCK_SIZE, ReadBlocks } from "./read_blocks.ts";
export { DEFAULT_REQUEST_TIMEOUT_MS, FuseSession, MAX_WRITE } from "./session.ts";
export type { Negotiated, SessionOptions } from "./session.ts";
export {
  abortConnection,
  checkMountpoint,
  clearStaleMount,
  fsnameFor,
  isFuseMounted,
  isStillMounted,
  MountError,
  mountFuse,
  probeMount,
  readMounts,
  startWatchdog,
  unmount,
  waitUntilUnmounted,
} from "./mount.ts";
export type { Mounted, MountInfo, MountOptions, Watchdog } from "./mount.ts";
export { serveFileSystem } from "./serve.ts";
export type { ServedMount, ServeOptions } from "./serve.ts";
