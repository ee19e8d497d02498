/**
 * The overlay's options of `riakfs mount`: the mode knobs, the spool, queues, cache,
 * outage deadline, drain timeout, observability, and riak-fuse's layout names. One place
 * declares the flags and resolves them into {@link OverlaySettings}, so `riakfs mount` and
 * `riakfs demo` cannot drift apart.
 *
 * @module
 */
import { type Command, Option } from "commander";
import {
  DEFAULT_CACHE_BYTES,
  DEFAULT_COPY_CONCURRENCY,
  DEFAULT_READ_AHEAD_BLOCKS,
  DEFAULT_RUN_DIRECTORY,
  DEFAULT_UPLOAD_CONCURRENCY,
} from "./defaults.ts";
import { LOG_FORMATS, type LogFormat } from "./log.ts";
import { parseMetricsAddress } from "./metrics_address.ts";
import {
  DEFAULT_PRESET,
  KNOB_VALUES,
  ModeError,
  type MountMode,
  PRESETS,
  renderModeTable,
  resolveMode,
} from "./modes.ts";
import { DEFAULT_DELETE_QUIET_PERIOD_S, DELETE_QUIET_PERIOD_ENV } from "../migration/defaults.ts";
import { MAX_TIMER_MS } from "../util/timers.ts";

/** Default deadline for a read that needs Riak before it answers EIO. */
export const DEFAULT_RIAK_READ_TIMEOUT_MS = 10_000;
/** Default time unmounting waits for pending uploads. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 60_000;

/** Everything the overlay needs beyond the Riak connection and the FUSE options. */
export interface OverlaySettings {
  preset: string;
  mode: MountMode;
  /** Spool directory; undefined = the default for the source (see spool.ts). */
  spool?: string;
  uploadConcurrency: number;
  copyConcurrency: number;
  cacheBytes: number;
  readAheadBlocks: number;
  /** A read that needs Riak fails with EIO after this long. */
  riakReadTimeoutMs: number;
  drainTimeoutMs: number;
  /**
   * A local file changed less than this long ago is not deleted yet (after-transfer delete):
   * something may still be writing it.
   */
  deleteQuietPeriodMs: number;
  /** `HOST:PORT` of the Prometheus endpoint, if asked for. */
  metrics?: string;
  logFormat: LogFormat;
  runDirectory: string;
  /** Owner reported for Riak objects without riakfs attributes (riak-fuse's -rfuid/-rfgid). */
  defaultUid: number;
  defaultGid: number;
}

/** Raw option values as commander parses them. */
interface RawOverlayOptions {
  preset?: string;
  reads?: string;
  copyOnRead?: string;
  writes?: string;
  afterTransfer?: string;
  deleteLocal?: boolean;
  listings?: string;
  spool?: string;
  uploadConcurrency?: string;
  copyConcurrency?: string;
  cacheSize?: string;
  readAhead?: string;
  riakReadTimeout?: string;
  drainTimeout?: string;
  deleteQuietPeriod?: string;
  metrics?: string;
  logFormat?: string;
  runDir?: string;
  defaultUid?: string;
  defaultGid?: string;
}

/**
 * Adds the overlay's options (and the preset table to the help) to a command. `--preset`
 * is included unless the command declares its own.
 *
 * @example
 * ```ts
 * addOverlayOptions(new Command("mount")).action((opts) => overlaySettingsFromOptions(opts));
 * ```
 */
export function addOverlayOptions(command: Command, options: { preset?: boolean } = {}): Command {
  const list = (values: readonly string[]) => values.join("|");
  const all: Option[] = [
    new Option("--reads <from>", `override: ${list(KNOB_VALUES.reads)}`),
    new Option(
      "--copy-on-read <yes|no>",
      "override: copy a file into Riak after it was read whole",
    ),
    new Option("--writes <to>", `override: ${list(KNOB_VALUES.writes)}`),
    new Option(
      "--after-transfer <keep|delete>",
      "override: the local copy once Riak's is verified",
    ),
    new Option("--delete-local", "same as --after-transfer delete"),
    new Option(
      "--delete-quiet-period <seconds>",
      "with deletion: keep a local file changed less than this long ago " +
        `(default ${DEFAULT_DELETE_QUIET_PERIOD_S}; 0: none)`,
    ).env(DELETE_QUIET_PERIOD_ENV),
    new Option("--listings <from>", `override: ${list(KNOB_VALUES.listings)}`),
    new Option(
      "--spool <dir>",
      "where files open for writing are staged (default <source>/.riakfs-spool)",
    ),
    new Option(
      "--upload-concurrency <n>",
      `uploads at once (default ${DEFAULT_UPLOAD_CONCURRENCY})`,
    ),
    new Option(
      "--copy-concurrency <n>",
      `copy-on-read copies at once (default ${DEFAULT_COPY_CONCURRENCY})`,
    ),
    new Option(
      "--cache-size <MiB>",
      `chunk cache bound (default ${DEFAULT_CACHE_BYTES / 1048576})`,
    ),
    new Option(
      "--read-ahead <chunks>",
      `chunks read ahead of sequential reads (default ${DEFAULT_READ_AHEAD_BLOCKS})`,
    ),
    new Option(
      "--riak-read-timeout <ms>",
      `a read that needs Riak fails with EIO after this (default ${DEFAULT_RIAK_READ_TIMEOUT_MS})`,
    ),
    new Option(
      "--drain-timeout <ms>",
      `how long unmounting waits for pending uploads (default ${DEFAULT_DRAIN_TIMEOUT_MS})`,
    ),
    new Option("--metrics <host:port>", "serve Prometheus metrics at http://HOST:PORT/metrics"),
    new Option(
      "--log-format <format>",
      "text (the default), json (one object per line), or syslog (<priority> prefixes, for journald)",
    ).choices([...LOG_FORMATS]),
    new Option(
      "--run-dir <dir>",
      `pid files and control sockets (default ${DEFAULT_RUN_DIRECTORY})`,
    )
      .env("RIAKFS_RUN_DIR"),
    new Option("--default-uid <uid>", "owner of Riak objects riakfs did not write (default 0)"),
    new Option("--default-gid <gid>", "group of Riak objects riakfs did not write (default 0)"),
  ];
  if (options.preset !== false) {
    all.unshift(
      new Option("--preset <preset>", `what the mount does (default ${DEFAULT_PRESET})`).choices(
        Object.keys(PRESETS),
      ),
    );
  }
  for (const option of all) command.addOption(option);
  command.addHelpText(
    "after",
    `\nPresets (any knob can be overridden after the preset):\n${indent(renderModeTable())}\n`,
  );
  return command;
}

/**
 * Resolves the overlay's options. Throws {@link ModeError} (one line) on a bad value or a
 * contradictory combination.
 */
export function overlaySettingsFromOptions(opts: Record<string, unknown>): OverlaySettings {
  const raw = opts as RawOverlayOptions;
  if (raw.deleteLocal && raw.afterTransfer !== undefined && raw.afterTransfer !== "delete") {
    throw new ModeError(`--delete-local contradicts --after-transfer ${raw.afterTransfer}`);
  }
  const preset = raw.preset ?? DEFAULT_PRESET;
  const mode = resolveMode(preset, {
    reads: raw.reads,
    copyOnRead: raw.copyOnRead,
    writes: raw.writes,
    afterTransfer: raw.deleteLocal ? "delete" : raw.afterTransfer,
    listings: raw.listings,
  });
  if (raw.metrics !== undefined) {
    try {
      parseMetricsAddress(raw.metrics);
    } catch (error) {
      throw new ModeError((error as Error).message);
    }
  }
  return {
    preset,
    mode,
    spool: raw.spool,
    uploadConcurrency: whole(
      raw.uploadConcurrency,
      "--upload-concurrency",
      DEFAULT_UPLOAD_CONCURRENCY,
      1,
    ),
    copyConcurrency: whole(raw.copyConcurrency, "--copy-concurrency", DEFAULT_COPY_CONCURRENCY, 1),
    cacheBytes: whole(raw.cacheSize, "--cache-size", DEFAULT_CACHE_BYTES / 1048576, 0) * 1048576,
    readAheadBlocks: whole(raw.readAhead, "--read-ahead", DEFAULT_READ_AHEAD_BLOCKS, 0),
    riakReadTimeoutMs: whole(
      raw.riakReadTimeout,
      "--riak-read-timeout",
      DEFAULT_RIAK_READ_TIMEOUT_MS,
      1,
      MAX_TIMER_MS,
    ),
    drainTimeoutMs: whole(
      raw.drainTimeout,
      "--drain-timeout",
      DEFAULT_DRAIN_TIMEOUT_MS,
      0,
      MAX_TIMER_MS,
    ),
    deleteQuietPeriodMs: whole(
      raw.deleteQuietPeriod,
      "--delete-quiet-period",
      DEFAULT_DELETE_QUIET_PERIOD_S,
      0,
      MAX_TIMER_MS / 1000,
    ) * 1000,
    metrics: raw.metrics,
    logFormat: (raw.logFormat ?? "text") as LogFormat,
    runDirectory: raw.runDir ?? DEFAULT_RUN_DIRECTORY,
    defaultUid: whole(raw.defaultUid, "--default-uid", 0, 0),
    defaultGid: whole(raw.defaultGid, "--default-gid", 0, 0),
  };
}

function whole(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < min) {
    throw new ModeError(`${flag} must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
  }
  if (number > max) throw new ModeError(`${flag} must be at most ${max}, got ${number}`);
  return number;
}

function indent(text: string): string {
  return text.split("\n").map((line) => `  ${line}`).join("\n");
}
