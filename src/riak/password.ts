/**
 * Where a Riak password comes from: an environment variable or a file, never a command-line
 * argument (which `ps` shows to every user of the host).
 *
 * @module
 */
import { readFileSync } from "node:fs";

/**
 * Reads the password from the environment variable `env` or, failing that, from `file`
 * (trailing newline removed).
 *
 * @example
 * ```ts
 * const password = readPassword({ env: "RIAKFS_RIAK_PASSWORD", file: "/etc/riakfs/password" });
 * ```
 * @throws {Error} naming the variable and the file when neither yields a password.
 */
export function readPassword(source: { env?: string; file?: string }): string {
  if (source.env !== undefined) {
    const value = process.env[source.env];
    if (value !== undefined && value !== "") return value;
  }
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, "utf8");
    } catch (error) {
      throw new Error(
        `cannot read the Riak password file ${source.file}: ${(error as Error).message}`,
      );
    }
    const password = text.replace(/\r?\n$/, "");
    if (password !== "") return password;
    throw new Error(`the Riak password file ${source.file} is empty`);
  }
  const tried = [source.env && `$${source.env}`, source.file].filter(Boolean).join(" or ");
  throw new Error(`no Riak password given${tried ? ` (${tried} is empty)` : ""}`);
}
