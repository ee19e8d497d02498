/**
 * The upload journal: an append-only file of JSON lines on local disk that says what still
 * has to reach Riak. A line `{"op":"add","id":7,...}` is written before close() returns;
 * `{"op":"done","id":7}` after Riak acknowledged the upload. At start-up the journal is read
 * back and every `add` without its `done` is uploaded again before the mount serves.
 *
 * Two kinds of entries: a staged file ({@link PendingUpload}, modes whose writes go to Riak
 * first), fsync'd before it is acknowledged, so it survives a SIGKILL or a power cut; and a
 * local path to mirror ({@link PendingMirror}, modes whose local file is the truth), written
 * but not fsync'd: it survives a crash of riakfs, and after a power cut it is as durable as
 * the unsynced local file it points at (a pre-warm finds what differs). A line is written
 * at once (a write(2) to the page cache, on the caller's thread); concurrent callers that
 * need an fsync share one (group commit). Only a mirror's `done` waits: those of one turn
 * of the event loop go out as one write after it (lost in a crash, they cost a mirror
 * more at the next start, never one less). An fsync that fails refuses the entries whose
 * callers wait for it, and the file, which may have lost lines, takes no line until it was
 * written anew from what is pending.
 *
 * The journal keeps room for its own lines on its disk ({@link JournalRoom}): on the disk
 * that filled up, a line that finds no free block takes it from there, so a close(2) after
 * write(2)s the disk took is answered as a local disk answers it, and a create, rename or
 * truncate that needs no byte of data still works.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  openSync,
  renameSync,
  rmSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { isNoRoomError } from "../util/no_room.ts";
import { syncDirectory } from "../util/directories.ts";
import type { FileIdentity } from "../migration/file_identity.ts";

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
  /** See `WriteSession.attributesAsSeen`: Riak's mode and owner by then are kept. */
  attributesAsSeen?: true;
  /** Modification time, nanoseconds since the epoch, as decimal text (JSON has no bigint). */
  mtimeNs: string;
  /** An access time set explicitly (utimens), as `mtimeNs`; absent: Riak's is kept. */
  atimeNs?: string;
  /** Size of the staged file when it was journaled. */
  size: number;
  /**
   * Created while Riak could not be asked whether the name was taken: a different file Riak
   * holds under it is one the mount never showed, and is set aside (renamed), not replaced.
   */
  unseen?: true;
  /**
   * Drain: the local file this write superseded, deleted once Riak's copy, read back, is the
   * upload. In the journal, not only in memory: an upload replayed after a crash deletes it
   * too, where a stale copy left in the source would be served during the next outage (and
   * taken along by renames) in place of Riak's.
   */
  supersedes?: JournaledIdentity;
  /**
   * The version of Riak's file under the path this upload goes over, as the mount knew it
   * when it journaled the upload (the one its write session opened, or its own upload that
   * landed since). A removal of the name while the upload is pending removes that version
   * only ({@link PendingMirror.removes}): one written elsewhere meanwhile is set aside. Absent
   * (Riak held nothing: see `creates`; or a journal of an older riakfs): the removal goes as
   * it did before.
   */
  replaces?: RiakVersion;
  /**
   * Riak held no file under the path, as the mount knew it, when it journaled the upload (a
   * file it created there, over nothing: the store's put with `if_none_match`). A removal of
   * the name while the upload is pending removes only this mount's own uploads, should one
   * have landed ({@link PendingMirror.created}): a file another host made there meanwhile is
   * set aside. Absent (a journal of an older riakfs): the removal goes as it did before.
   */
  creates?: true;
  /**
   * Journaled while Riak was away, or still pending as an outage began ({@link
   * UploadJournal.markAway}): once back, the upload goes over only what `replaces` or
   * `creates` say Riak held (or an attempt of its own that landed); a file another host wrote
   * there meanwhile is set aside, not overwritten. Absent (Riak answered from its journal line
   * to its landing, or an older riakfs): it goes over whatever Riak holds, the last writer's
   * bytes winning.
   */
  away?: true;
  /**
   * The versions this mount's earlier uploads of the path would have stored, ended in favour
   * of this one after they may have reached Riak (an attempt ran: its put landed and the
   * directory set's add was refused, say; or it landed whole). One of them in Riak is the
   * mount's own, gone over, never set aside as a file another host wrote ({@link
   * UploadJournal.noteOurs}). Absent: none.
   */
  ours?: RiakVersion[];
}

/**
 * What Riak held under a path as the mount knew it: a version of a file, or `"nothing"` (the
 * mount created the file there). Undefined where the mount does not know.
 */
export type HeldInRiak = RiakVersion | "nothing";

/** What Riak held under `upload`'s path as the mount knew it when it journaled the upload. */
export function heldBefore(upload: PendingUpload): HeldInRiak | undefined {
  return upload.replaces ?? (upload.creates ? "nothing" : undefined);
}

/** The fields of an upload journaled over `held` ({@link PendingUpload.replaces}, `creates`). */
export function goingOver(
  held: HeldInRiak | undefined,
): Pick<PendingUpload, "replaces" | "creates"> {
  if (held === undefined) return {};
  return held === "nothing" ? { creates: true } : { replaces: held };
}

/** A {@link FileIdentity} as a journal line holds it: each number as decimal text. */
export type JournaledIdentity = Record<keyof FileIdentity, string>;

/** `identity` as a journal line holds it. */
export function journaledIdentity(identity: FileIdentity): JournaledIdentity {
  const { size, mtimeNs, ctimeNs, ino, dev } = identity;
  return {
    size: size.toString(),
    mtimeNs: mtimeNs.toString(),
    ctimeNs: ctimeNs.toString(),
    ino: ino.toString(),
    dev: dev.toString(),
  };
}

/** The {@link FileIdentity} a journal line holds. */
export function identityFromJournal(journaled: JournaledIdentity): FileIdentity {
  const { size, mtimeNs, ctimeNs, ino, dev } = journaled;
  return {
    size: BigInt(size),
    mtimeNs: BigInt(mtimeNs),
    ctimeNs: BigInt(ctimeNs),
    ino: BigInt(ino),
    dev: BigInt(dev),
  };
}

/**
 * A path whose local state Riak must take over, in modes where the local file is the
 * truth: `copy` uploads the local file as it is when the upload runs (a directory: makes it
 * with its attributes; nothing when it is gone); `remove` removes Riak's copy unless the local file exists again (then it is copied);
 * `attributes` gives Riak's copy the local permission bits, owner and mtime. In modes that
 * write Riak only, a change of names made while Riak was away: `remove` (the name was
 * removed or renamed away; no local file stands in for it there), `directory` (made with the
 * attributes in `set`, which no local directory holds), `move` (a file only Riak held,
 * renamed to this path: see {@link PendingMirror.moves}; or a directory:
 * {@link PendingMirror.movesDirectory}).
 */
export interface PendingMirror {
  /** Journal id, unique within the journal. */
  id: number;
  /** The path inside the mount, `/`-separated, starting with `/`. */
  path: string;
  /** `copy`: the source's file as it is then, or its directory (with attributes, empty too). */
  mirror: "copy" | "remove" | "attributes" | "directory" | "move";
  /**
   * For `attributes` and `directory`: the values asked for (mtime in nanoseconds, as decimal text), kept
   * exactly; the local file's mtime is only as exact as utimes(2) through a double allows.
   */
  set?: { mode?: number; uid?: number; gid?: number; mtimeNs?: string; atimeNs?: string };
  /**
   * For `copy`: the file as it is, even while it is being written (an fsync's copy: what
   * was written before the fsync is in it; the copy after the last close replaces it).
   */
  snapshot?: true;
  /**
   * Created while Riak could not be asked whether the name was taken: a different file Riak
   * holds under it is one the mount never showed, and is set aside (renamed), not replaced.
   */
  unseen?: true;
  /**
   * For an `unseen` removal of a file renamed or removed while Riak was away, or one with
   * `removes` or `created`: the versions (size, mtime in nanoseconds as decimal text) its uploads called
   * off would have stored. One of them in Riak is this mount's own (an attempt that landed),
   * removed, not set aside.
   */
  ours?: RiakVersion[];
  /**
   * For `remove`: the path was a directory (removed, or renamed away) in the source. Riak's
   * directory goes once it is empty; entries only Riak holds keep it.
   */
  directory?: true;
  /**
   * For the `remove` of a file only Riak held, removed while Riak was away: the version of it
   * (size, mtime in nanoseconds as decimal text) the mount showed. Riak's file goes only while
   * it is that one; another (written elsewhere meanwhile) is set aside, not removed.
   */
  removes?: RiakVersion;
  /**
   * For the `remove` of a file the mount created over nothing in Riak ({@link
   * PendingUpload.creates}), removed or renamed away while its uploads were pending: Riak's
   * file goes only while it is one of `ours` (an upload of this mount's that landed); any
   * other was made there elsewhere meanwhile and is set aside, not removed. Absent (a
   * journal of an older riakfs): whatever Riak holds goes.
   */
  created?: true;
  /**
   * For a `remove` with `removes`, journaled with the move of that version out of this path:
   * found here still, the version was not moved (Riak refused the move until it was given up),
   * and it stays, with a warning, instead of going nowhere.
   */
  movedAway?: true;
  /**
   * For `move`: the file only Riak held at `from`, renamed to this path while Riak was away,
   * as the mount showed it. Riak renames it once back, after the jobs of `from` journaled
   * before (the removal of `from` journaled with it waits for it), while it holds that
   * version there; another is left to that removal, which sets it aside.
   */
  moves?: SeenFile & { from: string };
  /**
   * For `move`: the directory Riak held at `from`, renamed to this path while Riak was away
   * where the mount knew its whole subtree, with the attributes it showed. Riak renames it
   * once back (the store's directory rename), after every job journaled before it at, above
   * or below either name; the jobs journaled after it there wait for it.
   */
  movesDirectory?: MovedDirectory;
}

/** A directory renamed while Riak was away ({@link PendingMirror.movesDirectory}). */
export interface MovedDirectory {
  /** Where Riak holds it. */
  from: string;
  /** The attributes it showed (mtime in nanoseconds, as decimal text). */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: string;
}

/** A version of a file in Riak as a journal line holds it: its size and mtime (decimal ns). */
export interface RiakVersion {
  size: number;
  mtimeNs: string;
}

/** A file Riak held, as a mount last saw it: its version and the attributes it showed. */
export interface SeenFile extends RiakVersion {
  mode: number;
  uid: number;
  gid: number;
  /** As {@link PendingUpload.atimeNs}. */
  atimeNs?: string;
}

/** An entry of the journal: a staged file to upload, or a local path to mirror. */
export type JournalEntry = PendingUpload | PendingMirror;

/** The fields a caller supplies; the journal assigns the id. */
export type NewUpload = Omit<PendingUpload, "id">;

/** The fields of a mirror entry a caller supplies. */
export type NewMirror = Omit<PendingMirror, "id">;

/** Whether `entry` is a local path to mirror rather than a staged file. */
export function isMirror(entry: JournalEntry | NewUpload | NewMirror): entry is PendingMirror {
  return "mirror" in entry;
}

/** The staged files `entries` refer to, by name in the spool. */
export function stagedNames(entries: readonly JournalEntry[]): Set<string> {
  return new Set(entries.flatMap((entry) => isMirror(entry) ? [] : [entry.staged]));
}

type JournalLine =
  | ({ op: "add" } & JournalEntry)
  | { op: "done"; id: number }
  /** Entries added in one line: a crash keeps all of them or none (see {@link addTogether}). */
  | { op: "together"; add: JournalEntry[] };

/** What a caller of {@link UploadJournal.addTogether} supplies of each entry. */
export type NewEntry = NewUpload | NewMirror;

/**
 * System errors a journal passes on as they are: the filesystem is full, over quota or
 * read-only, which a write(2) on a local disk answers too (ENOSPC, not EIO, tells the
 * application what to do about it).
 */
const PASSED_ON_CODES = new Set(["ENOSPC", "EDQUOT", "EROFS"]);

/** The journal file could not be read or written; the mount must not serve writes. */
export class JournalError extends Error {
  /** The journal file. */
  readonly file: string;
  /** The system error's code when the disk is full, over quota or read-only; else undefined. */
  readonly code: string | undefined;

  constructor(file: string, message: string, cause?: unknown) {
    super(`upload journal ${file}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = "JournalError";
    this.file = file;
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    this.code = code !== undefined && PASSED_ON_CODES.has(code) ? code : undefined;
  }
}

/** Room kept for the journal's lines: about a thousand of them. */
const JOURNAL_ROOM_BYTES = 256 * 1024;
/**
 * Room given back to the disk at a time, when a line finds none: a block, which the line
 * takes before anyone else can (more would go to the writes that filled the disk).
 */
const JOURNAL_ROOM_PIECE_BYTES = 4096;
/** Taking room back is tried at most this often (it fails while the disk stays full). */
const JOURNAL_ROOM_REFILL_MS = 1_000;

/**
 * Room on the journal's disk kept for its lines, as a file of zeros beside it
 * (`journal.room`). Applications writing on a full disk take every block there is; the
 * journal's next line (that of a close(2), or the entry a create, rename or truncate needs
 * before it is done) would then find none, and the close(2) answer ENOSPC after the write(2)s
 * were taken: the file gone (drain, riak), or a rename that needs no byte refused (shadow,
 * migrate). A line that finds no room frees a piece of this file and is written again; the
 * room is taken back, as far as the disk has it, once there is some again.
 *
 * @example
 * ```ts
 * const room = new JournalRoom("/srv/.riakfs-spool/journal.room");
 * room.refill();
 * if (room.release(300)) retryTheWrite();
 * ```
 */
export class JournalRoom {
  /** The file holding the room. */
  readonly file: string;
  /** What the file is believed to hold (its size when last looked at or changed). */
  #bytes = 0;
  #refilledAt = -Infinity;

  constructor(file: string) {
    this.file = file;
  }

  /** Bytes of room held now, as last seen. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Gives back to the disk at least `needed` bytes, in whole pieces; false when there was no
   * room left to give.
   */
  release(needed: number): boolean {
    let size: number;
    try {
      size = this.#sizeNow();
    } catch {
      this.#bytes = 0;
      return false; // Never made, or removed by hand.
    }
    if (size === 0) return false;
    const pieces = Math.ceil(Math.max(needed, 1) / JOURNAL_ROOM_PIECE_BYTES);
    this.#bytes = Math.max(0, size - pieces * JOURNAL_ROOM_PIECE_BYTES);
    try {
      truncateSync(this.file, this.#bytes);
    } catch {
      return false;
    }
    return true;
  }

  /**
   * Takes room back up to its full size, as far as the disk has it; unless `now` it is tried
   * at most once every {@link JOURNAL_ROOM_REFILL_MS}, and `now` looks at the file whatever it
   * was believed to hold (the spool removed while mounted took it along). Never throws:
   * without room, lines are written as long as the disk takes them.
   */
  refill(now = false): void {
    if (this.#bytes >= JOURNAL_ROOM_BYTES && !now) return;
    const at = Date.now();
    if (!now && at - this.#refilledAt < JOURNAL_ROOM_REFILL_MS) return;
    this.#refilledAt = at;
    let fd: number;
    try {
      fd = openSync(this.file, "a", 0o600);
    } catch {
      return; // Not even an inode left.
    }
    try {
      let size = Number(fstatSync(fd).size);
      const zeros = Buffer.alloc(JOURNAL_ROOM_PIECE_BYTES);
      while (size < JOURNAL_ROOM_BYTES) {
        size += writeSync(fd, zeros, 0, Math.min(zeros.length, JOURNAL_ROOM_BYTES - size));
      }
    } catch {
      // The disk is full: what was written stays taken.
    } finally {
      this.#bytes = Number(fstatSync(fd).size);
      closeSync(fd);
    }
  }

  #sizeNow(): number {
    const fd = openSync(this.file, "r");
    try {
      return Number(fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Compact when the file holds this many bytes: emptied when nothing is pending, else
 * rewritten with the pending entries (when they are a quarter of it or less: a file open
 * for weeks keeps its entry pending).
 */
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
  /** Room on its disk kept for its lines. */
  readonly #room: JournalRoom;
  /**
   * The journal's descriptor (append mode); replaced when the file is rewritten. Undefined
   * while the file cannot be made ({@link UploadJournal.notMadeYet}).
   */
  #fd: number | undefined;
  /** Rewrite when the file grows to this many bytes. */
  #compactAt = COMPACT_AT_BYTES;
  readonly #pending = new Map<number, JournalEntry>();
  /** The staged files of {@link #pending}, with their sizes (see {@link stagedSizes}). */
  readonly #stagedSizes = new Map<string, number>();
  /** How many entries of {@link #pending} name each staged file (a rename shares one). */
  readonly #stagedUsers = new Map<string, number>();
  /**
   * The length of the lines {@link #pending} takes in a compacted file: kept as entries come
   * and go, so that seeing whether a compaction is worth it does not write out each entry.
   */
  #pendingLength = 0;
  #nextId: number;
  #bytes: number;
  /** The fsync that will cover the lines written now, until it starts. */
  #nextSync: Promise<void> | undefined;
  /**
   * The entries of {@link add} and {@link addTogether} written since the last fsync started:
   * the next one covers them, and refuses them should it fail.
   */
  #unsynced: JournalEntry[] = [];
  /**
   * Why an fsync failed, while the file has not been written anew since: it may have lost
   * lines, in part (the disk kept none of the pages whose writeback failed, and the page cache
   * lets them go), and a line appended after such a hole would be damaged for the next start.
   * No line is appended then: each one tries to write the file anew first.
   */
  #failedSync: Error | undefined;
  /** The last fsync, settled or not; the next one starts after it. */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  /** Lines of mirrors done, not written yet (see {@link complete}). */
  #mirrorsDone = "";
  #mirrorsDoneWrite: ReturnType<typeof setImmediate> | undefined;

  private constructor(
    file: string,
    fd: number | undefined,
    read: JournalContent,
    bytes: number,
    pendingLength: number,
  ) {
    this.file = file;
    this.#room = new JournalRoom(`${file}.room`);
    this.#fd = fd;
    if (fd !== undefined) this.#room.refill(true);
    for (const entry of read.pending) this.#track(entry);
    this.#pendingLength = pendingLength;
    this.#nextId = read.lastId + 1;
    this.#bytes = bytes;
  }

  /**
   * Opens (or creates) the journal, returning it with the uploads still pending, oldest
   * first. The file is rewritten to hold only those (crash-safe: temp file + rename). A torn
   * last line from a crash mid-append is ignored; a damaged line elsewhere is an error. On a
   * full disk, where the rewrite finds no room, the file is appended to as it is (cut back
   * to its last whole line, which frees rather than takes room): a mount over the disk that
   * filled up must start, replay and drain it; the next start with room compacts.
   */
  static async open(file: string): Promise<{ journal: UploadJournal; pending: JournalEntry[] }> {
    const read = await readJournal(file);
    let opened: { fd: number; bytes: number; pendingLength: number };
    try {
      opened = rewrite(file, read.pending);
    } catch (error) {
      if (!isNoRoomError(error)) throw new JournalError(file, (error as Error).message, error);
      try {
        opened = {
          ...appendAsItIs(file, read.intactBytes),
          pendingLength: read.pending.reduce((sum, entry) => sum + addLine(entry).length, 0),
        };
      } catch (error) {
        throw new JournalError(file, (error as Error).message, error);
      }
    }
    return {
      journal: new UploadJournal(file, opened.fd, read, opened.bytes, opened.pendingLength),
      pending: read.pending,
    };
  }

  /**
   * A journal whose file cannot be made yet (its spool's disk has no room for the spool's
   * directory): nothing is pending, since there was no spool; every append is refused
   * (ENOSPC) until {@link recreate} made the file.
   */
  static notMadeYet(file: string): UploadJournal {
    return new UploadJournal(file, undefined, { pending: [], lastId: 0, intactBytes: 0 }, 0, 0);
  }

  /** Uploads journaled and not yet completed. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * The staged files of the uploads not yet completed, by name, with their journaled sizes:
   * kept as they come and go (a status report after an outage asks for tens of thousands),
   * so the map changes as uploads complete.
   */
  stagedSizes(): ReadonlyMap<string, number> {
    return this.#stagedSizes;
  }

  /**
   * Records an upload to do; resolves with its id once the line is written (and, for a
   * staged file, fsync'd).
   */
  async add(upload: NewUpload): Promise<number> {
    const entry = this.#append({ id: this.#nextId++, ...upload });
    this.#unsynced.push(entry);
    await this.#sync();
    return entry.id;
  }

  /**
   * Records entries that only together say what Riak must end up with (a rename while Riak
   * is away: the upload under the new name and the removal of the old one): one line, so a
   * crash keeps all of them or none, fsync'd before this resolves with them, ids in order.
   */
  async addTogether(entries: readonly NewEntry[]): Promise<JournalEntry[]> {
    const added = entries.map((entry) => ({ id: this.#nextId++, ...entry }) as JournalEntry);
    for (const entry of added) {
      this.#track(entry);
      this.#pendingLength += addLine(entry).length;
    }
    try {
      this.#write(JSON.stringify({ op: "together", add: added }) + "\n");
    } catch (error) {
      for (const entry of added) this.#forget(entry);
      throw error;
    }
    this.#unsynced.push(...added);
    await this.#sync();
    return added;
  }

  /**
   * Records a local path to mirror: the line is written when this returns (no fsync, see
   * above); throws a {@link JournalError} when it cannot be.
   */
  mirror(mirror: NewMirror): PendingMirror {
    return this.#append({ id: this.#nextId++, ...mirror });
  }

  /** Writes the line of a new entry, pending from now on; throws when it cannot be written. */
  #append<T extends JournalEntry>(entry: T): T {
    const line = addLine(entry);
    this.#track(entry);
    this.#pendingLength += line.length;
    try {
      this.#write(line);
    } catch (error) {
      this.#forget(entry);
      throw error;
    }
    return entry;
  }

  /**
   * Counts `entry` among those pending; the caller adds its line's length to
   * {@link #pendingLength} (at opening, the rewrite measured all of them at once).
   */
  #track(entry: JournalEntry): void {
    this.#pending.set(entry.id, entry);
    if (!isMirror(entry)) {
      this.#stagedSizes.set(entry.staged, entry.size);
      this.#stagedUsers.set(entry.staged, (this.#stagedUsers.get(entry.staged) ?? 0) + 1);
    }
  }

  /** Takes `entry` out of those pending. */
  #forget(entry: JournalEntry): void {
    if (!this.#pending.delete(entry.id)) return;
    this.#pendingLength -= addLine(entry).length;
    if (isMirror(entry)) return;
    const users = (this.#stagedUsers.get(entry.staged) ?? 1) - 1;
    if (users > 0) {
      this.#stagedUsers.set(entry.staged, users);
      return;
    }
    this.#stagedUsers.delete(entry.staged);
    this.#stagedSizes.delete(entry.staged);
  }

  /**
   * Marks pending uploads {@link PendingUpload.away} (still pending as an outage began): each
   * entry's line is written again with the mark, all in one write, fsync'd before this
   * resolves. The same `add` op under the same id: a reader, of this riakfs or an older one,
   * keeps the last line of an id, and a `done` line written after it still ends it. Returns
   * the entries as they are now pending (those already done or marked are left out).
   */
  async markAway(ids: readonly number[]): Promise<PendingUpload[]> {
    const marked: { before: PendingUpload; after: PendingUpload }[] = [];
    for (const id of ids) {
      const before = this.#pending.get(id);
      if (before === undefined || isMirror(before) || before.away) continue;
      marked.push({ before, after: { ...before, away: true } });
    }
    if (marked.length === 0) return [];
    this.#replacePending(marked, marked.map(({ after }) => addLine(after)).join(""));
    await this.#sync();
    return marked.map(({ after }) => after);
  }

  /**
   * Gives the pending upload `id` the versions `ours` ({@link PendingUpload.ours}): its line
   * is written again with them, at once, so a `done` line written after it (that of the
   * upload whose version it records) never goes without it; resolves once fsync'd. The same
   * `add` op under the same id, as {@link markAway} writes. Nothing for an id not pending or
   * not an upload.
   */
  async noteOurs(id: number, ours: readonly RiakVersion[]): Promise<void> {
    const before = this.#pending.get(id);
    if (before === undefined || isMirror(before)) return;
    const after: PendingUpload = { ...before, ours: [...ours] };
    this.#replacePending([{ before, after }], addLine(after));
    await this.#sync();
  }

  /**
   * Writes `lines`, the entries' `after` versions, with those pending in their place first:
   * the line may be the one that compacts the file, which writes what is pending, and the
   * `before` there would lose the change at the next start. Put back if it cannot be written.
   */
  #replacePending(
    changes: readonly { before: PendingUpload; after: PendingUpload }[],
    lines: string,
  ): void {
    const swap = (from: "before" | "after", to: "before" | "after") => {
      for (const change of changes) {
        this.#pending.set(change[to].id, change[to]);
        this.#pendingLength += addLine(change[to]).length - addLine(change[from]).length;
      }
    };
    swap("before", "after");
    try {
      this.#write(lines);
    } catch (error) {
      swap("after", "before");
      throw error;
    }
  }

  /**
   * Records that uploads reached Riak (or are no longer needed). The lines of staged files
   * go out in one write, so a crash keeps all of them or none: uploads of one file called
   * off together (its unlink) are never half replayed.
   */
  async complete(...ids: number[]): Promise<void> {
    let lines = "";
    for (const id of ids) {
      const entry = this.#pending.get(id);
      if (entry === undefined) continue;
      this.#forget(entry);
      if (isMirror(entry)) {
        // A mirror whose line is lost (a crash before the write, a power cut) is at worst
        // mirrored once more: the lines of a burst are written together, after this turn.
        this.#mirrorsDone += doneLine(id);
        this.#mirrorsDoneWrite ??= setImmediate(() => this.#writeMirrorsDone());
        continue;
      }
      lines += doneLine(id);
    }
    if (lines === "") return;
    this.#write(lines);
    await this.#sync();
  }

  /**
   * Writes the file again at its path with the pending entries, and appends there from now
   * on: its file was removed (the spool deleted while mounted), and lines appended to the
   * removed file would be read by no restart; or it was not made yet.
   */
  recreate(): void {
    if (this.#closed) throw new JournalError(this.file, "journal is closed");
    try {
      this.#writeAnew();
    } catch (error) {
      throw new JournalError(this.file, (error as Error).message, error);
    }
    this.#room.refill(true);
  }

  /** Flushes and closes the file (written anew first if an fsync failed since it last was). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#writeMirrorsDone();
    this.#closed = true;
    await this.#tail;
    if (this.#failedSync) {
      try {
        // The next start then finds what is pending, not what the disk kept of the lines.
        this.#writeAnew();
      } catch {
        // It reads what the disk kept, a torn last line left out.
      }
    }
    if (this.#fd !== undefined) closeSync(this.#fd);
  }

  #writeMirrorsDone(): void {
    clearImmediate(this.#mirrorsDoneWrite);
    this.#mirrorsDoneWrite = undefined;
    const lines = this.#mirrorsDone;
    this.#mirrorsDone = "";
    if (lines === "" || this.#closed) return;
    try {
      this.#write(lines);
    } catch {
      // Not written (disk full): those mirrors run once more at the next start.
    }
  }

  /**
   * Appends whole lines, or nothing (throws a {@link JournalError}); compacts the file once
   * it grew big enough. After a failed fsync, writes the file anew instead.
   */
  #write(lines: string): void {
    if (this.#closed) throw new JournalError(this.file, "journal is closed");
    const fd = this.#fd;
    if (fd === undefined) {
      const noRoom = Object.assign(new Error("no room on its disk to make it yet"), {
        code: "ENOSPC",
      });
      throw new JournalError(this.file, noRoom.message, noRoom);
    }
    if (this.#failedSync) {
      // The new file holds these lines' changes already: each caller changed what is pending
      // before writing them.
      this.#writeAnewAfterFailedSync();
      return;
    }
    try {
      if (this.#pending.size === 0 && this.#bytes >= COMPACT_AT_BYTES) {
        // Nothing pending: every line so far is obsolete, these included.
        ftruncateSync(fd, 0);
        this.#bytes = 0;
        this.#mirrorsDone = "";
        return;
      }
      const bytes = Buffer.from(lines);
      for (;;) {
        try {
          this.#appendWhole(fd, bytes);
          break;
        } catch (error) {
          // The disk is full: again in room its own file gives back, while it has some.
          if (!isNoRoomError(error) || !this.#room.release(bytes.length)) throw error;
        }
      }
      this.#bytes += bytes.length;
      this.#room.refill();
      if (this.#bytes >= this.#compactAt) this.#rewrite();
    } catch (error) {
      throw new JournalError(this.file, (error as Error).message, error);
    }
  }

  /** Appends `bytes` whole at the end, or nothing (throws). */
  #appendWhole(fd: number, bytes: Buffer): void {
    try {
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    } catch (error) {
      // A torn line (disk full) would damage every line after it: take it back.
      ftruncateSync(fd, this.#bytes);
      throw error;
    }
  }

  /**
   * Rewrites the file with the pending entries only ({@link #writeAnew}), unless they make up
   * more than a quarter of it (then the next try waits for twice the size).
   */
  #rewrite(): void {
    if (this.#pendingLength * 4 > this.#bytes) {
      this.#compactAt = this.#bytes * 2;
      return;
    }
    try {
      this.#writeAnew();
    } catch {
      // The file is as it was, this line in it: compaction waits for twice the size.
      this.#compactAt = this.#bytes * 2;
    }
  }

  /**
   * Replaces the file with one holding the pending entries only (synced, then renamed into
   * place), appended to from now on; throws when it cannot, the file as it was. The old
   * descriptor closes once the fsyncs in flight on it are done; the lines they cover are in
   * the new file, synced.
   */
  #writeAnew(): void {
    const old = this.#fd;
    ({ fd: this.#fd, bytes: this.#bytes } = rewrite(this.file, [...this.#pending.values()]));
    this.#compactAt = COMPACT_AT_BYTES;
    // The new file holds no entry those lines are about, and none of the lines lost.
    this.#mirrorsDone = "";
    this.#failedSync = undefined;
    if (old !== undefined) void this.#tail.then(() => closeSync(old));
  }

  /** {@link #writeAnew} after an fsync failed; a {@link JournalError} while it cannot be. */
  #writeAnewAfterFailedSync(): void {
    const failed = this.#failedSync!;
    try {
      this.#writeAnew();
    } catch (error) {
      throw new JournalError(
        this.file,
        `an fsync failed (${failed.message}) and the journal cannot be written anew (` +
          `${(error as Error).message}): no line is taken until it can`,
        failed,
      );
    }
  }

  /** An fsync that starts after every line written so far. */
  #sync(): Promise<void> {
    // Group commit: lines written before an fsync starts share it.
    if (this.#nextSync) return this.#nextSync;
    const sync = this.#tail.then(async () => {
      this.#nextSync = undefined;
      const covered = this.#unsynced;
      this.#unsynced = [];
      const fd = this.#fd!; // A line was written: the file is there.
      try {
        // Written anew, the file is synced whole, these lines' entries in it.
        if (this.#failedSync) return this.#writeAnewAfterFailedSync();
        await new Promise<void>((resolve, reject) =>
          fsync(fd, (error) => error ? reject(error) : resolve())
        );
      } catch (error) {
        // Their callers are refused: none of them stays pending, to be replayed at the next
        // start or kept in memory. The file may have lost any line written since the last
        // fsync: what is pending goes into a new one, at once if it can.
        for (const { id } of covered) {
          // As pending now: marked away meanwhile, say.
          const entry = this.#pending.get(id);
          if (entry) this.#forget(entry);
        }
        if (error instanceof JournalError) throw error;
        this.#failedSync = error as Error;
        try {
          this.#writeAnew();
        } catch {
          // Lines are refused until it can be (#write).
        }
        throw new JournalError(this.file, (error as Error).message, error);
      }
    });
    this.#nextSync = sync;
    this.#tail = sync.catch(() => {});
    return sync;
  }
}

function doneLine(id: number): string {
  return JSON.stringify({ op: "done", id }) + "\n";
}

function addLine(entry: JournalEntry): string {
  return JSON.stringify({ op: "add", ...entry }) + "\n";
}

/**
 * Replaces `file` with `entries` (temp file, fsync, rename, fsync of the directory) and
 * returns its descriptor, open for appending since before the rename. Synchronous: no line
 * can be written in between. A failure before the rename leaves `file` as it was.
 */
function rewrite(
  file: string,
  entries: readonly JournalEntry[],
): { fd: number; bytes: number; pendingLength: number } {
  const lines = entries.map(addLine).join("");
  const text = Buffer.from(lines);
  const temporary = `${file}.compact`;
  rmSync(temporary, { force: true }); // Left by a crash mid-rewrite.
  const fd = openSync(temporary, "a", 0o600);
  try {
    for (let at = 0; at < text.length;) at += writeSync(fd, text, at);
    fsyncSync(fd);
    renameSync(temporary, file);
  } catch (error) {
    closeSync(fd);
    // What it holds takes room a full disk needs (the journal's own next line, say).
    rmSync(temporary, { force: true });
    throw error;
  }
  try {
    syncDirectory(dirname(file));
  } catch {
    // Renamed already: this descriptor is the journal now, whatever the directory's fsync
    // says (the next fsync of the file covers its lines, not the rename).
  }
  return { fd, bytes: text.length, pendingLength: lines.length };
}

/** What a journal file holds. */
interface JournalContent {
  /** Entries added and not done, oldest first. */
  pending: JournalEntry[];
  /** The highest id of any line: a journal appended to as it is must not use one again. */
  lastId: number;
  /** Bytes up to the end of the last whole line (a torn line after it was never acknowledged). */
  intactBytes: number;
}

/**
 * How many entries the journal `file` holds that are not done (0 when there is no file),
 * read without opening it for writing: nothing is rewritten, replayed or set aside. Throws a
 * {@link JournalError} when it cannot be read or a line is damaged.
 */
export async function pendingInJournal(file: string): Promise<number> {
  return (await readJournal(file)).pending.length;
}

async function readJournal(file: string): Promise<JournalContent> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { pending: [], lastId: 0, intactBytes: 0 };
    }
    throw new JournalError(file, (error as Error).message, error);
  }
  // Every line is written whole with its newline, and acknowledged (fsync'd) only after: a
  // last line without one was cut off by a crash, never acknowledged.
  const intactBytes = bytes.lastIndexOf(0x0a) + 1;
  const text = bytes.subarray(0, intactBytes).toString("utf8");
  const pending = new Map<number, JournalEntry>();
  let lastId = 0;
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index];
    if (line === "") continue;
    let parsed: JournalLine;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new JournalError(file, `line ${index + 1} is damaged: ${line.slice(0, 80)}`);
    }
    if (parsed.op === "add") {
      const { op: _op, ...entry } = parsed;
      pending.set(entry.id, entry);
      // A loop: spreading 100,000s of ids into Math.max overflows the stack.
      lastId = Math.max(lastId, entry.id);
    } else if (parsed.op === "done") {
      pending.delete(parsed.id);
      lastId = Math.max(lastId, parsed.id);
    } else if (parsed.op === "together") {
      for (const entry of parsed.add) {
        pending.set(entry.id, entry);
        lastId = Math.max(lastId, entry.id);
      }
    } else throw new JournalError(file, `line ${index + 1} has an unknown op`);
  }
  return { pending: [...pending.values()].sort((a, b) => a.id - b.id), lastId, intactBytes };
}

/**
 * Opens `file` for appending as it is, cut back to `intactBytes` (a torn last line would
 * swallow the next one), creating it empty if missing: neither needs a free block.
 */
function appendAsItIs(file: string, intactBytes: number): { fd: number; bytes: number } {
  const fd = openSync(file, "a", 0o600);
  try {
    ftruncateSync(fd, intactBytes);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { fd, bytes: intactBytes };
}
