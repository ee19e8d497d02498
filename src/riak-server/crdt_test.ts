import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { type DtOp, MessageCode } from "../riak/messages.ts";
import { RiakEngine } from "./engine.ts";

const text = new TextEncoder();
const decoder = new TextDecoder();

async function update(engine: RiakEngine, type: string, op: DtOp, context?: Uint8Array) {
  const reply = await engine.handle(
    MessageCode.DtUpdateReq,
    encodeMessage(MessageCode.DtUpdateReq, {
      bucket: text.encode("b"),
      key: text.encode("k"),
      type: text.encode(type),
      op,
      context,
      return_body: true,
    }),
  );
  const frame = reply.frames[0];
  if (frame[4] === MessageCode.ErrorResp) {
    return {
      error: decoder.decode(decodeMessage(MessageCode.ErrorResp, frame.subarray(5)).errmsg),
    };
  }
  return decodeMessage(MessageCode.DtUpdateResp, frame.subarray(5));
}

async function fetchSet(engine: RiakEngine) {
  const reply = await engine.handle(
    MessageCode.DtFetchReq,
    encodeMessage(MessageCode.DtFetchReq, {
      bucket: text.encode("b"),
      key: text.encode("k"),
      type: text.encode("sets"),
    }),
  );
  return decodeMessage(MessageCode.DtFetchResp, reply.frames[0].subarray(5));
}

const names = (values: Uint8Array[] | undefined) => (values ?? []).map((v) => decoder.decode(v));

Deno.test("set: an add the remover did not see wins over its remove (add wins)", async () => {
  const engine = new RiakEngine();
  await update(engine, "sets", { set_op: { adds: [text.encode("a"), text.encode("b")] } });
  const seen = (await fetchSet(engine)).context!;
  // another client re-adds "a" after our fetch
  await update(engine, "sets", { set_op: { adds: [text.encode("a")] } });
  const after = await update(engine, "sets", {
    set_op: { removes: [text.encode("a"), text.encode("b")] },
  }, seen);
  assert.deepEqual(names((after as { set_value?: Uint8Array[] }).set_value), ["a"]);
});

Deno.test("set: removing an absent element without context is Riak's precondition error", async () => {
  const engine = new RiakEngine();
  await update(engine, "sets", { set_op: { adds: [text.encode("a")] } });
  assert.deepEqual(await update(engine, "sets", { set_op: { removes: [text.encode("zz")] } }), {
    error: '{precondition,{not_present,<<"zz">>}}',
  });
  // the failed update changed nothing
  assert.deepEqual(names((await fetchSet(engine)).value?.set_value), ["a"]);
});

Deno.test("map: nested fields update and a stale-context remove keeps a newer field", async () => {
  const engine = new RiakEngine();
  const field = (name: string, type: "COUNTER" | "FLAG" | "MAP") => ({
    name: text.encode(name),
    type,
  });
  const first = await update(engine, "maps", {
    map_op: {
      updates: [
        { field: field("n", "COUNTER"), counter_op: { increment: 2 } },
        {
          field: field("inner", "MAP"),
          map_op: { updates: [{ field: field("on", "FLAG"), flag_op: "ENABLE" }] },
        },
      ],
    },
  }) as { context: Uint8Array };
  await update(engine, "maps", { map_op: { updates: [{ field: field("n", "COUNTER") }] } });
  const removed = await update(engine, "maps", {
    map_op: { removes: [field("n", "COUNTER"), field("inner", "MAP")] },
  }, first.context) as { map_value?: { field: { name: Uint8Array }; counter_value?: number }[] };
  assert.deepEqual(removed.map_value?.map((e) => [decoder.decode(e.field.name), e.counter_value]), [
    ["n", 3],
  ]);
  assert.deepEqual(
    await update(engine, "maps", { map_op: { removes: [field("gone", "FLAG")] } }),
    { error: '{precondition,{not_present,{<<"gone">>,riak_dt_od_flag}}}' },
  );
});
