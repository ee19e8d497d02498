/**
 * riakfs as a library: the pieces an embedder uses to mount, migrate and inspect.
 *
 * The executable's entry point is `src/cli/main.ts`; this module re-exports the public
 * API of each layer as the layers land.
 *
 * @example
 * ```ts
 * import { runCli } from "./mod.ts";
 * const code = await runCli(["--version"]);
 * ```
 *
 * @module
 */
export { buildProgram, EXIT_USAGE, runCli, VERSION } from "./src/cli/program.ts";
