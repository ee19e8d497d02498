import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { MessageCode } from "../riak/messages.ts";
import { RiakEngine } from "./engine.ts";

const text = new TextEncoder();
const target = { bucket: text.encode("b"), key: text.encode("k") };

async function getResp(engine: RiakEngine, deletedvclock: boolean) {
  const reply = await engine.handle(
    MessageCode.GetReq,
    encodeMessage(MessageCode.GetReq, { ...target, deletedvclock }),
  );
  return decodeMessage(MessageCode.GetResp, reply.frames[0].subarray(5));
}

Deno.test("a tombstone answers deletedvclock for 3 s, then it is reaped", async () => {
  let now = 1_800_000_000_000;
  const engine = new RiakEngine(undefined, { now: () => now });
  await engine.handle(
    MessageCode.PutReq,
    encodeMessage(MessageCode.PutReq, { ...target, content: { value: text.encode("v") } }),
  );
  await engine.handle(MessageCode.DelReq, encodeMessage(MessageCode.DelReq, target));
  assert.deepEqual(await getResp(engine, false), {});
  const tombstone = await getResp(engine, true);
  assert.ok(tombstone.vclock !== undefined);
  now += 2999;
  await engine.reapTombstones();
  assert.deepEqual(await getResp(engine, true), tombstone);
  now += 1;
  await engine.reapTombstones();
  assert.deepEqual(await getResp(engine, true), {});
});

Deno.test("get with if_modified answers unchanged while the vclock is current", async () => {
  const engine = new RiakEngine();
  const put = await engine.handle(
    MessageCode.PutReq,
    encodeMessage(MessageCode.PutReq, {
      ...target,
      content: { value: text.encode("v") },
      return_head: true,
    }),
  );
  const vclock = decodeMessage(MessageCode.PutResp, put.frames[0].subarray(5)).vclock;
  const reply = await engine.handle(
    MessageCode.GetReq,
    encodeMessage(MessageCode.GetReq, { ...target, if_modified: vclock }),
  );
  assert.deepEqual(decodeMessage(MessageCode.GetResp, reply.frames[0].subarray(5)), {
    unchanged: true,
  });
});

Deno.test("a write the log refuses is answered with the error and undone in memory", async () => {
  const engine = new RiakEngine(undefined, {
    durability: {
      commit: () => Promise.reject(new Error("data log /x/riak.log: write failed: ENOSPC")),
    },
  });
  const reply = await engine.handle(
    MessageCode.PutReq,
    encodeMessage(MessageCode.PutReq, { ...target, content: { value: text.encode("v") } }),
  );
  assert.equal(reply.close, false);
  const error = decodeMessage(MessageCode.ErrorResp, reply.frames[0].subarray(5));
  assert.match(new TextDecoder().decode(error.errmsg), /ENOSPC/);
  assert.deepEqual(await getResp(engine, false), {});
});

Deno.test("a quorum above n_val is refused with n_val_violation, as Riak's FSMs refuse it", async () => {
  const engine = new RiakEngine();
  const QUORUM_ALL = 4294967292;
  type Code = typeof MessageCode.PutReq | typeof MessageCode.GetReq | typeof MessageCode.DelReq;
  const errorOf = async (code: Code, request: Record<string, unknown>) => {
    const reply = await engine.handle(code, encodeMessage(code, request as never));
    if (reply.frames[0][4] !== MessageCode.ErrorResp) return undefined;
    const error = decodeMessage(MessageCode.ErrorResp, reply.frames[0].subarray(5));
    return new TextDecoder().decode(error.errmsg);
  };
  const content = { value: text.encode("v") };
  assert.equal(
    await errorOf(MessageCode.PutReq, { ...target, content, w: 4 }),
    "{n_val_violation,3}",
  );
  assert.equal(
    await errorOf(MessageCode.PutReq, { ...target, content, dw: 5 }),
    "{n_val_violation,3}",
  );
  assert.equal(await errorOf(MessageCode.GetReq, { ...target, r: 4 }), "{n_val_violation,3}");
  assert.equal(await errorOf(MessageCode.DelReq, { ...target, rw: 4 }), "{n_val_violation,3}");
  assert.deepEqual(await getResp(engine, false), {}, "nothing was written");
  assert.equal(
    await errorOf(MessageCode.PutReq, { ...target, content, w: 3, dw: QUORUM_ALL }),
    undefined,
  );
  assert.equal(await errorOf(MessageCode.GetReq, { ...target, r: 3 }), undefined);
});
