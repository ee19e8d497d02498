/**
 * What `riakfs ls` does (src/cli/ls.ts defines the command; this loads when it runs).
 *
 * @module
 */
import type { Command } from "commander";
import { childPath, displayBytes, normalizePath } from "../store/path.ts";
import { storePathArgument } from "./raw_args.ts";
import { runWithStore } from "./riak-session.ts";
import { formatMode, formatTime, statToJson } from "./stat_action.ts";

/** Lists the directory `path` in Riak on stdout, as text, `--long` lines or JSON. */
export function listDirectory(
  command: Command,
  path: string,
  opts: Record<string, unknown>,
): Promise<void> {
  return runWithStore(command, opts, async (store, out) => {
    const directory = normalizePath(storePathArgument(path).path);
    let count = 0;
    if (opts.json) await out("[");
    for await (const entry of store.list(directory)) {
      const name = displayBytes(entry.name);
      const suffix = entry.type === "directory" ? "/" : "";
      const stat = opts.long ? await store.stat(childPath(directory, entry.name)) : undefined;
      if (opts.json) {
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
    if (opts.json) await out(count === 0 ? "]\n" : "\n]\n");
  });
}
