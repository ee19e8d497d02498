import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeMessage, encodeMessage } from "../riak/codec.ts";
import { MessageCode } from "../riak/messages.ts";
import { RiakEngine } from "./engine.ts";
import { Keyspace } from "./keyspace.ts";
import { withFullFilesystem } from "../util/_full_filesystem.ts";
import { crc32, DataLog, type DataLogOptions, LOCK_FILE, LOG_FILE } from "./log.ts";

const text = new TextEncoder();

async function withEngine(
  dir: string,
  options: DataLogOptions,
  body: (engine: RiakEngine, log: DataLog) => Promise<void>,
): Promise<void> {
  const keyspace = new Keyspace();
  const log = await DataLog.open(dir, keyspace, options);
  try {
    await body(new RiakEngine(keyspace, { durability: log }), log);
  } finally {
    await log.close();
  }
}

async function put(engine: RiakEngine, key: string, value: Uint8Array, type?: string) {
  const body = encodeMessage(MessageCode.PutReq, {
    bucket: text.encode("b"),
    key: text.encode(key),
    content: { value, content_type: text.encode("application/octet-stream") },
    type: type === undefined ? undefined : text.encode(type),
  });
  const reply = await engine.handle(MessageCode.PutReq, body);
  assert.equal(reply.frames[0][4], MessageCode.PutResp);
}

async function get(engine: RiakEngine, key: string) {
  const body = encodeMessage(MessageCode.GetReq, {
    bucket: text.encode("b"),
    key: text.encode(key),
  });
  const reply = await engine.handle(MessageCode.GetReq, body);
  return decodeMessage(MessageCode.GetResp, reply.frames[0].subarray(5));
}

/** Bucket b has n_val 2, and the set s/set of type sets holds x and y. */
async function assertPropsAndSet(engine: RiakEngine): Promise<void> {
  const props = await engine.handle(
    MessageCode.GetBucketReq,
    encodeMessage(MessageCode.GetBucketReq, { bucket: text.encode("b") }),
  );
  assert.equal(
    decodeMessage(MessageCode.GetBucketResp, props.frames[0].subarray(5)).props.n_val,
    2,
  );
  const fetched = await engine.handle(
    MessageCode.DtFetchReq,
    encodeMessage(MessageCode.DtFetchReq, {
      bucket: text.encode("s"),
      key: text.encode("set"),
      type: text.encode("sets"),
    }),
  );
  const value = decodeMessage(MessageCode.DtFetchResp, fetched.frames[0].subarray(5)).value;
  assert.deepEqual(value?.set_value, [text.encode("x"), text.encode("y")]);
}

function valueOf(seed: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

Deno.test("the log brings back objects, bucket props and CRDTs after a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async (engine) => {
      for (let i = 0; i < 20; i++) await put(engine, `k${i}`, valueOf(i, 100 + i));
      await engine.handle(
        MessageCode.SetBucketReq,
        encodeMessage(MessageCode.SetBucketReq, { bucket: text.encode("b"), props: { n_val: 2 } }),
      );
      await engine.handle(
        MessageCode.DtUpdateReq,
        encodeMessage(MessageCode.DtUpdateReq, {
          bucket: text.encode("s"),
          key: text.encode("set"),
          type: text.encode("sets"),
          op: { set_op: { adds: [text.encode("x"), text.encode("y")] } },
        }),
      );
    });
    await withEngine(dir, {}, async (engine) => {
      for (let i = 0; i < 20; i++) {
        assert.deepEqual((await get(engine, `k${i}`)).content?.[0].value, valueOf(i, 100 + i));
      }
      await assertPropsAndSet(engine);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a torn record at the end of the log is cut off, the rest is kept", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async (engine) => {
      await put(engine, "kept", text.encode("safe"));
    });
    const intact = statSync(join(dir, LOG_FILE)).size;
    appendFileSync(join(dir, LOG_FILE), new Uint8Array([0, 0, 1, 0, 9, 9, 9, 9, 1, 2, 3]));
    await withEngine(dir, {}, async (engine, log) => {
      assert.equal(log.bytes, intact);
      assert.deepEqual((await get(engine, "kept")).content?.[0].value, text.encode("safe"));
      await put(engine, "after", text.encode("also"));
    });
    await withEngine(dir, {}, async (engine) => {
      assert.deepEqual((await get(engine, "after")).content?.[0].value, text.encode("also"));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a damaged record with intact records after it stops the start; nothing is cut off", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async (engine) => {
      await put(engine, "first", text.encode("one"));
    });
    const damagedAt = statSync(join(dir, LOG_FILE)).size;
    await withEngine(dir, {}, async (engine) => {
      await put(engine, "second", text.encode("two"));
      await put(engine, "third", text.encode("three"));
    });
    const bytes = readFileSync(join(dir, LOG_FILE));
    bytes[damagedAt + 12] ^= 0xff; // In the second record's payload.
    writeFileSync(join(dir, LOG_FILE), bytes);
    await assert.rejects(
      DataLog.open(dir, new Keyspace()),
      new RegExp(
        `damaged record at byte ${damagedAt} of ${bytes.length}, with intact records after`,
      ),
    );
    assert.equal(statSync(join(dir, LOG_FILE)).size, bytes.length, "nothing was cut off");
    // Zeros after a bad record are a crash's torn tail, as a short record is.
    const zeros = Buffer.concat([
      bytes.subarray(0, damagedAt),
      Buffer.from([0, 0, 0, 9]),
      Buffer.alloc(64),
    ]);
    writeFileSync(join(dir, LOG_FILE), zeros);
    await withEngine(dir, {}, async (engine, log) => {
      assert.equal(log.bytes, damagedAt);
      assert.deepEqual((await get(engine, "first")).content?.[0].value, text.encode("one"));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes `count` puts in a fresh log of `dir`; returns where each record starts. */
async function logOfPuts(dir: string, count: number): Promise<number[]> {
  const starts: number[] = [];
  await withEngine(dir, {}, async (engine, log) => {
    for (let i = 0; i < count; i++) {
      starts.push(log.bytes);
      await put(engine, `k${i}`, valueOf(i, 300));
    }
  });
  return starts;
}

Deno.test("a record whose length field is damaged stops the start; nothing is cut off", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    const starts = await logOfPuts(dir, 10);
    const pristine = readFileSync(join(dir, LOG_FILE));
    // A length pointing past the end of the file looked like the torn tail of a crash, and
    // every acknowledged record after it was cut off.
    const middle = Buffer.from(pristine);
    middle.writeUInt32BE(0x7ffffff0, starts[3]);
    writeFileSync(join(dir, LOG_FILE), middle);
    await assert.rejects(
      DataLog.open(dir, new Keyspace()),
      new RegExp(
        `damaged record at byte ${starts[3]} of ${pristine.length}, with intact records after ` +
          `it \\(from byte ${starts[4]}\\).*--salvage`,
      ),
    );
    assert.deepEqual(readFileSync(join(dir, LOG_FILE)), middle, "nothing was cut off");
    // The last record's length damaged, its bytes whole: no torn write either.
    const last = Buffer.from(pristine);
    last.writeUInt32BE(last.readUInt32BE(starts[9]) + 1000, starts[9]);
    writeFileSync(join(dir, LOG_FILE), last);
    await assert.rejects(
      DataLog.open(dir, new Keyspace()),
      new RegExp(`damaged record at byte ${starts[9]} of ${pristine.length} \\(its length`),
    );
    assert.deepEqual(readFileSync(join(dir, LOG_FILE)), last, "nothing was cut off");
    // A torn last record (its length right, its end missing) is still cut off quietly.
    writeFileSync(join(dir, LOG_FILE), pristine.subarray(0, starts[9] + 100));
    await withEngine(dir, {}, async (engine, log) => {
      assert.equal(log.bytes, starts[9]);
      assert.deepEqual((await get(engine, "k8")).content?.[0].value, valueOf(8, 300));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("salvage skips the damage, keeps every intact record and a copy, and rewrites the log", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    const starts = await logOfPuts(dir, 10);
    const damaged = readFileSync(join(dir, LOG_FILE));
    damaged[starts[2] + 40] ^= 0xff; // In the payload of k2.
    damaged.writeUInt32BE(0x7ffffff0, starts[6]); // The length of k6.
    writeFileSync(join(dir, LOG_FILE), damaged);
    await withEngine(dir, { salvage: true }, async (engine, log) => {
      assert.deepEqual(log.salvaged?.skipped, [[starts[2], starts[3]], [starts[6], starts[7]]]);
      assert.deepEqual(readFileSync(log.salvaged!.copy), damaged);
      for (let i = 0; i < 10; i++) {
        const value = (await get(engine, `k${i}`)).content?.[0].value;
        assert.deepEqual(value, i === 2 || i === 6 ? undefined : valueOf(i, 300), `k${i}`);
      }
    });
    // Rewritten: the next start needs no salvage, and finds nothing to skip.
    await withEngine(dir, {}, async (engine, log) => {
      assert.equal(log.salvaged, undefined);
      assert.deepEqual((await get(engine, "k9")).content?.[0].value, valueOf(9, 300));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("compaction keeps the log bounded while one key is overwritten many times", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  const options = { compactMinBytes: 256 * 1024, compactRatio: 2 };
  try {
    await withEngine(dir, options, async (engine, log) => {
      for (let i = 0; i < 400; i++) {
        await Promise.all([
          put(engine, "hot", valueOf(i, 4096)),
          put(engine, `cold${i % 10}`, valueOf(i, 1024)),
        ]);
        assert.ok(log.bytes <= 512 * 1024, `log grew to ${log.bytes} bytes`);
      }
      assert.ok(log.compactionCount > 0);
    });
    assert.ok(statSync(join(dir, LOG_FILE)).size <= 512 * 1024);
    await withEngine(dir, options, async (engine) => {
      assert.deepEqual((await get(engine, "hot")).content?.[0].value, valueOf(399, 4096));
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(
          (await get(engine, `cold${i}`)).content?.[0].value,
          valueOf(390 + i, 1024),
        );
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a change readers can see while the log is compacted is in a log file already", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  const crashed = mkdtempSync(join(tmpdir(), "riak-log-crashed-"));
  try {
    await logOfPuts(dir, 20);
    await withEngine(dir, { compactMinBytes: 1, compactRatio: 1 }, async (engine, log) => {
      // This write outgrows the live data: once it is durable, a compaction starts.
      await put(engine, "k0", valueOf(100, 300));
      const during = engine.handle(
        MessageCode.PutReq,
        encodeMessage(MessageCode.PutReq, {
          bucket: text.encode("b"),
          key: text.encode("during"),
          content: { value: text.encode("seen") },
        }),
      );
      assert.equal((await get(engine, "during")).content?.[0].value.length, 4);
      // A node killed now: what the page cache holds of the directory is what a restart reads.
      // The change waited in memory for the compaction's end, and was lost though seen.
      assert.equal(log.compactionCount, 0, "the compaction is still under way");
      copyFileSync(join(dir, LOG_FILE), join(crashed, LOG_FILE));
      await during;
      assert.equal(log.compactionCount, 1);
    });
    await withEngine(crashed, {}, async (engine) => {
      assert.deepEqual((await get(engine, "during")).content?.[0].value, text.encode("seen"));
    });
    await withEngine(dir, {}, async (engine) => {
      assert.deepEqual((await get(engine, "during")).content?.[0].value, text.encode("seen"));
      assert.deepEqual((await get(engine, "k0")).content?.[0].value, valueOf(100, 300));
      assert.deepEqual((await get(engine, "k19")).content?.[0].value, valueOf(19, 300));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(crashed, { recursive: true, force: true });
  }
});

Deno.test("after a failed fsync the log refuses writes: it cannot tell what the disk kept", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async (engine, log) => {
      await put(engine, "before", text.encode("kept"));
      const handle = (log as unknown as { handle: { datasync(): Promise<void> } }).handle;
      const datasync = handle.datasync;
      handle.datasync = () => Promise.reject(new Error("EIO: i/o error, fsync"));
      const putBody = (key: string) =>
        encodeMessage(MessageCode.PutReq, {
          bucket: text.encode("b"),
          key: text.encode(key),
          content: { value: text.encode("v") },
        });
      const failed = await engine.handle(MessageCode.PutReq, putBody("failed"));
      assert.equal(failed.frames[0][4], MessageCode.ErrorResp);
      handle.datasync = datasync;
      // Linux reports a writeback error once: this fsync would succeed, though the pages of
      // the failed write may be gone, and the log holes where records were acknowledged.
      const after = await engine.handle(MessageCode.PutReq, putBody("after"));
      assert.equal(after.frames[0][4], MessageCode.ErrorResp);
      assert.match(
        new TextDecoder().decode(after.frames[0]),
        /fsync failed .*refused until the server is restarted/,
      );
      assert.deepEqual((await get(engine, "before")).content?.[0].value, text.encode("kept"));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a compaction that finds no room gives back what it took: the writes that fit go on", async () => {
  await withFullFilesystem(async (disk) => {
    const dir = join(disk.directory, "data");
    await withEngine(dir, { compactMinBytes: 1 << 30 }, async (engine) => {
      for (let i = 0; i < 50; i++) await put(engine, `k${i}`, valueOf(i, 5000));
    });
    disk.fill();
    disk.makeRoom(64 * 1024); // Room for a few small writes, not for the 250 KiB rewrite.
    await withEngine(dir, { compactMinBytes: 1, compactRatio: 1 }, async (engine, log) => {
      // Each write makes the log outgrow its live data: a compaction is tried and fails.
      for (let i = 0; i < 5; i++) await put(engine, `k${i}`, valueOf(i, 1000));
      assert.equal(log.compactionCount, 0);
    });
    assert.deepEqual(readdirSync(dir).sort(), [LOG_FILE]);
    await withEngine(dir, { compactMinBytes: 1 << 30 }, async (engine) => {
      assert.deepEqual((await get(engine, "k4")).content?.[0].value, valueOf(4, 1000));
      assert.deepEqual((await get(engine, "k49")).content?.[0].value, valueOf(49, 5000));
    });
  }, { sizeKiB: 1024, empty: true });
});

Deno.test("on a full disk the log opens, writes fail with ENOSPC and work again once there is room", async () => {
  await withFullFilesystem(async (disk) => {
    const dir = join(disk.directory, "data");
    await logOfPuts(dir, 5);
    disk.fill(); // Not a byte left, not even for the pid file (which stopped the start).
    await withEngine(dir, {}, async (engine) => {
      assert.deepEqual((await get(engine, "k4")).content?.[0].value, valueOf(4, 300));
      const body = encodeMessage(MessageCode.PutReq, {
        bucket: text.encode("b"),
        key: text.encode("k4"),
        content: { value: valueOf(40, 20_000) }, // More than the last page's slack
      });
      const refused = await engine.handle(MessageCode.PutReq, body);
      assert.match(
        new TextDecoder().decode(refused.frames[0]),
        /write failed: (ENOSPC|No space left on device)/,
      );
      assert.deepEqual((await get(engine, "k4")).content?.[0].value, valueOf(4, 300), "undone");
      disk.makeRoom(64 * 1024);
      await put(engine, "k4", valueOf(40, 20_000));
    });
    await withEngine(dir, {}, async (engine) => {
      assert.deepEqual((await get(engine, "k4")).content?.[0].value, valueOf(40, 20_000));
    });
  }, { sizeKiB: 512, empty: true });
});

Deno.test("a write the disk refuses is never seen by a reader, not even one in the same turn", async () => {
  await withFullFilesystem(async (disk) => {
    const dir = join(disk.directory, "data");
    await logOfPuts(dir, 1);
    disk.fill();
    await withEngine(dir, {}, async (engine) => {
      const refused = engine.handle(
        MessageCode.PutReq,
        encodeMessage(MessageCode.PutReq, {
          bucket: text.encode("b"),
          key: text.encode("k0"),
          content: { value: valueOf(40, 20_000) },
        }),
      );
      // Another connection's read, answered before the refusal's undo ran: it saw a value
      // that then vanished (a pre-warm could have taken it for a copy in Riak).
      const seen = get(engine, "k0");
      assert.equal((await refused).frames[0][4], MessageCode.ErrorResp);
      assert.deepEqual((await seen).content?.[0].value, valueOf(0, 300));
    });
  }, { sizeKiB: 512, empty: true });
});

Deno.test("a compaction's file left by a crash is removed at start", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await logOfPuts(dir, 3);
    writeFileSync(join(dir, `${LOG_FILE}.compact`), valueOf(1, 100_000));
    await withEngine(dir, {}, async (engine) => {
      assert.deepEqual((await get(engine, "k2")).content?.[0].value, valueOf(2, 300));
    });
    assert.deepEqual(readdirSync(dir).sort(), [LOG_FILE]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a data directory held by a live process is refused; a dead owner's lock is taken over", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async () => {
      await assert.rejects(DataLog.open(dir, new Keyspace()), /in use by the riakfs process/);
    });
    // pid 2^22 + 1 is above Linux's pid_max limit: no process has it
    writeFileSync(join(dir, LOCK_FILE), `${4194305}\n`);
    await withEngine(dir, {}, async (engine) => {
      await put(engine, "k", text.encode("v"));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a lock file left by a crash whose pid now names another live process does not keep the server out", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    // A killed server's pid, reused by an unrelated process (or a zombie not reaped yet).
    writeFileSync(join(dir, LOCK_FILE), `${process.ppid}\n`);
    await withEngine(dir, {}, async (engine) => {
      await put(engine, "k", text.encode("v"));
      assert.equal(readFileSync(join(dir, LOCK_FILE), "utf8"), `${process.pid}\n`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("records are checked with the standard CRC-32, so logs written earlier stay readable", () => {
  assert.equal(crc32(text.encode("123456789")), 0xcbf43926); // the CRC-32/IEEE check value
  assert.equal(crc32(new Uint8Array(0)), 0);
  const value = valueOf(7, 100_000);
  let reference = 0xffffffff; // bitwise CRC-32, independent of the implementation under test
  for (const byte of value) {
    reference ^= byte;
    for (let k = 0; k < 8; k++) {
      reference = reference & 1 ? 0xedb88320 ^ (reference >>> 1) : reference >>> 1;
    }
  }
  assert.equal(crc32(value), (reference ^ 0xffffffff) >>> 0);
});

Deno.test("a change readers can see is in the log file already, before its fsync is done", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    await withEngine(dir, {}, async (engine) => {
      const before = statSync(join(dir, LOG_FILE)).size;
      const body = encodeMessage(MessageCode.PutReq, {
        bucket: text.encode("b"),
        key: text.encode("seen"),
        content: { value: valueOf(1, 5000), content_type: text.encode("text/plain") },
      });
      const first = engine.handle(MessageCode.PutReq, body);
      // A second change while the first one's fsync runs: applied in memory, where a get sees
      // it (as Riak's value once its backend has it), so a node killed from here on must bring
      // it back: it is in the file (the page cache) at once, not once that fsync is done.
      const again = engine.handle(MessageCode.PutReq, body);
      assert.ok(statSync(join(dir, LOG_FILE)).size > before + 10_000);
      assert.equal((await get(engine, "seen")).content?.[0].value.length, 5000);
      await Promise.all([first, again]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * 7cc39b4's riak.log after: a put of b/kept (with usermeta), a put and a delete of b/gone,
 * n_val 2 set on bucket b, and x and y added to the set s/set of type sets.
 */
const OLD_LOG_BASE64 = [
  "AAABc2s13hkAAAEveyJ0Ijoib2JqZWN0IiwidHlwZSI6ImRlZmF1bHQiLCJidWNrZXQiOiJiIiwia2V5Ijoia2VwdC",
  "IsIm9iamVjdCI6eyJpbmNhcm5hdGlvbiI6ImrCr1x1MDAxNEbDpsOGw7g4IiwiY291bnRlciI6MSwic2libGluZ3Mi",
  "Olt7ImRvdCI6MSwiY29udGVudCI6eyJ2YWx1ZSI6eyIkYiI6MTh9LCJjb250ZW50X3R5cGUiOnsiJGIiOjEwfSwidn",
  "RhZyI6eyIkYiI6MjJ9LCJsYXN0X21vZCI6MTc5NjcwNTEwMCwibGFzdF9tb2RfdXNlY3MiOjQ4OTAwMCwidXNlcm1l",
  "dGEiOlt7ImtleSI6eyIkYiI6MTF9LCJ2YWx1ZSI6eyIkYiI6M319XX19XX19aGVsbG8gZnJvbSA3Y2MzOWI0dGV4dC",
  "9wbGFpbnB5cUJMcExpemtOV09uVG9TWmY4YkpyaWFrZnMtbW9kZTY0NAAAAWnmaSCrAAABMHsidCI6Im9iamVjdCIs",
  "InR5cGUiOiJkZWZhdWx0IiwiYnVja2V0IjoiYiIsImtleSI6ImdvbmUiLCJvYmplY3QiOnsiaW5jYXJuYXRpb24iOi",
  "LCrcOJwrPCpsOZP8K9XHUwMDEwIiwiY291bnRlciI6MSwic2libGluZ3MiOlt7ImRvdCI6MSwiY29udGVudCI6eyJ2",
  "YWx1ZSI6eyIkYiI6N30sImNvbnRlbnRfdHlwZSI6eyIkYiI6MTB9LCJ2dGFnIjp7IiRiIjoyMn0sImxhc3RfbW9kIj",
  "oxNzk2NzA1MTAwLCJsYXN0X21vZF91c2VjcyI6NDkyMDAwLCJ1c2VybWV0YSI6W3sia2V5Ijp7IiRiIjoxMX0sInZh",
  "bHVlIjp7IiRiIjozfX1dfX1dfX1yZW1vdmVkdGV4dC9wbGFpbjA0cVh4ZTVzYzZ1Y003TzgwZWtsbVhyaWFrZnMtbW",
  "9kZTY0NAAAAKDTevwZAAAAnHsidCI6Im9iamVjdCIsInR5cGUiOiJkZWZhdWx0IiwiYnVja2V0IjoiYiIsImtleSI6",
  "ImdvbmUiLCJvYmplY3QiOnsiaW5jYXJuYXRpb24iOiLCrcOJwrPCpsOZP8K9XHUwMDEwIiwiY291bnRlciI6Miwic2",
  "libGluZ3MiOltdLCJkZWxldGVkQXQiOjE3OTY3MDUxMDA0OTN9fQAAAETfim3nAAAAQHsidCI6ImJ1Y2tldCIsInR5",
  "cGUiOiJkZWZhdWx0IiwiYnVja2V0IjoiYiIsInByb3BzIjp7Im5fdmFsIjoyfX0AAAFksOCRPwAAATZ7InQiOiJvYm",
  "plY3QiLCJ0eXBlIjoic2V0cyIsImJ1Y2tldCI6InMiLCJrZXkiOiJzZXQiLCJvYmplY3QiOnsiaW5jYXJuYXRpb24i",
  "OiLCl8KfwqvDm8KDwrHDq8O1IiwiY291bnRlciI6MSwic2libGluZ3MiOlt7ImRvdCI6MSwiY29udGVudCI6eyJ2YW",
  "x1ZSI6eyIkYiI6MH0sImNvbnRlbnRfdHlwZSI6eyIkYiI6MjB9LCJ2dGFnIjp7IiRiIjoyMn0sImxhc3RfbW9kIjox",
  "Nzk2NzA1MTAwLCJsYXN0X21vZF91c2VjcyI6NDk2MDAwfSwiY3JkdCI6eyJraW5kIjoic2V0IiwiY2xvY2siOjEsIm",
  "VsZW1lbnRzIjpbWyJ4IiwxXSxbInkiLDFdXX19XX19YXBwbGljYXRpb24vcmlha19zZXRiRlo4MzZKVlJuWnN6QmV6",
  "OEx2NWNO",
].join("");

Deno.test("a data log an earlier build's serve-riak wrote is read back whole: objects, deletions, bucket props, sets", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riak-log-"));
  try {
    writeFileSync(join(dir, LOG_FILE), Buffer.from(OLD_LOG_BASE64, "base64"));
    await withEngine(dir, {}, async (engine) => {
      const kept = (await get(engine, "kept")).content?.[0];
      assert.equal(Buffer.from(kept!.value!).toString(), "hello from 7cc39b4");
      assert.deepEqual(kept!.usermeta?.map((meta) => Buffer.from(meta.key).toString()), [
        "riakfs-mode",
      ]);
      assert.deepEqual((await get(engine, "gone")).content ?? [], []);
      await assertPropsAndSet(engine);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
