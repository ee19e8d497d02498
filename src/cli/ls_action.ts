/**
 * What `riakfs ls` does (src/cli/ls.ts defines the command; this loads when it runs).
 *
 * @module
 */
import type { Command } from "commander";
import { NotFoundError, StoreError, WrongTypeError } from "../store/errors.ts";
import type { DirEntry, FileStat } from "../store/store.ts";
import { childPath, displayBytes, displayPath, normalizePath } from "../store/path.ts";
import { mapAhead } from "../util/map_ahead.ts";
import { argumentBytes, storePathArgument } from "./raw_args.ts";
import { runWithStore } from "./riak-session.ts";
import type { Output } from "./stdout.ts";
import { formatMode, formatMtime, formatTime, statToJson } from "./stat_action.ts";

/**
 * Entries of a `--long` listing whose attributes are asked of Riak at once: each is a round
 * trip or two, which one after the other took 10-20 s for 10,000 entries at 1-2 ms an answer.
 * As many as one node's connections by default, so one listing does not queue behind itself.
 */
export const LONG_LISTING_STATS_AT_ONCE = 16;

/** Lists the directory `path` in Riak on stdout (a file: itself, as ls(1)), as text, `--long` lines or JSON. */
export function listDirectory(
  command: Command,
  path: string,
  opts: Record<string, unknown>,
): Promise<void> {
  const argument = storePathArgument(path);
  const options = { long: opts.long === true, json: opts.json === true };
  return runWithStore(command, opts, async (store, out) => {
    const target = normalizePath(argument.path);
    try {
      await writeListing(store, target, options, out);
    } catch (error) {
      // ls(1) lists a file named as the file itself; `FILE/` still asks for a directory.
      const notADirectory = error instanceof WrongTypeError && error.code === "ENOTDIR";
      if (!notADirectory || argument.directory) throw error;
      const stat = await store.stat(target);
      const name = displayBytes(argumentBytes(path));
      await out(
        entryText(name, stat.type, options.long ? stat : undefined, 0, options) +
          (options.json ? "\n]\n" : ""),
      );
    }
  });
}

/**
 * Entries a `--long` listing found listed with nothing stored behind them (orphan entries:
 * `riakfs gc --delete` removes them), raised once every other entry was written, as ls(1)
 * lists what it can and exits non-zero for what it cannot stat.
 */
export class ListedNotStoredError extends StoreError {
  constructor(paths: readonly string[]) {
    super(
      "ENOENT",
      `${paths.length} ${paths.length === 1 ? "entry" : "entries"} listed with nothing stored ` +
        `(${paths.slice(0, 3).join(", ")}${paths.length > 3 ? ", ..." : ""}): ` +
        "orphan entries, which `riakfs gc --delete` removes",
      { path: paths[0] },
    );
  }
}

/** What a `--long` listing shows of an entry whose stat found nothing stored. */
const NOT_STORED = Symbol("listed, nothing stored");

/**
 * Writes the entries of `directory` to `out` in the listing's order, as they come: names,
 * `long` lines (with the attributes of each entry, `statsAtOnce` asked at once, default
 * {@link LONG_LISTING_STATS_AT_ONCE}) or a JSON array. An entry with nothing stored behind it
 * is written with question marks for its attributes (`"stored": false` in JSON) and
 * {@link ListedNotStoredError} is thrown at the end. Any other failure ends the output where
 * one stat after the other would have: after the entries before the one that failed.
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
      (entry) =>
        store.stat(childPath(directory, entry.name)).catch((error): typeof NOT_STORED => {
          if (error instanceof NotFoundError) return NOT_STORED;
          throw error;
        }),
    )
    : mapAhead(store.list(directory), 1, () => Promise.resolve(undefined));
  let count = 0;
  const notStored: string[] = [];
  // "[" goes with the first entry: a path that is no directory fails before any output.
  for await (const [entry, stat] of entries) {
    if (stat === NOT_STORED) notStored.push(displayPath(childPath(directory, entry.name)));
    await out(entryText(displayBytes(entry.name), entry.type, stat, count, options));
    count++;
  }
  if (options.json) await out(count === 0 ? "[]\n" : "\n]\n");
  if (notStored.length > 0) throw new ListedNotStoredError(notStored);
}

/**
 * One entry of a listing as written: a name, a `long` line, or a JSON item (`index` 0 opens
 * the array).
 */
function entryText(
  name: string,
  type: DirEntry["type"],
  stat: FileStat | typeof NOT_STORED | undefined,
  index: number,
  options: { long: boolean; json: boolean },
): string {
  const suffix = type === "directory" ? "/" : "";
  const separator = index === 0 ? "[\n" : ",\n";
  if (stat === NOT_STORED) {
    return options.json
      ? separator + JSON.stringify({ name, type, stored: false })
      : `?????????? ? ? ${"?".padStart(10)} ? ${name}${suffix}\n`;
  }
  if (options.json) {
    return separator + JSON.stringify(stat ? { name, ...statToJson(stat) } : { name, type });
  }
  if (!stat) return `${name}${suffix}\n`;
  const size = String(stat.size).padStart(10);
  // As wide as a time, so the names stay in one column.
  const time = formatMtime(stat).padEnd(formatTime(0n).length);
  return `${
    formatMode(stat.type, stat.mode)
  } ${stat.uid} ${stat.gid} ${size} ${time} ${name}${suffix}\n`;
}
