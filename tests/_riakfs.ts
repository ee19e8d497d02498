/**
 * Helpers for end-to-end tests: they run the built single executable, dist/riakfs,
 * exactly as an operator would.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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
}

/** Runs the riakfs executable to completion and collects its output. */
export function runRiakfs(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const binary = options.binary ?? RIAKFS_BINARY;
  if (!existsSync(binary)) {
    throw new Error(`${binary} does not exist: run 'npm run build' first`);
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, {
      cwd: options.cwd,
      env: options.env ?? { ...process.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}
