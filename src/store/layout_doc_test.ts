/**
 * docs/layout.md promises that an operator can find, list and fetch every file with plain
 * Riak tools from that page alone. These tests hold it to that: riakfs writes a tree, and a
 * reader written from the page only (_layout_doc_reader.ts, raw client, no src/store) must find
 * everything byte for byte with the same attributes; and objects a foreign program puts as the
 * page describes are read by riakfs.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { RiakClient } from "../riak/mod.ts";
import type { TestRiak } from "../riak-server/testing.ts";
import { type DocNamespace, docNamespace, LayoutDocReader } from "./_layout_doc_reader.ts";
import {
  putLegacyRiakFuseFile,
  riakFusePrefixes,
  seededBytes,
  sha256Hex,
  type StoreFixture,
  withStore,
} from "./_test_support.ts";
import type { Store } from "./store.ts";

const CHUNK = 1024;
const b = (text: string) => Buffer.from(text);
const join = (...names: (string | Buffer)[]) =>
  Buffer.concat(
    names.flatMap((
      name,
      i,
    ) => (i === 0 ? [b(""), Buffer.from(name)] : [b("/"), Buffer.from(name)])),
  );

/** What a path holds, as written. */
type Expected =
  | { type: "file"; content: Buffer; mode: number; uid: number; gid: number; mtimeNs: bigint }
  | { type: "symlink"; target: Buffer }
  | { type: "directory"; mode: number; uid: number; gid: number };

/** Runs `fn` with a store on a small-chunk, small-shard namespace and a page reader beside it. */
async function withReader(
  fn: (fixture: StoreFixture & { reader: LayoutDocReader; raw: RiakClient }) => Promise<void>,
  namespace: {
    bucketType?: string;
    chunkSize?: number;
    shardCapacity?: number;
    shardFanout?: number;
  } = {},
): Promise<void> {
  await withStore(async (fixture) => {
    const raw = new RiakClient({ nodes: fixture.riak.nodes });
    try {
      const reader = new LayoutDocReader(
        raw,
        docNamespace({ bucket: fixture.bucket, contentBucketType: namespace.bucketType }),
      );
      await fn({ ...fixture, reader, raw });
    } finally {
      await raw.close();
    }
  }, { namespace: { chunkSize: CHUNK, ...namespace } });
}

/** Walks the tree from `path` with the page reader only: every level of every directory. */
async function walkWithPage(
  reader: LayoutDocReader,
  path: Buffer,
  into: Map<string, Buffer> = new Map(),
): Promise<Map<string, Buffer>> {
  for (const entry of await reader.list(path)) {
    const child = path.length === 0 ? entry.name : join(path, entry.name);
    into.set(child.toString("hex"), child);
    const found = await reader.findEntry(path, entry.name);
    assert.equal(found?.type, entry.type, `${child} found in its shard`);
    if (entry.type === "directory") await walkWithPage(reader, child, into);
  }
  return into;
}

/** Checks every expected path with the page reader, against what was written and Store.stat. */
async function checkWithPage(
  reader: LayoutDocReader,
  store: Store,
  expected: Map<string, { path: Buffer; what: Expected }>,
): Promise<void> {
  for (const { path, what } of expected.values()) {
    const shown = path.toString("latin1");
    const stat = await reader.stat(path);
    assert.ok(stat, `${shown}: stat from the page`);
    assert.equal(stat.type, what.type, shown);
    const storeStat = await store.stat(path);
    for (const key of ["size", "mode", "uid", "gid", "mtimeNs", "sha256"] as const) {
      assert.equal(stat[key], storeStat[key], `${shown}: ${key}`);
    }
    if (what.type === "file") {
      const { content, attributes } = await reader.readFile(path);
      assert.ok(content.equals(what.content), `${shown}: bytes`);
      assert.equal(attributes.storage, what.content.length > CHUNK ? "chunked" : "inline", shown);
      assert.equal(stat.size, what.content.length, shown);
      assert.equal(stat.sha256, sha256Hex(what.content), shown);
      assert.equal(stat.mode, what.mode, shown);
      assert.equal(stat.uid, what.uid, shown);
      assert.equal(stat.gid, what.gid, shown);
      assert.equal(stat.mtimeNs, what.mtimeNs, shown);
    } else if (what.type === "directory") {
      assert.deepEqual([stat.mode, stat.uid, stat.gid, stat.size], [
        what.mode,
        what.uid,
        what.gid,
        0,
      ]);
    } else if (what.type === "symlink") {
      assert.ok((await reader.readSymlink(path)).equals(what.target), shown);
    }
  }
}

Deno.test("docs/layout.md alone finds, lists and reads everything riakfs wrote", async () => {
  await withReader(async ({ store, reader }) => {
    const expected = new Map<string, { path: Buffer; what: Expected }>();
    let seed = 0;
    const write = async (path: Buffer, size: number) => {
      const content = seededBytes(++seed, size);
      const attributes = {
        mode: 0o600 + (seed % 8) * 0o10,
        uid: 1000 + seed,
        gid: 2000 + seed,
        mtimeNs: 1_700_000_000_000_000_001n + BigInt(seed) * 1_000_000_007n,
      };
      await store.writeFile(path, content, attributes);
      expected.set(path.toString("hex"), { path, what: { type: "file", content, ...attributes } });
    };
    const directory = async (path: Buffer) => {
      await store.mkdir(path, { mode: 0o751, uid: 7, gid: 8 });
      expected.set(path.toString("hex"), {
        path,
        what: { type: "directory", mode: 0o751, uid: 7, gid: 8 },
      });
    };
    await directory(b("tree"));
    for (
      const [name, size] of [["empty", 0], ["one", 1], ["chunk", CHUNK], ["chunk+1", CHUNK + 1]]
    ) {
      await write(join("tree", name as string), size as number);
    }
    await write(join("tree", "several chunks.bin"), 3 * CHUNK + 17);
    await write(join("tree", Buffer.from([0x6e, 0xff, 0xfe, 0x20, 0xe9])), 10); // not UTF-8
    await write(join("tree", "é and space.jpg"), 5);
    await store.symlink(join("tree", "link"), "several chunks.bin");
    expected.set(join("tree", "link").toString("hex"), {
      path: join("tree", "link"),
      what: { type: "symlink", target: b("several chunks.bin") },
    });
    await directory(join("tree", "empty dir"));

    // Capacity 3, fanout 2: 40 entries open levels of 2, 4, 8 and 16 shards.
    await directory(join("tree", "big"));
    for (let i = 0; i < 40; i++) {
      await write(join("tree", "big", `n${i}`), i);
      // The root shard holds `capacity` entries; the next one opens a level.
      if (i === 2) assert.deepEqual(await reader.levels(join("tree", "big")), []);
      if (i === 3) assert.deepEqual(await reader.levels(join("tree", "big")), [2]);
    }
    assert.deepEqual(await reader.levels(join("tree", "big")), [2, 4, 8, 16]);

    // Emptied after it had levels: level markers only, still an empty directory.
    await directory(join("tree", "emptied"));
    for (let i = 0; i < 5; i++) await store.writeFile(join("tree", "emptied", `e${i}`), b("e"));
    for (let i = 0; i < 5; i++) await store.remove(join("tree", "emptied", `e${i}`));
    assert.deepEqual(await reader.levels(join("tree", "emptied")), [2]);

    // Root entries open levels of the root too: `/#2.0`, ...
    for (let i = 0; i < 4; i++) await write(b(`r${i}`), 2);
    assert.deepEqual(await reader.levels(Buffer.alloc(0)), [2]);

    // Overwritten: the page reader sees the new generation only; the old one's chunks are gone,
    // also when the new version is small (inline) or the old one was.
    const overwritten = join("tree", "overwritten");
    await write(overwritten, 2 * CHUNK + 1);
    const before = await reader.readManifest(overwritten);
    await write(overwritten, 3 * CHUNK + 2);
    const after = await reader.readManifest(overwritten);
    assert.notEqual(after.generation, before.generation);
    const shrunk = join("tree", "shrunk");
    await write(shrunk, 2 * CHUNK + 1);
    const large = await reader.readManifest(shrunk);
    await write(shrunk, 10);
    for (const old of [before, large]) {
      for (let i = 0; i < old.chunks.length; i++) {
        assert.equal(await reader.readChunk(old.generation, i), undefined, `old chunk ${i}`);
      }
    }
    await write(join("tree", "grown"), 10);
    await write(join("tree", "grown"), CHUNK + 10);
    // An explicit access time.
    const atimeNs = 1_600_000_000_000_000_123n;
    await store.setAttributes(join("tree", "one"), { atimeNs });
    assert.equal((await reader.stat(join("tree", "one")))?.atimeNs, atimeNs);
    assert.equal((await store.stat(join("tree", "one"))).atimeNs, atimeNs);

    // Renamed file (chunked: same generation) and directory (with a subdirectory).
    await write(join("tree", "to rename"), 2 * CHUNK + 5);
    const { generation } = await reader.readManifest(join("tree", "to rename"));
    const moved = expected.get(join("tree", "to rename").toString("hex"))!;
    expected.delete(join("tree", "to rename").toString("hex"));
    await store.rename(join("tree", "to rename"), join("tree", "renamed"));
    expected.set(join("tree", "renamed").toString("hex"), {
      ...moved,
      path: join("tree", "renamed"),
    });
    await directory(join("tree", "old dir"));
    await directory(join("tree", "old dir", "sub"));
    await write(join("tree", "old dir", "a"), 3);
    await write(join("tree", "old dir", "sub", "b"), CHUNK + 3);
    await store.rename(join("tree", "old dir"), join("tree", "new dir"));
    for (const [key, entry] of [...expected]) {
      const old = b("tree/old dir");
      if (entry.path.subarray(0, old.length).equals(old)) {
        expected.delete(key);
        const path = Buffer.concat([b("tree/new dir"), entry.path.subarray(old.length)]);
        expected.set(path.toString("hex"), { path, what: entry.what });
      }
    }
    assert.equal(await reader.stat(join("tree", "to rename")), undefined);
    assert.equal(await reader.stat(join("tree", "old dir")), undefined);
    assert.deepEqual(await reader.list(join("tree", "old dir")), []);
    assert.equal((await reader.readManifest(join("tree", "renamed"))).generation, generation);

    const walked = await walkWithPage(reader, Buffer.alloc(0));
    assert.deepEqual(
      [...walked.values()].map((path) => path.toString("latin1")).sort(),
      [...expected.values()].map(({ path }) => path.toString("latin1")).sort(),
    );
    await checkWithPage(reader, store, expected);
    assert.ok(await reader.isEmptyDirectory(join("tree", "empty dir")));
    assert.ok(await reader.isEmptyDirectory(join("tree", "emptied")));
    assert.ok(!await reader.isEmptyDirectory(join("tree", "new dir")));
    assert.equal(
      (await reader.fetch(reader.objectLocation(join("tree", "one")), true))?.contentType,
      "application/octet-stream",
    );
    assert.equal(
      (await reader.fetch(reader.objectLocation(join("tree", "é and space.jpg")), true))
        ?.contentType,
      "image/jpeg",
    );
    for (const path of [join("tree", "link"), b("tree/new dir/")]) {
      const object = await reader.fetch({ ...reader.objectLocation(path), key: path }, true);
      assert.equal(object?.contentType, "text/plain", path.toString());
    }
    const manifest = await reader.readManifest(join("tree", "several chunks.bin"));
    assert.equal(manifest.contentType, "application/octet-stream");
  }, { shardCapacity: 3, shardFanout: 2 });
});

/** The riak-fuse names of a test, for the store and the page reader. */
function riakFuseOf(riak: TestRiak) {
  return riakFusePrefixes(riak);
}

Deno.test("docs/layout.md alone reads the riak-fuse preset's IMG_/IMGDIR_ layout", async () => {
  await withReader(async ({ riak, client, bucket, another, raw }) => {
    const riakFuse = riakFuseOf(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    const reader = new LayoutDocReader(raw, docNamespace({ bucket, riakFuse }));
    const small = seededBytes(1, 700);
    const large = seededBytes(2, 2 * CHUNK + 9);
    await store.writeFile("shop/images/a.jpg", small, { mode: 0o644, uid: 3, gid: 4 });
    await store.writeFile("shop/images/big.jpg", large, { mode: 0o600, uid: 5, gid: 6 });
    await store.writeFile("shop/images/rewritten.jpg", seededBytes(3, 9));
    await store.writeFile("shop/images/rewritten.jpg", small);
    await store.symlink("shop/images/ln", "a.jpg");
    await store.mkdir("shop/images/sub");
    await store.writeFile("shop/images/sub/c.txt", b("in a subdirectory"));
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "legacy.jpg", "riak-fuse's own");

    assert.deepEqual(
      (await reader.list(b("shop/images"))).map((e) => `${e.type} ${e.name}`),
      [
        "file a.jpg",
        "file big.jpg",
        "file legacy.jpg",
        "symlink ln",
        "file rewritten.jpg",
        "directory sub",
      ],
    );
    assert.deepEqual((await reader.list(b("shop"))).map((e) => `${e.type} ${e.name}`), [
      "directory images",
    ]);
    for (const path of ["shop", "shop/images", "shop/images/sub"]) {
      assert.equal((await reader.stat(b(path)))?.type, "directory", path);
    }
    assert.ok((await reader.readFile(b("shop/images/a.jpg"))).content.equals(small));
    assert.ok((await reader.readFile(b("shop/images/rewritten.jpg"))).content.equals(small));
    assert.ok((await reader.readFile(b("shop/images/big.jpg"))).content.equals(large));
    assert.ok((await reader.readSymlink(b("shop/images/ln"))).equals(b("a.jpg")));
    assert.equal(
      (await reader.readFile(b("shop/images/sub/c.txt"))).content.toString(),
      "in a subdirectory",
    );
    const legacy = await reader.readFile(b("shop/images/legacy.jpg"));
    assert.equal(legacy.content.toString(), "riak-fuse's own");
    assert.equal(legacy.attributes.writtenByRiakfs, false);
    for (const path of ["shop/images/a.jpg", "shop/images/big.jpg", "shop/images/legacy.jpg"]) {
      const stat = await reader.stat(b(path));
      const storeStat = await store.stat(path);
      for (const key of ["size", "mode", "uid", "gid", "mtimeNs"] as const) {
        assert.equal(stat?.[key], storeStat[key], `${path}: ${key}`);
      }
    }
    // riak-fuse's format: whole value, octet-stream, exactly the current size in the size set.
    const a = await reader.fetch(reader.objectLocation(b("shop/images/a.jpg")), false);
    assert.equal(a?.contentType, "application/octet-stream");
    assert.deepEqual(await reader.riakFuseSizes(b("shop/images/rewritten.jpg")), [small.length]);
    assert.deepEqual(await reader.riakFuseSizes(b("shop/images/big.jpg")), [large.length]);
    const bigManifest = await reader.readManifest(b("shop/images/big.jpg"));
    assert.equal(bigManifest.contentType, "application/octet-stream");
    for (const name of ["ln", "sub"]) {
      assert.deepEqual(await reader.riakFuseSizes(b(`shop/images/${name}`)), [], name);
    }
    // Their types, beside the bare names, in the default layout's sets; files have none.
    const typed = async (name: string) => {
      const entry = await reader.findEntry(b("shop/images"), b(name));
      return entry && `${entry.type} ${entry.name}`;
    };
    assert.equal(await typed("ln"), "symlink ln");
    assert.equal(await typed("sub"), "directory sub");
    assert.equal(await typed("a.jpg"), undefined);
    assert.deepEqual(await reader.manifestBuckets(), [`${riakFuse.contentPrefix}shop`]);

    // Renamed into and out of a folder: the objects move between the layouts.
    const moved = seededBytes(4, 3 * CHUNK);
    await store.writeFile("plain/moved.bin", moved);
    await store.mkdir("shop2");
    await store.mkdir("shop2/images");
    await store.rename("plain/moved.bin", "shop2/images/moved.bin");
    await store.symlink("plain/ln", "elsewhere");
    await store.rename("plain/ln", "shop/images/ln2");
    await store.rename("shop/images/a.jpg", "plain/a.jpg");
    assert.deepEqual((await reader.list(b("plain"))).map((e) => `${e.type} ${e.name}`), [
      "file a.jpg",
    ]);
    assert.ok((await reader.readFile(b("plain/a.jpg"))).content.equals(small));
    assert.equal(await reader.stat(b("shop/images/a.jpg")), undefined);
    assert.deepEqual(await reader.riakFuseSizes(b("shop/images/a.jpg")), []);
    assert.ok((await reader.readFile(b("shop2/images/moved.bin"))).content.equals(moved));
    assert.deepEqual(await reader.riakFuseSizes(b("shop2/images/moved.bin")), [moved.length]);
    assert.ok((await reader.readSymlink(b("shop/images/ln2"))).equals(b("elsewhere")));
    assert.deepEqual(await reader.riakFuseSizes(b("shop/images/ln2")), []);
    // A symlink renamed over a file there: the file's size set goes with it.
    await store.writeFile("shop/images/replaced.jpg", small);
    await store.symlink("plain/ln3", "a.jpg");
    await store.rename("plain/ln3", "shop/images/replaced.jpg");
    assert.ok((await reader.readSymlink(b("shop/images/replaced.jpg"))).equals(b("a.jpg")));
    assert.deepEqual(await reader.riakFuseSizes(b("shop/images/replaced.jpg")), []);
    assert.equal(await typed("replaced.jpg"), "symlink replaced.jpg");
    assert.equal(await typed("ln2"), "symlink ln2");
    // And a file renamed over a symlink there takes its type away.
    await store.rename("plain/a.jpg", "shop/images/replaced.jpg");
    assert.equal(await typed("replaced.jpg"), undefined);
    assert.deepEqual(await reader.manifestBuckets(), [
      `${riakFuse.contentPrefix}shop`,
      `${riakFuse.contentPrefix}shop2`,
    ]);
  });
});

/** What a foreign program puts, following the page, with the raw client only. */
class PageWriter {
  constructor(readonly raw: RiakClient, readonly namespace: DocNamespace) {}

  usermeta(fields: {
    type: string;
    storage: string;
    size: number;
    sha256: string;
    mode: number;
    mtimeNs: bigint;
  }) {
    return [
      ["riakfs-layout", "1"],
      ["riakfs-type", fields.type],
      ["riakfs-storage", fields.storage],
      ["riakfs-size", String(fields.size)],
      ["riakfs-mode", `0${fields.mode.toString(8)}`],
      ["riakfs-uid", "1234"],
      ["riakfs-gid", "5678"],
      ["riakfs-mtime-ns", String(fields.mtimeNs)],
      ["riakfs-sha256", fields.sha256],
    ].map(([key, value]) => ({ key, value }));
  }

  async putObject(
    key: Buffer,
    value: Buffer,
    contentType: string,
    usermeta: { key: string; value: string }[],
  ) {
    await this.raw.put(
      { type: this.namespace.contentBucketType, bucket: this.namespace.bucket, key },
      { value, contentType, usermeta },
    );
  }

  async addEntries(key: Buffer, members: Buffer[]) {
    await this.raw.updateSet(
      { type: this.namespace.setsBucketType, bucket: this.namespace.directoryBucket, key },
      { add: members },
    );
  }

  async file(path: Buffer, content: Buffer, chunkSize: number, mtimeNs: bigint) {
    const sha256 = sha256Hex(content);
    if (content.length <= chunkSize) {
      await this.putObject(
        path,
        content,
        "application/octet-stream",
        this.usermeta({
          type: "file",
          storage: "inline",
          size: content.length,
          sha256,
          mode: 0o640,
          mtimeNs,
        }),
      );
      return;
    }
    const generation = createHash("md5").update(path).digest("hex");
    const chunks: string[] = [];
    for (let i = 0; i * chunkSize < content.length; i++) {
      const chunk = content.subarray(i * chunkSize, (i + 1) * chunkSize);
      chunks.push(sha256Hex(chunk));
      await this.raw.put(
        {
          type: this.namespace.contentBucketType,
          bucket: this.namespace.chunkBucket,
          key: `${generation}.${i}`,
        },
        { value: chunk, contentType: "application/octet-stream" },
      );
    }
    const manifest = JSON.stringify({
      format: "riakfs-manifest/1",
      size: content.length,
      chunkSize,
      sha256,
      generation,
      contentType: "application/octet-stream",
      chunks,
    });
    await this.putObject(
      path,
      b(manifest),
      "application/vnd.riakfs.manifest+json",
      this.usermeta({
        type: "file",
        storage: "chunked",
        size: content.length,
        sha256,
        mode: 0o640,
        mtimeNs,
      }),
    );
  }

  async directory(path: Buffer, mtimeNs: bigint) {
    await this.putObject(
      Buffer.concat([path, b("/")]),
      Buffer.alloc(0),
      "text/plain",
      this.usermeta({
        type: "directory",
        storage: "inline",
        size: 0,
        sha256: sha256Hex(Buffer.alloc(0)),
        mode: 0o755,
        mtimeNs,
      }),
    );
  }

  async symlink(path: Buffer, target: Buffer, mtimeNs: bigint) {
    await this.putObject(
      path,
      target,
      "text/plain",
      this.usermeta({
        type: "symlink",
        storage: "inline",
        size: target.length,
        sha256: sha256Hex(target),
        mode: 0o777,
        mtimeNs,
      }),
    );
  }
}

Deno.test("riakfs reads what a foreign program put as docs/layout.md describes", async () => {
  await withReader(async ({ store, bucket, raw, reader }) => {
    const page = new PageWriter(raw, docNamespace({ bucket }));
    const mtimeNs = 1_650_000_000_123_456_789n;
    const small = seededBytes(10, 100);
    const large = seededBytes(11, 3 * CHUNK + 1);
    await page.directory(b("foreign"), mtimeNs);
    await page.file(b("foreign/small.txt"), small, CHUNK, mtimeNs);
    await page.file(b("foreign/large.bin"), large, CHUNK, mtimeNs + 1n);
    await page.symlink(b("foreign/ln"), b("large.bin"), mtimeNs);
    await page.directory(b("foreign/empty"), mtimeNs);
    await page.addEntries(b("/"), [b("d:foreign")]);
    await page.addEntries(b("foreign/"), [b("f:small.txt"), b("l:ln"), b("d:empty")]);
    // A second level of 16 shards, the entry in its hash's shard.
    await page.addEntries(b("foreign/"), [b("#shards:16")]);
    const shard = (name: string) => createHash("sha256").update(name).digest().readUInt32BE(0) % 16;
    await page.addEntries(b(`foreign/#16.${shard("large.bin")}`), [b("f:large.bin")]);
    // Two hosts adding one name as the level opened: in two levels, listed once.
    await page.addEntries(b(`foreign/#16.${shard("small.txt")}`), [b("f:small.txt")]);
    // The manifest's chunk size is not the namespace's; an inline file above the chunk size.
    const odd = seededBytes(12, 2 * 700 + 5);
    const inline = seededBytes(13, 3 * CHUNK);
    await page.file(b("foreign/odd.bin"), odd, 700, mtimeNs);
    await page.file(b("foreign/inline.bin"), inline, 4 * CHUNK, mtimeNs);
    await page.addEntries(b(`foreign/#16.${shard("odd.bin")}`), [b("f:odd.bin")]);
    await page.addEntries(b(`foreign/#16.${shard("inline.bin")}`), [b("f:inline.bin")]);

    const listed: string[] = [];
    for await (const entry of store.list("foreign")) listed.push(`${entry.type} ${entry.name}`);
    const names = [
      "directory empty",
      "file inline.bin",
      "file large.bin",
      "file odd.bin",
      "file small.txt",
      "symlink ln",
    ];
    assert.deepEqual(listed.sort(), names);
    assert.deepEqual(
      (await reader.list(b("foreign"))).map((e) => `${e.type} ${e.name}`).sort(),
      names,
    );
    assert.ok((await store.readFile("foreign/odd.bin")).equals(odd));
    assert.ok((await store.readFile("foreign/inline.bin")).equals(inline));
    assert.ok((await store.readFile("foreign/small.txt")).equals(small));
    assert.ok((await store.readFile("foreign/large.bin")).equals(large));
    assert.ok((await store.readlink("foreign/ln")).equals(b("large.bin")));
    const stat = await store.stat("foreign/large.bin");
    assert.deepEqual(
      [stat.type, stat.storage, stat.size, stat.mode, stat.uid, stat.gid, stat.mtimeNs],
      ["file", "chunked", large.length, 0o640, 1234, 5678, mtimeNs + 1n],
    );
    assert.equal((await store.stat("foreign/empty")).type, "directory");
    const emptyListing: string[] = [];
    for await (const entry of store.list("foreign/empty")) emptyListing.push(entry.name.toString());
    assert.deepEqual(emptyListing, []);
  });
});

Deno.test("a shard opens a level at 256 KiB of members, as docs/layout.md says", async () => {
  await withReader(async ({ store, reader }) => {
    // Members of 255-byte names are 257 bytes: 1020 make 262,140 bytes, the 1021st passes 256 KiB.
    const name = (i: number) => `${String(i).padStart(4, "0")}${"x".repeat(251)}`;
    for (let i = 0; i < 1020; i++) await store.writeFile(`wide/${name(i)}`, Buffer.alloc(0));
    assert.deepEqual(await reader.levels(b("wide")), []);
    await store.writeFile(`wide/${name(1020)}`, Buffer.alloc(0));
    assert.deepEqual(await reader.levels(b("wide")), [16]);
    assert.equal((await reader.list(b("wide"))).length, 1021);
  });
});

Deno.test("siblings resolve the same in riakfs and by docs/layout.md's rule", async () => {
  await withReader(async ({ store, reader, raw }) => {
    const page = new PageWriter(raw, reader.namespace);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const day = 86_400_000_000_000n;
    // Siblings (puts without a vclock on a type that keeps them): an older and a newer version,
    // and riak-fuse's own object without usermeta, which counts with Riak's last-modified time.
    await page.file(b("newest"), b("older"), CHUNK, nowNs - day);
    await page.file(b("newest"), b("newer"), CHUNK, nowNs + day);
    await raw.put(
      { type: "kvmulti", bucket: reader.namespace.bucket, key: "newest" },
      { value: b("no usermeta"), contentType: "text/plain" },
    );
    // A tie on the mtime: the greater sha256 in hex order.
    await page.file(b("tie"), b("tie-a"), CHUNK, nowNs);
    await page.file(b("tie"), b("tie-b"), CHUNK, nowNs);
    const tieWinner = sha256Hex(b("tie-a")) > sha256Hex(b("tie-b")) ? "tie-a" : "tie-b";
    for (const [path, winner] of [["newest", "newer"], ["tie", tieWinner]]) {
      const got = await raw.get({ type: "kvmulti", bucket: reader.namespace.bucket, key: path });
      assert.ok(got.siblings.length >= 2, `${path} has siblings`);
      assert.equal((await reader.readFile(b(path))).content.toString(), winner, path);
      assert.equal((await store.readFile(path)).toString(), winner, path);
    }
  }, { bucketType: "kvmulti" });
});
