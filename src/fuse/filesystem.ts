/**
 * The inode-based interface a filesystem implements to be served over FUSE.
 *
 * Every method is optional: a request whose method is missing answers ENOSYS, which the
 * kernel remembers for most operations (it stops asking). A method answers by returning
 * (or resolving to) its reply value and fails by throwing a {@link FuseError} or a Node
 * system error (its `code`, e.g. `"ENOENT"`, becomes the errno). The session writes the
 * one reply itself, so every request is answered exactly once; `forget` returns nothing,
 * so FORGET is never answered. These are properties of the types, not of a handler's
 * discipline.
 *
 * Node ids are numbers chosen by the filesystem (1 is the root, {@link ROOT_NODE_ID}); a
 * node id returned in an {@link Entry} holds one lookup reference until the kernel
 * forgets it.
 *
 * @module
 */
import * as fs from "node:fs";
import os from "node:os";
import { type Attr, type EntryOut, Errno, type StatfsOut, type Timespec } from "./abi.ts";
import type { ReadBlocks } from "./read_blocks.ts";

export type { Attr, EntryOut, StatfsOut, Timespec } from "./abi.ts";

/** The node id of the filesystem's root directory. */
export const ROOT_NODE_ID = 1;

/** A failure to hand to the kernel as `-errno`. */
export class FuseError extends Error {
  override name = "FuseError";
  /** The positive errno value, e.g. {@link Errno.ENOENT}. */
  readonly errno: number;

  /** `errno` is one of {@link Errno}; `message` says what failed, for logs. */
  constructor(errno: number, message = `errno ${errno}`) {
    super(message);
    this.errno = errno;
  }
}

/** Who asked, and a signal that fires when the kernel interrupts or the deadline passes. */
export interface RequestContext {
  /** The calling process's effective uid. */
  uid: number;
  /** The calling process's effective gid. */
  gid: number;
  /** The calling process's pid (0 for requests the kernel makes on its own). */
  pid: number;
  /** Aborted when the application was interrupted or the request deadline passed. */
  signal: AbortSignal;
  /**
   * Called by a handler about to make changes it must carry through: throws the abort
   * reason if the request was interrupted or its deadline passed (nothing changed yet, so
   * the error is true); after it, neither applies, and the reply tells how the changes went
   * however long they take (each step must bound its own wait). Otherwise an EIO at the
   * deadline could say "failed" of a rename that goes on and completes.
   */
  commit(): void;
  /**
   * Runs `wait` with the request deadline held off until it settles, then started afresh:
   * for a wait the handler bounds itself by a measure of progress (uploads that fail only
   * once their store stopped acknowledging them), which may rightly take far longer than any
   * fixed deadline while it moves; under the deadline it would answer EIO though nothing
   * failed. An INTERRUPT still ends it: it rejects with the abort reason (EINTR), as it does
   * at once when the request was interrupted or past its deadline before.
   */
  withoutDeadline<T>(wait: () => Promise<T>): Promise<T>;
}

/** A node the kernel may refer to by `nodeid`, with its attributes and cache lifetimes. */
export type Entry = EntryOut;

/** Attributes and how long the kernel may cache them. */
export interface AttrReply {
  attr: Attr;
  /** Seconds the kernel may cache the attributes. */
  attrTimeout: number;
}

/** An open file or directory handle and the caching choices for it. */
export interface Opened {
  /** The filesystem's handle; passed back on every request on this open file. */
  fh: number;
  /** Bypass the page cache: every read() and write() reaches the filesystem as is. */
  directIo?: boolean;
  /** Keep cached pages from earlier opens (the file did not change behind the kernel). */
  keepCache?: boolean;
  /**
   * The filesystem's `flush` has nothing to do for this handle: the kernel sends no FLUSH
   * when its descriptors close (one request less per close(2)).
   */
  noFlush?: boolean;
  /** The file has no seek position (a stream). */
  nonSeekable?: boolean;
  /** Directories only: let the kernel cache the listing. */
  cacheDir?: boolean;
  /**
   * A local file descriptor that holds exactly this open file's bytes. When given, the
   * reader threads answer READ and WRITE on this handle themselves with pread/pwrite on it
   * (no hop to the event loop; libfuse-like latency), and `read`/`write` are not called for
   * it (they still are under Deno). The descriptor must stay open until `release`.
   */
  localFd?: number;
  /**
   * The handle holds nothing but `localFd`: the reader threads answer its RELEASE by
   * closing `localFd`, and `release` is not called for it (it still is under Deno, and for
   * handles of 65,536 and above). The filesystem's `release` must do just that close.
   */
  closeOnRelease?: boolean;
  /**
   * With `localFd`: the reader threads record the page-aligned reads they serve here, and
   * leave other reads to `read` (for a filesystem that must know what was read, e.g. to
   * copy a file read whole). `release` sees every read that preceded it.
   */
  readBlocks?: ReadBlocks;
}

/**
 * open(2) flags the kernel passes on that a local open must not repeat: the kernel already
 * created (or refused) the file, and O_DIRECT is the mount's business, not the source's.
 */
export const OPEN_FLAGS_HANDLED_BY_KERNEL = fs.constants.O_CREAT | fs.constants.O_EXCL |
  fs.constants.O_NOCTTY | (fs.constants.O_DIRECT ?? 0);

/** What the reader threads may open and create themselves, see `LocalNodes.serveFiles`. */
export interface LocalFiles {
  /** Node ids the filesystem handed out are below this one. */
  firstNodeId: number;
  /** Seconds of the entry and of the attributes in CREATE replies. */
  entryTimeout: number;
  attrTimeout: number;
  /** Per-open choices of OPEN and CREATE replies (like {@link Opened}). */
  directIo?: boolean;
  keepCache?: boolean;
  /**
   * Write-only opens (O_WRONLY) get direct I/O whatever `directIo` says: nothing reads the
   * page cache through them, so their writes skip filling it. Only where
   * {@link directWritesInvalidateCache}: the kernel must drop the written range from the
   * cache other handles read.
   */
  writeOnlyDirectIo?: boolean;
  /**
   * A node a reader thread created (CREATE), with one lookup reference. Called on the main
   * thread before it handles any request that came after the CREATE's reply.
   */
  adopt(created: LocallyCreated): void;
}

/** A file a reader thread created: node `nodeid` is entry `name` of node `parent`. */
export interface LocallyCreated {
  nodeid: number;
  parent: number;
  name: string;
  /** st_dev and st_ino of the new file. */
  dev: bigint;
  ino: bigint;
}

/** What the reader threads answered themselves, since serving started. */
export interface ReaderCounts {
  /** Requests by the name of the method that would have answered them (`getattr`...). */
  ops: Record<string, number>;
  /** Failures by errno value. */
  errnos: Map<number, number>;
  /** Bytes read and written through local handles (`Opened.localFd`). */
  bytesRead: number;
  bytesWritten: number;
}

/**
 * How the reader threads answer for one node when the filesystem's answers are lstat(2)'s
 * only in part (an overlay that numbers inodes its own way, or whose namespace is more than
 * the local directory). Absent fields keep the default: answer as lstat(2) does.
 */
export interface LocalNodeAnswers {
  /** The inode number GETATTR reports instead of the file's st_ino. */
  reportedIno?: number;
  /**
   * false: LOOKUP of a name missing in this directory goes to `lookup` (the name may live
   * elsewhere). A GETATTR of a node whose path is missing always goes to `getattr`: the file
   * may be open, removed since.
   */
  missingNames?: boolean;
  /** false: UNLINK and RMDIR in this directory go to `unlink` and `rmdir`. */
  removals?: boolean;
  /** `Date.now()` from which the readers leave the node to the filesystem again. */
  expiresAt?: number;
  /**
   * true: the file has no security.capability xattr, so the readers answer the kernel's
   * GETXATTR of it (asked before each inode's first write) with ENODATA.
   */
  withoutCapability?: boolean;
  /**
   * The file had no extended attributes at all while its ctime was this (nanoseconds): the
   * readers answer GETXATTR with ENODATA and LISTXATTR with an empty list while lstat(2) of
   * its path shows the same inode and ctime (every xattr change moves the ctime).
   */
  xattrFreeAtCtimeNs?: bigint;
}

/**
 * Where a filesystem tells the reader threads which nodes are plain local files, so they
 * answer some requests on them themselves, with no hop to the event loop (libfuse-like
 * latency): GETATTR with lstat(2) of the node's path (fstat(2) of the `localFd` when the
 * request names a local handle); LOOKUP of a name that lstat(2) does not find in a known
 * directory with ENOENT (found names still go to `lookup`, which allocates nodes); UNLINK
 * and RMDIR in a known directory with unlink(2) and rmdir(2) of the child's path; and, once
 * the filesystem opts in with {@link LocalNodes.serveFiles}, OPEN and CREATE. A node
 * is `name` inside node `parent`; paths are rebuilt from these links, so one `set` moves
 * a whole subtree. Changes reach the readers before the session writes its next reply, so
 * `set` a node before the reply that hands it to the kernel (a LOOKUP, a RENAME) returns.
 * Nodes the readers do not know, or whose chain of parents is broken, go to `getattr`.
 */
export interface LocalNodes {
  /** Whether the reader threads serve nodes (false under Deno: calls are then ignored). */
  readonly supported: boolean;
  /**
   * `nodeid` is entry `name` of node `parent`, or, with parent 0, the local directory at
   * the absolute path `name` (the root). Attribute replies carry `attrTimeout` seconds.
   * With `ino`, the readers answer GETATTR (and OPEN) only when the path still holds that
   * inode (a rename racing with the request may have put another file there) and leave
   * other answers to `getattr`. `regularFile` marks nodes the readers may OPEN (see
   * {@link LocalNodes.serveFiles}). `answers` narrows what the readers answer for the node.
   */
  set(
    nodeid: number,
    parent: number,
    name: string,
    attrTimeout: number,
    ino?: number,
    regularFile?: boolean,
    answers?: LocalNodeAnswers,
  ): void;
  /** Forgets `nodeid`: its GETATTRs go to the filesystem again. */
  delete(nodeid: number): void;
  /**
   * Lets the reader threads also answer OPEN of nodes set as regular files and CREATE in
   * known directories. The filesystem promises that its `open` of such a node is open(2)
   * of the node's path with the kernel's flags minus {@link OPEN_FLAGS_HANDLED_BY_KERNEL}
   * plus O_NOFOLLOW, answering the descriptor as `fh` and `localFd` with `closeOnRelease`;
   * and that its `create` is the same open with O_CREAT and the requested permission bits,
   * the file then given to the caller (uid, and gid unless the directory is setgid) and its
   * permission bits set again if a umask or the chown changed them. A reader creates only
   * names that do not exist yet; it takes node ids from {@link LocalNodes.allocateNodeId},
   * which the filesystem must use for its own nodes from now on, and hands each new node to
   * `files.adopt`. Ignored when unsupported.
   */
  serveFiles(files: LocalFiles): void;
  /** A new node id, unique across the reader threads (after {@link LocalNodes.serveFiles}). */
  allocateNodeId(): number;
  /**
   * The reader threads stop answering READ and WRITE of handle `fh` from its `localFd`: they
   * reach the filesystem's `read` and `write` from now on (its bytes moved elsewhere).
   */
  unserveHandle(fh: number): void;
}

/** A CREATE answer: the new node and its open handle. */
export interface Created {
  entry: Entry;
  opened: Opened;
}

/** What SETATTR asks to change; absent fields stay as they are. */
export interface SetattrChanges {
  /** The open handle the change came through (ftruncate, futimens), if any. */
  fh?: number;
  /** Permission bits (and file type bits, which must be ignored). */
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** New access time, or "now". */
  atime?: Timespec | "now";
  /** New modification time, or "now". */
  mtime?: Timespec | "now";
  ctime?: Timespec;
  /** The write is done by an unprivileged caller: clear setuid/setgid. */
  killSuidgid?: boolean;
}

/** One entry offered to a directory listing. */
export interface DirEntryIn {
  name: string;
  /** The entry's inode number as `ls -i` shows it. */
  ino: number;
  /** `st_mode` (only the file type bits are used). */
  mode: number;
  /** The offset at which listing resumes after this entry (never 0). */
  nextOffset: number;
}

/**
 * Where READDIR and READDIRPLUS put entries. `add` returns false once the kernel's buffer
 * is full: the entry was not sent and the filesystem must not count a lookup for it.
 */
export interface DirectorySink {
  /** Adds a plain entry (READDIR). Returns false when it did not fit. */
  add(entry: DirEntryIn): boolean;
  /**
   * Adds an entry with its lookup (READDIRPLUS). `entry` is undefined for `.` and `..`,
   * which carry no lookup reference. Returns false when it did not fit; the filesystem
   * must take the lookup reference only after a true answer.
   */
  addPlus(dirent: DirEntryIn, entry: Entry | undefined): boolean;
  /** Whether an entry with this name would still fit. */
  fits(name: string): boolean;
}

/** The FUSE operations a filesystem may implement. */
export interface FileSystem {
  /**
   * Called once when serving starts: a filesystem whose nodes are local files registers
   * them in `nodes`, see {@link LocalNodes}. A filesystem that implements this promises
   * that for registered nodes its `getattr`, `lookup` of a missing name, `unlink` and
   * `rmdir` do nothing but what the reader threads do instead (lstat, fstat of `localFd`,
   * unlink, rmdir on the node's path, as narrowed by the node's {@link LocalNodeAnswers}),
   * so skipping them changes nothing.
   */
  attachLocalNodes?(nodes: LocalNodes): void;
  /**
   * Called once when serving starts with what the reader threads answer themselves
   * (requests that never reach these methods), so a filesystem can count them.
   */
  attachReaderCounts?(counts: () => ReaderCounts): void;
  /** Looks up `name` in directory `parent`; the returned node gains one lookup reference. */
  lookup?(ctx: RequestContext, parent: number, name: string): Promise<Entry>;
  /** Drops `nlookup` references to `nodeid`; at zero the filesystem may free the node. */
  forget?(nodeid: number, nlookup: number): void;
  /** Attributes of `nodeid` (through `fh` when the request names an open file). */
  getattr?(ctx: RequestContext, nodeid: number, fh: number | undefined): Promise<AttrReply>;
  /** chmod, chown, truncate, utimens: changes attributes and returns the new ones. */
  setattr?(ctx: RequestContext, nodeid: number, changes: SetattrChanges): Promise<AttrReply>;
  /** The target of a symbolic link. */
  readlink?(ctx: RequestContext, nodeid: number): Promise<string>;
  /** Creates a symbolic link `name` -> `target` in `parent`. */
  symlink?(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry>;
  /** Creates a file system node (regular file, FIFO, device). */
  mknod?(
    ctx: RequestContext,
    parent: number,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<Entry>;
  /** Creates a directory. `mode` is already masked by the caller's umask. */
  mkdir?(
    ctx: RequestContext,
    parent: number,
    name: string,
    mode: number,
    umask: number,
  ): Promise<Entry>;
  /** Removes a non-directory. */
  unlink?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  /** Removes an empty directory. */
  rmdir?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  /** Renames; `flags` may hold {@link RenameFlag} NOREPLACE or EXCHANGE. */
  rename?(
    ctx: RequestContext,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void>;
  /** Creates a hard link to `nodeid` named `newName` in `newParent`. */
  link?(ctx: RequestContext, nodeid: number, newParent: number, newName: string): Promise<Entry>;
  /** Opens a file; `flags` are the open(2) flags. */
  open?(ctx: RequestContext, nodeid: number, flags: number): Promise<Opened>;
  /**
   * Reads up to `size` bytes at `offset`; fewer bytes means end of file. The reply is written
   * as soon as the promise settles, before any other I/O callback runs, so the returned
   * bytes may come from a buffer the filesystem reuses after that (e.g. in `setImmediate`).
   */
  read?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    size: number,
  ): Promise<Uint8Array>;
  /**
   * Writes `data` at `offset`; returns how many bytes were written. `data` is a view into
   * the request buffer, which is reused once the returned promise settled: copy it to keep it.
   * `killSuidgid`: the writer lacks CAP_FSETID, so setuid/setgid go as a local write would
   * clear them (sent with HANDLE_KILLPRIV_V2, see {@link FileSystem.getxattr}).
   */
  write?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    data: Uint8Array,
    killSuidgid?: boolean,
  ): Promise<number>;
  /** Called on each close(2) of a descriptor of the open file. */
  flush?(ctx: RequestContext, nodeid: number, fh: number): Promise<void>;
  /** The last descriptor of the open file is gone: free the handle. */
  release?(ctx: RequestContext, nodeid: number, fh: number, flags: number): Promise<void>;
  /** fsync(2) / fdatasync(2). */
  fsync?(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): Promise<void>;
  /** Opens a directory for listing. */
  opendir?(ctx: RequestContext, nodeid: number, flags: number): Promise<Opened>;
  /** Lists entries from `offset` (0 = the start) into `sink` until it is full. */
  readdir?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void>;
  /** Like readdir, with each entry's lookup (use `sink.addPlus`). */
  readdirplus?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void>;
  /** Frees a directory handle. */
  releasedir?(ctx: RequestContext, nodeid: number, fh: number): Promise<void>;
  /** fsync(2) on a directory. */
  fsyncdir?(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): Promise<void>;
  /** Usage figures of the filesystem. */
  statfs?(ctx: RequestContext, nodeid: number): Promise<StatfsOut>;
  /** access(2) (sent only without the default_permissions mount option). */
  access?(ctx: RequestContext, nodeid: number, mask: number): Promise<void>;
  /** Creates and opens a regular file. */
  create?(
    ctx: RequestContext,
    parent: number,
    name: string,
    flags: number,
    mode: number,
    umask: number,
  ): Promise<Created>;
  /** fallocate(2): `mode` holds the FALLOC_FL_* bits. */
  fallocate?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void>;
  /** lseek(2) with SEEK_DATA or SEEK_HOLE; returns the resulting offset. */
  lseek?(
    ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    whence: number,
  ): Promise<number>;
  /**
   * The value of extended attribute `name`; throw ENODATA when it is absent. A filesystem
   * with getxattr gets HANDLE_KILLPRIV_V2: it must clear setuid/setgid itself on writes,
   * truncates and O_TRUNC opens by callers without CAP_FSETID (`killSuidgid`, write flags).
   */
  getxattr?(ctx: RequestContext, nodeid: number, name: string): Promise<Uint8Array>;
  /** Sets extended attribute `name`; `flags` may hold XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setxattr?(
    ctx: RequestContext,
    nodeid: number,
    name: string,
    value: Uint8Array,
    flags: number,
  ): Promise<void>;
  /** The names of the node's extended attributes. */
  listxattr?(ctx: RequestContext, nodeid: number): Promise<string[]>;
  /** Removes extended attribute `name`; throw ENODATA when it is absent. */
  removexattr?(ctx: RequestContext, nodeid: number, name: string): Promise<void>;
}

/**
 * A shorthand for throwing an errno: `throw fail(Errno.ENOENT, "no such entry")`. The error
 * carries no stack: an errno is the whole answer and is never logged with one, and capturing
 * it took about 12 of the 200 us a negative LOOKUP kept the event loop busy.
 */
export function fail(errno: number, message?: string): FuseError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new FuseError(errno, message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export { Errno };

/**
 * access(2) answered as for root, for filesystems whose every caller is root (a mount
 * without allow_other or default_permissions, where the kernel asks ACCESS): anything goes
 * but executing a regular file with no execute bit (EACCES), as Linux answers root.
 */
export function rootAccess(mode: number, mask: number): void {
  const X_OK = 1;
  if (
    (mask & X_OK) !== 0 && (mode & fs.constants.S_IFMT) === fs.constants.S_IFREG &&
    (mode & 0o111) === 0
  ) {
    throw fail(Errno.EACCES, "no execute permission");
  }
}

/**
 * Whether the running kernel drops the cached pages a FUSE direct write covers (Linux 6.6,
 * "fuse: invalidate page cache pages before direct write"): before, a handle using direct
 * I/O left other handles of the file reading stale pages. `release` is uname's release.
 */
export function directWritesInvalidateCache(release: string = os.release()): boolean {
  const [major, minor] = release.split(".").map((part) => Number.parseInt(part, 10));
  return major > 6 || (major === 6 && minor >= 6);
}
