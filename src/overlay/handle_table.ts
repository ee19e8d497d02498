/**
 * The open file handles of the overlay: what each kind knows of the file it was opened on.
 *
 * @module
 */

import type { ReadBlocks } from "../fuse/read_blocks.ts";
import type { FileIdentity } from "../migration/file_identity.ts";
import type { FileStat } from "../store/store.ts";
import type { FileVersion } from "./chunk_cache.ts";
import type { ReadCoverage } from "./copy_on_read.ts";
import type { PendingMirror } from "./journal.ts";
import type { ReadPattern, SequentialReader } from "./sequential_reader.ts";
import type { WriteSession } from "./session_table.ts";
import type { SourceFile } from "./source_file.ts";

/** What every open handle knows: the node the kernel opened it on. */
export interface OpenedOn {
  /** Set once opened (see `OverlayFileSystem.open`); stays when the name goes. */
  nodeid?: number;
  /**
   * A reading handle (of Riak's copy, or of a local or staged file) whose file this mount
   * has since begun to change elsewhere (a write session, a local writer): its next read
   * finds where the file's bytes are now, as one inode's descriptors all see its writes.
   */
  stale?: boolean;
  /** The internal handle its reads go to since it followed such a change. */
  follows?: number;
  /** The look for where its bytes are now, while it runs. */
  following?: Promise<void>;
}

/** An open file handle of the overlay: on a local file, on Riak's copy, or in a write session. */
export type Handle =
  & OpenedOn
  & (
    | {
      kind: "local";
      path: string;
      file: SourceFile;
      size: number;
      /** For copy-on-read: what this handle read of a local file (reads `reads` did not take). */
      coverage?: ReadCoverage;
      /**
       * For copy-on-read: the page-aligned reads of this handle, recorded by the FUSE reader
       * threads (which then serve them from the descriptor) or by `read`.
       */
      reads?: ReadBlocks;
      /** Open for writing where the local file is the truth: mirrored into Riak on release. */
      mirror?: PendingMirror;
      /**
       * The file's version when opened, if its last change was then long enough ago that
       * any write through this handle moves its ctime: the same version at release means
       * nothing was written, and nothing is uploaded again.
       */
      openedVersion?: FileIdentity;
    }
    | RiakHandle
    | { kind: "write"; path: string; session: WriteSession }
  );

/** The bytes of a Riak file removed while open, for the handles that had it open. */
export interface RemovedCopy {
  file: SourceFile;
  size: number;
  /** Handles reading from it; the last one to close closes it. */
  handles: number;
}

/** A file opened for reading from Riak. */
export interface RiakHandle {
  kind: "riak";
  path: string;
  /** Riak's stat when opened: the attributes once the name is removed while open. */
  stat: FileStat;
  version: FileVersion;
  /**
   * A copy of its bytes in the spool (already unlinked there), made when the name was removed
   * while this handle was open; reads come from it then.
   */
  removedCopy?: RemovedCopy;
  pattern: ReadPattern;
  /** Serves sequential reads from one store stream; random reads use the chunk cache. */
  sequential: SequentialReader;
}
