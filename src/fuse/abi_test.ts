import assert from "node:assert/strict";
import { errnoFromSystemError } from "./session.ts";
import {
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
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  InitFlag,
  InvalidNameError,
  Opcode,
  ReplyWriter,
  RequestReader,
  SetattrValid,
  splitSeconds,
  TooLargeError,
  writeDirent,
} from "./abi.ts";

/** Bytes from a hex string with spaces and newlines for readability. */
function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)!.map((pair) => parseInt(pair, 16)));
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fuse_in_header for LOOKUP (len 46, unique 0x0102030405060708, node 1, uid 1000...). */
const LOOKUP_HEADER = hex(`
  2e000000 01000000 0807060504030201 0100000000000000
  e8030000 e9030000 39300000 0000 0000`);

Deno.test("in-header decodes field by field, little-endian", () => {
  const request = new Uint8Array([...LOOKUP_HEADER, ...new TextEncoder().encode("hello\0")]);
  assert.deepEqual(decodeInHeader(request), {
    len: 46,
    opcode: Opcode.LOOKUP,
    unique: 0x0102030405060708n,
    nodeid: 1,
    uid: 1000,
    gid: 1001,
    pid: 12345,
  });
});

Deno.test("out-header: length includes itself, error is negative errno", () => {
  assert.equal(toHex(encodeOutHeader(7n, -2, 0)), "10000000" + "feffffff" + "0700000000000000");
  assert.equal(toHex(encodeOutHeader(7n, 0, 104)).slice(0, 8), "78000000");
});

const ATTR = {
  ino: 0x1122,
  size: 0x10000000001,
  blocks: 8,
  atime: { sec: 1, nsec: 2 },
  mtime: { sec: 3, nsec: 4 },
  ctime: { sec: -1, nsec: 999_999_999 },
  mode: 0o100644,
  nlink: 1,
  uid: 1000,
  gid: 100,
  rdev: 0,
  blksize: 4096,
};

const ATTR_BYTES = `
  2211000000000000 0100000000010000 0800000000000000
  0100000000000000 0300000000000000 ffffffffffffffff
  02000000 04000000 ffc99a3b
  a4810000 01000000 e8030000 64000000 00000000 00100000 00000000`;

Deno.test("attr-out: timeout split, then the 88-byte fuse_attr (times before 1970 too)", () => {
  const bytes = encodeAttrOut(ATTR, 1.5);
  assert.equal(bytes.length, 104);
  assert.deepEqual(bytes, hex(`0100000000000000 0065cd1d 00000000 ${ATTR_BYTES}`));
});

Deno.test("attr: a time before 1970 with negative nanoseconds goes out as the same instant", () => {
  const bytes = encodeAttrOut({ ...ATTR, mtime: { sec: -1, nsec: -500_000_000 } }, 0);
  const view = new DataView(bytes.buffer);
  // fuse_attr starts at 16: mtime's seconds at +32, its nanoseconds at +52.
  assert.equal(view.getBigInt64(16 + 32, true), -2n);
  assert.equal(view.getUint32(16 + 52, true), 500_000_000);
});

Deno.test("entry-out: node id, generation, both timeouts, attr", () => {
  const bytes = encodeEntryOut({ nodeid: 5, attr: ATTR, entryTimeout: 2, attrTimeout: 0 });
  assert.equal(bytes.length, 128);
  assert.deepEqual(
    bytes,
    hex(`0500000000000000 0000000000000000 0200000000000000 0000000000000000
         00000000 00000000 ${ATTR_BYTES}`),
  );
});

Deno.test("init: decode what the kernel offers, encode a 64-byte answer", () => {
  const offer = hex(`${toHex(LOOKUP_HEADER)} 07000000 2d000000 00000200 ffffffff 01000000`);
  assert.deepEqual(decodeInitIn(offer), {
    major: 7,
    minor: 45,
    maxReadahead: 0x20000,
    flags: 0xffffffff,
    flags2: 1,
  });
  const reply = encodeInitOut({
    major: 7,
    minor: 45,
    maxReadahead: 0x20000,
    flags: InitFlag.ASYNC_READ | InitFlag.MAX_PAGES,
    maxBackground: 64,
    congestionThreshold: 48,
    maxWrite: 1 << 20,
    timeGran: 1,
    maxPages: 256,
  });
  assert.equal(reply.length, 64);
  assert.deepEqual(
    reply.subarray(0, 30),
    hex(`07000000 2d000000 00000200 01004000 4000 3000 00001000 01000000 0001`),
  );
  assert.ok(reply.subarray(30).every((b) => b === 0));
});

Deno.test("setattr-in: valid bits, handle, size, times (signed), mode, owner", () => {
  const body = hex(`
    79000000 00000000 0900000000000000 0004000000000000 0000000000000000
    0a00000000000000 feffffffffffffff 0000000000000000
    05000000 06000000 00000000 ed010000 00000000 e8030000 64000000 00000000`);
  const request = new Uint8Array([...LOOKUP_HEADER, ...body]);
  const decoded = decodeSetattrIn(request);
  assert.equal(
    decoded.valid,
    SetattrValid.MODE | SetattrValid.SIZE | SetattrValid.ATIME | SetattrValid.MTIME |
      SetattrValid.FH,
  );
  assert.equal(decoded.fh, 9);
  assert.equal(decoded.size, 1024);
  assert.deepEqual(decoded.atime, { sec: 10, nsec: 5 });
  assert.deepEqual(decoded.mtime, { sec: -2, nsec: 6 });
  assert.equal(decoded.mode, 0o755);
  assert.equal(decoded.uid, 1000);
  assert.equal(decoded.gid, 100);
});

Deno.test("read-in and write-in: handle, offset, size; write data is a view", () => {
  const read = hex(`0300000000000000 0000100000000000 00000200 00000000 0000000000000000
                    02800000 00000000`);
  assert.deepEqual(decodeReadIn(new Uint8Array([...LOOKUP_HEADER, ...read])), {
    fh: 3,
    offset: 2 ** 20,
    size: 0x20000,
    flags: 0x8002,
  });
  const write = hex(`0400000000000000 0500000000000000 03000000 01000000 0000000000000000
                     01000000 00000000 616263`);
  const decoded = decodeWriteIn(new Uint8Array([...LOOKUP_HEADER, ...write]));
  assert.equal(decoded.fh, 4);
  assert.equal(decoded.offset, 5);
  assert.equal(decoded.writeFlags, 1);
  assert.equal(new TextDecoder().decode(decoded.data), "abc");
});

Deno.test("batch-forget: count, then node/nlookup pairs", () => {
  const body = hex(`02000000 00000000 0200000000000000 0100000000000000
                    0300000000000000 0500000000000000`);
  assert.deepEqual(decodeBatchForget(new Uint8Array([...LOOKUP_HEADER, ...body])), [
    { nodeid: 2, nlookup: 1 },
    { nodeid: 3, nlookup: 5 },
  ]);
});

Deno.test("dirent: 24-byte head, name, padding to 8", () => {
  assert.equal(direntSize(1), 32);
  assert.equal(direntSize(8), 32);
  assert.equal(direntSize(9), 40);
  const writer = new ReplyWriter(32);
  writeDirent(
    writer,
    { ino: 7, nextOffset: 3, type: 4, name: "ab" },
    new TextEncoder().encode("ab"),
  );
  assert.equal(writer.offset, 32);
  assert.deepEqual(
    writer.bytes,
    hex(`0700000000000000 0300000000000000 02000000 04000000 6162 000000000000`),
  );
});

Deno.test("open-out and statfs-out layouts", () => {
  assert.deepEqual(encodeOpenOut(9, 3), hex(`0900000000000000 03000000 00000000`));
  const statfs = encodeStatfsOut({
    blocks: 1,
    bfree: 2,
    bavail: 3,
    files: 4,
    ffree: 5,
    bsize: 4096,
    namelen: 255,
    frsize: 4096,
  });
  assert.equal(statfs.length, 80);
  assert.deepEqual(
    statfs.subarray(0, 52),
    hex(`0100000000000000 0200000000000000 0300000000000000 0400000000000000
         0500000000000000 00100000 ff000000 00100000`),
  );
});

Deno.test("splitSeconds: fractions to nanoseconds, negatives clamp to zero", () => {
  assert.deepEqual(splitSeconds(1.25), { sec: 1, nsec: 250_000_000 });
  assert.deepEqual(splitSeconds(0), { sec: 0, nsec: 0 });
  assert.deepEqual(splitSeconds(-3), { sec: 0, nsec: 0 });
});

Deno.test("names are read as UTF-8; one that is not is refused (EILSEQ), never aliased", () => {
  const request = new Uint8Array([0x61, 0xc3, 0xa9, 0, 0x61, 0xff, 0, 0x61, 0xfe, 0]);
  const reader = new RequestReader(request, 0);
  assert.equal(reader.cstring(), "a\u00e9");
  assert.throws(() => reader.cstring(), (error: unknown) => {
    assert.ok(error instanceof InvalidNameError);
    assert.equal(error.code, "EILSEQ");
    return true;
  });
  assert.equal(errnoFromSystemError(new InvalidNameError()), 84);
});

Deno.test("offsets and sizes a number cannot hold exactly (above 2^53) are refused (EFBIG), never rounded", () => {
  const largest = new ReplyWriter(16).u64(Number.MAX_SAFE_INTEGER).u64(2n ** 53n + 1n).bytes;
  const reader = new RequestReader(largest, 0);
  assert.equal(reader.u64(), Number.MAX_SAFE_INTEGER);
  assert.throws(() => reader.u64(), (error: unknown) => {
    assert.ok(error instanceof TooLargeError);
    assert.equal(errnoFromSystemError(error), 27);
    return true;
  });
  // A write whose last byte lies beyond 2^53 - 1 is refused too.
  const write = new ReplyWriter(40 + 2).u64(1).u64(Number.MAX_SAFE_INTEGER - 1).u32(2).bytes;
  assert.throws(
    () => decodeWriteIn(new Uint8Array([...LOOKUP_HEADER, ...write])),
    TooLargeError,
  );
  const fits = new ReplyWriter(40 + 1).u64(1).u64(Number.MAX_SAFE_INTEGER - 1).u32(1).bytes;
  assert.equal(decodeWriteIn(new Uint8Array([...LOOKUP_HEADER, ...fits])).data.byteLength, 1);
  // Handles and node ids are the filesystem's own numbers: they come back as they went.
  const read = new ReplyWriter(40).u64(2 ** 60).u64(0).u32(1).bytes;
  assert.equal(decodeReadIn(new Uint8Array([...LOOKUP_HEADER, ...read])).fh, 2 ** 60);
});
