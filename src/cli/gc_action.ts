/**
 * What `riakfs gc` does (src/cli/gc.ts defines the command; this loads when it runs).
 *
 * @module
 */
import type { Command } from "commander";
import { collectGarbage } from "../store/gc.ts";
import { runWithStore } from "./riak-session.ts";

/**
 * Finds (with `--delete` removes) unreferenced chunks older than `minAge` seconds and orphan
 * entries; reports.
 */
export function collectGarbageCommand(
  command: Command,
  minAge: number,
  opts: Record<string, unknown>,
): Promise<void> {
  return runWithStore(command, opts, async (store, out) => {
    const report = await collectGarbage(store, {
      delete: opts.delete === true,
      minAgeMs: minAge * 1000,
    });
    const garbageChunks = report.garbage.reduce((sum, g) => sum + g.keys.length, 0);
    if (opts.json) {
      await out(
        JSON.stringify({ ...report, garbageChunks, dryRun: opts.delete !== true }) + "\n",
      );
      return;
    }
    const lines = [
      `manifests: ${report.manifests}`,
      `chunks in ${store.namespace.chunkBucket}: ${report.chunks}`,
      `unreferenced: ${garbageChunks} chunks of ${report.garbage.length} generations`,
      ...report.garbage.map((g) => `  ${g.generation} (${g.keys.length} chunks)`),
      `left alone (younger than ${minAge} s): ${report.recent.length} generations`,
      `orphan entries (listed, nothing stored): ${report.orphanEntries.length}`,
      ...report.orphanEntries.map((o) => `  ${o.path}${o.type === "directory" ? "/" : ""}`),
      opts.delete === true
        ? `deleted: ${report.deleted} chunks, ${report.deletedEntries} entries`
        : "dry run: nothing deleted (use --delete)",
    ];
    await out(lines.join("\n") + "\n");
  });
}
