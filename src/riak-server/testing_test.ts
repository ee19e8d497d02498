import assert from "node:assert/strict";
import { MessageCode } from "../riak/messages.ts";
import { TestConnection } from "./_test_connection.ts";
import { startTestRiak, TEST_RIAK_ENV } from "./testing.ts";

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

Deno.test("startTestRiak points at the nodes of RIAKFS_TEST_RIAK", async () => {
  const saved = process.env[TEST_RIAK_ENV];
  process.env[TEST_RIAK_ENV] = "10.0.0.1:8087, 10.0.0.2:8087";
  try {
    const riak = await startTestRiak();
    assert.deepEqual(riak.nodes, ["10.0.0.1:8087", "10.0.0.2:8087"]);
    assert.equal(riak.external, true);
    assert.equal(riak.server, undefined);
    await riak.close();
  } finally {
    if (saved === undefined) delete process.env[TEST_RIAK_ENV];
    else process.env[TEST_RIAK_ENV] = saved;
  }
});
