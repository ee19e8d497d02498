/**
 * What `riakfs serve-riak` does (src/cli/serve-riak.ts defines the command; this loads when
 * it runs).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  type BucketTypeSpec,
  createdTypeProps,
  type EmbeddedRiakOptions,
  type EmbeddedRiakServer,
  parseBucketTypeArgument,
  parseListenAddress,
  startEmbeddedRiak,
} from "../riak-server/mod.ts";
import { EXIT_USAGE } from "./program.ts";
import type { ServeRiakFlags } from "./serve-riak.ts";

/**
 * The `--config FILE` format: every flag's setting, flags given on the command line win.
 *
 * ```json
 * { "listen": "127.0.0.1:8087", "data": "/var/lib/riakfs-riak", "memory": false,
 *   "bucket_types": { "kvmulti": {}, "lww": { "last_write_wins": true, "allow_mult": false,
 *   "dvv_enabled": false } },
 *   "tls": { "cert": "cert.pem", "key": "key.pem", "users": "users.json" } }
 * ```
 *
 * The users file is a JSON object `{ "user": "password", ... }`.
 */
interface ServeRiakConfig {
  listen?: string;
  data?: string;
  memory?: boolean;
  bucket_types?: Record<string, BucketTypeSpec>;
  tls?: { cert?: string; key?: string; users?: string };
}

/** Why the address to listen on could not be taken, by errno: said in one line, not Node's. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "is in use",
  EACCES: "needs privileges this process lacks (a port below 1024)",
  EADDRNOTAVAIL: "is no address of this host",
};

/** Serves the embedded Riak server the flags ask for until SIGINT/SIGTERM. */
export async function serveRiak(flags: ServeRiakFlags, command: Command): Promise<void> {
  const usage = (message: string): never =>
    command.error(`riakfs: serve-riak: ${message}`, { exitCode: EXIT_USAGE });
  let options: EmbeddedRiakOptions;
  try {
    options = serveOptions(flags);
  } catch (error) {
    return usage((error as Error).message);
  }
  let server: EmbeddedRiakServer;
  try {
    server = await startEmbeddedRiak(options);
  } catch (error) {
    const why = LISTEN_ERRORS[(error as NodeJS.ErrnoException).code ?? ""];
    if (why === undefined) throw error;
    process.stderr.write(`riakfs: serve-riak: ${options.listen} ${why}\n`);
    process.exitCode = 1;
    return;
  }
  const salvaged = server.log?.salvaged;
  if (salvaged !== undefined) {
    const bytes = salvaged.skipped.reduce((sum, [from, to]) => sum + to - from, 0);
    process.stderr.write(
      `riakfs serve-riak: salvaged ${server.log!.path}: skipped ${bytes} damaged bytes (at byte ` +
        `${
          salvaged.skipped.map(([from]) => from).join(", ")
        }); the damaged log is kept as ${salvaged.copy}\n`,
    );
  }
  const where = options.dataDir === undefined ? "memory only" : `data in ${options.dataDir}`;
  process.stdout.write(`riakfs serve-riak: listening on ${server.address} (${where})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await server.close();
}

/**
 * The server options the flags (over the config file) ask for.
 *
 * @throws {Error} with a one-line reason for contradictory, missing or malformed settings.
 */
export function serveOptions(flags: ServeRiakFlags): EmbeddedRiakOptions {
  if (flags.config === "") throw new Error("--config must not be empty");
  const config: ServeRiakConfig = flags.config === undefined ? {} : readConfig(flags.config);
  const memory = flags.memory ?? config.memory ?? false;
  const data = flags.data ?? config.data;
  // An empty path would be the current directory: the log and lock would land wherever
  // the command happened to be started.
  if (data === "") throw new Error("--data must not be empty");
  if (memory && flags.data !== undefined) throw new Error("--data and --memory exclude each other");
  if (!memory && data === undefined) throw new Error("give --data DIR, or --memory");
  if (memory && flags.salvage === true) throw new Error("--salvage needs --data, not --memory");
  const listen = flags.listen ?? config.listen ?? "127.0.0.1:8087";
  parseListenAddress(listen);
  const bucketTypes: Record<string, BucketTypeSpec> = { ...config.bucket_types };
  for (const argument of flags.bucketType) {
    const [name, spec] = parseBucketTypeArgument(argument);
    bucketTypes[name] = spec;
  }
  for (const [name, spec] of Object.entries(bucketTypes)) {
    try {
      createdTypeProps(spec); // Refused here, as a usage error, rather than at start.
    } catch (error) {
      throw new Error(`bucket type '${name}': ${(error as Error).message.replace(/\s+/g, " ")}`);
    }
  }
  const cert = flags.tlsCert ?? config.tls?.cert;
  const key = flags.tlsKey ?? config.tls?.key;
  const users = flags.users ?? config.tls?.users;
  const given = [cert, key, users].filter((v) => v !== undefined).length;
  if (given !== 0 && given !== 3) throw new Error("--tls-cert, --tls-key and --users go together");
  const options: EmbeddedRiakOptions = {
    listen,
    memory,
    dataDir: memory ? undefined : data,
    bucketTypes,
  };
  if (flags.salvage === true) options.log = { salvage: true };
  if (given === 3) {
    options.tls = {
      cert: readText(cert!, "--tls-cert"),
      key: readText(key!, "--tls-key"),
      users: readUsers(users!),
    };
  }
  return options;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(
      `${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

function readConfig(path: string): ServeRiakConfig {
  const parsed = parseJson(readText(path, "--config"), `--config ${path}`);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`--config ${path}: expected a JSON object`);
  }
  checkConfig(path, parsed as Record<string, unknown>);
  return parsed as ServeRiakConfig;
}

/** What each setting of the config file holds. */
const CONFIG_TYPES: Record<string, "text" | "boolean" | "object"> = {
  listen: "text",
  data: "text",
  memory: "boolean",
  bucket_types: "object",
  tls: "object",
};

/** The names `tls` may set, each a file name. */
const TLS_NAMES = ["cert", "key", "users"];

/**
 * Throws on an unknown setting (a misspelt "lisen" was ignored and the default address
 * taken) or one of the wrong type (`"memory": "no"` was taken as true).
 */
function checkConfig(path: string, config: Record<string, unknown>): void {
  const wrong = (key: string, expected: string, value: unknown) =>
    new Error(`--config ${path}: "${key}" must be ${expected}, got ${JSON.stringify(value)}`);
  const isObject = (value: unknown) =>
    value !== null && typeof value === "object" && !Array.isArray(value);
  for (const [key, value] of Object.entries(config)) {
    const type = CONFIG_TYPES[key];
    if (type === undefined) throw new Error(`--config ${path}: unknown setting "${key}"`);
    if (type === "text" && (typeof value !== "string" || value === "")) {
      throw wrong(key, "a non-empty text", value);
    }
    if (type === "boolean" && typeof value !== "boolean") throw wrong(key, "true or false", value);
    if (type === "object" && !isObject(value)) throw wrong(key, "an object", value);
  }
  for (const [name, value] of Object.entries((config.tls ?? {}) as Record<string, unknown>)) {
    if (!TLS_NAMES.includes(name)) {
      throw new Error(`--config ${path}: unknown setting "tls.${name}"`);
    }
    if (typeof value !== "string" || value === "") {
      throw wrong(`tls.${name}`, "a non-empty text", value);
    }
  }
}

function readUsers(path: string): Record<string, string> {
  const parsed = parseJson(readText(path, "--users"), `--users ${path}`);
  const valid = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) &&
    Object.values(parsed).every((v) => typeof v === "string");
  if (!valid) throw new Error(`--users ${path}: expected a JSON object of user: password`);
  return parsed as Record<string, string>;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what}: not JSON: ${(error as Error).message}`);
  }
}
