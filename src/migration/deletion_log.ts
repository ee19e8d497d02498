/**
 * The deletions a drain made since its marker (run.json) was last saved: a pre-warm saves its
 * tallies only every RUN_CHECKPOINT_MS, so one killed in between lost what it deleted since
 * from every count, and no walk sees those files again. Each deletion appends one line (its
 * bytes) to the file the marker names, right after the unlink: no fsync (a killed process
 * loses no written line), and nothing read from the local file, which is gone by then.
 *
 * A marker names the file deletions after its save go to, a new one each save: the file it
 * names holds exactly the deletions its tallies lack, so a deletion counts once, in the
 * marker or in the log. Files no marker names any more are removed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Tally } from "./state.ts";

/** Names of deletion logs in the state directory: `deleted-<run>-<save>.log`. */
const DELETION_LOG_NAME = /^deleted-[0-9a-z]+-[0-9]+\.log$/;

/** The name of a run's deletion log after its `save`-th marker save (the first is 0). */
export function deletionLogName(runStartedAtMs: number, save: number): string {
  return `deleted-${runStartedAtMs.toString(36)}-${save}.log`;
}

/** Whether `name` is one {@link deletionLogName} gives (and no path elsewhere). */
export function isDeletionLogName(name: unknown): name is string {
  return typeof name === "string" && DELETION_LOG_NAME.test(name);
}

/**
 * The deletions a log holds: one per complete line. A line cut short (a full disk) is not
 * counted: a deletion missed undercounts by one file, one counted twice would not be seen.
 */
export function readDeletionLog(directory: string, name: string): Tally {
  let text: string;
  try {
    text = readFileSync(join(directory, name), "latin1");
  } catch {
    return { files: 0, bytes: 0 };
  }
  const tally = { files: 0, bytes: 0 };
  const lines = text.split("\n");
  // What follows the last newline is a line cut short, or nothing.
  for (const line of lines.slice(0, -1)) {
    const bytes = Number(line);
    if (line === "" || !Number.isSafeInteger(bytes) || bytes < 0) continue;
    tally.files++;
    tally.bytes += bytes;
  }
  return tally;
}

/**
 * Removes the deletion logs in `directory` but `kept`, if any. One left behind is never read
 * (no marker names it) and goes next time: the run goes on.
 */
export function removeDeletionLogs(directory: string, kept?: string): void {
  try {
    for (const name of readdirSync(directory)) {
      if (name !== kept && isDeletionLogName(name)) rmSync(join(directory, name), { force: true });
    }
  } catch {
    // Left for the next marker save or run to remove.
  }
}

/** The deletion log a run appends to, opened at its first deletion. */
export class DeletionLog {
  readonly #directory: string;
  #name: string;
  #fd: number | undefined;
  /** A write failed (a full disk): the lines after it would not be of whole deletions. */
  #broken = false;

  /** Appends to `name` in `directory`. */
  constructor(directory: string, name: string) {
    this.#directory = directory;
    this.#name = name;
  }

  /** The file deletions go to now. */
  get name(): string {
    return this.#name;
  }

  /**
   * Records one deletion of `bytes`; a log that cannot be written (a full disk) misses it,
   * and the run goes on: the files matter more, and the next marker save counts it.
   */
  add(bytes: number): void {
    if (this.#broken) return;
    const line = Buffer.from(`${bytes}\n`, "latin1");
    try {
      this.#fd ??= openSync(join(this.#directory, this.#name), "a", 0o644);
      if (writeSync(this.#fd, line) !== line.length) this.#broken = true;
    } catch {
      this.#broken = true;
    }
  }

  /**
   * Goes on in `name`, once a marker naming it is saved: its tallies hold every deletion
   * logged so far, and the file before is for {@link removeDeletionLogs}.
   */
  switchTo(name: string): void {
    this.close();
    this.#name = name;
    this.#broken = false;
  }

  /** Closes the file (it stays, for the run's marker names it). */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
