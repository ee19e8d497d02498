/**
 * The riakfs command line: one commander program with a subcommand per job.
 *
 * Usage errors (unknown command, unknown or malformed flag, missing argument)
 * print one line naming the problem plus a usage hint, and exit with
 * {@link EXIT_USAGE}.
 *
 * Every start evaluates every command's definition (`src/cli/<name>.ts`: description,
 * arguments, options, checks of their values), so a definition imports only what its help
 * shows (defaults, choices); what a command does lives in `src/cli/<name>_action.ts`,
 * loaded with `import()` by its action when it runs. lazy_loading_test.ts keeps it so.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import pkg from "../../package.json" with { type: "json" };
import { installMount } from "./mount.ts";
import { installUmount } from "./umount.ts";
import { installServeRiak } from "./serve-riak.ts";
import { installLs } from "./ls.ts";
import { installStat } from "./stat.ts";
import { installCat } from "./cat.ts";
import { installDoctor } from "./doctor.ts";
import { installGc } from "./gc.ts";
import { installPrewarm } from "./prewarm.ts";
import { installProgress } from "./progress.ts";
import { installVerify } from "./verify.ts";
import { installStatus } from "./status.ts";
import { installDemo } from "./demo.ts";
import { isLegacyFlag, LegacyFlagError, translateLegacyFlags } from "../overlay/legacy_flags.ts";

/** Exit code for a usage error: bad command, flag or argument. */
export const EXIT_USAGE = 2;

/** The riakfs version, taken from package.json at build time. */
export const VERSION: string = pkg.version;

/** A subcommand registers itself on the root program. */
export type CommandInstaller = (program: Command) => void;

/** The subcommands, in the order `--help` lists them. Each lives in its own module. */
const installers: CommandInstaller[] = [
  installMount,
  installUmount,
  installServeRiak,
  installLs,
  installStat,
  installCat,
  installDoctor,
  installGc,
  installStatus,
  installDemo,
  installPrewarm,
  installProgress,
  installVerify,
];

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

/**
 * Every command (and its subcommands) exits instead of calling process.exit, and says what
 * was wrong in one line, with a hint (and commander's suggestion) on that line.
 */
function applyUsageErrorStyle(command: Command): void {
  command.exitOverride();
  const hint = `(run '${fullName(command)} --help' for usage)`;
  command.configureOutput({
    writeOut: (text) => {
      ignoreClosedStdout();
      process.stdout.write(text);
    },
    outputError: (text, write) =>
      write(`${text.replace(/^error: /, "riakfs: ").trim().replace(/\s*\n\s*/g, " ")} ${hint}\n`),
  });
  for (const sub of command.commands) applyUsageErrorStyle(sub);
}

let closedStdoutIgnored = false;

/**
 * Help and the version read by a reader that stopped early (`riakfs prewarm --help | head -1`)
 * meet a closed pipe: nothing is left to say, and Node's stack trace for the EPIPE would only
 * alarm. Other errors of stdout stay as loud as before.
 */
function ignoreClosedStdout(): void {
  if (closedStdoutIgnored) return;
  closedStdoutIgnored = true;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
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
    process.stderr.write(`riakfs: no command given (run 'riakfs --help' for usage)\n`);
    return EXIT_USAGE;
  }
  const asked = argv[0] === "help" ? argv[1] : undefined;
  if (asked !== undefined && !program.commands.some((command) => command.name() === asked)) {
    // commander prints the general help for it, and exits 0.
    process.stderr.write(`riakfs: unknown command '${asked}' (run 'riakfs --help' for usage)\n`);
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(withLegacyMountFlags(argv), { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
        error.code === "commander.help"
      ) return 0;
      return EXIT_USAGE;
    }
    if (error instanceof LegacyFlagError) {
      process.stderr.write(`riakfs: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}

/**
 * `riakfs mount` also accepts riak-fuse's flags (`-rh HOST` and so on), which commander
 * cannot parse: they are rewritten first, with one hint line per old flag on stderr.
 */
function withLegacyMountFlags(argv: string[]): string[] {
  // riak-fuse's own command line (`riak-fuse -s SRC -t MNT -rh HOST`) named no command: it
  // only mounted. Taken as `riakfs mount`, so a supervisord line needs only the new name.
  const riakFuseLine = argv[0] !== undefined && isLegacyFlag(argv[0]);
  if (riakFuseLine) {
    process.stderr.write("riakfs: riak-fuse's command line; taken as riakfs mount\n");
  } else if (argv[0] !== "mount") return argv;
  const translated = translateLegacyFlags(riakFuseLine ? argv : argv.slice(1));
  for (const hint of translated.hints) process.stderr.write(`${hint}\n`);
  return ["mount", ...translated.argv];
}
