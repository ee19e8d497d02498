/**
 * What `riakfs ls` does (src/cli/ls.ts defines the command; this loads when it runs).
 *
 * @module
 */
import type { Command } from "commander";
import type { DirEntry, FileStat } from "../store/store.ts";
import { childPath, displayBytes, normalizePath } from "../store/path.ts";
import { mapAhead } from "../util/map_ahead.ts";
import { storePathArgument } from "./raw_args.ts";
import { runWithStore } from "./riak-session.ts";
import type { Output } from "./stdout.ts";
import { formatMode, formatTime, statToJson } from "./stat_action.ts";

/**
 * Entries of a `--long` listing whose attributes are asked of Riak at once: each is a round
 * trip or two, which one after the other took 10-20 s for 10,000 entries at 1-2 ms an answer.
 * As many as one node's connections by default, so one listing does not queue behind itself.
 */
export const LONG_LISTING_STATS_AT_ONCE = 16;

/** Lists the directory `path` in Riak on stdout, as text, `--long` lines or JSON. */
export function listDirectory(
  command: Command,
  path: string,
  opts: Record<string, unknown>,
): Promise<void> {
  return runWithStore(
    command,
    opts,
    (store, out) =>
      writeListing(store, normalizePath(storePathArgument(path).path), {
        long: opts.long === true,
        json: opts.json === true,
      }, out),
  );
}

/**
 * Writes the entries of `directory` to `out` in the listing's order, as they come: names,
 * `long` lines (with the attributes of each entry, `statsAtOnce` asked at once, default
 * {@link LONG_LISTING_STATS_AT_ONCE}) or a JSON array. A failure ends the output where one
 * stat after the other would have: after the entries before the one that failed.
 */
export async function writeListing(
  store: {
    list(path: Buffer): AsyncIterable<DirEntry>;
    stat(path: Buffer): Promise<FileStat>;
  },
  directory: Buffer,
  options: { long: boolean; json: boolean; statsAtOnce?: number },
  out: Output,
): Promise<void> {
  const entries = options.long
    ? mapAhead(
      store.list(directory),
      options.statsAtOnce ?? LONG_LISTING_STATS_AT_ONCE,
      (entry) => store.stat(childPath(directory, entry.name)),
    )
    : mapAhead(store.list(directory), 1, () => Promise.resolve(undefined));
  let count = 0;
  if (options.json) await out("[");
  for await (const [entry, stat] of entries) {
    const name = displayBytes(entry.name);
    const suffix = entry.type === "directory" ? "/" : "";
    if (options.json) {
      const item = stat ? { name, ...statToJson(stat) } : { name, type: entry.type };
      await out((count === 0 ? "\n" : ",\n") + JSON.stringify(item));
    } else if (stat) {
      const size = String(stat.size).padStart(10);
      await out(
        `${formatMode(stat.type, stat.mode)} ${stat.uid} ${stat.gid} ${size} ${
          formatTime(stat.mtimeNs)
        } ${name}${suffix}\n`,
      );
    } else {
      await out(`${name}${suffix}\n`);
    }
    count++;
  }
  if (options.json) await out(count === 0 ? "]\n" : "\n]\n");
}
