import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { seededBytes, withStore } from "./_test_support.ts";
import type { StoreClient } from "./client.ts";
import { DirectoryIndex } from "./directory.ts";
import { AlreadyExistsError, WrongTypeError } from "./errors.ts";
import { chunkKey } from "./manifest.ts";
import { normalizePath } from "./path.ts";
import { Store } from "./store.ts";

/** A client that counts requests by kind ("head", "get", "put", "set fetch", ...). */
function counting(client: StoreClient): { client: StoreClient; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const count = (kind: string) => counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return {
    counts,
    client: {
      ...client,
      get: (location, options) => {
        count(options?.head ? "head" : "get");
        return client.get(location, options);
      },
      put: (location, content, options) => {
        count("put");
        return client.put(location, content, options);
      },
      fetchSet: (location) => {
        count("set fetch");
        return client.fetchSet(location);
      },
      updateSet: (location, change) => {
        count("set update");
        return client.updateSet(location, change);
      },
    },
  };
}

Deno.test("a file-only stat is one head-only get, and a write reusing it skips its own", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const store = new Store(spy.client, { namespace: { bucket } });
    await store.mkdir("d");
    spy.counts.clear();
    assert.equal(await store.tryStat("d/new.bin", { fileOnly: true }), undefined);
    assert.deepEqual([...spy.counts], [["head", 1]]);

    spy.counts.clear();
    const first = seededBytes(1, 5000);
    await store.writeFile("d/new.bin", first, { previous: null });
    // Only the check for a directory of the same name (the stat already looked at the file),
    // and the parent's object once the entry is in: another host may have removed it.
    assert.equal(spy.counts.get("head"), 2);
    assert.equal(spy.counts.get("put"), 1);

    const stat = await store.tryStat("d/new.bin", { fileOnly: true });
    assert.equal(stat?.type, "file");
    assert.equal(stat?.size, first.length);
    spy.counts.clear();
    const second = seededBytes(2, 7000);
    await store.writeFile("d/new.bin", second, { previous: stat, mode: 0o600 });
    assert.equal(spy.counts.get("head") ?? 0, 0);
    assert.equal(spy.counts.get("set update") ?? 0, 0, "an overwrite adds no entry");
    assert.ok((await store.readFile("d/new.bin")).equals(second));
    assert.equal((await store.stat("d/new.bin")).mode, 0o600);

    const listed: string[] = [];
    for await (const entry of store.list("d")) listed.push(entry.name.toString());
    assert.deepEqual(listed, ["new.bin"]);
    assert.equal(await store.tryStat("d", { fileOnly: true }), undefined, "a directory");
  });
});

Deno.test("a write told nothing is at the file key still refuses a directory there", async () => {
  await withStore(async ({ store }) => {
    await store.mkdir("x");
    await store.mkdir("x/y");
    await assert.rejects(
      store.writeFile("x/y", seededBytes(3, 10), { previous: null }),
      WrongTypeError,
    );
    assert.equal((await store.stat("x/y")).type, "directory");
  });
});

Deno.test("a stat the store did not hand out is ignored: the write looks for itself", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const store = new Store(spy.client, { namespace: { bucket } });
    await store.writeFile("a.bin", seededBytes(4, 100));
    const copied = { ...(await store.stat("a.bin")) };
    spy.counts.clear();
    await store.writeFile("a.bin", seededBytes(5, 200), { previous: copied });
    assert.equal(spy.counts.get("head"), 2, "file key and directory key");
    assert.ok((await store.readFile("a.bin")).equals(seededBytes(5, 200)));
  });
});

Deno.test("an overwrite reusing a stat of a chunked file still deletes the old chunks", async () => {
  await withStore(async ({ client, store }) => {
    await store.writeFile("big.bin", seededBytes(6, 9000));
    const old = await store.manifest("big.bin");
    assert.equal(old?.chunks.length, 3);
    const stat = await store.tryStat("big.bin", { fileOnly: true });
    await store.writeFile("big.bin", seededBytes(7, 9500), { previous: stat });
    assert.ok((await store.readFile("big.bin")).equals(seededBytes(7, 9500)));
    for (let i = 0; i < old!.chunks.length; i++) {
      const chunk = await client.get(store.layout.chunk(chunkKey(old!.generation, i)));
      assert.equal(chunk.contents.length, 0, `old chunk ${i} deleted`);
    }
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("entries added as absent over several levels are listed and found once", async () => {
  await withStore(async ({ client, store }) => {
    const index = new DirectoryIndex(client, { capacity: 8, fanout: 2 });
    const dir = store.layout.directory(normalizePath("many"));
    const name = (i: number) => Buffer.from(`n${i}`);
    // Concurrent adds, merged into batches; enough of them to open several levels.
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        index.add(dir, [{ type: "file", name: name(i) }], {
          absent: true,
        })),
    );
    const seen: string[] = [];
    for await (const entry of index.list(dir)) seen.push(entry.name.toString());
    assert.equal(seen.length, 60);
    assert.equal(new Set(seen).size, 60);
    assert.deepEqual(await index.lookup(dir, name(59)), { type: "file", name: name(59) });
  });
});

Deno.test("a new file is one put with if_none_match beside the directory check", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const puts: Array<boolean | undefined> = [];
    const store = new Store({
      ...spy.client,
      put: (location, content, options) => {
        puts.push(options?.ifNoneMatch);
        return spy.client.put(location, content, options);
      },
    }, { namespace: { bucket } });
    await store.mkdir("d");
    spy.counts.clear();
    await store.writeFile("d/new.bin", seededBytes(10, 3000), { mode: 0o640 });
    assert.equal(spy.counts.get("head"), 2, "the directory key, then the parent's after the entry");
    assert.deepEqual(puts.slice(-1), [true]);
    assert.equal(spy.counts.get("set update"), 1);
    assert.ok((await store.readFile("d/new.bin")).equals(seededBytes(10, 3000)));
    const listed: string[] = [];
    for await (const entry of store.list("d")) listed.push(entry.name.toString());
    assert.deepEqual(listed, ["new.bin"]);
  });
});

Deno.test("a write that finds a file after all replaces it with its vclock, keeping its mode", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const store = new Store(spy.client, { namespace: { bucket, chunkSize: 4096 } });
    await store.writeFile("f.bin", seededBytes(11, 100), { mode: 0o600, uid: 5 });
    await store.writeFile("g.bin", seededBytes(12, 9000));
    const oldManifest = await store.manifest("g.bin");
    spy.counts.clear();
    await store.writeFile("f.bin", seededBytes(13, 200));
    assert.equal(spy.counts.get("set update") ?? 0, 0, "an overwrite adds no entry");
    await store.writeFile("g.bin", seededBytes(14, 9500));
    assert.ok((await store.readFile("f.bin")).equals(seededBytes(13, 200)));
    assert.ok((await store.readFile("g.bin")).equals(seededBytes(14, 9500)));
    const f = await store.stat("f.bin");
    assert.equal(f.mode, 0o600);
    assert.equal(f.uid, 5);
    for (let i = 0; i < oldManifest!.chunks.length; i++) {
      const chunk = await client.get(store.layout.chunk(chunkKey(oldManifest!.generation, i)));
      assert.equal(chunk.contents.length, 0, `old chunk ${i} deleted`);
    }
    // No siblings, one entry each.
    const f0 = await client.get(store.layout.file(normalizePath("f.bin")).object);
    assert.equal(f0.contents.length, 1);
    const listed: string[] = [];
    for await (const entry of store.list("")) listed.push(entry.name.toString());
    assert.deepEqual(listed.sort(), ["f.bin", "g.bin"]);
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a file written over a directory or a symlink is refused and leaves nothing behind", async () => {
  await withStore(async ({ client, store }) => {
    await store.mkdir("dir");
    await store.symlink("link", "dir");
    const chunkKeysBefore = new Set<string>();
    for await (const key of store.chunkKeys()) chunkKeysBefore.add(key);
    await assert.rejects(store.writeFile("dir", seededBytes(15, 10_000)), WrongTypeError);
    const fileObject = await client.get(store.layout.file(normalizePath("dir")).object);
    assert.equal(fileObject.contents.length, 0, "the object the put created is deleted again");
    assert.equal((await store.stat("dir")).type, "directory");
    await assert.rejects(store.writeFile("link", seededBytes(16, 10_000)), AlreadyExistsError);
    assert.equal((await store.stat("link")).type, "symlink");
    const chunkKeysAfter: string[] = [];
    for await (const key of store.chunkKeys()) {
      if (!chunkKeysBefore.has(key)) chunkKeysAfter.push(key);
    }
    assert.deepEqual(chunkKeysAfter, [], "the refused writes' chunks are deleted");
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("a new file whose directory check failed once is looked at again and listed", async () => {
  await withStore(async ({ client, bucket }) => {
    let failNextDirectoryHead = true;
    const store: Store = new Store({
      ...client,
      get: (location, options) => {
        const directoryCheck = store.layout.directory(normalizePath("d/new.bin")).object;
        if (
          options?.head && failNextDirectoryHead &&
          Buffer.from(location.bucket).equals(Buffer.from(directoryCheck.bucket)) &&
          Buffer.from(location.key).equals(Buffer.from(directoryCheck.key))
        ) {
          failNextDirectoryHead = false;
          return Promise.reject(new Error("injected: the directory check timed out"));
        }
        return client.get(location, options);
      },
    }, { namespace: { bucket } });
    await store.mkdir("d");
    await store.writeFile("d/new.bin", seededBytes(15, 500));
    assert.equal(failNextDirectoryHead, false, "the injected failure happened");
    const listed: string[] = [];
    for await (const entry of store.list("d")) listed.push(entry.name.toString());
    assert.deepEqual(listed, ["new.bin"]);
  });
});

Deno.test("an unlisted write makes no look-up, and refuses an object it finds without a trace", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const store = new Store(spy.client, { namespace: { bucket, chunkSize: 4096 } });
    await store.mkdir("d");
    spy.counts.clear();
    let storedBeforeEntry = 0;
    await store.writeFile("d/new.bin", seededBytes(20, 3000), {
      unlisted: true,
      objectStored: () => {
        storedBeforeEntry++;
        assert.equal(spy.counts.get("set update") ?? 0, 0, "called before the entry is added");
      },
    });
    assert.equal(storedBeforeEntry, 1);
    assert.equal(
      spy.counts.get("head") ?? 0,
      1,
      "no directory check, no vclock look-up: the parent's object only, after the entry",
    );
    assert.equal(spy.counts.get("put"), 1);
    assert.equal(spy.counts.get("set update"), 1);

    // An object Riak holds without the caller's listing naming it: refused, left as it was.
    await store.writeFile("d/big.bin", seededBytes(21, 9000));
    const chunkKeysBefore = new Set<string>();
    for await (const key of store.chunkKeys()) chunkKeysBefore.add(key);
    for (const [path, bytes] of [["d/new.bin", 100], ["d/big.bin", 10_000]] as const) {
      await assert.rejects(
        store.writeFile(path, seededBytes(22, bytes), { unlisted: true }),
        AlreadyExistsError,
      );
    }
    assert.ok((await store.readFile("d/new.bin")).equals(seededBytes(20, 3000)));
    assert.ok((await store.readFile("d/big.bin")).equals(seededBytes(21, 9000)));
    const chunkKeysAfter: string[] = [];
    for await (const key of store.chunkKeys()) {
      if (!chunkKeysBefore.has(key)) chunkKeysAfter.push(key);
    }
    assert.deepEqual(chunkKeysAfter, [], "the refused upload's chunks are deleted");
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("mkdir looks for a file, a directory and a listed directory in one round trip", async () => {
  await withStore(async ({ client, bucket }) => {
    let inFlight = 0;
    let most = 0;
    const spy = counting(client);
    const tracked = <T>(request: () => Promise<T>) => {
      most = Math.max(most, ++inFlight);
      return request().finally(() => inFlight--);
    };
    const store = new Store({
      ...spy.client,
      get: (location, options) => tracked(() => spy.client.get(location, options)),
      fetchSet: (location) => tracked(() => spy.client.fetchSet(location)),
    }, { namespace: { bucket } });
    await store.writeFile("file", seededBytes(30, 10));
    await store.mkdir("dir");
    spy.counts.clear();
    most = 0;
    await store.mkdir("dir/sub", { mode: 0o700 });
    assert.equal(most, 3, "the three look-ups go out together");
    assert.equal((await store.stat("dir/sub")).mode, 0o700);
    for (const taken of ["file", "dir", "dir/sub"]) {
      await assert.rejects(store.mkdir(taken), AlreadyExistsError);
    }
  });
});

Deno.test("a stat expecting absence asks everything at once, and answers as the stat in turn", async () => {
  await withStore(async ({ client, bucket }) => {
    let inFlight = 0;
    let mostInFlight = 0;
    const track = async <T>(request: Promise<T>): Promise<T> => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        return await request;
      } finally {
        inFlight--;
      }
    };
    const tracked: StoreClient = {
      ...client,
      get: (location, options) => track(client.get(location, options)),
      fetchSet: (location) => track(client.fetchSet(location)),
    };
    const store = new Store(tracked, { namespace: { bucket } });
    await store.writeFile("d/f.bin", seededBytes(20, 3000), { mode: 0o600 });
    await store.symlink("d/link", "f.bin");
    await store.mkdir("d/empty");
    // A directory only an index names (as other tools make them): no object of its own.
    await new DirectoryIndex(client, { capacity: 2000, fanout: 16 }).add(
      store.layout.directory(normalizePath("other")),
      [
        { type: "file", name: Buffer.from("x") },
      ],
    );
    for (const path of ["", "d", "d/f.bin", "d/link", "d/empty", "other", "d/none", "none/x"]) {
      const inTurn = await store.tryStat(path);
      mostInFlight = 0;
      const atOnce = await store.tryStat(path, { likelyAbsent: true });
      assert.deepEqual(atOnce, inTurn, path);
      if (path !== "") assert.equal(mostInFlight, 3, `${path}: the three look-ups at once`);
    }
  });
});

Deno.test("an unlisted mkdir looks beside its put, and a new directory's first entry needs no fetch", async () => {
  await withStore(async ({ client, bucket }) => {
    const order: string[] = [];
    const spy = counting(client);
    const store = new Store({
      ...spy.client,
      put: (location, content, options) => {
        order.push(`put ${Buffer.from(location.key).toString()}`);
        return spy.client.put(location, content, options);
      },
      updateSet: (location, change) => {
        order.push(`set update ${Buffer.from(location.key).toString()}`);
        return spy.client.updateSet(location, change);
      },
    }, { namespace: { bucket } });
    await store.mkdir("dir");
    spy.counts.clear();
    order.length = 0;
    let storedBeforeEntry: string[] | undefined;
    await store.mkdir("dir/sub", {
      unlisted: true,
      mode: 0o700,
      objectStored: () => storedBeforeEntry = [...order],
    });
    assert.deepEqual(
      storedBeforeEntry?.length,
      1,
      "called once the object is stored, before its entry",
    );
    assert.equal(spy.counts.get("put"), 1);
    assert.equal(
      spy.counts.get("head"),
      2,
      "the file key beside the put, the parent's object after the entry",
    );
    assert.equal(spy.counts.get("set fetch"), 1, "the new directory's index, beside the put");
    assert.equal(
      spy.counts.get("set update"),
      1,
      "its entry in dir, with nothing to look up first",
    );
    assert.equal((await store.stat("dir/sub")).mode, 0o700);

    spy.counts.clear();
    await store.writeFile("dir/sub/f", seededBytes(31, 10), { unlisted: true });
    assert.equal(spy.counts.get("set fetch") ?? 0, 0, "the empty index is known");
    const listed: string[] = [];
    for await (const entry of store.list("dir/sub")) listed.push(entry.name.toString());
    assert.deepEqual(listed, ["f"]);
  });
});

Deno.test("an unlisted mkdir over a file or an index-only directory refuses and leaves nothing", async () => {
  await withStore(async ({ client, store }) => {
    await store.writeFile("file", seededBytes(32, 10));
    await new DirectoryIndex(client, { capacity: 2000, fanout: 16 }).add(
      store.layout.directory(normalizePath("indexed")),
      [{ type: "file", name: Buffer.from("x") }],
    );
    for (const taken of ["file", "indexed"]) {
      await assert.rejects(store.mkdir(taken, { unlisted: true }), AlreadyExistsError, taken);
      const object = await client.get(store.layout.directory(normalizePath(taken)).object, {
        head: true,
      });
      assert.equal(object.contents.length, 0, `${taken}: the directory object made is gone`);
    }
    assert.equal((await store.stat("file")).type, "file");
    assert.equal((await store.stat("indexed")).type, "directory");
  });
});

Deno.test("ensureListed adds the entry of a directory whose mkdir ended before it", async () => {
  await withStore(async ({ client, bucket, store }) => {
    await store.mkdir("parent");
    // A mkdir cut off after the directory's object: its entry in the parent never came, nor
    // could its object be taken back.
    const cutOff = new Store({
      ...client,
      updateSet: () => Promise.reject(new Error("connection lost")),
      delete: () => Promise.reject(new Error("connection lost")),
    }, { namespace: { bucket } });
    await assert.rejects(cutOff.mkdir("parent/lost", { mode: 0o750 }), /connection lost/);
    const names = async () => {
      const listed: string[] = [];
      for await (const entry of store.list("parent")) listed.push(entry.name.toString());
      return listed;
    };
    assert.deepEqual(await names(), []);
    assert.equal(await store.ensureListed("parent/lost"), true);
    assert.deepEqual(await names(), ["lost"]);
    assert.equal((await store.stat("parent/lost")).mode, 0o750);
    assert.equal(await store.ensureListed("parent/lost"), false, "listed already");
    await assert.rejects(store.ensureListed("parent/none"), /not found|ENOENT/i);
  });
});

Deno.test("files added at once to one directory share one look at its object per set update", async () => {
  await withStore(async ({ client, bucket }) => {
    const spy = counting(client);
    const store = new Store(spy.client, { namespace: { bucket } });
    await store.mkdir("d");
    spy.counts.clear();
    await Promise.all(
      Array.from(
        { length: 16 },
        (_, i) =>
          store.writeFile(`d/f${i}`, seededBytes(i, 100), { previous: null, unlisted: true }),
      ),
    );
    const updates = spy.counts.get("set update") ?? 0;
    assert.ok(updates >= 1 && updates < 16, `set updates: ${updates}`);
    // Unlisted writes look at nothing else: every head is a look at d's object after an add.
    assert.equal(spy.counts.get("head"), updates);
    const listed: string[] = [];
    for await (const entry of store.list("d")) listed.push(entry.name.toString());
    assert.equal(listed.length, 16);
  });
});
