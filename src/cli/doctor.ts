/**
 * `riakfs doctor`: checks that the configured Riak can hold riakfs's data: every node
 * reachable, its version, the bucket types present with the right datatype and allow_mult,
 * and a write/read/delete round trip on a scratch key, with latencies.
 *
 * @module
 */
import type { Command } from "commander";
import { addRiakOptions } from "./riak-options.ts";

/** Installs `riakfs doctor`. */
export function installDoctor(program: Command): void {
  const command = program.command("doctor")
    .description("check the Riak nodes, bucket types and a write/read/delete round trip")
    .option("--json", "print JSON");
  addRiakOptions(command).action(async (opts: Record<string, unknown>) => {
    const { runDoctor } = await import("./doctor_action.ts");
    await runDoctor(command, opts);
  });
}
