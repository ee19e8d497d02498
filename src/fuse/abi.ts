/**
 * The Linux FUSE kernel protocol (include/uapi/linux/fuse.h), 7.31 and later: opcodes, flag
 * sets, errno values, and the decoding of request structs and encoding of reply structs.
 *
 * Everything is little-endian (the only byte order riakfs runs on, x86_64) and works on
 * plain `Uint8Array`s, so it is tested against hand-made byte fixtures without a kernel.
 *
 * @module
 */

/** The protocol major version riakfs speaks. */
export const FUSE_KERNEL_VERSION = 7;
/** The highest minor version riakfs knows; INIT negotiates down to the kernel's. */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** The oldest minor version riakfs accepts (the structs it decodes have these sizes). */
export const FUSE_MIN_MINOR_VERSION = 31;

/** Byte size of `fuse_in_header`, which starts every request. */
export const IN_HEADER_SIZE = 40;
/** Byte size of `fuse_out_header`, which starts every reply. */
export const OUT_HEADER_SIZE = 16;
/** Byte size of `fuse_attr`. */
export const ATTR_SIZE = 88;
/** Byte size of `fuse_entry_out`. */
export const ENTRY_OUT_SIZE = 128;
/** Byte size of `fuse_attr_out`. */
export const ATTR_OUT_SIZE = 104;
/** Byte size of `fuse_dirent` without its name. */
export const DIRENT_SIZE = 24;
/** Byte size of `fuse_write_in`; the written data follows it. */
export const WRITE_IN_SIZE = 40;

/** Request opcodes (`enum fuse_opcode`). */
export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;

/** Flags of `fuse_init_in.flags` / `fuse_init_out.flags` (the low 32 bits). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
} as const;

/** Flags of `fuse_open_out.open_flags`: per-open caching choices. */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
} as const;

/** Bits of `fuse_setattr_in.valid`: which fields of a SETATTR request are meaningful. */
export const SetattrValid = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** `renameat2(2)` flags carried by RENAME2. */
export const RenameFlag = {
  NOREPLACE: 1 << 0,
  EXCHANGE: 1 << 1,
  WHITEOUT: 1 << 2,
} as const;

/** `fuse_getattr_in.getattr_flags`: the request names an open file handle. */
export const GETATTR_FH = 1;
/** `fuse_fsync_in.fsync_flags`: only the data needs to reach the disk. */
export const FSYNC_FDATASYNC = 1;
/** `fuse_release_in.release_flags`: flush before releasing. */
export const RELEASE_FLUSH = 1;

/**
 * Linux errno values (x86_64). Handlers answer with these; the kernel hands them to the
 * application unchanged.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
} as const;

/** File type bits of `st_mode`. */
export const FileType = {
  MASK: 0o170000,
  SOCKET: 0o140000,
  SYMLINK: 0o120000,
  REGULAR: 0o100000,
  BLOCK: 0o060000,
  DIRECTORY: 0o040000,
  CHAR: 0o020000,
  FIFO: 0o010000,
} as const;

/** `fuse_in_header`: who asks what about which node. */
export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

/** Seconds and nanoseconds since the epoch, as the kernel carries times. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** `fuse_attr`: the attributes of a node as `stat(2)` reports them. */
export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

/** `fuse_entry_out`: a node the kernel may now refer to by `nodeid`. */
export interface EntryOut {
  nodeid: number;
  /** Distinguishes reuses of one node id; 0 (the default) when ids are never reused. */
  generation?: number;
  /** How long, in seconds, the kernel may cache the name -> node binding. */
  entryTimeout: number;
  /** How long, in seconds, the kernel may cache the attributes. */
  attrTimeout: number;
  attr: Attr;
}

/** Reads little-endian fields of one request in order. */
export class RequestReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  #offset: number;

  /** Reads `bytes` from `offset` on (by default just after the in-header). */
  constructor(bytes: Uint8Array, offset = IN_HEADER_SIZE) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
  }

  /** Byte position of the next field. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes left in the request. */
  get remaining(): number {
    return this.#bytes.byteLength - this.#offset;
  }

  /** Reads an unsigned 32-bit field. */
  u32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.#offset, true);
    this.#offset += 4;
    return value;
  }

  /** Reads a signed 32-bit field. */
  i32(): number {
    this.#need(4);
    const value = this.#view.getInt32(this.#offset, true);
    this.#offset += 4;
    return value;
  }

  /** Reads an unsigned 16-bit field. */
  u16(): number {
    this.#need(2);
    const value = this.#view.getUint16(this.#offset, true);
    this.#offset += 2;
    return value;
  }

  /** Reads an unsigned 64-bit field as a bigint (exact). */
  u64big(): bigint {
    this.#need(8);
    const value = this.#view.getBigUint64(this.#offset, true);
    this.#offset += 8;
    return value;
  }

  /** Reads a signed 64-bit field as a number (times, which may precede 1970). */
  i64(): number {
    return Number(BigInt.asIntN(64, this.u64big()));
  }

  /**
   * Reads an unsigned 64-bit field as a number (offsets, sizes, counts). A value above
   * `Number.MAX_SAFE_INTEGER`, which a number cannot hold exactly, is refused with
   * {@link TooLargeError}: rounded, a write would land elsewhere and a truncate cut elsewhere.
   */
  u64(): number {
    const value = this.u64big();
    if (value > MAX_EXACT) throw new TooLargeError(value);
    return Number(value);
  }

  /**
   * Reads a node id or file handle: a number the filesystem chose itself and handed out, so
   * it comes back as exactly as it went.
   */
  id(): number {
    return Number(this.u64big());
  }

  /** Skips `count` bytes (padding, unused fields). */
  skip(count: number): this {
    this.#need(count);
    this.#offset += count;
    return this;
  }

  /**
   * Reads a NUL-terminated UTF-8 string (a file name). One that is not UTF-8 is refused with
   * {@link InvalidNameError}: decoded leniently, `a\xff` and `a\xfe` would name one file.
   */
  cstring(): string {
    const end = this.#bytes.indexOf(0, this.#offset);
    if (end < 0) throw new AbiError("string without its terminating NUL");
    let text: string;
    try {
      text = strictDecoder.decode(this.#bytes.subarray(this.#offset, end));
    } catch {
      throw new InvalidNameError();
    }
    this.#offset = end + 1;
    return text;
  }

  /** Returns the next `count` bytes without copying them. */
  bytes(count: number): Uint8Array {
    this.#need(count);
    const slice = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return slice;
  }

  /** Returns everything after the current position without copying. */
  rest(): Uint8Array {
    const slice = this.#bytes.subarray(this.#offset);
    this.#offset = this.#bytes.byteLength;
    return slice;
  }

  #need(count: number): void {
    if (this.#offset + count > this.#bytes.byteLength) {
      throw new AbiError(
        `request too short: need ${count} bytes at ${this.#offset}, have ${this.#bytes.byteLength}`,
      );
    }
  }
}

/** Writes little-endian fields of one reply struct in order into a preallocated buffer. */
export class ReplyWriter {
  /** The bytes written so far are `bytes.subarray(0, offset)`. */
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  /** Allocates a zero-filled buffer of `size` bytes. */
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }

  /** Byte position of the next field. */
  get offset(): number {
    return this.#offset;
  }

  /** Writes an unsigned 32-bit field. */
  u32(value: number): this {
    this.#view.setUint32(this.#offset, value >>> 0, true);
    this.#offset += 4;
    return this;
  }

  /** Writes a signed 32-bit field. */
  i32(value: number): this {
    this.#view.setInt32(this.#offset, value, true);
    this.#offset += 4;
    return this;
  }

  /** Writes an unsigned 16-bit field. */
  u16(value: number): this {
    this.#view.setUint16(this.#offset, value, true);
    this.#offset += 2;
    return this;
  }

  /** Writes a 64-bit field; negative values (times before 1970) go as two's complement. */
  u64(value: number | bigint): this {
    this.#view.setBigUint64(this.#offset, BigInt.asUintN(64, BigInt(value)), true);
    this.#offset += 8;
    return this;
  }

  /** Copies raw bytes. */
  raw(data: Uint8Array): this {
    this.bytes.set(data, this.#offset);
    this.#offset += data.byteLength;
    return this;
  }

  /** Leaves `count` zero bytes (padding, reserved fields). */
  zero(count: number): this {
    this.#offset += count;
    return this;
  }
}

/** A request or reply that does not match the protocol structs. */
export class AbiError extends Error {
  override name = "AbiError";
}

/** A name in a request is not UTF-8; `code` makes the request answer EILSEQ. */
export class InvalidNameError extends AbiError {
  override name = "InvalidNameError";
  readonly code = "EILSEQ";

  constructor() {
    super("a name that is not UTF-8");
  }
}

/**
 * An offset or size beyond what riakfs can address exactly (2^53 - 1, the largest file it
 * serves); `code` makes the request answer EFBIG, as a local filesystem answers past its
 * largest file.
 */
export class TooLargeError extends AbiError {
  override name = "TooLargeError";
  readonly code = "EFBIG";

  /** `value` is the offset or end of file asked for. */
  constructor(value: bigint | number) {
    super(`offset or size ${value} is beyond 2^53 - 1`);
  }
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

/** Encodes a string as UTF-8 (names, link targets, xattr names). */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** Decodes the `fuse_in_header` at the start of a request. */
export function decodeInHeader(bytes: Uint8Array): InHeader {
  const reader = new RequestReader(bytes, 0);
  const len = reader.u32();
  const opcode = reader.u32();
  const unique = reader.u64big();
  const nodeid = reader.id();
  const uid = reader.u32();
  const gid = reader.u32();
  const pid = reader.u32();
  return { len, opcode, unique, nodeid, uid, gid, pid };
}

/** Encodes a `fuse_out_header` for a reply of `payloadSize` bytes; `error` is 0 or -errno. */
export function encodeOutHeader(unique: bigint, error: number, payloadSize: number): Uint8Array {
  return new ReplyWriter(OUT_HEADER_SIZE).u32(OUT_HEADER_SIZE + payloadSize).i32(error).u64(
    unique,
  ).bytes;
}

/** Splits fractional seconds (a cache timeout) into whole seconds and nanoseconds. */
export function splitSeconds(seconds: number): Timespec {
  const clamped = Math.max(0, seconds);
  const sec = Math.floor(clamped);
  return { sec, nsec: Math.min(999_999_999, Math.round((clamped - sec) * 1e9)) };
}

/**
 * `time` with its nanoseconds within 0..999,999,999, as `fuse_attr` must carry them: a time
 * before 1970 split by truncation (-1.5 s as -1 s and -500,000,000 ns) is the same instant as
 * -2 s and 500,000,000 ns, but its negative nanoseconds would go out as 3,794,967,296.
 */
function withNsecInRange(time: Timespec): Timespec {
  if (time.nsec >= 0 && time.nsec < 1e9) return time;
  const carry = Math.floor(time.nsec / 1e9);
  return { sec: time.sec + carry, nsec: time.nsec - carry * 1e9 };
}

/** Writes a `fuse_attr` (88 bytes). */
export function writeAttr(writer: ReplyWriter, attr: Attr): void {
  const atime = withNsecInRange(attr.atime);
  const mtime = withNsecInRange(attr.mtime);
  const ctime = withNsecInRange(attr.ctime);
  writer.u64(attr.ino).u64(attr.size).u64(attr.blocks);
  writer.u64(atime.sec).u64(mtime.sec).u64(ctime.sec);
  writer.u32(atime.nsec).u32(mtime.nsec).u32(ctime.nsec);
  writer.u32(attr.mode).u32(attr.nlink).u32(attr.uid).u32(attr.gid).u32(attr.rdev);
  writer.u32(attr.blksize).u32(0);
}

/** Writes a `fuse_entry_out` (128 bytes). */
export function writeEntryOut(writer: ReplyWriter, entry: EntryOut): void {
  const entryValid = splitSeconds(entry.entryTimeout);
  const attrValid = splitSeconds(entry.attrTimeout);
  writer.u64(entry.nodeid).u64(entry.generation ?? 0).u64(entryValid.sec).u64(attrValid.sec);
  writer.u32(entryValid.nsec).u32(attrValid.nsec);
  writeAttr(writer, entry.attr);
}

/** Encodes a `fuse_entry_out` payload. */
export function encodeEntryOut(entry: EntryOut): Uint8Array {
  const writer = new ReplyWriter(ENTRY_OUT_SIZE);
  writeEntryOut(writer, entry);
  return writer.bytes;
}

/** Encodes a `fuse_attr_out` payload. */
export function encodeAttrOut(attr: Attr, attrTimeout: number): Uint8Array {
  const valid = splitSeconds(attrTimeout);
  const writer = new ReplyWriter(ATTR_OUT_SIZE).u64(valid.sec).u32(valid.nsec).u32(0);
  writeAttr(writer, attr);
  return writer.bytes;
}

/** Encodes a `fuse_open_out` payload. */
export function encodeOpenOut(fh: number, openFlags: number): Uint8Array {
  return new ReplyWriter(16).u64(fh).u32(openFlags).u32(0).bytes;
}

/** Encodes a `fuse_write_out` payload. */
export function encodeWriteOut(size: number): Uint8Array {
  return new ReplyWriter(8).u32(size).u32(0).bytes;
}

/** Encodes a `fuse_getxattr_out` payload (the size of a value or of a name list). */
export function encodeXattrSizeOut(size: number): Uint8Array {
  return new ReplyWriter(8).u32(size).u32(0).bytes;
}

/** Encodes a `fuse_lseek_out` payload. */
export function encodeLseekOut(offset: number): Uint8Array {
  return new ReplyWriter(8).u64(offset).bytes;
}

/** What `statfs(2)` reports for a filesystem. */
export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Encodes a `fuse_statfs_out` payload (80 bytes). */
export function encodeStatfsOut(stat: StatfsOut): Uint8Array {
  const writer = new ReplyWriter(80);
  writer.u64(stat.blocks).u64(stat.bfree).u64(stat.bavail).u64(stat.files).u64(stat.ffree);
  writer.u32(stat.bsize).u32(stat.namelen).u32(stat.frsize);
  return writer.bytes;
}

/** `fuse_init_in`: what the kernel offers. */
export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  /** The low 32 flag bits. */
  flags: number;
  /** The high 32 flag bits (valid when `flags` has INIT_EXT). */
  flags2: number;
}

/** Decodes the body of an INIT request. */
export function decodeInitIn(bytes: Uint8Array): InitIn {
  const reader = new RequestReader(bytes);
  const major = reader.u32();
  const minor = reader.u32();
  const maxReadahead = reader.u32();
  const flags = reader.u32();
  const flags2 = reader.remaining >= 4 ? reader.u32() : 0;
  return { major, minor, maxReadahead, flags, flags2 };
}

/** `fuse_init_out`: what riakfs accepts. */
export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

/** Encodes an INIT reply: 64 bytes, as every kernel since 7.23 expects. */
export function encodeInitOut(init: InitOut): Uint8Array {
  const writer = new ReplyWriter(64);
  writer.u32(init.major).u32(init.minor).u32(init.maxReadahead).u32(init.flags);
  writer.u16(init.maxBackground).u16(init.congestionThreshold);
  writer.u32(init.maxWrite).u32(init.timeGran).u16(init.maxPages);
  return writer.bytes;
}

/** One directory entry as READDIR returns it. */
export interface Dirent {
  ino: number;
  /** The offset the next READDIR must pass to continue after this entry. */
  nextOffset: number;
  /** File type in the `d_type` sense: `(mode & S_IFMT) >> 12`. */
  type: number;
  name: string;
}

/** Bytes a `fuse_dirent` for a name of `nameLength` UTF-8 bytes takes, padded to 8. */
export function direntSize(nameLength: number): number {
  return (DIRENT_SIZE + nameLength + 7) & ~7;
}

/** Writes a `fuse_dirent` (the name already UTF-8 encoded). */
export function writeDirent(writer: ReplyWriter, entry: Dirent, name: Uint8Array): void {
  const start = writer.offset;
  writer.u64(entry.ino).u64(entry.nextOffset).u32(name.byteLength).u32(entry.type).raw(name);
  writer.zero(direntSize(name.byteLength) - (writer.offset - start));
}

/** `fuse_setattr_in`: which attributes to change, and to what. */
export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  mode: number;
  uid: number;
  gid: number;
}

/** Decodes the body of a SETATTR request. */
export function decodeSetattrIn(bytes: Uint8Array): SetattrIn {
  const reader = new RequestReader(bytes);
  const valid = reader.u32();
  reader.skip(4);
  const fh = reader.id();
  const size = reader.u64();
  reader.skip(8); // lock_owner
  const atimeSec = reader.i64();
  const mtimeSec = reader.i64();
  const ctimeSec = reader.i64();
  const atimeNsec = reader.u32();
  const mtimeNsec = reader.u32();
  const ctimeNsec = reader.u32();
  const mode = reader.u32();
  reader.skip(4);
  const uid = reader.u32();
  const gid = reader.u32();
  return {
    valid,
    fh,
    size,
    atime: { sec: atimeSec, nsec: atimeNsec },
    mtime: { sec: mtimeSec, nsec: mtimeNsec },
    ctime: { sec: ctimeSec, nsec: ctimeNsec },
    mode,
    uid,
    gid,
  };
}

/** `fuse_read_in` (also the shape of READDIR and READDIRPLUS requests). */
export interface ReadIn {
  fh: number;
  offset: number;
  size: number;
  flags: number;
}

/** Decodes the body of a READ, READDIR or READDIRPLUS request. */
export function decodeReadIn(bytes: Uint8Array): ReadIn {
  const reader = new RequestReader(bytes);
  const fh = reader.id();
  const offset = reader.u64();
  const size = reader.u32();
  reader.skip(4 + 8); // read_flags, lock_owner
  const flags = reader.u32();
  return { fh, offset, size, flags };
}

/** `fuse_write_in` plus the data that follows it. */
export interface WriteIn {
  fh: number;
  offset: number;
  writeFlags: number;
  flags: number;
  data: Uint8Array;
}

/** Decodes the body of a WRITE request; `data` is a view into `bytes`, not a copy. */
export function decodeWriteIn(bytes: Uint8Array): WriteIn {
  const reader = new RequestReader(bytes);
  const fh = reader.id();
  const offset = reader.u64();
  const size = reader.u32();
  const writeFlags = reader.u32();
  reader.skip(8); // lock_owner
  const flags = reader.u32();
  reader.skip(4);
  if (offset + size > Number.MAX_SAFE_INTEGER) throw new TooLargeError(offset + size);
  return { fh, offset, writeFlags, flags, data: reader.bytes(size) };
}

/** A FORGET or one item of a BATCH_FORGET: drop `nlookup` references to `nodeid`. */
export interface Forget {
  nodeid: number;
  nlookup: number;
}

/** Decodes the items of a BATCH_FORGET request. */
export function decodeBatchForget(bytes: Uint8Array): Forget[] {
  const reader = new RequestReader(bytes);
  const count = reader.u32();
  reader.skip(4);
  const forgets: Forget[] = [];
  for (let i = 0; i < count; i++) forgets.push({ nodeid: reader.id(), nlookup: reader.u64() });
  return forgets;
}
