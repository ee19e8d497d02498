import assert from "node:assert/strict";
import { answer, startFakeNode } from "../riak/_fake_node.ts";
import { MessageCode, RiakClient } from "../riak/mod.ts";
import { startTestRiak } from "../riak-server/mod.ts";
import {
  mountRiakChecks,
  pingNode,
  riakAnswersAgain,
  type RiakSettings,
  riakSettingsFromOptions,
} from "./riak-session.ts";

Deno.test("riakAnswersAgain: once it says Riak is back, the mount's own client reaches it at once", async () => {
  const riak = await startTestRiak();
  const settings: RiakSettings = {
    nodes: riak.nodes,
    connectTimeoutMs: 2_000,
    requestTimeoutMs: 2_000,
    stallCheckAfterMs: 1_000,
    pingTimeoutMs: 2_000,
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

Deno.test("a mount's checks whether Riak answers wait --ping-timeout for each ping", async () => {
  const answerAfterMs = 300;
  // A node that answers pings late, as a loaded one does.
  const node = await startFakeNode((code, _body, socket) => {
    if (code !== MessageCode.PingReq) return;
    setTimeout(() => socket.write(answer(MessageCode.PingResp)), answerAfterMs);
  });
  const settings = (pingTimeoutMs: number): RiakSettings => ({
    nodes: [node.address],
    connectTimeoutMs: 2_000,
    requestTimeoutMs: 10_000,
    stallCheckAfterMs: 0,
    pingTimeoutMs,
  });
  const client = new RiakClient({ nodes: [node.address], stallCheckAfterMs: 0 });
  try {
    const impatient = mountRiakChecks(settings(answerAfterMs / 3), client);
    assert.equal(await impatient.riakAnswers(), false, "its pings gave up before the answer");
    assert.match((await impatient.pingRiak())[0].error ?? "", /timed out after 100 ms/);
    const patient = mountRiakChecks(settings(answerAfterMs * 10), client);
    assert.equal(await patient.riakAnswers(), true);
    assert.ok((await patient.pingRiak())[0].ms !== undefined);
  } finally {
    await client.close();
    await node.close();
  }
});

Deno.test("a config file's relative paths are taken from its own directory, not the working one", () => {
  const directory = Deno.makeTempDirSync({ prefix: "riakfs-config-" });
  try {
    const config = `${directory}/cfgtls.json`;
    Deno.writeTextFileSync(config, JSON.stringify({ tlsCa: "cert.pem" }));
    assert.throws(
      () => riakSettingsFromOptions({ config }),
      (error: Error) => error.message.startsWith(`--tls-ca ${directory}/cert.pem: ENOENT`),
    );
  } finally {
    Deno.removeSync(directory, { recursive: true });
  }
});
