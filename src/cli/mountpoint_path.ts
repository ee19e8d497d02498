/**
 * The MOUNTPOINT argument of `umount` and `status` as the mount table names it.
 *
 * @module
 */
import { lstatSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { readMounts } from "../fuse/mod.ts";

/**
 * `argument` made absolute, with symlinks to the mountpoint followed (`/data -> /srv/data`),
 * without ever stat(2)ing through a mount, which may be dead or hung: a path the mount table
 * lists is taken as it is, and only what is not a mountpoint is looked at.
 *
 * @example
 * ```ts
 * await mountpointPath("/data"); // "/srv/data" when /data is a symlink to the mount
 * ```
 */
export async function mountpointPath(argument: string): Promise<string> {
  const mounted = new Set((await readMounts()).map((mount) => mount.mountpoint));
  let path = resolve(argument);
  for (let hops = 0; hops < 40 && !mounted.has(path); hops++) {
    try {
      path = join(realpathSync(dirname(path)), basename(path));
      if (mounted.has(path) || !lstatSync(path).isSymbolicLink()) break;
      path = resolve(dirname(path), readlinkSync(path));
    } catch {
      break; // Missing, unreadable: the caller says it is no mount.
    }
  }
  return path;
}
