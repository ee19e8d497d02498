/**
 * Extended attributes through a helper process. Neither Node nor Deno has the xattr system
 * calls and native addons are not allowed, so a long-lived `python3` child does them: its
 * script is passed inline (the executable is one bundle: nothing is read next to it), it
 * starts with the first request, answers requests in order over binary frames on its
 * stdin/stdout, and is started again when it dies. Every call works on the path itself,
 * never on what a symlink points to (lgetxattr semantics).
 *
 * Frames, little-endian. Request: id, operation, flags, path length, name length, value
 * length (six u32), then the path, name and value bytes. Reply: id (u32), errno (i32, 0 on
 * success), payload length (u32), then the payload (a value, or names each ended by NUL).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import process from "node:process";
import { Buffer } from "node:buffer";

/** Linux errno values the helper client produces itself. */
const EIO = 5;
const EOPNOTSUPP = 95;

/** The largest value Linux stores in one extended attribute (XATTR_SIZE_MAX). */
export const XATTR_SIZE_MAX = 65536;

/** `flags` of {@link XattrHelper.set}: fail with EEXIST when the name exists. */
export const XATTR_CREATE = 1;
/** `flags` of {@link XattrHelper.set}: fail with ENODATA when the name does not exist. */
export const XATTR_REPLACE = 2;

const Operation = { GET: 1, SET: 2, LIST: 3, REMOVE: 4 } as const;
type Operation = typeof Operation[keyof typeof Operation];
const OPERATION_NAMES: Record<Operation, string> = {
  1: "getxattr",
  2: "setxattr",
  3: "listxattr",
  4: "removexattr",
};

const REQUEST_HEADER_SIZE = 24;
const REPLY_HEADER_SIZE = 12;

/**
 * The helper's program. It ignores SIGINT (the mount handles it and closes the helper) and
 * exits at end of input, so it never outlives the process that feeds it.
 */
const HELPER_SCRIPT = `
import os, signal, struct, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
source, sink = sys.stdin.buffer, sys.stdout.buffer
request, reply = struct.Struct("<6I"), struct.Struct("<IiI")
def exactly(length):
    data = source.read(length) if length else b""
    if len(data) != length:
        sys.exit(0)
    return data
while True:
    header = source.read(${REQUEST_HEADER_SIZE})
    if len(header) != ${REQUEST_HEADER_SIZE}:
        break
    ident, operation, flags, path_length, name_length, value_length = request.unpack(header)
    path, name, value = exactly(path_length), exactly(name_length), exactly(value_length)
    payload, errno = b"", 0
    try:
        if operation == ${Operation.GET}:
            payload = os.getxattr(path, name, follow_symlinks=False)
        elif operation == ${Operation.SET}:
            os.setxattr(path, name, value, flags, follow_symlinks=False)
        elif operation == ${Operation.LIST}:
            names = os.listxattr(path, follow_symlinks=False)
            payload = b"".join(os.fsencode(each) + b"\\0" for each in names)
        elif operation == ${Operation.REMOVE}:
            os.removexattr(path, name, follow_symlinks=False)
        else:
            errno = 22
    except OSError as error:
        errno = error.errno or ${EIO}
    except (ValueError, TypeError):
        errno = 22
    sink.write(reply.pack(ident, errno, len(payload)) + payload)
    sink.flush()
`;

/** Names of errno values (61 -> "ENODATA"), for errors that look like Node's own. */
const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, value]) => [value, name]),
);

/**
 * A failed xattr call: `errno` is the Linux error number (ENODATA 61, ERANGE 34, ENOTSUP 95,
 * EPERM 1, E2BIG 7, ENOENT 2, ELOOP 40...) and `code` its name, as on Node's system errors,
 * so callers that map `code` to an errno handle it like any failed fs call.
 */
export class XattrError extends Error {
  /** The Linux error number. */
  readonly errno: number;
  /** The error's name, e.g. "ENODATA". */
  readonly code: string;
  /** The path the call was about. */
  readonly path: string;

  /** `operation` is the syscall's name ("getxattr"), for the message. */
  constructor(errno: number, operation: string, path: string, detail?: string) {
    const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
    super(`${operation} ${path}: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "XattrError";
    this.errno = errno;
    this.code = code;
    this.path = path;
  }
}

/** Options of {@link XattrHelper}. */
export interface XattrHelperOptions {
  /** The interpreter to run (default "python3", looked up in PATH). */
  python?: string;
  /** Told once, when the interpreter cannot be started: xattrs then answer EOPNOTSUPP. */
  onUnavailable?: (message: string) => void;
}

interface Pending {
  operation: Operation;
  path: string;
  resolve(payload: Buffer): void;
  reject(error: Error): void;
}

interface Helper {
  child: ChildProcess;
  pending: Map<number, Pending>;
  /** Reply bytes received and not yet parsed. */
  received: Buffer;
  exited: Promise<void>;
}

/**
 * A client of the xattr helper process. Many requests may be in flight; each settles once:
 * with the helper's answer, with EIO when the helper dies first (the next request starts
 * a new one), or with EOPNOTSUPP when python3 cannot be run at all. The helper never keeps
 * the process alive while idle, and is killed (by its PID) on {@link close} or when this
 * process exits.
 *
 * @example
 * ```ts
 * const xattrs = new XattrHelper({ onUnavailable: (message) => log.warn(message) });
 * await xattrs.set("/srv/legacy/a.txt", "user.origin", new TextEncoder().encode("nfs"), 0);
 * const names = await xattrs.list("/srv/legacy/a.txt");
 * await xattrs.close();
 * ```
 */
export class XattrHelper {
  readonly #python: string;
  readonly #onUnavailable: (message: string) => void;
  #helper: Helper | undefined;
  #nextId = 1;
  #unavailable: string | undefined;
  #closed = false;
  readonly #killOnExit = () => this.#helper?.child.kill("SIGKILL");

  /** No process is started until the first request. */
  constructor(options: XattrHelperOptions = {}) {
    this.#python = options.python ?? "python3";
    this.#onUnavailable = options.onUnavailable ?? (() => {});
  }

  /** The PID of the running helper, if one runs (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.#helper?.child.pid;
  }

  /** lgetxattr(2): the value of `name`; ENODATA when absent. */
  get(path: string, name: string | Uint8Array): Promise<Buffer> {
    return this.#call(Operation.GET, path, name, undefined, 0);
  }

  /** lsetxattr(2) with `flags` 0, {@link XATTR_CREATE} or {@link XATTR_REPLACE}. */
  async set(
    path: string,
    name: string | Uint8Array,
    value: Uint8Array,
    flags: number,
  ): Promise<void> {
    if (value.byteLength > XATTR_SIZE_MAX) {
      throw new XattrError(7, OPERATION_NAMES[Operation.SET], path, "value over 64 KiB");
    }
    await this.#call(Operation.SET, path, name, value, flags);
  }

  /** llistxattr(2): the names, as bytes (a name need not be UTF-8). */
  async list(path: string): Promise<Buffer[]> {
    const joined = await this.#call(Operation.LIST, path, undefined, undefined, 0);
    const names: Buffer[] = [];
    let start = 0;
    for (let end = joined.indexOf(0); end !== -1; end = joined.indexOf(0, start)) {
      names.push(joined.subarray(start, end));
      start = end + 1;
    }
    return names;
  }

  /** lremovexattr(2); ENODATA when absent. */
  async remove(path: string, name: string | Uint8Array): Promise<void> {
    await this.#call(Operation.REMOVE, path, name, undefined, 0);
  }

  /**
   * Stops the helper (killed by its PID) and fails what is in flight with EIO; later
   * requests fail with EIO too. Resolves once the helper has exited.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const helper = this.#helper;
    if (!helper) return;
    refer(helper, true); // Until its exit is seen, which the caller awaits.
    helper.child.kill("SIGKILL");
    await helper.exited;
  }

  #call(
    operation: Operation,
    path: string,
    name: string | Uint8Array | undefined,
    value: Uint8Array | undefined,
    flags: number,
  ): Promise<Buffer> {
    const operationName = OPERATION_NAMES[operation];
    if (this.#closed) {
      return Promise.reject(new XattrError(EIO, operationName, path, "xattr helper closed"));
    }
    if (this.#unavailable !== undefined) {
      return Promise.reject(new XattrError(EOPNOTSUPP, operationName, path, this.#unavailable));
    }
    const helper = this.#helper ?? this.#start();
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const pathBytes = Buffer.from(path);
    const nameBytes = name === undefined
      ? Buffer.alloc(0)
      : typeof name === "string"
      ? Buffer.from(name)
      : name;
    const valueBytes = value ?? Buffer.alloc(0);
    const header = Buffer.alloc(REQUEST_HEADER_SIZE);
    [id, operation, flags, pathBytes.byteLength, nameBytes.byteLength, valueBytes.byteLength]
      .forEach((field, index) => header.writeUInt32LE(field, index * 4));
    return new Promise<Buffer>((resolve, reject) => {
      if (helper.pending.size === 0) refer(helper, true);
      helper.pending.set(id, { operation, path, resolve, reject });
      // A write to a helper that just died fails on the stream; its exit settles the request.
      helper.child.stdin?.write(Buffer.concat([header, pathBytes, nameBytes, valueBytes]));
    });
  }

  #start(): Helper {
    let child: ChildProcess;
    try {
      child = spawn(this.#python, ["-I", "-S", "-c", HELPER_SCRIPT], {
        stdio: ["pipe", "pipe", "inherit"],
      });
    } catch (error) {
      // Deno throws where Node emits "error".
      child = failedChild(error as Error);
    }
    let exited!: () => void;
    const helper: Helper = {
      child,
      pending: new Map(),
      received: Buffer.alloc(0),
      exited: new Promise((resolve) => exited = resolve),
    };
    this.#helper = helper;
    if (child.pid !== undefined) process.once("exit", this.#killOnExit);
    child.stdin?.on("error", () => {}); // EPIPE of a dead helper; "close" settles requests.
    child.stdout?.on("data", (chunk: Buffer) => this.#received(helper, chunk));
    let ended = false;
    const end = (error: Error | undefined) => {
      if (ended) return;
      ended = true;
      process.removeListener("exit", this.#killOnExit);
      if (this.#helper === helper) this.#helper = undefined;
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      if (code === "ENOENT" || code === "EACCES") {
        this.#unavailable = `${this.#python} is needed for extended attributes and cannot ` +
          `be run (${code})`;
        this.#onUnavailable(this.#unavailable);
      }
      for (const [id, request] of helper.pending) {
        helper.pending.delete(id);
        const errno = this.#unavailable !== undefined ? EOPNOTSUPP : EIO;
        const why = this.#unavailable ?? (error ? error.message : "xattr helper exited");
        request.reject(
          new XattrError(errno, OPERATION_NAMES[request.operation], request.path, why),
        );
      }
      exited();
    };
    child.on("error", (error) => end(error));
    // "close" comes after the last reply bytes were read, unlike "exit".
    child.on("close", () => end(undefined));
    refer(helper, false);
    return helper;
  }

  #received(helper: Helper, chunk: Buffer): void {
    let buffer = helper.received.byteLength === 0 ? chunk : Buffer.concat([helper.received, chunk]);
    while (buffer.byteLength >= REPLY_HEADER_SIZE) {
      const length = buffer.readUInt32LE(8);
      if (buffer.byteLength < REPLY_HEADER_SIZE + length) break;
      const id = buffer.readUInt32LE(0);
      const errno = buffer.readInt32LE(4);
      // Copied out: the rest of the chunk may be kept for the next reply.
      const payload = Buffer.from(buffer.subarray(REPLY_HEADER_SIZE, REPLY_HEADER_SIZE + length));
      buffer = buffer.subarray(REPLY_HEADER_SIZE + length);
      const request = helper.pending.get(id);
      if (!request) continue;
      helper.pending.delete(id);
      if (errno === 0) request.resolve(payload);
      else request.reject(new XattrError(errno, OPERATION_NAMES[request.operation], request.path));
    }
    helper.received = buffer;
    if (helper.pending.size === 0) refer(helper, false);
  }
}

/**
 * Holds the event loop open while requests are in flight (like any I/O), and lets it go
 * while the helper idles, so an idle helper never keeps a finished process alive.
 */
function refer(helper: Helper, held: boolean): void {
  if (helper.child.pid === undefined) return; // Never started: nothing to hold (and no handle).
  const handles = [helper.child, helper.child.stdin, helper.child.stdout] as unknown as (
    { ref?(): void; unref?(): void } | null
  )[];
  for (const handle of handles) held ? handle?.ref?.() : handle?.unref?.();
}

/** A stand-in child for a spawn that threw: it reports the error as Node's would. */
function failedChild(error: Error): ChildProcess {
  const child = {
    pid: undefined,
    stdin: null,
    stdout: null,
    kill: () => false,
    on(event: string, listener: (argument?: unknown) => void) {
      if (event === "error") queueMicrotask(() => listener(error));
      return child;
    },
  };
  return child as unknown as ChildProcess;
}
