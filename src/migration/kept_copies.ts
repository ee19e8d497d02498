/**
 * The local copies a drain mount kept after a transfer (in use by another process, changed
 * since they were hashed, or Riak's copy read back differently), recorded in its spool
 * (`SPOOL/kept`) for `riakfs progress`, which otherwise knows only what the pre-warm runs
 * recorded: without it, an operator could not tell why SOURCE is not empty after a drain.
 *
 * Each copy is recorded by its inode; `progress` counts those still there as the same file, at
 * their size now: a copy kept in use (a daemon's log) is written on, and still not deleted. One
 * deleted, or replaced by another file under its name, is not what was kept.
 *
 * @module
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lstatIfExistsSync } from "./file_identity.ts";

/** The record's file name in the spool. */
export const KEPT_COPIES_NAME = "kept";

/** Copies recorded at most: past it the oldest go (a file of about 100 bytes per copy). */
const MOST_RECORDED = 10_000;

/** How long changes wait to be written together: a burst of kept copies is one write. */
const WRITE_DELAY_MS = 1_000;

/** A kept copy: the file the mount kept. */
interface KeptCopy {
  ino: string;
  /** Why it stayed (a DeleteOutcome reason of src/migration/verified_delete.ts). */
  reason: string;
}

/** What a mount tells of its local copies: kept at `path` (relative to SOURCE), or gone. */
export interface KeptCopyRecorder {
  /** The local copy at `path` stayed after its transfer, for `reason`. */
  kept(path: string, reason: string): void;
  /** The local copy at `path` was deleted after all. */
  gone(path: string): void;
}

/**
 * The record of the copies a mount of `source` kept, in spool `directory`: loaded from what
 * earlier mounts recorded (less those not there any more), written a moment after each change
 * (a temporary file renamed into place) and at {@link close}. Never fails the mount: a
 * write that fails is reported to `onError` and tried again at the next change.
 */
export class KeptCopies implements KeptCopyRecorder {
  readonly #file: string;
  readonly #source: string;
  readonly #onError: (error: Error) => void;
  readonly #copies: Map<string, KeptCopy>;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(directory: string, source: string, onError: (error: Error) => void) {
    this.#file = join(directory, KEPT_COPIES_NAME);
    this.#source = source;
    this.#onError = onError;
    this.#copies = new Map(
      [...readRecord(this.#file)].filter(([path, copy]) =>
        sizeIfStillThere(source, path, copy) !== undefined
      ),
    );
  }

  /** @inheritdoc */
  kept(path: string, reason: string): void {
    const stats = lstatIfExistsSync(join(this.#source, path));
    if (!stats?.isFile()) return this.gone(path);
    // Moved to the end: the oldest are the first to go past the limit.
    this.#copies.delete(path);
    this.#copies.set(path, { ino: String(stats.ino), reason });
    for (const oldest of this.#copies.keys()) {
      if (this.#copies.size <= MOST_RECORDED) break;
      this.#copies.delete(oldest);
    }
    this.#changed();
  }

  /** @inheritdoc */
  gone(path: string): void {
    if (this.#copies.delete(path)) this.#changed();
  }

  /** Writes what changed since the last write, now (at the mount's stop). */
  close(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#write();
  }

  #changed(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, WRITE_DELAY_MS);
    // A mount that stops writes it at close(); nothing else waits for it.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #write(): void {
    const temporary = `${this.#file}.new`;
    try {
      if (this.#copies.size === 0) {
        rmSync(this.#file, { force: true });
        return;
      }
      writeFileSync(temporary, JSON.stringify(Object.fromEntries(this.#copies)) + "\n", {
        mode: 0o600,
      });
      renameSync(temporary, this.#file);
    } catch (error) {
      rmSync(temporary, { force: true });
      this.#onError(error as Error);
    }
  }
}

/**
 * The copies recorded in spool `directory` that are still in `source`: their files, and their
 * bytes now. Nothing where there is no record (no drain mount kept any).
 */
export function keptCopiesIn(directory: string, source: string): { files: number; bytes: number } {
  const tally = { files: 0, bytes: 0 };
  for (const [path, copy] of readRecord(join(directory, KEPT_COPIES_NAME))) {
    const size = sizeIfStillThere(source, path, copy);
    if (size === undefined) continue;
    tally.files++;
    tally.bytes += size;
  }
  return tally;
}

/** The record in `file`; none where it is missing or not one (changed by hand). */
function readRecord(file: string): Map<string, KeptCopy> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return new Map();
  }
  if (typeof parsed !== "object" || parsed === null) return new Map();
  return new Map(
    Object.entries(parsed as Record<string, KeptCopy>).filter(([, copy]) =>
      typeof copy?.ino === "string"
    ),
  );
}

/** The size now of the file at `path` in `source` if it is still the one kept. */
function sizeIfStillThere(source: string, path: string, copy: KeptCopy): number | undefined {
  let stats;
  try {
    stats = lstatIfExistsSync(join(source, path));
  } catch {
    return undefined; // Not reachable (a parent made unreadable): not counted as there.
  }
  return stats?.isFile() && String(stats.ino) === copy.ino ? Number(stats.size) : undefined;
}
