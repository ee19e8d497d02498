/**
 * Moving bytes over an open /dev/fuse descriptor: requests in, replies out.
 *
 * One read of /dev/fuse returns exactly one request and blocks until there is one. Under
 * Node the blocking reads run in worker threads (created from a source string, since the
 * single-executable bundle has no worker file next to it), which measured 2-4x faster than
 * libuv thread-pool reads and never occupy the pool that the filesystem's own async I/O
 * needs. Deno cannot use a descriptor from another isolate, so there the reads are async
 * `fs.read` calls on the main thread. Replies are one synchronous write each: the kernel
 * copies them and never blocks a reply write.
 *
 * The reader threads answer some requests themselves, like libfuse's threads, which saves
 * the hops to the event loop and the libuv pool (three thread wake-ups): READ/WRITE and
 * RELEASE on local handles, and GETATTR, a missed LOOKUP, UNLINK, RMDIR, OPEN and CREATE on
 * nodes a filesystem registered as local files (see `LocalNodes`), and IOCTL, which no
 * filesystem implements. What every thread must see at once lives in shared memory: the
 * handle table (a handle is unmapped before its descriptor is closed, so a reused number
 * never reaches a stale file), the node id counter, and the counters of what the readers
 * answered. Node tables are kept in step by messages: the main thread's changes go out
 * before its next reply, and a node a reader created is told to the main thread before
 * that reader replies and adopted there before any later request is handled; other
 * readers learn it from that reader directly (and pass requests on nodes they do not
 * know yet to the main thread). FORGETs, which get no reply, are then deferred to the main
 * thread's next request instead of waking it for each. A shared counter per direction
 * tells whether anything was posted, so an idle port costs no call per request.
 *
 * @module
 */
import * as fs from "node:fs";
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from "node:worker_threads";
import { splitSeconds } from "./abi.ts";
import type { LocallyCreated, LocalNodes, ReaderCounts } from "./filesystem.ts";
import { markReadBlocks, READ_BLOCK_SIZE } from "./read_blocks.ts";

/** How a reader ended: `undefined` when the filesystem was unmounted (ENODEV). */
export type ReaderEnd = string | undefined;

/** Receives requests read from the device. */
export interface RequestSink {
  /**
   * One whole request. The bytes belong to the receiver until it calls `done` (if given),
   * after which the reader reuses them.
   */
  onRequest(request: Uint8Array, done?: () => void): void;
  /** All readers stopped; `error` is undefined after a normal unmount. */
  onEnd(error: ReaderEnd): void;
}

/** Options of {@link startReaders}. */
export interface ReaderOptions {
  /** Read buffer size: at least max_write + 80 bytes or the kernel answers EINVAL. */
  bufferSize: number;
  /** Worker threads (Node) or outstanding reads (Deno). */
  concurrency: number;
}

/** Requests up to this size are copied out; bigger ones (writes) hand over the whole buffer. */
const SMALL_REQUEST = 64 * 1024;
/**
 * Nodes a reader thread keeps (~160 bytes each, within its heap limit); GETATTRs of nodes
 * beyond go to the event loop.
 */
const MAX_READER_NODES = 50_000;
/** Node changes queued before they are sent to the readers even without a reply. */
const MAX_PENDING_NODE_CHANGES = 4096;
/** Big read buffers a reader thread keeps for reuse once the main thread returns them. */
const POOLED_BUFFERS = 4;

/**
 * Handles the readers can serve: fh values below this (file descriptors, in practice).
 * The table is shared memory, 4 bytes a slot; bigger handles are served by the loop.
 */
const HANDLE_SLOTS = 1 << 16;
/** Nodes a reader creates before it wakes the main thread to adopt them. */
const WAKE_EVERY = 256;
/** Shared counters: requests answered per opcode below this... */
const OPCODE_SLOTS = 64;
/** ...then failures per errno below ERRNO_SLOTS... */
const ERRNO_BASE = OPCODE_SLOTS;
const ERRNO_SLOTS = 256;
/** ...then bytes read and written on local handles. */
const BYTES_READ = ERRNO_BASE + ERRNO_SLOTS;
const BYTES_WRITTEN = BYTES_READ + 1;
/**
 * A node's refusal bit: LOOKUP of a missing name in it goes to the loop. (A GETATTR of a
 * node whose path is missing always does: the file may be open, removed since.)
 */
const REFUSES_MISSES = 1;
/** A node's refusal bit: UNLINK and RMDIR in it go to the loop. */
const REFUSES_REMOVALS = 2;
/**
 * A node's flag, kept with the refusal bits: the file has no security.capability, so the
 * readers answer the kernel's GETXATTR of it (see serveCapabilityProbe).
 */
const WITHOUT_CAPABILITY = 4;
/** What the shared counters of an opcode count, by the name of its FileSystem method. */
const COUNTED_OPS: Record<number, string> = {
  1: "lookup",
  3: "getattr",
  10: "unlink",
  11: "rmdir",
  14: "open",
  15: "read",
  16: "write",
  18: "release",
  22: "getxattr",
  23: "listxattr",
  35: "create",
};

/**
 * Source of the reader worker: it reads requests, answers those it can itself (see
 * `serveLocally` in it) and hands the others to the main thread. Small requests are copied
 * into a buffer of their own size. A big request (a write of up to 1 MiB) hands over the
 * whole read buffer, which comes back through the `returns` port when its request is done,
 * so a stream of 1 MiB writes does not allocate 1 MiB each.
 */
const WORKER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const fs = require("node:fs");
const { O_CREAT, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const O_DIRECT = fs.constants.O_DIRECT || 0;
const {
  fd, bufferSize, returns, control, deferred, peers, posted, shared, small, pooled, maxNodes,
  wakeEvery,
} = workerData;
/** Bumped after each message to the readers (main thread or a peer): "anything new?". */
const postedCount = new Int32Array(posted);
/** See SharedState in device.ts: handle table, node ids, counters, deferred messages. */
const handles = new Int32Array(shared.handles);
const nextNodeId = new BigInt64Array(shared.nextNodeId);
const stats = new BigInt64Array(shared.stats);
const announced = new Int32Array(shared.announced);
const HANDLE_SLOTS = handles.length;
let drainedAt = 0;
let sinceWake = 0;
const pool = [];
let buffer = new Uint8Array(bufferSize);
const reply = Buffer.allocUnsafeSlow(bufferSize + 16);
const replyView = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
/**
 * nodeid -> { parent, name, sec, nsec, ino, regular, reportedIno, refuses, expiresAt,
 * xattrFreeCtime }: nodes this thread answers for (see applyNodeChanges).
 */
const nodes = new Map();
/** fh -> Int32Array: the read record of a handle whose reads are recorded (ReadBlocks). */
const recorded = new Map();
/** Records a read in a handle's record; shared with the event loop (read_blocks.ts). */
const markReadBlocks = ${markReadBlocks.toString()};
/** What this thread may open and create itself (ReaderOpens); undefined: nothing. */
let opens;
/** Deeper chains of parents than this are taken for a broken table and left to the loop. */
const MAX_DEPTH = 4096;

/** Writes the reply; false when the kernel no longer waits for it (interrupted). */
function answer(unique, error, payloadLength) {
  replyView.setUint32(0, 16 + payloadLength, true);
  replyView.setInt32(4, error, true);
  replyView.setBigUint64(8, unique, true);
  try {
    fs.writeSync(fd, reply, 0, 16 + payloadLength);
    return true;
  } catch (error) {
    if (error.code !== "ENOENT") throw error; // ENOENT: interrupted, nobody waits.
    return false;
  }
}

/** Answers with a new open handle; one the kernel never got is closed again here. */
function answerOpened(unique, local, payloadLength) {
  if (answer(unique, 0, payloadLength)) return;
  if (local < HANDLE_SLOTS) Atomics.store(handles, local, 0);
  fs.closeSync(local);
}

/**
 * Hands the main thread something it takes before it handles its next request (nodes this
 * thread created, FORGETs), without waking it; a burst with nothing else for the main
 * thread wakes it now and then so the queue stays short.
 */
function defer(message, transfer) {
  deferred.postMessage(message, transfer);
  Atomics.add(announced, 0, 1);
  if (++sinceWake >= wakeEvery) {
    sinceWake = 0;
    parentPort.postMessage({ wake: true });
  }
}

/** Answers -errno and counts the failure for the mount's status. */
function answerErrno(unique, errno) {
  if (errno > 0 && errno < ${ERRNO_SLOTS}) Atomics.add(stats, ${ERRNO_BASE} + errno, 1n);
  answer(unique, -errno, 0);
}

/** Answers a failed system call with its errno (EIO when it has none). */
function answerError(unique, error) {
  answerErrno(unique, typeof error.errno === "number" ? -error.errno : 5);
}

/** The local path of a node from its chain of parents; undefined when a link is missing. */
function pathOf(nodeid) {
  const names = [];
  let node = nodes.get(nodeid);
  for (let depth = 0; node !== undefined && depth < MAX_DEPTH; depth++) {
    names.push(node.name);
    if (node.parent === 0) return names.reverse().join("/");
    node = nodes.get(node.parent);
  }
  return undefined;
}

function seconds(ns) {
  const sec = ns / 1000000000n;
  const nsec = ns % 1000000000n;
  return nsec < 0n ? [sec - 1n, nsec + 1000000000n] : [sec, nsec];
}

/**
 * Writes a fuse_attr (88 bytes) at reply offset \`at\`, like the loop's writeAttr; with
 * \`ino\`, that inode number instead of the file's own.
 */
function putAttr(at, stat, ino) {
  const v = replyView;
  v.setBigUint64(at, ino ?? stat.ino, true);
  v.setBigUint64(at + 8, stat.size, true);
  v.setBigUint64(at + 16, stat.blocks, true);
  const times = [seconds(stat.atimeNs), seconds(stat.mtimeNs), seconds(stat.ctimeNs)];
  for (let i = 0; i < 3; i++) {
    v.setBigUint64(at + 24 + 8 * i, times[i][0], true);
    v.setUint32(at + 48 + 4 * i, Number(times[i][1]), true);
  }
  v.setUint32(at + 60, Number(stat.mode), true);
  v.setUint32(at + 64, Number(stat.nlink), true);
  v.setUint32(at + 68, Number(stat.uid), true);
  v.setUint32(at + 72, Number(stat.gid), true);
  v.setUint32(at + 76, Number(stat.rdev & 0xffffffffn), true);
  v.setUint32(at + 80, Number(stat.blksize), true);
  v.setUint32(at + 84, 0, true);
}

/** Writes a fuse_attr_out (104 bytes) at reply offset 16, like the loop's encodeAttrOut. */
function putAttrOut(node, stat) {
  replyView.setBigUint64(16, BigInt(node.sec), true);
  replyView.setUint32(24, node.nsec, true);
  replyView.setUint32(28, 0, true);
  putAttr(32, stat, node.reportedIno);
}

/** A node this thread answers for now: known, and not past its expiry. */
function liveNode(nodeid) {
  const node = nodes.get(nodeid);
  if (node === undefined || (node.expiresAt !== undefined && Date.now() >= node.expiresAt)) {
    return undefined;
  }
  return node;
}

/** Whether the request's node (a directory) lets this thread answer \`refusal\` requests. */
function parentAllows(view, refusal) {
  const parent = liveNode(Number(view.getBigUint64(16, true)));
  return parent !== undefined && (parent.refuses & refusal) === 0;
}

/** Writes a fuse_open_out (16 bytes) at reply offset \`at\`, like the loop's encodeOpenOut. */
function putOpenOut(at, fh, flags) {
  replyView.setBigUint64(at, BigInt(fh), true);
  replyView.setUint32(at + 8, (flags & 3) === 1 ? opens.writeOnlyOpenFlags : opens.openFlags, true);
  replyView.setUint32(at + 12, 0, true);
}

/**
 * Entry NAME (the request's string at \`nameAt\`) of the request's node: its parent's path
 * and its own as bytes (names need not be UTF-8); undefined for an unknown node or a name
 * the loop must refuse.
 */
function childOf(view, nameAt) {
  const parent = pathOf(Number(view.getBigUint64(16, true)));
  if (parent === undefined) return undefined;
  const end = buffer.indexOf(0, nameAt);
  if (end < 0 || end >= view.byteLength) return undefined;
  const name = Buffer.from(buffer.buffer, nameAt, end - nameAt);
  if (name.length === 0 || name.length > 255 || name.includes(0x2f)) return undefined;
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) {
    return undefined;
  }
  return { parent, name, path: Buffer.concat([Buffer.from(parent + "/"), name]) };
}

/** LOOKUP (1) of a name that does not exist: ENOENT here; names that exist go to the loop. */
function serveMissingLookup(view, unique) {
  if (!parentAllows(view, ${REFUSES_MISSES})) return false;
  const child = childOf(view, 40);
  if (child === undefined) return false;
  try {
    if (fs.lstatSync(child.path, { throwIfNoEntry: false }) !== undefined) return false;
    answerErrno(unique, 2);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/** UNLINK (10) and RMDIR (11) of an entry of a known directory: unlink/rmdir and reply here. */
function serveRemove(view, unique, opcode) {
  if (!parentAllows(view, ${REFUSES_REMOVALS})) return false;
  const child = childOf(view, 40);
  if (child === undefined) return false;
  try {
    if (opcode === 10) fs.unlinkSync(child.path);
    else fs.rmdirSync(child.path);
    answer(unique, 0, 0);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/** The local descriptor of a handle the readers serve, or -1. */
function localOf(fh) {
  if (fh >= HANDLE_SLOTS) return -1;
  const entry = Atomics.load(handles, fh);
  return entry === 0 ? -1 : (entry >> 2) - 1;
}

/** GETATTR (3) on a known node: lstat its path (fstat a local handle) and reply here. */
function serveGetattr(view, unique) {
  if (view.byteLength < 56) return false;
  const node = liveNode(Number(view.getBigUint64(16, true)));
  if (node === undefined) return false;
  let local = -1;
  if (view.getUint32(40, true) & 1) {
    local = localOf(Number(view.getBigUint64(48, true)));
    if (local < 0) return false;
  }
  const path = local < 0 ? pathOf(Number(view.getBigUint64(16, true))) : undefined;
  if (local < 0 && path === undefined) return false;
  try {
    const stat = local < 0
      ? fs.lstatSync(path, { bigint: true })
      : fs.fstatSync(local, { bigint: true });
    // Another inode at the path: a rename raced with this request; the loop decides.
    if (node.ino !== undefined && stat.ino !== node.ino) return false;
    putAttrOut(node, stat);
    answer(unique, 0, 104);
  } catch (error) {
    // Gone locally: the loop decides (Riak may hold it; or it was removed while open, and a
    // handle answers).
    if (error.code === "ENOENT") return false;
    answerError(unique, error);
  }
  return true;
}

/** Makes \`fd\` a handle the readers serve; RELEASE closes it. */
function mapHandle(fd) {
  if (fd < HANDLE_SLOTS) Atomics.store(handles, fd, ((fd + 1) << 2) | 1);
}

/**
 * OPEN (14) of a known regular file: open its path like the filesystem's open would, and
 * reply with the descriptor as handle. Failures and surprises (another inode or a
 * non-regular file at the path) go to the loop, which opens (and answers) again.
 */
function serveOpen(view, unique) {
  if (view.byteLength < 48) return false;
  const nodeid = Number(view.getBigUint64(16, true));
  const node = liveNode(nodeid);
  if (node === undefined || !node.regular) return false;
  const path = pathOf(nodeid);
  if (path === undefined) return false;
  const flags = view.getUint32(40, true);
  let local;
  try {
    // O_NONBLOCK: never hang this thread in open(2) on a FIFO a rename put at the path.
    local = fs.openSync(path, (flags & ~opens.strippedFlags) | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return false;
  }
  let stat;
  try {
    stat = fs.fstatSync(local, { bigint: true });
  } catch {
    stat = undefined;
  }
  if (stat === undefined || !stat.isFile() || (node.ino !== undefined && stat.ino !== node.ino)) {
    fs.closeSync(local);
    return false;
  }
  // FUSE_OPEN_KILL_SUIDGID: an O_TRUNC open by a caller without CAP_FSETID.
  if (view.getUint32(44, true) & 1) {
    try {
      killSuidgid(local, Number(stat.mode));
    } catch {
      fs.closeSync(local);
      return false;
    }
  }
  mapHandle(local);
  putOpenOut(16, local, flags);
  answerOpened(unique, local, 16);
  return true;
}

/** Gives a new file to the caller, as the filesystem's create does (see chownToCaller there). */
function chownToCaller(view, parentPath, local) {
  const uid = view.getUint32(24, true);
  const gid = view.getUint32(28, true);
  const ownUid = uid === process.getuid();
  if (ownUid && gid === process.getgid()) return;
  const setgid = (fs.lstatSync(parentPath).mode & 0o2000) !== 0;
  if (ownUid && setgid) return;
  fs.fchownSync(local, uid, setgid ? -1 : gid);
}

/**
 * CREATE (35) in a known directory of a name that does not exist yet: create and open it
 * here, give it a node id from the shared counter, and tell the main thread (which adopts
 * the node before it handles any later request) before replying. A name that exists
 * goes to the loop, whose node table may already know its inode.
 */
function serveCreate(view, unique) {
  if (view.byteLength < 58) return false;
  const child = childOf(view, 56);
  if (child === undefined) return false;
  const name = child.name.toString("utf8");
  // The loop decodes names as UTF-8: a name that does not survive that is left to it.
  if (!Buffer.from(name, "utf8").equals(child.name)) {
    return false;
  }
  const flags = view.getUint32(40, true);
  const permissions = view.getUint32(44, true) & 0o7777;
  const openFlags = (flags & ~(O_NOCTTY | O_DIRECT)) | O_CREAT | O_EXCL | O_NOFOLLOW;
  let local;
  try {
    local = fs.openSync(child.path, openFlags, permissions);
  } catch (error) {
    if (error.code === "EEXIST" && (flags & O_EXCL) === 0) return false;
    answerError(unique, error);
    return true;
  }
  let stat;
  try {
    chownToCaller(view, child.parent, local);
    stat = fs.fstatSync(local, { bigint: true });
    if ((Number(stat.mode) & 0o7777) !== permissions) {
      // Our own umask or the chown (which clears setuid/setgid) changed the bits.
      fs.fchmodSync(local, permissions);
      stat = fs.fstatSync(local, { bigint: true });
    }
  } catch (error) {
    try {
      fs.closeSync(local);
    } catch {
      // The error above is the one to report.
    }
    answerError(unique, error);
    return true;
  }
  const nodeid = Number(Atomics.add(nextNodeId, 0, 1n));
  const parent = Number(view.getBigUint64(16, true));
  defer([nodeid, parent, name, String(stat.dev), String(stat.ino)]);
  // The other readers learn the node now, not after the main thread adopted it, so their
  // GETATTRs of it need no hop either.
  const change = [[
    nodeid, parent, name, opens.attrSec, opens.attrNsec, Number(stat.ino), true, undefined,
    ${WITHOUT_CAPABILITY},
  ]];
  for (const peer of peers) peer.postMessage(change);
  if (peers.length > 0) Atomics.add(postedCount, 0, 1);
  if (nodes.size < maxNodes) {
    nodes.set(nodeid, {
      parent, name, sec: opens.attrSec, nsec: opens.attrNsec, ino: stat.ino, regular: true,
      refuses: ${WITHOUT_CAPABILITY},
    });
  }
  mapHandle(local);
  const v = replyView;
  v.setBigUint64(16, BigInt(nodeid), true);
  v.setBigUint64(24, 0n, true);
  v.setBigUint64(32, BigInt(opens.entrySec), true);
  v.setBigUint64(40, BigInt(opens.attrSec), true);
  v.setUint32(48, opens.entryNsec, true);
  v.setUint32(52, opens.attrNsec, true);
  putAttr(56, stat);
  putOpenOut(144, local, flags);
  // Interrupted: the node stays adopted with its reference, a small leak; the file stays.
  answerOpened(unique, local, 144);
  return true;
}

const CAPABILITY_NAME = Buffer.from("security.capability\\0");

/**
 * GETXATTR (22) of security.capability on a file known to have none: the kernel asks it
 * before each inode's first write (with HANDLE_KILLPRIV_V2, once), so a file created
 * through the mount costs no hop for it. Other names and nodes go to the loop.
 */
function serveCapabilityProbe(view, unique) {
  if (view.byteLength !== 48 + CAPABILITY_NAME.length) return false;
  const node = liveNode(Number(view.getBigUint64(16, true)));
  if (node === undefined || ((node.refuses ?? 0) & ${WITHOUT_CAPABILITY}) === 0) return false;
  const name = Buffer.from(buffer.buffer, buffer.byteOffset + 48, CAPABILITY_NAME.length);
  if (!name.equals(CAPABILITY_NAME)) return false;
  answer(unique, -61, 0); // ENODATA
  return true;
}

/**
 * GETXATTR (22) and LISTXATTR (23) of a file the filesystem found without any xattr: ENODATA
 * and an empty list, while lstat shows the same inode and the ctime it had then (an xattr
 * set since moves the ctime). Otherwise the capability probe, or the loop.
 */
function serveXattrs(view, unique, opcode) {
  if (view.byteLength < 48) return false;
  const nodeid = Number(view.getBigUint64(16, true));
  const node = liveNode(nodeid);
  if (node === undefined) return false;
  if (node.xattrFreeCtime === undefined || node.ino === undefined) {
    return opcode === 22 && serveCapabilityProbe(view, unique);
  }
  const path = pathOf(nodeid);
  if (path === undefined) return false;
  let stat;
  try {
    stat = fs.lstatSync(path, { bigint: true });
  } catch {
    return false;
  }
  if (stat.ino !== node.ino || stat.ctimeNs !== node.xattrFreeCtime) return false;
  if (opcode === 22) {
    answerErrno(unique, 61); // ENODATA
  } else if (view.getUint32(40, true) === 0) {
    replyView.setUint32(16, 0, true); // fuse_getxattr_out: the list's size, 0
    replyView.setUint32(20, 0, true);
    answer(unique, 0, 8);
  } else {
    answer(unique, 0, 0);
  }
  return true;
}

/** RELEASE (18) of a handle that holds nothing but its descriptor: close it here. */
function serveRelease(view, unique) {
  if (view.byteLength < 56) return false;
  const fh = Number(view.getBigUint64(40, true));
  if (fh >= HANDLE_SLOTS) return false;
  const entry = Atomics.load(handles, fh);
  // Only a handle that holds nothing but its descriptor: a recorded one's release decides.
  if ((entry & 3) !== 1) return false;
  // Unmapped before the close: once closed, the number may name another handle.
  Atomics.store(handles, fh, 0);
  try {
    fs.closeSync((entry >> 2) - 1);
    answer(unique, 0, 0);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/**
 * With HANDLE_KILLPRIV_V2 (negotiated when the filesystem answers xattrs) the kernel leaves
 * it to us to clear setuid, and setgid of a group-executable file, when a caller without
 * CAP_FSETID writes or truncates, as a local write would. We write as root, which keeps them.
 */
function killSuidgid(local, mode) {
  const kept = mode & ~(mode & 0o10 ? 0o6000 : 0o4000);
  if (kept !== mode) fs.fchmodSync(local, kept & 0o7777);
}

/**
 * READ (15) and WRITE (16) on a local-descriptor handle, with pread/pwrite. On a handle
 * whose reads are recorded, a read is recorded before its reply (RELEASE, which comes
 * after, must see it); reads it cannot record, and writes, go to the loop.
 */
function serveData(view, unique, opcode) {
  if (view.byteLength < 64) return false;
  const fh = Number(view.getBigUint64(40, true));
  const local = localOf(fh);
  if (local < 0) return false;
  const size = view.getUint32(56, true);
  // Past 2^53 - 1 a number is rounded, and Node takes a position that is not a safe integer
  // for "the current position" (0 here): such a write would overwrite the file's start. The
  // loop answers EFBIG.
  const end = view.getBigUint64(48, true) + (opcode === 16 ? BigInt(size) : 0n);
  if (end > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  const offset = Number(view.getBigUint64(48, true));
  let record;
  if (Atomics.load(handles, fh) & 2) {
    record = recorded.get(fh);
    if (opcode !== 15 || record === undefined) return false;
    if (offset % ${READ_BLOCK_SIZE} !== 0 || size % ${READ_BLOCK_SIZE} !== 0 || size === 0) {
      return false;
    }
  }
  try {
    if (opcode === 15) {
      const length = fs.readSync(local, reply, 16, size, offset);
      if (record !== undefined) markReadBlocks(record, offset, size, length);
      Atomics.add(stats, ${BYTES_READ}, BigInt(length));
      answer(unique, 0, length);
    } else {
      // FUSE_WRITE_KILL_SUIDGID: a writer without CAP_FSETID (see killSuidgid).
      if (view.getUint32(60, true) & 4) killSuidgid(local, fs.fstatSync(local).mode);
      const written = fs.writeSync(local, buffer, 80, size, offset);
      Atomics.add(stats, ${BYTES_WRITTEN}, BigInt(written));
      replyView.setUint32(16, written, true);
      replyView.setUint32(20, 0, true);
      answer(unique, 0, 8);
    }
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/**
 * Node changes, in order: sets ([nodeid, parent, name, sec, nsec, ino, regular,
 * reportedIno, refuses, expiresAt, xattrFreeCtime], see NodeChange in device.ts) and deletes
 * ([nodeid]).
 */
function applyNodeChanges(changes) {
  for (const [nodeid, parent, name, sec, nsec, ino, regular, reportedIno, refuses, expiresAt, xattrFreeCtime] of changes) {
    if (name === undefined) nodes.delete(nodeid);
    // A full table takes no new nodes (theirs go to the loop) but always updates known
    // ones: a rename must never leave a stale path here.
    else if (nodes.size < maxNodes || nodes.has(nodeid)) {
      nodes.set(nodeid, {
        parent, name, sec, nsec, ino: ino === undefined ? undefined : BigInt(ino), regular,
        reportedIno: reportedIno === undefined ? undefined : BigInt(reportedIno),
        refuses: refuses ?? 0,
        expiresAt,
        xattrFreeCtime,
      });
    }
  }
}

/** Answers the request here when this thread can; false hands it to the loop. */
function serveLocally(view) {
  const opcode = view.getUint32(4, true);
  const unique = view.getBigUint64(8, true);
  // IOCTL: the filesystem interface has none, so the loop would answer ENOSYS too. Python
  // asks isatty() on every open, so this is one hop less per open.
  if (opcode === 39) {
    answer(unique, -38, 0);
    return true;
  }
  // FORGET and BATCH_FORGET get no reply, so nothing waits for them: when the filesystem
  // serves files here, the main thread applies them before its next request instead of
  // waking for each. A late forget only keeps a node a little longer.
  if ((opcode === 2 || opcode === 42) && opens !== undefined) {
    const copy = new Uint8Array(view.byteLength);
    copy.set(buffer.subarray(0, view.byteLength));
    defer(copy.buffer, [copy.buffer]);
    return true;
  }
  let served = false;
  if (opcode === 15 || opcode === 16) served = serveData(view, unique, opcode);
  else if (opcode === 18) served = serveRelease(view, unique);
  else if (nodes.size > 0) {
    if (opcode === 3) served = serveGetattr(view, unique);
    else if (opcode === 22 || opcode === 23) served = serveXattrs(view, unique, opcode);
    else if (opcode === 1) served = serveMissingLookup(view, unique);
    else if (opcode === 10 || opcode === 11) served = serveRemove(view, unique, opcode);
    else if (opens !== undefined) {
      if (opcode === 14) served = serveOpen(view, unique);
      else if (opcode === 35) served = serveCreate(view, unique);
    }
  }
  if (served && opcode < ${OPCODE_SLOTS}) Atomics.add(stats, opcode, 1n);
  return served;
}

for (;;) {
  let length;
  try {
    length = fs.readSync(fd, buffer, 0, bufferSize, null);
  } catch (error) {
    // EINTR/EAGAIN: retry. ENOENT: the request was interrupted before we read it.
    if (error.code === "EINTR" || error.code === "EAGAIN" || error.code === "ENOENT") continue;
    parentPort.postMessage({ end: error.code === "ENODEV" ? null : String(error.code || error.message) });
    break;
  }
  if (length === 0) {
    parentPort.postMessage({ end: null });
    break;
  }
  // The main thread and the other readers post node changes before they write the reply
  // that makes the kernel use them, so what is queued here is current for this request.
  // Nodes from other readers are new ones the main thread can only have changed later
  // (after the CREATE's reply), so they are applied first.
  const postedNow = Atomics.load(postedCount, 0);
  if (postedNow !== drainedAt) {
    for (const peer of peers) {
      for (let change; (change = receiveMessageOnPort(peer)) !== undefined;) applyNodeChanges(change.message);
    }
    for (let change; (change = receiveMessageOnPort(control)) !== undefined;) {
      const message = change.message;
      if (Array.isArray(message)) applyNodeChanges(message);
      else if (message.opens !== undefined) opens = message.opens;
      else if (message.blocks !== undefined) recorded.set(message.fh, new Int32Array(message.blocks));
      else recorded.delete(message.fh);
    }
  }
  drainedAt = postedNow;
  if (length > 40) {
    try {
      if (serveLocally(new DataView(buffer.buffer, 0, length))) continue;
    } catch (error) {
      parentPort.postMessage({ end: String(error.code || error.message) });
      break;
    }
  }
  if (length <= small) {
    const copy = new Uint8Array(length);
    copy.set(buffer.subarray(0, length));
    parentPort.postMessage(copy.buffer, [copy.buffer]);
    continue;
  }
  parentPort.postMessage({ big: buffer.buffer, length }, [buffer.buffer]);
  for (let back; (back = receiveMessageOnPort(returns)) !== undefined;) {
    if (pool.length < pooled) pool.push(back.message);
  }
  buffer = pool.length > 0 ? new Uint8Array(pool.pop()) : new Uint8Array(bufferSize);
}
`;

/** Whether this runtime is Deno (whose workers cannot share the descriptor). */
export function runningUnderDeno(): boolean {
  return "Deno" in globalThis;
}

/** What the readers may open and create themselves; see `LocalNodes.serveFiles`. */
export interface ReaderOpens {
  /** The first node id the readers' shared counter hands out. */
  firstNodeId: number;
  /** Seconds of the entry and attributes in CREATE replies. */
  entryTimeout: number;
  attrTimeout: number;
  /** FOPEN_* flags of OPEN and CREATE replies. */
  openFlags: number;
  /** ...of write-only (O_WRONLY) opens. */
  writeOnlyOpenFlags: number;
  /** open(2) flags the readers remove from the kernel's before opening. */
  strippedFlags: number;
}

/**
 * The main thread's side of what the reader threads answer themselves: READ/WRITE (and
 * RELEASE) on local-descriptor handles through a handle table in shared memory, node
 * requests through node tables kept in step by messages, and CREATE/OPEN once opted in.
 */
export interface LocalHandles {
  /** Whether the readers can serve local handles (not under Deno). */
  readonly supported: boolean;
  /**
   * From now on, READ/WRITE on `fh` go to `local`; with `closeOnRelease`, RELEASE closes
   * `local` in the readers too. With `readBlocks` (a `ReadBlocks` buffer) the readers serve
   * only reads they can record there, and record them. Call before answering the OPEN.
   */
  map(fh: number, local: number, closeOnRelease: boolean, readBlocks?: SharedArrayBuffer): void;
  /** Stops serving `fh` locally. Call before handling its RELEASE. */
  unmap(fh: number): void;
  /** Lets the readers answer requests on a node (see `LocalNodes.set`); sent on `flush`. */
  setNode: LocalNodes["set"];
  /** Stops the readers answering requests on a node; sent on `flush`. */
  deleteNode(nodeid: number): void;
  /** Sends the node changes made since the last flush. Call before writing any reply. */
  flush(): void;
  /**
   * Lets the readers answer OPEN of registered regular files and CREATE in registered
   * directories; `adopt` gets each node they create (from {@link LocalHandles.catchUp}).
   */
  serveOpens(opens: ReaderOpens, adopt: (created: LocallyCreated) => void): void;
  /** A node id from the counter the readers share (after `serveOpens`). */
  allocateNodeId(): number;
  /**
   * Hands the nodes the readers created so far to `adopt`, then the FORGETs they deferred
   * to the sink. Call before handling any request: a reader tells of a node before its
   * reply, so the kernel cannot ask about it before this sees it.
   */
  catchUp(): void;
  /** What the readers answered so far. */
  counts(): ReaderCounts;
}

/**
 * Node changes as the reader source reads them: a set, or a delete (nodeid alone).
 * A set is [nodeid, parent, name, attr sec, attr nsec, ino, regular file, reported ino,
 * refusals (REFUSES_* bits, and WITHOUT_CAPABILITY), expiry (Date.now() milliseconds),
 * ctime (ns) at which the file had no xattrs].
 */
type NodeChange =
  | [
    number,
    number,
    string,
    number,
    number,
    number | undefined,
    boolean,
    number | undefined,
    number,
    number | undefined,
    bigint | undefined,
  ]
  | [number];

/** Shared memory of the readers and the main thread (see the reader source). */
interface SharedState {
  /**
   * fh -> ((local descriptor + 1) << 2 | reads recorded << 1 | close-on-release), 0 when
   * not local.
   */
  handles: SharedArrayBuffer;
  /** The next node id the readers or the filesystem hand out (BigInt64). */
  nextNodeId: SharedArrayBuffer;
  /** Counters: per opcode, per errno, bytes (BigInt64, see OPCODE_SLOTS...). */
  stats: SharedArrayBuffer;
  /** Bumped by a reader after each deferred message (a node it created, a FORGET). */
  announced: SharedArrayBuffer;
}

/**
 * Starts reading requests from `fd` until the filesystem is unmounted; calls
 * `sink.onEnd` once after every reader stopped.
 */
export function startReaders(fd: number, sink: RequestSink, options: ReaderOptions): LocalHandles {
  let running = options.concurrency;
  let firstError: ReaderEnd;
  const readerEnded = (error: ReaderEnd) => {
    firstError ??= error;
    if (--running === 0) sink.onEnd(firstError);
  };
  const shared: SharedState = {
    handles: new SharedArrayBuffer(HANDLE_SLOTS * 4),
    nextNodeId: new SharedArrayBuffer(8),
    stats: new SharedArrayBuffer((BYTES_WRITTEN + 1) * 8),
    announced: new SharedArrayBuffer(4),
  };
  const handles = new Int32Array(shared.handles);
  const nextNodeId = new BigInt64Array(shared.nextNodeId);
  const stats = new BigInt64Array(shared.stats);
  const announced = new Int32Array(shared.announced);
  let adoptedAt = 0;
  let adopt: ((created: LocallyCreated) => void) | undefined;
  const controls: MessagePort[] = [];
  const deferredPorts: MessagePort[] = [];
  // Shared by all readers; bumped after each control message (see the reader source).
  const posted = new SharedArrayBuffer(4);
  const postedCount = new Int32Array(posted);
  const post = (message: unknown) => {
    controls.forEach((port) => port.postMessage(message));
    Atomics.add(postedCount, 0, 1);
  };
  const catchUp = () => {
    const announcedNow = Atomics.load(announced, 0);
    if (announcedNow === adoptedAt) return;
    adoptedAt = announcedNow;
    // Nodes in the order they were created (their ids), whichever reader made them: a
    // file's inode number may be reused by a later one, and the later one must win. Forgets
    // after every adoption: a FORGET read by one reader may be of a node another reader
    // created, whose port comes later in this loop.
    const created: LocallyCreated[] = [];
    const forgets: Uint8Array[] = [];
    for (const port of deferredPorts) {
      for (let message; (message = receiveMessageOnPort(port)) !== undefined;) {
        if (message.message instanceof ArrayBuffer) {
          forgets.push(new Uint8Array(message.message));
          continue;
        }
        const [nodeid, parent, name, dev, ino] = message.message as [
          number,
          number,
          string,
          string,
          string,
        ];
        created.push({ nodeid, parent, name, dev: BigInt(dev), ino: BigInt(ino) });
      }
    }
    created.sort((a, b) => a.nodeid - b.nodeid);
    for (const node of created) adopt?.(node);
    for (const forget of forgets) sink.onRequest(forget);
  };
  // One channel between each two readers, for the nodes they create.
  const peers: MessagePort[][] = Array.from({ length: options.concurrency }, () => []);
  for (let i = 0; i < options.concurrency; i++) {
    for (let j = i + 1; j < options.concurrency; j++) {
      const { port1, port2 } = new MessageChannel();
      peers[i].push(port1);
      peers[j].push(port2);
    }
  }
  for (let i = 0; i < options.concurrency; i++) {
    if (runningUnderDeno()) startAsyncReader(fd, sink, options.bufferSize, readerEnded);
    else {
      const ports = startWorkerReader(fd, sink, options.bufferSize, posted, shared, peers[i], {
        ended: readerEnded,
        wake: catchUp,
      });
      controls.push(ports.control);
      deferredPorts.push(ports.deferred);
    }
  }
  // Batched: a directory listing of 10,000 entries sets 10,000 nodes before its reply.
  let pending: NodeChange[] = [];
  const supported = controls.length > 0;
  return {
    supported,
    map: (fh, local, closeOnRelease, readBlocks) => {
      if (!supported || fh >= HANDLE_SLOTS) return;
      // The record reaches the readers before the handle does (both before the reply).
      if (readBlocks !== undefined) post({ fh, blocks: readBlocks });
      Atomics.store(
        handles,
        fh,
        ((local + 1) << 2) | (readBlocks === undefined ? 0 : 2) | (closeOnRelease ? 1 : 0),
      );
    },
    unmap: (fh) => {
      if (!supported || fh >= HANDLE_SLOTS) return;
      if (Atomics.exchange(handles, fh, 0) & 2) post({ fh }); // The readers drop its record.
    },
    setNode: (nodeid, parent, name, attrTimeout, ino, regularFile = false, answers = {}) => {
      if (!supported) return;
      const { sec, nsec } = splitSeconds(attrTimeout);
      const refuses = (answers.missingNames === false ? REFUSES_MISSES : 0) |
        (answers.removals === false ? REFUSES_REMOVALS : 0) |
        (answers.withoutCapability ? WITHOUT_CAPABILITY : 0);
      queue([
        nodeid,
        parent,
        name,
        sec,
        nsec,
        ino,
        regularFile,
        answers.reportedIno,
        refuses,
        answers.expiresAt,
        answers.xattrFreeAtCtimeNs,
      ]);
    },
    deleteNode: (nodeid) => {
      if (supported) queue([nodeid]);
    },
    flush,
    serveOpens: (opens, adoptNode) => {
      if (!supported) return;
      adopt = adoptNode;
      Atomics.store(nextNodeId, 0, BigInt(opens.firstNodeId));
      const entry = splitSeconds(opens.entryTimeout);
      const attr = splitSeconds(opens.attrTimeout);
      flush();
      post({
        opens: {
          entrySec: entry.sec,
          entryNsec: entry.nsec,
          attrSec: attr.sec,
          attrNsec: attr.nsec,
          openFlags: opens.openFlags,
          writeOnlyOpenFlags: opens.writeOnlyOpenFlags,
          strippedFlags: opens.strippedFlags,
        },
      });
    },
    allocateNodeId: () => Number(Atomics.add(nextNodeId, 0, 1n)),
    catchUp,
    counts: () => {
      const ops: Record<string, number> = {};
      for (const [opcode, name] of Object.entries(COUNTED_OPS)) {
        const count = Number(Atomics.load(stats, Number(opcode)));
        if (count > 0) ops[name] = count;
      }
      const errnos = new Map<number, number>();
      for (let errno = 1; errno < ERRNO_SLOTS; errno++) {
        const count = Number(Atomics.load(stats, ERRNO_BASE + errno));
        if (count > 0) errnos.set(errno, count);
      }
      return {
        ops,
        errnos,
        bytesRead: Number(Atomics.load(stats, BYTES_READ)),
        bytesWritten: Number(Atomics.load(stats, BYTES_WRITTEN)),
      };
    },
  };
  function flush(): void {
    if (pending.length === 0) return;
    const changes = pending;
    pending = [];
    post(changes);
  }
  function queue(change: NodeChange): void {
    pending.push(change);
    // FORGETs get no reply to flush before: bound what waits.
    if (pending.length >= MAX_PENDING_NODE_CHANGES) flush();
  }
}

/** The main thread's ends of a reader's ports. */
interface ReaderPorts {
  /** Node changes and settings to the reader. */
  control: MessagePort;
  /**
   * Nodes the reader created and FORGETs it read, taken with receiveMessageOnPort (a
   * message here never wakes the loop).
   */
  deferred: MessagePort;
}

function startWorkerReader(
  fd: number,
  sink: RequestSink,
  bufferSize: number,
  posted: SharedArrayBuffer,
  shared: SharedState,
  peers: MessagePort[],
  events: { ended: (error: ReaderEnd) => void; wake: () => void },
): ReaderPorts {
  const { port1: returns, port2: returnsInWorker } = new MessageChannel();
  const { port1: control, port2: controlInWorker } = new MessageChannel();
  const { port1: deferred, port2: deferredInWorker } = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      fd,
      bufferSize,
      returns: returnsInWorker,
      control: controlInWorker,
      deferred: deferredInWorker,
      peers,
      posted,
      shared,
      maxNodes: MAX_READER_NODES,
      small: SMALL_REQUEST,
      pooled: POOLED_BUFFERS,
      wakeEvery: WAKE_EVERY,
    },
    transferList: [returnsInWorker, controlInWorker, deferredInWorker, ...peers],
    // Descriptors a reader opens are closed by whichever thread handles their RELEASE;
    // tracking them per thread would warn on every such close.
    trackUnmanagedFds: false,
    // The thread copies bytes and keeps a bounded node table: a small heap keeps memory down.
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 },
  });
  let done = false;
  const finish = (error: ReaderEnd) => {
    if (done) return;
    done = true;
    events.wake(); // What the reader deferred is taken before the session hears of the end.
    returns.close();
    control.close();
    deferred.close();
    events.ended(error);
  };
  type Message =
    | ArrayBuffer
    | { big: ArrayBuffer; length: number }
    | { end: string | null }
    | { wake: true };
  worker.on("message", (message: Message) => {
    if (message instanceof ArrayBuffer) sink.onRequest(new Uint8Array(message));
    else if ("big" in message) {
      const { big, length } = message;
      sink.onRequest(new Uint8Array(big, 0, length), () => {
        if (!done) returns.postMessage(big, [big]);
      });
    } else if ("wake" in message) events.wake();
    else finish(message.end ?? undefined);
  });
  worker.on("error", (error) => finish(`reader thread failed: ${error.message}`));
  worker.on("exit", () => finish(undefined));
  return { control, deferred };
}

function startAsyncReader(
  fd: number,
  sink: RequestSink,
  bufferSize: number,
  ended: (error: ReaderEnd) => void,
): void {
  const buffer = Buffer.allocUnsafeSlow(bufferSize);
  const readNext = (): void => {
    fs.read(fd, buffer, 0, bufferSize, null, (error, length) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EINTR" || code === "EAGAIN" || code === "ENOENT") return readNext();
        return ended(code === "ENODEV" ? undefined : String(code ?? error.message));
      }
      if (length === 0) return ended(undefined);
      sink.onRequest(Uint8Array.prototype.slice.call(buffer, 0, length));
      readNext();
    });
  };
  readNext();
}

/**
 * Writes one reply (header and payload parts) in a single write. Returns false when the
 * kernel no longer waits for it (ENOENT: the request was interrupted), which is not an error.
 */
export function writeReply(fd: number, parts: Uint8Array[]): boolean {
  try {
    if (parts.length === 1) fs.writeSync(fd, parts[0]);
    else if (typeof fs.writevSync === "function") fs.writevSync(fd, parts);
    else fs.writeSync(fd, concat(parts));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined;
}
