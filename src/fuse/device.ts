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
 * the hops to the event loop and the libuv pool (three thread wake-ups): READ/WRITE on
 * local handles, and GETATTR, a missed LOOKUP, UNLINK and RMDIR on nodes a filesystem
 * registered as local files (see `LocalNodes`), and IOCTL, which no filesystem implements.
 * The main thread keeps them in step through a control port per reader; a shared counter
 * tells a reader whether anything was posted, so an idle port costs no call per request.
 *
 * @module
 */
import * as fs from "node:fs";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { splitSeconds } from "./abi.ts";

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
 * Source of the reader worker: it only reads, hands over and recycles; it never decodes.
 * Small requests are copied into a buffer of their own size. A big request (a write of up
 * to 1 MiB) hands over the whole read buffer, which comes back through the `returns` port
 * when its request is done, so a stream of 1 MiB writes does not allocate 1 MiB each.
 */
const WORKER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const fs = require("node:fs");
const { fd, bufferSize, returns, control, posted, small, pooled, maxNodes } = workerData;
/** Bumped by the main thread after each control message: a cheap "anything new?" check. */
const postedCount = new Int32Array(posted);
let drainedAt = 0;
const pool = [];
let buffer = new Uint8Array(bufferSize);
const reply = Buffer.allocUnsafeSlow(bufferSize + 16);
const replyView = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
/** fh -> local descriptor, for handles whose reads and writes this thread answers itself. */
const localFds = new Map();
/** nodeid -> { parent, name, sec, nsec, ino }: nodes whose requests this thread answers. */
const nodes = new Map();
/** Deeper chains of parents than this are taken for a broken table and left to the loop. */
const MAX_DEPTH = 4096;

function answer(unique, error, payloadLength) {
  replyView.setUint32(0, 16 + payloadLength, true);
  replyView.setInt32(4, error, true);
  replyView.setBigUint64(8, unique, true);
  try {
    fs.writeSync(fd, reply, 0, 16 + payloadLength);
  } catch (error) {
    if (error.code !== "ENOENT") throw error; // ENOENT: interrupted, nobody waits.
  }
}

/** Answers a failed system call with its errno (EIO when it has none). */
function answerError(unique, error) {
  answer(unique, typeof error.errno === "number" ? error.errno : -5, 0);
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

/** Writes a fuse_attr_out (104 bytes) at reply offset 16, like the loop's encodeAttrOut. */
function putAttrOut(node, stat) {
  const v = replyView;
  v.setBigUint64(16, BigInt(node.sec), true);
  v.setUint32(24, node.nsec, true);
  v.setUint32(28, 0, true);
  v.setBigUint64(32, stat.ino, true);
  v.setBigUint64(40, stat.size, true);
  v.setBigUint64(48, stat.blocks, true);
  const times = [seconds(stat.atimeNs), seconds(stat.mtimeNs), seconds(stat.ctimeNs)];
  for (let i = 0; i < 3; i++) {
    v.setBigUint64(56 + 8 * i, times[i][0], true);
    v.setUint32(80 + 4 * i, Number(times[i][1]), true);
  }
  v.setUint32(92, Number(stat.mode), true);
  v.setUint32(96, Number(stat.nlink), true);
  v.setUint32(100, Number(stat.uid), true);
  v.setUint32(104, Number(stat.gid), true);
  v.setUint32(108, Number(stat.rdev & 0xffffffffn), true);
  v.setUint32(112, Number(stat.blksize), true);
  v.setUint32(116, 0, true);
}

/**
 * The path of entry NAME (the request's string) of the request's node, as bytes (names
 * need not be UTF-8); undefined for an unknown node or a name the loop must refuse.
 */
function childPath(view) {
  const parent = pathOf(Number(view.getBigUint64(16, true)));
  if (parent === undefined) return undefined;
  const end = buffer.indexOf(0, 40);
  if (end < 0 || end >= view.byteLength) return undefined;
  const name = buffer.subarray(40, end);
  if (name.length === 0 || name.length > 255 || name.includes(0x2f)) return undefined;
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) {
    return undefined;
  }
  return Buffer.concat([Buffer.from(parent + "/"), name]);
}

/** LOOKUP (1) of a name that does not exist: ENOENT here; names that exist go to the loop. */
function serveMissingLookup(view) {
  const path = childPath(view);
  if (path === undefined) return false;
  const unique = view.getBigUint64(8, true);
  try {
    if (fs.lstatSync(path, { throwIfNoEntry: false }) !== undefined) return false;
    answer(unique, -2, 0);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/** UNLINK (10) and RMDIR (11) of an entry of a known directory: unlink/rmdir and reply here. */
function serveRemove(view, opcode) {
  const path = childPath(view);
  if (path === undefined) return false;
  const unique = view.getBigUint64(8, true);
  try {
    if (opcode === 10) fs.unlinkSync(path);
    else fs.rmdirSync(path);
    answer(unique, 0, 0);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/** GETATTR (3) on a known node: lstat its path (fstat a local handle) and reply here. */
function serveGetattr(view) {
  if (view.byteLength < 56) return false;
  const node = nodes.get(Number(view.getBigUint64(16, true)));
  if (node === undefined) return false;
  let local;
  if (view.getUint32(40, true) & 1) {
    local = localFds.get(Number(view.getBigUint64(48, true)));
    if (local === undefined) return false;
  }
  const path = local === undefined ? pathOf(Number(view.getBigUint64(16, true))) : undefined;
  if (local === undefined && path === undefined) return false;
  const unique = view.getBigUint64(8, true);
  try {
    const stat = local === undefined
      ? fs.lstatSync(path, { bigint: true })
      : fs.fstatSync(local, { bigint: true });
    // Another inode at the path: a rename raced with this request; the loop decides.
    if (node.ino !== undefined && stat.ino !== node.ino) return false;
    putAttrOut(node, stat);
    answer(unique, 0, 104);
  } catch (error) {
    answerError(unique, error);
  }
  return true;
}

/**
 * Answers the request here when this thread can (IOCTL, node requests, and READ (15) and
 * WRITE (16) on a local-descriptor handle with pread/pwrite); false hands it to the loop.
 */
function serveLocally(view) {
  const opcode = view.getUint32(4, true);
  // IOCTL: the filesystem interface has none, so the loop would answer ENOSYS too. Python
  // asks isatty() on every open, so this is one hop less per open.
  if (opcode === 39) {
    answer(view.getBigUint64(8, true), -38, 0);
    return true;
  }
  if (nodes.size > 0) {
    if (opcode === 3) return serveGetattr(view);
    if (opcode === 1) return serveMissingLookup(view);
    if (opcode === 10 || opcode === 11) return serveRemove(view, opcode);
  }
  if ((opcode !== 15 && opcode !== 16) || view.byteLength < 64) return false;
  const local = localFds.get(Number(view.getBigUint64(40, true)));
  if (local === undefined) return false;
  const unique = view.getBigUint64(8, true);
  const offset = Number(view.getBigUint64(48, true));
  const size = view.getUint32(56, true);
  try {
    if (opcode === 15) {
      answer(unique, 0, fs.readSync(local, reply, 16, size, offset));
    } else {
      const written = fs.writeSync(local, buffer, 80, size, offset);
      replyView.setUint32(16, written, true);
      replyView.setUint32(20, 0, true);
      answer(unique, 0, 8);
    }
  } catch (error) {
    answerError(unique, error);
  }
  return true;
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
  // The main thread maps a handle before it answers the OPEN, and unmaps it before it
  // handles the RELEASE, so what is queued here is current for this request.
  const postedNow = Atomics.load(postedCount, 0);
  for (let change; postedNow !== drainedAt && (change = receiveMessageOnPort(control)) !== undefined;) {
    if (Array.isArray(change.message)) {
      // Node changes, in order: [nodeid, parent, name, sec, nsec, ino] sets, [nodeid] deletes.
      for (const [nodeid, parent, name, sec, nsec, ino] of change.message) {
        if (name === undefined) nodes.delete(nodeid);
        // A full table takes no new nodes (theirs go to the loop) but always updates known
        // ones: a rename must never leave a stale path here.
        else if (nodes.size < maxNodes || nodes.has(nodeid)) {
          nodes.set(nodeid, { parent, name, sec, nsec, ino: ino === undefined ? undefined : BigInt(ino) });
        }
      }
      continue;
    }
    const { fh, local } = change.message;
    if (local === undefined) localFds.delete(fh);
    else localFds.set(fh, local);
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

/**
 * Handles whose READ and WRITE the reader threads answer themselves, with pread/pwrite on a
 * local descriptor, without a hop to the main thread (see `Opened.localFd`).
 */
export interface LocalHandles {
  /** Whether the readers can serve local handles (not under Deno). */
  readonly supported: boolean;
  /** From now on, READ/WRITE on `fh` go to `local`. Call before answering the OPEN. */
  map(fh: number, local: number): void;
  /** Stops serving `fh` locally. Call before handling its RELEASE. */
  unmap(fh: number): void;
  /** Lets the readers answer GETATTR on a node (see `LocalNodes.set`); sent on `flush`. */
  setNode(nodeid: number, parent: number, name: string, attrTimeout: number, ino?: number): void;
  /** Stops the readers answering GETATTR on a node; sent on `flush`. */
  deleteNode(nodeid: number): void;
  /** Sends the node changes made since the last flush. Call before writing any reply. */
  flush(): void;
}

/** Node changes as the reader source reads them: a set, or a delete (nodeid alone). */
type NodeChange = [number, number, string, number, number, number | undefined] | [number];

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
  const controls: MessagePort[] = [];
  // Shared by all readers; bumped after each control message (see the reader source).
  const posted = new SharedArrayBuffer(4);
  const postedCount = new Int32Array(posted);
  const post = (message: unknown) => {
    controls.forEach((port) => port.postMessage(message));
    Atomics.add(postedCount, 0, 1);
  };
  for (let i = 0; i < options.concurrency; i++) {
    if (runningUnderDeno()) startAsyncReader(fd, sink, options.bufferSize, readerEnded);
    else controls.push(startWorkerReader(fd, sink, options.bufferSize, posted, readerEnded));
  }
  // Batched: a directory listing of 10,000 entries sets 10,000 nodes before its reply.
  let pending: NodeChange[] = [];
  const supported = controls.length > 0;
  return {
    supported,
    map: (fh, local) => post({ fh, local }),
    unmap: (fh) => post({ fh }),
    setNode: (nodeid, parent, name, attrTimeout, ino) => {
      if (!supported) return;
      const { sec, nsec } = splitSeconds(attrTimeout);
      queue([nodeid, parent, name, sec, nsec, ino]);
    },
    deleteNode: (nodeid) => {
      if (supported) queue([nodeid]);
    },
    flush,
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

function startWorkerReader(
  fd: number,
  sink: RequestSink,
  bufferSize: number,
  posted: SharedArrayBuffer,
  ended: (error: ReaderEnd) => void,
): MessagePort {
  const { port1: returns, port2: returnsInWorker } = new MessageChannel();
  const { port1: control, port2: controlInWorker } = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      fd,
      bufferSize,
      returns: returnsInWorker,
      control: controlInWorker,
      posted,
      maxNodes: MAX_READER_NODES,
      small: SMALL_REQUEST,
      pooled: POOLED_BUFFERS,
    },
    transferList: [returnsInWorker, controlInWorker],
    // The thread copies bytes and keeps a bounded node table: a small heap keeps memory down.
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 },
  });
  let done = false;
  const finish = (error: ReaderEnd) => {
    if (done) return;
    done = true;
    returns.close();
    control.close();
    ended(error);
  };
  type Message = ArrayBuffer | { big: ArrayBuffer; length: number } | { end: string | null };
  worker.on("message", (message: Message) => {
    if (message instanceof ArrayBuffer) sink.onRequest(new Uint8Array(message));
    else if ("big" in message) {
      const { big, length } = message;
      sink.onRequest(new Uint8Array(big, 0, length), () => {
        if (!done) returns.postMessage(big, [big]);
      });
    } else finish(message.end ?? undefined);
  });
  worker.on("error", (error) => finish(`reader thread failed: ${error.message}`));
  worker.on("exit", () => finish(undefined));
  return control;
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
