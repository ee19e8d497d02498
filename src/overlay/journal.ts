/**
 * The upload journal: an append-only file of JSON lines on local disk, fsync'd before a
 * write is acknowledged, that says which staged files still have to reach Riak. A line
 * `{"op":"add","id":7,...}` is written before close() returns; `{"op":"done","id":7}` after
 * Riak acknowledged the upload. At start-up the journal is read back and every `add` without
 * its `done` is uploaded again before the mount serves, so an acknowledged write survives a
 * SIGKILL or a power cut. Concurrent appends share one fsync (group commit).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type FileHandle, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** What the journal remembers about one pending upload. */
export interface PendingUpload {
  /** Journal id, unique within the journal. */
  id: number;
  /** The path inside the mount, `/`-separated, starting with `/`. */
  path: string;
  /** The staged file's name inside the spool directory. */
  staged: string;
  /** Permission bits, owner and modification time to store with the file. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, nanoseconds since the epoch, as decimal text (JSON has no bigint). */
  mtimeNs: string;
  /** Size of the staged file when it was journaled. */
  size: number;
}

/** The fields a caller supplies; the journal assigns the id. */
export type NewUpload = Omit<PendingUpload, "id">;

type JournalLine = ({ op: "add" } & PendingUpload) | { op: "done"; id: number };

/** The journal file could not be read or written; the mount must not serve writes. */
export class JournalError extends Error {
  /** The journal file. */
  readonly file: string;

  constructor(file: string, message: string, cause?: unknown) {
    super(`upload journal ${file}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = "JournalError";
    this.file = file;
  }
}

/** Compact when the file holds this many bytes and nothing is pending. */
const COMPACT_AT_BYTES = 1024 * 1024;

/**
 * An open upload journal.
 *
 * @example
 * ```ts
 * const { journal, pending } = await UploadJournal.open("/srv/.riakfs-spool/journal");
 * const id = await journal.add({ path: "/a", staged: "s1", mode: 0o644, uid: 0, gid: 0,
 *   mtimeNs: "0", size: 3 });
 * await journal.complete(id);
 * await journal.close();
 * ```
 */
export class UploadJournal {
  /** The journal file. */
  readonly file: string;
  readonly #handle: FileHandle;
  readonly #pending = new Map<number, PendingUpload>();
  #nextId: number;
  #bytes: number;
  #queued: string[] = [];
  /** The flush that will write the lines queued now. */
  #scheduled: Promise<void> | undefined;
  /** The last flush, settled or not; the next one starts after it. */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(file: string, handle: FileHandle, pending: PendingUpload[], bytes: number) {
    this.file = file;
    this.#handle = handle;
    for (const entry of pending) this.#pending.set(entry.id, entry);
    this.#nextId = Math.max(0, ...pending.map((entry) => entry.id)) + 1;
    this.#bytes = bytes;
  }

  /**
   * Opens (or creates) the journal, returning it with the uploads still pending, oldest
   * first. The file is rewritten to hold only those (crash-safe: temp file + rename). A torn
   * last line from a crash mid-append is ignored; a damaged line elsewhere is an error.
   */
  static async open(file: string): Promise<{ journal: UploadJournal; pending: PendingUpload[] }> {
    const pending = await readPending(file);
    const text = pending.map((entry) => JSON.stringify({ op: "add", ...entry }) + "\n").join("");
    const temporary = `${file}.compact`;
    try {
      const compacted = await open(temporary, "w", 0o600);
      try {
        await compacted.writeFile(text);
        await compacted.sync();
      } finally {
        await compacted.close();
      }
      await rename(temporary, file);
      await syncDirectory(dirname(file));
      const handle = await open(file, "a", 0o600);
      return {
        journal: new UploadJournal(file, handle, pending, Buffer.byteLength(text)),
        pending,
      };
    } catch (error) {
      throw new JournalError(file, (error as Error).message, error);
    }
  }

  /** Uploads journaled and not yet completed. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Durably records an upload to do; resolves with its id once the line is on disk. */
  async add(upload: NewUpload): Promise<number> {
    const entry: PendingUpload = { id: this.#nextId++, ...upload };
    this.#pending.set(entry.id, entry);
    await this.#append({ op: "add", ...entry });
    return entry.id;
  }

  /** Records that an upload reached Riak (or is no longer needed). */
  async complete(id: number): Promise<void> {
    if (!this.#pending.delete(id)) return;
    await this.#append({ op: "done", id });
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    await this.#handle.close();
  }

  #append(line: JournalLine): Promise<void> {
    if (this.#closed) return Promise.reject(new JournalError(this.file, "journal is closed"));
    this.#queued.push(JSON.stringify(line) + "\n");
    // Group commit: lines queued while a flush runs are written together by the next one.
    if (this.#scheduled) return this.#scheduled;
    const flush = this.#tail.then(() => {
      this.#scheduled = undefined;
      return this.#flush();
    });
    this.#scheduled = flush;
    this.#tail = flush.catch(() => {});
    return flush;
  }

  async #flush(): Promise<void> {
    const text = this.#queued.join("");
    this.#queued = [];
    try {
      if (this.#pending.size === 0 && this.#bytes >= COMPACT_AT_BYTES) {
        // Nothing pending: every line so far is obsolete, including the ones being written.
        await this.#handle.truncate(0);
        this.#bytes = 0;
      } else {
        await this.#handle.write(text);
        this.#bytes += Buffer.byteLength(text);
      }
      await this.#handle.sync();
    } catch (error) {
      throw new JournalError(this.file, (error as Error).message, error);
    }
  }
}

async function readPending(file: string): Promise<PendingUpload[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new JournalError(file, (error as Error).message, error);
  }
  const pending = new Map<number, PendingUpload>();
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index];
    if (line === "") continue;
    let parsed: JournalLine;
    try {
      parsed = JSON.parse(line);
    } catch {
      // A crash can tear only the last line, which was never acknowledged.
      if (index === lines.length - 1) break;
      throw new JournalError(file, `line ${index + 1} is damaged: ${line.slice(0, 80)}`);
    }
    if (parsed.op === "add") {
      const { op: _op, ...entry } = parsed;
      pending.set(entry.id, entry);
    } else if (parsed.op === "done") pending.delete(parsed.id);
    else throw new JournalError(file, `line ${index + 1} has an unknown op`);
  }
  return [...pending.values()].sort((a, b) => a.id - b.id);
}

/** fsyncs a directory so a rename in it survives a power cut. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
