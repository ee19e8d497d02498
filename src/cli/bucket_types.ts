/**
 * The bucket types a namespace needs, checked against Riak: `riakfs doctor` reports them, and
 * `riakfs mount` refuses to start over types its uploads would fail on for ever.
 *
 * @module
 */
import { RiakClient, RiakError, type RpbBucketProps, toText } from "../riak/mod.ts";
import type { Namespace } from "../store/layout.ts";
import { clusterOptionsFromSettings, type RiakSettings } from "./riak-session.ts";

/**
 * A bucket type that Riak answered for and that cannot hold what riakfs writes there (missing,
 * or of the wrong datatype): no retry changes it; another type, or making this one, does.
 */
export class BucketTypeProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BucketTypeProblem";
  }
}

/** One named check; `check` resolves to what it found, or throws what is wrong. */
export interface BucketTypeCheck {
  name: string;
  check: () => Promise<string>;
}

/**
 * The checks of the types `namespace` uses: the files' type (no datatype) and each directory
 * set type (datatype set, allow_mult). They throw {@link BucketTypeProblem} for a type that is
 * wrong, and the client's error when Riak could not be asked.
 */
export function bucketTypeChecks(riak: RiakClient, namespace: Namespace): BucketTypeCheck[] {
  /** The type's properties; a missing type is reported with the commands that make it. */
  const typeProps = async (type: string, props: string) => {
    try {
      return await riak.getBucketTypeProps(type);
    } catch (error) {
      if (!(error instanceof RiakError) || !/Invalid bucket type/.test(error.message)) throw error;
      throw new BucketTypeProblem(`does not exist; ${createTypeHint(type, props)}`);
    }
  };
  const checks: BucketTypeCheck[] = [{
    name: `bucket type ${namespace.bucketType} (files)`,
    check: async () => {
      const props = await typeProps(namespace.bucketType, "{}");
      if (props.datatype?.length) {
        throw new BucketTypeProblem(
          `has datatype ${toText(props.datatype)}; file objects need none`,
        );
      }
      return describeProps(props) +
        (props.allow_mult ? " (siblings are resolved by riakfs)" : "");
    },
  }];
  const setTypes = new Set([namespace.setsBucketType]);
  if (namespace.preset === "riak-fuse") setTypes.add(namespace.riakFuse.directoryBucketType);
  for (const type of setTypes) {
    checks.push({
      name: `bucket type ${type} (directories)`,
      check: async () => {
        const props = await typeProps(type, SET_TYPE_PROPS);
        const datatype = props.datatype ? toText(props.datatype) : "";
        if (datatype !== "set") {
          // A type's datatype is fixed once it is made: another type is needed.
          throw new BucketTypeProblem(
            `datatype is ${
              datatype || "unset"
            }, directories need datatype set: use a set type (--sets-bucket-type), e.g. ${
              createTypeHint("sets", SET_TYPE_PROPS)
            }`,
          );
        }
        if (!props.allow_mult) {
          throw new BucketTypeProblem("allow_mult is false; data types need true");
        }
        return describeProps(props);
      },
    });
  }
  return checks;
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

const SET_TYPE_PROPS = '{"props":{"datatype":"set"}}';

/** The riak admin commands that make and activate bucket type `type` with `props`. */
function createTypeHint(type: string, props: string): string {
  return `riak admin bucket-type create ${type} '${props}' && riak admin bucket-type activate ${type}`;
}

/**
 * Refuses, with one line, a mount whose Riak answers but lacks a bucket type the namespace
 * needs or has it of the wrong datatype: its writes would be acknowledged and their uploads
 * fail for ever. Riak not answering refuses nothing (the mount serves local files through an
 * outage, and says so itself), nor does an answer that tells nothing about the types (a user
 * not allowed to read them). Asked on a client of its own, each node once, within
 * `--ping-timeout`: a start during an outage waits no longer for it than for a ping.
 */
export async function refuseUnusableBucketTypes(
  settings: RiakSettings,
  namespace: Namespace,
): Promise<void> {
  const riak = new RiakClient({
    ...clusterOptionsFromSettings(settings),
    maxAttempts: settings.nodes.length,
    stallCheckAfterMs: 0,
    connectTimeoutMs: Math.min(settings.connectTimeoutMs, settings.pingTimeoutMs),
    requestTimeoutMs: Math.min(settings.requestTimeoutMs, settings.pingTimeoutMs),
  });
  try {
    for (const { name, check } of bucketTypeChecks(riak, namespace)) {
      try {
        await check();
      } catch (error) {
        if (error instanceof BucketTypeProblem) throw new Error(`${name}: ${error.message}`);
        return;
      }
    }
  } finally {
    await riak.close();
  }
}
