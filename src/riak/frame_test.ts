import assert from "node:assert/strict";
import { encodeMessage, encodeMessageParts } from "./codec.ts";
import {
  encodeFrame,
  encodeFrameFromParts,
  encodeFrameHeader,
  type Frame,
  FrameDecoder,
  FrameError,
  FrameReceiver,
  releaseFrame,
} from "./frame.ts";
import { MessageCode } from "./messages.ts";

function frames(count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const body = new Uint8Array(i * 7);
    for (let j = 0; j < body.length; j++) body[j] = (i + j) & 0xff;
    out.push(encodeFrame(i + 1, body));
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function summary(list: Frame[]): string[] {
  return list.map((f) => `${f.code}:${Array.from(f.body).join(",")}`);
}

Deno.test("encodeFrame writes the length of code + body, then the code", () => {
  assert.deepEqual(Array.from(encodeFrame(1, new Uint8Array(0))), [0, 0, 0, 1, 1]);
  assert.deepEqual(Array.from(encodeFrameHeader(11, 300)), [0, 0, 1, 45, 11]);
});

Deno.test("FrameDecoder yields the same frames however the stream is chunked", () => {
  const stream = concat(frames(12));
  const whole = summary(new FrameDecoder().push(stream));
  assert.equal(whole.length, 12);
  // deterministic chunkings: every fixed chunk size from 1 to 40 bytes
  for (let size = 1; size <= 40; size++) {
    const decoder = new FrameDecoder();
    const got: Frame[] = [];
    for (let at = 0; at < stream.length; at += size) {
      got.push(...decoder.push(stream.subarray(at, at + size)));
    }
    assert.deepEqual(summary(got), whole, `chunk size ${size}`);
    assert.equal(decoder.bufferedBytes, 0);
  }
});

Deno.test("a frame inside one chunk is a view, not a copy", () => {
  const stream = concat(frames(3));
  const [, second] = new FrameDecoder().push(stream);
  assert.equal(second.body.buffer, stream.buffer);
});

Deno.test("zero-length and oversized frames throw FrameError", () => {
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 0])), FrameError);
  const decoder = new FrameDecoder({ maxFrameBytes: 100 });
  assert.throws(
    () => decoder.push(encodeFrameHeader(10, 200)),
    (error: unknown) => error instanceof FrameError && error.announcedLength === 201,
  );
  // detected from the header alone, split across pushes, before any body arrives
  const split = new FrameDecoder({ maxFrameBytes: 100 });
  split.push(new Uint8Array([0, 0]));
  assert.throws(() => split.push(new Uint8Array([1, 0])), FrameError);
});

Deno.test("a frame built from a body's parts equals the frame of the whole body", () => {
  const value = new Uint8Array(100 * 1024).map((_, i) => i & 0xff);
  const message = { content: [{ value }], vclock: new Uint8Array([1, 2, 3]) };
  const parts = encodeMessageParts(MessageCode.GetResp, message);
  assert.ok(parts.includes(value), "the large value is a part of its own");
  assert.deepEqual(
    encodeFrameFromParts(MessageCode.GetResp, parts),
    encodeFrame(MessageCode.GetResp, encodeMessage(MessageCode.GetResp, message)),
  );
  assert.deepEqual(
    encodeFrameFromParts(MessageCode.PingResp, []),
    encodeFrame(2, new Uint8Array(0)),
  );
});

/**
 * Feeds `stream` to `receiver` as a socket with onread would: each read fills at most `size`
 * bytes of the buffer the receiver offers.
 */
function receiveAll(receiver: FrameReceiver, stream: Uint8Array, size: number): Frame[] {
  const got: Frame[] = [];
  for (let at = 0; at < stream.length;) {
    const into = receiver.nextBuffer();
    assert.ok(into.length > 0, "never an empty buffer (the socket fails with ENOBUFS)");
    const count = Math.min(size, into.length, stream.length - at);
    into.set(stream.subarray(at, at + count));
    at += count;
    got.push(...receiver.received(count));
  }
  return got;
}

/** Frames of every kind of size: empty, short, just below and above the own-buffer bound. */
function mixedFrames(): Uint8Array[] {
  return [0, 1, 300, 1000, 1018, 1019, 1020, 5000, 70_000, 3, 200_000, 64 * 1024 - 5, 2].map(
    (size, index) =>
      encodeFrame(index + 1, new Uint8Array(size).map((_, at) => (at * 7 + index) & 0xff)),
  );
}

Deno.test("FrameReceiver yields the frames FrameDecoder does, whatever size each read has", () => {
  const stream = concat(mixedFrames());
  const whole = summary(new FrameDecoder().push(stream));
  for (const size of [1, 3, 4, 5, 17, 1000, 1024, 4096, 65_536, 1 << 20]) {
    const receiver = new FrameReceiver({ ownBufferFrom: 1024 });
    assert.deepEqual(summary(receiveAll(receiver, stream, size)), whole, `reads of ${size}`);
    assert.equal(receiver.bufferedBytes, 0);
  }
});

Deno.test("FrameReceiver reads a long frame into a buffer of its own and keeps no short one", () => {
  const receiver = new FrameReceiver({ ownBufferFrom: 1024 });
  const long = encodeFrame(MessageCode.GetResp, new Uint8Array(10_000).fill(9));
  const short = encodeFrame(1, new Uint8Array([1, 2, 3]));
  const stream = concat([short, long, short]);
  const got = receiveAll(receiver, stream, 4096);
  assert.equal(got.length, 3);
  // The long frame's body is the buffer its later reads went into, whole and alone.
  assert.equal(got[1].body.byteLength, 10_000);
  assert.equal(got[1].body.buffer.byteLength, long.length);
  // Short frames are copies: the shared buffer's next reads do not change them.
  assert.notEqual(got[0].body.buffer, got[2].body.buffer);
  receiveAll(receiver, concat([encodeFrame(2, new Uint8Array(100).fill(5))]), 4096);
  assert.deepEqual(Array.from(got[0].body), [1, 2, 3]);
  assert.deepEqual(Array.from(got[2].body), [1, 2, 3]);
});

Deno.test("FrameReceiver refuses zero-length and oversized frames from the header alone", () => {
  assert.throws(() => receiveAll(new FrameReceiver(), new Uint8Array([0, 0, 0, 0]), 4), FrameError);
  assert.throws(
    () => receiveAll(new FrameReceiver({ maxFrameBytes: 100 }), encodeFrameHeader(10, 200), 2),
    (error: unknown) => error instanceof FrameError && error.announcedLength === 201,
  );
});

Deno.test("FrameReceiver reads at most its own-buffer bound before it knows a frame's length", () => {
  const receiver = new FrameReceiver({ ownBufferFrom: 1024 });
  // A reply that already waits whole in the socket: the first read takes the header and at
  // most 1 KiB of its body, which is all that is copied into the frame's own buffer.
  assert.equal(receiver.nextBuffer().length, 1024);
  const long = encodeFrame(MessageCode.GetResp, new Uint8Array(10_000).fill(4));
  const got = receiveAll(receiver, long, 1 << 20);
  assert.equal(got.length, 1);
  assert.equal(got[0].body.buffer.byteLength, long.length);
  assert.equal(receiver.nextBuffer().length, 1024, "the next frame starts with a bounded read");
});

Deno.test("releaseFrame frees a long frame FrameReceiver read, and nothing else", () => {
  const receiver = new FrameReceiver({ ownBufferFrom: 1024 });
  const stream = concat([
    encodeFrame(MessageCode.GetResp, new Uint8Array(10_000).fill(9)),
    encodeFrame(1, new Uint8Array([1, 2, 3])),
  ]);
  const [long, short] = receiveAll(receiver, stream, 4096);
  const value = long.body.subarray(100, 200);
  assert.equal(releaseFrame(value), true);
  assert.equal(long.body.length, 0, "every view of the frame reads as empty");
  assert.equal(value.length, 0);
  assert.equal(releaseFrame(long.body), false, "a frame is freed once");
  assert.equal(releaseFrame(short.body), false, "a short frame is a copy of its own; kept");
  assert.deepEqual(Array.from(short.body), [1, 2, 3]);
  const other = new Uint8Array([5, 6]);
  assert.equal(releaseFrame(other), false, "memory the receiver did not read is left alone");
  assert.deepEqual(Array.from(other), [5, 6]);
  const decoded = new FrameDecoder().push(stream);
  assert.equal(releaseFrame(decoded[0].body), false, "frames cut from socket chunks may share");
  assert.equal(decoded[0].body.length, 10_000);
});
