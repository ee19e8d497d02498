/**
 * The mount's log: one line per event, as readable text (`2026-11-25T00:00:00.000Z warn
 * message key=value`), as one JSON object per line (`--log-format json`) for log
 * collectors, or syslog-style (`--log-format syslog`: `<4>riakfs[1234]: warn message
 * key=value`, the priority prefix journald and syslog daemons read on stderr). Writes go to
 * a stream (stderr, or a log file).
 *
 * A log that cannot be written (its file on the disk that filled up) never stops the
 * process: the lines are lost and counted, and the first line that fits again says how
 * many. Node's own stderr stream, given a file, would throw the ENOSPC as an unhandled
 * error event and end a mount in the middle of serving.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { closeSync, fstatSync, openSync, writeSync } from "node:fs";

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Output format of the log. */
export type LogFormat = "text" | "json" | "syslog";

/** The formats, as `--log-format` accepts them. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json", "syslog"];

/** Extra fields of a log line (path, bucket, errno, counts...). */
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * Where log lines go: anything with a `write(text)`. A write that throws loses its line
 * (counted, see {@link Logger}).
 */
export interface LogSink {
  write(text: string): unknown;
}

/**
 * The sink of a descriptor that is a regular file (a log file given as stderr): written with
 * write(2) here, so a full disk throws at once; after a failed write the next line starts
 * with a newline of its own (the failed one may have left part of a line).
 */
export class FileDescriptorSink implements LogSink {
  #fd: number;
  #torn = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Writes to the file at `path` from now on, opened for appending (made if missing): a log
   * file that a rotation moved aside (logrotate's rename and create) is written again where
   * its readers look (made with mode 0644). The descriptor written so far is closed, unless it
   * is one of the three standard ones.
   */
  reopen(path: string): void {
    // Explicit: a mount runs with umask 0, and a log anyone may write is a log nobody can trust.
    const fd = openSync(path, "a", 0o644);
    const old = this.#fd;
    this.#fd = fd;
    this.#torn = false;
    if (old > 2) closeSync(old);
  }

  /** @inheritdoc */
  write(text: string): void {
    const bytes = Buffer.from(this.#torn ? `\n${text}` : text);
    try {
      for (let at = 0; at < bytes.length;) at += writeSync(this.#fd, bytes, at);
      this.#torn = false;
    } catch (error) {
      // A write(2) may take part of a line before the disk is full, and not every runtime
      // tells how much: an empty line is the price of never gluing two lines together.
      this.#torn = true;
      throw error;
    }
  }
}

let standardError: LogSink | undefined;

/**
 * stderr as a log sink: a {@link FileDescriptorSink} when it is a regular file; otherwise
 * (a terminal, a pipe to a supervisor) Node's stream, whose write errors (a reader gone)
 * are dropped rather than thrown at the process.
 */
export function standardErrorSink(): LogSink {
  if (standardError) return standardError;
  let isFile = false;
  try {
    isFile = fstatSync(2).isFile();
  } catch {
    // No stderr at all: the stream drops what is written.
  }
  if (!isFile) process.stderr.on("error", () => {});
  standardError = isFile ? new FileDescriptorSink(2) : process.stderr;
  return standardError;
}

/**
 * Opens the log file at `path` again for the stderr sink, a log file (see
 * {@link FileDescriptorSink.reopen}); throws when stderr is no file, or `path` cannot be opened.
 */
export function reopenStandardError(path: string): void {
  const sink = standardErrorSink();
  if (!(sink instanceof FileDescriptorSink)) throw new Error("stderr is not a log file");
  sink.reopen(path);
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
/** syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  format?: LogFormat;
  /** Lines below this level are dropped; default `info`. */
  level?: LogLevel;
  /** Default: stderr ({@link standardErrorSink}). */
  sink?: LogSink;
  /** Clock, for tests. */
  now?: () => Date;
}

/**
 * A structured logger.
 *
 * @example
 * ```ts
 * const log = new Logger({ format: "json" });
 * log.warn("Riak unreachable", { node: "10.0.0.1:8087" });
 * ```
 */
export class Logger {
  /** The output format. */
  readonly format: LogFormat;
  readonly #level: number;
  readonly #sink: LogSink;
  readonly #now: () => Date;
  /** Lines the sink refused since the last one it took. */
  #lost = 0;

  constructor(options: LoggerOptions = {}) {
    this.format = options.format ?? "text";
    this.#level = LEVEL_ORDER[options.level ?? "info"];
    this.#sink = options.sink ?? standardErrorSink();
    this.#now = options.now ?? (() => new Date());
  }

  /** Logs at debug level. */
  debug(message: string, fields?: LogFields): void {
    this.log("debug", message, fields);
  }

  /** Logs at info level. */
  info(message: string, fields?: LogFields): void {
    this.log("info", message, fields);
  }

  /** Logs at warn level. */
  warn(message: string, fields?: LogFields): void {
    this.log("warn", message, fields);
  }

  /** Logs at error level. */
  error(message: string, fields?: LogFields): void {
    this.log("error", message, fields);
  }

  /** Writes one line if `level` passes the threshold. */
  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (LEVEL_ORDER[level] < this.#level) return;
    try {
      if (this.#lost > 0) {
        this.#sink.write(
          this.#line("warn", "log lines lost: the log could not be written (disk full?)", {
            lines: this.#lost,
          }),
        );
        this.#lost = 0;
      }
      this.#sink.write(this.#line(level, message, fields));
    } catch {
      this.#lost++;
    }
  }

  #line(level: LogLevel, message: string, fields: LogFields): string {
    const time = this.#now().toISOString();
    const defined = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (this.format === "json") {
      return JSON.stringify({ time, level, message, ...Object.fromEntries(defined) }) + "\n";
    }
    const extra = defined.map(([key, value]) => ` ${key}=${formatValue(value!)}`).join("");
    // The collector stamps its own time.
    const head = this.format === "syslog"
      ? `<${SYSLOG_PRIORITY[level]}>riakfs[${process.pid}]:`
      : time;
    return `${head} ${level} ${message}${extra}\n`;
  }
}

/** A logger that drops everything (tests, library use). */
export const SILENT_LOGGER: Logger = new Logger({ sink: { write: () => true }, level: "error" });

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}
