/**
 * `riakfs prewarm SOURCE`: the cron job that copies into Riak every file applications have
 * not touched yet, through the same store code as the mount. Exit codes: 0 complete, 1 some
 * files failed (listed), 2 usage error, 3 partial (budget reached, interrupted, or files that
 * kept changing; the next run resumes), 4 another run holds the lock.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../migration/limits.ts";
import {
  CHECKED_AHEAD_PER_UPLOAD,
  DEFAULT_CONCURRENCY,
  DEFAULT_DELETE_QUIET_PERIOD_S,
  DELETE_QUIET_PERIOD_ENV,
} from "../migration/defaults.ts";
import { addMigrationOptions, concurrencyLevel, positiveInteger } from "./migration-options.ts";
import { MAX_TIMER_MS } from "../util/timers.ts";
import { decimal } from "./numbers.ts";

import { addRiakOptions } from "./riak-options.ts";

/** Default seconds between progress lines on a non-terminal. */
export const DEFAULT_PROGRESS_INTERVAL_S = 60;

/** Installs `riakfs prewarm`. */
export function installPrewarm(program: Command): void {
  const command = program.command("prewarm")
    .description("copy into Riak every file it lacks or holds in another version (for cron)")
    .argument("<source>", "the local directory being migrated")
    .addOption(
      new Option(
        "--concurrency <n>",
        `files uploaded at once (${CHECKED_AHEAD_PER_UPLOAD} times as many more are checked ` +
          "against Riak ahead of them)",
      ).argParser(concurrencyLevel)
        .default(DEFAULT_CONCURRENCY),
    )
    .addOption(new Option("--max-rate <MB/s>", "upload rate limit").argParser(positiveNumber))
    .addOption(new Option("--max-files <n>", "upload at most n files").argParser(positiveInteger))
    .addOption(
      new Option(
        "--time-budget <duration>",
        "stop cleanly after e.g. 2h, 90m, 1h30m; a bare number is seconds (exit 3)",
      )
        .argParser(duration),
    )
    .option("--checksum", "compare sha256 when size and mtime match")
    .option("--dry-run", "print what would be uploaded and the totals; change nothing")
    .option("--delete-local", "drain: delete each local file once its Riak copy is verified")
    .addOption(
      new Option(
        "--delete-quiet-period <seconds>",
        "with --delete-local: keep a file changed less than this long ago (0: none)",
      ).argParser(wholeSeconds).default(DEFAULT_DELETE_QUIET_PERIOD_S)
        .env(DELETE_QUIET_PERIOD_ENV),
    )
    .option("--json", "print a JSON summary")
    .addOption(
      new Option("--progress-interval <seconds>", "seconds between progress lines (non-terminal)")
        .argParser(progressInterval).default(DEFAULT_PROGRESS_INTERVAL_S),
    );
  addMigrationOptions(command);
  command.addHelpText(
    "after",
    "\nExit codes: 0 complete, 1 some files failed (listed), 2 usage error,\n" +
      "3 partial (budget reached, interrupted, or files kept changing; the next run resumes),\n" +
      "4 another run holds the lock.",
  );
  addRiakOptions(command).action(async (sourceArg: string, opts: Record<string, unknown>) => {
    const { prewarmCommand } = await import("./prewarm_action.ts");
    await prewarmCommand(command, sourceArg, opts);
  });
}

function positiveNumber(value: string): number {
  const number = decimal(value, { fraction: true });
  if (!Number.isFinite(number) || number <= 0) {
    throw new InvalidArgumentError(`needs a number above 0, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** Seconds between progress lines: a timer's delay, so at most {@link MAX_TIMER_MS}. */
function progressInterval(value: string): number {
  const seconds = positiveNumber(value);
  if (seconds * 1000 > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`must be at most ${MAX_TIMER_MS / 1000}, got ${seconds}`);
  }
  return seconds;
}

/** Whole seconds, 0 included. */
function wholeSeconds(value: string): number {
  const seconds = decimal(value);
  if (!Number.isSafeInteger(seconds)) {
    throw new InvalidArgumentError(`needs whole seconds (0 or more), got ${JSON.stringify(value)}`);
  }
  return seconds;
}

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    // "0" and "0s" are durations all right, as "3600" is seconds: a budget of none, though.
    if (/^\s*(\d+(\.\d+)?[smhd]?)+\s*$/.test(value) && !/[1-9]/.test(value)) {
      throw new InvalidArgumentError(
        `must be more than 0 (a bare number is seconds), got ${JSON.stringify(value)}`,
      );
    }
    throw new InvalidArgumentError((error as Error).message);
  }
}
