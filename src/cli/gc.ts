/**
 * `riakfs gc`: finds chunks no manifest references and, with `--delete`, removes them.
 * Dry run by default. Lists the chunk bucket's keys: an administrative scan of the cluster.
 *
 * @module
 */
import type { Command } from "commander";
import { collectGarbage, DEFAULT_GC_MIN_AGE_MS } from "../store/gc.ts";
import { addRiakOptions, runWithStore } from "./riak-options.ts";

/** Installs `riakfs gc`. */
export function installGc(program: Command): void {
  const command = program.command("gc")
    .description("find (and with --delete remove) chunks that no file references")
    .option("--delete", "delete what was found (default: only report)")
    .option(
      "--min-age <seconds>",
      "leave generations younger than this alone (uploads in progress)",
      String(DEFAULT_GC_MIN_AGE_MS / 1000),
    )
    .option("--json", "print JSON");
  addRiakOptions(command).action((opts: Record<string, unknown>) => {
    const minAge = Number(opts.minAge);
    if (!Number.isFinite(minAge) || minAge < 0) {
      command.error(`riakfs: --min-age must be a number of seconds, got ${opts.minAge}`, {
        exitCode: 2,
      });
    }
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
        opts.delete === true
          ? `deleted: ${report.deleted} chunks`
          : "dry run: nothing deleted (use --delete)",
      ];
      await out(lines.join("\n") + "\n");
    });
  });
}
