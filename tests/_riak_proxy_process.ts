/**
 * The holding proxy of tests/_riak_proxy.ts in a process of its own, in front of the Riak
 * node given as argument: a test whose call on a mount blocks its event loop (an open that
 * looks the file up in Riak) must not hold up the requests the mount sends meanwhile. Prints
 * its address on one line, then obeys one command per line of stdin, answering `ok` to each:
 * `hold-put ID BUCKET KEY` holds the first put of that key, `hold-set-add ID BUCKET MEMBER`
 * the first set update in that bucket adding that member, `release ID` lets it go. It prints
 * `reached ID` once the request arrived and `answered ID` once Riak answered it. It ends with
 * stdin.
 *
 * Run: `deno run -A tests/_riak_proxy_process.ts HOST:PORT`
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { type HeldRequest, startRiakProxy } from "./_riak_proxy.ts";

const proxy = await startRiakProxy(process.argv[2]);
process.stdout.write(`${proxy.node}\n`);
const held = new Map<string, HeldRequest>();
for await (const command of createInterface({ input: process.stdin })) {
  const [verb, id, bucket, key] = command.split(" ");
  if ((verb === "hold-put" || verb === "hold-set-add") && key !== undefined) {
    const request = verb === "hold-put"
      ? proxy.holdPut(bucket, key)
      : proxy.holdSetAdd(bucket, key);
    held.set(id, request);
    void request.reached.then(() => process.stdout.write(`reached ${id}\n`));
    void request.answered.then(() => process.stdout.write(`answered ${id}\n`));
  } else if (verb === "release" && held.has(id)) {
    held.get(id)!.release();
  } else {
    process.stderr.write(`unknown command: ${command}\n`);
    continue;
  }
  process.stdout.write("ok\n");
}
for (const request of held.values()) request.release();
await proxy.close();
