/**
 * What `riakfs stat` does (src/cli/stat.ts defines the command; this loads when it runs),
 * and the formatting of a stat that `riakfs ls --long` shares.
 *
 * @module
 */
import type { Command } from "commander";
import type { FileStat } from "../store/store.ts";
import { describeLocation } from "../store/layout.ts";
import { displayPath } from "../store/path.ts";
import { storePathArgument } from "./raw_args.ts";
import { WrongTypeError } from "../store/errors.ts";
import { runWithStore } from "./riak-session.ts";

/** Prints what Riak holds at `path`, as text or JSON. */
export function showStat(
  command: Command,
  path: string,
  opts: Record<string, unknown>,
): Promise<void> {
  return runWithStore(command, opts, async (store, out) => {
    const { path: p, directory } = storePathArgument(path);
    const stat = await store.stat(p);
    if (directory && stat.type !== "directory") {
      throw new WrongTypeError("ENOTDIR", displayPath(p));
    }
    await out(opts.json ? JSON.stringify(statToJson(stat)) + "\n" : formatStat(stat));
  });
}

/** A stat as plain JSON: bigints as strings, the mode in octal, the location as text. */
export function statToJson(stat: FileStat): Record<string, unknown> {
  return {
    path: displayPath(stat.path),
    type: stat.type,
    storage: stat.storage,
    size: stat.size,
    mode: stat.mode.toString(8).padStart(4, "0"),
    uid: stat.uid,
    gid: stat.gid,
    mtimeNs: stat.mtimeNs.toString(),
    mtime: formatTime(stat.mtimeNs),
    sha256: stat.sha256,
    contentType: stat.contentType,
    managed: stat.managed,
    riak: describeLocation(stat.location),
  };
}

/** `ls -l` style permissions: type letter and rwx triplets. */
export function formatMode(type: FileStat["type"], mode: number): string {
  const letter = type === "directory" ? "d" : type === "symlink" ? "l" : "-";
  let bits = "";
  // As ls(1): setuid, setgid and sticky take the execute place of user, group and other.
  for (
    const [shift, special, shown] of [[6, 0o4000, "s"], [3, 0o2000, "s"], [0, 0o1000, "t"]] as const
  ) {
    const triplet = (mode >> shift) & 7;
    const execute = triplet & 1;
    bits += (triplet & 4 ? "r" : "-") + (triplet & 2 ? "w" : "-") +
      (mode & special ? (execute ? shown : shown.toUpperCase()) : execute ? "x" : "-");
  }
  return letter + bits;
}

/** A nanosecond timestamp as ISO 8601 (UTC, milliseconds). */
export function formatTime(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

/**
 * The mtime of `stat` as {@link formatTime} writes it, or `-` for a directory Riak keeps no
 * attributes for (a riak-fuse folder, the root): it has none, and the epoch would be a date.
 */
export function formatMtime(stat: FileStat): string {
  return hasNoAttributes(stat) ? "-" : formatTime(stat.mtimeNs);
}

function hasNoAttributes(stat: FileStat): boolean {
  return stat.type === "directory" && !stat.managed && stat.mtimeNs === 0n;
}

function formatStat(stat: FileStat): string {
  const where = describeLocation(stat.location);
  return [
    `  Path: ${displayPath(stat.path)}`,
    `  Type: ${stat.type}${stat.type === "file" ? ` (${stat.storage})` : ""}`,
    `  Size: ${stat.size}`,
    `  Mode: ${formatMode(stat.type, stat.mode)} (${stat.mode.toString(8).padStart(4, "0")})`,
    ` Owner: ${stat.uid}:${stat.gid}`,
    ` Mtime: ${formatMtime(stat)}` +
    (hasNoAttributes(stat) ? " (Riak keeps no attributes for this directory)" : ""),
    `SHA256: ${stat.sha256}`,
    `  Riak: type ${where.bucketType}, bucket ${where.bucket}, key ${where.key}` +
    (stat.managed ? "" : " (not written by riakfs)"),
    "",
  ].join("\n");
}
