import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageCode, type RpbBucketProps } from "../riak/messages.ts";
import type { BucketTypeSpec } from "./bucket_types.ts";
import { TestConnection } from "./_test_connection.ts";
import { startEmbeddedRiak } from "./embedded.ts";

const text = new TextEncoder();

/** Runs `body` against a server on `dataDir` started with `bucketTypes`, then stops it. */
async function withServer(
  dataDir: string,
  bucketTypes: Record<string, BucketTypeSpec>,
  body: (connection: TestConnection) => Promise<void>,
): Promise<void> {
  const server = await startEmbeddedRiak({ dataDir, bucketTypes });
  const connection = new TestConnection(server.port);
  try {
    await body(connection);
  } finally {
    connection.destroy();
    await server.close();
  }
}

async function typeProps(connection: TestConnection, type: string): Promise<RpbBucketProps> {
  const answer = await connection.call(MessageCode.GetBucketTypeReq, { type: text.encode(type) });
  assert.equal(answer.code, MessageCode.GetBucketResp, `bucket type ${type}`);
  return answer.message.props as RpbBucketProps;
}

const inMyType = { type: text.encode("mine"), bucket: text.encode("b"), key: text.encode("k") };

Deno.test("a bucket type created at start stays in the data directory, as a created Riak type stays", async () => {
  const dir = mkdtempSync(join(tmpdir(), "embedded-types-"));
  try {
    await withServer(dir, { mine: { allow_mult: false } }, async (connection) => {
      const put = await connection.call(MessageCode.PutReq, {
        ...inMyType,
        content: { value: text.encode("kept") },
      });
      assert.equal(put.code, MessageCode.PutResp);
    });
    // Started without the flag: the type and what was written in it are still there (they
    // vanished, and came back only once a compaction had written the type into the log).
    await withServer(dir, {}, async (connection) => {
      assert.equal((await typeProps(connection, "mine")).allow_mult, false);
      const get = await connection.call(MessageCode.GetReq, inMyType);
      const content = get.message.content as { value: Uint8Array }[];
      assert.deepEqual(content[0].value, text.encode("kept"));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a bucket type given again at start updates the props it names, and keeps the others", async () => {
  const dir = mkdtempSync(join(tmpdir(), "embedded-types-"));
  try {
    await withServer(dir, { mine: { allow_mult: false } }, async (connection) => {
      const set = await connection.call(MessageCode.SetBucketTypeReq, {
        type: text.encode("mine"),
        props: { n_val: 2 },
      });
      assert.equal(set.code, MessageCode.SetBucketResp);
    });
    await withServer(dir, { mine: { allow_mult: true } }, async (connection) => {
      const props = await typeProps(connection, "mine");
      assert.equal(props.allow_mult, true);
      assert.equal(props.n_val, 2, "the change made at runtime is kept");
    });
    await withServer(dir, {}, async (connection) => {
      assert.equal((await typeProps(connection, "mine")).allow_mult, true);
    });
    await assert.rejects(
      startEmbeddedRiak({ dataDir: dir, bucketTypes: { mine: { datatype: "set" } } }),
      /^Error: bucket type 'mine': its datatype cannot change/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
