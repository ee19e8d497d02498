/**
 * A fault proxy (src/riak-server/fault_proxy.ts) in front of the Riak nodes given as
 * arguments, in a process of its own: a test blocked in a synchronous call on a mount must
 * not hold up the requests that mount sends to Riak, as a proxy on the test's own event loop
 * would. Prints its addresses on one line (comma-separated), then obeys one command per line
 * of stdin, answering `ok` to each: `stop` refuses new connections and drops the open ones,
 * `restart` accepts again, `latency MS` delays every answer by MS milliseconds from then on
 * (a node across a network; 0 ends it). A pause is the process's own SIGSTOP; it ends with
 * stdin.
 *
 * Run: `deno run -A tests/_fault_proxy_process.ts HOST:PORT...`
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { startFaultProxy } from "../src/riak-server/fault_proxy.ts";

const proxy = await startFaultProxy(process.argv.slice(2));
process.stdout.write(`${proxy.addresses.join(",")}\n`);
for await (const command of createInterface({ input: process.stdin })) {
  if (command === "stop") {
    await proxy.faults.stopAccepting();
    proxy.faults.dropConnections();
  } else if (command === "restart") {
    await proxy.faults.resumeAccepting();
  } else if (/^latency \d+$/.test(command)) {
    proxy.faults.setLatency(Number(command.slice("latency ".length)));
  } else {
    process.stderr.write(`unknown command: ${command}\n`);
    continue;
  }
  process.stdout.write("ok\n");
}
await proxy.close();
