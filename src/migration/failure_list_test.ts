import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailureList, type FailureRecord, reasonOf } from "./failure_list.ts";

const record = (i: number): FailureRecord => ({
  path: Buffer.from([0x66, i, 0xff]), // not UTF-8: paths are bytes
  error: `error ${i}`,
  counted: { seen: { files: 1, bytes: i }, failed: { files: 1, bytes: i } },
  retryNow: i % 2 === 0,
});

Deno.test("a failure list holds the first records in memory and spills the rest", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-failures-"));
  const spill = join(dir, "failed.spill");
  try {
    const list = new FailureList(spill, 3);
    for (let i = 0; i < 10; i++) list.add(record(i));
    assert.equal(list.size, 10);
    assert.deepEqual(list.first, [0, 1, 2].map(record));
    const taken: FailureRecord[] = [];
    for await (const failure of list.takeAll()) {
      taken.push(failure);
      // Added while taking: a new list, not this pass.
      if (failure.path[1] < 5) list.add(record(100 + failure.path[1]));
    }
    assert.deepEqual(taken, Array.from({ length: 10 }, (_, i) => record(i)));
    assert.equal(list.size, 5);
    const again: number[] = [];
    for await (const failure of list.takeAll()) again.push(failure.path[1]);
    assert.deepEqual(again, [100, 101, 102, 103, 104]);
    assert.equal(list.size, 0);
    list.close();
    assert.deepEqual(existsSync(spill), false);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a failure list without a spill file (dry run) counts what it does not hold", async () => {
  const list = new FailureList(undefined, 2);
  for (let i = 0; i < 5; i++) list.add(record(i));
  assert.equal(list.size, 5);
  const taken: FailureRecord[] = [];
  for await (const failure of list.takeAll()) taken.push(failure);
  assert.deepEqual(taken, [record(0), record(1)]);
  list.close();
});

Deno.test("reasonOf drops the path a message starts with, and only that", () => {
  assert.equal(reasonOf(new Error("/a.txt: upload failed"), "/a.txt"), "upload failed");
  assert.equal(reasonOf(new Error("/b: is a directory"), "/a"), "/b: is a directory");
  assert.equal(reasonOf("plain text", "/a"), "plain text");
});

Deno.test("reasonOf escapes the control characters of a system error quoting a raw path", () => {
  const error = new Error("ENAMETOOLONG: name too long, opendir '/srv/data/a\nfailed: /forged'");
  assert.equal(
    reasonOf(error, "/a\\x0afailed: /forged"),
    "ENAMETOOLONG: name too long, opendir '/srv/data/a\\x0afailed: /forged'",
  );
});
