/**
 * End-to-end tests of `riakfs serve-riak`, run on the built binary: flags, serving, signals,
 * and durability across a kill -9 during a write storm.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageCode } from "../src/riak/messages.ts";
import { TestConnection } from "../src/riak-server/_test_connection.ts";
import { writeTestCertificate } from "../src/riak-server/_test_tls.ts";
import { RIAKFS_BINARY, runRiakfs } from "./_riakfs.ts";

const text = new TextEncoder();

/** A running `riakfs serve-riak` child. */
interface ServeRiak {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `riakfs serve-riak ARGS` and waits (bounded) for its "listening on" line. */
async function startServeRiak(args: string[]): Promise<ServeRiak> {
  const child = spawn(RIAKFS_BINARY, ["serve-riak", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  );
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'listening on' line: ${output}`)), 20000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`serve-riak exited early: ${output}`));
    });
  });
  return { child, port, exited };
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
