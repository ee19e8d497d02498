/**
 * The descriptor a background mount's serving process tells the command that started it
 * through: the warnings of its start (Riak unreachable, say), which the operator must see on
 * the terminal and not only in the log, then `ready` or `error <one line>`.
 *
 * @module
 */
import * as fs from "node:fs";
import { type LogFields, Logger, type LoggerOptions, type LogLevel } from "../overlay/log.ts";

/** The serving side: lines to the starting command, while it listens. */
export class ReadyChannel {
  #fd: number | undefined;

  /** `fd`: the descriptor's number as the environment gave it; undefined in the foreground. */
  constructor(fd: string | undefined) {
    this.#fd = fd === undefined ? undefined : Number(fd);
  }

  /** A warning of the start, shown on the starting command's terminal. */
  warn(text: string): void {
    this.#write(`warn ${text.replaceAll("\n", " ")}\n`);
  }

  /** The last line (`ready`, or `error <message>`); nothing is told after it. */
  end(line: string): void {
    this.#write(`${line}\n`);
    if (this.#fd === undefined) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // Closed already.
    }
    this.#fd = undefined;
  }

  #write(text: string): void {
    if (this.#fd === undefined) return;
    try {
      fs.writeSync(this.#fd, text);
    } catch {
      // The parent is gone; nobody to tell.
      this.#fd = undefined;
    }
  }
}

/** A logger whose warnings and errors also go to a {@link ReadyChannel} until it ends. */
export class StartLogger extends Logger {
  readonly #channel: ReadyChannel;

  constructor(channel: ReadyChannel, options: LoggerOptions = {}) {
    super(options);
    this.#channel = channel;
  }

  /** Logs the line, and tells the starting command a warning or error of the start. */
  override log(level: LogLevel, message: string, fields: LogFields = {}): void {
    super.log(level, message, fields);
    if (level !== "warn" && level !== "error") return;
    const extra = Object.entries(fields).filter(([, value]) => value !== undefined)
      .map(([key, value]) => ` ${key}=${value}`).join("");
    this.#channel.warn(`${message}${extra}`);
  }
}

/**
 * What the starting command read: the start's warnings, and its last line (empty when the
 * process ended without one).
 */
export function readAnswer(text: string): { warnings: string[]; last: string } {
  const lines = text.split("\n").filter((line) => line !== "");
  const warnings = lines.filter((line) => line.startsWith("warn ")).map((line) => line.slice(5));
  const last = lines.filter((line) => !line.startsWith("warn ")).at(-1) ?? "";
  return { warnings, last };
}
