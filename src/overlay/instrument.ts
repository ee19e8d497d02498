/**
 * Counting for any filesystem: wraps every operation so it is counted by name in the
 * mount's metrics, and every failure by errno name. Used for the overlay and for the
 * passthrough preset alike, so `riakfs status` reads the same counters for every mode.
 *
 * @module
 */
import type { FileSystem } from "../fuse/filesystem.ts";
import { FuseError } from "../fuse/filesystem.ts";
import { Errno } from "../fuse/filesystem.ts";
import type { MountMetrics } from "./metrics.ts";

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(Errno).map(([name, value]) => [value, name]),
);

/** The errno name of an error as the FUSE session would answer it. */
export function errnoName(error: unknown): string {
  if (error instanceof FuseError) return ERRNO_NAMES.get(error.errno) ?? `errno ${error.errno}`;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : "EIO";
}

/**
 * A filesystem whose operations are counted in `metrics`; `forget` is counted without
 * being awaited (FORGET has no reply).
 *
 * @example
 * ```ts
 * const counted = instrument(await openPassthrough(source), metrics);
 * ```
 */
export function instrument(fs: FileSystem, metrics: MountMetrics): FileSystem {
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
    if (name === "constructor") continue;
    const method = (fs as unknown as Record<string, unknown>)[name];
    if (typeof method !== "function") continue;
    wrapped[name] = (...args: unknown[]) => {
      metrics.countOp(name);
      try {
        const result = method.apply(fs, args);
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            metrics.countError(errnoName(error));
            throw error;
          });
        }
        return result;
      } catch (error) {
        metrics.countError(errnoName(error));
        throw error;
      }
    };
  }
  return wrapped as FileSystem;
}
