/**
 * The embedded Riak server in a process of its own, every answer delayed as over a network:
 * benchmarks that must measure round trips, not the CPU a server in their own process would
 * take from them, run it as their Riak. Prints `listening on HOST:PORT` once it accepts
 * connections and runs until SIGTERM or SIGINT.
 *
 * Run: `deno run -A bench/riak-server/latency_server.ts [latencyMs] [host:port]` (default 2 ms,
 * an ephemeral port of 127.0.0.1; a port of one's own when the machine is shared).
 */
import process from "node:process";
import { startEmbeddedRiak } from "../../src/riak-server/mod.ts";

const latencyMs = Number(Deno.args[0] ?? 2);
const listen = Deno.args[1] ?? "127.0.0.1:0";
const server = await startEmbeddedRiak({ listen, memory: true });
server.faults.setLatency(latencyMs);
console.log(`listening on ${server.address}`);
await new Promise<void>((resolve) => {
  process.once("SIGTERM", resolve);
  process.once("SIGINT", resolve);
});
await server.close();
