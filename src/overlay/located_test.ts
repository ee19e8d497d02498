import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chmodSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import { rootStat } from "./attributes.ts";
import type { PendingUpload } from "./journal.ts";
import { attributesOf, type Located, sizeWhereLocated, timesOf } from "./located.ts";
import type { WriteSession } from "./session_table.ts";

const upload: PendingUpload = {
  id: 1,
  path: "/f",
  staged: "s1",
  mode: 0o640,
  uid: 3,
  gid: 4,
  mtimeNs: "2000",
  size: 5,
};

function withLocalFile(test: (local: Located & { where: "local" }) => void): void {
  const directory = mkdtempSync(join(tmpdir(), "located-test-"));
  try {
    const file = join(directory, "f");
    writeFileSync(file, "12345");
    chmodSync(file, 0o4600);
    test({ where: "local", stats: lstatSync(file, { bigint: true }) });
  } finally {
    rmSync(directory, { recursive: true });
  }
}

Deno.test("attributesOf reads mode, owner and atime where the file was found", () => {
  const riak = { ...rootStat(7n), type: "file" as const, mode: 0o600, uid: 1, gid: 2 };
  assert.deepEqual(attributesOf({ where: "riak", stat: { ...riak, atimeNs: 6n } }), {
    mode: 0o600,
    uid: 1,
    gid: 2,
    atimeNs: 6n,
  });
  const spool = lstatSync(".", { bigint: true });
  assert.deepEqual(attributesOf({ where: "spool", upload, stats: spool }), {
    mode: 0o640,
    uid: 3,
    gid: 4,
    atimeNs: undefined,
  });
  assert.equal(
    attributesOf({ where: "spool", upload: { ...upload, atimeNs: "9" }, stats: spool }).atimeNs,
    9n,
  );
  const session = { path: "/f", mode: 0o700, uid: 5, gid: 6, atimeNs: 1n } as WriteSession;
  assert.deepEqual(attributesOf({ where: "open", session }), {
    mode: 0o700,
    uid: 5,
    gid: 6,
    atimeNs: 1n,
  });
  withLocalFile((local) => {
    const attributes = attributesOf(local);
    assert.equal(attributes.mode, 0o4600);
    assert.equal(attributes.uid, Number(local.stats.uid));
    assert.equal(attributes.atimeNs, undefined);
  });
});

Deno.test("attributesOf refuses a local directory with EISDIR", () => {
  const located: Located = { where: "local", stats: lstatSync(".", { bigint: true }) };
  assert.throws(
    () => attributesOf(located),
    (error) => error instanceof FuseError && error.errno === Errno.EISDIR,
  );
});

Deno.test("sizeWhereLocated gives the size of every place but a write session", () => {
  const riak = { ...rootStat(7n), path: Buffer.from("f"), type: "file" as const, size: 11 };
  assert.equal(sizeWhereLocated({ where: "riak", stat: riak }), 11);
  withLocalFile((local) => {
    assert.equal(sizeWhereLocated(local), 5);
    assert.equal(sizeWhereLocated({ where: "spool", upload, stats: local.stats }), 5);
  });
  const session = { path: "/f" } as WriteSession;
  assert.throws(() => sizeWhereLocated({ where: "open", session }), /\/f: a write session/);
});

Deno.test("timesOf gives access and modification times, Riak's mtime standing in for atime", () => {
  assert.deepEqual(timesOf({ where: "riak", stat: rootStat(7n) }), { atimeNs: 7n, mtimeNs: 7n });
  assert.deepEqual(timesOf({ where: "riak", stat: { ...rootStat(7n), atimeNs: 3n } }), {
    atimeNs: 3n,
    mtimeNs: 7n,
  });
  withLocalFile((local) => {
    assert.deepEqual(timesOf(local), {
      atimeNs: local.stats.atimeNs,
      mtimeNs: local.stats.mtimeNs,
    });
    const stats = local.stats;
    assert.deepEqual(timesOf({ where: "spool", upload, stats }), {
      atimeNs: 2000n,
      mtimeNs: 2000n,
    });
    assert.deepEqual(timesOf({ where: "spool", upload: { ...upload, atimeNs: "1" }, stats }), {
      atimeNs: 1n,
      mtimeNs: 2000n,
    });
  });
  assert.equal(timesOf({ where: "open", session: { path: "/f" } as WriteSession }), undefined);
});
