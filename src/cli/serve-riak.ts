/**
 * `riakfs serve-riak`: runs the embedded single-node Riak-protocol server in the foreground
 * until SIGINT/SIGTERM. For trials and tests; production means a real Riak cluster.
 *
 * @module
 */
import type { Command } from "commander";

/** The flags of `riakfs serve-riak`, as commander parses them. */
export interface ServeRiakFlags {
  data?: string;
  memory?: boolean;
  salvage?: boolean;
  listen?: string;
  bucketType: string[];
  config?: string;
  tlsCert?: string;
  tlsKey?: string;
  users?: string;
}

/** Registers `riakfs serve-riak`. */
export function installServeRiak(program: Command): void {
  program.command("serve-riak")
    .description(
      "run the embedded single-node Riak server (for trials and tests; production means real Riak)",
    )
    .option("--data <dir>", "keep data in an fsynced append-only log in this directory")
    .option("--memory", "keep data in memory only (lost when the server stops)")
    .option(
      "--salvage",
      "start on a data log damaged in the middle: keep every intact record, skip the damage (a copy of the damaged log is kept)",
    )
    .option("--listen <host:port>", "address to listen on (default 127.0.0.1:8087)")
    .option(
      "--bucket-type <name:json>",
      `create a bucket type (kept in --data DIR; given again, updates the props it names), e.g. 'lww:{"last_write_wins":true,"allow_mult":false,"dvv_enabled":false}' (repeatable)`,
      (value: string, list: string[]) => [...list, value],
      [] as string[],
    )
    .option("--config <file>", "JSON file with listen, data, memory, bucket_types, tls")
    .option("--tls-cert <file>", "PEM certificate: turns security on (StartTls + Auth required)")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--users <file>", 'JSON file of users and passwords: {"user": "password"}')
    .action(async (flags: ServeRiakFlags, command: Command) => {
      const { serveRiak } = await import("./serve-riak_action.ts");
      await serveRiak(flags, command);
    });
}
