// StartTls + AuthReq against the embedded server with security on (embedded only: a real
// test Riak runs with security off).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedRiak } from "../riak-server/embedded.ts";
import { RiakClient } from "./client.ts";
import { Connection } from "./connection.ts";
import { ConnectionError, RiakError } from "./errors.ts";
import { MessageCode } from "./messages.ts";
import { readPassword } from "./password.ts";

/** A self-signed certificate for 127.0.0.1 / localhost, made with openssl in a temp folder. */
function makeCertificate(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ], { stdio: "ignore" });
  return { certFile, keyFile };
}

Deno.test("StartTls, then AuthReq: right and wrong password, wrong server name", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-tls-"));
  try {
    const { certFile, keyFile } = makeCertificate(dir);
    const server = await startEmbeddedRiak({
      memory: true,
      tls: {
        cert: readFileSync(certFile),
        key: readFileSync(keyFile),
        users: { riakuser: "secret" },
      },
    });
    try {
      const secure = { host: server.host, port: server.port, tls: { caFile: certFile } };
      const connection = await Connection.open({
        ...secure,
        auth: { user: "riakuser", password: "secret" },
      });
      await connection.request(MessageCode.PingReq, {}, MessageCode.PingResp);
      connection.close();

      await assert.rejects(
        Connection.open({ ...secure, auth: { user: "riakuser", password: "wrong" } }),
        (error: unknown) =>
          error instanceof RiakError && /Authentication failed/.test(error.errmsg),
      );
      await assert.rejects(
        Connection.open({
          ...secure,
          tls: { caFile: certFile, servername: "riak.example.org" },
          auth: { user: "riakuser", password: "secret" },
        }),
        (error: unknown) =>
          error instanceof ConnectionError && /TLS handshake failed/.test(error.message),
      );
      await assert.rejects(
        Connection.open({
          host: server.host,
          port: server.port,
          auth: { user: "riakuser", password: "secret" },
        }),
        TypeError,
      );

      // the whole client, with the password from a file as the CLI would read it
      const passwordFile = join(dir, "password");
      writeFileSync(passwordFile, "secret\n");
      const riak = new RiakClient({
        nodes: server.address,
        tls: { caFile: certFile },
        auth: {
          user: "riakuser",
          password: readPassword({ env: "RIAKFS_TEST_NO_SUCH_VAR", file: passwordFile }),
        },
      });
      try {
        await riak.ping();
      } finally {
        await riak.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("readPassword: the variable first, then the file; a clear error when neither", () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-pw-"));
  try {
    const file = join(dir, "pw");
    writeFileSync(file, "from-file\n");
    process.env.RIAKFS_TEST_PASSWORD_VAR = "from-env";
    assert.equal(readPassword({ env: "RIAKFS_TEST_PASSWORD_VAR", file }), "from-env");
    delete process.env.RIAKFS_TEST_PASSWORD_VAR;
    assert.equal(readPassword({ env: "RIAKFS_TEST_PASSWORD_VAR", file }), "from-file");
    assert.throws(() => readPassword({ env: "RIAKFS_TEST_PASSWORD_VAR" }), /no Riak password/);
    assert.throws(() => readPassword({ file: join(dir, "missing") }), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
