/**
 * The write sessions of a Riak-backed mount: an open file being written is a staged file in
 * the spool, shared by the handles opened on it. {@link SessionTable} holds them by path.
 *
 * @module
 */

import type { FileHandle } from "node:fs/promises";
import type { FileIdentity } from "../migration/file_identity.ts";
import type { HeldInRiak } from "./journal.ts";

/** An open file being written in a Riak-backed mode: a staged file in the spool. */
export interface WriteSession {
  path: string;
  /** The staged file's name in the spool, and an open handle on it. */
  staged: string;
  handle: FileHandle;
  /** Open file handles sharing this session. */
  refs: number;
  /** Written since the last commit. */
  dirty: boolean;
  /** The staged file was handed to the upload queue; further writes need a new one. */
  committed: boolean;
  /**
   * The path of the session's upload journaled at a FLUSH but held back (an empty first
   * version, see `#commitNow` in overlay.ts): let go by the next commit or the last close.
   */
  heldAt?: string;
  mode: number;
  uid: number;
  gid: number;
  /**
   * `mode`, `uid` and `gid` are Riak's as the session found them, not set through the mount:
   * its uploads keep the ones Riak holds by then (another host's chmod meanwhile stays).
   */
  attributesAsSeen?: true;
  /** An explicit mtime (utimens); else the staged file's own mtime. */
  mtimeNs?: bigint;
  /** An access time set explicitly (utimens), kept with the file in Riak. */
  atimeNs?: bigint;
  /** The local file this session supersedes (drain), as it was when the session began. */
  supersedes?: FileIdentity;
  /**
   * The end of the operations queued on the session (reads, writes, truncates, commits):
   * each runs alone, so the staged file and its handle change only between them.
   */
  queue: Promise<void>;
  /** Unlinked or renamed over while open: its handles live on, its bytes go nowhere. */
  detached: boolean;
  /** Let go (closed): a change that finds it after that goes to the file, not to it. */
  closed?: boolean;
  /**
   * Opened without O_TRUNC, and nothing needed the file's bytes yet: they are still where
   * they were (Riak, the source, a pending upload), the staged file is empty. They are
   * copied on the first read, write, fallocate, truncate to a size > 0 or commit
   * (`#stageNow` in overlay.ts); a truncate to 0 needs none of them, and an open
   * closed unused costs no copy. `size`: the file's when opened, what stat shows meanwhile.
   */
  unstaged?: { size: number };
  /**
   * The version of Riak's file under the session's name, as the mount knows it: the one
   * opened, or the session's upload that landed since. A removal (or a rename away) of the
   * name during an outage removes that version only (`PendingMirror.removes`): one
   * written elsewhere meanwhile is set aside, as for a file that is not open. `"nothing"`: the
   * session created the file where Riak held none; its removal removes only its own upload,
   * should one land (`PendingMirror.created`).
   */
  inRiak?: HeldInRiak;
}

/**
 * Whether `session` holds nothing written through it: opened without O_TRUNC and neither
 * written nor truncated since (its bytes unstaged, or staged for a read and unchanged).
 * Its file's bytes and attributes are then still where they were, and a change of its
 * attributes can go there as by path.
 */
export function holdsNothingWritten(session: WriteSession): boolean {
  return !session.dirty && !session.committed && !session.detached;
}

/** Sets the attributes given (the others stay) as `session`'s, which its commits journal. */
export function takeAttributes(
  session: WriteSession,
  attributes: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint },
  atimeNs: bigint | undefined,
): void {
  if (attributes.mode !== undefined) session.mode = attributes.mode;
  if (attributes.uid !== undefined) session.uid = attributes.uid;
  if (attributes.gid !== undefined) session.gid = attributes.gid;
  const setHere = [attributes.mode, attributes.uid, attributes.gid].some((set) =>
    set !== undefined
  );
  if (setHere) delete session.attributesAsSeen;
  if (attributes.mtimeNs !== undefined) session.mtimeNs = attributes.mtimeNs;
  if (atimeNs !== undefined) session.atimeNs = atimeNs;
}

/**
 * The write sessions by path: the open ones, the ones being started, and the local files
 * they superseded (drain). One session per path: an open joins the one there until it is
 * closed, detached or moved away, and a new one starts after that.
 */
export class SessionTable {
  readonly #sessions = new Map<string, WriteSession>();
  /** Sessions being started (their content staged), by path: an open joins it once ready. */
  readonly #sessionsStarting = new Map<string, Promise<WriteSession>>();
  /**
   * Drain: local files superseded by a write through the mount, by path, until uploaded.
   * Their name moves with the session's ({@link move}).
   */
  readonly superseded = new Map<string, FileIdentity>();

  /** Sessions open (the memory held, for `tableSizes`). */
  get size(): number {
    return this.#sessions.size;
  }

  /** The session open at `path`, which an open joins. */
  get(path: string): WriteSession | undefined {
    return this.#sessions.get(path);
  }

  /** Whether a session is open at `path`. */
  has(path: string): boolean {
    return this.#sessions.has(path);
  }

  /** The sessions open. */
  values(): IterableIterator<WriteSession> {
    return this.#sessions.values();
  }

  /** The start of the session of `path` under way, if any: an open waits for it. */
  startingAt(path: string): Promise<WriteSession> | undefined {
    return this.#sessionsStarting.get(path);
  }

  /**
   * Runs `start` as the one session start of `path`; it is in the table once ready, and
   * `ready` runs then, before anything else can find it there.
   */
  async starting(
    path: string,
    start: () => Promise<WriteSession>,
    ready: (session: WriteSession) => void,
  ): Promise<WriteSession> {
    const started = start();
    this.#sessionsStarting.set(path, started);
    try {
      const session = await started;
      this.#sessions.set(path, session);
      ready(session);
      return session;
    } finally {
      this.#sessionsStarting.delete(path);
    }
  }

  /** Waits for the sessions being started at or below `paths`. */
  async startedAtOrBelow(paths: string[]): Promise<void> {
    const waits = [...this.#sessionsStarting].filter(([path]) =>
      paths.some((root) => path === root || path.startsWith(`${root}/`))
    ).map(([, started]) => started.catch(() => {}));
    await Promise.all(waits);
  }

  /** The sessions open at or below `path`. */
  atOrBelow(path: string): WriteSession[] {
    return [...this.#sessions].filter(([at]) => at === path || at.startsWith(`${path}/`))
      .map(([, session]) => session);
  }

  /** Runs `body` with every operation of `sessions` waited for and none started meanwhile. */
  holding<T>(sessions: WriteSession[], body: () => Promise<T>): Promise<T> {
    // One order for everybody: two renames holding overlapping sessions never deadlock.
    const ordered = [...new Set(sessions)].sort((a, b) => a.path < b.path ? -1 : 1);
    const hold = (index: number): Promise<T> =>
      index === ordered.length ? body() : this.inSession(ordered[index], () => hold(index + 1));
    return hold(0);
  }

  /** Runs `operation` on `session` once every operation queued before it ended. */
  inSession<T>(session: WriteSession, operation: () => Promise<T>): Promise<T> {
    const run = session.queue.then(operation);
    session.queue = run.then(() => {}, () => {});
    return run;
  }

  /** The session's name is gone (unlinked, renamed over): its open handles write for nobody. */
  detach(session: WriteSession): void {
    session.detached = true;
    if (this.#sessions.get(session.path) === session) this.#sessions.delete(session.path);
  }

  /**
   * The session is let go (its last open ended): a change that finds it after that goes to
   * the file, and an open starts a new session. A newer session at its name stays.
   */
  close(session: WriteSession): void {
    session.closed = true;
    if (this.#sessions.get(session.path) === session) this.#sessions.delete(session.path);
  }

  /**
   * The session's file is renamed to `to`, with the local file it superseded. Its handles
   * keep their own paths: the overlay moves them.
   */
  move(session: WriteSession, to: string): void {
    const from = session.path;
    if (this.#sessions.get(from) === session) this.#sessions.delete(from);
    session.path = to;
    this.#sessions.set(to, session);
    const superseded = this.superseded.get(from);
    if (superseded) {
      this.superseded.delete(from);
      this.superseded.set(to, superseded);
    }
  }
}
