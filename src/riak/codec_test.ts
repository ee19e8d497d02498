import assert from "node:assert/strict";
import {
  CodecError,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  isKnownMessageCode,
} from "./codec.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "./frame.ts";
import {
  bytesToHex,
  digestLargeBytes,
  goldenToMessage,
  hasOpaque,
  hexToBytes,
  loadGoldenTranscripts,
  sha256Hex,
} from "./golden.ts";
import { MessageCode } from "./messages.ts";

const transcripts = loadGoldenTranscripts();

Deno.test("golden transcripts are present", () => {
  assert.ok(transcripts.length >= 9, `found ${transcripts.length} transcripts`);
});

Deno.test("every recorded response frame decodes to its recorded fields", () => {
  let checked = 0;
  for (const transcript of transcripts) {
    for (const step of transcript.steps) {
      for (const [index, response] of step.responses.entries()) {
        if (response.code === undefined || typeof response.hex !== "string") continue;
        const where = `${transcript.file} ${step.id} r${index}`;
        const frame = hexToBytes(response.hex);
        assert.equal(frame[4], response.code, `${where}: code byte`);
        const decoded = decodeMessage(response.code, frame.subarray(FRAME_HEADER_BYTES));
        assert.deepEqual(digestLargeBytes(decoded), goldenToMessage(response.fields), where);
        checked++;
      }
    }
  }
  assert.ok(checked > 200, `checked ${checked} frames`);
});

Deno.test("every recorded request without opaque values re-encodes to its exact bytes", () => {
  let checked = 0;
  for (const transcript of transcripts) {
    for (const step of transcript.steps) {
      const request = step.request;
      if (request.raw || request.fields === undefined || typeof request.code !== "number") continue;
      if (hasOpaque(request.fields)) continue;
      const where = `${transcript.file} ${step.id}`;
      const frame = encodeFrame(
        request.code,
        encodeMessage(request.code, goldenToMessage(request.fields) as object),
      );
      if (typeof request.hex === "string") {
        assert.equal(bytesToHex(frame), request.hex, where);
      } else {
        assert.equal(frame.length, request.len, `${where}: length`);
        assert.equal(sha256Hex(frame), request.sha256, `${where}: sha256`);
      }
      checked++;
    }
  }
  assert.ok(checked > 150, `checked ${checked} requests`);
});

Deno.test("requests with opaque values round-trip through decode and encode", () => {
  let checked = 0;
  for (const transcript of transcripts) {
    for (const step of transcript.steps) {
      const request = step.request;
      if (request.raw || typeof request.hex !== "string" || typeof request.code !== "number") {
        continue;
      }
      const body = hexToBytes(request.hex).subarray(FRAME_HEADER_BYTES);
      const decoded = decodeMessage(request.code, body);
      assert.deepEqual(decoded, goldenToMessage(request.fields), `${transcript.file} ${step.id}`);
      assert.equal(bytesToHex(encodeMessage(request.code, decoded)), bytesToHex(body));
      checked++;
    }
  }
  assert.ok(checked > 200, `checked ${checked} requests`);
});

Deno.test("decoded bytes are views into the body, not copies", () => {
  const body = encodeMessage(MessageCode.GetReq, {
    bucket: new TextEncoder().encode("b"),
    key: new TextEncoder().encode("k"),
  });
  const decoded = decodeMessage(MessageCode.GetReq, body);
  assert.equal(decoded.bucket.buffer, body.buffer);
});

Deno.test("unknown fields are skipped, malformed bodies and unknown codes throw CodecError", () => {
  // PingResp with an unknown varint field 5 = 1
  assert.deepEqual(decodeMessage(MessageCode.PingResp, new Uint8Array([0x28, 0x01])), {});
  assert.throws(
    () => decodeMessage(MessageCode.GetReq, new Uint8Array([0xff, 0xff, 0xff])),
    CodecError,
  );
  // bucket declared 10 bytes long, 1 present
  assert.throws(
    () => decodeMessage(MessageCode.GetReq, new Uint8Array([0x0a, 0x0a, 0x61])),
    CodecError,
  );
  assert.throws(() => decodeMessage(77, new Uint8Array(0)), CodecError);
  assert.throws(() => encodeMessage(77, {}), CodecError);
  assert.equal(isKnownMessageCode(77), false);
  assert.equal(isKnownMessageCode(MessageCode.DtUpdateResp), true);
});

Deno.test("64-bit integers decode to numbers when safe, bigints beyond 2^53", () => {
  const small = encodeMessage(MessageCode.DtUpdateResp, { counter_value: -2 });
  assert.equal(decodeMessage(MessageCode.DtUpdateResp, small).counter_value, -2);
  const big = encodeMessage(MessageCode.DtUpdateResp, { counter_value: 2n ** 60n });
  assert.equal(decodeMessage(MessageCode.DtUpdateResp, big).counter_value, 2n ** 60n);
});

Deno.test("an unknown enum name cannot be encoded", () => {
  assert.throws(
    () =>
      encodeMessage(MessageCode.IndexReq, {
        bucket: new Uint8Array(1),
        index: new Uint8Array(1),
        qtype: "between" as "eq",
      }),
    CodecError,
  );
});

Deno.test("large bytes become parts of their own, without a copy; the parts concatenate to the body", () => {
  const value = new Uint8Array(100_000).fill(7);
  const message = {
    bucket: new TextEncoder().encode("b"),
    key: new TextEncoder().encode("k"),
    content: { value, content_type: new TextEncoder().encode("application/octet-stream") },
    w: 4294967293,
    type: new TextEncoder().encode("kvmulti"),
  };
  const parts = encodeMessageParts(MessageCode.PutReq, message);
  assert.equal(parts.length, 3);
  assert.equal(parts[1], value);
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  assert.deepEqual(joined, encodeMessage(MessageCode.PutReq, message));
  assert.deepEqual(decodeMessage(MessageCode.PutReq, joined), message);
});

Deno.test("a failed encode leaves nothing behind for the next one", () => {
  const bad = { bucket: new Uint8Array(1), index: new Uint8Array(1), qtype: "between" as "eq" };
  assert.throws(() => encodeMessageParts(MessageCode.IndexReq, bad), CodecError);
  const parts = encodeMessageParts(MessageCode.GetReq, {
    bucket: new Uint8Array([1]),
    key: new Uint8Array([2]),
  });
  assert.deepEqual(parts, [new Uint8Array([0x0a, 1, 1, 0x12, 1, 2])]);
});
