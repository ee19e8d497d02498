/**
 * The errors that say a path is not there, as the source's calls, the store and the
 * overlay's own lookups report them.
 *
 * @module
 */

import { Errno } from "../fuse/filesystem.ts";
import { NotFoundError } from "../store/errors.ts";

/** ENOENT as the overlay's lookups report it (an errno, or the store's NotFoundError). */
export function isNotFound(error: unknown): boolean {
  return error instanceof NotFoundError || (error as { errno?: number }).errno === Errno.ENOENT;
}

/** Whether a call on the source failed because the path is not there (ENOENT). */
export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT";
}

/** Resolves true when the operation succeeded, false when the path did not exist. */
export async function ignoreMissing(operation: Promise<void>): Promise<boolean> {
  try {
    await operation;
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Nothing, for a path below a file or symlink (ENOTDIR); other errors are thrown again. */
export function absentBelowFile(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
  throw error;
}
