import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { connect } from "node:net";
import { encodeMessage } from "../riak/codec.ts";
import { encodeFrame } from "../riak/frame.ts";
import { MessageCode } from "../riak/messages.ts";
import { TestConnection } from "./_test_connection.ts";
import { parseListenAddress, startEmbeddedRiak } from "./embedded.ts";
import { RiakEngine } from "./engine.ts";
import { RiakNetworkServer } from "./server.ts";
import { TEST_CERT, TEST_KEY } from "./_test_tls.ts";

const text = new TextEncoder();

function errmsgOf(message: Record<string, unknown>): string {
  return new TextDecoder().decode(message.errmsg as Uint8Array);
}

/** A small deterministic PRNG (mulberry32) so the fuzz run is reproducible. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("fuzz: random and mutated frames never stop the server from serving others", async () => {
  const riak = await startEmbeddedRiak({ memory: true, bucketTypes: { kvmulti: {} } });
  const healthy = new TestConnection(riak.port);
  const next = random(20261125);
  const valid: Uint8Array[] = [
    encodeFrame(
      MessageCode.PutReq,
      encodeMessage(MessageCode.PutReq, {
        bucket: text.encode("fz"),
        key: text.encode("k"),
        content: {
          value: text.encode("v"),
          indexes: [{ key: text.encode("i_int"), value: text.encode("1") }],
        },
        return_body: true,
      }),
    ),
    encodeFrame(
      MessageCode.GetReq,
      encodeMessage(MessageCode.GetReq, { bucket: text.encode("fz"), key: text.encode("k") }),
    ),
    encodeFrame(
      MessageCode.IndexReq,
      encodeMessage(MessageCode.IndexReq, {
        bucket: text.encode("fz"),
        index: text.encode("i_int"),
        qtype: "range",
        range_min: text.encode("0"),
        range_max: text.encode("9"),
        stream: true,
      }),
    ),
    encodeFrame(
      MessageCode.DtUpdateReq,
      encodeMessage(MessageCode.DtUpdateReq, {
        bucket: text.encode("fz"),
        key: text.encode("m"),
        type: text.encode("maps"),
        op: {
          map_op: {
            updates: [{
              field: { name: text.encode("f"), type: "SET" },
              set_op: { adds: [text.encode("a")] },
            }],
          },
        },
      }),
    ),
    encodeFrame(
      MessageCode.ListKeysReq,
      encodeMessage(MessageCode.ListKeysReq, { bucket: text.encode("fz") }),
    ),
  ];
  try {
    for (let round = 0; round < 300; round++) {
      const fuzzer = new TestConnection(riak.port);
      try {
        let bytes: Uint8Array;
        const mode = round % 3;
        if (mode === 0) {
          bytes = new Uint8Array(1 + Math.floor(next() * 64));
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
        } else {
          bytes = valid[Math.floor(next() * valid.length)].slice();
          const flips = 1 + Math.floor(next() * 4);
          const start = mode === 1 ? 4 : 0; // mode 1 keeps the length, mode 2 may break it
          for (let i = 0; i < flips; i++) {
            bytes[start + Math.floor(next() * (bytes.length - start))] = Math.floor(next() * 256);
          }
        }
        fuzzer.write(bytes);
        // whatever the fuzzed connection gets, a healthy one is answered
        const answer = await healthy.call(MessageCode.PingReq);
        assert.equal(answer.code, MessageCode.PingResp, `round ${round}`);
      } finally {
        fuzzer.destroy();
      }
    }
    const get = await healthy.call(MessageCode.GetReq, {
      bucket: text.encode("fz"),
      key: text.encode("absent"),
    });
    assert.equal(get.code, MessageCode.GetResp);
  } finally {
    healthy.destroy();
    await riak.close();
  }
});

Deno.test("security on: StartTls upgrades the socket, Auth checks the user list", async () => {
  const riak = await startEmbeddedRiak({
    memory: true,
    tls: { cert: TEST_CERT, key: TEST_KEY, users: { riakuser: "secret" } },
  });
  const plain = new TestConnection(riak.port);
  try {
    const refused = await plain.call(MessageCode.PingReq);
    assert.equal(errmsgOf(refused.message), "Security is enabled, please STARTTLS first");
    assert.equal((await plain.call(MessageCode.StartTls)).code, MessageCode.StartTls);
  } finally {
    plain.destroy();
  }
  const connection = new TestConnection(riak.port);
  try {
    await connection.startTls();
    const early = await connection.call(MessageCode.PingReq);
    assert.equal(errmsgOf(early.message), "Security is enabled, please authenticate first");
    const auth = (password: string) =>
      connection.call(MessageCode.AuthReq, {
        user: text.encode("riakuser"),
        password: text.encode(password),
      });
    assert.equal((await auth("wrong")).code, MessageCode.ErrorResp);
    assert.equal((await auth("secret")).code, MessageCode.AuthResp);
    assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
  } finally {
    connection.destroy();
    await riak.close();
  }
});

Deno.test("a failed accept (EMFILE) does not crash the process; the server keeps serving", async () => {
  const server = new RiakNetworkServer(new RiakEngine(), { host: "127.0.0.1", port: 0 });
  await server.listen();
  const connection = new TestConnection(server.port);
  try {
    // node:net reports a failed accept(2) as an 'error' event on the listening server; the
    // process cannot run out of descriptors on cue, so the event is raised as node:net would
    const listener = (server as unknown as { listener: EventEmitter }).listener;
    const accept = Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" });
    assert.doesNotThrow(() => listener.emit("error", accept));
    assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
  } finally {
    connection.destroy();
    await server.close();
  }
});

Deno.test("a client that vanishes while its answers wait for the socket to drain is let go", async () => {
  const engine = new RiakEngine();
  const where = { bucket: text.encode("b"), key: text.encode("big") };
  const value = new Uint8Array(4 * 1024 * 1024).fill(1);
  await engine.handle(
    MessageCode.PutReq,
    encodeMessage(MessageCode.PutReq, { ...where, content: { value } }),
  );
  const server = new RiakNetworkServer(engine, { host: "127.0.0.1", port: 0 });
  await server.listen();
  type ServerSide = { working: boolean; socket: { writableLength: number } };
  const connections = (server as unknown as { connections: Set<ServerSide> }).connections;
  const client = connect(server.port, "127.0.0.1");
  client.on("error", () => {});
  try {
    await new Promise((resolve) => client.once("connect", resolve));
    client.pause(); // never reads: the server's answers pile up in its socket
    const get = encodeFrame(MessageCode.GetReq, encodeMessage(MessageCode.GetReq, where));
    for (let i = 0; i < 6; i++) client.write(get);
    const side = await eventually(
      () => [...connections].find((c) => c.socket.writableLength > 8 * 1024 * 1024),
      "answers piled up past the server's drain mark",
    );
    client.destroy();
    // the connection's work loop must end, not wait forever for a drain that cannot come
    await eventually(() => side.working ? undefined : true, "the server to let the connection go");
    assert.equal(side.working, false);
  } finally {
    client.destroy();
    await server.close();
  }
});

Deno.test("a client pipelining large requests is held back by bytes, not only by frame count", async () => {
  const server = new RiakNetworkServer(new RiakEngine(), { host: "127.0.0.1", port: 0 });
  await server.listen();
  type ServerSide = { socket: { isPaused(): boolean } };
  const connections = (server as unknown as { connections: Set<ServerSide> }).connections;
  const client = new TestConnection(server.port);
  try {
    await client.connected();
    server.faults.pause(); // requests pile up unanswered, as behind a slow disk
    const value = new Uint8Array(4 * 1024 * 1024).fill(2);
    const count = 24; // 96 MiB in all, in far fewer frames than the frame bound
    for (let i = 0; i < count; i++) {
      client.send(MessageCode.PutReq, {
        bucket: text.encode("b"),
        key: text.encode(`k${i}`),
        content: { value },
      });
    }
    await eventually(
      () => [...connections].some((side) => side.socket.isPaused()) || undefined,
      "the server to stop reading the connection",
    );
    server.faults.resume();
    for (let i = 0; i < count; i++) {
      assert.equal((await client.answer()).code, MessageCode.PutResp, `answer ${i}`);
    }
  } finally {
    client.destroy();
    await server.close();
  }
});

/** Polls `probe` until it gives a value, up to a bounded deadline. */
async function eventually<T>(probe: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5_000;
  while (true) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("serve-riak's listen address is checked the same way", () => {
  assert.deepEqual(parseListenAddress("0.0.0.0:8087"), { host: "0.0.0.0", port: 8087 });
  assert.deepEqual(parseListenAddress("[::1]:8087"), { host: "::1", port: 8087 });
  for (const bad of ["256.1.1.1:8087", "[x]:8087", "a b:8087", "h:70000"]) {
    assert.throws(() => parseListenAddress(bad), /listen address/, bad);
  }
});
