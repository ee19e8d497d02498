import assert from "node:assert/strict";
import { RiakClient } from "../riak/mod.ts";
import { startTestRiak } from "../riak-server/mod.ts";
import { pingNode, riakAnswersAgain, type RiakSettings } from "./riak-session.ts";

Deno.test("riakAnswersAgain: once it says Riak is back, the mount's own client reaches it at once", async () => {
  const riak = await startTestRiak();
  const settings: RiakSettings = {
    nodes: riak.nodes,
    connectTimeoutMs: 2_000,
    requestTimeoutMs: 2_000,
  };
  // The mount's client: it pings a node it took out of rotation only now and then (every
  // second by default; here not within the test), as a client does between two of its pings.
  const client = new RiakClient({
    nodes: riak.nodes,
    connectTimeoutMs: 2_000,
    requestTimeoutMs: 2_000,
    healthCheckIntervalMs: 3_600_000,
  });
  const pings = () => Promise.all(riak.nodes.map((node) => pingNode(settings, node)));
  try {
    await client.ping();
    // The node goes away: the client's next request takes it out of rotation.
    await riak.faults.stopAccepting();
    riak.faults.dropConnections();
    await assert.rejects(client.ping());
    assert.equal(await riakAnswersAgain(pings, client, 2_000), false);
    // It is back: a ping on a connection of its own answers at once.
    await riak.faults.resumeAccepting();
    assert.equal(await riakAnswersAgain(pings, client, 2_000), true);
    await client.ping(); // Not "every Riak node is down".
  } finally {
    await client.close();
    await riak.close();
  }
});
