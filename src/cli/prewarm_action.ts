/**
 * What `riakfs prewarm` does (src/cli/prewarm.ts defines the command; this loads when it
 * runs).
 *
 * @module
 */
import type { Command } from "commander";
import { LockedError } from "../util/lock.ts";
import {
  EXIT_LOCKED,
  failedEntries,
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
import type { StateDirectory } from "../migration/state.ts";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";
import {
  recordedModeDeletingLocal,
  recordedModeHidingDrained,
  recordedNamespaceOtherThan,
} from "../overlay/spool_record.ts";
import { type Namespace, placementNames } from "../store/layout.ts";
import { join } from "node:path";
import { filterFromOptions, sourceDirectory, stateDirectoryFor } from "./migration-settings.ts";
import { runWithStore } from "./riak-session.ts";
import { StdoutWriteError } from "./stdout.ts";

/** Runs one pre-warm pass of `sourceArg`, printing progress and a summary; sets the exit code. */
export async function prewarmCommand(
  command: Command,
  sourceArg: string,
  opts: Record<string, unknown>,
): Promise<void> {
  const source = await sourceDirectory(command, sourceArg);
  const filter = filterFromOptions(command, opts);
  return await runWithStore(command, opts, async (store, out, riak) => {
    if (opts.deleteLocal === true) {
      refuseOtherMountsNamespace(command, source, store.namespace);
      refuseMountsHidingDrained(command, source);
    }
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
      } else if (event.kind === "would-update-attributes") {
        lines.write(`would update the mode/owner of ${event.path} (${event.difference})\n`);
      } else if (event.kind === "would-create-directory") {
        lines.write(`would create directory ${event.path}\n`);
      } else if (event.kind === "removed-elsewhere") {
        const done = event.dryRun ? "would remove" : "removed";
        lines.write(
          `${done} the local directory ${event.path}: emptied by the drain, and another host ` +
            "removed it from Riak since\n",
        );
      } else if (event.kind === "relisted") {
        lines.write(`in Riak without its directory entry, entry added: ${event.path}\n`);
      } else if (event.kind === "globs-changed") {
        const shown = (globs: { include: string[]; exclude: string[] }) =>
          `--include ${JSON.stringify(globs.include)} --exclude ${JSON.stringify(globs.exclude)}`;
        lines.write(
          `the pass in progress was walked with other globs (${shown(event.before)}, now ` +
            `${shown(event.now)}); starting a new pass\n`,
        );
      } else if (event.kind === "state-not-saved") {
        lines.write(
          `the disk of the state directory ${event.directory} is full: the run goes on, ` +
            "and is recorded at its end if there is room by then\n",
        );
      } else if (event.kind === "unfinished-run") {
        lines.write(
          `the last run (started ${event.startedAt}, last seen ${event.lastSeen}) did not ` +
            "finish: killed, crashed or its host went down; recorded in the history as unfinished\n",
        );
      } else if (event.kind === "set-aside") {
        lines.write(
          event.restored
            ? `put back under its name (its deletion was interrupted): ${event.path}\n`
            : `kept set aside by an interrupted deletion (its name holds another file; look at ` +
              `it, then move or remove it): ${event.path}\n`,
        );
      } else if (event.kind === "kept-active") {
        lines.write(`local copy kept (in use): ${event.detail}\n`);
      } else if (event.kind === "mount-point") {
        lines.write(`skipped (another filesystem is mounted here; not crossed): ${event.path}\n`);
      } else if (event.kind === "special") {
        lines.write(
          `skipped (a ${event.type}; Riak holds only files, symlinks and directories): ` +
            `${event.path}\n`,
        );
      }
    };
    // SIGINT/SIGTERM stop the run cleanly (exit 3, resumable); a second one kills it.
    const interruption = new AbortController();
    const interrupt = () => {
      process.stderr.write(
        "riakfs prewarm: interrupted; stopping (what is under way is left for the next run)\n",
      );
      interruption.abort();
    };
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
        drainedElsewhere: recordedModeDeletingLocal(join(source, SPOOL_DIRECTORY_NAME)),
        inUse: { quietPeriodMs: Number(opts.deleteQuietPeriod) * 1000 },
        onEvent,
        signal: interruption.signal,
        whenRiakReachable: (timeoutMs) => riak.cluster.whenReachable(timeoutMs),
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
        if (json) {
          const locked = { outcome: "locked", exitCode: EXIT_LOCKED, error: error.message };
          await out(
            `${JSON.stringify({ command: "prewarm", source, stateDir: state.path, ...locked })}\n`,
          );
        }
        process.exitCode = EXIT_LOCKED;
        return;
      }
      throw error;
    } finally {
      reporter.stop();
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
    }
    process.exitCode = result.exitCode;
    if (result.notRecorded) {
      lines.write(
        `the disk of the state directory ${state.path} is still full: this run is not ` +
          "recorded (resume point, retry list, history); the next run checks its files again\n",
      );
    }
    try {
      await out(
        json ? JSON.stringify(prewarmResultToJson(result, source, state)) + "\n" : summary(result),
      );
    } catch (error) {
      // The run's outcome is its exit code (and its record in the history), whether or not
      // its summary could be printed: a full disk behind `> log` is what a drain empties.
      if (!(error instanceof StdoutWriteError)) throw error;
      process.stderr.write(`riakfs prewarm: ${error.message}\n`);
    }
  });
}

/**
 * Ends the command (exit 2) when a mount of SOURCE recorded another namespace in its spool
 * (SOURCE/.riakfs-spool/namespace) than the one given: deleting the local copies the mount
 * serves, verified in another bucket, would empty the mount for its applications (a typo in
 * --bucket, a cron job without the mount's --config).
 */
function refuseOtherMountsNamespace(command: Command, source: string, namespace: Namespace): void {
  const spool = join(source, SPOOL_DIRECTORY_NAME);
  const other = recordedNamespaceOtherThan(spool, placementNames(namespace));
  if (other === undefined) return;
  command.error(
    `riakfs prewarm: --delete-local refused: the mount of ${source} serves ${other.recorded} ` +
      `(${join(spool, "namespace")}), not ${other.given}; give the mount's namespace`,
    { exitCode: 2 },
  );
}

/**
 * Ends the command (exit 2) when the mount SOURCE's spool records reads or lists the local
 * files alone (riak-fuse's line without -dell is a shadow mount): the files whose local copies
 * go would vanish from it for its applications, though safe in Riak.
 */
function refuseMountsHidingDrained(command: Command, source: string): void {
  const spool = join(source, SPOOL_DIRECTORY_NAME);
  const hiding = recordedModeHidingDrained(spool);
  if (hiding === undefined) return;
  command.error(
    `riakfs prewarm: --delete-local refused: the mount of ${source} (${hiding.mode}, ` +
      `${join(spool, "namespace")}) would no longer show the files whose local copies go: ` +
      `${hiding.reason}; mount it with --preset drain (riak-fuse's -dell) first, or run ` +
      "without --delete-local",
    { exitCode: 2 },
  );
}

/** The summary printed at the end of a run. */
function summary(result: PrewarmResult): string {
  const t = result.tally;
  const elapsed = Date.parse(result.endedAt) - Date.parse(result.startedAt);
  const outcome = result.outcome !== "partial"
    ? result.outcome
    : result.stopReason === undefined && result.busy.length > 0
    ? `partial (${result.busy.length} files kept changing; the next run retries them)`
    : result.stopReason === undefined && result.keptActive.length > 0
    ? `partial (${result.keptActive.length} local copies kept while in use; ` +
      "the next run retries them)"
    : `partial (${stopWording(result.stopReason)}; the next run resumes)`;
  const lines = [
    `riakfs prewarm: ${result.dryRun ? "dry run " : ""}${outcome} in ${formatDuration(elapsed)}: ` +
    `${t.seen.files} files checked (${formatBytes(t.seen.bytes)}), ` +
    (result.dryRun
      ? `${t.missing.files} missing in Riak, ${t.differing.files} differing ` +
        `(${formatBytes(t.missing.bytes + t.differing.bytes)} to upload), `
      : `${t.uploaded.files} uploaded (${formatBytes(t.uploaded.bytes)}, ` +
        `${formatRate(t.uploaded.bytes, elapsed)}), `) +
    `${t.inRiak.files - t.uploaded.files} already in Riak, ` +
    (t.attributesUpdated.files > 0
      ? `${t.attributesUpdated.files} with their mode/owner updated in Riak, `
      : "") +
    (t.newerInRiak.files > 0 ? `${t.newerInRiak.files} newer in Riak (left alone), ` : "") +
    (t.deleted.files > 0 ? `${t.deleted.files} local copies deleted, ` : "") +
    (t.keptActive.files > 0
      ? `${t.keptActive.files} local copies kept (open for writing or changed lately), `
      : "") +
    `${t.failed.files} failed` +
    (t.failedDirectories.files > 0 ? `, ${t.failedDirectories.files} directories failed` : ""),
  ];
  if (t.special.files > 0) {
    lines.push(
      `skipped: ${t.special.files} special files (not regular files, symlinks or directories); ` +
        "they stay where they are, also in a drain (listed above)",
    );
  }
  if (t.mountPoints.files > 0) {
    lines.push(
      `skipped: ${t.mountPoints.files} mount points of other filesystems below SOURCE; ` +
        "nothing below them is uploaded or deleted (listed above)",
    );
  }
  if (result.stopReason === "riak-unreachable") {
    lines.push("stopped early: no Riak node answered, file after file; the next run resumes");
  }
  for (const failure of result.failures) lines.push(`failed: ${failure.path}: ${failure.error}`);
  if (failedEntries(t) > result.failures.length) {
    const more = failedEntries(t) - result.failures.length;
    lines.push(
      result.failuresFile === undefined
        ? `(${more} more failures not listed)`
        : `(${more} more failures; every failed file is listed in ${result.failuresFile})`,
    );
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

/** Why a run stopped early, as the summary says it. */
function stopWording(reason: string | undefined): string {
  if (reason === "interrupted") return "interrupted";
  if (reason === "riak-unreachable") return "stopped: no Riak node answered";
  return reason ? `${reason} reached` : "stopped";
}
