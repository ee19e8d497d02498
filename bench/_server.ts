/**
 * The embedded Riak server as its own process, for benchmarks, so the load generator never
 * shares the server's thread: from the built executable, or from the sources with every
 * answer delayed (bench/riak-server/latency_server.ts).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { RIAKFS_BINARY } from "../tests/_riakfs.ts";

/** A running `riakfs serve-riak` and how to end it. */
export interface EmbeddedServer {
  child: ChildProcess;
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** Sends SIGTERM to this server's PID and resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * Starts `riakfs serve-riak --listen 127.0.0.1:0 ...args` and resolves once it printed the
 * port it listens on (rejects if it exits first).
 *
 * @example
 * ```ts
 * const server = await startEmbeddedServer(["--memory"]);
 * try { ... `127.0.0.1:${server.port}` ... } finally { await server.stop(); }
 * ```
 */
export function startEmbeddedServer(
  args: string[] = ["--memory"],
  binary: string = RIAKFS_BINARY,
): Promise<EmbeddedServer> {
  return startServerProcess(binary, ["serve-riak", "--listen", "127.0.0.1:0", ...args]);
}

/**
 * Starts bench/riak-server/latency_server.ts, the embedded server in memory answering every
 * request `latencyMs` late, in a process of its own.
 */
export function startLatencyServer(latencyMs: number): Promise<EmbeddedServer> {
  const script = new URL("./riak-server/latency_server.ts", import.meta.url).pathname;
  return startServerProcess(Deno.execPath(), ["run", "-A", script, String(latencyMs)]);
}

/** Runs a server that prints `listening on 127.0.0.1:PORT` once it accepts connections. */
async function startServerProcess(command: string, args: string[]): Promise<EmbeddedServer> {
  const child = spawn(...onServerCpus(command, args), { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Uint8Array) => {
      output += new TextDecoder().decode(chunk);
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match !== null) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`${command} exited with ${code}: ${output}`)));
  });
  return {
    child,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

/**
 * The command line that runs `command` on the CPUs named in `RIAKFS_BENCH_SERVER_CPUS` (a
 * `taskset -c` list) when it is set: with the bench itself under `taskset -c` on the other
 * CPUs, the server no longer takes the client's CPU, as a Riak cluster on machines of its own
 * would not. `taskset` execs the command, so the PID is the server's.
 */
function onServerCpus(command: string, args: string[]): [string, string[]] {
  const cpus = process.env.RIAKFS_BENCH_SERVER_CPUS;
  if (cpus === undefined || cpus === "") return [command, args];
  return ["taskset", ["--cpu-list", cpus, command, ...args]];
}
