/**
 * Entry point of the `riakfs` executable (bundled by build/build.ts into dist/riakfs).
 *
 * @module
 */
import { runCli } from "./program.ts";
import { exactArguments } from "./raw_args.ts";

runCli(exactArguments(process.argv.slice(2))).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`riakfs: ${message}\n`);
    process.exitCode = 1;
  },
);
