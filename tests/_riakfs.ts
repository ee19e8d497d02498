/**
 * Helpers for end-to-end tests: they run the built single executable, dist/riakfs,
 * exactly as an operator would.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The tests' riakfs processes delete verified local copies without the quiet period (their
 * files are seconds old); a test of the quiet period sets `--delete-quiet-period` itself.
 * Set here, as every process a test starts inherits it.
 */
process.env.RIAKFS_DELETE_QUIET_PERIOD ??= "0";

/** Absolute path of the project's root folder. */
export const PROJECT_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Absolute path of the built executable under test. */
export const RIAKFS_BINARY: string = join(PROJECT_ROOT, "dist", "riakfs");

/** What a finished riakfs process printed and how it ended. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runRiakfs}. */
export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Path of the executable; defaults to {@link RIAKFS_BINARY}. */
  binary?: string;
  input?: string;
  /** A file the command's stdout is written to (e.g. /dev/full), instead of collected. */
  stdoutTo?: string;
}

/**
 * Runs the riakfs executable to completion and collects its output. An argument given as
 * bytes reaches it as exactly those bytes (a file name that is not UTF-8).
 */
export function runRiakfs(
  args: Array<string | Uint8Array>,
  options: RunOptions = {},
): Promise<RunResult> {
  const binary = options.binary ?? RIAKFS_BINARY;
  if (!existsSync(binary)) {
    throw new Error(`${binary} does not exist: run 'npm run build' first`);
  }
  const command = commandLine(binary, args);
  const stdoutFd = options.stdoutTo === undefined ? undefined : openSync(options.stdoutTo, "w");
  return new Promise<RunResult>((resolvePromise, reject) => {
    const child = spawn(command.file, command.args, {
      cwd: options.cwd,
      env: options.env ?? { ...process.env },
      stdio: ["pipe", stdoutFd ?? "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const problem = binary === RIAKFS_BINARY ? stateDirProblem(args, code, options.cwd) : "";
      if (problem) reject(new Error(problem));
      else resolvePromise({ code, signal, stdout, stderr });
    });
    child.stdin!.end(options.input ?? "");
  }).finally(() => {
    if (stdoutFd !== undefined) closeSync(stdoutFd);
  });
}

/** The commands that keep a state directory, by default /var/lib/riakfs/<hash>. */
const STATE_COMMANDS = new Set(["prewarm", "progress", "verify"]);

/**
 * Why a finished run of riakfs `args` (in `cwd`) broke the tests' rule, if it did: a prewarm,
 * progress or verify that got past its usage checks (any exit but 2) must have been given a
 * `--state-dir` in the system's temporary directory. Without one, it kept or read the state in
 * /var/lib/riakfs, the host's own, which outlives the test; "" when the run kept the rule.
 */
export function stateDirProblem(
  args: Array<string | Uint8Array>,
  code: number | null,
  cwd?: string,
): string {
  const [command] = args;
  if (typeof command !== "string" || !STATE_COMMANDS.has(command) || code === 2) return "";
  if (args.includes("--help") || args.includes("-h")) return "";
  const flag = "--state-dir";
  const at = args.findIndex((arg) => arg === flag || String(arg).startsWith(`${flag}=`));
  const given = at === -1
    ? undefined
    : args[at] === flag
    ? args[at + 1]
    : String(args[at]).slice(flag.length + 1);
  if (typeof given !== "string") {
    return `riakfs ${command} ran without --state-dir: give it one in ${tmpdir()}`;
  }
  const within = relative(tmpdir(), resolve(cwd ?? ".", given));
  if (within !== "" && !within.startsWith("..") && !isAbsolute(within)) return "";
  return `riakfs ${command} ran with --state-dir ${given}, outside ${tmpdir()}`;
}

/**
 * Runs an sh script whose `$1`, `$2`... are exactly `args`, as bytes: a test makes files
 * with names that are not UTF-8 this way, as Deno's fs functions (node:fs's too) take a
 * path as text and would write U+FFFD instead of such bytes.
 *
 * @example
 * ```ts
 * shWithBytes('printf %s "$2" > "$1"', Buffer.from("/tmp/caf\xe9", "latin1"), "content");
 * ```
 */
export function shWithBytes(script: string, ...args: Array<string | Uint8Array>): void {
  execFileSync("/bin/sh", ["-c", `set -- ${args.map(shellWord).join(" ")}; ${script}`], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/**
 * How to start `binary` with `args`: arguments that are bytes go through sh, as Node passes
 * only UTF-8 text; `exec` leaves riakfs's exit status as the result.
 */
function commandLine(
  binary: string,
  args: Array<string | Uint8Array>,
): { file: string; args: string[] } {
  if (args.every((arg) => typeof arg === "string")) return { file: binary, args: args as string[] };
  return { file: "/bin/sh", args: ["-c", `exec ${[binary, ...args].map(shellWord).join(" ")}`] };
}

/** An sh word that is exactly `arg`'s bytes: a printf format of octal escapes, all ASCII. */
function shellWord(arg: string | Uint8Array): string {
  const bytes = Buffer.from(arg);
  if (bytes.at(-1) === 0x0a) throw new Error("$(...) would drop an argument's last newline");
  const format = [...bytes].map((byte) => `\\${byte.toString(8).padStart(3, "0")}`).join("");
  return `"$(printf '${format}')"`;
}
