import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { FileStat } from "../store/store.ts";
import {
  definedOnly,
  fileAttr,
  mirroredKey,
  riakAttr,
  rootStat,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  seenFileStat,
  timespecOf,
  toNs,
  versionOf,
} from "./attributes.ts";

const MTIME_NS = 1_700_000_000_123_456_789n;

function riakFile(overrides: Partial<FileStat> = {}): FileStat {
  return {
    ...rootStat(MTIME_NS),
    path: Buffer.from("a/b"),
    type: "file",
    size: 1025,
    sha256: "ab".repeat(32),
    mode: 0o100640,
    uid: 1000,
    gid: 1001,
    ...overrides,
  };
}

Deno.test("timespecOf and toNs convert between nanoseconds and FUSE times both ways", () => {
  assert.deepEqual(timespecOf(MTIME_NS), { sec: 1_700_000_000, nsec: 123_456_789 });
  assert.equal(toNs(timespecOf(MTIME_NS)), MTIME_NS);
  assert.equal(toNs(undefined), undefined);
  const before = BigInt(Date.now()) * 1_000_000n;
  const now = toNs("now")!;
  assert.ok(now >= before && now <= BigInt(Date.now()) * 1_000_000n);
});

Deno.test("timespecOf keeps the nanoseconds within 0..999,999,999, before 1970 too", () => {
  const cases: Array<[bigint, { sec: number; nsec: number }]> = [
    [0n, { sec: 0, nsec: 0 }],
    [1_500_000_000n, { sec: 1, nsec: 500_000_000 }],
    [999_999_999n, { sec: 0, nsec: 999_999_999 }],
    [-1n, { sec: -1, nsec: 999_999_999 }],
    [-1_000_000_000n, { sec: -1, nsec: 0 }],
    // Truncated toward zero, it was -1 s and -500,000,000 ns: out of a timespec's range.
    [-1_500_000_000n, { sec: -2, nsec: 500_000_000 }],
    [-MTIME_NS, { sec: -1_700_000_001, nsec: 876_543_211 }],
  ];
  for (const [nanoseconds, expected] of cases) {
    assert.deepEqual(timespecOf(nanoseconds), expected, `${nanoseconds} ns`);
    assert.equal(toNs(timespecOf(nanoseconds)), nanoseconds, `${nanoseconds} ns back`);
  }
});

Deno.test("riakAttr shows Riak's type, permission bits, times and blocks", () => {
  const attr = riakAttr(riakFile({ atimeNs: 5_000_000_001n }), 7, 0, 0);
  assert.equal(attr.ino, 7);
  assert.equal(attr.mode, S_IFREG | 0o640);
  assert.equal(attr.size, 1025);
  assert.equal(attr.blocks, 3);
  assert.equal(attr.nlink, 1);
  assert.deepEqual(attr.mtime, timespecOf(MTIME_NS));
  assert.deepEqual(attr.ctime, timespecOf(MTIME_NS));
  assert.deepEqual(attr.atime, { sec: 5, nsec: 1 });
  assert.deepEqual([attr.uid, attr.gid], [1000, 1001]);

  const directory = riakAttr(riakFile({ type: "directory", mode: 0o2755 }), 8, 0, 0);
  assert.equal(directory.mode, S_IFDIR | 0o2755);
  assert.equal(directory.nlink, 2);
  assert.deepEqual(directory.atime, directory.mtime, "no atime kept: the mtime stands in");
  assert.equal(riakAttr(riakFile({ type: "symlink" }), 9, 0, 0).mode & S_IFLNK, S_IFLNK);
});

Deno.test("riakAttr gives a file Riak holds no owner for the mount's default owner", () => {
  const foreign = riakAttr(riakFile({ managed: false }), 7, 500, 501);
  assert.deepEqual([foreign.uid, foreign.gid], [500, 501]);
});

Deno.test("fileAttr builds a regular file's attributes from its parts", () => {
  const attr = fileAttr(3, 512, 0o104755, 10, 20, MTIME_NS);
  assert.equal(attr.mode, S_IFREG | 0o4755);
  assert.equal(attr.blocks, 1);
  assert.deepEqual(attr.atime, timespecOf(MTIME_NS));
  assert.deepEqual([attr.ino, attr.size, attr.uid, attr.gid], [3, 512, 10, 20]);
  assert.deepEqual(fileAttr(3, 0, 0o644, 0, 0, MTIME_NS, 2n).atime, { sec: 0, nsec: 2 });
});

Deno.test("rootStat is root's 0755 directory changed at the given time", () => {
  const root = rootStat(MTIME_NS);
  assert.equal(root.type, "directory");
  assert.equal(root.mode, 0o755);
  assert.deepEqual([root.uid, root.gid, root.mtimeNs], [0, 0, MTIME_NS]);
  assert.equal(root.path.length, 0);
});

Deno.test("seenFileStat shows a file as the mount last saw it in Riak", () => {
  const seen = { size: 9, mtimeNs: `${MTIME_NS}`, mode: 0o600, uid: 1, gid: 2 };
  const stat = seenFileStat("/d/f", seen);
  assert.equal(stat.path.toString(), "d/f");
  assert.equal(stat.type, "file");
  assert.deepEqual([stat.size, stat.mode, stat.uid, stat.gid], [9, 0o600, 1, 2]);
  assert.equal(stat.mtimeNs, MTIME_NS);
  assert.equal(stat.atimeNs, undefined);
  assert.equal(seenFileStat("/f", { ...seen, atimeNs: "42" }).atimeNs, 42n);
});

Deno.test("definedOnly drops undefined properties and keeps falsy ones", () => {
  assert.deepEqual(definedOnly({ mode: 0, uid: undefined, gid: 5 }), { mode: 0, gid: 5 });
});

Deno.test("versionOf and mirroredKey name versions by content and by size and mtime", () => {
  assert.deepEqual(versionOf("/a/b", riakFile()), {
    path: "/a/b",
    version: "ab".repeat(32),
    size: 1025,
  });
  assert.equal(mirroredKey({ size: 10n, mtimeNs: 20n }), "10:20");
  assert.notEqual(mirroredKey({ size: 1n, mtimeNs: 23n }), mirroredKey({ size: 12n, mtimeNs: 3n }));
});
