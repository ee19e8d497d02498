/**
 * The failed paths of a pre-warm run, complete whatever their number, in bounded memory: the
 * first `memoryLimit` records are held in memory, the rest are spilled to a file (JSON lines)
 * and streamed back when the list is taken. A run where Riak stayed away fails every file
 * of the tree; each one must still be listed for the operator and retried by the next run.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { closeSync, createReadStream, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";
import type { TallyDelta } from "./state.ts";
import { isNoRoomError } from "../util/no_room.ts";

/**
 * What went wrong with the entry shown as `shown`, for a line that names it already: the
 * error's message without the path it often starts with ("/a: /a: is a directory"), its
 * control characters escaped (`\x0a`): a system error quotes the raw path, and a name
 * holding a newline would otherwise split the line in the log.
 */
export function reasonOf(error: unknown, shown: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const reason = message.startsWith(`${shown}: `) ? message.slice(shown.length + 2) : message;
  return reason.replace(
    /\p{Cc}/gu,
    (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** A failed path and what the run needs to retry it. */
export interface FailureRecord {
  path: Buffer;
  error: string;
  /** Everything the entry added to the run's tally, its failure too (taken back on retry). */
  counted?: TallyDelta;
  /**
   * False for a directory the walk could not read: not retried at the end of the run (its
   * permissions rarely change that soon); nor is a path Riak holds another type at, kept.
   */
  retryNow: boolean;
  /**
   * A directory the walk could not read: the next runs of the pass walk what is below it
   * (the cursor has passed it). Unset for the tree's own root: the next pass takes it. Also
   * a path Riak holds another type at, kept: the next runs take it again (a directory, with
   * what is below it).
   */
  subtree?: boolean;
}

/** One spilled record as a JSON line (paths are bytes: hex). */
interface SpilledRecord {
  hex: string;
  error: string;
  counted?: TallyDelta;
  retryNow: boolean;
  subtree?: boolean;
}

/**
 * Failure records: the first `memoryLimit` in memory, the rest in `spillFile` (none: a dry
 * run, which only counts them).
 *
 * @example
 * ```ts
 * const failed = new FailureList("/var/lib/riakfs/ab12/failed.spill", 1000);
 * failed.add({ path: Buffer.from("a/b"), error: "Riak unreachable", retryNow: true });
 * for await (const record of failed.takeAll()) console.log(record.path.toString());
 * failed.close();
 * ```
 */
export class FailureList {
  readonly #spillFile?: string;
  readonly #memoryLimit: number;
  #memory: FailureRecord[] = [];
  #spillFd: number | undefined;
  #spilled = 0;
  #takes = 0;
  /** A write to the spill file found no room: the records that follow stay in memory. */
  #spillHasNoRoom = false;

  constructor(spillFile: string | undefined, memoryLimit: number) {
    this.#spillFile = spillFile;
    this.#memoryLimit = memoryLimit;
  }

  /** How many records the list holds (in memory and spilled). */
  get size(): number {
    return this.#memory.length + this.#spilled;
  }

  /**
   * The records held in memory: the first ones added (and those that followed, once the
   * spill file's disk had no room).
   */
  get first(): readonly FailureRecord[] {
    return this.#memory;
  }

  /**
   * Adds a record, spilling it to the file once the memory share is full; held in memory
   * after all where the file's disk has no room (a run goes on on a full state directory).
   */
  add(record: FailureRecord): void {
    if (this.#memory.length < this.#memoryLimit || this.#spillHasNoRoom) {
      this.#memory.push(record);
      return;
    }
    if (this.#spillFile === undefined) {
      this.#spilled++;
      return;
    }
    const line: SpilledRecord = {
      hex: record.path.toString("hex"),
      error: record.error,
      counted: record.counted,
      retryNow: record.retryNow,
      ...(record.subtree ? { subtree: true } : {}),
    };
    const bytes = Buffer.from(JSON.stringify(line) + "\n");
    try {
      this.#spillFd ??= openSync(this.#spillFile, "w", 0o644);
      // A write cut short is the disk's last bytes: no room either.
      if (writeSync(this.#spillFd, bytes) === bytes.length) {
        this.#spilled++;
        return;
      }
    } catch (error) {
      if (!isNoRoomError(error)) throw error;
    }
    // Lost, or the end of the run, a failure would no longer be listed or retried.
    this.#spillHasNoRoom = true;
    this.#memory.push(record);
  }

  /**
   * Yields every record, the first ones first, and leaves the list empty: records added
   * meanwhile start a new list. Stopping early drops the rest.
   */
  async *takeAll(): AsyncGenerator<FailureRecord> {
    const memory = this.#memory;
    const spilled = this.#spilled;
    let taken: string | undefined;
    if (this.#spillFd !== undefined) {
      closeSync(this.#spillFd);
      this.#spillFd = undefined;
      taken = `${this.#spillFile}.${++this.#takes}`;
      renameSync(this.#spillFile!, taken);
    }
    this.#memory = [];
    this.#spilled = 0;
    try {
      yield* memory;
      if (taken === undefined || spilled === 0) return;
      for await (const line of readLines(taken)) {
        let record: SpilledRecord;
        try {
          record = JSON.parse(line);
        } catch {
          continue; // Cut short by a full disk: that record was held in memory instead.
        }
        yield {
          path: Buffer.from(record.hex, "hex"),
          error: record.error,
          counted: record.counted,
          retryNow: record.retryNow,
          ...(record.subtree ? { subtree: true } : {}),
        };
      }
    } finally {
      if (taken !== undefined) rmSync(taken, { force: true });
    }
  }

  /** Closes and removes the spill file. */
  close(): void {
    if (this.#spillFd !== undefined) closeSync(this.#spillFd);
    this.#spillFd = undefined;
    if (this.#spillFile !== undefined) rmSync(this.#spillFile, { force: true });
  }
}

/** The non-empty lines of a text file, streamed; none when the file does not exist. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const stream = createReadStream(file, { encoding: "utf8" });
  const opened = new Promise<boolean>((resolve, reject) => {
    stream.once("open", () => resolve(true));
    stream.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") resolve(false);
      else reject(error);
    });
  });
  if (!await opened) return;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line !== "") yield line;
  } finally {
    lines.close();
    stream.destroy();
  }
}
