// Cluster behaviour under faults: retries, idempotency, node health, the wait queue and
// failover. These need fault injection, so they always use embedded servers.
import assert from "node:assert/strict";
import { createdTypeProps, TEST_BUCKET_TYPES } from "../riak-server/bucket_types.ts";
import { RiakEngine } from "../riak-server/engine.ts";
import { Keyspace } from "../riak-server/keyspace.ts";
import { RiakNetworkServer } from "../riak-server/server.ts";
import { startTestRiak, type TestRiak } from "../riak-server/testing.ts";
import { answer, type FakeNode, startFakeNode } from "./_fake_node.ts";
import { RiakClient } from "./client.ts";
import type { ClusterOptions, NodeStatus } from "./cluster.ts";
import { toText } from "./commands/values.ts";
import { ConnectionError, QueueFullError, RiakError, TimeoutError } from "./errors.ts";
import { encodeFrameHeader } from "./frame.ts";
import { MessageCode } from "./messages.ts";
import { FAILURES_BEFORE_DOWN, parseNodeList } from "./node.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** A seeded PRNG (mulberry32) so backoff jitter is the same on every run. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A client with fast, seeded retries and health checks, for fault tests. */
function testClient(nodes: string[], options: Partial<ClusterOptions>): RiakClient {
  return new RiakClient({
    nodes,
    random: seeded(42),
    retryBaseDelayMs: 5,
    healthCheckIntervalMs: 50,
    ...options,
  });
}

async function withServers(
  count: number,
  options: Partial<ClusterOptions>,
  body: (riak: RiakClient, servers: TestRiak[]) => Promise<void>,
): Promise<void> {
  const servers: TestRiak[] = [];
  let riak: RiakClient | undefined;
  try {
    for (let i = 0; i < count; i++) servers.push(await startTestRiak());
    // One address per server, so that the client's node i is servers[i]: a proxy in front of
    // several real nodes (RIAKFS_TEST_RIAK=a,b) has an address for each of them.
    riak = testClient(servers.map((s) => s.nodes[0]), options);
    await body(riak, servers);
  } finally {
    await riak?.close();
    for (const server of servers) await server.close();
  }
}

/**
 * Several embedded nodes in front of ONE store, as the nodes of a Riak cluster share their
 * data: what one node applied before it died, the others see.
 */
async function withSharedStore(
  count: number,
  options: Partial<ClusterOptions>,
  body: (riak: RiakClient, nodes: RiakNetworkServer[]) => Promise<void>,
  frontOf: (engine: RiakEngine, index: number, nodes: RiakNetworkServer[]) => RiakEngine = (
    engine,
  ) => engine,
): Promise<void> {
  const keyspace = new Keyspace();
  for (const [name, spec] of Object.entries(TEST_BUCKET_TYPES)) {
    keyspace.types.set(name, createdTypeProps(spec));
  }
  const engine = new RiakEngine(keyspace);
  const nodes: RiakNetworkServer[] = [];
  let riak: RiakClient | undefined;
  try {
    for (let i = 0; i < count; i++) {
      const node = new RiakNetworkServer(frontOf(engine, i, nodes), { host: "127.0.0.1", port: 0 });
      nodes.push(node);
      await node.listen();
    }
    riak = testClient(nodes.map((node) => `127.0.0.1:${node.port}`), options);
    await body(riak, nodes);
  } finally {
    await riak?.close();
    for (const node of nodes) await node.close();
  }
}

/**
 * A node's door to the shared engine that dies at the worst moment: once armed, the next put
 * it applies kills the node (`die`) before the answer goes out, so that put, and any other
 * in flight on the node, is applied but never answered.
 */
function dyingFront(engine: RiakEngine, die: () => void): { front: RiakEngine; arm(): void } {
  let armed = false;
  const front = Object.create(engine) as RiakEngine;
  front.handle = async (code, body, session) => {
    const reply = await engine.handle(code, body, session);
    if (armed && code === MessageCode.PutReq) {
      armed = false;
      die();
    }
    return reply;
  };
  return { front, arm: () => armed = true };
}

/** Waits for a condition, polling, up to a bounded deadline. */
async function eventually(
  condition: () => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("parseNodeList: host:port lists, default port, IPv6, bad entries", () => {
  assert.deepEqual(parseNodeList("10.0.0.1:8087, 10.0.0.2"), [
    { host: "10.0.0.1", port: 8087 },
    { host: "10.0.0.2", port: 8087 },
  ]);
  assert.deepEqual(parseNodeList(["[::1]:9000"]), [{ host: "::1", port: 9000 }]);
  assert.throws(() => parseNodeList("host:99999"), TypeError);
  // Caught here, not as a lookup error of every request later.
  for (const bad of ["a b:80", "user@h:80", "[x]:80", "256.1.1.1:8087", "h/x", "-h:80", "a..b"]) {
    assert.throws(() => parseNodeList(bad), /bad Riak node/, bad);
  }
  assert.deepEqual(parseNodeList("riak-1.dc_east.example.:8087,10.1.2.3"), [
    { host: "riak-1.dc_east.example.", port: 8087 },
    { host: "10.1.2.3", port: 8087 },
  ]);
  assert.throws(() => parseNodeList(""), TypeError);
});

Deno.test("an overload answer is retried; other Riak errors are not", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const where = { bucket: `${server.prefix}-o`, key: "k" };
    server.faults.respondWithError("overload", 0, 2);
    assert.equal((await riak.get(where)).found, false);
    server.faults.respondWithError("timeout"); // Riak's own timeout: a get may repeat
    assert.equal((await riak.get(where)).found, false);
    server.faults.respondWithError("timeout"); // ... a put is verified, then repeated
    const put = { ...where, key: "put" };
    await riak.put(put, { value: bytes("v") });
    assert.equal((await riak.get(put)).siblings.length, 1);
    server.faults.respondWithError("timeout"); // ... a put without a key may not
    await assert.rejects(
      riak.put({ bucket: where.bucket }, { value: bytes("v") }),
      (e: unknown) => e instanceof RiakError && e.errmsg === "timeout",
    );
    server.faults.respondWithError("no_type");
    await assert.rejects(
      riak.get(where),
      (e: unknown) => e instanceof RiakError && e.errmsg === "no_type",
    );
    assert.equal((await riak.get(where)).found, false);
  });
});

Deno.test("a dropped request is retried when idempotent; a dropped put is verified, then repeated only if not applied", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const where = { type: "kvmulti", bucket: `${server.prefix}-d`, key: "k" };
    server.faults.closeAfterRequests(0);
    assert.equal((await riak.get(where)).found, false);

    // dropped before it was processed: the check finds nothing, the put is sent again, once
    server.faults.closeAfterRequests(0);
    await riak.put(where, { value: bytes("once") });
    const stored = await riak.get(where);
    assert.deepEqual(stored.siblings.map((s) => toText(s.value)), ["once"]);

    // applied, then the answer is cut: the check finds it; no second sibling
    server.faults.closeMidFrame();
    const written = await riak.put(
      where,
      { value: bytes("twice?"), contentType: "text/plain", usermeta: [{ key: "o", value: "1" }] },
      { vclock: stored.vclock, returnBody: true },
    );
    assert.deepEqual(written.siblings.map((s) => toText(s.value)), ["twice?"]);
    assert.equal(written.siblings[0].contentType, "text/plain");
    assert.ok(written.vclock !== undefined);
    assert.deepEqual((await riak.get(where)).siblings.map((s) => toText(s.value)), ["twice?"]);

    // if_none_match applied, then cut: repeating would answer match_found; the check says done
    const fresh = { ...where, key: "fresh" };
    server.faults.closeMidFrame();
    const head = await riak.put(fresh, { value: bytes("mine") }, {
      ifNoneMatch: true,
      returnHead: true,
    });
    assert.deepEqual(head.siblings.map((s) => s.value.length), [0]);
    // ... while a real conflict still fails as Riak says
    await assert.rejects(
      riak.put(fresh, { value: bytes("theirs") }, { ifNoneMatch: true }),
      (e: unknown) => e instanceof RiakError && e.errmsg === "match_found",
    );
    assert.deepEqual((await riak.get(fresh)).siblings.map((s) => toText(s.value)), ["mine"]);

    // applied, then the answer is cut: blind repetition is declared harmless where the last write wins
    const lww = { type: "lww", bucket: where.bucket, key: "k" };
    server.faults.closeMidFrame();
    await riak.put(lww, { value: bytes("lww") }, { idempotent: true });
    assert.equal((await riak.get(lww)).siblings.length, 1);
  });
});

Deno.test("a counter increment that may have been applied is not repeated", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const where = { type: "counters", bucket: `${server.prefix}-c`, key: "n" };
    server.faults.closeMidFrame();
    await assert.rejects(
      riak.updateCounter(where, 1n),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    assert.equal((await riak.fetchCounter(where)).value, 1);
  });
});

Deno.test("an update or put without a key is not repeated: a repeat would create a second object", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const bucket = `${server.prefix}-generated`;
    // applied, then the answer is cut: the key Riak generated is lost with the answer
    server.faults.closeMidFrame();
    await assert.rejects(
      riak.updateSet({ type: "sets", bucket }, { add: ["member"] }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    server.faults.closeMidFrame();
    await assert.rejects(
      riak.updateMap({ type: "maps", bucket }, {
        updates: [{ field: { name: bytes("f"), type: "FLAG" }, flag_op: "ENABLE" }],
      }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    // the same for a put without a key, even one declared idempotent
    server.faults.closeMidFrame();
    await assert.rejects(
      riak.put({ type: "lww", bucket }, { value: bytes("v") }, { idempotent: true }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    const keys: string[] = [];
    for (const type of ["sets", "maps", "lww"]) {
      for await (const batch of riak.listKeys({ type, bucket })) keys.push(...batch.map(toText));
    }
    assert.equal(keys.length, 3, `one object per update, not more: ${keys.join(", ")}`);
    // with a key, repeating stays harmless and is still retried
    server.faults.closeMidFrame();
    await riak.updateSet({ type: "sets", bucket, key: "named" }, { add: ["member"] });
  });
});

Deno.test("a request that gets no answer times out, and the next one works", async () => {
  await withServers(1, { requestTimeoutMs: 200, maxAttempts: 1 }, async (riak, [server]) => {
    server.faults.pause();
    const started = Date.now();
    await assert.rejects(
      riak.ping(),
      (e: unknown) => e instanceof TimeoutError && e.phase === "request",
    );
    assert.ok(Date.now() - started < 5_000);
    server.faults.resume();
    await riak.ping();
  });
});

Deno.test("a request that failed every attempt says how many it took", async () => {
  await withServers(1, { requestTimeoutMs: 100, maxAttempts: 2 }, async (riak, [server]) => {
    server.faults.pause();
    try {
      await assert.rejects(
        riak.ping(),
        (e: unknown) => e instanceof TimeoutError && /\(after 2 attempts\)$/.test(e.message),
      );
    } finally {
      server.faults.resume();
    }
  });
});

Deno.test("a node that refuses connections goes down, traffic moves, it comes back after pings", async () => {
  await withServers(2, { maxAttempts: 3 }, async (riak, [a, b]) => {
    const nodeA = riak.cluster.nodes[0];
    const stopping = a.faults.stopAccepting();
    a.faults.dropConnections();
    await stopping;
    for (let i = 0; i < 10; i++) await riak.ping();
    assert.equal(nodeA.state, "down");
    assert.equal(riak.cluster.nodes[1].state, "up");
    assert.deepEqual(riak.cluster.status().map((s) => s.state), ["down", "up"]);
    assert.match(riak.cluster.status()[0].lastFailure ?? "", /ECONNREFUSED|connect/);
    await a.faults.resumeAccepting();
    await eventually(() => nodeA.state === "up", "node A back up");
    assert.equal(riak.cluster.nodes[1].address, b.nodes[0], "the node traffic moved to is b");
  });
});

Deno.test("a node that accepts but never answers goes down after timeouts in a row, and back after pings", async () => {
  await withServers(2, { requestTimeoutMs: 200, maxAttempts: 1 }, async (riak, [a]) => {
    const nodeA = riak.cluster.nodes[0];
    await riak.ping();
    await riak.ping();
    a.faults.pause(); // connections still accepted; nothing answered
    let timeouts = 0;
    for (let i = 0; i < 20 && nodeA.state === "up"; i++) {
      await riak.ping().catch((error) => {
        assert.ok(error instanceof TimeoutError, String(error));
        timeouts++;
      });
    }
    assert.equal(nodeA.state, "down");
    assert.equal(timeouts, FAILURES_BEFORE_DOWN, "taken out after that many in a row");
    for (let i = 0; i < 5; i++) await riak.ping(); // all on the other node now
    a.faults.resume();
    await eventually(() => nodeA.state === "up", "node A back once it answers pings");
  });
});

/**
 * A node that accepts connections and never answers (a frozen Riak: pings unanswered too)
 * listed first, so that round-robin sends it the first request, then a working node. The
 * request timeout is long: a request that finishes in time was not failed over by it.
 */
async function withHungFirstNode(
  body: (riak: RiakClient, hung: FakeNode, events: NodeStatus[], prefix: string) => Promise<void>,
): Promise<void> {
  const hung = await startFakeNode(() => {});
  const events: NodeStatus[] = [];
  let server: TestRiak | undefined;
  let riak: RiakClient | undefined;
  try {
    server = await startTestRiak();
    riak = testClient([hung.address, ...server.nodes], {
      requestTimeoutMs: HUNG_REQUEST_TIMEOUT_MS,
      // Margins for a loaded machine: the working node, in this process, is never taken
      // for hung.
      stallCheckAfterMs: 100,
      pingTimeoutMs: 500,
      onNodeStateChange: (status) => events.push(status),
    });
    await body(riak, hung, events, server.prefix);
  } finally {
    await riak?.close();
    await hung.close();
    await server?.close();
  }
}

const HUNG_REQUEST_TIMEOUT_MS = 60_000;

/** `promise`, or a failure naming `what` if it takes `ms` (far less than the request timeout). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  promise.catch(() => {}); // once late, how it ends no longer matters
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a hung node: the read sent to it is given up once a ping goes unanswered, and answered by another node", async () => {
  await withHungFirstNode(async (riak, hung, events, prefix) => {
    const bucket = `${prefix}-hung-read`;
    const got = await within(
      10_000,
      "a read first sent to the hung node",
      riak.get({ type: "kvmulti", bucket, key: "k" }),
    );
    assert.equal(got.found, false);
    assert.ok(hung.received.includes(MessageCode.GetReq), "the read went to the hung node first");
    assert.ok(hung.received.includes(MessageCode.PingReq), "the hung node was pinged");
    const [status] = riak.cluster.status();
    assert.equal(status.state, "down");
    assert.match(status.lastFailure ?? "", /not answering: a ping request timed out/);
    assert.deepEqual(events.map((e) => [e.address, e.state]), [[hung.address, "down"]]);
    // out of rotation: what follows goes to the other node without waiting
    const before = hung.received.filter((code) => code === MessageCode.GetReq).length;
    for (let i = 0; i < 4; i++) await riak.get({ type: "kvmulti", bucket, key: `k${i}` });
    assert.equal(hung.received.filter((code) => code === MessageCode.GetReq).length, before);
  });
});

Deno.test("a hung node: a put sent to it is verified on another node, then stored there once", async () => {
  await withHungFirstNode(async (riak, hung, _events, prefix) => {
    const location = { type: "kvmulti", bucket: `${prefix}-hung-put`, key: "k" };
    await within(
      10_000,
      "a put first sent to the hung node",
      riak.put(location, { value: bytes("v") }),
    );
    assert.ok(hung.received.includes(MessageCode.PutReq), "the put went to the hung node first");
    const got = await riak.get(location);
    // kvmulti keeps a repeated put as a sibling: one sibling means it was stored once
    assert.deepEqual(got.siblings.map((s) => toText(s.value)), ["v"]);
  });
});

Deno.test("a hung node: a counter increment sent to it is not repeated elsewhere (it may have been applied)", async () => {
  await withHungFirstNode(async (riak, hung, _events, prefix) => {
    const location = { type: "counters", bucket: `${prefix}-hung-counter`, key: "c" };
    await within(
      10_000,
      "a counter increment first sent to the hung node",
      assert.rejects(
        riak.updateCounter(location, 1n),
        (error: unknown) =>
          error instanceof ConnectionError && error.maybeApplied &&
          /not answering/.test(error.message),
      ),
    );
    assert.ok(hung.received.includes(MessageCode.DtUpdateReq));
    assert.equal(Number((await riak.fetchCounter(location)).value), 0, "not counted elsewhere");
  });
});

/** Pings `node` received so far. */
const pingsOf = (node: FakeNode) => node.received.filter((code) => code === MessageCode.PingReq);

/** A scripted node that answers every ping and every get (not found). */
function startAnsweringNode(): Promise<FakeNode> {
  return startFakeNode((code, _body, socket) => {
    if (code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
    else if (code === MessageCode.GetReq) socket.write(answer(MessageCode.GetResp));
  });
}

Deno.test("a hung node comes back into rotation only once a ping answers", async () => {
  let answering = false;
  const node = await startFakeNode((code, _body, socket) => {
    if (answering && code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
  });
  const other = await startAnsweringNode();
  const events: NodeStatus[] = [];
  const riak = testClient([node.address, other.address], {
    requestTimeoutMs: HUNG_REQUEST_TIMEOUT_MS,
    stallCheckAfterMs: 50,
    pingTimeoutMs: 100,
    maxAttempts: 1,
    onNodeStateChange: (status) => events.push(status),
  });
  try {
    const read = (key: string) => riak.get({ bucket: "b", key });
    await within(
      10_000,
      "a read sent to the hung node",
      assert.rejects(read("k"), (error: Error) => /not answering/.test(error.message)),
    );
    assert.equal(riak.cluster.nodes[0].state, "down");
    // out of rotation: requests go to the other node instead of waiting on it
    for (let i = 0; i < 3; i++) assert.equal((await read(`k${i}`)).found, false);
    assert.equal(node.received.filter((code) => code === MessageCode.GetReq).length, 1);
    answering = true;
    await eventually(() => riak.cluster.nodes[0].state === "up", "the node back up");
    assert.deepEqual(events.map((e) => [e.address, e.state]), [
      [node.address, "down"],
      [node.address, "up"],
    ]);
  } finally {
    await riak.close();
    await node.close();
    await other.close();
  }
});

Deno.test("the only node, busy: a request waits for its answer past an unanswered ping, the node stays in rotation", async () => {
  let release: (() => void) | undefined;
  // Busy: neither the get nor any ping is answered until released (a long listing, a
  // compaction, a stop-the-world pause of the server).
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.GetReq) release = () => socket.write(answer(MessageCode.GetResp));
  });
  const events: NodeStatus[] = [];
  const riak = testClient([node.address], {
    requestTimeoutMs: HUNG_REQUEST_TIMEOUT_MS,
    stallCheckAfterMs: 20,
    pingTimeoutMs: 50,
    onNodeStateChange: (status) => events.push(status),
  });
  try {
    const busy = riak.get({ bucket: "busy", key: "k" });
    busy.catch(() => {}); // given up early, it fails the test below, not the process
    // Pings go one at a time, none is answered: a second one means the first timed out.
    await eventually(() => pingsOf(node).length >= 2, "a ping timed out during the wait");
    assert.equal(riak.cluster.nodes[0].state, "up", "the last node stays in rotation");
    assert.ok(release !== undefined);
    release();
    assert.equal((await busy).found, false, "answered, not given up");
    assert.deepEqual(events, [], "never taken out of rotation");
    assert.equal(node.received.filter((code) => code === MessageCode.GetReq).length, 1);
  } finally {
    await riak.close();
    await node.close();
  }
});

Deno.test("the only node stays in rotation after requests time out in a row: the next one is sent, not failed at once", async () => {
  let answering = false;
  const node = await startFakeNode((code, _body, socket) => {
    if (answering && code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
  });
  const riak = testClient([node.address], {
    requestTimeoutMs: 100,
    stallCheckAfterMs: 0,
    maxAttempts: 1,
  });
  try {
    for (let i = 0; i < FAILURES_BEFORE_DOWN + 1; i++) {
      await assert.rejects(riak.ping(), TimeoutError);
    }
    assert.equal(riak.cluster.nodes[0].state, "up");
    answering = true;
    await riak.ping();
    assert.equal(pingsOf(node).length, FAILURES_BEFORE_DOWN + 2, "every request was sent");
  } finally {
    await riak.close();
    await node.close();
  }
});

Deno.test("the last node in rotation refusing: a node out only for not answering comes back as the last resort", async () => {
  let release: (() => void) | undefined;
  // Busy: pings unanswered, gets held until released (the first one never is).
  const busy = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.GetReq) release = () => socket.write(answer(MessageCode.GetResp));
  });
  const other = await startAnsweringNode();
  const events: NodeStatus[] = [];
  const riak = testClient([busy.address, other.address], {
    requestTimeoutMs: HUNG_REQUEST_TIMEOUT_MS,
    stallCheckAfterMs: 20,
    pingTimeoutMs: 50,
    onNodeStateChange: (status) => events.push(status),
  });
  try {
    const first = await within(
      10_000,
      "a read first sent to the busy node",
      riak.get({ bucket: "b", key: "k" }),
    );
    assert.equal(first.found, false, "answered by the other node");
    assert.deepEqual(riak.cluster.status().map((s) => s.state), ["down", "up"]);
    await other.close(); // its connections cut, new ones refused
    release = undefined;
    const second = riak.get({ bucket: "b", key: "k2" });
    second.catch(() => {}); // failed at once, it fails the test below, not the process
    await eventually(() => release !== undefined, "the read sent to the busy node");
    assert.deepEqual(riak.cluster.status().map((s) => [s.state, s.lastResort]), [
      ["up", true],
      ["down", false],
    ]);
    release!();
    assert.equal((await second).found, false, "answered by the busy node");
    assert.equal(riak.cluster.status()[0].lastResort, false, "it answered since");
    assert.deepEqual(events.map((e) => [e.address, e.state, e.lastResort]), [
      [busy.address, "down", false],
      [other.address, "down", false],
      [busy.address, "up", true],
    ]);
  } finally {
    await riak.close();
    await busy.close();
    await other.close();
  }
});

Deno.test("a slow request on a node that answers pings keeps waiting: slow is not hung", async () => {
  let held: (() => void) | undefined;
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
    else if (code === MessageCode.GetReq) held = () => socket.write(answer(MessageCode.GetResp));
  });
  const events: NodeStatus[] = [];
  const riak = testClient([node.address], {
    requestTimeoutMs: HUNG_REQUEST_TIMEOUT_MS,
    stallCheckAfterMs: 20,
    pingTimeoutMs: 5_000,
    onNodeStateChange: (status) => events.push(status),
  });
  try {
    const slow = riak.get({ bucket: "slow", key: "k" });
    // Pings one at a time: a second one means the first was answered while the get waited.
    await eventually(
      () => node.received.filter((code) => code === MessageCode.PingReq).length >= 2,
      "two pings during the wait",
    );
    assert.ok(held !== undefined);
    held();
    assert.equal((await slow).found, false);
    assert.equal(riak.cluster.nodes[0].state, "up");
    assert.deepEqual(events, [], "never taken out of rotation");
    assert.equal(node.received.filter((code) => code === MessageCode.GetReq).length, 1);
  } finally {
    await riak.close();
    await node.close();
  }
});

Deno.test("whenReachable pings a down node at once instead of waiting out its interval", async () => {
  // Background pings a minute apart: only whenReachable's own ping can bring the node back.
  await withServers(1, { healthCheckIntervalMs: 60_000, maxAttempts: 1 }, async (riak, [a]) => {
    await riak.ping();
    assert.equal(await riak.cluster.whenReachable(0), true, "up: at once");
    const stopping = a.faults.stopAccepting();
    a.faults.dropConnections();
    await stopping;
    // The first may fail on its cut connection; a refused connect takes the node down.
    for (let i = 0; i < 5 && riak.cluster.nodes[0].state === "up"; i++) {
      await assert.rejects(riak.ping(), ConnectionError);
    }
    assert.equal(riak.cluster.nodes[0].state, "down");
    // Why the node is down, named once, without the request of whoever found out.
    await assert.rejects(riak.ping(), (error: Error) => {
      const node = riak.cluster.nodes[0].address;
      return error.message.includes(`every Riak node is down (${node}: cannot connect`) &&
        !error.message.includes("Rpb");
    });
    assert.equal(await riak.cluster.whenReachable(200), false, "still refused: gives up in time");
    await a.faults.resumeAccepting();
    assert.equal(await riak.cluster.whenReachable(30_000), true);
    assert.equal(riak.cluster.nodes[0].state, "up");
    await riak.ping();
  });
});

Deno.test("every connection busy: requests queue, the queue is bounded and times out", async () => {
  await withServers(
    1,
    { maxConnections: 1, minConnections: 1, queueLimit: 1, queueTimeoutMs: 300 },
    async (riak, [server]) => {
      await riak.ping(); // the one connection is open
      server.faults.pause();
      const first = riak.ping();
      const second = riak.ping();
      await assert.rejects(riak.ping(), QueueFullError);
      await assert.rejects(
        second,
        (e: unknown) => e instanceof TimeoutError && e.phase === "queue",
      );
      server.faults.resume();
      await first;
      const [x, y] = await Promise.all([riak.ping(), riak.ping()]);
      assert.equal(x, y);
    },
  );
});

Deno.test("failover: a node dies during a stream of requests; every request completes, once", async () => {
  let dying: ReturnType<typeof dyingFront> | undefined;
  let died = false;
  await withSharedStore(
    2,
    { maxConnections: 4, maxAttempts: 6, selection: "round-robin" },
    async (riak, [_a, b]) => {
      const bucket = "failover";
      const total = 200;
      const outcomes: ({ ok: true } | { ok: false; error: unknown })[] = new Array(total);
      let started = 0;
      async function worker() {
        while (started < total) {
          const i = started++;
          // half-way, node A dies right after applying a put, before answering it
          if (i === total / 2) dying!.arm();
          try {
            if (i % 2 === 0) {
              // not idempotent: kvmulti would keep a duplicate as a sibling
              await riak.put({ type: "kvmulti", bucket, key: `k${i}` }, { value: bytes(`v${i}`) });
            } else {
              await riak.get({ type: "kvmulti", bucket, key: `k${i - 1}` });
            }
            outcomes[i] = { ok: true };
          } catch (error) {
            outcomes[i] = { ok: false, error };
          }
        }
      }
      await Promise.all(Array.from({ length: 8 }, worker));
      assert.ok(died, "node A died with a put applied and unanswered");
      assert.equal(riak.cluster.nodes[0].state, "down");

      for (let i = 0; i < total; i++) {
        const outcome = outcomes[i];
        assert.ok(
          outcome.ok,
          `request ${i} failed: ${String((outcome as { error: unknown }).error)}`,
        );
      }
      // every put stored exactly once: one sibling, its own value (the nodes share one store)
      const direct = new RiakClient({ nodes: `127.0.0.1:${b.port}`, maxAttempts: 1 });
      try {
        for (let i = 0; i < total; i += 2) {
          const got = await direct.get({ type: "kvmulti", bucket, key: `k${i}` });
          assert.deepEqual(got.siblings.map((s) => toText(s.value)), [`v${i}`], `put ${i}`);
        }
      } finally {
        await direct.close();
      }
    },
    (engine, index, nodes) => {
      if (index !== 0) return engine;
      dying = dyingFront(engine, () => {
        died = true;
        // refuses new connections and drops the open ones, requests in flight included
        void nodes[0].faults.stopAccepting();
        nodes[0].faults.dropConnections();
      });
      return dying.front;
    },
  );
});

Deno.test("least-busy selection avoids a node whose requests hang", async () => {
  await withServers(
    2,
    { selection: "least-busy", requestTimeoutMs: 5_000 },
    async (riak, [a, b]) => {
      await riak.ping();
      await riak.ping();
      a.faults.pause();
      b.faults.pause();
      const stuck = [riak.ping(), riak.ping()]; // one on each node
      await eventually(
        () => riak.cluster.nodes.every((node) => node.inUse === 1),
        "one request per node",
      );
      b.faults.resume();
      await stuck[1]; // on B (ties go to the first node, so the first stuck ping is on A)
      for (let i = 0; i < 5; i++) await riak.ping(); // A is busier: every ping goes to B
      assert.equal(riak.cluster.nodes[0].inUse, 1);
      a.faults.resume();
      await Promise.all(stuck);
    },
  );
});

for (const selection of ["least-busy", "round-robin"] as const) {
  Deno.test(`${selection}: a read tries every node before it tries one again, so two broken nodes of three never fail it`, async () => {
    // One node answers garbage (an oversized frame header), one cuts every answer in the
    // middle: both accept connections, so neither leaves rotation, and each failure is a
    // quick one. A retry that only avoided the node of the try before went back to the
    // first broken node on its third try.
    const garbage = await startFakeNode((_code, _body, socket) => {
      socket.write(encodeFrameHeader(MessageCode.GetResp, 1 << 30));
    });
    const cut = await startFakeNode((_code, _body, socket) => {
      socket.end(encodeFrameHeader(MessageCode.GetResp, 100));
    });
    const riak = await startTestRiak();
    const client = testClient([garbage.address, cut.address, riak.nodes[0]], {
      selection,
      maxAttempts: 3,
    });
    try {
      const bucket = `${riak.prefix}-broken-nodes`;
      const location = { type: "kvmulti", bucket, key: "k" };
      await client.put(location, { value: bytes("v") }, { idempotent: true });
      const reads = await Promise.allSettled(
        Array.from({ length: 12 }, () => client.get(location)),
      );
      for (const read of reads) {
        assert.equal(read.status, "fulfilled", String((read as PromiseRejectedResult).reason));
        assert.equal(toText(read.value.siblings[0].value), "v");
      }
      assert.ok(garbage.received.length > 0 && cut.received.length > 0, "both were tried");
    } finally {
      await client.close();
      await riak.close();
      await garbage.close();
      await cut.close();
    }
  });
}

Deno.test("a node that answers in another protocol leaves rotation at once, and its requests go to the others", async () => {
  const garbage = await startFakeNode((_code, _body, socket) => {
    socket.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
  });
  const riak = await startTestRiak();
  // Least-busy: ties go to the first node, so the first request goes to the broken one.
  const client = testClient([garbage.address, riak.nodes[0]], {
    selection: "least-busy",
    healthCheckIntervalMs: 60_000,
  });
  try {
    await client.ping();
    const [broken, good] = client.cluster.status();
    assert.equal(broken.state, "down");
    assert.match(broken.lastFailure ?? "", /exceeds the maximum/);
    assert.equal(good.state, "up");
    const sent = garbage.received.length;
    for (let i = 0; i < 5; i++) await client.ping();
    assert.equal(garbage.received.length, sent, "nothing more went to it");
  } finally {
    await client.close();
    await riak.close();
    await garbage.close();
  }
});

Deno.test("idle connections above the minimum expire", async () => {
  await withServers(
    1,
    { minConnections: 0, maxConnections: 4, idleTimeoutMs: 100 },
    async (riak) => {
      await Promise.all([riak.ping(), riak.ping(), riak.ping()]);
      const node = riak.cluster.nodes[0];
      assert.ok(node.openConnections >= 1);
      await eventually(() => node.openConnections === 0, "idle connections closed");
      await riak.ping();
    },
  );
});

Deno.test("many requests through a small pool: all complete, the pool never exceeds its maximum", async () => {
  await withServers(1, { maxConnections: 2, queueLimit: 100 }, async (riak, [server]) => {
    server.faults.setLatency(2);
    const node = riak.cluster.nodes[0];
    let most = 0;
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        () => riak.ping().then(() => (most = Math.max(most, node.openConnections))),
      ),
    );
    assert.equal(results.length, 50);
    assert.ok(most <= 2, `${most} connections open`);
    assert.equal(node.inUse, 0);
  });
});

/** Writes whose late answer is awaited: a put, and a set's add (a late add wins over a remove). */
const LATE_WRITES = [
  {
    what: "a put",
    request: MessageCode.PutReq,
    response: MessageCode.PutResp,
    write: (riak: RiakClient, where: { bucket: string; key: string }) =>
      riak.put(where, { value: bytes("v") }, { ifNoneMatch: true }),
  },
  {
    what: "a set's add",
    request: MessageCode.DtUpdateReq,
    response: MessageCode.DtUpdateResp,
    write: (riak: RiakClient, where: { bucket: string; key: string }) =>
      riak.updateSet({ type: "sets", ...where }, { add: [bytes("m")] }),
  },
];

for (const late of LATE_WRITES) {
  Deno.test(`${late.what} that timed out and was stored by a retry still awaits its late answer: lateWritesSettled waits for it`, async () => {
    // The first write of k is answered only when the test says (its node resumed late); the
    // check after its timeout (a put's) finds nothing, and the retry is answered at once.
    let answerFirst: (() => void) | undefined;
    let writes = 0;
    const node = await startFakeNode((code, _body, socket) => {
      if (code === MessageCode.PingReq) socket.write(answer(MessageCode.PingResp));
      if (code === MessageCode.GetReq) socket.write(answer(MessageCode.GetResp));
      if (code !== late.request) return;
      if (++writes === 1) answerFirst = () => socket.write(answer(late.response));
      else socket.write(answer(late.response));
    });
    const riak = testClient([node.address], { requestTimeoutMs: 100, stallCheckAfterMs: 0 });
    const where = { bucket: "b", key: "k" };
    const at = late.request === MessageCode.DtUpdateReq ? { type: "sets", ...where } : where;
    try {
      await late.write(riak, where);
      assert.equal(writes, 2, "stored by the retry");
      assert.equal(riak.awaitsLateWrites(at), true);
      assert.equal(riak.awaitsLateWrites({ ...at, key: "other" }), false);
      let settled = false;
      const waited = riak.lateWritesSettled(at).then(() => settled = true);
      await riak.ping();
      assert.equal(settled, false, "the first write may still be applied");
      answerFirst!();
      await waited;
      assert.equal(riak.awaitsLateWrites(at), false);
      await riak.lateWritesSettled(at); // nothing left to wait for
    } finally {
      await riak.close();
      await node.close();
    }
  });
}

Deno.test("closing the client ends the waits for late answers", async () => {
  const node = await startFakeNode((code, _body, socket) => {
    if (code === MessageCode.GetReq) socket.write(answer(MessageCode.GetResp));
  });
  const riak = testClient([node.address], {
    requestTimeoutMs: 100,
    stallCheckAfterMs: 0,
    maxAttempts: 1,
  });
  const where = { bucket: "b", key: "k" };
  try {
    await assert.rejects(riak.put(where, { value: bytes("v") }), TimeoutError);
    assert.equal(riak.awaitsLateWrites(where), true);
    const waited = riak.lateWritesSettled(where);
    await riak.close();
    await waited;
    assert.equal(riak.awaitsLateWrites(where), false);
  } finally {
    await riak.close();
    await node.close();
  }
});
