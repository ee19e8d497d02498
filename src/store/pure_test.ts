import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { contentTypeFor, DEFAULT_CONTENT_TYPE } from "./content_type.ts";
import { InvalidPathError } from "./errors.ts";
import { Layout, placementNames, resolveNamespace } from "./layout.ts";
import {
  chunkCount,
  chunkKey,
  decodeManifest,
  encodeManifest,
  type Manifest,
  ManifestFormatError,
  newGenerationId,
  parseChunkKey,
} from "./manifest.ts";
import {
  childPath,
  displayBytes,
  displayPath,
  isSameOrBelow,
  normalizePath,
  splitParent,
} from "./path.ts";
import {
  decodeMember,
  directoryKey,
  encodeEntryMember,
  encodeMarkerMember,
  levelsFromMarkers,
  shardIndex,
  shardKey,
} from "./shards.ts";
import { chooseSibling } from "./siblings.ts";
import {
  decodeUsermeta,
  encodeUsermeta,
  LAYOUT_VERSION,
  type ObjectMeta,
  renamePartners,
  USERMETA,
  UsermetaFormatError,
  withRenameMark,
} from "./usermeta.ts";

const SHA = "a".repeat(64);

Deno.test("normalizePath drops extra slashes and keeps raw bytes", () => {
  assert.equal(normalizePath("/a//b c/é/").toString("utf8"), "a/b c/é");
  assert.equal(normalizePath("").length, 0);
  const raw = normalizePath(Uint8Array.of(0x61, 0x2f, 0xff, 0xfe));
  assert.deepEqual([...raw], [0x61, 0x2f, 0xff, 0xfe]);
  assert.equal(displayPath(raw), "/a/\\xff\\xfe");
});

Deno.test("displayBytes names bytes unambiguously and never prints control characters raw", () => {
  const shown = (bytes: number[] | string) =>
    displayBytes(typeof bytes === "string" ? Buffer.from(bytes) : Uint8Array.from(bytes));
  assert.equal(shown("plain name.txt"), "plain name.txt");
  assert.equal(shown("café ☕ 𝄞"), "café ☕ 𝄞");
  // The byte 0xe9 and the four characters `\xe9` must not look alike.
  assert.equal(shown([0x6c, 0x61, 0x74, 0xe9]), "lat\\xe9");
  assert.equal(shown("lat\\xe9"), "lat\\\\xe9");
  assert.equal(shown("new\nline\x1b[31m\x7f"), "new\\x0aline\\x1b[31m\\x7f");
  assert.equal(shown("caf\u0085"), "caf\\xc2\\x85", "a C1 control, byte by byte");
  // Overlong, surrogate, truncated and stray bytes are not UTF-8.
  assert.equal(shown([0xc0, 0xaf]), "\\xc0\\xaf");
  assert.equal(shown([0xed, 0xa0, 0x80]), "\\xed\\xa0\\x80");
  assert.equal(shown([0xe2, 0x98]), "\\xe2\\x98");
  assert.equal(shown([0x80, 0x61]), "\\x80a");
});

Deno.test("normalizePath refuses dot segments and NUL", () => {
  assert.throws(() => normalizePath("a/../b"), InvalidPathError);
  assert.throws(() => normalizePath("./b"), InvalidPathError);
  assert.throws(() => normalizePath("a\0b"), InvalidPathError);
  for (const path of ["..", ".", "a/.", "a/..", "a//..", "/./", "\0", "a/b\0"]) {
    assert.throws(() => normalizePath(path), InvalidPathError, JSON.stringify(path));
  }
});

Deno.test("normalizePath returns a normal path's bytes as they are, and a copy of them", () => {
  for (const path of ["a", "...", ".a", "a.", "..a", "a..", "a/.b/..c/d.", "é/ü"]) {
    assert.equal(normalizePath(path).toString("utf8"), path);
  }
  const given = Buffer.from("a/b");
  const normal = normalizePath(given);
  assert.deepEqual(normal, given);
  given[0] = 0x7a;
  assert.equal(normal.toString(), "a/b", "the caller's bytes may change afterwards");
});

Deno.test("splitParent, childPath and isSameOrBelow", () => {
  const { parent, name } = splitParent(Buffer.from("a/b/c"));
  assert.equal(parent.toString(), "a/b");
  assert.equal(name.toString(), "c");
  assert.equal(splitParent(Buffer.from("top")).parent.length, 0);
  assert.equal(childPath(Buffer.alloc(0), Buffer.from("x")).toString(), "x");
  assert.equal(childPath(Buffer.from("a"), Buffer.from("x")).toString(), "a/x");
  assert.ok(isSameOrBelow(Buffer.from("a/b"), Buffer.from("a")));
  assert.ok(isSameOrBelow(Buffer.from("a"), Buffer.from("a")));
  assert.ok(!isSameOrBelow(Buffer.from("ab"), Buffer.from("a")));
  assert.ok(isSameOrBelow(Buffer.from("ab"), Buffer.alloc(0)));
});

Deno.test("usermeta round trip and foreign objects", () => {
  const meta: ObjectMeta = {
    layout: LAYOUT_VERSION,
    type: "file",
    storage: "chunked",
    size: 5_000_000_000,
    mode: 0o4755,
    uid: 1000,
    gid: 100,
    mtimeNs: 1_764_000_000_123_456_789n,
    sha256: SHA,
  };
  const pairs = encodeUsermeta(meta);
  assert.equal(pairs.find((p) => p.key === "riakfs-mode")?.value, "4755");
  assert.deepEqual(decodeUsermeta(pairs), meta);
  assert.equal(decodeUsermeta([{ key: "other", value: "1" }]), undefined);
  // Names are read whatever their case (HTTP tools may change it); the last of a name wins.
  const shouted = pairs.map((p) => ({ key: p.key.toUpperCase(), value: p.value }));
  assert.deepEqual(decodeUsermeta(shouted), meta);
  assert.deepEqual(
    decodeUsermeta([...pairs, { key: "Riakfs-Uid", value: "7" }]),
    { ...meta, uid: 7 },
  );
  assert.throws(
    () => decodeUsermeta(pairs.filter((p) => p.key !== "riakfs-gid")),
    /riakfs-gid is missing/,
  );
  assert.throws(
    () => decodeUsermeta(pairs.map((p) => p.key === "riakfs-size" ? { ...p, value: "x" } : p)),
    UsermetaFormatError,
  );
  assert.throws(
    () => decodeUsermeta(pairs.map((p) => p.key === "riakfs-layout" ? { ...p, value: "9" } : p)),
    /layout version 9/,
  );
});

Deno.test("manifest round trip, validation and chunk keys", () => {
  const manifest: Manifest = {
    size: 2 * 1024 + 1,
    chunkSize: 1024,
    sha256: SHA,
    generation: newGenerationId(),
    chunks: [SHA, SHA, "b".repeat(64)],
    contentType: "image/png",
  };
  const bytes = encodeManifest(manifest);
  assert.deepEqual(decodeManifest(bytes), manifest);
  assert.match(new TextDecoder().decode(bytes), /^\{"format":"riakfs-manifest\/1","size":2049,/);
  assert.throws(
    () => decodeManifest(encodeManifest({ ...manifest, chunks: [SHA] })),
    ManifestFormatError,
  );
  assert.throws(() => decodeManifest(new TextEncoder().encode("nope")), ManifestFormatError);
  assert.equal(chunkCount(0, 1024), 0);
  assert.equal(chunkCount(1024, 1024), 1);
  assert.equal(chunkCount(1025, 1024), 2);
  assert.match(manifest.generation, /^[0-9a-f]{32}$/);
  const key = chunkKey(manifest.generation, 12);
  assert.deepEqual(parseChunkKey(key), { generation: manifest.generation, index: 12 });
  assert.equal(parseChunkKey("foo.1"), undefined);
});

Deno.test("content type from extension", () => {
  assert.equal(contentTypeFor("a.JPG"), "image/jpeg");
  assert.equal(contentTypeFor("archive.tar.gz"), "application/gzip");
  assert.equal(contentTypeFor("README"), DEFAULT_CONTENT_TYPE);
  assert.equal(contentTypeFor(".bashrc"), DEFAULT_CONTENT_TYPE);
});

Deno.test("sibling resolution: newest mtime, then greatest hash, order-independent", () => {
  const a = { mtimeNs: 5n, sha256: "11", item: "a" };
  const b = { mtimeNs: 7n, sha256: "00", item: "b" };
  const c = { mtimeNs: 7n, sha256: "ff", item: "c" };
  assert.equal(chooseSibling([a, b]), "b");
  assert.equal(chooseSibling([a, b, c]), "c");
  assert.equal(chooseSibling([c, b, a]), "c");
  assert.throws(() => chooseSibling([]), RangeError);
  // The same bytes uploaded twice (two generations, one mtime): one winner in any order.
  const g1 = {
    mtimeNs: 5n,
    sha256: "ff",
    value: new TextEncoder().encode('{"generation":"1"}'),
    item: "g1",
  };
  const g2 = {
    mtimeNs: 5n,
    sha256: "ff",
    value: new TextEncoder().encode('{"generation":"2"}'),
    item: "g2",
  };
  assert.equal(chooseSibling([g1, g2]), "g2");
  assert.equal(chooseSibling([g2, g1]), "g2");
});

Deno.test("shard members, keys and indexes", () => {
  const member = encodeEntryMember("directory", Buffer.from("sub dir"));
  assert.equal(member.toString(), "d:sub dir");
  assert.deepEqual(decodeMember(member), {
    kind: "entry",
    entry: { type: "directory", name: Buffer.from("sub dir") },
  });
  assert.deepEqual(decodeMember(encodeMarkerMember(256)), { kind: "marker", shardCount: 256 });
  assert.deepEqual(decodeMember(Buffer.from("zzz")), { kind: "unknown" });
  assert.equal(directoryKey(Buffer.alloc(0)).toString(), "/");
  assert.equal(shardKey(directoryKey(Buffer.from("p")), 1, 0).toString(), "p/");
  assert.equal(shardKey(directoryKey(Buffer.from("p")), 16, 3).toString(), "p/#16.3");
  assert.deepEqual(levelsFromMarkers([256, 16, 16]), [1, 16, 256]);
  // deterministic, and spread over the shards
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(shardIndex(Buffer.from(`file-${i}`), 16));
  assert.equal(seen.size, 16);
  assert.equal(shardIndex(Buffer.from("x"), 16), shardIndex(Buffer.from("x"), 16));
  assert.equal(shardIndex(Buffer.from("x"), 1), 0);
});

Deno.test("default layout maps a path to its key", () => {
  const layout = new Layout(resolveNamespace({ bucket: "photos" }));
  const file = layout.file(normalizePath("test/images/file.jpg"));
  assert.equal(file.object.bucketType, "default");
  assert.equal(file.object.bucket.toString(), "photos");
  assert.equal(file.object.key.toString(), "test/images/file.jpg");
  assert.equal(file.riakFuseSizeSet, undefined);
  const dir = layout.directory(normalizePath("test/images"));
  assert.equal(dir.object.key.toString(), "test/images/");
  assert.equal(dir.entries.kind, "sharded");
  if (dir.entries.kind === "sharded") {
    assert.equal(dir.entries.bucketType, "sets");
    assert.equal(dir.entries.bucket.toString(), "photos.dirs");
  }
  assert.equal(layout.chunk("g.0").bucket.toString(), "photos.chunks");
  assert.throws(() => layout.file(normalizePath("/")), InvalidPathError);
});

Deno.test("riak-fuse preset maps <folder>/images/<file> as riak-fuse did, other paths by default", () => {
  const layout = new Layout(
    resolveNamespace({ preset: "riak-fuse", riakFuse: { contentPrefix: "P_" } }),
  );
  const file = layout.file(normalizePath("/test/images/file.jpg"));
  assert.equal(file.object.bucketType, "default");
  assert.equal(file.object.bucket.toString(), "P_test");
  assert.equal(file.object.key.toString(), "file.jpg");
  assert.equal(file.riakFuseSizeSet?.bucketType, "sets");
  assert.equal(file.riakFuseSizeSet?.bucket.toString(), "IMGDIR_test");
  assert.equal(file.riakFuseSizeSet?.key.toString(), "file.jpg");
  const namedLikeListing = layout.file(normalizePath("/test/images/directory"));
  assert.equal(namedLikeListing.object.bucket.toString(), "P_test");
  assert.equal(namedLikeListing.riakFuse, true);
  assert.equal(namedLikeListing.riakFuseSizeSet, undefined, "its size set would be the listing");
  const dir = layout.directory(normalizePath("test/images"));
  assert.equal(dir.entries.kind, "riak-fuse");
  if (dir.entries.kind === "riak-fuse") {
    assert.equal(dir.entries.set.bucket.toString(), "IMGDIR_test");
    assert.equal(dir.entries.set.key.toString(), "directory");
  }
  for (const other of ["test/file.jpg", "test/images/sub/file.jpg", "test/other/file.jpg"]) {
    const placement = layout.file(normalizePath(other));
    assert.equal(placement.object.bucket.toString(), "riakfs", other);
    assert.equal(placement.object.key.toString(), other);
  }
  assert.equal(layout.directory(normalizePath("test")).entries.kind, "sharded");
});

Deno.test("resolveNamespace checks numbers and presets", () => {
  assert.throws(() => resolveNamespace({ chunkSize: 0 }), RangeError);
  assert.throws(() => resolveNamespace({ shardFanout: 1 }), RangeError);
  assert.throws(() => resolveNamespace({ preset: "nope" as "default" }), RangeError);
  assert.throws(() => resolveNamespace({ bucket: "" }), RangeError);
  assert.equal(resolveNamespace().chunkSize, 1024 * 1024);
});

Deno.test("rename marks: one pair per direction, paths comma-separated, each named once", () => {
  const a = Buffer.from("d/a");
  const b = Buffer.from("d/\xff b", "latin1");
  let pairs = withRenameMark([{ key: USERMETA.size, value: "3" }], USERMETA.renamedTo, [a]);
  pairs = withRenameMark(pairs, USERMETA.renamedTo, [b, a]);
  pairs = withRenameMark(pairs, USERMETA.renamedFrom, [a]);
  assert.deepEqual(pairs, [
    { key: USERMETA.renamedTo, value: `${a.toString("hex")},${b.toString("hex")}` },
    { key: USERMETA.renamedFrom, value: a.toString("hex") },
  ]);
  assert.deepEqual(renamePartners(pairs), [a, b]);
  // A value that is not hex (another writer's) names nobody.
  assert.deepEqual(renamePartners([{ key: USERMETA.renamedFrom, value: "zz,6162" }]), [
    Buffer.from("ab"),
  ]);
});

Deno.test("placementNames lists what decides where a path lands, derived names only where set otherwise", () => {
  assert.deepEqual(placementNames(resolveNamespace({ bucket: "photos" })), {
    "bucket-type": "default",
    bucket: "photos",
    "sets-bucket-type": "sets",
    layout: "default",
  });
  assert.equal(
    placementNames(resolveNamespace({ bucket: "photos", chunkBucket: "blobs" }))["chunk-bucket"],
    "blobs",
  );
  const fuse = placementNames(
    resolveNamespace({ preset: "riak-fuse", riakFuse: { contentPrefix: "PIC_" } }),
  );
  assert.equal(fuse["riak-fuse-content-prefix"], "PIC_");
  assert.equal(fuse["riak-fuse-directory-key"], "directory");
  assert.equal(fuse["riak-fuse-directory-bucket-type"], undefined);
});
