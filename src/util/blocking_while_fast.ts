/**
 * When a file-system call may block the calling thread. On a local disk most metadata calls
 * (lstat, realpath, unlink) and reads of cached pages are answered from the kernel's caches in
 * microseconds, while the same call on libuv's thread pool costs the event loop a hop to a
 * pool thread and back: tens of microseconds, more on a busy machine, and most of what a
 * small file's request costs a FUSE mount. A slow source (a cold disk, NFS, a failing drive)
 * must still never stall the event loop. So calls block while they are quick, and go to the
 * pool once a few in a row were slow. A slow call is only known once it returned: where one
 * can hang (a network filesystem whose server went away), calls must not block at all
 * ({@link isLocalFilesystem} tells).
 *
 * @module
 */
import { readFileSync, realpathSync, statfsSync } from "node:fs";
import { unescapeMountinfo } from "./mountinfo.ts";

/** A blocking call slower than this (ms) was not answered from the kernel's caches. */
const DEFAULT_SLOW_MS = 1;
/**
 * Slow calls weigh 1 and fade by this factor per call: a few in a row (not one hiccup) move
 * the calls to the pool.
 */
const SLOW_FADE = 0.9;
const SLOW_SCORE_LIMIT = 2;

/** Options of {@link BlockingWhileFast}. */
export interface BlockingWhileFastOptions {
  /** A blocking call at least this slow (ms) counts as slow (default 1; 0: every call). */
  slowMs?: number;
  /**
   * Once calls went to the pool, block again after this long (ms) to see whether the source
   * is quick again (a disk busy for a while). Undefined: stay on the pool for good.
   */
  retryAfterMs?: number;
  /** The clock, in ms (tests). */
  now?: () => number;
  /**
   * false: every call goes to the pool (a network filesystem, where a single call can hang
   * for minutes and a blocked event loop would take the whole process with it). A function
   * is asked again every {@link ALLOWED_RECHECK_MS} (a filesystem mounted later below the
   * source, say): it must itself never block for long.
   */
  allowed?: boolean | (() => boolean);
}

/** How long (ms) an `allowed` function's answer stands. */
export const ALLOWED_RECHECK_MS = 5_000;

/**
 * The pace of one source's calls: blocking while quick, on the pool once slow.
 *
 * @example
 * ```ts
 * const pace = new BlockingWhileFast({ retryAfterMs: 10_000 });
 * const stats = await pace.run(
 *   () => fs.lstatSync(path, { bigint: true }),
 *   () => fs.promises.lstat(path, { bigint: true }),
 * );
 * ```
 */
export class BlockingWhileFast {
  readonly #slowMs: number;
  readonly #retryAfterMs: number | undefined;
  readonly #now: () => number;
  #allowed: boolean;
  #slowScore = 0;
  #pooledSince = 0;
  readonly #askAllowed: (() => boolean) | undefined;
  #allowedSince = 0;

  constructor(options: BlockingWhileFastOptions = {}) {
    this.#slowMs = options.slowMs ?? DEFAULT_SLOW_MS;
    this.#retryAfterMs = options.retryAfterMs;
    this.#now = options.now ?? (() => performance.now());
    const allowed = options.allowed ?? true;
    if (typeof allowed === "function") {
      this.#askAllowed = allowed;
      this.#allowed = allowed();
      this.#allowedSince = this.#now();
    } else this.#allowed = allowed;
  }

  /** Whether the next call may block the calling thread. */
  get blocking(): boolean {
    if (this.#askAllowed && this.#now() - this.#allowedSince >= ALLOWED_RECHECK_MS) {
      this.#allowed = this.#askAllowed();
      this.#allowedSince = this.#now();
    }
    if (!this.#allowed) return false;
    if (this.#slowScore <= SLOW_SCORE_LIMIT) return true;
    if (this.#retryAfterMs === undefined) return false;
    if (this.#now() - this.#pooledSince < this.#retryAfterMs) return false;
    this.#slowScore = 0; // Given another chance; a slow call or two sends it back.
    return true;
  }

  /** Runs the blocking `call`, timing it. */
  timed<T>(call: () => T): T {
    const started = this.#now();
    try {
      return call();
    } finally {
      const ended = this.#now();
      const slow = ended - started >= this.#slowMs ? 1 : 0;
      const wasBlocking = this.#slowScore <= SLOW_SCORE_LIMIT;
      this.#slowScore = this.#slowScore * SLOW_FADE + slow;
      if (wasBlocking && this.#slowScore > SLOW_SCORE_LIMIT) this.#pooledSince = ended;
    }
  }

  /** `blocking()` on this thread while calls are quick (timed), else `pooled()`. */
  run<T>(blocking: () => T, pooled: () => Promise<T>): Promise<T> {
    if (!this.blocking) return pooled();
    try {
      return Promise.resolve(this.timed(blocking));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * Filesystems on local devices or in memory, by statfs(2) f_type: ext2/3/4, XFS, Btrfs, ZFS,
 * F2FS, ReiserFS, JFS, bcachefs, tmpfs, ramfs, overlayfs, FAT, exFAT, NTFS, squashfs. NFS,
 * SMB/CIFS, Ceph, FUSE, 9p and every type not named here count as remote.
 */
const LOCAL_FILESYSTEM_TYPES = new Set([
  0xef53,
  0x58465342,
  0x9123683e,
  0x2fc12fc1,
  0xf2f52010,
  0x52654973,
  0x3153464a,
  0xca451a4e,
  0x01021994,
  0x858458f6,
  0x794c7630,
  0x4d44,
  0x2011bab0,
  0x5346544e,
  0x73717368,
]);

/**
 * The names /proc/self/mountinfo gives the same local filesystems, and the kernel's own
 * (proc, sysfs, devpts...), which do not hang either. autofs is not here: it mounts others.
 */
const LOCAL_FILESYSTEM_NAMES = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "zfs",
  "f2fs",
  "reiserfs",
  "jfs",
  "bcachefs",
  "tmpfs",
  "ramfs",
  "overlay",
  "vfat",
  "msdos",
  "exfat",
  "ntfs",
  "ntfs3",
  "squashfs",
  "proc",
  "sysfs",
  "devtmpfs",
  "devpts",
  "mqueue",
  "cgroup",
  "cgroup2",
]);

/**
 * Whether the tree at `path` is on filesystems of local devices or in memory, where a call
 * is answered or fails but does not hang: `path`'s own (statfs(2)) and every one mounted below
 * it now (/proc/self/mountinfo). False for network filesystems (NFS, SMB, Ceph), FUSE, autofs,
 * unknown types, and when either cannot be read.
 *
 * @example
 * ```ts
 * const pace = new BlockingWhileFast({ allowed: isLocalFilesystem("/srv/legacy") });
 * ```
 */
export function isLocalFilesystem(path: string): boolean {
  try {
    if (!LOCAL_FILESYSTEM_TYPES.has(Number(statfsSync(path).type))) return false;
    const below = realpathSync.native(path).replace(/\/$/, "") + "/";
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      // "36 35 98:0 /root /mnt/point opts [optional fields] - fstype source superopts"
      const fields = line.split(" ");
      const separator = fields.indexOf("-");
      if (separator < 0 || fields.length < 5) continue;
      const mountPoint = unescapeMountinfo(fields[4]);
      if (!mountPoint.startsWith(below)) continue;
      if (!LOCAL_FILESYSTEM_NAMES.has(fields[separator + 1])) return false;
    }
    return true;
  } catch {
    return false;
  }
}
