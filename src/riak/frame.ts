/**
 * Riak protocol-buffers framing: a 4-byte big-endian length (covering the code byte and the
 * body), a 1-byte message code, then the protobuf body.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./frame.ts";
 * socket.write(encodeFrame(MessageCode.PingReq, new Uint8Array(0)));
 * const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024 });
 * socket.on("data", (chunk) => { for (const frame of decoder.push(chunk)) handle(frame); });
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Bytes before the body: the 4-byte length and the code byte. */
export const FRAME_HEADER_BYTES = 5;

/**
 * Default bound on one frame (code byte + body): 64 MiB. Riak refuses objects above 50 MB
 * (`object.size.maximum`), so a longer frame means a broken or hostile peer.
 */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** One decoded frame: its message code and its body (a view, not a copy, when possible). */
export interface Frame {
  code: number;
  body: Uint8Array;
}

/** A frame that breaks the framing rules: zero length, or longer than the configured bound. */
export class FrameError extends Error {
  /** The length the frame header announced. */
  readonly announcedLength: number;
  constructor(message: string, announcedLength: number) {
    super(message);
    this.name = "FrameError";
    this.announcedLength = announcedLength;
  }
}

/**
 * Builds the 5-byte header of a frame whose body has `bodyLength` bytes. Writing the header
 * and a large body as two socket writes avoids copying the body into one buffer.
 */
export function encodeFrameHeader(code: number, bodyLength: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, bodyLength + 1);
  header[4] = code;
  return header;
}

/**
 * Builds one whole frame (header + body) in a single buffer.
 *
 * @example
 * ```ts
 * encodeFrame(1, new Uint8Array(0)); // Uint8Array [0, 0, 0, 1, 1]: a PingReq
 * ```
 */
export function encodeFrame(code: number, body: Uint8Array): Uint8Array {
  return encodeFrameFromParts(code, [body]);
}

/**
 * Builds one whole frame from a body given as parts (as `encodeMessageParts` returns them):
 * each part, large values included, is copied once, straight into the frame.
 */
export function encodeFrameFromParts(code: number, parts: readonly Uint8Array[]): Uint8Array {
  let bodyLength = 0;
  for (const part of parts) bodyLength += part.length;
  const frame = new Uint8Array(FRAME_HEADER_BYTES + bodyLength);
  new DataView(frame.buffer).setUint32(0, bodyLength + 1);
  frame[4] = code;
  let at = FRAME_HEADER_BYTES;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest accepted frame (code byte + body); default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
}

/**
 * Cuts a byte stream into frames, however the stream was chunked. A frame that lies whole in
 * one pushed chunk is returned as a view into that chunk; only a frame split across chunks is
 * copied together. After a {@link FrameError} the stream is out of step: discard the decoder
 * and the connection.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Length of the frame being assembled (code + body), or -1 while its header is incomplete. */
  private frameLength = -1;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes received but not yet returned as frames (0 exactly at a frame boundary). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Adds received bytes and returns every frame they complete, in order.
   *
   * @throws {FrameError} on a zero-length or oversized frame header.
   */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let data = chunk.byteLength === 0 ? chunk : asUint8Array(chunk);
    if (this.pendingBytes > 0) {
      // finish the frame in progress first; merge only what it needs
      this.pending.push(data);
      this.pendingBytes += data.length;
      if (this.frameLength < 0) {
        if (this.pendingBytes < 4) return frames;
        this.frameLength = this.checkLength(readLength(this.gather(4)));
      }
      const total = 4 + this.frameLength;
      if (this.pendingBytes < total) return frames;
      const joined = this.gather(this.pendingBytes);
      frames.push(frameAt(joined, 0, this.frameLength));
      data = joined.subarray(total);
      this.pending = [];
      this.pendingBytes = 0;
      this.frameLength = -1;
    }
    let offset = 0;
    while (data.length - offset >= 4) {
      const length = this.checkLength(readLength(data.subarray(offset, offset + 4)));
      if (data.length - offset < 4 + length) break;
      frames.push(frameAt(data, offset, length));
      offset += 4 + length;
    }
    if (offset < data.length) {
      const rest = data.subarray(offset);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      if (rest.length >= 4) this.frameLength = this.checkLength(readLength(rest));
    }
    return frames;
  }

  private checkLength(length: number): number {
    return checkFrameLength(length, this.maxFrameBytes);
  }

  /** The first `count` pending bytes as one buffer (pending becomes that single buffer). */
  private gather(count: number): Uint8Array {
    if (this.pending[0].length >= count) return this.pending[0];
    // Every byte is overwritten below, so skip the zero fill (a large value is MiBs).
    const joined = asUint8Array(Buffer.allocUnsafeSlow(this.pendingBytes));
    let at = 0;
    for (const part of this.pending) {
      joined.set(part, at);
      at += part.length;
    }
    this.pending = [joined];
    return joined;
  }
}

/** `length` as a frame header announced it, unless it breaks the framing rules. */
function checkFrameLength(length: number, maxFrameBytes: number): number {
  if (length === 0) throw new FrameError("zero-length frame: no message code", 0);
  if (length > maxFrameBytes) {
    throw new FrameError(
      `frame of ${length} bytes exceeds the maximum of ${maxFrameBytes} bytes`,
      length,
    );
  }
  return length;
}

function readLength(bytes: Uint8Array): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

function frameAt(data: Uint8Array, offset: number, length: number): Frame {
  return { code: data[offset + 4], body: data.subarray(offset + 5, offset + 4 + length) };
}

/** A Node Buffer is a Uint8Array subclass; hand out plain Uint8Array views of the same memory. */
function asUint8Array(chunk: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(chunk) === Uint8Array.prototype
    ? chunk
    : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Options of a {@link FrameReceiver}. */
export interface FrameReceiverOptions extends FrameDecoderOptions {
  /**
   * Frames longer than this (header included) are read straight into a buffer of their own;
   * shorter ones go through a reused buffer and are copied out. Default 16 KiB.
   */
  ownBufferFrom?: number;
}

/** Size of the reused buffer short frames are read into. */
const RECEIVE_BUFFER_BYTES = 64 * 1024;

/** The buffers of long frames a {@link FrameReceiver} read, each one frame's alone. */
const ownFrameBuffers = new WeakSet<ArrayBuffer>();

/**
 * Frees at once the memory of a long frame that a {@link FrameReceiver} handed out, given any
 * view into it (such as a value decoded from it). Every view of the frame reads as empty
 * afterwards: the caller must be its last user. Without this, such frames (100 KiB values,
 * 1 MiB chunks) are freed by the garbage collector, and V8 starts a major collection, which
 * marks the whole heap, for about every 64 MiB of them. Returns whether the frame was freed:
 * anything else (short frames, frames of TLS connections, which may share memory, any other
 * buffer) is left alone, as is everything where the runtime cannot detach a buffer.
 *
 * @example
 * ```ts
 * for await (const chunk of chunks) { await output.write(chunk); releaseFrame(chunk); }
 * ```
 */
export function releaseFrame(view: Uint8Array): boolean {
  const buffer = view.buffer;
  if (!(buffer instanceof ArrayBuffer) || typeof buffer.transfer !== "function") return false;
  if (!ownFrameBuffers.delete(buffer)) return false;
  // Transferring to an empty buffer detaches this one and frees its memory now.
  buffer.transfer(0);
  return true;
}

/**
 * Cuts a byte stream into frames like {@link FrameDecoder}, but chooses the memory each read
 * goes into (for `net.connect`'s `onread`): a long frame (a value of 100 KiB, a 1 MiB chunk)
 * is read straight into a buffer of its own, so its bytes are never copied and no per-read
 * chunk is left for the garbage collector; short frames share one reused buffer and are
 * copied out of it. Frames handed out are the caller's to keep; a long one can be freed early
 * with {@link releaseFrame}.
 *
 * @example
 * ```ts
 * const receiver = new FrameReceiver();
 * const socket = net.connect({
 *   host, port,
 *   onread: {
 *     buffer: () => receiver.nextBuffer(),
 *     callback: (count) => { for (const frame of receiver.received(count)) handle(frame); },
 *   },
 * });
 * ```
 */
export class FrameReceiver {
  readonly maxFrameBytes: number;
  readonly #ownBufferFrom: number;
  readonly #shared = new Uint8Array(RECEIVE_BUFFER_BYTES);
  /** Unconsumed bytes of the shared buffer: [#start, #end). */
  #start = 0;
  #end = 0;
  /** The long frame being read into its own buffer, and how much of it arrived. */
  #own: { frame: Uint8Array; filled: number } | undefined;

  constructor(options: FrameReceiverOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#ownBufferFrom = Math.min(options.ownBufferFrom ?? 16 * 1024, RECEIVE_BUFFER_BYTES);
  }

  /** Bytes received but not yet returned as frames (0 exactly at a frame boundary). */
  get bufferedBytes(): number {
    return (this.#own?.filled ?? 0) + this.#end - this.#start;
  }

  /**
   * Where the next read goes: the rest of the long frame in progress (exactly: no byte of
   * the next frame lands there), else the free end of the shared buffer. Never empty.
   */
  nextBuffer(): Uint8Array {
    if (this.#own) return this.#own.frame.subarray(this.#own.filled);
    if (this.#start === this.#end) {
      // At a frame boundary the next frame's length is unknown: a read of the whole shared
      // buffer would take up to 64 KiB of a long frame, all copied into the frame's own
      // buffer once its header is seen (most of a 100 KiB value when the answer arrived while
      // the thread was busy, as when it verifies the previous one). A read up to the own-buffer
      // bound still takes any short frame whole, and copies at most that much of a long one.
      this.#start = this.#end = 0;
      return this.#shared.subarray(0, this.#ownBufferFrom);
    }
    if (this.#end === this.#shared.length) {
      // What is left is the start of a short frame: it moves to the front.
      this.#shared.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    return this.#shared.subarray(this.#end);
  }

  /**
   * `count` bytes were read into the last {@link nextBuffer}: returns the frames they
   * complete, in order.
   *
   * @throws {FrameError} on a zero-length or oversized frame header.
   */
  received(count: number): Frame[] {
    const frames: Frame[] = [];
    if (this.#own) {
      this.#own.filled += count;
      if (this.#own.filled < this.#own.frame.length) return frames;
      const { frame } = this.#own;
      this.#own = undefined;
      frames.push(frameAt(frame, 0, frame.length - 4));
      return frames;
    }
    this.#end += count;
    while (this.#end - this.#start >= 4) {
      const length = this.#checkLength(readLength(this.#shared.subarray(this.#start)));
      const total = 4 + length;
      if (total >= this.#ownBufferFrom) {
        // Every byte is overwritten: the ones here now, the rest by the reads into it.
        const frame = asUint8Array(Buffer.allocUnsafeSlow(total));
        ownFrameBuffers.add(frame.buffer as ArrayBuffer);
        const here = Math.min(total, this.#end - this.#start);
        frame.set(this.#shared.subarray(this.#start, this.#start + here));
        this.#start += here;
        if (here < total) {
          this.#own = { frame, filled: here };
          break;
        }
        frames.push(frameAt(frame, 0, length));
        continue;
      }
      if (this.#end - this.#start < total) break;
      frames.push(frameAt(this.#shared.slice(this.#start, this.#start + total), 0, length));
      this.#start += total;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return frames;
  }

  #checkLength(length: number): number {
    return checkFrameLength(length, this.maxFrameBytes);
  }
}
