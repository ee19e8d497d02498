/**
 * Peak RSS of the tree walker over a tree of empty files (default 1,000,000: 1,000
 * directories of 1,000), created once under /tmp and reused by later runs.
 *
 * Run: `node bench/prewarm/walk_rss.ts [files]` (Node 24 strips the types; it is the runtime
 * of the executable). Prints entries walked, seconds and the peak RSS (getrusage maxrss).
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { walkTree } from "../../src/migration/walk.ts";

const files = Number(process.argv[2] ?? 1_000_000);
const root = `/tmp/riakfs-walk-bench-${files}`;
if (!existsSync(`${root}/.complete`)) {
  const perDirectory = 1000;
  for (let d = 0; d * perDirectory < files; d++) {
    const dir = `${root}/d${String(d).padStart(4, "0")}`;
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDirectory && d * perDirectory + f < files; f++) {
      writeFileSync(`${dir}/f${f}`, "");
    }
  }
  writeFileSync(`${root}/.complete`, "");
}
const baseline = process.resourceUsage().maxRSS;
const started = performance.now();
let entries = 0;
for await (const _entry of walkTree(root)) entries++;
const seconds = (performance.now() - started) / 1000;
console.log(
  `walked ${entries} entries in ${seconds.toFixed(1)} s; peak RSS ${
    (process.resourceUsage().maxRSS / 1024).toFixed(0)
  } MB (at start ${(baseline / 1024).toFixed(0)} MB)`,
);
