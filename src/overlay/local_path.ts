/**
 * Paths of the overlay's files in its source directory that never leave the source. The
 * overlay names nodes by path, and a union with Riak can present a directory where the
 * source holds a symlink (source/dir -> /etc), so joining the path onto the source would
 * let the system follow that symlink out of it. Like the passthrough, which only ever
 * builds paths from components it saw with lstat, the overlay never resolves through a
 * symlinked directory: {@link localPathBeneath} checks that every existing directory
 * component of the path is a real directory inside the source; the last component is
 * used with lstat semantics by the callers (lstat, O_NOFOLLOW, readlink, unlink). That
 * check is a realpath(3) of the path's directory on every call: with a `pace` it blocks
 * while such calls are quick.
 *
 * A symlink swapped in between the check and the use is not caught (the passthrough has
 * the same window); the check is against what is in the source, not against its owner.
 *
 * @module
 */
import { realpathSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { BlockingWhileFast } from "../util/blocking_while_fast.ts";

/**
 * `path` would resolve through a symlink (or `..`) out of the source. Carries `code`
 * ENOENT: seen from the source, nothing exists at such a path, so reads treat it as not
 * local, deletions delete nothing and writes fail.
 */
export class OutsideSourceError extends Error {
  /** Node-style error code: the FUSE layer answers ENOENT. */
  readonly code = "ENOENT";
  /** The overlay path asked for. */
  readonly path: string;

  constructor(path: string, through: string) {
    super(`${path}: not followed out of the source through the symlink at ${through}`);
    this.name = "OutsideSourceError";
    this.path = path;
  }
}

/** Real paths of sources, resolved once: a mount's source does not move. */
const realSources = new Map<string, Promise<string>>();

/**
 * The local path of overlay path `path` ("/" = the source itself) in `source`,
 * after checking that no directory component on the way is a symlink or `..`. Components
 * that do not exist yet are fine (creating them creates them inside the source). With
 * `directory`, `path` itself is checked too (to list it: readdir follows a symlink).
 *
 * @example
 * ```ts
 * await localPathBeneath("/srv/legacy", "/a/b.txt"); // "/srv/legacy/a/b.txt"
 * // with /srv/legacy/dir -> /etc:
 * await localPathBeneath("/srv/legacy", "/dir/passwd"); // throws OutsideSourceError
 * ```
 */
export async function localPathBeneath(
  source: string,
  path: string,
  options: { directory?: boolean; pace?: BlockingWhileFast } = {},
): Promise<string> {
  if (path.split("/").some((part) => part === "." || part === "..")) {
    throw new OutsideSourceError(path, path);
  }
  if (!path.startsWith("/")) path = `/${path}`;
  const local = path === "/" ? source : join(source, path);
  let realSource = realSources.get(source);
  if (!realSource) {
    realSource = realpath(source);
    realSources.set(source, realSource);
    realSource.catch(() => realSources.delete(source));
  }
  const root = await realSource;
  // The deepest existing directory on the way decides: realpath sees every symlink in it.
  const first = options.directory ? path : dirname(path);
  for (let directory = first; directory !== "/"; directory = dirname(directory)) {
    let real: string;
    try {
      const onDisk = join(source, directory);
      real = options.pace
        ? await options.pace.run(() => realpathSync.native(onDisk), () => realpath(onDisk))
        : await realpath(onDisk);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue; // Not there (yet): look higher.
      // A symlink that leads back to itself (a -> a, or round two links) is no directory of
      // the source either.
      if (code === "ELOOP") throw new OutsideSourceError(path, directory);
      throw error;
    }
    if (real !== join(root, directory)) throw new OutsideSourceError(path, directory);
    return local;
  }
  return local;
}
