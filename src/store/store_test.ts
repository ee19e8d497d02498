import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  forgetRiakFuseType,
  putLegacyRiakFuseFile,
  riakFusePrefixes,
  seededBytes,
  seededStream,
  sha256Hex,
  withStore,
} from "./_test_support.ts";
import {
  AlreadyExistsError,
  ChecksumMismatchError,
  DirectoryNotEmptyError,
  NotFoundError,
  StoreError,
  WrongTypeError,
} from "./errors.ts";
import type { StoreClient } from "./client.ts";
import { collectGarbage } from "./gc.ts";
import { chunkKey, MANIFEST_CONTENT_TYPE } from "./manifest.ts";
import { RiakRequestError } from "./errors.ts";
import { GenerationChangedError, Store } from "./store.ts";
import { DEFAULT_CHUNK_SIZE } from "./layout.ts";
import { encodeUsermeta, LAYOUT_VERSION } from "./usermeta.ts";

const MiB = 1024 * 1024;

async function names(iterable: AsyncIterable<{ name: Buffer }>): Promise<string[]> {
  const result: string[] = [];
  for await (const entry of iterable) result.push(entry.name.toString("latin1"));
  return result.sort();
}

Deno.test("round trips at the chunk boundaries, with ranges across chunks", async () => {
  await withStore(async ({ store }) => {
    const sizes = [0, 1, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE + 1, 3 * DEFAULT_CHUNK_SIZE + 17];
    for (const [i, size] of sizes.entries()) {
      const content = seededBytes(i, size);
      const path = `sizes/file-${size}.bin`;
      const written = await store.writeFile(path, content, { mode: 0o640, uid: 7, gid: 8 });
      assert.equal(written.size, size);
      const stat = await store.stat(path);
      assert.equal(stat.type, "file");
      assert.equal(stat.size, size);
      assert.equal(stat.mode, 0o640);
      assert.equal(stat.uid, 7);
      assert.equal(stat.sha256, sha256Hex(content));
      assert.equal(stat.storage, size > DEFAULT_CHUNK_SIZE ? "chunked" : "inline");
      assert.ok((await store.readFile(path)).equals(content), `size ${size}`);
      if (size > 10) {
        const from = Math.floor(size / 3);
        const parts: Buffer[] = [];
        for await (const part of store.readRange(path, from, size - 2 * from + 5)) parts.push(part);
        assert.ok(Buffer.concat(parts).equals(content.subarray(from, size - from + 5)));
      }
    }
    assert.deepEqual(await names(store.list("sizes")), sizes.map((s) => `file-${s}.bin`).sort());
    const folder = mkdtempSync(join(tmpdir(), "riakfs-local-"));
    try {
      const local = join(folder, "local.bin");
      const content = seededBytes(99, 2 * DEFAULT_CHUNK_SIZE + 3);
      writeFileSync(local, content);
      const stat = await store.writeFile("from-local/local.bin", { file: local });
      assert.equal(stat.storage, "chunked");
      assert.ok((await store.readFile("from-local/local.bin")).equals(content));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

Deno.test("100 MiB streamed in and out, hashed while uploading", async () => {
  await withStore(async ({ store }) => {
    const size = 100 * MiB;
    const started = performance.now();
    const stat = await store.writeFile("big/100MiB.bin", seededStream(42, size));
    const expected = sha256Hex(seededBytes(42, size));
    assert.equal(stat.sha256, expected);
    const hash = (await import("node:crypto")).createHash("sha256");
    let total = 0;
    for await (const part of store.readRange("big/100MiB.bin")) {
      hash.update(part);
      total += part.length;
    }
    assert.equal(total, size);
    assert.equal(hash.digest("hex"), expected);
    const seconds = (performance.now() - started) / 1000;
    console.log(`100 MiB write + read through the store: ${seconds.toFixed(1)} s`);
  });
});

Deno.test("names with spaces, non-ASCII and non-UTF-8 bytes", async () => {
  await withStore(async ({ store }) => {
    const rawName = Buffer.from([0x62, 0x69, 0x6e, 0x20, 0xff, 0xfe, 0x01]);
    const paths = [
      Buffer.from("dir with space/file name.txt"),
      Buffer.from("dir with space/été 日本.jpg"),
      Buffer.concat([Buffer.from("dir with space/"), rawName]),
    ];
    for (const [i, path] of paths.entries()) {
      await store.writeFile(path, seededBytes(i, 100 + i));
    }
    for (const [i, path] of paths.entries()) {
      assert.ok((await store.readFile(path)).equals(seededBytes(i, 100 + i)));
      const stat = await store.stat(path);
      assert.ok(stat.location.key.equals(path), "the key is the path, byte for byte");
    }
    const listed: Buffer[] = [];
    for await (const entry of store.list("dir with space")) listed.push(entry.name);
    assert.equal(listed.length, 3);
    assert.ok(listed.some((name) => name.equals(rawName)));
  });
});

Deno.test("releaseRead frees a chunk readRange yielded at once; the rest still verifies", async () => {
  await withStore(async ({ store }) => {
    const content = seededBytes(7, 3 * DEFAULT_CHUNK_SIZE + 20_000);
    await store.writeFile("released.bin", content);
    const copies: Buffer[] = [];
    for await (const part of store.readRange("released.bin")) {
      copies.push(Buffer.from(part));
      store.releaseRead(part);
      assert.equal(part.length, 0, "the chunk's memory is gone: every view of it is empty");
    }
    assert.ok(Buffer.concat(copies).equals(content));
    // A small file's bytes are a short answer of their own: releasing them is harmless.
    await store.writeFile("small.bin", Buffer.from("hello"));
    for await (const part of store.readRange("small.bin")) {
      store.releaseRead(part);
      assert.equal(Buffer.from(part).toString(), "hello");
    }
  });
});

Deno.test("overwrite under concurrent readers: every read is the old or the new file", async () => {
  await withStore(async ({ store }) => {
    const versions = [0, 1, 2, 3, 4].map((v) => seededBytes(100 + v, 64 * 1024 + v));
    const digests = new Set(versions.map(sha256Hex));
    await store.writeFile("hot.bin", versions[0]);
    let writing = true;
    let reads = 0;
    const reader = async () => {
      while (writing) {
        const content = await store.readFile("hot.bin");
        assert.ok(digests.has(sha256Hex(content)), "a read mixed two versions");
        reads++;
      }
    };
    const readers = [reader(), reader(), reader()];
    try {
      for (const version of versions.slice(1)) await store.writeFile("hot.bin", version);
    } finally {
      writing = false;
      await Promise.all(readers);
    }
    assert.ok(reads > 0);
    assert.ok((await store.readFile("hot.bin")).equals(versions[4]));
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("chunkStored tells of each chunk of a file Riak acknowledged", async () => {
  await withStore(async ({ store }) => {
    let stored = 0;
    const chunkStored = () => stored++;
    await store.writeFile("f.bin", seededBytes(1, 10_000), { chunkStored });
    assert.equal(stored, 3, "three chunks of 4096 bytes");
    const counted = stored;
    await store.writeFile("small.txt", Buffer.from("inline"), { chunkStored });
    assert.equal(stored, counted, "a file in one object has no chunks");
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a write aborted before its object's put stores nothing; an older version stays as it was", async () => {
  await withStore(async ({ store }) => {
    const controller = new AbortController();
    const reason = new Error("called off");
    controller.abort(reason);
    // A small file's whole write is its object's put: aborted, it is never sent.
    await assert.rejects(
      store.writeFile("new.txt", Buffer.from("never"), { signal: controller.signal }),
      (error: Error) => error.cause === reason,
    );
    assert.equal(await store.tryStat("new.txt"), undefined);
    await store.writeFile("old.txt", Buffer.from("kept"));
    const previous = await store.tryStat("old.txt", { fileOnly: true });
    await assert.rejects(
      store.writeFile("old.txt", Buffer.from("not this"), { previous, signal: controller.signal }),
      (error: Error) => error.cause === reason,
    );
    assert.equal((await store.readFile("old.txt")).toString(), "kept");
  });
});

Deno.test("overwrite deletes the old generation's chunks", async () => {
  await withStore(async ({ store, client }) => {
    await store.writeFile("f.bin", seededBytes(1, 10_000));
    const old = await store.manifest("f.bin");
    assert.ok(old);
    await store.writeFile("f.bin", seededBytes(2, 9_000));
    const now = await store.manifest("f.bin");
    assert.notEqual(now?.generation, old.generation);
    const gone = await client.get(store.layout.chunk(chunkKey(old.generation, 0)));
    assert.equal(gone.contents.length, 0);
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("rename a file (inline and chunked) and a directory of 1,000 files", async () => {
  await withStore(async ({ store }) => {
    await store.writeFile("a/small.txt", Buffer.from("small"));
    await store.writeFile("a/large.bin", seededBytes(3, 20_000));
    await assert.rejects(store.rename("a/small.txt", "b/renamed.txt"), NotFoundError);
    await store.mkdir("b");
    await store.rename("a/small.txt", "b/renamed.txt");
    await store.rename("a/large.bin", "a/large2.bin");
    assert.equal((await store.readFile("b/renamed.txt")).toString(), "small");
    assert.ok((await store.readFile("a/large2.bin")).equals(seededBytes(3, 20_000)));
    await assert.rejects(store.stat("a/small.txt"), NotFoundError);
    assert.deepEqual(await names(store.list("a")), ["large2.bin"]);

    const count = 1000;
    const files = Array.from({ length: count }, (_, i) => `big/f${i}.txt`);
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        files.slice(i, i + 50).map((f, j) => store.writeFile(f, Buffer.from(`#${i + j}`))),
      );
    }
    await store.mkdir("big/sub");
    await store.writeFile("big/sub/deep.txt", Buffer.from("deep"));
    await store.mkdir("moved");
    await store.rename("big", "moved/big");
    await assert.rejects(store.stat("big"), NotFoundError);
    await assert.rejects(store.stat("big/f1.txt"), NotFoundError);
    const listed = await names(store.list("moved/big"));
    assert.equal(listed.length, count + 1);
    assert.equal((await store.readFile("moved/big/f999.txt")).toString(), "#999");
    assert.equal((await store.readFile("moved/big/sub/deep.txt")).toString(), "deep");
    assert.deepEqual(await names(store.list("")), ["a", "b", "moved"]);
  });
});

Deno.test("siblings resolve to the newest mtime, then the greatest hash, and are written back", async () => {
  await withStore(async ({ store, client }) => {
    await store.writeFile("s.txt", Buffer.from("first"), { mtimeNs: 1_000n });
    const location = (await store.stat("s.txt")).location;
    const original = await client.get(location);
    // Two writers that both started from nothing: siblings.
    const older = await store.writeFile("tmp-older", Buffer.from("older"), {
      mtimeNs: 2_000n,
    });
    const newer = await store.writeFile("tmp-newer", Buffer.from("newer"), {
      mtimeNs: 3_000n,
    });
    for (const source of [older, newer]) {
      const fetched = await client.get(source.location);
      await client.put(location, {
        value: fetched.contents[0].value,
        contentType: "text/plain",
        usermeta: fetched.contents[0].usermeta,
      });
    }
    assert.ok(original.contents.length === 1);
    const before = await client.get(location);
    assert.ok(before.contents.length >= 2, "kvmulti keeps siblings");
    assert.equal((await store.readFile("s.txt")).toString(), "newer");
    const after = await client.get(location);
    assert.equal(after.contents.length, 1, "the winner was written back");
    // Tie on mtime: the greater sha256 wins, whichever sibling came first.
    const a = Buffer.from("tie-a");
    const b = Buffer.from("tie-b");
    const winner = sha256Hex(a) > sha256Hex(b) ? "tie-a" : "tie-b";
    for (const value of [a, b]) {
      const made = await store.writeFile(`tmp-${value}`, value, { mtimeNs: 9_000n });
      const fetched = await client.get(made.location);
      await client.put(location, {
        value,
        contentType: "text/plain",
        usermeta: fetched.contents[0].usermeta,
      });
    }
    assert.equal((await store.readFile("s.txt")).toString(), winner);
  }, { namespace: { bucketType: "kvmulti" } });
});

Deno.test("siblings that differ only in attributes resolve to one winner whatever order Riak returns them in", async () => {
  await withStore(async ({ client, bucket }) => {
    // The same file pre-warmed by two hosts at once (same bytes, same mtime), owned differently.
    const value = Buffer.from("same bytes, same mtime");
    const meta = (uid: number) =>
      encodeUsermeta({
        layout: LAYOUT_VERSION,
        type: "file",
        storage: "inline",
        size: value.length,
        sha256: sha256Hex(value),
        mode: 0o644,
        uid,
        gid: 0,
        mtimeNs: 5_000n,
      });
    const namespace = { bucket, bucketType: "kvmulti" };
    const store = new Store(client, { namespace });
    // Replicas merge siblings in the order they arrive: another host may get them reversed.
    const reversed = new Store({
      ...client,
      get: async (location, options) => {
        const fetched = await client.get(location, options);
        return { ...fetched, contents: [...fetched.contents].reverse() };
      },
    }, { namespace });
    const winners: number[] = [];
    for (const [path, host] of [["a", store], ["b", reversed]] as const) {
      const location = store.layout.file(Buffer.from(path)).object;
      for (const uid of [1000, 2000]) {
        await client.put(location, { value, contentType: "text/plain", usermeta: meta(uid) });
      }
      assert.equal((await client.get(location)).contents.length, 2, "kvmulti keeps siblings");
      winners.push((await host.stat(path)).uid);
    }
    assert.equal(winners[0], winners[1], "both hosts pick the same sibling");
  });
});

Deno.test("a mkdir racing a write that makes the same directory never leaves siblings", async () => {
  await withStore(async ({ store, client }) => {
    for (let round = 0; round < 8; round++) {
      const dir = `race-${round}`;
      const [made] = await Promise.allSettled([
        store.mkdir(dir, { mode: 0o750, mtimeNs: 1_000n }),
        store.writeFile(`${dir}/f`, Buffer.from("f")),
      ]);
      const stat = await store.stat(dir);
      const fetched = await client.get(stat.location);
      assert.equal(fetched.contents.length, 1, `one version of ${dir}, no siblings`);
      if (made.status === "fulfilled") {
        assert.equal(stat.mode, 0o750, "mkdir's attributes, not a default over them");
      } else {
        assert.ok(made.reason instanceof AlreadyExistsError, String(made.reason));
      }
      assert.equal((await store.readFile(`${dir}/f`)).toString(), "f");
    }
  }, { namespace: { bucketType: "kvmulti" } });
});

Deno.test("riak-fuse data is read back byte for byte, and written the way riak-fuse did", async () => {
  await withStore(async ({ client, riak, another }) => {
    const names_ = {
      contentPrefix: `${riak.prefix}IMG_`,
      directoryPrefix: `${riak.prefix}IMGDIR_`,
    };
    const store = another({ namespace: { preset: "riak-fuse", riakFuse: names_ } });
    const content = seededBytes(7, 50_000);
    // What riak-fuse wrote: the whole file in IMG_<folder>/<file>, the name in the directory
    // set, the size in a per-file set.
    const contentBucket = Buffer.from(`${names_.contentPrefix}test`);
    const dirBucket = Buffer.from(`${names_.directoryPrefix}test`);
    await client.put(
      { bucketType: "default", bucket: contentBucket, key: Buffer.from("file.jpg") },
      {
        value: content,
        contentType: "application/octet-stream",
        usermeta: [],
      },
    );
    await client.updateSet(
      { bucketType: "sets", bucket: dirBucket, key: Buffer.from("directory") },
      {
        add: [Buffer.from("file.jpg")],
      },
    );
    await client.updateSet(
      { bucketType: "sets", bucket: dirBucket, key: Buffer.from("file.jpg") },
      {
        add: [Buffer.from(String(content.length))],
      },
    );
    assert.deepEqual(await names(store.list("test/images")), ["file.jpg"]);
    assert.ok((await store.readFile("/test/images/file.jpg")).equals(content));
    const stat = await store.stat("test/images/file.jpg");
    assert.equal(stat.size, content.length);
    assert.equal(stat.managed, false);
    assert.equal((await store.stat("test/images")).type, "directory");

    // riakfs writes in riak-fuse's format (plus usermeta riak-fuse ignores).
    const second = seededBytes(8, 1234);
    await store.writeFile("test/images/new.png", second);
    const raw = await client.get({
      bucketType: "default",
      bucket: contentBucket,
      key: Buffer.from("new.png"),
    });
    assert.ok(Buffer.from(raw.contents[0].value).equals(second));
    const listing = await client.fetchSet({
      bucketType: "sets",
      bucket: dirBucket,
      key: Buffer.from("directory"),
    });
    assert.deepEqual(listing?.members.map((m) => Buffer.from(m).toString()).sort(), [
      "file.jpg",
      "new.png",
    ]);
    await store.writeFile("test/images/new.png", seededBytes(9, 99));
    const sizes = await client.fetchSet({
      bucketType: "sets",
      bucket: dirBucket,
      key: Buffer.from("new.png"),
    });
    assert.deepEqual(
      sizes?.members.map((m) => Buffer.from(m).toString()),
      ["99"],
      "no stale sizes",
    );
    // Other paths use the default layout.
    await store.writeFile("test/other.txt", Buffer.from("x"));
    assert.equal(
      (await store.stat("test/other.txt")).location.bucket.toString(),
      store.namespace.bucket,
    );
  });
});

Deno.test("remove, mkdir, symlink, setAttributes and typed errors", async () => {
  await withStore(async ({ store, client }) => {
    await store.writeFile("d/x.bin", seededBytes(5, 9000));
    const manifest = await store.manifest("d/x.bin");
    assert.ok(manifest);
    await assert.rejects(store.remove("d"), DirectoryNotEmptyError);
    await store.remove("d/x.bin");
    await assert.rejects(store.stat("d/x.bin"), NotFoundError);
    const chunk = await client.get(store.layout.chunk(chunkKey(manifest.generation, 1)));
    assert.equal(chunk.contents.length, 0, "chunks removed with the file");
    await store.remove("d");
    await assert.rejects(store.stat("d"), NotFoundError);

    await store.mkdir("empty", { mode: 0o700 });
    assert.equal((await store.stat("empty")).mode, 0o700);
    assert.deepEqual(await names(store.list("empty")), []);
    await assert.rejects(store.mkdir("empty"), AlreadyExistsError);
    await store.symlink("link", "empty/target");
    assert.equal((await store.readlink("link")).toString(), "empty/target");
    assert.equal((await store.stat("link")).type, "symlink");
    await store.writeFile("f.txt", Buffer.from("content"));
    await assert.rejects(store.writeFile("empty", Buffer.from("x")), WrongTypeError);
    await assert.rejects(names(store.list("f.txt")), WrongTypeError);
    await assert.rejects(store.readFile("empty"), WrongTypeError);
    await assert.rejects(store.readFile("nothing"), NotFoundError);
    // A link another host removed: gone (ENOENT), not "not a symlink" (EINVAL).
    await assert.rejects(store.readlink("nothing"), NotFoundError);
    await assert.rejects(store.readlink("f.txt"), { code: "EINVAL" });
    const changed = await store.setAttributes("f.txt", { mode: 0o600, mtimeNs: 5n });
    assert.equal(changed.mode, 0o600);
    assert.equal((await store.stat("f.txt")).mtimeNs, 5n);
    assert.equal((await store.readFile("f.txt")).toString(), "content");
    await store.remove("empty", { recursive: true });
    assert.deepEqual(await names(store.list("")), ["f.txt", "link"]);
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a corrupted chunk fails the read with ChecksumMismatchError; verify reports it", async () => {
  await withStore(async ({ store, client }) => {
    const content = seededBytes(6, 10_000);
    await store.writeFile("c.bin", content);
    const folder = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
    try {
      const local = join(folder, "c.bin");
      writeFileSync(local, content);
      assert.equal((await store.verify("c.bin", local)).matches, true);
      writeFileSync(local, seededBytes(7, 10_000));
      const differs = await store.verify("c.bin", local);
      assert.equal(differs.matches, false);
      assert.match(differs.problem ?? "", /content differs/);
      const manifest = await store.manifest("c.bin");
      await client.put(store.layout.chunk(chunkKey(manifest!.generation, 1)), {
        value: Buffer.alloc(4096, 1),
        contentType: "application/octet-stream",
        usermeta: [],
      });
      await assert.rejects(store.readFile("c.bin"), ChecksumMismatchError);
      writeFileSync(local, content);
      const corrupt = await store.verify("c.bin", local);
      assert.equal(corrupt.matches, false);
      assert.match(corrupt.problem ?? "", /checksum mismatch/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a crash mid-rename of a chunked file leaves a duplicate, and removing it keeps the chunks", async () => {
  await withStore(async ({ store, client }) => {
    const content = seededBytes(11, 10_000);
    await store.writeFile("old.bin", content);
    // The state a crash leaves after the copy: old object marked, new object in place.
    const old = await client.get(store.layout.file(Buffer.from("old.bin")).object);
    const usermeta = old.contents[0].usermeta;
    await client.put(store.layout.file(Buffer.from("old.bin")).object, {
      value: old.contents[0].value,
      contentType: "application/vnd.riakfs.manifest+json",
      usermeta: [...usermeta, {
        key: "riakfs-renamed-to",
        value: Buffer.from("new.bin").toString("hex"),
      }],
    }, { vclock: old.vclock });
    await client.put(store.layout.file(Buffer.from("new.bin")).object, {
      value: old.contents[0].value,
      contentType: "application/vnd.riakfs.manifest+json",
      usermeta,
    });
    await store.remove("old.bin");
    assert.ok((await store.readFile("new.bin")).equals(content), "chunks kept for the new name");
    await store.rename("new.bin", "final.bin");
    assert.ok((await store.readFile("final.bin")).equals(content));
    await assert.rejects(store.stat("new.bin"), NotFoundError);
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a write Riak did not acknowledge is an error; the old version stays, gc finds the chunks", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const v1 = seededBytes(21, 10_000);
    await store.writeFile("w.bin", v1);
    // Riak refuses the manifest put (after the chunks went in).
    const failing = new Store({
      ...client,
      put: (location, content, options) =>
        content.contentType === MANIFEST_CONTENT_TYPE
          ? Promise.reject(new Error("{w_val_unsatisfied,2,1}"))
          : client.put(location, content, options),
    }, { namespace: { bucket, chunkSize: 4096 } });
    await assert.rejects(failing.writeFile("w.bin", seededBytes(22, 10_000)), (error) => {
      assert.ok(error instanceof RiakRequestError);
      assert.match(error.message, /w_val_unsatisfied/);
      assert.equal(error.location?.key, "w.bin");
      return true;
    });
    assert.ok((await store.readFile("w.bin")).equals(v1));
    const report = await collectGarbage(store, { minAgeMs: 0, delete: true });
    assert.equal(report.manifests, 1);
    assert.equal(report.garbage.length, 1, "the unacknowledged generation's chunks");
    assert.equal(report.deleted, 3);
    assert.ok((await store.readFile("w.bin")).equals(v1));
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("every write carries the configured w and dw, set updates included", async () => {
  await withStore(async ({ client, bucket, riak }) => {
    const seen: string[] = [];
    const recordingClient: StoreClient = {
      ...client,
      put: (location, content, options) => {
        seen.push(`put ${options?.w}/${options?.dw}`);
        return client.put(location, content, options);
      },
      delete: (location, options) => {
        seen.push(`delete ${options?.w}/${options?.dw}`);
        return client.delete(location, options);
      },
      updateSet: (location, change) => {
        seen.push(`set ${change.w}/${change.dw}`);
        return client.updateSet(location, change);
      },
    };
    const quorums = { w: "all", dw: 1 } as const;
    const recording = new Store(recordingClient, {
      namespace: { bucket, chunkSize: 4096 },
      ...quorums,
    });
    await recording.writeFile("q/a.bin", seededBytes(31, 9000));
    await recording.rename("q/a.bin", "q/b.bin");
    await recording.remove("q", { recursive: true });
    // A riak-fuse folder's large file: its bucket is named in the set of manifest buckets.
    const riakFuse = riakFusePrefixes(riak);
    const preset = new Store(recordingClient, {
      namespace: { bucket, chunkSize: 4096, preset: "riak-fuse", riakFuse },
      ...quorums,
    });
    await preset.writeFile("shop/images/big.jpg", seededBytes(32, 9000));
    assert.deepEqual(await preset.manifestBuckets(), [`${riakFuse.contentPrefix}shop`]);
    assert.ok(seen.some((s) => s.startsWith("put")));
    assert.ok(seen.some((s) => s.startsWith("delete")));
    assert.ok(seen.some((s) => s.startsWith("set")));
    assert.deepEqual(seen.filter((s) => !s.endsWith(" all/1")), []);
  });
});

Deno.test("a stat asked withContent carries a small file's verified bytes, and only those", async () => {
  await withStore(async ({ store, client }) => {
    const small = seededBytes(8, 3000);
    await store.writeFile("d/small.bin", small);
    await store.writeFile("d/big.bin", seededBytes(9, 10_000));
    const withContent = await store.tryStat("d/small.bin", { withContent: true });
    assert.deepEqual(withContent?.content, small);
    assert.equal(withContent?.size, small.length);
    assert.equal((await store.tryStat("d/small.bin"))?.content, undefined);
    assert.equal((await store.tryStat("d/big.bin", { withContent: true }))?.content, undefined);
    const directory = await store.tryStat("d", { withContent: true });
    assert.equal(directory?.type, "directory");
    assert.equal(directory?.content, undefined);

    const stat = await store.stat("d/small.bin");
    await client.put(stat.location, {
      value: seededBytes(10, 3000),
      contentType: stat.contentType,
      usermeta: (await client.get(stat.location, { head: true })).contents[0].usermeta,
    });
    const corrupt = await store.tryStat("d/small.bin", { fileOnly: true, withContent: true });
    assert.equal(corrupt?.size, 3000);
    assert.equal(corrupt?.content, undefined);
    await assert.rejects(store.readFile("d/small.bin"), ChecksumMismatchError);
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("gc keeps the chunks of a file with no directory entry (a crash before the entry)", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const content = seededBytes(23, 10_000);
    // The process dies after the object, before the entry.
    const crashing = new Store({
      ...client,
      updateSet: () => Promise.reject(new Error("killed")),
    }, { namespace: { bucket, chunkSize: 4096 } });
    await assert.rejects(crashing.writeFile("unlisted.bin", content));
    assert.deepEqual(await names(store.list("")), [], "no entry, as after the crash");
    const report = await collectGarbage(store, { minAgeMs: 0, delete: true });
    assert.equal(report.manifests, 1, "found by its key");
    assert.deepEqual(report.garbage, []);
    assert.ok((await store.readFile("unlisted.bin")).equals(content));
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("riak-fuse: a folder riak-fuse made gets its parents' entries, and gc keeps its chunks", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = {
      contentPrefix: `${riak.prefix}IMG_`,
      directoryPrefix: `${riak.prefix}IMGDIR_`,
    };
    const store = another({ namespace: { preset: "riak-fuse", riakFuse, chunkSize: 4096 } });
    // Left by riak-fuse: a name in shop's directory set, nothing at the root.
    await client.updateSet(
      {
        bucketType: "sets",
        bucket: Buffer.from(`${riakFuse.directoryPrefix}shop`),
        key: Buffer.from("directory"),
      },
      { add: [Buffer.from("old.jpg")] },
    );
    const content = seededBytes(24, 10_000);
    await store.writeFile("shop/images/big.jpg", content);
    assert.deepEqual(await names(store.list("")), ["shop"]);
    assert.deepEqual(await names(store.list("shop")), ["images"]);
    const report = await collectGarbage(store, { minAgeMs: 0, delete: true });
    assert.equal(report.manifests, 1);
    assert.deepEqual(report.garbage, []);
    assert.ok((await store.readFile("shop/images/big.jpg")).equals(content));
  });
});

Deno.test("riak-fuse: gc run with another layout or other prefixes keeps a folder's chunks", async () => {
  await withStore(async ({ riak, another }) => {
    const riakFuse = {
      contentPrefix: `${riak.prefix}PIC_`,
      directoryPrefix: `${riak.prefix}PICDIR_`,
    };
    const writer = another({ namespace: { preset: "riak-fuse", riakFuse, chunkSize: 4096 } });
    const content = seededBytes(25, 10_000);
    await writer.writeFile("shop/images/big.jpg", content);
    await writer.rename("shop/images/big.jpg", "shop/images/moved.jpg");
    for (
      const namespace of [
        { chunkSize: 4096 },
        { preset: "riak-fuse" as const, chunkSize: 4096 },
      ]
    ) {
      const report = await collectGarbage(another({ namespace }), { minAgeMs: 0, delete: true });
      assert.equal(report.manifests, 1, JSON.stringify(namespace));
      assert.deepEqual(report.garbage, [], JSON.stringify(namespace));
    }
    assert.ok((await writer.readFile("shop/images/moved.jpg")).equals(content));
  });
});

Deno.test("gc does not count a listed chunk key Riak no longer holds (a tombstone)", async () => {
  await withStore(async ({ store }) => {
    const listed = store.chunkKeys.bind(store);
    // Real Riak lists a deleted key for a while; the embedded server does not.
    store.chunkKeys = async function* () {
      yield* listed();
      yield chunkKey("0".repeat(32), 0);
    };
    const report = await collectGarbage(store, { minAgeMs: 0 });
    assert.deepEqual(report.garbage, []);
    assert.deepEqual(report.recent, []);
  });
});

Deno.test("a local file that cannot be read is a typed error, for writes and verification", async () => {
  await withStore(async ({ store }) => {
    const missing = join(tmpdir(), "riakfs-no-such-file");
    const attempts = [
      () => store.writeFile("a.bin", { file: missing }),
      () => store.verify("a.bin", missing),
    ];
    for (const attempt of attempts) {
      await assert.rejects(attempt(), (error) => {
        assert.ok(error instanceof StoreError, String(error));
        assert.equal(error.code, "EIO");
        assert.match(error.message, /riakfs-no-such-file|no such file/i);
        return true;
      });
    }
    assert.equal(await store.tryStat("a.bin"), undefined, "nothing stored");
  });
});

Deno.test("setAttributes onlyOver a version leaves a file written since alone", async () => {
  await withStore(async ({ store }) => {
    const looked = await store.writeFile("f", Buffer.from("old"), { mode: 0o644 });
    await store.writeFile("f", Buffer.from("newer"), { mode: 0o640 });
    await assert.rejects(
      store.setAttributes("f", { mode: 0o600 }, looked),
      GenerationChangedError,
    );
    assert.equal((await store.stat("f")).mode, 0o640);
    const now = await store.stat("f");
    assert.equal((await store.setAttributes("f", { mode: 0o600 }, now)).mode, 0o600);
  });
});

Deno.test("an access time set explicitly is kept in usermeta, and a later write keeps it", async () => {
  await withStore(async ({ store }) => {
    await store.writeFile("seen.txt", Buffer.from("v1"), { mtimeNs: 5_000_000_000n });
    assert.equal((await store.stat("seen.txt")).atimeNs, undefined, "none until one is set");
    await store.setAttributes("seen.txt", { atimeNs: 7_000_000_123n });
    const stat = await store.stat("seen.txt");
    assert.deepEqual([stat.atimeNs, stat.mtimeNs], [7_000_000_123n, 5_000_000_000n]);
    await store.writeFile("seen.txt", Buffer.from("v2"), { previous: stat });
    assert.equal((await store.stat("seen.txt")).atimeNs, 7_000_000_123n, "a write is no access");
  });
});

Deno.test("riak-fuse: a folder only riak-fuse wrote is found by its name, and lists its images folder", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    // What riak-fuse left: the object and its name in the folder's set, nothing of riakfs.
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    assert.equal((await store.stat("shop")).type, "directory");
    assert.deepEqual(await names(store.list("shop")), ["images"]);
    assert.deepEqual(await names(store.list("shop/images")), ["a.jpg"]);
    assert.equal((await store.readFile("shop/images/a.jpg")).toString(), "a picture");
    assert.equal(await store.tryStat("blog"), undefined, "no such folder");
  });
});

Deno.test("riak-fuse: a folder lists the directories and symlinks riakfs made there as such", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    const typesIn = async (path: string) => {
      const types: string[] = [];
      for await (const entry of store.list(path)) types.push(`${entry.name} ${entry.type}`);
      return types.sort();
    };
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    await store.writeFile("shop/images/b.jpg", Buffer.from("another"));
    await store.mkdir("shop/images/sub");
    await store.writeFile("shop/images/sub/c.txt", Buffer.from("below"));
    await store.symlink("shop/images/latest", "a.jpg");
    assert.deepEqual(await typesIn("shop/images"), [
      "a.jpg file",
      "b.jpg file",
      "latest symlink",
      "sub directory",
    ]);
    // riak-fuse's own listing still holds the bare names.
    const listing = await client.fetchSet({
      bucketType: "sets",
      bucket: Buffer.from(`${riakFuse.directoryPrefix}shop`),
      key: Buffer.from("directory"),
    });
    assert.deepEqual(
      listing?.members.map((m) => Buffer.from(m).toString()).sort(),
      ["a.jpg", "b.jpg", "latest", "sub"],
    );
    const walked: string[] = [];
    for await (const entry of store.walk("shop")) walked.push(entry.path.toString());
    assert.ok(walked.includes("shop/images/sub/c.txt"), `the walk descends: ${walked}`);
    // A name changing type is listed with its new one.
    await store.remove("shop/images/latest");
    await store.writeFile("shop/images/latest", Buffer.from("now a file"));
    await store.rename("shop/images/sub", "shop/images/moved");
    await store.symlink("shop/images/sub", "moved");
    assert.deepEqual(await typesIn("shop/images"), [
      "a.jpg file",
      "b.jpg file",
      "latest file",
      "moved directory",
      "sub symlink",
    ]);
    await store.remove("shop/images/moved", { recursive: true });
    await store.remove("shop/images/sub");
    await store.mkdir("shop/images/sub");
    assert.deepEqual(await typesIn("shop/images"), [
      "a.jpg file",
      "b.jpg file",
      "latest file",
      "sub directory",
    ]);
  });
});

Deno.test("riak-fuse: a directory an earlier build made in a folder, listed as a file, gets its type from ensureListed", async () => {
  await withStore(async ({ client, riak, bucket, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    await store.mkdir("shop/images/old");
    // What earlier builds left: the name in riak-fuse's set only.
    await forgetRiakFuseType(client, bucket, "shop", "d:old");
    const typeOfOld = async () => {
      for await (const entry of store.list("shop/images")) {
        if (entry.name.toString() === "old") return entry.type;
      }
    };
    assert.equal(await typeOfOld(), "file");
    assert.equal(await store.ensureListed("shop/images/old"), true);
    assert.equal(await typeOfOld(), "directory");
  });
});

Deno.test("riak-fuse: a file named like the listing key leaves the folder's listing alone", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    // Its size set would be the listing set itself (key `directory`): writing its size took
    // every other name out as a stale size, and removing it emptied the listing.
    await store.writeFile("shop/images/directory", Buffer.from("a file named directory"));
    assert.deepEqual(await names(store.list("shop/images")), ["a.jpg", "directory"]);
    assert.equal(
      (await store.readFile("shop/images/directory")).toString(),
      "a file named directory",
    );
    await store.remove("shop/images/directory");
    assert.deepEqual(await names(store.list("shop/images")), ["a.jpg"]);
  });
});

Deno.test("riak-fuse: a file riak-fuse stored unlisted (-ddir) gets its entry and its size set", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    // With -ddir riak-fuse stored the content only: no name in the listing, no size set.
    await client.put(
      {
        bucketType: "default",
        bucket: Buffer.from(`${riakFuse.contentPrefix}shop`),
        key: Buffer.from("b.jpg"),
      },
      { value: Buffer.from("unlisted"), contentType: "application/octet-stream", usermeta: [] },
    );
    assert.equal(await store.ensureListed("shop/images/b.jpg"), true);
    assert.deepEqual(await names(store.list("shop/images")), ["a.jpg", "b.jpg"]);
    // riak-fuse reading from Riak takes the size from that set, and without it a file whose
    // local copy is gone is not there.
    const sizes = await client.fetchSet({
      bucketType: "sets",
      bucket: Buffer.from(`${riakFuse.directoryPrefix}shop`),
      key: Buffer.from("b.jpg"),
    });
    assert.deepEqual(sizes?.members.map((m) => Buffer.from(m).toString()), ["8"]);
  });
});

Deno.test("a stat holds only bytes of its own, never a view that keeps a larger buffer alive", async () => {
  await withStore(async ({ store }) => {
    // Callers keep stats for long (the overlay caches thousands): a view into Node's shared
    // pool of small Buffers, or into a received chunk, would keep all of it alive.
    const owned = (label: string, bytes: Buffer) =>
      assert.equal(bytes.buffer.byteLength, bytes.byteLength, `${label} is a view`);
    const written = await store.writeFile("kept/a.txt", Buffer.from("hello"));
    const stats = [
      ["writeFile", written],
      ["mkdir", await store.mkdir("kept/sub")],
      ["stat of a file", await store.stat("kept/a.txt")],
      ["stat of a directory", await store.stat("kept")],
      ["tryStat with content", await store.tryStat("kept/a.txt", { withContent: true })],
      ["tryStat likely absent", await store.tryStat("kept/sub", { likelyAbsent: true })],
    ] as const;
    for (const [label, stat] of stats) {
      assert.ok(stat !== undefined, label);
      owned(`${label}: path`, stat.path);
      owned(`${label}: bucket`, stat.location.bucket);
      owned(`${label}: key`, stat.location.key);
    }
  });
});

Deno.test("a write with setAside asks about a file it was not given only when it finds one, and puts as new once that is moved away", async () => {
  await withStore(async ({ store, another }) => {
    const elsewhere = another();
    const asked: string[] = [];
    const movedAway = (aside: string) => async (found: { path: Buffer }) => {
      asked.push(found.path.toString());
      await store.rename(found.path.toString(), aside);
      return true;
    };
    // Nothing there, or the version given: not asked.
    await store.writeFile("/f", Buffer.from("first"), { setAside: movedAway("/never") });
    const first = await store.tryStat("/f", { fileOnly: true });
    await store.writeFile("/f", Buffer.from("second"), {
      previous: first,
      setAside: movedAway("/never"),
    });
    assert.deepEqual(asked, []);
    // Found by the put with if_none_match: another host's file where none was given.
    await elsewhere.writeFile("/g", Buffer.from("theirs"));
    await store.writeFile("/g", Buffer.from("ours"), { setAside: movedAway("/g.aside") });
    // Written elsewhere since the version given: found by the put over its vclock.
    const seen = await store.tryStat("/f", { fileOnly: true });
    await elsewhere.writeFile("/f", Buffer.from("theirs, newer"));
    await store.writeFile("/f", Buffer.from("ours again"), {
      previous: seen,
      setAside: movedAway("/f.aside"),
    });
    assert.deepEqual(asked, ["g", "f"]);
    assert.equal((await store.readFile("/g")).toString(), "ours");
    assert.equal((await store.readFile("/g.aside")).toString(), "theirs");
    assert.equal((await store.readFile("/f")).toString(), "ours again");
    assert.equal((await store.readFile("/f.aside")).toString(), "theirs, newer");
    // Answered false: written over, as without it.
    await elsewhere.writeFile("/g", Buffer.from("theirs again"));
    await store.writeFile("/g", Buffer.from("last"), { setAside: () => Promise.resolve(false) });
    assert.equal((await store.readFile("/g")).toString(), "last");
    assert.deepEqual(await names(store.list("/")), ["f", "f.aside", "g", "g.aside"]);
  });
});
