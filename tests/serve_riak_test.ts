/**
 * End-to-end tests of `riakfs serve-riak`, run on the built binary: flags, serving, signals,
 * and durability across a kill -9 during a write storm.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { MessageCode } from "../src/riak/messages.ts";
import { TestConnection } from "../src/riak-server/_test_connection.ts";
import { writeTestCertificate } from "../src/riak-server/_test_tls.ts";
import { openRiakStoreClient } from "../src/store/riak_adapter.ts";
import { Store } from "../src/store/store.ts";
import { seededBytes } from "../src/store/_test_support.ts";
import { startRiakfs } from "./_migration.ts";
import { eventually } from "./_overlay.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

const text = new TextEncoder();

/** A running `riakfs serve-riak` child. */
interface ServeRiak {
  child: ChildProcess;
  port: number;
  /** Settles once it exited and its output was read to the end. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it printed on stderr so far. */
  stderr: () => string;
}

/** A refused start: how `riakfs serve-riak` exited, and its stderr. */
interface Refusal {
  code: number | null;
  stderr: string;
}

/**
 * Starts `riakfs serve-riak ARGS` and waits (bounded) for its "listening on" line, or for it
 * to exit without one.
 */
function tryServeRiak(args: string[]): Promise<ServeRiak | Refusal> {
  const child = spawn(RIAKFS_BINARY, ["serve-riak", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  );
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid!, "SIGKILL");
      reject(new Error(`no 'listening on' line: ${stdout}${stderr}`));
    }, 20000);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), exited, stderr: () => stderr });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      resolve({ code, stderr }); // No-op once it listened.
    });
  });
}

/** Starts `riakfs serve-riak ARGS`; throws when it exits instead of listening. */
async function startServeRiak(args: string[]): Promise<ServeRiak> {
  const started = await tryServeRiak(args);
  if (!("port" in started)) {
    throw new Error(`serve-riak exited early (${started.code}): ${started.stderr}`);
  }
  return started;
}

async function stop(server: ServeRiak, signal: NodeJS.Signals): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    process.kill(server.child.pid!, signal);
  }
  await server.exited;
}

Deno.test("serve-riak refuses bad flags with one line and exit code 2", async () => {
  for (
    const args of [
      ["serve-riak"],
      ["serve-riak", "--memory", "--listen", "no-port"],
      ["serve-riak", "--memory", "--bucket-type", "x:{not json"],
      ["serve-riak", "--memory", "--tls-cert", "only-cert.pem"],
      ["serve-riak", "--memory", "--no-such-flag"],
    ]
  ) {
    const result = await runRiakfs(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr.split("\n")[0], /^riakfs: /);
  }
});

Deno.test("serve-riak on an address another process listens on: one line naming it, exit 1", async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
  try {
    const result = await runRiakfs(["serve-riak", "--memory", "--listen", address]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, `riakfs: serve-riak: ${address} is in use\n`);
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});

Deno.test("serve-riak --memory serves the protocol and stops on SIGTERM", async () => {
  const server = await startServeRiak([
    "--memory",
    "--listen",
    "127.0.0.1:0",
    "--bucket-type",
    'lww:{"last_write_wins":true,"allow_mult":false,"dvv_enabled":false}',
  ]);
  const connection = new TestConnection(server.port);
  try {
    assert.equal((await connection.call(MessageCode.PingReq)).code, MessageCode.PingResp);
    const put = await connection.call(MessageCode.PutReq, {
      bucket: text.encode("b"),
      key: text.encode("k"),
      content: { value: text.encode("v") },
      type: text.encode("lww"),
      return_body: true,
    });
    assert.equal(put.code, MessageCode.PutResp);
    const props = await connection.call(MessageCode.GetBucketTypeReq, { type: text.encode("lww") });
    assert.equal((props.message.props as { last_write_wins: boolean }).last_write_wins, true);
  } finally {
    connection.destroy();
    await stop(server, "SIGTERM");
  }
  assert.deepEqual(await server.exited, { code: 0, signal: null });
});

function valueFor(key: string): Uint8Array {
  return text.encode(`${key}:`.repeat(1 + (key.length * 37) % 200));
}

Deno.test("serve-riak --data: every acknowledged put survives kill -9 during a write storm", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-riak-"));
  let server = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
  const acknowledged: string[] = [];
  const connections: TestConnection[] = [];
  const target = 600;
  let reached = () => {};
  const enough = new Promise<void>((resolve) => reached = resolve);
  try {
    const writers = Array.from({ length: 8 }, async (_, writer) => {
      const connection = new TestConnection(server.port);
      connections.push(connection);
      for (let i = 0;; i++) {
        const key = `w${writer}-${i}`;
        connection.send(MessageCode.PutReq, {
          bucket: text.encode("storm"),
          key: text.encode(key),
          content: { value: valueFor(key) },
        });
        const event = await connection.next(20000);
        if (typeof event !== "object") return;
        assert.equal(event.code, MessageCode.PutResp);
        acknowledged.push(key);
        if (acknowledged.length === target) reached();
      }
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`only ${acknowledged.length} puts acknowledged`)),
        30000,
      );
    });
    try {
      await Promise.race([enough, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    await stop(server, "SIGKILL");
    await Promise.all(writers);
    for (const connection of connections) connection.destroy();

    server = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
    const reader = new TestConnection(server.port);
    try {
      for (const key of acknowledged) {
        const get = await reader.call(MessageCode.GetReq, {
          bucket: text.encode("storm"),
          key: text.encode(key),
        });
        const content = get.message.content as { value: Uint8Array }[] | undefined;
        assert.ok(content !== undefined, `${key} was acknowledged but is lost`);
        assert.deepEqual(content[0].value, valueFor(key));
      }
    } finally {
      reader.destroy();
    }
  } finally {
    for (const connection of connections) connection.destroy();
    await stop(server, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Where each record of a data log starts (`[u32 length][u32 crc][payload]`). */
function recordStarts(log: Buffer): number[] {
  const starts: number[] = [];
  for (let at = 0; at + 8 <= log.length; at += 8 + log.readUInt32BE(at)) starts.push(at);
  return starts;
}

/** Puts `count` keys `k0`.. of bucket `b` with {@link valueFor} values. */
async function putKeys(port: number, count: number): Promise<void> {
  const connection = new TestConnection(port);
  try {
    for (let i = 0; i < count; i++) {
      const put = await connection.call(MessageCode.PutReq, {
        bucket: text.encode("b"),
        key: text.encode(`k${i}`),
        content: { value: valueFor(`k${i}`) },
      });
      assert.equal(put.code, MessageCode.PutResp);
    }
  } finally {
    connection.destroy();
  }
}

/** Which of the keys `k0`..`k{count-1}` answer their {@link valueFor} value. */
async function keysHeld(port: number, count: number): Promise<string[]> {
  const connection = new TestConnection(port);
  const held: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const get = await connection.call(MessageCode.GetReq, {
        bucket: text.encode("b"),
        key: text.encode(`k${i}`),
      });
      const content = get.message.content as { value: Uint8Array }[] | undefined;
      if (content !== undefined) {
        assert.deepEqual(content[0].value, valueFor(`k${i}`));
        held.push(`k${i}`);
      }
    }
  } finally {
    connection.destroy();
  }
  return held;
}

Deno.test("serve-riak --data on a log damaged mid-file: one line naming it, nothing cut; --salvage keeps the rest", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-riak-damaged-"));
  const logFile = join(dir, "riak.log");
  let server: ServeRiak | undefined;
  try {
    server = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
    await putKeys(server.port, 10);
    await stop(server, "SIGTERM");
    const damaged = readFileSync(logFile);
    const starts = recordStarts(damaged);
    assert.equal(starts.length, 10);
    damaged.writeUInt32BE(0x7ffffff0, starts[3]); // k3's length, as a bad sector leaves it
    writeFileSync(logFile, damaged);

    const refused = await tryServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
    if ("port" in refused) {
      server = refused;
      assert.fail("serve-riak started on a log damaged in the middle");
    }
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`^riakfs: data log ${logFile}: .*damaged record.*--salvage`),
    );
    assert.deepEqual(readFileSync(logFile), damaged, "the log is left as it was");

    server = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0", "--salvage"]);
    assert.deepEqual(await keysHeld(server.port, 10), [
      "k0",
      "k1",
      "k2",
      "k4",
      "k5",
      "k6",
      "k7",
      "k8",
      "k9",
    ]);
    await stop(server, "SIGKILL");
    assert.match(server.stderr(), /salvaged .*riak\.log: skipped \d+ damaged bytes/);
    const copies = readdirSync(dir).filter((name) => name.startsWith("riak.log.damaged-"));
    assert.equal(copies.length, 1);
    assert.deepEqual(readFileSync(join(dir, copies[0])), damaged);
    server = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
    assert.equal((await keysHeld(server.port, 10)).length, 9);
  } finally {
    if (server !== undefined) await stop(server, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("serve-riak --data: a second server on the same directory is refused, even while the first one's lock file is empty", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-riak-lock-"));
  let first: ServeRiak | undefined;
  let second: ServeRiak | undefined;
  try {
    first = await startServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
    await putKeys(first.port, 3);
    for (const lockFile of [`${first.child.pid}\n`, ""]) {
      // Empty: as between the first server's create of the file and its pid written there.
      writeFileSync(join(dir, "riak.lock"), lockFile);
      const refused = await tryServeRiak(["--data", dir, "--listen", "127.0.0.1:0"]);
      if ("port" in refused) {
        second = refused;
        assert.fail("a second server started on the directory of a running one");
      }
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`^riakfs: data log ${dir}: in use by .*\\n$`));
    }
    assert.deepEqual(await keysHeld(first.port, 3), ["k0", "k1", "k2"]);
  } finally {
    if (second !== undefined) await stop(second, "SIGKILL");
    if (first !== undefined) await stop(first, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("prewarm --delete-local while serve-riak --data is killed (SIGKILL) and restarted: no local copy goes whose object is not in Riak", async () => {
  const base = mkdtempSync(join(tmpdir(), "serve-riak-drain-"));
  const source = join(base, "source");
  const data = join(base, "data");
  const files = new Map<string, Buffer>();
  for (let index = 0; index < 120; index++) {
    const name = `d${index % 6}/f${index}`;
    // Small files, and files of several chunks (1 MiB each by default).
    files.set(name, seededBytes(index, index % 10 === 0 ? 2_500_000 + index : 1000 + index * 997));
    mkdirSync(join(source, `d${index % 6}`), { recursive: true });
    writeFileSync(join(source, name), files.get(name)!);
  }
  let server = await startServeRiak(["--data", data, "--listen", "127.0.0.1:0"]);
  const address = `127.0.0.1:${server.port}`;
  const prewarm = startRiakfs([
    "prewarm",
    source,
    "--riak",
    address,
    "--delete-local",
    "--concurrency",
    "8",
    "--state-dir",
    join(base, "state"),
  ]);
  const opened = openRiakStoreClient({ nodes: [address] });
  try {
    const deleted = () => [...files.keys()].filter((name) => !existsSync(join(source, name)));
    await eventually(
      "a quarter of the files drained",
      () => Promise.resolve(deleted().length >= 30),
    );
    await stop(server, "SIGKILL"); // In the middle of the run's puts.
    server = await startServeRiak(["--data", data, "--listen", address]);
    const finished = await prewarm.done;
    assert.ok([0, 1, 3].includes(finished.code!), finished.stderr);
    const store = new Store(opened.client, { namespace: { bucket: "riakfs" } });
    for (const name of deleted()) {
      assert.ok(
        files.get(name)!.equals(await store.readFile(name)),
        `${name} deleted locally, in Riak`,
      );
    }
    for (const [name, content] of files) {
      if (existsSync(join(source, name))) {
        assert.ok(content.equals(readFileSync(join(source, name))), `${name} kept locally, whole`);
      }
    }
  } finally {
    prewarm.kill();
    await prewarm.done;
    await opened.close();
    await stop(server, "SIGKILL");
    rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("serve-riak --tls-cert --tls-key --users: StartTls, then Auth, then requests", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-riak-tls-"));
  let server: ServeRiak | undefined;
  try {
    const { certFile, keyFile } = writeTestCertificate(dir);
    writeFileSync(join(dir, "users.json"), JSON.stringify({ riakuser: "secret" }));
    server = await startServeRiak([
      "--memory",
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      certFile,
      "--tls-key",
      keyFile,
      "--users",
      join(dir, "users.json"),
    ]);
    const connection = new TestConnection(server.port);
    try {
      await connection.startTls();
      const auth = await connection.call(MessageCode.AuthReq, {
        user: text.encode("riakuser"),
        password: text.encode("secret"),
      });
      assert.equal(auth.code, MessageCode.AuthResp);
      const info = await connection.call(MessageCode.GetServerInfoReq);
      assert.equal(info.code, MessageCode.GetServerInfoResp);
      assert.ok(info.message.server_version !== undefined);
    } finally {
      connection.destroy();
    }
  } finally {
    if (server !== undefined) await stop(server, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
