/**
 * The open file handles of the overlay: what each kind knows of the file it was opened on,
 * and the table of open file and directory handles by number.
 *
 * @module
 */

import { Errno, fail } from "../fuse/filesystem.ts";
import type { ReadBlocks } from "../fuse/read_blocks.ts";
import type { FileIdentity } from "../migration/file_identity.ts";
import type { FileStat } from "../store/store.ts";
import type { FileVersion } from "./chunk_cache.ts";
import type { ReadCoverage } from "./copy_on_read.ts";
import type { DirectoryStream } from "./directory_stream.ts";
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
      /** Changed by {@link HandleTable.move} only: the table indexes handles by it. */
      readonly path: string;
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
    | {
      kind: "write";
      /** Changed by {@link HandleTable.repath} only: the table indexes handles by it. */
      readonly path: string;
      session: WriteSession;
    }
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
  /** Changed by {@link HandleTable.move} only: the table indexes handles by it. */
  readonly path: string;
  /** Riak's stat when opened: the attributes once the name is removed while open. */
  stat: FileStat;
  /** Drain: what this handle read, to free the local copy once it read the whole file. */
  coverage?: ReadCoverage;
  /** Drain: its page-aligned reads, recorded at no cost per read (else into `coverage`). */
  reads?: ReadBlocks;
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

/**
 * The mount's open handles by number: file handles ({@link Handle}) and directory handles (their
 * listings), which share one pool of numbers.
 */
export class HandleTable {
  readonly #handles = new Map<number, Handle>();
  readonly #directories = new Map<number, DirectoryStream>();
  /**
   * The file handles by path, each path's in the order they came there: a question about one
   * path (every OPEN asks one) looks at that path's handles, not at every handle open (a
   * server holds thousands).
   */
  readonly #atPath = new Map<string, Map<number, Handle>>();
  /** Riak handles open: a removal or rename with none has no open content to copy. */
  #riakHandlesOpen = 0;
  #nextHandle = 1;
  /**
   * Released handle numbers, handed out again first: the FUSE reader threads serve only
   * handles below 65,536 themselves (`Opened.localFd`), and a mount runs for months.
   */
  readonly #freeHandles: number[] = [];

  /** File handles open (the memory held, for `tableSizes`). */
  get size(): number {
    return this.#handles.size;
  }

  /** Riak handles open: with none, nothing reads Riak's copy of any file. */
  get riakHandlesOpen(): number {
    return this.#riakHandlesOpen;
  }

  /** Opens file handle `handle`: its number, a released one first. */
  add(handle: Handle): number {
    const fh = this.#newHandle();
    this.#handles.set(fh, handle);
    this.#index(fh, handle);
    if (handle.kind === "riak") this.#riakHandlesOpen++;
    return fh;
  }

  /** Opens a directory handle listing `stream`: its number, from the file handles' pool. */
  addDirectory(stream: DirectoryStream): number {
    const fh = this.#newHandle();
    this.#directories.set(fh, stream);
    return fh;
  }

  /** File handle `fh`, if it is open. */
  get(fh: number): Handle | undefined {
    return this.#handles.get(fh);
  }

  /** File handle `fh`; EBADF when it is not open. */
  require(fh: number): Handle {
    const handle = this.#handles.get(fh);
    if (!handle) throw fail(Errno.EBADF, `file handle ${fh} is not open`);
    return handle;
  }

  /** The listing of directory handle `fh`, if it is open. */
  directory(fh: number): DirectoryStream | undefined {
    return this.#directories.get(fh);
  }

  /**
   * Closes file handle `fh` and frees its number: the handle, or nothing when it was not open
   * (a number is handed out again only once).
   */
  remove(fh: number): Handle | undefined {
    const handle = this.#handles.get(fh);
    if (!handle) return undefined;
    this.#handles.delete(fh);
    this.#unindex(fh, handle);
    this.#freeHandles.push(fh);
    if (handle.kind === "riak") this.#riakHandlesOpen--;
    return handle;
  }

  /**
   * Closes directory handle `fh` and frees its number: its listing, or nothing when it was
   * not open.
   */
  removeDirectory(fh: number): DirectoryStream | undefined {
    const stream = this.#directories.get(fh);
    if (stream === undefined) return undefined;
    this.#directories.delete(fh);
    this.#freeHandles.push(fh);
    return stream;
  }

  /** Whether `handle` is open (not released meanwhile). */
  holds(handle: Handle): boolean {
    return this.#at(handle.path).includes(handle);
  }

  /** `handle` if it is open on node `nodeid`, else any handle open on it. */
  openOn(nodeid: number, handle: Handle | undefined): Handle | undefined {
    if (handle?.nodeid === nodeid) return handle;
    for (const open of this.#handles.values()) if (open.nodeid === nodeid) return open;
    return undefined;
  }

  /** A handle open at `path`, if any. */
  openAt(path: string): Handle | undefined {
    return this.#atPath.get(path)?.values().next().value;
  }

  /** The Riak handles open at `path`. */
  riakAt(path: string): (RiakHandle & OpenedOn)[] {
    return this.#at(path).filter((handle): handle is RiakHandle & OpenedOn =>
      handle.kind === "riak"
    );
  }

  /**
   * Whether a Riak handle at `path` reads a version other than `version` (another host wrote
   * the file since it was opened), skipping handles whose node `detached` says went with its
   * name (another file now).
   */
  readsOtherVersion(path: string, version: string, detached: (nodeid: number) => boolean): boolean {
    if (this.#riakHandlesOpen === 0) return false;
    for (const handle of this.#atPath.get(path)?.values() ?? []) {
      if (handle.kind !== "riak" || handle.version.version === version) continue;
      if (handle.nodeid === undefined || !detached(handle.nodeid)) return true;
    }
    return false;
  }

  /** The handles open at `path` that only read what they opened, with their numbers. */
  readingAt(path: string): [number, Handle][] {
    return [...this.#atPath.get(path) ?? []].filter(([, handle]) => isReading(handle));
  }

  /**
   * The file handles open at `path` or below it (a directory's), with their numbers: a
   * snapshot, in the order of their paths.
   */
  atOrBelow(path: string): [number, Handle][] {
    const below = `${path}/`;
    return [...this.#atPath].filter(([at]) => at === path || at.startsWith(below))
      .flatMap(([, handles]) => [...handles]);
  }

  /**
   * File handle `fh`, `handle`, is at `to` now (its file or a directory above it was
   * renamed). A handle released meanwhile (its number perhaps another's now) only takes the
   * name.
   */
  move(fh: number, handle: Handle, to: string): void {
    const open = this.#handles.get(fh) === handle;
    if (open) this.#unindex(fh, handle);
    (handle as { path: string }).path = to;
    if (open) this.#index(fh, handle);
  }

  /** The handles of write session `session` follow it from `from` to its new name `to`. */
  repath(session: WriteSession, from: string, to: string): void {
    for (const [fh, handle] of [...this.#atPath.get(from) ?? []]) {
      if (handle.kind === "write" && handle.session === session) this.move(fh, handle, to);
    }
  }

  /** The file handles open at `path`. */
  #at(path: string): Handle[] {
    return [...this.#atPath.get(path)?.values() ?? []];
  }

  #index(fh: number, handle: Handle): void {
    const handles = this.#atPath.get(handle.path);
    if (handles) handles.set(fh, handle);
    else this.#atPath.set(handle.path, new Map([[fh, handle]]));
  }

  #unindex(fh: number, handle: Handle): void {
    const handles = this.#atPath.get(handle.path);
    handles?.delete(fh);
    // Emptied paths go: a mount opens millions of names over months.
    if (handles?.size === 0) this.#atPath.delete(handle.path);
  }

  #newHandle(): number {
    return this.#freeHandles.pop() ?? this.#nextHandle++;
  }
}

/** A handle that only reads what it opened: Riak's copy, a staged upload, a local file. */
function isReading(handle: Handle): boolean {
  return handle.kind === "riak" || (handle.kind === "local" && handle.mirror === undefined);
}
