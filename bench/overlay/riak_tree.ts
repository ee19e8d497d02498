/**
 * Prints what Riak holds in a namespace as one JSON object by path: `{type, size, sha256}`
 * of each file (the sha256 of the bytes read back), a symlink's target, and directories.
 *
 *     deno run -A bench/overlay/riak_tree.ts 127.0.0.1:8087 BUCKET
 *
 * @module
 */
import { createHash } from "node:crypto";
import { openRiakStoreClient } from "../../src/store/riak_adapter.ts";
import { Store } from "../../src/store/store.ts";
const [nodes, bucket] = Deno.args;
const opened = openRiakStoreClient({ nodes: nodes.split(",") });
const store = new Store(opened.client, { namespace: { bucket } });
const out: Record<string, unknown> = {};
try {
  for await (const entry of store.walk("")) {
    const path = "/" + entry.path.toString();
    if (entry.type === "file") {
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of store.readRange(entry.path)) {
        hash.update(chunk);
        size += chunk.length;
      }
      out[path] = { type: "file", size, sha256: hash.digest("hex") };
    } else if (entry.type === "symlink") {
      out[path] = { type: "symlink", target: (await store.readlink(entry.path)).toString() };
    } else out[path] = { type: entry.type };
  }
} finally {
  await opened.close();
}
console.log(JSON.stringify(out));
