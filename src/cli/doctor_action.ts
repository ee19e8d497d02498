/**
 * What `riakfs doctor` does (src/cli/doctor.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { RiakClient, TimeoutError, toText } from "../riak/mod.ts";
import { resolveNamespace } from "../store/layout.ts";
import { bucketTypeChecks } from "./bucket_types.ts";
import { clusterOptionsFromSettings, type RiakSettings, runWithRiak } from "./riak-session.ts";

/** One check's outcome. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** Wall time of the check, ms. */
  ms: number;
}

/** Runs every check against the configured Riak and prints them; exit code 1 if one fails. */
export function runDoctor(command: Command, opts: Record<string, unknown>): Promise<void> {
  return runWithRiak(command, opts, async (riak, settings, out) => {
    const checks: DoctorCheck[] = [];
    /** Set once no node answered: each later check would wait out the same timeouts. */
    let noNode = false;
    const run = async (name: string, check: () => Promise<string>) => {
      if (noNode) {
        checks.push({ name, ok: false, detail: "not run: no Riak node answered", ms: 0 });
        return;
      }
      const started = performance.now();
      try {
        const detail = await check();
        checks.push({ name, ok: true, detail, ms: elapsed(started) });
      } catch (error) {
        checks.push({ name, ok: false, detail: (error as Error).message, ms: elapsed(started) });
      }
    };
    // At once, each within --ping-timeout, as the client checks a node: one after the other,
    // each waiting out --request-timeout, three hung nodes held the report for 90 s.
    const nodeChecks = await Promise.all(
      settings.riak.nodes.map((node) => checkNodeWithin(settings.riak, node)),
    );
    checks.push(...nodeChecks);
    noNode = checks.every((check) => !check.ok);
    const namespace = resolveNamespace(settings.namespace);
    for (const { name, check } of bucketTypeChecks(riak, namespace)) await run(name, check);
    const scratch = `riakfs-doctor-${randomBytes(6).toString("hex")}`;
    await run("write/read/delete round trip", async () => {
      const location = { type: namespace.bucketType, bucket: namespace.bucket, key: scratch };
      const value = randomBytes(1024);
      let started = performance.now();
      await riak.put(location, { value, contentType: "application/octet-stream" }, {
        w: settings.riak.w,
        dw: settings.riak.dw,
      });
      const putMs = elapsed(started);
      started = performance.now();
      const read = await riak.get(location);
      const getMs = elapsed(started);
      if (!read.found || !Buffer.from(read.siblings[0].value).equals(value)) {
        throw new Error(`read back something else from ${namespace.bucket}/${scratch}`);
      }
      started = performance.now();
      await riak.delete(location, { vclock: read.vclock });
      const deleteMs = elapsed(started);
      const after = await riak.get(location);
      if (after.found) throw new Error(`${namespace.bucket}/${scratch} still there after delete`);
      return `put ${putMs.toFixed(1)} ms, get ${getMs.toFixed(1)} ms, delete ${
        deleteMs.toFixed(1)
      } ms`;
    });
    await run("directory set round trip", async () => {
      const location = {
        type: namespace.setsBucketType,
        bucket: namespace.directoryBucket,
        key: scratch,
      };
      const started = performance.now();
      await riak.updateSet(location, { add: ["f:doctor"] });
      const set = await riak.fetchSet(location);
      if (!set.members.some((m) => toText(m) === "f:doctor")) throw new Error("member missing");
      await riak.delete(location);
      return `add + fetch + delete ${elapsed(started).toFixed(1)} ms`;
    });
    const ok = checks.every((check) => check.ok);
    if (opts.json) {
      await out(JSON.stringify({ ok, checks }) + "\n");
    } else {
      for (const check of checks) {
        await out(`${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.detail}\n`);
      }
      await out(ok ? "all checks passed\n" : "some checks failed\n");
    }
    if (!ok) process.exitCode = 1;
  });
}

/**
 * Checks one node on a client of its own: its ping and server info, each answered within
 * --ping-timeout (the bound the client itself gives a node's ping before it takes the node
 * out of rotation).
 */
async function checkNodeWithin(riak: RiakSettings, node: string): Promise<DoctorCheck> {
  const started = performance.now();
  const single = new RiakClient({
    ...clusterOptionsFromSettings(riak),
    nodes: [node],
    maxAttempts: 1,
    stallCheckAfterMs: 0, // this ping is the check, with its own bound
    connectTimeoutMs: Math.min(riak.connectTimeoutMs, riak.pingTimeoutMs),
    requestTimeoutMs: riak.pingTimeoutMs,
  });
  try {
    await single.ping();
    const pingMs = elapsed(started);
    const info = await single.serverInfo();
    return {
      name: `node ${node}`,
      ok: true,
      detail: `reachable, ping ${pingMs.toFixed(1)} ms, ${info.node ?? "?"} ${
        info.serverVersion ?? "?"
      }`,
      ms: elapsed(started),
    };
  } catch (error) {
    const detail = (error as Error).message +
      (error instanceof TimeoutError ? " (--ping-timeout)" : "");
    return { name: `node ${node}`, ok: false, detail, ms: elapsed(started) };
  } finally {
    await single.close();
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
