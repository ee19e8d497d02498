/**
 * What `riakfs progress` does (src/cli/progress.ts defines the command; this loads when it
 * runs).
 *
 * @module
 */
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { LockedError } from "../util/lock.ts";
import { EXIT_LOCKED } from "../migration/prewarm.ts";
import type { Command } from "commander";
import {
  progressFromState,
  type ProgressReport,
  rescan,
  RescanError,
} from "../migration/progress.ts";
import { formatBytes } from "../migration/progress_reporter.ts";
import { PathFilter } from "../migration/glob.ts";
import type { Tally } from "../migration/state.ts";
import { keptCopiesIn } from "../migration/kept_copies.ts";
import { SPOOL_DIRECTORY_NAME } from "../migration/mount_entries.ts";
import { type Namespace, resolveNamespace } from "../store/layout.ts";
import { filterFromOptions, sourceDirectory, stateDirectoryFor } from "./migration-settings.ts";
import { RiakConfigError, riakSettingsFromOptions, runWithStore } from "./riak-session.ts";
import { printResult } from "./stdout.ts";

/** Prints how far the migration of `sourceArg` has come (from the state, or `--rescan`). */
export async function showProgress(
  command: Command,
  sourceArg: string,
  opts: Record<string, unknown>,
): Promise<void> {
  const source = await sourceDirectory(command, sourceArg);
  const keptByMount = keptCopiesIn(spoolDirectory(command, source, opts.spool), source);
  if (opts.rescan) {
    const given = filterFromOptions(command, opts);
    // Without globs of its own, the rescan takes those the pre-warm runs recorded.
    const filter = given.isEmpty ? undefined : given;
    await runWithStore(command, opts, async (store, out) => {
      const state = stateDirectoryFor(source, store.namespace, opts);
      let report: ProgressReport;
      try {
        report = await rescan({
          source,
          store,
          state,
          filter,
          concurrency: opts.concurrency as number,
        }, keptByMount);
      } catch (error) {
        if (!(error instanceof LockedError || error instanceof RescanError)) throw error;
        process.stderr.write(`riakfs progress: ${error.message}\n`);
        process.exitCode = error instanceof LockedError ? EXIT_LOCKED : 1;
        return;
      }
      await out(render(report, opts.json === true));
    });
    return;
  }
  // No Riak request: only the namespace's identity is needed to find the state.
  let namespace: Namespace;
  try {
    namespace = resolveNamespace(riakSettingsFromOptions(opts, command).namespace);
  } catch (error) {
    if (!(error instanceof RiakConfigError || error instanceof RangeError)) throw error;
    command.error(`riakfs: ${error.message}`, { exitCode: 2 });
    throw error;
  }
  const state = stateDirectoryFor(source, namespace, opts);
  await printResult(
    "progress",
    render(progressFromState(state, keptByMount), opts.json === true),
  );
}

/** The spool of the drain mounts of `source`: `--spool`, else their default one in SOURCE. */
function spoolDirectory(command: Command, source: string, given: unknown): string {
  if (typeof given !== "string") return join(source, SPOOL_DIRECTORY_NAME);
  const directory = resolve(given);
  let isDirectory = false;
  try {
    isDirectory = given !== "" && statSync(directory).isDirectory();
  } catch {
    isDirectory = false;
  }
  if (!isDirectory) command.error(`riakfs: --spool ${given} is not a directory`, { exitCode: 2 });
  return directory;
}

function render(report: ProgressReport, json: boolean): string {
  if (json) return JSON.stringify({ command: "progress", ...report }) + "\n";
  if (!report.known) {
    return [
      "riakfs progress: nothing recorded yet; run 'riakfs prewarm' or 'riakfs progress --rescan'",
      ...keptByMountLines(report),
      ...runLines(report),
    ].join("\n") + "\n";
  }
  const approx = report.estimated ? "~" : "";
  const total = `${report.totalIsLowerBound ? "at least " : ""}${show(report.total)}` +
    (report.estimatedTotal
      ? ` (about ${show(report.estimatedTotal)} by the runs' count of the tree)`
      : "");
  const lines = [
    `total:      ${total}`,
    `in Riak:    ${approx}${show(report.inRiak)}${shareShown(report)}`,
    `verified:   ${approx}${show(report.verified)}`,
    `pending:    ${approx}${show(report.pending)}${
      report.totalIsLowerBound ? " (plus what the first pass has not reached)" : ""
    }`,
    `differing:  ${approx}${show(report.differing)}`,
    `failed:     ${approx}${show(report.failed)}${
      report.failedDirectories.files > 0
        ? `, and ${approx}${report.failedDirectories.files} directories`
        : ""
    }`,
  ];
  if (report.drained.files > 0) {
    lines.push(
      `drained:    ${approx}${show(report.drained)} (local copies deleted once verified in ` +
        "Riak, by every drain so far; counted in the total and in Riak)",
    );
  }
  if (report.newerInRiak.files > 0) {
    lines.push(
      `newer in Riak: ${approx}${show(report.newerInRiak)} (written since, through a mount ` +
        "or by riak-fuse; the older local copies are left in place, also by a drain)",
    );
  }
  if (report.keptActive.files > 0) {
    lines.push(
      `kept local: ${approx}${show(report.keptActive)} (in Riak, but in use: open for writing ` +
        "or changed lately; the next run deletes them once they are not)",
    );
  }
  lines.push(...keptByMountLines(report));
  if (report.special.files > 0) {
    lines.push(
      `special:    ${approx}${report.special.files} files (FIFOs, sockets, devices: ` +
        "never in Riak, left in place)",
    );
  }
  if (report.mountPoints.files > 0) {
    lines.push(
      `mount points: ${approx}${report.mountPoints.files} (other filesystems below SOURCE: ` +
        "not walked, left in place)",
    );
  }
  if (report.currentPassCovered) {
    lines.push(`pass in progress: ${show(report.currentPassCovered)} covered so far`);
  }
  if (report.lastCompletePass) {
    const pass = report.lastCompletePass;
    lines.push(
      `last complete ${pass.kind}: ${pass.startedAt} .. ${pass.endedAt ?? "?"}${globsShown(pass)}`,
    );
  }
  if (report.lastVerify) {
    const v = report.lastVerify;
    lines.push(
      `last verify: ${v.endedAt}: ${v.matched.files} of ${v.checked.files} files identical` +
        (v.differing > 0 ? `, ${v.differing} differ (until a verify finds them gone)` : ""),
    );
    for (const d of v.differences ?? []) {
      lines.push(`  ${d.status}: ${d.path}${d.detail ? `: ${d.detail}` : ""}`);
    }
  }
  if (report.dailyRate) {
    lines.push(
      `nightly rate: ${formatBytes(report.dailyRate.bytes)}, ${
        Math.round(report.dailyRate.files)
      } files per day (over ${report.dailyRate.days} days)`,
    );
  }
  lines.push(
    `ETA: ${
      report.etaDays === undefined
        ? report.passUnfinished
          ? "unknown until the pass in progress has covered the tree (the next run resumes it)"
          : report.keptActive.files > 0
          ? `not done: ${approx}${report.keptActive.files} local copies kept while in use; ` +
            "the next run retries them"
          : report.keptByMount.files > 0
          ? `not done: ${report.keptByMount.files} local copies kept by a drain mount`
          : "unknown"
        : report.etaDays === 0
        ? "done"
        : report.estimatedTotal
        ? `~${daysShown(report.etaDays)} (estimated from the runs' count of the tree)`
        : daysShown(report.etaDays)
    }`,
  );
  lines.push(...runLines(report));
  return lines.join("\n") + "\n";
}

/** The local copies a drain mount kept, where it kept any (its spool's record). */
function keptByMountLines(report: ProgressReport): string[] {
  if (report.keptByMount.files === 0) return [];
  return [
    `kept by the mount: ${show(report.keptByMount)} (still in SOURCE: in use, changed ` +
    "since hashed, or Riak's copy read back differently; the mount's log names each)",
  ];
}

/** The run under way and the last run, which a run that died before recording anything is. */
function runLines(report: ProgressReport): string[] {
  const lines: string[] = [];
  if (report.runInProgress) {
    const run = report.runInProgress;
    lines.push(`run in progress: started ${run.startedAt} (pid ${run.pid})`);
  }
  const last = report.lastRun;
  if (last?.outcome === "unfinished") {
    lines.push(
      `last run: started ${last.startedAt}, did not finish (killed, crashed or its host went ` +
        `down; last seen ${last.endedAt})`,
    );
  } else if (last) {
    lines.push(
      `last run: ${last.startedAt} .. ${last.endedAt}, ${last.outcome} (exit ${last.exitCode})`,
    );
    for (const path of last.failures) lines.push(`  failed: ${path}`);
  }
  return lines;
}

function show(tally: Tally): string {
  return `${tally.files} files, ${formatBytes(tally.bytes)}`;
}

/** The share of the tree in Riak; during a first pass, that it is not known yet. */
function shareShown(report: ProgressReport): string {
  if (report.inRiakShare !== undefined) return ` (${(report.inRiakShare * 100).toFixed(1)}%)`;
  return report.totalIsLowerBound
    ? " (share of the tree unknown until a pass has covered all of it, or --rescan)"
    : "";
}

/** Days to go; a few hours are not "0.0 days", which would read as done. */
function daysShown(days: number): string {
  return days < 0.05 ? "under 0.1 days" : `${days.toFixed(1)} days`;
}

/** The globs a pass walked with, as flags (nothing when it had none). */
function globsShown(pass: NonNullable<ProgressReport["lastCompletePass"]>): string {
  const flags = PathFilter.flags(pass.globs ?? {});
  return flags ? ` (${flags})` : "";
}
