/**
 * `riakfs prewarm SOURCE`: the cron job that copies into Riak every file applications have
 * not touched yet, through the same store code as the mount. Exit codes: 0 complete, 1 some
 * files failed (listed), 2 usage error, 3 partial (budget reached; the next run resumes),
 * 4 another run holds the lock.
 *
 * Also holds the options `progress` and `verify` share with it (state directory, globs).
 *
 * @module
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { Namespace } from "../store/layout.ts";
import { PathFilter } from "../migration/glob.ts";
import { parseDuration } from "../migration/limits.ts";
import { LockedError } from "../migration/lock.ts";
import {
  DEFAULT_CONCURRENCY,
  EXIT_LOCKED,
  type LiveRun,
  type PrewarmEvent,
  type PrewarmResult,
  runPrewarm,
} from "../migration/prewarm.ts";
import {
  formatBytes,
  formatDuration,
  formatRate,
  ProgressReporter,
} from "../migration/progress_reporter.ts";
import { DEFAULT_STATE_ROOT, StateDirectory } from "../migration/state.ts";
import { addRiakOptions, runWithStore } from "./riak-options.ts";

/** Default seconds between progress lines on a non-terminal. */
export const DEFAULT_PROGRESS_INTERVAL_S = 60;

/** Installs `riakfs prewarm`. */
export function installPrewarm(program: Command): void {
  const command = program.command("prewarm")
    .description("copy into Riak every file it lacks or holds in another version (for cron)")
    .argument("<source>", "the local directory being migrated")
    .addOption(
      new Option("--concurrency <n>", "files in flight").argParser(positiveInteger)
        .default(DEFAULT_CONCURRENCY),
    )
    .addOption(new Option("--max-rate <MB/s>", "upload rate limit").argParser(positiveNumber))
    .addOption(new Option("--max-files <n>", "upload at most n files").argParser(positiveInteger))
    .addOption(
      new Option("--time-budget <duration>", "stop cleanly after e.g. 2h, 90m (exit 3)")
        .argParser(duration),
    )
    .option("--checksum", "compare sha256 when size and mtime match")
    .option("--dry-run", "print what would be uploaded and the totals; change nothing")
    .option("--delete-local", "drain: delete each local file once its Riak copy is verified")
    .option("--json", "print a JSON summary")
    .addOption(
      new Option("--progress-interval <seconds>", "seconds between progress lines (non-terminal)")
        .argParser(positiveNumber).default(DEFAULT_PROGRESS_INTERVAL_S),
    );
  addMigrationOptions(command);
  command.addHelpText(
    "after",
    "\nExit codes: 0 complete, 1 some files failed (listed), 2 usage error,\n" +
      "3 partial (budget reached or interrupted; the next run resumes), 4 another run holds the lock.",
  );
  addRiakOptions(command).action((sourceArg: string, opts: Record<string, unknown>) => {
    const source = sourceDirectory(command, sourceArg);
    const filter = filterFromOptions(command, opts);
    return runWithStore(command, opts, async (store, out) => {
      const state = stateDirectoryFor(source, store.namespace, opts);
      const json = opts.json === true;
      const lines = json ? process.stderr : process.stdout;
      const reporter = new ProgressReporter({
        sink: process.stderr.isTTY ? process.stderr : lines,
        label: "riakfs prewarm",
        intervalMs: Number(opts.progressInterval) * 1000,
      });
      const onEvent = (event: PrewarmEvent) => {
        if (event.kind === "would-upload") {
          lines.write(`would upload ${event.path} (${event.reason}, ${event.bytes} bytes)\n`);
        } else if (event.kind === "would-create-directory") {
          lines.write(`would create directory ${event.path}\n`);
        }
      };
      // SIGINT/SIGTERM stop the run cleanly (exit 3, resumable); a second one kills it.
      const interruption = new AbortController();
      const interrupt = () => interruption.abort();
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      let result: PrewarmResult;
      try {
        result = await runPrewarm({
          source,
          store,
          state,
          filter,
          concurrency: opts.concurrency as number,
          maxBytesPerSecond: opts.maxRate === undefined ? undefined : Number(opts.maxRate) * 1e6,
          maxFiles: opts.maxFiles as number | undefined,
          budgetMs: opts.timeBudget as number | undefined,
          checksum: opts.checksum === true,
          dryRun: opts.dryRun === true,
          deleteLocal: opts.deleteLocal === true,
          onEvent,
          signal: interruption.signal,
          onStart: (live: LiveRun) =>
            reporter.start(() => ({
              tally: live.tally,
              elapsedMs: Date.now() - live.startedAt,
              expectedFiles: live.expectedFiles,
            })),
        });
      } catch (error) {
        if (error instanceof LockedError) {
          process.stderr.write(`riakfs prewarm: ${error.message}\n`);
          process.exitCode = EXIT_LOCKED;
          return;
        }
        throw error;
      } finally {
        reporter.stop();
        process.off("SIGINT", interrupt);
        process.off("SIGTERM", interrupt);
      }
      await out(
        json ? JSON.stringify(prewarmResultToJson(result, source, state)) + "\n" : summary(result),
      );
      process.exitCode = result.exitCode;
    });
  });
}

/** The summary printed at the end of a run. */
function summary(result: PrewarmResult): string {
  const t = result.tally;
  const elapsed = Date.parse(result.endedAt) - Date.parse(result.startedAt);
  const outcome = result.outcome === "partial"
    ? `partial (${result.stopReason ?? "stopped"} reached; the next run resumes)`
    : result.outcome;
  const lines = [
    `riakfs prewarm: ${result.dryRun ? "dry run " : ""}${outcome} in ${formatDuration(elapsed)}: ` +
    `${t.seen.files} files checked (${formatBytes(t.seen.bytes)}), ` +
    (result.dryRun
      ? `${t.missing.files} missing in Riak, ${t.differing.files} differing ` +
        `(${formatBytes(t.missing.bytes + t.differing.bytes)} to upload), `
      : `${t.uploaded.files} uploaded (${formatBytes(t.uploaded.bytes)}, ` +
        `${formatRate(t.uploaded.bytes, elapsed)}), `) +
    `${t.inRiak.files - t.uploaded.files} already in Riak, ` +
    (t.newerInRiak.files > 0 ? `${t.newerInRiak.files} newer in Riak (left alone), ` : "") +
    (t.deleted.files > 0 ? `${t.deleted.files} local copies deleted, ` : "") +
    `${t.failed.files} failed`,
  ];
  for (const failure of result.failures) lines.push(`failed: ${failure.path}: ${failure.error}`);
  if (t.failed.files > result.failures.length) {
    lines.push(`(${t.failed.files - result.failures.length} more failures not listed)`);
  }
  for (const path of result.busy) {
    lines.push(`skipped (changed while being uploaded; the next run retries): ${path}`);
  }
  return lines.join("\n") + "\n";
}

/** The `--json` form of a result. */
export function prewarmResultToJson(
  result: PrewarmResult,
  source: string,
  state: StateDirectory,
): Record<string, unknown> {
  return { command: "prewarm", source, stateDir: state.path, ...result };
}

/** Adds `--state-dir`, `--include` and `--exclude`, shared by prewarm, progress and verify. */
export function addMigrationOptions(command: Command): Command {
  return command
    .option(
      "--state-dir <dir>",
      `where lock, state and history live (default ${DEFAULT_STATE_ROOT}/<hash of source and namespace>)`,
    )
    .option("--include <glob>", "only files matching (repeatable)", collect, [] as string[])
    .option(
      "--exclude <glob>",
      "skip files and directories matching (repeatable)",
      collect,
      [] as string[],
    );
}

/** The state directory for a source and namespace (or `--state-dir`). */
export function stateDirectoryFor(
  source: string,
  namespace: Namespace,
  opts: Record<string, unknown>,
): StateDirectory {
  if (typeof opts.stateDir === "string") return new StateDirectory(opts.stateDir);
  const key = [namespace.bucketType, namespace.bucket, namespace.preset].join("\0");
  return StateDirectory.for(source, key);
}

/** The globs as a filter; a bad glob is a usage error. */
export function filterFromOptions(command: Command, opts: Record<string, unknown>): PathFilter {
  try {
    return new PathFilter(opts.include as string[], opts.exclude as string[]);
  } catch (error) {
    command.error(`riakfs: ${(error as Error).message}`, { exitCode: 2 });
  }
}

/** The source as an absolute path; not a directory is a usage error. */
export function sourceDirectory(command: Command, source: string): string {
  const absolute = resolve(source);
  let ok = false;
  try {
    ok = statSync(absolute).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) command.error(`riakfs: ${source} is not a directory`, { exitCode: 2 });
  return absolute;
}

/** commander parser: a whole number >= 1. */
export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError("must be a whole number of at least 1");
  }
  return number;
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError("must be positive");
  return number;
}

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
