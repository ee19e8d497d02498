/**
 * The Riak connection and namespace options every command that talks to Riak shares:
 * flags, RIAKFS_* environment variables and a JSON config file set the same things, with
 * the precedence flag > environment > config file > default.
 *
 * Passwords never go on the command line (it is visible in `ps`): they come from
 * RIAKFS_PASSWORD or a password file.
 *
 * This module only declares the options (every start evaluates it, see program.ts);
 * src/cli/riak-session.ts resolves them and runs a command with a client.
 *
 * @module
 */
import { type Command, Option } from "commander";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STALL_CHECK_AFTER_MS,
} from "../riak/defaults.ts";

/** Default node when none is configured: a local Riak's protocol-buffers port. */
export const DEFAULT_RIAK_NODE = "127.0.0.1:8087";

/** Environment variable turning TLS on (1, true, yes, on) or off (0, false, no, off). */
export const TLS_ENV = "RIAKFS_TLS";

/** Environment variable holding the Riak password. */
export const PASSWORD_ENV = "RIAKFS_PASSWORD";

/** The environment variable of a shared Riak option: `--chunk-size` -> RIAKFS_CHUNK_SIZE. */
export function riakEnvOf(flag: string): string {
  return `RIAKFS_${flag.replace(/^--/, "").toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Adds the shared Riak options to a command.
 *
 * @example
 * ```ts
 * const ls = addRiakOptions(new Command("ls")).action(async (path, opts) => {
 *   const { listDirectory } = await import("./ls_action.ts");
 *   await listDirectory(ls, path, opts);
 * });
 * ```
 */
export function addRiakOptions(command: Command, omit: readonly string[] = []): Command {
  // `omit`: long flags the command already has with another meaning (mount's --request-timeout).
  const option = (flags: string, description: string, fromEnv = true) => {
    const long = flags.split(" ")[0];
    if (!omit.includes(long)) {
      const added = new Option(flags, description);
      command.addOption(fromEnv ? added.env(riakEnvOf(long)) : added);
    }
  };
  option(
    "--riak <nodes>",
    `Riak nodes, host:port[,host:port...] (default ${DEFAULT_RIAK_NODE})`,
  );
  option("--config <file>", "JSON config file with the same settings");
  // Not commander's env: it turns a flag on for any value, RIAKFS_TLS=0 too (riak-session.ts).
  option("--tls", `use TLS (Riak security requires it) [env: ${TLS_ENV}=1|0]`, false);
  option("--tls-ca <file>", "CA certificates (PEM) to verify the nodes");
  option("--tls-cert <file>", "client certificate (PEM)");
  option("--tls-key <file>", "client certificate key (PEM)");
  option(
    "--user <name>",
    `Riak user; password from ${PASSWORD_ENV} or --password-file`,
  );
  option("--password-file <file>", "file holding the Riak password");
  option(
    "--connect-timeout <ms>",
    `connection timeout (default ${DEFAULT_CONNECT_TIMEOUT_MS})`,
  );
  option(
    "--request-timeout <ms>",
    `request timeout (default ${DEFAULT_REQUEST_TIMEOUT_MS})`,
  );
  option(
    "--stall-check-after <ms>",
    `ping a node after a request waited this long for it: slow or hung? 0: never (default ${DEFAULT_STALL_CHECK_AFTER_MS})`,
  );
  option(
    "--ping-timeout <ms>",
    `a node not answering a ping within this leaves rotation, unless it is the last one (default ${DEFAULT_PING_TIMEOUT_MS})`,
  );
  option("--w <quorum>", "write quorum: a number, one, quorum or all");
  option("--dw <quorum>", "durable write quorum: a number, one, quorum or all");
  option(
    "--bucket-type <type>",
    "bucket type of file objects (default: default)",
  );
  option("--bucket <name>", "content bucket (default: riakfs)");
  option(
    "--sets-bucket-type <type>",
    "bucket type of directory sets (default: sets)",
  );
  option("--layout <preset>", "layout preset: default or riak-fuse");
  // riak-fuse's -rnp, -rdnp, -rdk, -rct: the cron jobs beside a mount need them as it does.
  option("--riak-fuse-content-prefix <prefix>", "riak-fuse layout: content bucket prefix (IMG_)");
  option(
    "--riak-fuse-directory-prefix <prefix>",
    "riak-fuse layout: directory bucket prefix (IMGDIR_)",
  );
  option("--riak-fuse-directory-key <key>", "riak-fuse layout: key of the listing set (directory)");
  option("--riak-fuse-content-type <type>", "riak-fuse layout: content type written");
  option(
    "--chunk-size <bytes>",
    "chunk size of large files, 4096 bytes to 50 MiB (default 1048576)",
  );
  return command;
}
