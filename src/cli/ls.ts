/**
 * `riakfs ls PATH`: the entries of a directory as Riak holds them, read shard by shard.
 *
 * @module
 */
import type { Command } from "commander";
import { childPath, displayBytes, normalizePath } from "../store/path.ts";
import { addRiakOptions, runWithStore } from "./riak-options.ts";
import { formatMode, formatTime, statToJson } from "./stat.ts";

/** Installs `riakfs ls`. */
export function installLs(program: Command): void {
  const command = program.command("ls")
    .description("list a directory in Riak")
    .argument("[path]", "directory relative to the migrated root", "")
    .option("-l, --long", "show type, mode, owner, size and mtime of each entry")
    .option("--json", "print a JSON array");
  addRiakOptions(command).action((path: string, opts: Record<string, unknown>) =>
    runWithStore(command, opts, async (store, out) => {
      const directory = normalizePath(path);
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
    })
  );
}
