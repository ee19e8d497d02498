/**
 * The mount's log: one line per event, as readable text (`2026-11-25T00:00:00.000Z warn
 * message key=value`), as one JSON object per line (`--log-format json`) for log
 * collectors, or syslog-style (`--log-format syslog`: `<4>riakfs[1234]: warn message
 * key=value`, the priority prefix journald and syslog daemons read on stderr). Writes go to
 * a stream (stderr, or a log file).
 *
 * @module
 */

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Output format of the log. */
export type LogFormat = "text" | "json" | "syslog";

/** The formats, as `--log-format` accepts them. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json", "syslog"];

/** Extra fields of a log line (path, bucket, errno, counts...). */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Where log lines go: anything with a `write(text)`. */
export interface LogSink {
  write(text: string): unknown;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
/** syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  format?: LogFormat;
  /** Lines below this level are dropped; default `info`. */
  level?: LogLevel;
  /** Default: process.stderr. */
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

  constructor(options: LoggerOptions = {}) {
    this.format = options.format ?? "text";
    this.#level = LEVEL_ORDER[options.level ?? "info"];
    this.#sink = options.sink ?? process.stderr;
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
    const time = this.#now().toISOString();
    const defined = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (this.format === "json") {
      this.#sink.write(
        JSON.stringify({ time, level, message, ...Object.fromEntries(defined) }) + "\n",
      );
      return;
    }
    const extra = defined.map(([key, value]) => ` ${key}=${formatValue(value!)}`).join("");
    // The collector stamps its own time.
    const head = this.format === "syslog"
      ? `<${SYSLOG_PRIORITY[level]}>riakfs[${process.pid}]:`
      : time;
    this.#sink.write(`${head} ${level} ${message}${extra}\n`);
  }
}

/** A logger that drops everything (tests, library use). */
export const SILENT_LOGGER: Logger = new Logger({ sink: { write: () => true }, level: "error" });

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}
