import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:net";
import { answer, startFakeNode } from "./_fake_node.ts";
import { Connection } from "./connection.ts";
import { ConnectionError, ProtocolError, RiakError, TimeoutError } from "./errors.ts";
import { encodeFrameHeader } from "./frame.ts";
import { MessageCode } from "./messages.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** A list-keys stream of bucket `b` on a connection. */
function listKeys(connection: Connection) {
  return connection.stream(
    MessageCode.ListKeysReq,
    { bucket: text("b") },
    MessageCode.ListKeysResp,
    (f) => f.done === true,
  );
}

Deno.test("request/response, then an error answer keeps the connection usable", async () => {
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
    else socket.write(answer(MessageCode.ErrorResp, { errmsg: text("no_type"), errcode: 0 }));
  });
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port });
  try {
    assert.deepEqual(await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp), {});
    await assert.rejects(
      connection.request(
        MessageCode.GetReq,
        { bucket: text("b"), key: text("k") },
        MessageCode.GetResp,
      ),
      (error: unknown) =>
        error instanceof RiakError && error.errmsg === "no_type" && error.node === node.address,
    );
    assert.equal(connection.usable, true);
    assert.deepEqual(await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp), {});
  } finally {
    connection.close();
    await node.close();
  }
});

Deno.test("a stream yields every frame up to done, split however the peer writes it", async () => {
  const node = await startFakeNode((_code, _body, socket) => {
    const frames = [
      answer(MessageCode.ListKeysResp, { keys: [text("a"), text("b")] }),
      answer(MessageCode.ListKeysResp, { keys: [text("c")] }),
      answer(MessageCode.ListKeysResp, { done: true }),
    ];
    const all = Buffer.concat(frames);
    // byte by byte: every frame boundary falls inside a chunk at some point
    for (let i = 0; i < all.length; i += 3) socket.write(all.subarray(i, i + 3));
  });
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port });
  try {
    const keys: string[] = [];
    for await (
      const frame of listKeys(connection)
    ) {
      for (const key of frame.keys ?? []) keys.push(new TextDecoder().decode(key));
    }
    assert.deepEqual(keys, ["a", "b", "c"]);
    assert.equal(connection.usable, true);
  } finally {
    connection.close();
    await node.close();
  }
});

/** Runs one request against a peer that misbehaves and checks the error and the discard. */
async function expectFailure(
  misbehave: (socket: import("node:net").Socket) => void,
  check: (error: unknown) => boolean,
  options: { requestTimeoutMs?: number; maxFrameBytes?: number } = {},
) {
  const node = await startFakeNode((_code, _body, socket) => misbehave(socket));
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port, ...options });
  try {
    await assert.rejects(connection.request(MessageCode.PingReq, {}, MessageCode.PingResp), check);
    assert.equal(connection.usable, false);
    assert.equal(connection.dead, true);
    await assert.rejects(
      connection.request(MessageCode.PingReq, {}, MessageCode.PingResp),
      ConnectionError,
    );
  } finally {
    connection.destroy();
    await node.close();
  }
}

Deno.test("a peer that never answers ends in TimeoutError within the request timeout", async () => {
  const started = Date.now();
  await expectFailure(
    () => {},
    (error) => error instanceof TimeoutError && error.phase === "request" && error.maybeApplied,
    { requestTimeoutMs: 200 },
  );
  assert.ok(Date.now() - started < 5_000);
});

Deno.test("a request left waiting is reported stalled after each wait, and abandon fails it as maybe applied", async () => {
  const node = await startFakeNode(() => {});
  let stalls = 0;
  const connection: Connection = await Connection.open({
    host: "127.0.0.1",
    port: node.port,
    requestTimeoutMs: 5_000,
    stallAfterMs: 10,
    onStall: () => {
      if (++stalls === 3) connection.abandon("gave up on it");
    },
  });
  try {
    await assert.rejects(
      connection.request(MessageCode.PingReq, {}, MessageCode.PingResp),
      (error: unknown) =>
        error instanceof ConnectionError && error.maybeApplied &&
        error.message === `${node.address} RpbPingReq: gave up on it`,
    );
    assert.equal(stalls, 3, "told again after each wait, not after the request ended");
    assert.equal(connection.dead, true, "its answer could still come: never reused");
  } finally {
    connection.destroy();
    await node.close();
  }
});

Deno.test("a peer that closes mid-frame ends in ConnectionError", async () => {
  await expectFailure(
    (socket) => socket.end(encodeFrameHeader(MessageCode.PingResp, 10)),
    (error) =>
      error instanceof ConnectionError && error.maybeApplied && /closed/.test(error.message),
  );
});

Deno.test("oversized, zero-length, unknown-code, unexpected-code and garbage frames are protocol errors", async () => {
  await expectFailure(
    (socket) => socket.write(encodeFrameHeader(MessageCode.PingResp, 5000)),
    (error) => error instanceof ProtocolError && /exceeds/.test(error.message),
    { maxFrameBytes: 1024 },
  );
  await expectFailure(
    (socket) => socket.write(new Uint8Array([0, 0, 0, 0])),
    (error) => error instanceof ProtocolError && /zero-length/.test(error.message),
  );
  await expectFailure(
    (socket) => socket.write(new Uint8Array([0, 0, 0, 1, 77])),
    (error) => error instanceof ProtocolError && /code 77/.test(error.message),
  );
  await expectFailure(
    (socket) => socket.write(answer(MessageCode.GetResp)),
    (error) => error instanceof ProtocolError && /expected RpbPingResp/.test(error.message),
  );
  await expectFailure(
    (socket) => socket.write(new Uint8Array([0, 0, 0, 4, 10, 0xff, 0xff, 0xff])),
    (error) => error instanceof ProtocolError,
  );
});

Deno.test("an unsolicited frame destroys an idle connection", async () => {
  const node = await startFakeNode((_code, _body, socket) => {
    socket.write(answer(MessageCode.PingResp));
    socket.write(answer(MessageCode.PingResp));
  });
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port });
  try {
    await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
    // the second answer arrives with or right after the first: wait for the discard
    const deadline = Date.now() + 5_000;
    while (!connection.dead && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(connection.dead, true);
  } finally {
    connection.destroy();
    await node.close();
  }
});

Deno.test("connecting to a closed port is a ConnectionError carrying ECONNREFUSED", async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await assert.rejects(
    Connection.open({ host: "127.0.0.1", port }),
    (error: unknown) => error instanceof ConnectionError && error.errno === "ECONNREFUSED",
  );
});

Deno.test("after a crash answer, which Riak follows by closing, the connection is not reused", async () => {
  // Riak answers a request that crashes its connection process, then closes the connection
  // (golden 09-errors garbage-body-ping, 05-2i eq-int-not-a-number). The close may reach the
  // client after it already sent its next request: that request must not go out on it.
  const crash = "Error processing incoming message: error:function_clause:[{riak_pb_dt_codec}]";
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.GetReq) {
      socket.write(answer(MessageCode.ErrorResp, { errmsg: text(crash), errcode: 0 }));
    } else socket.destroy(); // the close, seen late: whatever came next is lost
  });
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port });
  try {
    await assert.rejects(
      connection.request(
        MessageCode.GetReq,
        { bucket: text("b"), key: text("k") },
        MessageCode.GetResp,
      ),
      (error: unknown) => error instanceof RiakError && error.errmsg === crash,
    );
    assert.equal(connection.usable, false);
    assert.equal(connection.dead, true);
    assert.deepEqual(node.received, [MessageCode.GetReq]);
  } finally {
    connection.destroy();
    await node.close();
  }
});

Deno.test("leaving a stream early discards the connection", async () => {
  const node = await startFakeNode((_code, _body, socket) => {
    socket.write(answer(MessageCode.ListKeysResp, { keys: [text("a")] }));
  });
  const connection = await Connection.open({ host: "127.0.0.1", port: node.port });
  try {
    for await (
      const _frame of listKeys(connection)
    ) break;
    assert.equal(connection.dead, true);
  } finally {
    connection.destroy();
    await node.close();
  }
});

Deno.test("leaving a stream whose last frame already arrived keeps the connection, reading resumed", async () => {
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.PingReq) {
      socket.write(answer(MessageCode.PingResp));
      return;
    }
    // the whole stream in one write: past the high-water mark (reading pauses), done included
    const frames = [];
    for (let i = 0; i < 40; i++) {
      frames.push(answer(MessageCode.ListKeysResp, { keys: [text("k")] }));
    }
    frames.push(answer(MessageCode.ListKeysResp, { done: true }));
    socket.write(Buffer.concat(frames));
  });
  const connection = await Connection.open({
    host: "127.0.0.1",
    port: node.port,
    requestTimeoutMs: 2_000,
  });
  try {
    const stream = listKeys(connection);
    const first = await stream.next();
    assert.deepEqual(first.value?.keys, [text("k")]);
    await stream.return!(undefined);
    assert.equal(connection.dead, false, "the stream was complete: nothing left on the wire");
    assert.equal(connection.usable, true);
    assert.deepEqual(await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp), {});
  } finally {
    connection.destroy();
    await node.close();
  }
});

Deno.test("a peer that accepts StartTls but never handshakes ends in a tls TimeoutError", async () => {
  const node = await startFakeNode((code, _body, socket) => {
    if (code !== MessageCode.StartTls) return;
    socket.write(answer(MessageCode.StartTls));
    socket.removeAllListeners("data"); // then silence: the TLS hello is never answered
  });
  try {
    await assert.rejects(
      Connection.open({ host: "127.0.0.1", port: node.port, connectTimeoutMs: 200, tls: {} }),
      (error: unknown) => error instanceof TimeoutError && error.phase === "tls",
    );
  } finally {
    await node.close();
  }
});

Deno.test("a slow stream consumer pauses reading without timing out, and the connection is reused", async () => {
  let finish = () => {};
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.PingReq) {
      socket.write(answer(MessageCode.PingResp));
      return;
    }
    // 40 frames at once (past the client's high-water mark, so it stops reading); the last
    // one once the consumer took 30, later than the request timeout, while the client still
    // does not read: only the consumer's slowness keeps it waiting
    for (let i = 0; i < 40; i++) {
      socket.write(answer(MessageCode.ListKeysResp, { keys: [text(`k${i}`)] }));
    }
    finish = () => socket.write(answer(MessageCode.ListKeysResp, { done: true }));
  });
  const connection = await Connection.open({
    host: "127.0.0.1",
    port: node.port,
    requestTimeoutMs: 100,
  });
  try {
    let keys = 0;
    const started = Date.now();
    for await (
      const frame of listKeys(connection)
    ) {
      keys += frame.keys?.length ?? 0;
      // a consumer slower than the request timeout in total: 40 frames x 4 ms
      await new Promise((resolve) => setTimeout(resolve, 4));
      if (keys === 30) finish();
    }
    assert.equal(keys, 40);
    assert.ok(Date.now() - started > 100, "the stream outlasted one request timeout");
    await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
  } finally {
    connection.close();
    await node.close();
  }
});

/** Holds this thread up for `ms`, as a long synchronous task does: no event is handled. */
function holdUp(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

Deno.test("an answer that came in time while this process was held up is read, not timed out", async () => {
  const answered = new Int32Array(new SharedArrayBuffer(4));
  const peer = new Worker(new URL("./_ping_worker.ts", import.meta.url), { type: "module" });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      peer.onmessage = (event: MessageEvent<number>) => resolve(event.data);
      peer.onerror = (event) => reject(new Error(event.message));
      peer.postMessage(answered.buffer);
    });
    const timeoutMs = 50;
    const connection = await Connection.open({
      host: "127.0.0.1",
      port,
      requestTimeoutMs: timeoutMs,
    });
    try {
      const sentAt = performance.now();
      const pong = connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
      pong.catch(() => {}); // timed out, it fails the assertion below, not the process
      // Held up until the peer answered and the timeout passed: the answer waits unread.
      Atomics.wait(answered, 0, 0, 10_000);
      assert.equal(Atomics.load(answered, 0), 1, "the peer answered during the hold-up");
      holdUp(sentAt + 2 * timeoutMs - performance.now());
      assert.deepEqual(await pong, {});
    } finally {
      connection.close();
    }
  } finally {
    peer.terminate();
  }
});

/** A node that answers a put only when the test lets it (a node that resumes late). */
async function startLateNode() {
  let answerNow: (() => void) | undefined;
  let received!: () => void;
  const arrived = new Promise<void>((resolve) => received = resolve);
  const node = await startFakeNode((code, _body, socket) => {
    if (code !== MessageCode.PutReq) return;
    answerNow = () => socket.write(answer(MessageCode.PutResp));
    received();
  });
  return {
    node,
    arrived,
    answer: () => answerNow!(),
    /** A connection to it whose requests time out after 50 ms. */
    open: () => Connection.open({ host: "127.0.0.1", port: node.port, requestTimeoutMs: 50 }),
  };
}

/** A put of key `k` on `connection`. */
function putK(connection: Connection, awaitLateAnswerMs?: number) {
  return connection.request(
    MessageCode.PutReq,
    { bucket: text("b"), key: text("k"), content: { value: text("v") } },
    MessageCode.PutResp,
    { awaitLateAnswerMs },
  );
}

Deno.test("a write that timed out keeps its connection, never reused, until its late answer came", async () => {
  const late = await startLateNode();
  const connection = await late.open();
  try {
    await assert.rejects(
      putK(connection, 60_000),
      (error: unknown) => error instanceof TimeoutError && error.maybeApplied,
    );
    assert.equal(connection.dead, true, "never reused");
    let settled = false;
    void connection.lateAnswer!.then(() => settled = true);
    await late.arrived;
    await Promise.resolve();
    assert.equal(settled, false, "the answer is still owed");
    late.answer();
    await connection.lateAnswer;
    assert.equal(settled, true);
  } finally {
    connection.destroy();
    await late.node.close();
  }
});

Deno.test("a write's late answer is awaited no longer than asked, nor once the node closed the connection", async () => {
  const late = await startLateNode();
  const capped = await late.open();
  const closed = await late.open();
  try {
    await assert.rejects(putK(capped, 30), TimeoutError);
    await capped.lateAnswer; // Never answered: the wait ends by itself.
    await assert.rejects(putK(closed, 60_000), TimeoutError);
    await late.node.close(); // Drops its connections.
    await closed.lateAnswer;
  } finally {
    capped.destroy();
    closed.destroy();
    await late.node.close();
  }
});

Deno.test("a request given up on without awaitLateAnswerMs destroys its connection at once", async () => {
  const late = await startLateNode();
  const connection = await late.open();
  try {
    await assert.rejects(putK(connection), TimeoutError);
    assert.equal(connection.lateAnswer, undefined);
  } finally {
    connection.destroy();
    await late.node.close();
  }
});
