/**
 * What `riakfs verify` does (src/cli/verify.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { lstat } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import type { Command } from "commander";
import { symlinkOnTheWay, verifyTree } from "../migration/verify.ts";
import { recordedFilter } from "../migration/progress.ts";
import { PathFilter } from "../migration/glob.ts";
import { formatBytes } from "../migration/progress_reporter.ts";
import { HISTORY_FAILURES_LIMIT, type StateDirectory } from "../migration/state.ts";
import { filterFromOptions, sourceDirectory, stateDirectoryFor } from "./migration-settings.ts";
import { runWithStore } from "./riak-session.ts";
import { InvalidPathError } from "../store/errors.ts";
import { displayBytes, normalizePath } from "../store/path.ts";
import { argumentBytes } from "./raw_args.ts";

/** Compares `paths` (default: all) of `sourceArg` with Riak; sets exit code 1 on a difference. */
export async function verifyCommand(
  command: Command,
  sourceArg: string,
  paths: string[],
  opts: Record<string, unknown>,
): Promise<void> {
  const source = await sourceDirectory(command, sourceArg);
  const filter = filterFromOptions(command, opts);
  // A path given as the shell completes it (SOURCE/a/b, ./a/b) is the same file as a/b.
  const exactPaths = paths.map((path) => {
    const inside = relative(source, resolve(source, path));
    if (inside.startsWith("../") || inside === ".." || isAbsolute(inside)) {
      const shown = displayBytes(argumentBytes(path));
      command.error(`riakfs: ${shown}: not inside ${source} (PATHs are relative to SOURCE)`, {
        exitCode: 2,
      });
    }
    return argumentBytes(inside);
  });
  for (const path of exactPaths) {
    try {
      normalizePath(path);
    } catch (error) {
      if (!(error instanceof InvalidPathError)) throw error;
      command.error(`riakfs: ${error.message} (PATHs are relative to SOURCE)`, { exitCode: 2 });
    }
    // The walk never follows a symlink; a PATH through one could name any file on the host.
    const link = await symlinkOnTheWay(source, path);
    if (link !== undefined) {
      command.error(
        `riakfs: ${
          displayBytes(path)
        }: /${link} is a symlink; PATHs are not followed through symlinks`,
        { exitCode: 2 },
      );
    }
    // Nothing local to compare: not a file that "could not be checked", but a mistyped PATH.
    const missing = await lstat(Buffer.concat([Buffer.from(source), Buffer.from("/"), path]))
      .then(() => false, (error: NodeJS.ErrnoException) => error.code === "ENOENT");
    if (missing) {
      command.error(
        `riakfs: ${displayBytes(path)}: no such file or directory in ${source} ` +
          "(PATHs are relative to SOURCE)",
        { exitCode: 2 },
      );
    }
  }
  return await runWithStore(command, opts, async (store, out) => {
    const json = opts.json === true;
    const state = stateDirectoryFor(source, store.namespace, opts);
    // Without globs or PATHs of its own, verify compares what the pre-warm runs migrate, as
    // progress --rescan counts it: a file they exclude (the README's cron line's *.tmp) was
    // listed missing, exit 1 every night, and progress counted it as differing for good.
    const recorded = filter.isEmpty && exactPaths.length === 0 ? recordedGlobs(state) : undefined;
    if (recorded && !recorded.isEmpty) {
      process.stderr.write(
        `riakfs verify: comparing the files the pre-warm runs select: ${
          PathFilter.flags(recorded.globs)
        }\n`,
      );
    }
    const started = Date.now();
    const summary = await verifyTree({
      source,
      store,
      paths: exactPaths,
      filter: recorded ?? filter,
      sample: opts.sample as number | undefined,
      seed: opts.seed as number | undefined,
      concurrency: opts.concurrency as number,
      onSpecial: (path, type) => {
        if (json) return;
        process.stdout.write(
          `not compared (a ${type}; Riak holds only files, symlinks and directories): ${path}\n`,
        );
      },
      onMountPoint: (path) => {
        if (json) return;
        process.stdout.write(
          `not compared (another filesystem is mounted here; not crossed): ${path}\n`,
        );
      },
      onFile: (comparison) => {
        if (json || comparison.status === "match") return;
        if (comparison.status === "changed-while-reading") {
          process.stdout.write(
            `changed while being verified (not compared): ${comparison.path}\n`,
          );
        } else {
          process.stdout.write(
            `${comparison.status}: ${comparison.path}: ${comparison.detail ?? ""}\n`,
          );
        }
      },
    });
    const ok = summary.differences.length === 0;
    // Not compared at all (Riak unreachable, say): told apart from files that differ.
    const unchecked = summary.differences.filter((d) => d.status === "error").length;
    if (json) {
      await out(JSON.stringify({ command: "verify", source, ok, ...summary }) + "\n");
    } else {
      await out(
        `riakfs verify: ${summary.checked} files (${formatBytes(summary.bytes)}) compared in ${
          ((Date.now() - started) / 1000).toFixed(1)
        }s: ${summary.matched} identical, ${summary.differences.length - unchecked} differ` +
          (unchecked > 0 ? `, ${unchecked} could not be checked` : "") +
          (summary.changed > 0 ? `, ${summary.changed} changed while being read` : "") +
          (summary.special > 0 ? `, ${summary.special} special files not compared` : "") +
          (summary.mountPoints > 0
            ? `, ${summary.mountPoints} mount points of other filesystems not crossed`
            : "") +
          "\n",
      );
    }
    if (summary.stopReason === "riak-unreachable") {
      process.stderr.write(
        "riakfs verify: stopped early: no Riak node answered, file after file; the rest was " +
          "not compared\n",
      );
    }
    if (unchecked > 0) {
      process.stderr.write(
        `riakfs verify: ${unchecked} file(s) could not be checked; the result is not recorded\n`,
      );
    } else if (exactPaths.length === 0 && opts.sample === undefined) {
      // The whole tree: progress reports it as what is verified.
      try {
        // Under the run lock: a pre-warm saving its state meanwhile would lose this record,
        // or this save its cursor and retry list.
        state.ensure();
        const lock = state.lock();
        try {
          const saved = state.loadState();
          saved.lastVerify = {
            endedAt: new Date().toISOString(),
            checked: { files: summary.checked, bytes: summary.bytes },
            matched: { files: summary.matched, bytes: summary.matchedBytes },
            differing: summary.differences.length,
            differingBytes: summary.differences.reduce((sum, d) => sum + d.size, 0),
            differences: summary.differences.slice(0, HISTORY_FAILURES_LIMIT).map(
              ({ path, status, detail }) => ({ path, status, detail }),
            ),
          };
          state.saveState(saved);
        } finally {
          lock.release();
        }
      } catch (error) {
        process.stderr.write(
          `riakfs verify: could not record the result in ${state.path}: ${
            (error as Error).message
          }\n`,
        );
      }
    }
    process.exitCode = ok ? 0 : 1;
  });
}

/**
 * The globs the pre-warm runs recorded in `state`; undefined where it cannot be read (another
 * user's /var/lib/riakfs): verify then compares everything, and says at its end that it could
 * not record its result there.
 */
function recordedGlobs(state: StateDirectory): PathFilter | undefined {
  try {
    return recordedFilter(state.loadState());
  } catch {
    return undefined;
  }
}
