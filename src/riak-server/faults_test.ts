/**
 * The faults act alike where they are injected: in the embedded server, and in the proxy
 * that tests put in front of a real node (RIAKFS_TEST_RIAK).
 */
import assert from "node:assert/strict";
import { MessageCode } from "../riak/messages.ts";
import { TestConnection } from "./_test_connection.ts";
import { startEmbeddedRiak } from "./embedded.ts";
import { startFaultProxy } from "./fault_proxy.ts";
import type { FaultInjector } from "./faults.ts";

/** Where faults are injected: a port to talk to, its faults, and how to stop it all. */
interface FaultTarget {
  port: number;
  faults: FaultInjector;
  close(): Promise<void>;
}

const TARGETS: Record<string, () => Promise<FaultTarget>> = {
  "embedded server": async () => {
    const riak = await startEmbeddedRiak({ memory: true });
    return { port: riak.port, faults: riak.faults, close: () => riak.close() };
  },
  "proxy before a node": async () => {
    const riak = await startEmbeddedRiak({ memory: true });
    const proxy = await startFaultProxy([riak.address]);
    return {
      port: Number(proxy.addresses[0].split(":")[1]),
      faults: proxy.faults,
      close: async () => {
        await proxy.close();
        await riak.close();
      },
    };
  },
};

function errmsgOf(message: Record<string, unknown>): string {
  return new TextDecoder().decode(message.errmsg as Uint8Array);
}

/** Runs `body` with a fresh target of `where` and a connection to it; stops both after. */
async function withConnection(
  where: string,
  body: (connection: TestConnection, riak: FaultTarget) => Promise<void>,
): Promise<void> {
  const riak = await TARGETS[where]();
  const connection = new TestConnection(riak.port);
  try {
    await body(connection, riak);
  } finally {
    connection.destroy();
    await riak.close();
  }
}

for (const where of Object.keys(TARGETS)) {
  Deno.test(`${where}: scripted error, pause/resume, close after N requests, close mid-frame`, async () => {
    await withConnection(where, async (connection, riak) => {
      riak.faults.respondWithError("overload", 7);
      const error = await connection.call(MessageCode.PingReq);
      assert.equal(error.code, MessageCode.ErrorResp);
      assert.equal(errmsgOf(error.message), "overload");
      assert.equal(error.message.errcode, 7);
      assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);

      riak.faults.pause();
      connection.send(MessageCode.PingReq);
      connection.send(MessageCode.GetServerInfoReq);
      assert.equal(await connection.next(100), "timeout");
      riak.faults.resume();
      assert.equal((await connection.answer()).code, MessageCode.PingResp);
      assert.equal((await connection.answer()).code, MessageCode.GetServerInfoResp);

      riak.faults.setLatency(30);
      const started = performance.now();
      assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      assert.ok(performance.now() - started >= 29, "answered no sooner than the latency");
      riak.faults.setLatency(0);

      riak.faults.closeAfterRequests(2);
      assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      connection.send(MessageCode.PingReq);
      assert.equal(await connection.next(), "closed");

      const second = new TestConnection(riak.port);
      try {
        riak.faults.closeMidFrame();
        second.send(MessageCode.GetServerInfoReq);
        assert.equal(await second.next(), "closed");
      } finally {
        second.destroy();
      }
    });
  });

  Deno.test(`${where}: a cut answer may be a scripted error; the next answer is whole`, async () => {
    await withConnection(where, async (connection, riak) => {
      riak.faults.respondWithError("overload");
      riak.faults.closeMidFrame();
      connection.send(MessageCode.PingReq);
      assert.equal(await connection.next(), "closed");
      const again = new TestConnection(riak.port);
      try {
        assert.equal((await again.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      } finally {
        again.destroy();
      }
    });
  });

  Deno.test(`${where}: stop and resume accepting, drop connections`, async () => {
    await withConnection(where, async (kept, riak) => {
      await kept.connected();
      await riak.faults.stopAccepting();
      const refused = new TestConnection(riak.port);
      await assert.rejects(refused.connected());
      refused.destroy();
      assert.equal((await kept.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      await riak.faults.resumeAccepting();
      const again = new TestConnection(riak.port);
      assert.equal((await again.call(MessageCode.PingReq)).code, MessageCode.PingResp);
      riak.faults.dropConnections();
      assert.equal(await again.next(), "closed");
      assert.equal(await kept.next(), "closed");
      again.destroy();
    });
  });
}

Deno.test("proxy before a node: a connection whose bytes do not frame is dropped, as Riak drops it", async () => {
  await withConnection("proxy before a node", async (connection) => {
    // A zero-length frame: Riak drops the connection (golden 09-errors zero-length-frame).
    connection.write(new Uint8Array([0, 0, 0, 0]));
    assert.equal(await connection.next(), "closed");
  });
});

Deno.test("proxy before a node: a value of megabytes goes through whole, both ways", async () => {
  await withConnection("proxy before a node", async (connection) => {
    const value = new Uint8Array(3 * 1024 * 1024 + 7).map((_, index) => index % 251);
    const target = { bucket: new TextEncoder().encode("big"), key: new TextEncoder().encode("k") };
    const put = await connection.call(MessageCode.PutReq, { ...target, content: { value } });
    assert.equal(put.code, MessageCode.PutResp);
    const got = await connection.call(MessageCode.GetReq, target);
    assert.equal(got.code, MessageCode.GetResp);
    const [content] = got.message.content as { value: Uint8Array }[];
    assert.deepEqual(new Uint8Array(content.value), value);
  });
});
