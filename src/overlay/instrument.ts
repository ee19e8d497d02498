/**
 * Counting for any filesystem: wraps every operation so it is counted by name in the
 * mount's metrics, and every failure by errno name. Used for the overlay and for the
 * passthrough preset alike, so `riakfs status` reads the same counters for every mode.
 *
 * @module
 */
import type { FileSystem, ReaderCounts } from "../fuse/filesystem.ts";
import { FuseError } from "../fuse/filesystem.ts";
import { Errno } from "../fuse/filesystem.ts";
import type { MountMetrics } from "./metrics.ts";
import type { NoRoomReport } from "./no_room_report.ts";

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(Errno).map(([name, value]) => [value, name]),
);

/** The name of an errno value (`ENOENT`), or `errno N` for one riakfs has no name for. */
function nameOfErrno(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** The errno name of an error as the FUSE session would answer it. */
export function errnoName(error: unknown): string {
  if (error instanceof FuseError) return nameOfErrno(error.errno);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : "EIO";
}

/** Errno names that mean the disk has no room (see {@link NoRoomReport}). */
const NO_ROOM = new Set(["ENOSPC", "EDQUOT"]);

/**
 * A filesystem whose operations are counted in `metrics`; `forget` is counted without
 * being awaited (FORGET has no reply). Failures for lack of room also go to `noRoom`, which
 * logs them once a minute. What the FUSE reader threads answer without calling
 * the filesystem (see `FileSystem.attachReaderCounts`) is added to the same counters (and
 * their bytes to `bytesReadLocal` and `bytesWritten`) before each snapshot.
 *
 * @example
 * ```ts
 * const counted = instrument(await openPassthrough(source), metrics);
 * ```
 */
export function instrument(
  fs: FileSystem,
  metrics: MountMetrics,
  noRoom?: NoRoomReport,
): FileSystem {
  const failed = (operation: string, error: unknown) => {
    const name = errnoName(error);
    metrics.countError(name);
    if (noRoom && NO_ROOM.has(name)) noRoom.refused(operation, (error as Error).message);
  };
  const wrapped: Record<string, unknown> = {};
  // Methods may live on a class prototype: walk the chain for every function.
  const names = new Set<string>();
  for (
    let proto = fs as object | null;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) names.add(name);
  }
  for (const name of names) {
    if (name === "constructor" || name === "attachReaderCounts") continue;
    const method = (fs as unknown as Record<string, unknown>)[name];
    if (typeof method !== "function") continue;
    if (name.startsWith("attach")) {
      // Called once by the session when serving starts: not an operation.
      wrapped[name] = method.bind(fs);
      continue;
    }
    wrapped[name] = (...args: unknown[]) => {
      metrics.countOp(name);
      try {
        const result = method.apply(fs, args);
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            failed(name, error);
            throw error;
          });
        }
        return result;
      } catch (error) {
        failed(name, error);
        throw error;
      }
    };
  }
  const counted = wrapped as FileSystem;
  counted.attachReaderCounts = (counts) => {
    countReaderAnswers(counts, metrics);
    noRoom?.watchReaders(counts);
    fs.attachReaderCounts?.(counts);
  };
  return counted;
}

/** Adds what the reader threads answered since the last snapshot to `metrics`. */
function countReaderAnswers(counts: () => ReaderCounts, metrics: MountMetrics): void {
  let last: ReaderCounts = { ops: {}, errnos: new Map(), bytesRead: 0, bytesWritten: 0 };
  metrics.onSnapshot(() => {
    const now = counts();
    const value = metrics.value;
    for (const [op, count] of Object.entries(now.ops)) {
      value.ops[op] = (value.ops[op] ?? 0) + count - (last.ops[op] ?? 0);
      value.opsInReaders[op] = count;
    }
    for (const [errno, count] of now.errnos) {
      const name = nameOfErrno(errno);
      value.errors[name] = (value.errors[name] ?? 0) + count - (last.errnos.get(errno) ?? 0);
    }
    value.bytesReadLocal += now.bytesRead - last.bytesRead;
    value.bytesWritten += now.bytesWritten - last.bytesWritten;
    last = now;
  });
}
