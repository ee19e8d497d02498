import assert from "node:assert/strict";
import { MessageCode } from "../riak/messages.ts";
import { TestConnection } from "./_test_connection.ts";
import { startEmbeddedRiak } from "./embedded.ts";
import { startTestRiak, TEST_RIAK_ENV, type TestRiak } from "./testing.ts";

Deno.test("startTestRiak starts an embedded server with the test bucket types", async () => {
  const saved = process.env[TEST_RIAK_ENV];
  delete process.env[TEST_RIAK_ENV];
  const riak = await startTestRiak();
  const connection = new TestConnection(riak.server!.port);
  try {
    assert.equal(riak.external, false);
    assert.match(riak.prefix, /^t[0-9a-f]{8}$/);
    assert.deepEqual(riak.nodes, [riak.server!.address]);
    for (const type of ["default", "sets", "maps", "counters", "kvmulti", "lww"]) {
      const answer = await connection.call(MessageCode.GetBucketTypeReq, {
        type: new TextEncoder().encode(type),
      });
      assert.equal(answer.code, MessageCode.GetBucketResp, type);
    }
  } finally {
    connection.destroy();
    await riak.close();
    if (saved !== undefined) process.env[TEST_RIAK_ENV] = saved;
  }
});

Deno.test("startTestRiak reaches the nodes of RIAKFS_TEST_RIAK through a fault proxy", async () => {
  const nodes = [
    await startEmbeddedRiak({ memory: true }),
    await startEmbeddedRiak({ memory: true }),
  ];
  const saved = process.env[TEST_RIAK_ENV];
  process.env[TEST_RIAK_ENV] = nodes.map((node) => node.address).join(", ");
  let riak: TestRiak | undefined;
  try {
    riak = await startTestRiak();
    assert.equal(riak.external, true);
    assert.equal(riak.server, undefined);
    assert.equal(riak.nodes.length, 2);
    for (const [index, address] of riak.nodes.entries()) {
      assert.notEqual(address, nodes[index].address);
      const connection = new TestConnection(Number(address.split(":")[1]));
      try {
        // The node behind it answers: its own bucket types, and the fault set here.
        const answer = await connection.call(MessageCode.GetBucketTypeReq, {
          type: new TextEncoder().encode("sets"),
        });
        assert.equal(answer.code, MessageCode.GetBucketResp);
        riak.faults.respondWithError("overload");
        assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.ErrorResp);
      } finally {
        connection.destroy();
      }
    }
  } finally {
    await riak?.close();
    for (const node of nodes) await node.close();
    if (saved === undefined) delete process.env[TEST_RIAK_ENV];
    else process.env[TEST_RIAK_ENV] = saved;
  }
});
