/**
 * What `riakfs demo` does (src/cli/demo.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fsnameFor, type ServedMount, serveFileSystem } from "../fuse/mod.ts";
import { Logger } from "../overlay/log.ts";
import { overlaySettingsFromOptions } from "../overlay/mount_options.ts";
import { describeMode } from "../overlay/modes.ts";
import { type OverlayRuntime, startOverlay } from "../overlay/runtime.ts";
import { type EmbeddedRiakServer, startEmbeddedRiak } from "../riak-server/embedded.ts";
import { openRiakStoreClient } from "../store/riak_adapter.ts";
import { Store } from "../store/store.ts";
import type { DemoFlags } from "./demo.ts";

/** The sample legacy tree: path -> size in bytes (content is deterministic). */
const SAMPLE_TREE: Record<string, number> = {
  "photos/2019/beach.jpg": 180_000,
  "photos/2019/hills.jpg": 95_000,
  "photos/2020/city.jpg": 2_500_000,
  "docs/readme.txt": 1_200,
  "docs/invoice-0042.pdf": 64_000,
};

/** What the demo reads and writes through the mount. */
const READ_THROUGH = ["photos/2019/beach.jpg", "photos/2020/city.jpg", "docs/readme.txt"];
const WRITTEN = "docs/notes.txt";

/** How long the demo waits for background copies and uploads. */
const SETTLE_TIMEOUT_MS = 30_000;

/** Runs the demo, printing through `say`; resolves with the exit code. */
export async function runDemo(flags: DemoFlags, say: (line: string) => void): Promise<number> {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    process.stderr.write("riakfs: demo mounts a FUSE filesystem and needs root\n");
    return 1;
  }
  if ("Deno" in globalThis) {
    // Deno serves FUSE from its blocking pool, which this process's own reads of the
    // mount would exhaust; the built binary (Node) reads /dev/fuse on worker threads.
    process.stderr.write("riakfs: demo reads through its own mount: run the built binary\n");
    return 1;
  }
  const directory = await fsp.mkdtemp(join(tmpdir(), "riakfs-demo-"));
  const source = join(directory, "legacy");
  const mountpoint = join(directory, "mnt");
  let server: EmbeddedRiakServer | undefined;
  let closeClient: (() => Promise<void>) | undefined;
  let runtime: OverlayRuntime | undefined;
  let served: ServedMount | undefined;
  try {
    await fsp.mkdir(mountpoint);
    const files = await createSampleTree(source);
    say(`1. a legacy tree of ${files} files in ${source}`);

    server = await startEmbeddedRiak({ listen: "127.0.0.1:0", memory: true });
    const opened = openRiakStoreClient({ nodes: [server.address] });
    closeClient = opened.close;
    const store = new Store(opened.client, { namespace: { bucket: "demo" } });
    say(`2. an embedded Riak server on ${server.address} (in memory)`);

    const settings = overlaySettingsFromOptions({
      preset: "migrate",
      spool: join(directory, "spool"),
      runDir: join(directory, "run"),
    });
    runtime = await startOverlay({
      settings,
      source,
      mountpoint,
      store,
      riakNodes: [server.address],
      logger: new Logger({ level: "warn" }),
    });
    served = await serveFileSystem(runtime.fileSystem, {
      mountpoint,
      fsname: fsnameFor(source),
      subtype: "riakfs",
      defaultPermissions: false, // only root can use the mount (no allow_other)
    });
    say(`3. mounted at ${mountpoint} in migrate mode (${describeMode(settings.mode)})`);

    for (const path of READ_THROUGH) {
      const bytes = await fsp.readFile(join(mountpoint, path));
      say(`4. read  ${path} through the mount: ${bytes.length} bytes, sha256 ${short(bytes)}`);
    }
    const note = Buffer.from(`written through riakfs at ${new Date().toISOString()}\n`);
    await fsp.writeFile(join(mountpoint, WRITTEN), note);
    say(`5. wrote ${WRITTEN} through the mount (${note.length} bytes)`);

    const pending = await runtime.settle(SETTLE_TIMEOUT_MS);
    say(`6. what moved into Riak${pending > 0 ? ` (${pending} uploads still pending)` : ""}:`);
    for (const line of await describeMoves(store, source, [...Object.keys(SAMPLE_TREE), WRITTEN])) {
      say(`   ${line}`);
    }
    const counters = runtime.metrics.snapshot();
    say(
      `   ${counters.copyOnRead.copied} copied on read, ${counters.uploads.uploaded} journaled ` +
        `changes sent (files written through the mount, their directories' times); files never ` +
        `read stay local until read or pre-warmed (riakfs prewarm)`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`riakfs: demo failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    if (served) {
      await served.stop();
      await served.finished.catch(() => {});
    }
    await runtime?.stop(SETTLE_TIMEOUT_MS);
    await closeClient?.();
    await server?.close();
    if (flags.keep) say(`7. unmounted; the demo directory stays: ${directory}`);
    else {
      await fsp.rm(directory, { recursive: true, force: true });
      say("7. unmounted, stopped the server, removed the demo directory");
    }
  }
}

/** Writes the sample tree with deterministic content; returns the number of files. */
async function createSampleTree(source: string): Promise<number> {
  let seed = 0;
  for (const [path, size] of Object.entries(SAMPLE_TREE)) {
    const file = join(source, path);
    await fsp.mkdir(join(file, ".."), { recursive: true });
    await fsp.writeFile(file, sampleBytes(seed++, size));
    // Old files, as on a legacy disk: outside the racy window of a fresh write.
    const old = new Date(Date.UTC(2019, 5, 1 + seed));
    await fsp.utimes(file, old, old);
  }
  return Object.keys(SAMPLE_TREE).length;
}

function sampleBytes(seed: number, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  let state = seed * 2654435761 + 1;
  for (let index = 0; index < size; index++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

/** One line per path: where it is now, local and in Riak. */
async function describeMoves(store: Store, source: string, paths: string[]): Promise<string[]> {
  const width = Math.max(...paths.map((path) => path.length));
  const lines = [`${"path".padEnd(width)}  local  riak`];
  for (const path of paths) {
    const local = await fsp.stat(join(source, path)).then(() => true, () => false);
    const remote = await store.tryStat(path);
    lines.push(
      `${path.padEnd(width)}  ${(local ? "yes" : "-").padEnd(5)}  ${
        remote ? `yes (${remote.size} bytes, sha256 ${remote.sha256.slice(0, 12)})` : "-"
      }`,
    );
  }
  return lines;
}

function short(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 12);
}
