/**
 * A TCP proxy between a mount and its Riak that can hold one request back until the test
 * lets it go: the test then acts at an exact point of the mount's conversation with Riak
 * (between an upload and its read-back, say), with no sleeps and no hooks in the binary.
 * Frames from the mount are cut with the client's own decoder and forwarded whole; answers
 * pass through untouched.
 *
 * @module
 */
import * as net from "node:net";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { Buffer } from "node:buffer";
import { decodeMessage } from "../src/riak/codec.ts";
import { encodeFrame, type Frame, FrameDecoder } from "../src/riak/frame.ts";
import {
  type DtUpdateReq,
  MessageCode,
  type RpbGetReq,
  type RpbPutReq,
} from "../src/riak/messages.ts";
import { PROJECT_ROOT } from "./_riakfs.ts";

/** A request held back by the proxy. */
export interface HeldRequest {
  /** Resolves once the request arrived (it is not forwarded yet). */
  reached: Promise<void>;
  /**
   * Forwards it, and what the connection sent after it: also once its client gave up on it
   * and left, as a request on its way to a Riak node is not called back by the client's
   * timeout (the node applies it late).
   */
  release(): void;
  /** Resolves once Riak answered it (its client may have left by then). */
  answered: Promise<void>;
}

/** A running proxy. */
export interface RiakProxy {
  /** `host:port` to give the mount instead of the server's. */
  node: string;
  /**
   * Holds the first get with the value (not head-only) of `key` in `bucket` that arrives
   * after a put of that key went through: an upload's read-back.
   */
  holdReadBackAfterPut(bucket: string, key: string): HeldRequest;
  /** Holds the first put of `key` in `bucket`. */
  holdPut(bucket: string, key: string): HeldRequest;
  /** Holds the first get with the value (not head-only) of `key` in `bucket`. */
  holdGet(bucket: string, key: string): HeldRequest;
  /**
   * Holds the first set update in `bucket` (any key, any bucket type) that adds `member`: a
   * directory entry's add, whose shard's key the test need not know.
   */
  holdSetAdd(bucket: string, member: string): HeldRequest;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

interface Watch {
  bucket: string;
  /** The key, or the member added for `set-add`. */
  key: string;
  /**
   * The request held: the first put, the first get with the value after a put, the first
   * get with the value, or the first set update adding the member.
   */
  holds: "put" | "read-back" | "get" | "set-add";
  putSeen: boolean;
  arrived: () => void;
  gate: Promise<void>;
  /** Resolves {@link answer}. */
  answered: () => void;
  answer: Promise<void>;
}

/** Starts a proxy on a free local port in front of `upstream` (`host:port`). */
export async function startRiakProxy(upstream: string): Promise<RiakProxy> {
  const [host, port] = upstream.split(":");
  const sockets = new Set<net.Socket>();
  const watches: Watch[] = [];

  /** The watch that takes `frame`, if any (it is then held). */
  const watchOf = (frame: Frame): Watch | undefined => {
    if (frame.code === MessageCode.DtUpdateReq) return setAddWatchOf(frame);
    if (frame.code !== MessageCode.PutReq && frame.code !== MessageCode.GetReq) {
      return undefined;
    }
    const request = decodeMessage(frame.code, frame.body) as RpbGetReq | RpbPutReq;
    const bucket = Buffer.from(request.bucket).toString();
    const key = request.key === undefined ? "" : Buffer.from(request.key).toString();
    for (const [index, watch] of watches.entries()) {
      if (watch.holds === "set-add" || watch.bucket !== bucket || watch.key !== key) continue;
      const isPut = frame.code === MessageCode.PutReq;
      const withValue = !isPut && !(request as RpbGetReq).head;
      if (isPut && watch.holds === "read-back") watch.putSeen = true;
      else if (
        isPut ? watch.holds === "put" : withValue && (watch.holds === "get" || watch.putSeen)
      ) {
        watches.splice(index, 1);
        watch.arrived();
        return watch;
      }
    }
    return undefined;
  };

  /** The watch that takes the set update `frame`, if any (it is then held). */
  const setAddWatchOf = (frame: Frame): Watch | undefined => {
    const request = decodeMessage(frame.code, frame.body) as DtUpdateReq;
    const bucket = Buffer.from(request.bucket).toString();
    const added = new Set(
      (request.op.set_op?.adds ?? []).map((member) => Buffer.from(member).toString()),
    );
    const index = watches.findIndex((watch) =>
      watch.holds === "set-add" && watch.bucket === bucket && added.has(watch.key)
    );
    if (index === -1) return undefined;
    const [watch] = watches.splice(index, 1);
    watch.arrived();
    return watch;
  };

  const hold = (bucket: string, key: string, holds: Watch["holds"]): HeldRequest => {
    let arrived!: () => void;
    let release!: () => void;
    let answeredNow!: () => void;
    const reached = new Promise<void>((resolve) => arrived = resolve);
    const gate = new Promise<void>((resolve) => release = resolve);
    const answered = new Promise<void>((resolve) => answeredNow = resolve);
    watches.push({
      bucket,
      key,
      holds,
      putSeen: false,
      arrived,
      gate,
      answered: answeredNow,
      answer: answered,
    });
    return { reached, release, answered };
  };

  const server = net.createServer((client) => {
    const riak = net.connect(Number(port), host);
    sockets.add(client);
    sockets.add(riak);
    const decoder = new FrameDecoder();
    const answers = new FrameDecoder();
    /**
     * Held requests forwarded and not answered yet, oldest first: a client sends its next
     * request on a connection only once the last one was answered, so Riak's next answer on
     * it is the oldest's.
     */
    const unanswered: Watch[] = [];
    // Frames go out in order: once one waits, the ones after it wait behind it.
    let sending = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const bytes = encodeFrame(frame.code, frame.body.slice());
        const watch = watchOf(frame);
        sending = sending.then(async () => {
          if (watch) {
            await watch.gate;
            unanswered.push(watch);
          }
          riak.write(bytes);
        });
      }
    });
    riak.on("data", (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
      for (const _answer of answers.push(chunk)) unanswered.shift()?.answered();
    });
    const closeRiak = () => {
      riak.destroy();
      sockets.delete(riak);
      for (const watch of unanswered.splice(0)) watch.answered();
    };
    const clientLeft = () => {
      client.destroy();
      sockets.delete(client);
      // What it sent still reaches Riak, held requests once let go, and Riak answers them.
      void sending.then(async () => {
        while (unanswered.length > 0 && !riak.destroyed) await unanswered[0].answer;
      }).then(closeRiak);
    };
    client.on("close", clientLeft).on("error", clientLeft);
    riak.on("close", () => {
      closeRiak();
      clientLeft();
    }).on("error", () => {
      closeRiak();
      clientLeft();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as net.AddressInfo;
  return {
    node: `127.0.0.1:${address.port}`,
    holdReadBackAfterPut: (bucket, key) => hold(bucket, key, "read-back"),
    holdPut: (bucket, key) => hold(bucket, key, "put"),
    holdGet: (bucket, key) => hold(bucket, key, "get"),
    holdSetAdd: (bucket, member) => hold(bucket, member, "set-add"),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A {@link RiakProxy} in a process of its own (tests/_riak_proxy_process.ts). */
export interface RiakProxyProcess {
  /** `host:port` to give the mount instead of the server's. */
  node: string;
  /** Holds the first put of `key` in `bucket` (see {@link RiakProxy.holdPut}). */
  holdPut(bucket: string, key: string): Promise<HeldRequest>;
  /** Holds the first set update adding `member` (see {@link RiakProxy.holdSetAdd}). */
  holdSetAdd(bucket: string, member: string): Promise<HeldRequest>;
  /** Lets every held request go, ends the process and waits for it. */
  close(): Promise<void>;
}

/**
 * Starts tests/_riak_proxy_process.ts in front of `upstream` (`host:port`): for tests that
 * call the mount in ways that block their own event loop, which must not hold up the proxy.
 */
export async function startRiakProxyProcess(upstream: string): Promise<RiakProxyProcess> {
  const script = join(PROJECT_ROOT, "tests", "_riak_proxy_process.ts");
  const child = spawn(process.execPath, ["run", "-A", script, upstream], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin!.on("error", () => {}); // Its end shows as the end of its output.
  const exited = new Promise((resolve) => child.once("close", resolve));
  /** Waiters for each line the process prints, by the line. */
  const waiters = new Map<string, () => void>();
  const seen = new Set<string>();
  let address: ((line: string) => void) | undefined;
  const addressLine = new Promise<string>((resolve) => address = resolve);
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (address) {
      address(line);
      address = undefined;
      return;
    }
    seen.add(line);
    waiters.get(line)?.();
  });
  /** Resolves once the process printed `line` (now or before). */
  const printed = (line: string) =>
    new Promise<void>((resolve) => {
      if (seen.has(line)) return resolve();
      waiters.set(line, resolve);
    });
  let ended = false;
  exited.then(() => ended = true);
  const kill = () => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const node = await Promise.race([
    addressLine,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the riak proxy did not start")), 15_000);
    }),
  ]).catch((error) => {
    kill();
    throw error;
  }).finally(() => clearTimeout(timer));
  let holds = 0;
  /** Asks the process to hold what `verb` names (`hold-put`, `hold-set-add`) of `bucket`. */
  const hold = async (verb: string, bucket: string, what: string): Promise<HeldRequest> => {
    const id = String(++holds);
    seen.delete("ok");
    const acknowledged = printed("ok");
    child.stdin!.write(`${verb} ${id} ${bucket} ${what}\n`);
    await acknowledged;
    return {
      reached: printed(`reached ${id}`),
      answered: printed(`answered ${id}`),
      release: () => {
        if (!ended) child.stdin!.write(`release ${id}\n`);
      },
    };
  };
  return {
    node,
    holdPut: (bucket, key) => hold("hold-put", bucket, key),
    holdSetAdd: (bucket, member) => hold("hold-set-add", bucket, member),
    async close() {
      child.stdin!.end();
      const timeout = setTimeout(kill, 15_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
