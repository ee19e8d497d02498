/**
 * What `riakfs doctor` does (src/cli/doctor.ts defines the command; this loads when it runs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { RiakClient, type RpbBucketProps, toText } from "../riak/mod.ts";
import { resolveNamespace } from "../store/layout.ts";
import { clusterOptionsFromSettings, runWithRiak } from "./riak-session.ts";

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
    for (const node of settings.riak.nodes) {
      await run(`node ${node}`, async () => {
        const single = new RiakClient({
          ...clusterOptionsFromSettings(settings.riak),
          nodes: [node],
          maxAttempts: 1,
        });
        try {
          const started = performance.now();
          await single.ping();
          const pingMs = elapsed(started);
          const info = await single.serverInfo();
          return `reachable, ping ${pingMs.toFixed(1)} ms, ${info.node ?? "?"} ${
            info.serverVersion ?? "?"
          }`;
        } finally {
          await single.close();
        }
      });
    }
    noNode = checks.every((check) => !check.ok);
    const namespace = resolveNamespace(settings.namespace);
    /** The type's properties; a missing type is reported with the commands that make it. */
    const typeProps = async (type: string, props: string) => {
      try {
        return await riak.getBucketTypeProps(type);
      } catch (error) {
        if (!/Invalid bucket type/.test(String(error))) throw error;
        throw new Error(`does not exist; ${createTypeHint(type, props)}`);
      }
    };
    await run(`bucket type ${namespace.bucketType} (files)`, async () => {
      const props = await typeProps(namespace.bucketType, "{}");
      if (props.datatype?.length) {
        throw new Error(`has datatype ${toText(props.datatype)}; file objects need none`);
      }
      return describeProps(props) +
        (props.allow_mult ? " (siblings are resolved by riakfs)" : "");
    });
    const setTypes = new Set([namespace.setsBucketType]);
    if (namespace.preset === "riak-fuse") setTypes.add(namespace.riakFuse.directoryBucketType);
    for (const type of setTypes) {
      await run(`bucket type ${type} (directories)`, async () => {
        const props = await typeProps(type, SET_TYPE_PROPS);
        const datatype = props.datatype ? toText(props.datatype) : "";
        if (datatype !== "set") {
          // A type's datatype is fixed once it is made: another type is needed.
          throw new Error(
            `datatype is ${
              datatype || "unset"
            }, directories need datatype set: use a set type (--sets-bucket-type), e.g. ${
              createTypeHint("sets", SET_TYPE_PROPS)
            }`,
          );
        }
        if (!props.allow_mult) throw new Error("allow_mult is false; data types need true");
        return describeProps(props);
      });
    }
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

function describeProps(props: RpbBucketProps): string {
  const parts = [
    `n_val ${props.n_val ?? "?"}`,
    `allow_mult ${props.allow_mult ?? "?"}`,
    `last_write_wins ${props.last_write_wins ?? "?"}`,
  ];
  if (props.datatype?.length) parts.unshift(`datatype ${toText(props.datatype)}`);
  return parts.join(", ");
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

const SET_TYPE_PROPS = '{"props":{"datatype":"set"}}';

/** The riak admin commands that make and activate bucket type `type` with `props`. */
function createTypeHint(type: string, props: string): string {
  return `riak admin bucket-type create ${type} '${props}' && riak admin bucket-type activate ${type}`;
}
