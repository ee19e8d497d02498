/**
 * The write sessions of a Riak-backed mount: an open file being written is a staged file in
 * the spool, shared by the handles opened on it.
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
  mode: number;
  uid: number;
  gid: number;
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
  if (attributes.mtimeNs !== undefined) session.mtimeNs = attributes.mtimeNs;
  if (atimeNs !== undefined) session.atimeNs = atimeNs;
}
