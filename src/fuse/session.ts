/**
 * The FUSE request loop: reads requests from /dev/fuse, negotiates INIT, dispatches each
 * request to the {@link FileSystem} without waiting for earlier ones, and writes exactly
 * one reply per request (none for FORGET, BATCH_FORGET and INTERRUPT).
 *
 * A handler that throws something other than an errno answers EIO and is logged; a handler
 * that does not settle within the deadline answers EIO, and its late result is dropped (a
 * late open handle is released so it does not leak). INTERRUPT aborts the request's
 * `ctx.signal`; a handler that rejects because of it answers EINTR.
 *
 * @module
 */
import * as os from "node:os";
import {
  ATTR_SIZE,
  decodeBatchForget,
  decodeInHeader,
  decodeInitIn,
  decodeReadIn,
  decodeSetattrIn,
  decodeWriteIn,
  direntSize,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
  encodeXattrSizeOut,
  ENTRY_OUT_SIZE,
  FileType,
  FSYNC_FDATASYNC,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_MINOR_VERSION,
  GETATTR_FH,
  type InHeader,
  InitFlag,
  Opcode,
  OpenFlag,
  ReplyWriter,
  RequestReader,
  SetattrValid,
  TooLargeError,
  utf8,
  writeDirent,
  writeEntryOut,
} from "./abi.ts";
import { type LocalHandles, startReaders, writeReply } from "./device.ts";
import {
  type DirectorySink,
  type DirEntryIn,
  type Entry,
  Errno,
  type FileSystem,
  FuseError,
  OPEN_FLAGS_HANDLED_BY_KERNEL,
  type Opened,
  type RequestContext,
  type SetattrChanges,
} from "./filesystem.ts";

/** Largest WRITE payload negotiated: 1 MiB, so big writes arrive as one request. */
export const MAX_WRITE = 1 << 20;
/** Pages per request (4 KiB each): 1 MiB. */
const MAX_PAGES = MAX_WRITE / 4096;
/** Read buffer: max_write plus generous room for the request headers. */
const READ_BUFFER_SIZE = MAX_WRITE + 4096;

/** Options of a {@link FuseSession}. */
export interface SessionOptions {
  /** Milliseconds a handler may take before the request answers EIO (default 30,000). */
  requestTimeoutMs?: number;
  /** Reader threads (Node) or outstanding reads (Deno); default 2. */
  readers?: number;
  /** Where problems are reported (default: stderr). */
  log?: (message: string) => void;
  /**
   * Told of each request answered EIO because its handler passed the deadline (the handler's
   * own outcome, later, is not what the caller got).
   */
  onTimedOut?: (opcode: string) => void;
  /** Requests the kernel may queue in the background (default 64). */
  maxBackground?: number;
  /**
   * Negotiate AUTO_INVAL_DATA (default true): the kernel drops cached pages when it sees a
   * file's mtime or size change. It checks the attributes before every cached read, which
   * costs a GETATTR per read when attributes are not cached (attr timeout 0): turn it off
   * then; pages are still dropped on every open unless the open keeps the cache.
   */
  autoInvalData?: boolean;
}

/** What INIT settled on, for logs and tests. */
export interface Negotiated {
  minor: number;
  flags: number;
  maxWrite: number;
  maxReadahead: number;
}

/** Default deadline of one request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The flags riakfs asks for, masked by what the kernel offers. ATOMIC_O_TRUNC: O_TRUNC arrives with OPEN instead of as a separate SETATTR afterwards, so a
 * filesystem that stages a file for writing need not first copy what is about to be cut off.
 */
const WANTED_INIT_FLAGS = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.PARALLEL_DIROPS |
  InitFlag.MAX_PAGES | InitFlag.ASYNC_DIO | InitFlag.ATOMIC_O_TRUNC;
/** Asked for only when the filesystem implements readdirplus. */
const READDIRPLUS_FLAGS = InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO;

const EMPTY = new Uint8Array(0);
/** The kernel refuses replies whose error is -512 (ERESTARTSYS) or lower. */
const MAX_REPLY_ERRNO = 512;
/** Requests the kernel wants no reply to. */
const UNANSWERED = new Set<number>([Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT]);
/** INTERRUPTs of requests not seen yet that are kept (kernel request ids are never reused). */
const MAX_EARLY_INTERRUPTS = 256;
/** FUSE_WRITE_KILL_SUIDGID of fuse_write_in.write_flags. */
const WRITE_KILL_SUIDGID = 1 << 2;

type Payload = Uint8Array | Uint8Array[];

/** Serves one mounted FUSE connection. */
export class FuseSession {
  readonly #fd: number;
  readonly #fs: FileSystem;
  readonly #timeoutMs: number;
  readonly #onTimedOut: SessionOptions["onTimedOut"];
  readonly #readers: number;
  readonly #log: (message: string) => void;
  readonly #maxBackground: number;
  readonly #autoInvalData: boolean;
  /** Requests being handled, each with what its INTERRUPT does. */
  readonly #inFlight = new Map<bigint, () => void>();
  /** INTERRUPTs that came before their request, oldest first (see {@link #interrupt}). */
  readonly #earlyInterrupts = new Set<bigint>();
  #localHandles: LocalHandles | undefined;
  #negotiated: Negotiated | undefined;
  /**
   * The readers stopped: the kernel dropped every request, and whoever owns the descriptor
   * may close it, and its number then names another file. A handler settling later must not
   * write its reply there.
   */
  #over = false;
  #ended!: (error: string | undefined) => void;
  /** Settles when the connection ends: resolves after unmount, rejects on a device error. */
  readonly closed: Promise<void>;
  #initialized!: () => void;
  #refused!: (error: Error) => void;
  /**
   * Resolves once INIT was answered (the mount is usable); rejects when riakfs refused what
   * the kernel offered (every access then fails with ECONNREFUSED while the mount stays).
   */
  readonly initialized: Promise<void>;

  /** `fd` is an open /dev/fuse descriptor that a mount refers to. */
  constructor(fd: number, fileSystem: FileSystem, options: SessionOptions = {}) {
    this.#fd = fd;
    this.#fs = fileSystem;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#onTimedOut = options.onTimedOut;
    this.#readers = options.readers ?? 2;
    this.#log = options.log ?? ((message) => process.stderr.write(`riakfs: ${message}\n`));
    this.#maxBackground = options.maxBackground ?? 64;
    this.#autoInvalData = options.autoInvalData ?? true;
    this.closed = new Promise((resolve, reject) => {
      this.#ended = (error) =>
        error === undefined ? resolve() : reject(new Error(`reading /dev/fuse failed: ${error}`));
    });
    this.initialized = new Promise((resolve, reject) => {
      this.#initialized = resolve;
      this.#refused = reject;
    });
    this.initialized.catch(() => {}); // Told to whoever awaits it; never unhandled.
  }

  /** What INIT settled on; undefined before the kernel sent INIT. */
  get negotiated(): Negotiated | undefined {
    return this.#negotiated;
  }

  /** Requests currently being handled. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts serving; the returned session's `closed` settles when the mount goes away. */
  start(): this {
    this.#localHandles = startReaders(this.#fd, {
      onRequest: (request, done) => void this.handle(request, done),
      onEnd: (error) => {
        this.#over = true;
        this.#ended(error);
      },
    }, { bufferSize: READ_BUFFER_SIZE, concurrency: this.#readers });
    const handles = this.#localHandles;
    this.#fs.attachLocalNodes?.({
      supported: handles.supported,
      set: (nodeid, parent, name, attrTimeout, ino, regularFile, answers) =>
        handles.setNode(nodeid, parent, name, attrTimeout, ino, regularFile, answers),
      delete: (nodeid) => handles.deleteNode(nodeid),
      serveFiles: (files) =>
        handles.serveOpens({
          firstNodeId: files.firstNodeId,
          entryTimeout: files.entryTimeout,
          attrTimeout: files.attrTimeout,
          openFlags: openFlags({ fh: 0, directIo: files.directIo, keepCache: files.keepCache }),
          writeOnlyOpenFlags: openFlags({
            fh: 0,
            directIo: files.directIo || files.writeOnlyDirectIo,
            keepCache: files.keepCache,
          }),
          strippedFlags: OPEN_FLAGS_HANDLED_BY_KERNEL,
        }, (created) => files.adopt(created)),
      allocateNodeId: () => handles.allocateNodeId(),
      unserveHandle: (fh) => handles.unmap(fh),
    });
    this.#fs.attachReaderCounts?.(() => handles.counts());
    return this;
  }

  /**
   * Handles one raw request and writes its reply; the promise settles once the reply was
   * written (at once for requests that get none). `done`, if given, is called once the
   * request's bytes are no longer used (the handler settled, even after its deadline), so
   * the reader may reuse them. Public so tests can drive the session with hand-made
   * requests and a plain file as the device.
   */
  handle(request: Uint8Array, done?: () => void): Promise<void> {
    // What the readers deferred before this request was read (nodes they created, FORGETs)
    // is taken first.
    this.#localHandles?.catchUp();
    let header: InHeader;
    try {
      header = decodeInHeader(request);
    } catch (error) {
      this.#log(`dropped an undecodable request: ${(error as Error).message}`);
      done?.();
      return Promise.resolve();
    }
    if (!UNANSWERED.has(header.opcode)) return this.#serve(header, request, done);
    try {
      this.#takeUnanswered(header, request);
    } catch (error) {
      // No request to answer, and thrown to the reader's message handler it ends the mount.
      this.#log(`${opcodeName(header.opcode)} failed: ${(error as Error).message}`);
    }
    done?.();
    return Promise.resolve();
  }

  /** FORGET, BATCH_FORGET and INTERRUPT, which the kernel wants no reply to. */
  #takeUnanswered(header: InHeader, request: Uint8Array): void {
    if (header.opcode === Opcode.FORGET) {
      this.#fs.forget?.(header.nodeid, new RequestReader(request).u64());
    } else if (header.opcode === Opcode.BATCH_FORGET) {
      for (const item of decodeBatchForget(request)) this.#fs.forget?.(item.nodeid, item.nlookup);
    } else {
      this.#interrupt(new RequestReader(request).u64big());
    }
  }

  async #serve(header: InHeader, request: Uint8Array, done?: () => void): Promise<void> {
    if (this.#earlyInterrupts.delete(header.unique)) {
      // Interrupted before its handler ran: nothing was done, so EINTR is the whole truth.
      this.#reply(header, Errno.EINTR, EMPTY);
      done?.();
      return;
    }
    // Most handlers never look at the signal: it is made when one does.
    let controller: AbortController | undefined;
    let abortedWith: FuseError | undefined;
    const abort = (reason: FuseError) => {
      abortedWith ??= reason;
      controller?.abort(reason);
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    let committed = false;
    /** Waits of {@link RequestContext.withoutDeadline} under way: the deadline is off. */
    let deadlineHeldOff = 0;
    let passDeadline!: (error: FuseError) => void;
    const deadline = new Promise<never>((_, reject) => passDeadline = reject);
    let answered = false;
    const armDeadline = () => {
      if (answered) return; // A wait the handler left running settled after the reply.
      timer = setTimeout(() => {
        if (committed) return;
        timedOut = true;
        abort(new FuseError(Errno.ETIMEDOUT));
        passDeadline(new FuseError(Errno.EIO, `request deadline of ${this.#timeoutMs} ms passed`));
      }, this.#timeoutMs);
    };
    const ctx: RequestContext = {
      uid: header.uid,
      gid: header.gid,
      pid: header.pid,
      get signal() {
        if (controller === undefined) {
          controller = new AbortController();
          if (abortedWith) controller.abort(abortedWith);
        }
        return controller.signal;
      },
      commit: () => {
        if (abortedWith) throw abortedWith;
        committed = true;
        clearTimeout(timer);
      },
      withoutDeadline: async <T>(wait: () => Promise<T>): Promise<T> => {
        if (abortedWith) throw abortedWith;
        if (deadlineHeldOff++ === 0) clearTimeout(timer);
        const signal = ctx.signal;
        let interrupted: (() => void) | undefined;
        try {
          return await new Promise<T>((resolve, reject) => {
            interrupted = () => reject(signal.reason);
            signal.addEventListener("abort", interrupted, { once: true });
            wait().then(resolve, reject);
          });
        } finally {
          signal.removeEventListener("abort", interrupted!);
          if (--deadlineHeldOff === 0 && !committed) armDeadline();
        }
      },
    };
    this.#inFlight.set(header.unique, () => {
      if (!committed) abort(new FuseError(Errno.EINTR));
    });
    armDeadline();
    // The executor turns a synchronous throw (a malformed request) into a rejection.
    const work = new Promise<Payload>((resolve) => resolve(this.#dispatch(header, request, ctx)));
    let error = 0;
    let payload: Payload = EMPTY;
    try {
      payload = await Promise.race([work, deadline]);
    } catch (thrown) {
      error = this.#errnoOf(thrown, header, timedOut, abortedWith !== undefined);
      if (timedOut) {
        // The handler may still use the request's bytes (a write's data) until it settles.
        work.then((late) => this.#releaseLate(header, late, ctx), () => {}).finally(done);
      }
    } finally {
      answered = true;
      clearTimeout(timer);
      this.#inFlight.delete(header.unique);
    }
    const delivered = this.#reply(header, error, error === 0 ? payload : EMPTY);
    // Interrupted: the kernel dropped the request, so nothing the reply handed out is held.
    if (!delivered && error === 0) this.#releaseLate(header, payload, ctx);
    if (!timedOut) done?.();
  }

  /**
   * INTERRUPT of request `unique`. The kernel sends it only after a reader read the request,
   * but another reader may hand it over first: an INTERRUPT of a request not seen yet is kept
   * for it. Requests the readers answer themselves never come, so only the latest are kept.
   */
  #interrupt(unique: bigint): void {
    const interrupt = this.#inFlight.get(unique);
    if (interrupt) return interrupt();
    this.#earlyInterrupts.add(unique);
    if (this.#earlyInterrupts.size > MAX_EARLY_INTERRUPTS) {
      this.#earlyInterrupts.delete(this.#earlyInterrupts.values().next().value!);
    }
  }

  /** Writes a reply; false when the kernel no longer waits for it (interrupted, or gone). */
  #reply(header: InHeader, error: number, payload: Uint8Array | Uint8Array[]): boolean {
    if (this.#over) return false;
    const parts = (Array.isArray(payload) ? payload : [payload]).filter((p) => p.byteLength > 0);
    let size = 0;
    for (const part of parts) size += part.byteLength;
    // The readers must know the nodes this reply hands out before the kernel can ask.
    this.#localHandles?.flush();
    try {
      return writeReply(this.#fd, [encodeOutHeader(header.unique, -error, size), ...parts]);
    } catch (thrown) {
      this.#log(`reply to ${opcodeName(header.opcode)} failed: ${(thrown as Error).message}`);
      return false;
    }
  }

  #errnoOf(thrown: unknown, header: InHeader, timedOut: boolean, aborted: boolean): number {
    if (timedOut) {
      this.#log(`${opcodeName(header.opcode)} on node ${header.nodeid} timed out; answered EIO`);
      this.#onTimedOut?.(opcodeName(header.opcode));
      return Errno.EIO;
    }
    if (thrown instanceof FuseError) {
      if (Number.isInteger(thrown.errno) && thrown.errno > 0 && thrown.errno < MAX_REPLY_ERRNO) {
        return thrown.errno;
      }
      // The kernel drops such a reply before it finds the request, which then never ends.
      const what = `${opcodeName(header.opcode)} on node ${header.nodeid}`;
      this.#log(
        `${what} failed with errno ${thrown.errno}, which no reply can carry; answered EIO: ` +
          thrown.message,
      );
      return Errno.EIO;
    }
    const known = errnoFromSystemError(thrown);
    if (known !== undefined) return known;
    if (aborted) return Errno.EINTR;
    const message = thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown);
    this.#log(`${opcodeName(header.opcode)} on node ${header.nodeid} failed: ${message}`);
    return Errno.EIO;
  }

  /** Lets the reader threads answer READ/WRITE on a local-descriptor handle themselves. */
  #mapLocal(opened: Opened): void {
    if (opened.localFd !== undefined && this.#localHandles?.supported) {
      this.#localHandles.map(
        opened.fh,
        opened.localFd,
        opened.closeOnRelease ?? false,
        opened.readBlocks?.buffer,
      );
    }
  }

  /**
   * What a reply the kernel never took handed out would leak (lookup references, an open
   * handle): give it back. Failures are logged: there is no request left to answer.
   */
  #releaseLate(header: InHeader, late: Payload, ctx: RequestContext): void {
    try {
      const given = handedOutBy(header.opcode, header.nodeid, late);
      for (const nodeid of given.nodeids) this.#fs.forget?.(nodeid, 1);
      const opened = given.handle;
      if (!opened) return;
      if (header.opcode !== Opcode.OPENDIR) this.#localHandles?.unmap(opened.fh);
      const release = header.opcode === Opcode.OPENDIR ? this.#fs.releasedir : this.#fs.release;
      release?.call(this.#fs, ctx, opened.nodeid, opened.fh, 0)?.catch(() => {});
    } catch (error) {
      const what = opcodeName(header.opcode);
      this.#log(
        `giving back what an untaken ${what} reply handed out failed: ${(error as Error).message}`,
      );
    }
  }

  #dispatch(header: InHeader, request: Uint8Array, ctx: RequestContext): Promise<Payload> {
    const fs = this.#fs;
    const node = header.nodeid;
    const reader = new RequestReader(request);
    const missing = () => Promise.reject(new FuseError(Errno.ENOSYS));
    switch (header.opcode) {
      case Opcode.INIT:
        return Promise.resolve(this.#init(request));
      case Opcode.DESTROY:
        return Promise.resolve(EMPTY);
      case Opcode.LOOKUP: {
        if (!fs.lookup) return missing();
        return fs.lookup(ctx, node, reader.cstring()).then(encodeEntryOut);
      }
      case Opcode.GETATTR: {
        if (!fs.getattr) return missing();
        const flags = reader.u32();
        reader.skip(4);
        const fh = reader.id();
        return fs.getattr(ctx, node, flags & GETATTR_FH ? fh : undefined).then((reply) =>
          encodeAttrOut(reply.attr, reply.attrTimeout)
        );
      }
      case Opcode.SETATTR: {
        if (!fs.setattr) return missing();
        return fs.setattr(ctx, node, setattrChanges(request)).then((reply) =>
          encodeAttrOut(reply.attr, reply.attrTimeout)
        );
      }
      case Opcode.READLINK: {
        if (!fs.readlink) return missing();
        return fs.readlink(ctx, node).then(utf8);
      }
      case Opcode.SYMLINK: {
        if (!fs.symlink) return missing();
        const name = reader.cstring();
        const target = reader.cstring();
        return fs.symlink(ctx, node, name, target).then(encodeEntryOut);
      }
      case Opcode.MKNOD: {
        if (!fs.mknod) return missing();
        const mode = reader.u32();
        const rdev = reader.u32();
        const umask = reader.u32();
        reader.skip(4);
        return fs.mknod(ctx, node, reader.cstring(), mode, rdev, umask).then(encodeEntryOut);
      }
      case Opcode.MKDIR: {
        if (!fs.mkdir) return missing();
        const mode = reader.u32();
        const umask = reader.u32();
        return fs.mkdir(ctx, node, reader.cstring(), mode, umask).then(encodeEntryOut);
      }
      case Opcode.UNLINK:
        return fs.unlink ? fs.unlink(ctx, node, reader.cstring()).then(() => EMPTY) : missing();
      case Opcode.RMDIR:
        return fs.rmdir ? fs.rmdir(ctx, node, reader.cstring()).then(() => EMPTY) : missing();
      case Opcode.RENAME:
      case Opcode.RENAME2: {
        if (!fs.rename) return missing();
        const newParent = reader.id();
        let flags = 0;
        if (header.opcode === Opcode.RENAME2) {
          flags = reader.u32();
          reader.skip(4);
        }
        const name = reader.cstring();
        const newName = reader.cstring();
        return fs.rename(ctx, node, name, newParent, newName, flags).then(() => EMPTY);
      }
      case Opcode.LINK: {
        if (!fs.link) return missing();
        const oldNode = reader.id();
        return fs.link(ctx, oldNode, node, reader.cstring()).then(encodeEntryOut);
      }
      case Opcode.OPEN:
      case Opcode.OPENDIR: {
        const flags = reader.u32();
        const isDir = header.opcode === Opcode.OPENDIR;
        const open = isDir ? fs.opendir : fs.open;
        // Like libfuse: a filesystem without open/opendir is stateless and needs no handle.
        if (!open) return Promise.resolve(encodeOpenOut(0, 0));
        return open.call(fs, ctx, node, flags).then((opened) => {
          if (!isDir) this.#mapLocal(opened);
          return encodeOpenOut(opened.fh, openFlags(opened));
        });
      }
      case Opcode.READ: {
        if (!fs.read) return missing();
        const read = decodeReadIn(request);
        return fs.read(ctx, node, read.fh, read.offset, read.size).then((data) =>
          data.byteLength > read.size ? data.subarray(0, read.size) : data
        );
      }
      case Opcode.WRITE: {
        if (!fs.write) return missing();
        const write = decodeWriteIn(request);
        const killSuidgid = (write.writeFlags & WRITE_KILL_SUIDGID) !== 0;
        return fs.write(ctx, node, write.fh, write.offset, write.data, killSuidgid)
          .then(encodeWriteOut);
      }
      case Opcode.STATFS:
        return (fs.statfs ? fs.statfs(ctx, node) : Promise.resolve(DEFAULT_STATFS)).then(
          encodeStatfsOut,
        );
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        const fh = reader.id();
        const flags = reader.u32();
        if (header.opcode === Opcode.RELEASEDIR) {
          return fs.releasedir ? fs.releasedir(ctx, node, fh).then(() => EMPTY) : ok();
        }
        this.#localHandles?.unmap(fh);
        return fs.release ? fs.release(ctx, node, fh, flags).then(() => EMPTY) : ok();
      }
      case Opcode.FLUSH: {
        if (!fs.flush) return missing();
        return fs.flush(ctx, node, reader.id()).then(() => EMPTY);
      }
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR: {
        const sync = header.opcode === Opcode.FSYNC ? fs.fsync : fs.fsyncdir;
        if (!sync) return missing();
        const fh = reader.id();
        const datasync = (reader.u32() & FSYNC_FDATASYNC) !== 0;
        return sync.call(fs, ctx, node, fh, datasync).then(() => EMPTY);
      }
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        const plus = header.opcode === Opcode.READDIRPLUS;
        const list = plus ? fs.readdirplus : fs.readdir;
        if (!list) return missing();
        const read = decodeReadIn(request);
        const sink = new DirectoryBuffer(read.size);
        return list.call(fs, ctx, node, read.fh, read.offset, sink).then(() => sink.bytes());
      }
      case Opcode.ACCESS:
        return fs.access ? fs.access(ctx, node, reader.u32()).then(() => EMPTY) : missing();
      case Opcode.CREATE: {
        if (!fs.create) return missing();
        const flags = reader.u32();
        const mode = reader.u32();
        const umask = reader.u32();
        reader.skip(4);
        return fs.create(ctx, node, reader.cstring(), flags, mode, umask).then((created) => {
          this.#mapLocal(created.opened);
          return [
            encodeEntryOut(created.entry),
            encodeOpenOut(created.opened.fh, openFlags(created.opened)),
          ];
        });
      }
      case Opcode.FALLOCATE: {
        if (!fs.fallocate) return missing();
        const fh = reader.id();
        const offset = reader.u64();
        const length = reader.u64();
        if (offset + length > Number.MAX_SAFE_INTEGER) throw new TooLargeError(offset + length);
        const mode = reader.u32();
        return fs.fallocate(ctx, node, fh, offset, length, mode).then(() => EMPTY);
      }
      case Opcode.LSEEK: {
        if (!fs.lseek) return missing();
        const fh = reader.id();
        const offset = reader.u64();
        const whence = reader.u32();
        return fs.lseek(ctx, node, fh, offset, whence).then(encodeLseekOut);
      }
      case Opcode.GETXATTR: {
        if (!fs.getxattr) return missing();
        const size = reader.u32();
        reader.skip(4);
        return fs.getxattr(ctx, node, reader.cstring()).then((value) => sized(value, size));
      }
      case Opcode.LISTXATTR: {
        if (!fs.listxattr) return missing();
        const size = reader.u32();
        return fs.listxattr(ctx, node).then((names) =>
          sized(utf8(names.map((name) => `${name}\0`).join("")), size)
        );
      }
      case Opcode.SETXATTR: {
        if (!fs.setxattr) return missing();
        // Without SETXATTR_EXT the kernel sends the 8-byte compat struct.
        const size = reader.u32();
        const flags = reader.u32();
        const name = reader.cstring();
        const value = reader.bytes(size);
        return fs.setxattr(ctx, node, name, value, flags).then(() => EMPTY);
      }
      case Opcode.REMOVEXATTR:
        return fs.removexattr
          ? fs.removexattr(ctx, node, reader.cstring()).then(() => EMPTY)
          : missing();
      default:
        return missing();
    }
  }

  #init(request: Uint8Array): Uint8Array {
    const offered = decodeInitIn(request);
    if (offered.major !== FUSE_KERNEL_VERSION || offered.minor < FUSE_MIN_MINOR_VERSION) {
      const refusal = new FuseError(
        Errno.EPROTO,
        `the kernel speaks FUSE protocol ${offered.major}.${offered.minor}; riakfs needs ` +
          `${FUSE_KERNEL_VERSION}.${FUSE_MIN_MINOR_VERSION} or later (a newer kernel)`,
      );
      this.#log(refusal.message);
      this.#refused(refusal);
      throw refusal;
    }
    let wanted = WANTED_INIT_FLAGS;
    if (this.#fs.readdirplus) wanted |= READDIRPLUS_FLAGS;
    if (this.#autoInvalData) wanted |= InitFlag.AUTO_INVAL_DATA;
    // With GETXATTR answered, the kernel would ask for security.capability on every write.
    // KILLPRIV_V2 makes it skip that (SB_NOSEC) and leaves clearing setuid/setgid to us.
    if (this.#fs.getxattr) wanted |= InitFlag.HANDLE_KILLPRIV_V2;
    const flags = wanted & offered.flags;
    const minor = Math.min(offered.minor, FUSE_KERNEL_MINOR_VERSION);
    this.#negotiated = { minor, flags, maxWrite: MAX_WRITE, maxReadahead: offered.maxReadahead };
    queueMicrotask(() => this.#initialized());
    return encodeInitOut({
      major: FUSE_KERNEL_VERSION,
      minor,
      maxReadahead: offered.maxReadahead,
      flags,
      maxBackground: this.#maxBackground,
      congestionThreshold: Math.floor(this.#maxBackground * 3 / 4),
      maxWrite: MAX_WRITE,
      timeGran: 1,
      maxPages: MAX_PAGES,
    });
  }
}

/**
 * What a reply to `opcode` on node `nodeid` hands the kernel, read back from its bytes: the
 * nodes it gives a lookup reference to, and an open handle (with its node). Only a reply the
 * kernel never took (its deadline passed, or the request was interrupted) is read so: the
 * common path keeps no record.
 */
function handedOutBy(
  opcode: number,
  nodeid: number,
  payload: Payload,
): { nodeids: number[]; handle?: { nodeid: number; fh: number } } {
  const parts = Array.isArray(payload) ? payload : [payload];
  const u64 = (bytes: Uint8Array, at: number) =>
    Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at, true));
  const nodeids: number[] = [];
  switch (opcode) {
    case Opcode.LOOKUP:
    case Opcode.SYMLINK:
    case Opcode.MKNOD:
    case Opcode.MKDIR:
    case Opcode.LINK:
      if (parts[0].byteLength >= ENTRY_OUT_SIZE) nodeids.push(u64(parts[0], 0));
      break;
    case Opcode.OPEN:
    case Opcode.OPENDIR:
      return { nodeids, handle: { nodeid, fh: u64(parts[0], 0) } };
    case Opcode.CREATE: {
      const created = u64(parts[0], 0);
      return { nodeids: [created], handle: { nodeid: created, fh: u64(parts[1], 0) } };
    }
    case Opcode.READDIRPLUS: {
      // fuse_direntplus: an entry_out, then a dirent whose name length is at +16.
      const bytes = parts[0];
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at + ENTRY_OUT_SIZE + 24 <= bytes.byteLength;) {
        nodeids.push(u64(bytes, at));
        at += ENTRY_OUT_SIZE + direntSize(view.getUint32(at + ENTRY_OUT_SIZE + 16, true));
      }
      break;
    }
  }
  return { nodeids: nodeids.filter((id) => id !== 0) };
}

const DEFAULT_STATFS = {
  blocks: 0,
  bfree: 0,
  bavail: 0,
  files: 0,
  ffree: 0,
  bsize: 4096,
  namelen: 255,
  frsize: 4096,
};

function ok(): Promise<Uint8Array> {
  return Promise.resolve(EMPTY);
}

function openFlags(opened: Opened): number {
  let flags = 0;
  if (opened.directIo) flags |= OpenFlag.DIRECT_IO;
  if (opened.keepCache) flags |= OpenFlag.KEEP_CACHE;
  if (opened.noFlush) flags |= OpenFlag.NOFLUSH;
  if (opened.nonSeekable) flags |= OpenFlag.NONSEEKABLE;
  if (opened.cacheDir) flags |= OpenFlag.CACHE_DIR;
  return flags;
}

/** GETXATTR/LISTXATTR: size 0 asks for the length; a too-small buffer is ERANGE. */
function sized(value: Uint8Array, size: number): Uint8Array {
  if (size === 0) return encodeXattrSizeOut(value.byteLength);
  if (value.byteLength > size) throw new FuseError(Errno.ERANGE);
  return value;
}

function setattrChanges(request: Uint8Array): SetattrChanges {
  const input = decodeSetattrIn(request);
  const changes: SetattrChanges = {};
  const has = (bit: number) => (input.valid & bit) !== 0;
  if (has(SetattrValid.FH)) changes.fh = input.fh;
  if (has(SetattrValid.MODE)) changes.mode = input.mode;
  if (has(SetattrValid.UID)) changes.uid = input.uid;
  if (has(SetattrValid.GID)) changes.gid = input.gid;
  if (has(SetattrValid.SIZE)) changes.size = input.size;
  if (has(SetattrValid.ATIME)) changes.atime = has(SetattrValid.ATIME_NOW) ? "now" : input.atime;
  if (has(SetattrValid.MTIME)) changes.mtime = has(SetattrValid.MTIME_NOW) ? "now" : input.mtime;
  if (has(SetattrValid.CTIME)) changes.ctime = input.ctime;
  if (has(SetattrValid.KILL_SUIDGID)) changes.killSuidgid = true;
  return changes;
}

/** Maps a Node system error (`code: "ENOENT"`) to its errno; undefined for other errors. */
export function errnoFromSystemError(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  const known = (Errno as Record<string, number>)[code] ??
    (os.constants.errno as Record<string, number>)[code];
  return typeof known === "number" && known > 0 ? known : undefined;
}

/** Packs READDIR / READDIRPLUS entries into the kernel's buffer of `capacity` bytes. */
export class DirectoryBuffer implements DirectorySink {
  readonly #writer: ReplyWriter;
  readonly #capacity: number;

  /** `capacity` is the size the kernel asked for. */
  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#writer = new ReplyWriter(capacity);
  }

  /** The packed entries. */
  bytes(): Uint8Array {
    return this.#writer.bytes.subarray(0, this.#writer.offset);
  }

  /** @inheritdoc */
  fits(name: string): boolean {
    return this.#writer.offset + ENTRY_OUT_SIZE + direntSize(utf8(name).byteLength) <=
      this.#capacity;
  }

  /** @inheritdoc */
  add(entry: DirEntryIn): boolean {
    const name = utf8(entry.name);
    if (this.#writer.offset + direntSize(name.byteLength) > this.#capacity) return false;
    writeDirent(this.#writer, direntOf(entry), name);
    return true;
  }

  /** @inheritdoc */
  addPlus(dirent: DirEntryIn, entry: Entry | undefined): boolean {
    const name = utf8(dirent.name);
    if (this.#writer.offset + ENTRY_OUT_SIZE + direntSize(name.byteLength) > this.#capacity) {
      return false;
    }
    if (entry) writeEntryOut(this.#writer, entry);
    else this.#writer.zero(ENTRY_OUT_SIZE - ATTR_SIZE).zero(ATTR_SIZE);
    writeDirent(this.#writer, direntOf(dirent), name);
    return true;
  }
}

function direntOf(entry: DirEntryIn) {
  return {
    ino: entry.ino,
    nextOffset: entry.nextOffset,
    type: (entry.mode & FileType.MASK) >> 12,
    name: entry.name,
  };
}

const OPCODE_NAMES = new Map(Object.entries(Opcode).map(([name, code]) => [code, name]));

/** The name of an opcode for logs, e.g. "LOOKUP". */
export function opcodeName(opcode: number): string {
  return OPCODE_NAMES.get(opcode as never) ?? `opcode ${opcode}`;
}
