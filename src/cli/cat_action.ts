/**
 * What `riakfs cat` does (src/cli/cat.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Command } from "commander";
import { displayPath, normalizePath } from "../store/path.ts";
import { storePathArgument } from "./raw_args.ts";
import { WrongTypeError } from "../store/errors.ts";
import { runWithStore } from "./riak-session.ts";

/** Writes the file at `path` from Riak to stdout (raw, or as JSON with `--json`). */
export function catFile(
  command: Command,
  path: string,
  opts: Record<string, unknown>,
): Promise<void> {
  return runWithStore(command, opts, async (store, out) => {
    const { path: argument, directory } = storePathArgument(path);
    const p = normalizePath(argument);
    // A file never answers to `name/`; the read below refuses a directory itself.
    if (directory && (await store.stat(p)).type !== "directory") {
      throw new WrongTypeError("ENOTDIR", displayPath(p));
    }
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
  });
}
