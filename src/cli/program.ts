/**
 * The riakfs command line: one commander program with a subcommand per job.
 *
 * Usage errors (unknown command, unknown or malformed flag, missing argument)
 * print one line naming the problem plus a usage hint, and exit with
 * {@link EXIT_USAGE}.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import pkg from "../../package.json" with { type: "json" };

/** Exit code for a usage error: bad command, flag or argument. */
export const EXIT_USAGE = 2;

/** The riakfs version, taken from package.json at build time. */
export const VERSION: string = pkg.version;

/** A subcommand registers itself on the root program. */
export type CommandInstaller = (program: Command) => void;

/** The subcommands, in the order `--help` lists them. Each lives in its own module. */
const installers: CommandInstaller[] = [];

/**
 * Builds the root program with every working subcommand attached.
 *
 * @example
 * ```ts
 * const code = await buildProgram().parseAsync(["node", "riakfs", "--version"]);
 * ```
 */
export function buildProgram(): Command {
  const program = new Command("riakfs")
    .description(
      "Mount a FUSE overlay over a legacy directory and migrate its files into Riak KV.",
    )
    .version(VERSION, "-V, --version", "print the riakfs version")
    .helpOption("-h, --help", "show help for a command")
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false });
  for (const install of installers) install(program);
  applyUsageErrorStyle(program);
  return program;
}

/** Every command (and its subcommands) exits instead of calling process.exit, and prints a hint. */
function applyUsageErrorStyle(command: Command): void {
  command.exitOverride();
  command.showHelpAfterError(`(run '${fullName(command)} --help' for usage)`);
  command.configureOutput({
    outputError: (text, write) => write(text.replace(/^error: /, "riakfs: ")),
  });
  for (const sub of command.commands) applyUsageErrorStyle(sub);
}

function fullName(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * Runs the program on `argv` (without the node/executable prefix) and returns
 * the process exit code instead of exiting, so callers can unmount or flush first.
 */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    process.stderr.write(`riakfs: no command given\n(run 'riakfs --help' for usage)\n`);
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
        error.code === "commander.help"
      ) return 0;
      return EXIT_USAGE;
    }
    throw error;
  }
}
