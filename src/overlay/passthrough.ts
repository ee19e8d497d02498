/**
 * The passthrough filesystem: every FUSE operation maps onto a source directory. It is the
 * first mode preset of the overlay and the reference the other modes are compared against.
 *
 * - Node ids are allocated per source inode (st_dev:st_ino) and live while the kernel holds
 *   a lookup reference; `ino` reports the source's inode number, stable for the mount's life.
 * - Each node remembers its parent and name; paths are rebuilt from them, so a rename
 *   moves a whole subtree at once. Names never contain "/" and are never "." or "..", and
 *   every path is resolved with lstat semantics (O_NOFOLLOW on opens, lchown, lutimes), so
 *   nothing resolves outside the source through the mount.
 * - File handles are the open local file descriptors.
 * - Requests run as root, and new nodes are chowned to the caller. With allow_other the mount
 *   must use default_permissions (the kernel checks access against the modes); without it
 *   only root reaches the mount, and `access` answers as for root.
 *
 * Limits (Node has no such syscalls): extended attributes go through a python3 helper
 * process (EOPNOTSUPP without python3); fallocate runs util-linux fallocate(1) on the open
 * descriptor; FIFOs and device nodes are made with mknod(1); RENAME_EXCHANGE is three
 * renames (atomic for users of the mount, which the kernel serialises on both directories,
 * but not against a crash in between); times set through the mount are kept to within a quarter
 * of a microsecond, never earlier (Node's utimes takes a double of seconds).
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import {
  type Attr,
  type AttrReply,
  type Created,
  type DirectorySink,
  directWritesInvalidateCache,
  type Entry,
  Errno,
  fail,
  type FileSystem,
  FileType,
  type LocallyCreated,
  type LocalNodes,
  OPEN_FLAGS_HANDLED_BY_KERNEL,
  type Opened,
  RenameFlag,
  type RequestContext,
  ROOT_NODE_ID,
  rootAccess,
  type SetattrChanges,
  type StatfsOut,
  type Timespec,
} from "../fuse/mod.ts";
import { utimesSeconds } from "../util/utimes.ts";
import { timespecOf } from "./attributes.ts";
import { fallocateDescriptor, runMknod } from "./system_tools.ts";
import { XattrHelper } from "../util/xattr_helper.ts";

/** Options of {@link PassthroughFileSystem}. */
export interface PassthroughOptions {
  /** Seconds the kernel may cache a name -> node binding (default 1). */
  entryTimeout?: number;
  /** Seconds the kernel may cache attributes (default 1). */
  attrTimeout?: number;
  /** Bypass the page cache on every open: 1 MiB reads reach the source unsplit (default false). */
  directIo?: boolean;
  /** Keep cached pages across opens (only when nothing changes the source behind the mount). */
  keepCache?: boolean;
  /** Where problems are reported (default: a `riakfs: ` line on stderr). */
  log?: (message: string) => void;
}

/** `d_ino` of plain READDIR entries, whose inode was not looked up (libfuse's convention). */
const UNKNOWN_INO = 0xffffffff;
const S_ISGID = 0o2000;
/** open(2)'s access-mode bits (O_RDONLY, O_WRONLY, O_RDWR). */
const O_ACCMODE = 3;
const PERMISSION_BITS = 0o7777;
/**
 * A file's ctime must be at least this old (ns) before "no xattrs at this ctime" is trusted:
 * an xattr set right after the look may get the same ctime where timestamps are coarse
 * (jiffies; whole seconds on ext3, FAT or some NFS servers, whose ctimes end in .000000000).
 */
const SETTLED_CTIME_NS = 100_000_000n;
const SETTLED_WHOLE_SECOND_CTIME_NS = 2_000_000_000n;
/** Parallel lstat calls while filling one READDIRPLUS reply. */
const READDIRPLUS_BATCH = 32;

interface Node {
  id: number;
  /** "dev:ino" of the source inode. */
  key: string;
  parent: number;
  name: string;
  lookups: number;
  /** Live nodes whose parent this is; a node with children is kept. */
  children: number;
  /** A regular file (the reader threads may open it). */
  regular: boolean;
  /** The ctime (ns) at which the file was seen to have no xattrs (see #learnXattrs). */
  xattrFreeAtCtimeNs?: bigint;
}

interface DirHandle {
  path: string;
  /** The listing, read at offset 0 and served from memory so offsets stay stable. */
  entries?: fs.Dirent[];
}

/** Serves a local directory through FUSE, one source operation per request. */
export class PassthroughFileSystem implements FileSystem {
  /** The absolute path of the source directory. */
  readonly source: string;
  readonly #entryTimeout: number;
  readonly #attrTimeout: number;
  readonly #directIo: boolean;
  /** See `LocalFiles.writeOnlyDirectIo`: only where the kernel keeps other handles coherent. */
  readonly #writeOnlyDirectIo = directWritesInvalidateCache();
  readonly #keepCache: boolean;
  readonly #nodes = new Map<number, Node>();
  readonly #byKey = new Map<string, Node>();
  readonly #dirs = new Map<number, DirHandle>();
  readonly #readBuffers = new BufferPool();
  /** Where nodes are registered for the reader threads' GETATTRs, once serving. */
  #localNodes: LocalNodes | undefined;
  #nextNodeId = ROOT_NODE_ID + 1;
  #nextDirHandle = 1;

  /** `source` must be an absolute, resolved path of a directory (see {@link openPassthrough}). */
  constructor(source: string, rootStat: fs.BigIntStats, options: PassthroughOptions = {}) {
    this.source = source;
    this.#entryTimeout = options.entryTimeout ?? 1;
    this.#attrTimeout = options.attrTimeout ?? 1;
    this.#directIo = options.directIo ?? false;
    this.#keepCache = options.keepCache ?? false;
    this.#log = options.log ?? ((message) => process.stderr.write(`riakfs: ${message}\n`));
    const root: Node = {
      id: ROOT_NODE_ID,
      key: keyOf(rootStat),
      parent: ROOT_NODE_ID,
      name: "",
      lookups: 1,
      children: 0,
      regular: false,
    };
    this.#nodes.set(root.id, root);
  }

  /** @inheritdoc */
  attachLocalNodes(nodes: LocalNodes): void {
    if (!nodes.supported) return;
    this.#localNodes = nodes;
    for (const node of this.#nodes.values()) this.#register(node);
    // open, create and release below are exactly what serveFiles asks for.
    nodes.serveFiles({
      firstNodeId: this.#nextNodeId,
      entryTimeout: this.#entryTimeout,
      attrTimeout: this.#attrTimeout,
      directIo: this.#directIo,
      keepCache: this.#keepCache,
      writeOnlyDirectIo: this.#writeOnlyDirectIo,
      adopt: (created) => this.#adopt(created),
    });
  }

  /** Node ids currently known (for tests of lookup counting). */
  get liveNodes(): number {
    return this.#nodes.size;
  }

  /** @inheritdoc */
  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const path = this.#childPath(parent, name);
    const stat = await fs.promises.lstat(path, { bigint: true });
    return this.#entry(this.#referenced(parent, name, stat), stat);
  }

  /** @inheritdoc */
  forget(nodeid: number, nlookup: number): void {
    const node = this.#nodes.get(nodeid);
    if (!node || node.id === ROOT_NODE_ID) return;
    node.lookups -= nlookup;
    this.#dropIfUnused(node);
  }

  /** @inheritdoc */
  async getattr(_ctx: RequestContext, nodeid: number, fh: number | undefined): Promise<AttrReply> {
    if (fh !== undefined) return this.#attrReply(await fstat(fh));
    const key = this.#nodes.get(nodeid)?.key;
    let missing: unknown;
    try {
      const stat = await this.#lstat(nodeid);
      // Its name may hold another file now (renamed over, or removed and made again).
      if (key === undefined || nodeid === ROOT_NODE_ID || keyOf(stat) === key) {
        return this.#attrReply(stat);
      }
      missing = fail(Errno.ENOENT, "renamed over");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      missing = error;
    }
    // Removed while open (fstat(2) asks without a handle): a descriptor of the inode that
    // this process holds answers, with no link left, as on a local disk.
    const open = key === undefined ? undefined : await openDescriptorStat(key);
    if (open === undefined) throw missing;
    return this.#attrReply(open);
  }

  /** @inheritdoc */
  async setattr(ctx: RequestContext, nodeid: number, changes: SetattrChanges): Promise<AttrReply> {
    const path = this.#path(nodeid);
    // fchmod(2) and the like come without a handle: where the name holds another file now,
    // a descriptor of this one that the process holds takes the change instead.
    const fd = changes.fh ?? await this.#descriptorIfRenamedOver(nodeid);
    // chown(2) clears the set-user-ID and set-group-ID bits: a mode asked for goes on after.
    if (changes.uid !== undefined || changes.gid !== undefined) {
      const uid = changes.uid ?? -1;
      const gid = changes.gid ?? -1;
      if (fd !== undefined) await fdCall<void>((done) => fs.fchown(fd, uid, gid, done));
      else await fs.promises.lchown(path, uid, gid);
    }
    if (changes.mode !== undefined) {
      const mode = changes.mode & PERMISSION_BITS;
      if (fd !== undefined) await fdCall<void>((done) => fs.fchmod(fd, mode, done));
      else {
        // chmod(2) follows symlinks; a symlink's own mode cannot change on Linux.
        if ((await fs.promises.lstat(path)).isSymbolicLink()) throw fail(Errno.EOPNOTSUPP);
        await fs.promises.chmod(path, mode);
      }
    }
    if (changes.size !== undefined) {
      const size = changes.size;
      if (fd !== undefined) await fdCall<void>((done) => fs.ftruncate(fd, size, done));
      else {
        const own = await openFd(path, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0);
        try {
          await fdCall<void>((done) => fs.ftruncate(own, size, done));
        } finally {
          await closeFd(own);
        }
      }
    }
    if (changes.atime !== undefined || changes.mtime !== undefined) {
      const current = fd !== undefined ? await fstat(fd) : await fs.promises.lstat(path, {
        bigint: true,
      });
      const atime = timeArgument(changes.atime, current.atimeNs);
      const mtime = timeArgument(changes.mtime, current.mtimeNs);
      if (fd !== undefined) await fdCall<void>((done) => fs.futimes(fd, atime, mtime, done));
      else await fs.promises.lutimes(path, atime, mtime);
    }
    void ctx;
    let stat = fd !== undefined ? await fstat(fd) : await fs.promises.lstat(path, {
      bigint: true,
    });
    if (changes.killSuidgid && stat.isFile() && await killSuidgid(path, fd, stat)) {
      stat = fd !== undefined ? await fstat(fd) : await fs.promises.lstat(path, { bigint: true });
    }
    return this.#attrReply(stat);
  }

  /** @inheritdoc */
  readlink(_ctx: RequestContext, nodeid: number): Promise<string> {
    return fs.promises.readlink(this.#path(nodeid));
  }

  /** @inheritdoc */
  async symlink(
    ctx: RequestContext,
    parent: number,
    name: string,
    target: string,
  ): Promise<Entry> {
    const path = this.#childPath(parent, name);
    await fs.promises.symlink(target, path);
    await this.#chownToCaller(ctx, parent, path);
    return this.#newEntry(parent, name, path, undefined);
  }

  /** @inheritdoc */
  async mknod(
    ctx: RequestContext,
    parent: number,
    name: string,
    mode: number,
    rdev: number,
  ): Promise<Entry> {
    const path = this.#childPath(parent, name);
    const permissions = (mode & PERMISSION_BITS).toString(8);
    switch (mode & FileType.MASK) {
      case FileType.REGULAR: {
        const flags = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY |
          fs.constants.O_NOFOLLOW;
        await closeFd(await openFd(path, flags, mode & PERMISSION_BITS));
        break;
      }
      case FileType.FIFO:
        await runMknod(["-m", permissions, path, "p"]);
        break;
      case FileType.CHAR:
      case FileType.BLOCK: {
        const kind = (mode & FileType.MASK) === FileType.CHAR ? "c" : "b";
        const major = (rdev >>> 8) & 0xfff;
        const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
        await runMknod(["-m", permissions, path, kind, String(major), String(minor)]);
        break;
      }
      default:
        throw fail(Errno.EOPNOTSUPP, `mknod of type ${(mode & FileType.MASK).toString(8)}`);
    }
    await this.#chownToCaller(ctx, parent, path);
    return this.#newEntry(parent, name, path, mode);
  }

  /** @inheritdoc */
  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    const path = this.#childPath(parent, name);
    await fs.promises.mkdir(path, mode & PERMISSION_BITS);
    await this.#chownToCaller(ctx, parent, path);
    return this.#newEntry(parent, name, path, mode);
  }

  /** @inheritdoc */
  unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    return fs.promises.unlink(this.#childPath(parent, name));
  }

  /** @inheritdoc */
  rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    return fs.promises.rmdir(this.#childPath(parent, name));
  }

  /** @inheritdoc */
  async rename(
    _ctx: RequestContext,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void> {
    const from = this.#childPath(parent, name);
    const to = this.#childPath(newParent, newName);
    if (flags & ~(RenameFlag.NOREPLACE | RenameFlag.EXCHANGE)) throw fail(Errno.EINVAL);
    if (flags & RenameFlag.EXCHANGE) {
      // The kernel holds both directories locked, so no user of the mount sees the middle.
      const aside = join(this.#path(parent), `.riakfs-exchange-${process.pid}-${Date.now()}`);
      const movedA = await fs.promises.lstat(from, { bigint: true });
      const movedB = await fs.promises.lstat(to, { bigint: true });
      await fs.promises.rename(from, aside);
      try {
        await fs.promises.rename(to, from);
      } catch (error) {
        await fs.promises.rename(aside, from);
        throw error;
      }
      await fs.promises.rename(aside, to);
      this.#moved(movedA, newParent, newName);
      this.#moved(movedB, parent, name);
      return;
    }
    if (flags & RenameFlag.NOREPLACE) {
      // Race-free for users of the mount: the kernel holds the target directory locked.
      const exists = await fs.promises.lstat(to).then(() => true, () => false);
      if (exists) throw fail(Errno.EEXIST);
    }
    const moved = await fs.promises.lstat(from, { bigint: true });
    await fs.promises.rename(from, to);
    this.#moved(moved, newParent, newName);
  }

  /** @inheritdoc */
  async link(
    _ctx: RequestContext,
    nodeid: number,
    newParent: number,
    newName: string,
  ): Promise<Entry> {
    const path = this.#childPath(newParent, newName);
    await fs.promises.link(this.#path(nodeid), path);
    const stat = await fs.promises.lstat(path, { bigint: true });
    return this.#entry(this.#referenced(newParent, newName, stat), stat);
  }

  /**
   * @inheritdoc
   * The FUSE reader threads open known regular files the same way themselves (see
   * `LocalNodes.serveFiles`): a change here must be made there too.
   */
  async open(ctx: RequestContext, nodeid: number, flags: number): Promise<Opened> {
    const path = this.#path(nodeid);
    const fd = await openFd(
      path,
      (flags & ~OPEN_FLAGS_HANDLED_BY_KERNEL) | fs.constants.O_NOFOLLOW,
      0,
    );
    // FUSE_OPEN_KILL_SUIDGID does not reach us: a caller other than root stands for one
    // without CAP_FSETID (the reader threads read the flag itself).
    if (flags & fs.constants.O_TRUNC && ctx.uid !== 0) {
      await killSuidgid(path, fd, await fstat(fd)).catch(async (error) => {
        await closeFd(fd);
        throw error;
      });
    }
    return this.#opened(fd, flags);
  }

  /** @inheritdoc */
  async read(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    size: number,
  ): Promise<Uint8Array> {
    const buffer = this.#readBuffers.take(size);
    try {
      const length = await fdCall<number>((done) => fs.read(fh, buffer, 0, size, offset, done));
      return buffer.subarray(0, length);
    } finally {
      // The session writes the reply before any other I/O callback, hence before this.
      setImmediate(() => this.#readBuffers.give(buffer));
    }
  }

  /** @inheritdoc */
  async write(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    data: Uint8Array,
    killSuidgidBits = false,
  ): Promise<number> {
    if (killSuidgidBits) await killSuidgid(undefined, fh, await fstat(fh));
    return await fdCall<number>((done) => fs.write(fh, data, 0, data.byteLength, offset, done));
  }

  /** @inheritdoc */
  release(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    return closeFd(fh);
  }

  /** @inheritdoc */
  fsync(_ctx: RequestContext, _nodeid: number, fh: number, datasync: boolean): Promise<void> {
    return fdCall<void>((done) => datasync ? fs.fdatasync(fh, done) : fs.fsync(fh, done));
  }

  /** @inheritdoc */
  async opendir(_ctx: RequestContext, nodeid: number): Promise<Opened> {
    const path = this.#path(nodeid);
    const stat = await fs.promises.lstat(path);
    if (!stat.isDirectory()) throw fail(Errno.ENOTDIR);
    const fh = this.#nextDirHandle++;
    this.#dirs.set(fh, { path });
    return { fh };
  }

  /** @inheritdoc */
  async readdir(
    _ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void> {
    const entries = await this.#listing(fh, offset);
    const selfIno = Number(this.#nodes.get(nodeid)?.key.split(":")[1] ?? UNKNOWN_INO);
    for (let index = offset; index < entries.length + 2; index++) {
      const dirent = index < 2
        ? { name: index === 0 ? "." : "..", ino: index === 0 ? selfIno : UNKNOWN_INO }
        : { name: entries[index - 2].name, ino: UNKNOWN_INO };
      const mode = index < 2 ? FileType.DIRECTORY : direntMode(entries[index - 2]);
      if (!sink.add({ ...dirent, mode, nextOffset: index + 1 })) return;
    }
  }

  /** @inheritdoc */
  async readdirplus(
    _ctx: RequestContext,
    nodeid: number,
    fh: number,
    offset: number,
    sink: DirectorySink,
  ): Promise<void> {
    const entries = await this.#listing(fh, offset);
    const dirPath = this.#dirs.get(fh)!.path;
    let index = offset;
    for (; index < 2; index++) {
      const name = index === 0 ? "." : "..";
      const dirent = { name, ino: UNKNOWN_INO, mode: FileType.DIRECTORY, nextOffset: index + 1 };
      if (!sink.addPlus(dirent, undefined)) return;
    }
    while (index < entries.length + 2) {
      const batch = entries.slice(index - 2, index - 2 + READDIRPLUS_BATCH);
      const stats = await Promise.all(
        batch.map((entry) => lstat(join(dirPath, entry.name)).catch(() => undefined)),
      );
      for (let i = 0; i < batch.length; i++, index++) {
        const stat = stats[i];
        if (!stat) continue; // Removed since the listing was read.
        const name = batch[i].name;
        if (!sink.fits(name)) return;
        const node = this.#nodeFor(nodeid, name, stat);
        const dirent = {
          name,
          ino: Number(stat.ino),
          mode: Number(stat.mode),
          nextOffset: index + 1,
        };
        if (!sink.addPlus(dirent, this.#entry(node, stat))) {
          this.#dropIfUnused(node);
          return;
        }
        node.lookups++;
      }
    }
  }

  /** @inheritdoc */
  releasedir(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    this.#dirs.delete(fh);
    return Promise.resolve();
  }

  /** @inheritdoc */
  async fsyncdir(_ctx: RequestContext, nodeid: number, _fh: number, datasync: boolean) {
    const fd = await openFd(
      this.#path(nodeid),
      fs.constants.O_RDONLY | fs.constants.O_DIRECTORY,
      0,
    );
    try {
      await fdCall<void>((done) => datasync ? fs.fdatasync(fd, done) : fs.fsync(fd, done));
    } finally {
      await closeFd(fd);
    }
  }

  /** @inheritdoc */
  async access(ctx: RequestContext, nodeid: number, mask: number): Promise<void> {
    const { attr } = await this.getattr(ctx, nodeid, undefined);
    rootAccess(attr.mode, mask);
  }

  /** @inheritdoc */
  async statfs(_ctx: RequestContext, nodeid: number): Promise<StatfsOut> {
    return statfsOf(await fs.promises.statfs(this.#path(nodeid)));
  }

  /**
   * @inheritdoc
   * The FUSE reader threads create new names the same way themselves (see
   * `LocalNodes.serveFiles`): a change here must be made there too.
   */
  async create(
    ctx: RequestContext,
    parent: number,
    name: string,
    flags: number,
    mode: number,
  ): Promise<Created> {
    const path = this.#childPath(parent, name);
    const openFlags = (flags & ~(fs.constants.O_NOCTTY | (fs.constants.O_DIRECT ?? 0))) |
      fs.constants.O_CREAT | fs.constants.O_NOFOLLOW;
    const fd = await openFd(path, openFlags, mode & PERMISSION_BITS);
    try {
      await this.#chownToCaller(ctx, parent, fd);
      let stat = await fstat(fd);
      if ((Number(stat.mode) & PERMISSION_BITS) !== (mode & PERMISSION_BITS)) {
        // Our own umask or the chown (which clears setuid/setgid) changed the bits.
        await fdCall<void>((done) => fs.fchmod(fd, mode & PERMISSION_BITS, done));
        stat = await fstat(fd);
      }
      const entry = this.#entry(this.#referenced(parent, name, stat), stat);
      return { entry, opened: this.#opened(fd, flags) };
    } catch (error) {
      await closeFd(fd).catch(() => {});
      throw error;
    }
  }

  /** @inheritdoc */
  async fallocate(
    _ctx: RequestContext,
    _nodeid: number,
    fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void> {
    // Through our own descriptor: exactly the open file, no path to race with.
    await fallocateDescriptor(fh, offset, length, mode);
  }

  // ---- extended attributes: l*xattr(2) on the node's source path, by a python3 helper ----

  readonly #log: (message: string) => void;

  /** Started by the first xattr request; without python3 they answer EOPNOTSUPP. */
  readonly #xattrs = new XattrHelper({
    onUnavailable: (message) => this.#log(message),
  });

  /**
   * Files the reader threads created, while nothing set an xattr on them through the mount.
   * The kernel asks each new inode for security.capability before its first write (then,
   * with HANDLE_KILLPRIV_V2, not again until a security.* xattr is set); a new file has
   * none, so the readers answer that themselves (WITHOUT_CAPABILITY) and so does getxattr
   * here, with no helper round trip. Only a setcap directly in the source goes unseen.
   */
  readonly #createdWithoutCapability = new Set<number>();

  /** @inheritdoc */
  async getxattr(_ctx: RequestContext, nodeid: number, name: string): Promise<Uint8Array> {
    if (name === "security.capability" && this.#createdWithoutCapability.has(nodeid)) {
      throw fail(Errno.ENODATA);
    }
    const path = this.#path(nodeid);
    // Most files have no xattrs: the listing, sent along with the get, lets the readers
    // answer the next asks.
    const listed = this.#learnXattrs(nodeid, path);
    const value = this.#xattrs.get(path, name);
    value.catch(() => {}); // not awaited when the listing is empty or fails
    if ((await listed).length === 0) throw fail(Errno.ENODATA);
    return await value;
  }

  /** @inheritdoc */
  async setxattr(
    ctx: RequestContext,
    nodeid: number,
    name: string,
    value: Uint8Array,
    flags: number,
  ): Promise<void> {
    await this.#mayChangeSystemXattr(ctx, nodeid, name);
    this.#xattrsChanged(nodeid);
    await this.#xattrs.set(this.#path(nodeid), name, value, flags);
  }

  /** @inheritdoc */
  async listxattr(ctx: RequestContext, nodeid: number): Promise<string[]> {
    const names = (await this.#learnXattrs(nodeid, this.#path(nodeid)))
      .map((name) => name.toString());
    // The helper runs as root; like ext4, hide trusted.* from callers that are not.
    return ctx.uid === 0 ? names : names.filter((name) => !name.startsWith("trusted."));
  }

  /** @inheritdoc */
  async removexattr(ctx: RequestContext, nodeid: number, name: string): Promise<void> {
    await this.#mayChangeSystemXattr(ctx, nodeid, name);
    this.#xattrsChanged(nodeid);
    await this.#xattrs.remove(this.#path(nodeid), name);
  }

  /**
   * system.* names are the owner's or root's to change. The kernel checks POSIX ACL names
   * itself (checked on 6.18), but other system.* names (an NFS source's system.nfs4_acl)
   * reach us unchecked, and the helper runs as root.
   */
  async #mayChangeSystemXattr(ctx: RequestContext, nodeid: number, name: string): Promise<void> {
    if (ctx.uid === 0 || !name.startsWith("system.")) return;
    const owner = (await fs.promises.lstat(this.#path(nodeid))).uid;
    if (owner !== ctx.uid) throw fail(Errno.EPERM, `only the owner may change ${name}`);
  }

  /**
   * Lists the xattr names of node `nodeid` at `path`, and when there are none, tells the
   * reader threads so with the ctime seen before the listing: they answer while the ctime
   * stays (an xattr set after the lstat moves it past a settled ctime).
   */
  async #learnXattrs(nodeid: number, path: string): Promise<Buffer[]> {
    const before = await fs.promises.lstat(path, { bigint: true });
    const names = await this.#xattrs.list(path);
    const node = this.#nodes.get(nodeid);
    if (node === undefined || node.id === ROOT_NODE_ID || keyOf(before) !== node.key) return names;
    const age = BigInt(Date.now()) * 1_000_000n - before.ctimeNs;
    const settled = age >=
      (before.ctimeNs % 1_000_000_000n === 0n ? SETTLED_WHOLE_SECOND_CTIME_NS : SETTLED_CTIME_NS);
    const xattrFree = names.length === 0 && settled ? before.ctimeNs : undefined;
    if (node.xattrFreeAtCtimeNs !== xattrFree) {
      node.xattrFreeAtCtimeNs = xattrFree;
      this.#register(node);
    }
    return names;
  }

  /** An xattr of node `nodeid` is changed through the mount: what was learnt is dropped. */
  #xattrsChanged(nodeid: number): void {
    const node = this.#nodes.get(nodeid);
    if (!node) return;
    const known = this.#createdWithoutCapability.delete(nodeid) ||
      node.xattrFreeAtCtimeNs !== undefined;
    node.xattrFreeAtCtimeNs = undefined;
    if (known) this.#register(node);
  }

  /** Stops the xattr helper process, if one runs (the runtime does, once the mount is gone). */
  close(): Promise<void> {
    return this.#xattrs.close();
  }

  // ---- helpers ----

  /** A handle of descriptor `fd`, opened with open(2) `flags` (see LocalFiles.writeOnlyDirectIo). */
  #opened(fd: number, flags: number): Opened {
    return {
      fh: fd,
      localFd: fd,
      closeOnRelease: true,
      directIo: this.#directIo ||
        (this.#writeOnlyDirectIo && (flags & O_ACCMODE) === fs.constants.O_WRONLY),
      keepCache: this.#keepCache,
    };
  }

  #path(nodeid: number): string {
    if (nodeid === ROOT_NODE_ID) return this.source;
    const names: string[] = [];
    let node = this.#nodes.get(nodeid);
    while (node && node.id !== ROOT_NODE_ID) {
      names.push(node.name);
      node = this.#nodes.get(node.parent);
    }
    if (!node) throw fail(Errno.ESTALE, `node ${nodeid} is no longer known`);
    return join(this.source, ...names.reverse());
  }

  #childPath(parent: number, name: string): string {
    if (name.includes("/") || name === "." || name === ".." || name === "") {
      throw fail(Errno.EINVAL, `invalid name ${JSON.stringify(name)}`);
    }
    if (Buffer.byteLength(name) > 255) throw fail(Errno.ENAMETOOLONG);
    return join(this.#path(parent), name);
  }

  /**
   * A descriptor of node `nodeid`'s file held by this process, when its path no longer leads
   * to that file (removed, or renamed over); undefined while it does.
   */
  async #descriptorIfRenamedOver(nodeid: number): Promise<number | undefined> {
    const key = this.#nodes.get(nodeid)?.key;
    if (key === undefined || nodeid === ROOT_NODE_ID) return undefined;
    const stat = await this.#lstat(nodeid).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return undefined;
    });
    if (stat !== undefined && keyOf(stat) === key) return undefined;
    const open = await openDescriptor(key);
    if (open === undefined) throw fail(Errno.ENOENT, "removed");
    return open.fd;
  }

  #lstat(nodeid: number): Promise<fs.BigIntStats> {
    return fs.promises.lstat(this.#path(nodeid), { bigint: true });
  }

  /**
   * Gives a new node (by path, or by open descriptor) to the caller: its uid, and its gid
   * unless the directory is setgid (then the node keeps the directory's group). Skipped
   * when that changes nothing, since we run as root and root made the node.
   */
  async #chownToCaller(ctx: RequestContext, parent: number, node: string | number) {
    const ownUid = ctx.uid === process.getuid?.();
    if (ownUid && ctx.gid === process.getgid?.()) return;
    // Asked of the source each time: the reader threads answer GETATTR, so no mode
    // remembered here would be current.
    const parentMode = (await fs.promises.lstat(this.#path(parent))).mode;
    const setgid = (parentMode & S_ISGID) !== 0;
    if (ownUid && setgid) return;
    const gid = setgid ? -1 : ctx.gid;
    if (typeof node === "number") {
      await fdCall<void>((done) => fs.fchown(node, ctx.uid, gid, done));
    } else await fs.promises.lchown(node, ctx.uid, gid);
  }

  /** Finds or creates the node of a source inode, with no new lookup reference. */
  #nodeFor(parent: number, name: string, stat: fs.BigIntStats): Node {
    const key = keyOf(stat);
    let node = this.#byKey.get(key);
    if (node && node.id === ROOT_NODE_ID) return node;
    if (!node) {
      node = this.#added({
        id: this.#localNodes?.allocateNodeId() ?? this.#nextNodeId++,
        key,
        parent,
        name,
        lookups: 0,
        children: 0,
        regular: stat.isFile(),
      });
    } else {
      this.#reparent(node, parent, name);
    }
    return node;
  }

  /** Enters a new node in the tables, its parent's and the reader threads'. */
  #added(node: Node): Node {
    this.#nodes.set(node.id, node);
    this.#byKey.set(node.key, node);
    const parent = this.#nodes.get(node.parent);
    if (parent) parent.children++;
    this.#register(node);
    return node;
  }

  /**
   * A file a reader thread created, with the lookup reference its CREATE reply gave. Its
   * inode is new, so an older node still holding the same key belongs to a deleted file
   * whose inode number was reused: the key now names the new node. A newer node (a higher
   * id) keeps the key: this file was deleted too and its number reused since.
   */
  #adopt(created: LocallyCreated): void {
    const key = `${created.dev}:${created.ino}`;
    const node: Node = {
      id: created.nodeid,
      key,
      parent: created.parent,
      name: created.name,
      lookups: 1,
      children: 0,
      regular: true,
    };
    const holder = this.#byKey.get(key);
    this.#createdWithoutCapability.add(node.id); // Before #added registers it.
    this.#added(node);
    if (holder && holder.id > node.id) this.#byKey.set(key, holder);
  }

  /** Finds or creates the node and takes one lookup reference (an entry reply follows). */
  #referenced(parent: number, name: string, stat: fs.BigIntStats): Node {
    const node = this.#nodeFor(parent, name, stat);
    node.lookups++;
    return node;
  }

  #reparent(node: Node, parent: number, name: string): void {
    if (node.id === ROOT_NODE_ID) return;
    const moved = node.parent !== parent || node.name !== name;
    if (node.parent !== parent) {
      const old = this.#nodes.get(node.parent);
      this.#nodes.get(parent)!.children++;
      node.parent = parent;
      if (old) {
        old.children--;
        this.#dropIfUnused(old);
      }
    }
    node.name = name;
    if (moved) this.#register(node);
  }

  /** Tells the reader threads where a node is (see `attachLocalNodes`); the root is the source. */
  #register(node: Node): void {
    const root = node.id === ROOT_NODE_ID;
    const ino = Number(node.key.slice(node.key.indexOf(":") + 1));
    this.#localNodes?.set(
      node.id,
      root ? 0 : node.parent,
      root ? this.source : node.name,
      this.#attrTimeout,
      ino,
      node.regular,
      {
        withoutCapability: this.#createdWithoutCapability.has(node.id),
        xattrFreeAtCtimeNs: node.xattrFreeAtCtimeNs,
      },
    );
  }

  #moved(stat: fs.BigIntStats, parent: number, name: string): void {
    const node = this.#byKey.get(keyOf(stat));
    if (node) this.#reparent(node, parent, name);
  }

  #dropIfUnused(node: Node): void {
    if (node.id === ROOT_NODE_ID || node.lookups > 0 || node.children > 0) return;
    this.#nodes.delete(node.id);
    this.#createdWithoutCapability.delete(node.id);
    this.#localNodes?.delete(node.id);
    if (this.#byKey.get(node.key) === node) this.#byKey.delete(node.key);
    const parent = this.#nodes.get(node.parent);
    if (parent) {
      parent.children--;
      this.#dropIfUnused(parent);
    }
  }

  async #newEntry(
    parent: number,
    name: string,
    path: string,
    wantedMode: number | undefined,
  ): Promise<Entry> {
    let stat = await fs.promises.lstat(path, { bigint: true });
    if (
      wantedMode !== undefined && !stat.isSymbolicLink() &&
      (Number(stat.mode) & 0o777) !== (wantedMode & 0o777)
    ) {
      // Our own process umask masked the bits the kernel had already masked.
      const keepSetgid = stat.isDirectory() ? Number(stat.mode) & S_ISGID : 0;
      await fs.promises.chmod(path, (wantedMode & PERMISSION_BITS) | keepSetgid);
      stat = await fs.promises.lstat(path, { bigint: true });
    }
    return this.#entry(this.#referenced(parent, name, stat), stat);
  }

  #entry(node: Node, stat: fs.BigIntStats): Entry {
    return {
      nodeid: node.id,
      attr: attrOf(stat),
      entryTimeout: this.#entryTimeout,
      attrTimeout: this.#attrTimeout,
    };
  }

  #attrReply(stat: fs.BigIntStats): AttrReply {
    return { attr: attrOf(stat), attrTimeout: this.#attrTimeout };
  }

  async #listing(fh: number, offset: number): Promise<fs.Dirent[]> {
    const handle = this.#dirs.get(fh);
    if (!handle) throw fail(Errno.EBADF, `directory handle ${fh} is not open`);
    if (offset === 0 || !handle.entries) {
      handle.entries = await fs.promises.readdir(handle.path, { withFileTypes: true });
    }
    return handle.entries;
  }
}

/**
 * Checks `source` and returns a passthrough filesystem over it. Resolve the path before
 * mounting: nothing may touch the mountpoint synchronously once it is served.
 */
export async function openPassthrough(
  source: string,
  options: PassthroughOptions = {},
): Promise<PassthroughFileSystem> {
  const resolved = await fs.promises.realpath(source);
  const stat = await fs.promises.stat(resolved, { bigint: true });
  if (!stat.isDirectory()) throw new Error(`source is not a directory: ${source}`);
  return new PassthroughFileSystem(resolved, stat, options);
}

/** Reuses read buffers, so streaming reads do not leave a trail of garbage buffers behind. */
class BufferPool {
  /** Buffers kept per size class (128 KiB page-cache reads, 1 MiB direct reads). */
  static readonly KEPT = 8;
  readonly #free = new Map<number, Buffer[]>();

  /** A buffer of at least `size` bytes. */
  take(size: number): Buffer {
    const sizeClass = size <= 128 * 1024 ? 128 * 1024 : size <= 1 << 20 ? 1 << 20 : size;
    return this.#free.get(sizeClass)?.pop() ?? Buffer.allocUnsafeSlow(sizeClass);
  }

  /** Returns a buffer from {@link take}. */
  give(buffer: Buffer): void {
    const free = this.#free.get(buffer.byteLength) ?? [];
    if (free.length < BufferPool.KEPT) free.push(buffer);
    this.#free.set(buffer.byteLength, free);
  }
}

function keyOf(stat: fs.BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

/**
 * The stat of a removed regular file this process still has open whose "dev:ino" is `key`,
 * if any: open handles live in the reader threads, which keep no index of them by inode, so
 * the process's descriptor table is searched (only for a node whose path is gone). No link
 * left is required: an inode number reused by a file with a name is another file.
 */
async function openDescriptorStat(key: string): Promise<fs.BigIntStats | undefined> {
  return (await openDescriptor(key))?.stat;
}

/** {@link openDescriptorStat}, with the descriptor found. */
async function openDescriptor(
  key: string,
): Promise<{ fd: number; stat: fs.BigIntStats } | undefined> {
  for (const name of await fs.promises.readdir("/proc/self/fd").catch(() => [])) {
    // On the pool: a network file system's fstat(2) may ask its server.
    const stat = await fstat(Number(name)).catch(() => undefined); // closed meanwhile
    if (stat?.isFile() && stat.nlink === 0n && keyOf(stat) === key) {
      return { fd: Number(name), stat };
    }
  }
  return undefined;
}

/** Converts a source stat to FUSE attributes. */
export function attrOf(stat: fs.BigIntStats): Attr {
  return {
    ino: Number(stat.ino),
    size: Number(stat.size),
    blocks: Number(stat.blocks),
    atime: timespecOf(stat.atimeNs),
    mtime: timespecOf(stat.mtimeNs),
    ctime: timespecOf(stat.ctimeNs),
    mode: Number(stat.mode),
    nlink: Number(stat.nlink),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    rdev: Number(stat.rdev & 0xffffffffn),
    blksize: Number(stat.blksize),
  };
}

/** Converts a local `statfs` result to what FUSE reports (names up to 255 bytes). */
export function statfsOf(stat: fs.StatsFs): StatfsOut {
  return {
    blocks: stat.blocks,
    bfree: stat.bfree,
    bavail: stat.bavail,
    files: stat.files,
    ffree: stat.ffree,
    bsize: stat.bsize,
    namelen: 255,
    frsize: stat.bsize,
  };
}

/** utimes(2) arguments are seconds (see {@link utimesSeconds}). */
function timeArgument(change: Timespec | "now" | undefined, currentNs: bigint): number {
  if (change === "now") return Date.now() / 1000;
  if (change === undefined) return utimesSeconds(currentNs);
  return utimesSeconds(BigInt(change.sec) * 1_000_000_000n + BigInt(change.nsec));
}

function direntMode(entry: fs.Dirent): number {
  if (entry.isDirectory()) return FileType.DIRECTORY;
  if (entry.isSymbolicLink()) return FileType.SYMLINK;
  if (entry.isFIFO()) return FileType.FIFO;
  if (entry.isSocket()) return FileType.SOCKET;
  if (entry.isCharacterDevice()) return FileType.CHAR;
  if (entry.isBlockDevice()) return FileType.BLOCK;
  return FileType.REGULAR;
}

/** Calls a callback-style fs function and resolves with its result. */
function fdCall<T>(call: (done: (error: Error | null, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    call((error, result) => error ? reject(error) : resolve(result as T))
  );
}

/**
 * With HANDLE_KILLPRIV_V2 the kernel leaves it to us to clear setuid, and setgid of a
 * group-executable file, when a caller without CAP_FSETID writes, truncates or chowns, as
 * the local filesystem would for that caller; we run as root, which keeps them. The reader
 * threads do the same for their writes and opens (device.ts). True when bits were cleared.
 */
async function killSuidgid(
  path: string | undefined,
  fd: number | undefined,
  stat: fs.BigIntStats,
): Promise<boolean> {
  const mode = Number(stat.mode) & PERMISSION_BITS;
  const kept = mode & ~(mode & 0o10 ? 0o6000 : 0o4000);
  if (kept === mode) return false;
  if (fd !== undefined) await fdCall<void>((done) => fs.fchmod(fd, kept, done));
  else await fs.promises.chmod(path!, kept);
  return true;
}

function openFd(path: string, flags: number, mode: number): Promise<number> {
  return fdCall<number>((done) => fs.open(path, flags, mode, done));
}

function closeFd(fd: number): Promise<void> {
  return fdCall<void>((done) => fs.close(fd, done));
}

/** lstat with callbacks: measurably cheaper than fs.promises per call in big listings. */
function lstat(path: string): Promise<fs.BigIntStats> {
  return fdCall<fs.BigIntStats>((done) =>
    fs.lstat(path, { bigint: true }, done as (error: Error | null, stats: fs.BigIntStats) => void)
  );
}

function fstat(fd: number): Promise<fs.BigIntStats> {
  return fdCall<fs.BigIntStats>((done) =>
    fs.fstat(fd, { bigint: true }, done as (error: Error | null, stats: fs.BigIntStats) => void)
  );
}
