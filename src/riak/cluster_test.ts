// Cluster behaviour under faults: retries, idempotency, node health, the wait queue and
// failover. These need fault injection, so they always use embedded servers.
import assert from "node:assert/strict";
import { startTestRiak, type TestRiak } from "../riak-server/testing.ts";
import { RiakClient } from "./client.ts";
import type { ClusterOptions } from "./cluster.ts";
import { toText } from "./commands/values.ts";
import { ConnectionError, QueueFullError, RiakError, TimeoutError } from "./errors.ts";
import { parseNodeList } from "./node.ts";

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

async function withServers(
  count: number,
  options: Partial<ClusterOptions>,
  body: (riak: RiakClient, servers: TestRiak[]) => Promise<void>,
): Promise<void> {
  const servers: TestRiak[] = [];
  let riak: RiakClient | undefined;
  try {
    for (let i = 0; i < count; i++) servers.push(await startTestRiak({ embedded: true }));
    riak = new RiakClient({
      nodes: servers.flatMap((s) => s.nodes),
      random: seeded(42),
      retryBaseDelayMs: 5,
      healthCheckIntervalMs: 50,
      ...options,
    });
    await body(riak, servers);
  } finally {
    await riak?.close();
    for (const server of servers) await server.close();
  }
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
  assert.throws(() => parseNodeList(""), TypeError);
});

Deno.test("an overload answer is retried; other Riak errors are not", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const where = { bucket: `${server.prefix}-o`, key: "k" };
    server.server!.faults.respondWithError("overload", 0, 2);
    assert.equal((await riak.get(where)).found, false);
    server.server!.faults.respondWithError("timeout"); // Riak's own timeout: a get may repeat
    assert.equal((await riak.get(where)).found, false);
    server.server!.faults.respondWithError("timeout"); // ... a blind put may not
    await assert.rejects(
      riak.put(where, { value: bytes("v") }),
      (e: unknown) => e instanceof RiakError,
    );
    server.server!.faults.respondWithError("no_type");
    await assert.rejects(
      riak.get(where),
      (e: unknown) => e instanceof RiakError && e.errmsg === "no_type",
    );
    assert.equal((await riak.get(where)).found, false);
  });
});

Deno.test("a dropped request is retried when idempotent, surfaced with maybeApplied when not", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const where = { type: "kvmulti", bucket: `${server.prefix}-d`, key: "k" };
    server.server!.faults.closeAfterRequests(0);
    assert.equal((await riak.get(where)).found, false);

    server.server!.faults.closeAfterRequests(0);
    await assert.rejects(
      riak.put(where, { value: bytes("once") }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    // the fault dropped it before processing: nothing stored, and nothing was sent twice
    assert.equal((await riak.get(where)).found, false);

    // applied, then the answer is cut: repeating it is harmless only where the last write wins
    const lww = { type: "lww", bucket: where.bucket, key: "k" };
    server.server!.faults.closeMidFrame();
    await riak.put(lww, { value: bytes("lww") }, { idempotent: true });
    assert.equal((await riak.get(lww)).siblings.length, 1);
  });
});

Deno.test("an update or put without a key is not repeated: a repeat would create a second object", async () => {
  await withServers(1, {}, async (riak, [server]) => {
    const bucket = `${server.prefix}-generated`;
    // applied, then the answer is cut: the key Riak generated is lost with the answer
    server.server!.faults.closeMidFrame();
    await assert.rejects(
      riak.updateSet({ type: "sets", bucket }, { add: ["member"] }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    server.server!.faults.closeMidFrame();
    await assert.rejects(
      riak.updateMap({ type: "maps", bucket }, {
        updates: [{ field: { name: bytes("f"), type: "FLAG" }, flag_op: "ENABLE" }],
      }),
      (e: unknown) => e instanceof ConnectionError && e.maybeApplied,
    );
    // the same for a put without a key, even one declared idempotent
    server.server!.faults.closeMidFrame();
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
    server.server!.faults.closeMidFrame();
    await riak.updateSet({ type: "sets", bucket, key: "named" }, { add: ["member"] });
  });
});

Deno.test("a request that gets no answer times out, and the next one works", async () => {
  await withServers(1, { requestTimeoutMs: 200, maxAttempts: 1 }, async (riak, [server]) => {
    server.server!.faults.pause();
    const started = Date.now();
    await assert.rejects(
      riak.ping(),
      (e: unknown) => e instanceof TimeoutError && e.phase === "request",
    );
    assert.ok(Date.now() - started < 5_000);
    server.server!.faults.resume();
    await riak.ping();
  });
});

Deno.test("a node that refuses connections goes down, traffic moves, it comes back after pings", async () => {
  await withServers(2, { maxAttempts: 3 }, async (riak, [a, b]) => {
    const nodeA = riak.cluster.nodes[0];
    const stopping = a.server!.faults.stopAccepting();
    a.server!.faults.dropConnections();
    await stopping;
    for (let i = 0; i < 10; i++) await riak.ping();
    assert.equal(nodeA.state, "down");
    assert.equal(riak.cluster.nodes[1].state, "up");
    assert.deepEqual(riak.cluster.status().map((s) => s.state), ["down", "up"]);
    assert.match(riak.cluster.status()[0].lastFailure ?? "", /ECONNREFUSED|connect/);
    await a.server!.faults.resumeAccepting();
    await eventually(() => nodeA.state === "up", "node A back up");
    assert.ok(b.nodes.length === 1);
  });
});

Deno.test("every connection busy: requests queue, the queue is bounded and times out", async () => {
  await withServers(
    1,
    { maxConnections: 1, minConnections: 1, queueLimit: 1, queueTimeoutMs: 300 },
    async (riak, [server]) => {
      await riak.ping(); // the one connection is open
      server.server!.faults.pause();
      const first = riak.ping();
      const second = riak.ping();
      await assert.rejects(riak.ping(), QueueFullError);
      await assert.rejects(
        second,
        (e: unknown) => e instanceof TimeoutError && e.phase === "queue",
      );
      server.server!.faults.resume();
      await first;
      const [x, y] = await Promise.all([riak.ping(), riak.ping()]);
      assert.equal(x, y);
    },
  );
});

Deno.test("failover: stop one of two nodes during a stream of requests; nothing lost or duplicated", async () => {
  await withServers(
    2,
    { maxConnections: 4, maxAttempts: 6, selection: "round-robin" },
    async (riak, servers) => {
      const bucket = `${servers[0].prefix}-failover`;
      const total = 200;
      const outcomes: ({ ok: true } | { ok: false; error: unknown })[] = new Array(total);
      let started = 0;
      let stopped = false;
      async function worker() {
        while (started < total) {
          const i = started++;
          if (i === total / 2 && !stopped) {
            stopped = true;
            // node A dies: it refuses new connections and drops the open ones, requests in flight included
            await servers[0].server!.faults.stopAccepting();
            servers[0].server!.faults.dropConnections();
          }
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
      assert.equal(riak.cluster.nodes[0].state, "down");

      // idempotent requests all completed; a failed put is only one that may have been applied
      for (let i = 0; i < total; i++) {
        const outcome = outcomes[i];
        if (i % 2 === 1) {
          assert.ok(
            outcome.ok,
            `get ${i} failed: ${String((outcome as { error: unknown }).error)}`,
          );
        } else if (!outcome.ok) {
          assert.ok(
            outcome.error instanceof ConnectionError && outcome.error.maybeApplied,
            String(outcome.error),
          );
        }
      }
      const failedPuts = outcomes.filter((o, i) => i % 2 === 0 && !o.ok).length;
      assert.ok(failedPuts <= 8, `${failedPuts} puts failed: at most the ones in flight on A`);

      // count every stored copy on both servers: one per acknowledged put, never two
      await servers[0].server!.faults.resumeAccepting();
      const direct = servers.map((s) => new RiakClient({ nodes: s.nodes, maxAttempts: 1 }));
      try {
        for (let i = 0; i < total; i += 2) {
          let copies = 0;
          for (const client of direct) {
            const got = await client.get({ type: "kvmulti", bucket, key: `k${i}` });
            copies += got.siblings.length;
            for (const sibling of got.siblings) assert.equal(toText(sibling.value), `v${i}`);
          }
          if (outcomes[i].ok) assert.equal(copies, 1, `put ${i}: ${copies} copies`);
          else assert.ok(copies <= 1, `failed put ${i}: ${copies} copies`);
        }
      } finally {
        for (const client of direct) await client.close();
      }
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
      a.server!.faults.pause();
      b.server!.faults.pause();
      const stuck = [riak.ping(), riak.ping()]; // one on each node
      await eventually(
        () => riak.cluster.nodes.every((node) => node.inUse === 1),
        "one request per node",
      );
      b.server!.faults.resume();
      await stuck[1]; // on B (ties go to the first node, so the first stuck ping is on A)
      for (let i = 0; i < 5; i++) await riak.ping(); // A is busier: every ping goes to B
      assert.equal(riak.cluster.nodes[0].inUse, 1);
      a.server!.faults.resume();
      await Promise.all(stuck);
    },
  );
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
    server.server!.faults.setLatency(2);
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
