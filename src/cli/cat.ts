/**
 * `riakfs cat PATH`: streams a file from Riak to stdout, verifying every chunk's sha256;
 * a mismatch ends the output and the command with a non-zero exit.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Command } from "commander";
import { displayPath, normalizePath } from "../store/path.ts";
import { addRiakOptions, runWithStore } from "./riak-options.ts";

/** Installs `riakfs cat`. */
export function installCat(program: Command): void {
  const command = program.command("cat")
    .description("write a file from Riak to stdout, verifying its checksums")
    .argument("<path>", "file relative to the migrated root")
    .option("--json", "print {path, size, sha256, base64} instead of the raw bytes");
  addRiakOptions(command).action((path: string, opts: Record<string, unknown>) =>
    runWithStore(command, opts, async (store, out) => {
      const p = normalizePath(path);
      if (opts.json) {
        const content = await store.readFile(p);
        const sha256 = createHash("sha256").update(content).digest("hex");
        await out(
          JSON.stringify({
            path: displayPath(p),
            size: content.length,
            sha256,
            base64: content.toString("base64"),
          }) + "\n",
        );
        return;
      }
      for await (const part of store.readRange(p)) await out(Buffer.from(part));
    })
  );
}
