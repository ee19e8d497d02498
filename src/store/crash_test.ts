/**
 * A process dying in the middle of a store operation (its remaining requests never sent)
 * leaves duplicates or leftovers, never a loss: whatever is done next with either name of
 * an interrupted rename keeps the other readable, a file whose entry was never added gets
 * it on the next write (also once a duplicate was renamed on), and a directory whose rename
 * died half-way can still be removed.
 * And a change of attributes racing an overwrite applies to the new version, never brings
 * the old one back.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { StoreClient } from "./client.ts";
import { type StoreFixture, withStore } from "./_test_support.ts";
import { AlreadyExistsError, KeyExistsError, NotFoundError } from "./errors.ts";
import { describeLocation, type NamespaceOptions } from "./layout.ts";
import { MANIFEST_CONTENT_TYPE } from "./manifest.ts";
import { Store } from "./store.ts";
import { decodeUsermeta, encodeUsermeta } from "./usermeta.ts";

const CONTENT = Buffer.from("precious data, more than one 8-byte chunk");
const SMALL_CHUNKS = { chunkSize: 8 };

/** `client`, dead from the first request `dies` picks on (that one is never sent). */
function dyingClient(client: StoreClient, dies: (operation: string, bucket: string) => boolean) {
  let dead = false;
  const guard = (operation: string, bucket: Uint8Array) => {
    if (!dead && dies(operation, Buffer.from(bucket).toString())) dead = true;
    if (dead) throw new Error("the process died");
  };
  return {
    ...client,
    get: (location, options) => (guard("get", location.bucket), client.get(location, options)),
    put: (location, content, options) => (
      guard("put", location.bucket), client.put(location, content, options)
    ),
    delete: (
      location,
      options,
    ) => (guard("delete", location.bucket), client.delete(location, options)),
    fetchSet: (location) => (guard("fetchSet", location.bucket), client.fetchSet(location)),
    updateSet: (
      location,
      change,
    ) => (guard("updateSet", location.bucket), client.updateSet(location, change)),
  } satisfies StoreClient;
}

/** What {@link renameDying} renames, and the namespace options of the process renaming. */
interface DyingRename {
  from?: string;
  to?: string;
  namespace?: NamespaceOptions;
}

/**
 * Renames `from` to `to` (d/f to d/t in small chunks by default) in a process that dies at its
 * `updates`-th update of a directory's set.
 */
async function renameDying(
  client: StoreClient,
  bucket: string,
  updates: number,
  { from = "d/f", to = "d/t", namespace = SMALL_CHUNKS }: DyingRename = {},
) {
  let seen = 0;
  const dying = dyingClient(
    client,
    (operation, name) => operation === "updateSet" && name.endsWith(".dirs") && ++seen === updates,
  );
  await assert.rejects(new Store(dying, { namespace: { bucket, ...namespace } }).rename(from, to));
}

/** A gate held once: `hold(true)` resolves `atGate` and waits until `proceed` is called. */
function gateOnce() {
  let reached!: () => void;
  const atGate = new Promise<void>((resolve) => reached = resolve);
  let proceed!: () => void;
  const gate = new Promise<void>((resolve) => proceed = resolve);
  let held = false;
  const hold = async (when: boolean) => {
    if (held || !when) return;
    held = true;
    reached();
    await gate;
  };
  return { atGate, proceed, hold };
}

/** `client`, whose first put to `key` waits (`atPut` resolved) until `proceed` is called. */
function holdingFirstPut(client: StoreClient, key: string) {
  const { atGate, proceed, hold } = gateOnce();
  const slow: StoreClient = {
    ...client,
    put: async (location, content, options) => {
      await hold(Buffer.from(location.key).toString() === key);
      return await client.put(location, content, options);
    },
  };
  return { slow, atPut: atGate, proceed };
}

const names = async (store: Store, path: string) =>
  (await Array.fromAsync(store.list(path))).map((entry) => entry.name.toString()).sort();

Deno.test("a rename that died before the new entry: writing the new name keeps the old file", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 1);
    assert.deepEqual(await names(store, "d"), ["f"]);
    await store.writeFile("d/t", Buffer.from("something else entirely"));
    assert.ok(CONTENT.equals(await store.readFile("d/f")));
    assert.deepEqual(await names(store, "d"), ["f", "t"]);
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a rename that died with both names listed: either name can be used after", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    assert.deepEqual(await names(store, "d"), ["f", "t"]);
    await store.remove("d/t");
    assert.ok(CONTENT.equals(await store.readFile("d/f")), "removing the new name");
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    await store.writeFile("d/f", Buffer.from("a new file under the old name"));
    assert.ok(CONTENT.equals(await store.readFile("d/t")), "overwriting the old name");
    await store.writeFile("d/f", CONTENT);
    await store.remove("d/t");
    await renameDying(client, bucket, 2);
    await store.setAttributes("d/f", { mode: 0o600 });
    await store.remove("d/f");
    assert.ok(CONTENT.equals(await store.readFile("d/t")), "attributes, then removing the old");
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a crash duplicate renamed on keeps its chunks: removing either leftover is safe", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    assert.deepEqual(await names(store, "d"), ["f", "t"]);
    await store.rename("d/t", "d/u");
    await store.rename("d/u", "d/v");
    assert.deepEqual(await names(store, "d"), ["f", "v"]);
    await store.remove("d/f");
    assert.ok(CONTENT.equals(await store.readFile("d/v")), "the leftover removed");
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    await store.rename("d/f", "d/g");
    await store.remove("d/t");
    assert.ok(CONTENT.equals(await store.readFile("d/g")), "the renamed-on old name kept");
    await store.writeFile("d/t", Buffer.from("another file over the old name's partner"));
    assert.ok(CONTENT.equals(await store.readFile("d/g")));
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a crash duplicate's chunks survive a rename over it, a directory rename, and a write with an old stat", async () => {
  await withStore(async ({ store, client, bucket }) => {
    // Renamed over: the replaced name's chunks are the leftover's too.
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    await store.writeFile("d/c", Buffer.from("another chunked file, renamed over t"));
    await store.rename("d/c", "d/t");
    assert.ok(CONTENT.equals(await store.readFile("d/f")), "renamed over");
    await store.remove("d/t");
    await store.remove("d/f");
    // Both names of the pair move at once: each new name must know the other.
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    await store.rename("d", "e");
    await store.remove("e/f");
    assert.ok(CONTENT.equals(await store.readFile("e/t")), "moved with their directory");
    await store.remove("e/t");
    // A stat taken before a partner was renamed on: the write checks the marks as they are.
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2);
    const stat = await store.stat("d/f");
    await store.rename("d/t", "d/u");
    await store.writeFile("d/f", Buffer.from("new content over the leftover"), { previous: stat });
    assert.ok(CONTENT.equals(await store.readFile("d/u")), "overwritten with an old stat");
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a put resent after its first attempt landed (a timeout) is this write, not a conflict", async () => {
  await withStore(async ({ client, bucket }) => {
    // The first attempt is applied, its answer lost; the resend finds it: "match_found".
    let resent = false;
    const retrying: StoreClient = {
      ...client,
      put: async (location, content, options) => {
        await client.put(location, content, options);
        if (!resent && options?.ifNoneMatch && Buffer.from(location.key).toString() === "d/big") {
          resent = true;
          throw new KeyExistsError(describeLocation(location));
        }
      },
    };
    const store = new Store(retrying, { namespace: { bucket, ...SMALL_CHUNKS } });
    await store.writeFile("d/big", CONTENT, { unlisted: true });
    assert.ok(resent, "the resend was answered match_found");
    assert.ok(CONTENT.equals(await store.readFile("d/big")), "its chunks are still there");
    assert.deepEqual(await names(store, "d"), ["big"]);
  }, { namespace: SMALL_CHUNKS });
});

/** Runs `change` in a process that dies at its first set update: objects stored, no entry. */
async function diesBeforeEntry(
  client: StoreClient,
  bucket: string,
  change: (store: Store) => Promise<unknown>,
) {
  const dying = dyingClient(client, (operation) => operation === "updateSet");
  await assert.rejects(change(new Store(dying, { namespace: { bucket } })));
}

/** Writes d/new ("v1") in a process that dies before d lists it. */
async function writeUnlisted({ store, client, bucket }: StoreFixture) {
  await store.mkdir("d");
  await diesBeforeEntry(
    client,
    bucket,
    (crashing) => crashing.writeFile("d/new", Buffer.from("v1")),
  );
  assert.deepEqual(await names(store, "d"), []);
}

Deno.test("a file whose entry a crash never added is listed once it is written again", async () => {
  await withStore(async (fixture) => {
    const { store } = fixture;
    await writeUnlisted(fixture);
    await store.writeFile("d/new", Buffer.from("v2"));
    assert.deepEqual(await names(store, "d"), ["new"]);
  });
});

Deno.test("a file whose entry a crash never added is listed once written again over a stat of it", async () => {
  await withStore(async (fixture) => {
    const { store } = fixture;
    await writeUnlisted(fixture);
    // The mount's replayed upload (and a pre-warm's re-upload) write over what a stat found.
    const stat = await store.tryStat("d/new", { fileOnly: true });
    assert.equal(stat?.size, 2);
    assert.deepEqual(await names(store, "d"), []);
    await store.writeFile("d/new", Buffer.from("v22"), { previous: stat });
    assert.deepEqual(await names(store, "d"), ["new"]);
    assert.equal((await store.readFile("d/new")).toString(), "v22");
  });
});

/** The directory renames below: src to dst, with the namespace's default chunk size. */
const SOURCE_TO_DESTINATION: DyingRename = { from: "src", to: "dst", namespace: {} };

Deno.test("a directory whose rename died after its objects went can still be removed", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("src/a", Buffer.from("aaa"));
    await store.writeFile("src/b", Buffer.from("bbb"));
    // Its set updates: dst's entry, dst's entries, then (the objects gone) src's removals.
    await renameDying(client, bucket, 3, SOURCE_TO_DESTINATION);
    assert.deepEqual(await names(store, "src"), ["a", "b"], "entries whose objects are gone");
    await store.remove("src", { recursive: true });
    assert.deepEqual(await names(store, ""), ["dst"]);
    assert.equal((await store.readFile("dst/a")).toString(), "aaa");
  });
});

Deno.test("a directory's rename that died half-way goes on when resumed; without resume, or into another directory, it does not", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("src/a", Buffer.from("aaa"));
    await store.writeFile("src/b", Buffer.from("bbb"));
    await store.writeFile("src/sub/c", Buffer.from("ccc"));
    // Dies at src's removals: sub moved, a's and b's objects gone, their entries still listed.
    await renameDying(client, bucket, 7, SOURCE_TO_DESTINATION);
    assert.deepEqual(await names(store, "src"), ["a", "b"], "entries whose objects are gone");
    await assert.rejects(store.rename("src", "dst"), { code: "ENOTEMPTY" });
    // Written into it by another host meanwhile.
    await store.writeFile("src/late", Buffer.from("late"));
    // A directory of its own at the new name is not taken for the rename's: one with other
    // attributes, or with src's (made elsewhere) and another file under a name src holds.
    await store.mkdir("other");
    await store.writeFile("other/x", Buffer.from("x"));
    await assert.rejects(store.rename("src", "other", { resume: true }), { code: "ENOTEMPTY" });
    const { mode, uid, gid, mtimeNs } = await store.stat("src");
    await store.mkdir("twin", { mode, uid, gid, mtimeNs });
    await store.writeFile("twin/late", Buffer.from("twin's own"));
    await assert.rejects(store.rename("src", "twin", { resume: true }), { code: "ENOTEMPTY" });
    assert.equal((await store.readFile("twin/late")).toString(), "twin's own");
    await store.rename("src", "dst", { resume: true });
    assert.deepEqual(await names(store, ""), ["dst", "other", "twin"]);
    assert.deepEqual(await names(store, "dst"), ["a", "b", "late", "sub"]);
    assert.equal((await store.readFile("dst/a")).toString(), "aaa");
    assert.equal((await store.readFile("dst/sub/c")).toString(), "ccc");
  });
});

Deno.test("setAttributes racing an overwrite never puts the old version back", async () => {
  await withStore(async ({ store, client, bucket }) => {
    for (
      const [name, old, fresh] of [["big", CONTENT, Buffer.from("NEW NEW NEW NEW NEW NEW")], [
        "small",
        Buffer.from("old"),
        Buffer.from("NEW"),
      ]] as const
    ) {
      await store.writeFile(name, old);
      // The chmod's put, held until the overwrite is done.
      const { slow, atPut, proceed } = holdingFirstPut(client, name);
      const chmod = new Store(slow, { namespace: { bucket, ...SMALL_CHUNKS } })
        .setAttributes(name, { mode: 0o600 });
      await atPut;
      await store.writeFile(name, fresh);
      proceed();
      await chmod;
      assert.ok(fresh.equals(await store.readFile(name)), `${name}: the overwrite stays`);
      assert.equal((await store.stat(name)).mode, 0o600, `${name}: the chmod applies to it`);
    }
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("setAttributes racing a removal or a rename does not make the object again", async () => {
  await withStore(async ({ store, client, bucket }) => {
    for (const [name, away] of [["d", "removed"], ["f", "removed"], ["e", "renamed"]] as const) {
      if (name === "f") await store.writeFile(name, CONTENT);
      else await store.mkdir(name);
      // The change's put, held until the path is gone; Riak then says the object changed.
      const { slow, atPut, proceed } = holdingFirstPut(client, name === "f" ? name : `${name}/`);
      const change = new Store(slow, { namespace: { bucket, ...SMALL_CHUNKS } })
        .setAttributes(name, { mtimeNs: 1n });
      change.catch(() => {}); // awaited below
      await atPut;
      if (away === "removed") await store.remove(name);
      else await store.rename(name, `${name}2`);
      proceed();
      await assert.rejects(change, NotFoundError, `${name} ${away}`);
      assert.equal(await store.tryStat(name), undefined, `${name} ${away}: not there again`);
    }
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a directory another host removed is made again by a later write, not filled unlisted", async () => {
  await withStore(async ({ store: other, client, bucket }) => {
    let clock = 1_000_000;
    const store = new Store(client, { namespace: { bucket }, now: () => clock });
    await store.writeFile("dir/x", Buffer.from("x"));
    await other.remove("dir", { recursive: true }); // Another host.
    clock += 60_000;
    await store.writeFile("dir/y", Buffer.from("y"));
    assert.deepEqual(await names(other, ""), ["dir"]);
    assert.deepEqual(await names(other, "dir"), ["y"]);
    assert.equal((await other.stat("dir")).type, "directory");
  });
});

Deno.test("a file written into a directory while it is renamed moves with it", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("src/a", Buffer.from("aaa"));
    // The rename's copy of src/a, held while src/new is written.
    const { slow, atPut, proceed } = holdingFirstPut(client, "dst/a");
    const renaming = new Store(slow, { namespace: { bucket } }).rename("src", "dst");
    await atPut;
    await store.writeFile("src/new", Buffer.from("written meanwhile"));
    proceed();
    await renaming;
    assert.deepEqual(await names(store, "dst"), ["a", "new"]);
    assert.equal((await store.readFile("dst/new")).toString(), "written meanwhile");
    assert.deepEqual(await names(store, ""), ["dst"]);
  });
});

Deno.test("allow_mult: a write with an older stat keeps the chunks of the version it did not see", async () => {
  await withStore(async ({ client, bucket }) => {
    const namespace = { bucket, bucketType: "kvmulti", ...SMALL_CHUNKS };
    const a = new Store(client, { namespace });
    const b = new Store(client, { namespace }); // Another host.
    await a.writeFile("f", Buffer.from("v0 v0 v0 v0 v0 v0"), { mtimeNs: 1000n });
    const before = await a.tryStat("f", { fileOnly: true });
    await b.writeFile("f", Buffer.from("B's version, keep me"), { mtimeNs: 3000n });
    // A's write with its older stat makes a sibling; B's (newer mtime) wins the resolution.
    await a.writeFile("f", Buffer.from("A's version, older mtime"), {
      previous: before,
      mtimeNs: 2000n,
    });
    assert.equal((await a.readFile("f")).toString(), "B's version, keep me");
  });
});

Deno.test("a directory whose entry a crash never added is listed by what comes to it next", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const restarted = new Store(client, { namespace: { bucket } }); // The retry, after a restart.
    await store.writeFile("elsewhere", CONTENT);
    const cases: [string, (directory: string) => Promise<unknown>, string[]][] = [
      ["a write below it", (directory) => restarted.writeFile(`${directory}/f`, CONTENT), ["f"]],
      ["a mkdir below it", (directory) => restarted.mkdir(`${directory}/sub`), ["sub"]],
      ["a rename into it", (directory) => restarted.rename("elsewhere", `${directory}/r`), ["r"]],
      [
        "a mkdir of its name (EEXIST)",
        (directory) => assert.rejects(restarted.mkdir(directory), AlreadyExistsError),
        [],
      ],
    ];
    for (const [index, [what, next, below]] of cases.entries()) {
      const top = `t${index}`;
      await store.mkdir(top);
      await diesBeforeEntry(client, bucket, (crashing) => crashing.mkdir(`${top}/d`));
      assert.equal((await store.tryStat(`${top}/d`))?.type, "directory", `${what}: stored`);
      assert.deepEqual(await names(store, top), [], `${what}: unlisted`);
      await next(`${top}/d`);
      assert.deepEqual(await names(store, top), ["d"], what);
      assert.deepEqual(await names(store, `${top}/d`), below, what);
    }
  });
});

Deno.test("a mkdir or symlink Riak failed before its entry leaves nothing behind, and may be tried again", async () => {
  await withStore(async ({ client, bucket, store: elsewhere }) => {
    let refusing = false;
    const flaky: StoreClient = {
      ...client,
      updateSet: (location, change) =>
        refusing ? Promise.reject(new Error("Riak refused")) : client.updateSet(location, change),
    };
    const store = new Store(flaky, { namespace: { bucket } });
    const refused = async (make: () => Promise<unknown>) => {
      refusing = true;
      try {
        await assert.rejects(make(), /Riak refused/);
      } finally {
        refusing = false;
      }
    };
    await store.mkdir("top");
    await refused(() => store.mkdir("top/d"));
    await refused(() => store.symlink("top/s", "target"));
    for (const path of ["top/d", "top/s"]) {
      assert.equal(await elsewhere.tryStat(path), undefined, `${path}: undone`);
    }
    // Nothing is left to come back into a directory of the same name made later.
    await store.remove("top");
    await store.mkdir("top");
    assert.deepEqual(await names(elsewhere, "top"), []);
    await store.mkdir("top/d");
    await store.symlink("top/s", "target");
    assert.deepEqual(await names(elsewhere, "top"), ["d", "s"]);

    // Made as the pre-warm makes directories (writes below may start once the object is
    // stored), it stays; a mkdir of it then lists it, even while the store still knows it.
    await refused(() => store.mkdir("top/p", { objectStored: () => {} }));
    assert.equal((await elsewhere.tryStat("top/p"))?.type, "directory");
    assert.deepEqual(await names(elsewhere, "top"), ["d", "s"]);
    await assert.rejects(store.mkdir("top/p"), AlreadyExistsError);
    assert.deepEqual(await names(elsewhere, "top"), ["d", "p", "s"]);
  });
});

Deno.test("a file overwritten or removed while another host renames it: the new name stays readable", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const changes = [
      ["overwritten", () => store.writeFile("d/f", Buffer.from("another chunked version of f"))],
      ["removed", () => store.remove("d/f")],
    ] as const;
    for (const [what, change] of changes) {
      await store.writeFile("d/f", CONTENT);
      // The rename marked d/f as renamed to d/t; its put of d/t is held while d/f changes.
      const { slow, atPut, proceed } = holdingFirstPut(client, "d/t");
      const renaming = new Store(slow, { namespace: { bucket, ...SMALL_CHUNKS } })
        .rename("d/f", "d/t");
      renaming.catch(() => {}); // awaited below
      await atPut;
      await change();
      proceed();
      await renaming;
      assert.ok(CONTENT.equals(await store.readFile("d/t")), `${what}: d/t has its chunks`);
      await store.remove("d/t");
      if (await store.tryStat("d/f")) await store.remove("d/f");
    }
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a file written again into a directory being renamed after its first copy moved is moved again", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await store.writeFile("src/a", Buffer.from("aaa"));
    // The rename's removal of src's moved entries, held while src/a is written again: the
    // first copy's old object is gone by then, so this is a new file of that name.
    const { atGate, proceed, hold } = gateOnce();
    const slow: StoreClient = {
      ...client,
      updateSet: async (location, change) => {
        await hold(change.remove !== undefined && Buffer.from(location.key).toString() === "src/");
        return await client.updateSet(location, change);
      },
    };
    const renaming = new Store(slow, { namespace: { bucket } }).rename("src", "dst");
    renaming.catch(() => {}); // awaited below
    await atGate;
    await store.writeFile("src/a", Buffer.from("written again"));
    proceed();
    await renaming;
    assert.deepEqual(await names(store, ""), ["dst"]);
    assert.deepEqual(await names(store, "dst"), ["a"]);
    assert.equal((await store.readFile("dst/a")).toString(), "written again");
  });
});

Deno.test("allow_mult: a crash duplicate's rename mark survives a sibling without it (a touch racing the mark)", async () => {
  await withStore(async ({ store, client, bucket }) => {
    const namespace = { bucket, bucketType: "kvmulti", ...SMALL_CHUNKS };
    await store.writeFile("d/f", CONTENT);
    await renameDying(client, bucket, 2, { namespace });
    // Another host's touch of d/f, read before the rename marked it: Riak kept both versions,
    // and the touch's (newer mtime, no mark) wins their resolution.
    const location = store.layout.file(Buffer.from("d/f")).object;
    const marked = (await client.get(location)).contents[0];
    const touched = decodeUsermeta(marked.usermeta)!;
    await client.put(location, {
      value: marked.value,
      contentType: marked.contentType ?? MANIFEST_CONTENT_TYPE,
      usermeta: encodeUsermeta({ ...touched, mtimeNs: touched.mtimeNs + 1_000n }),
    });
    assert.equal((await client.get(location)).contents.length, 2, "kvmulti keeps siblings");
    await store.remove("d/f");
    assert.ok(CONTENT.equals(await store.readFile("d/t")), "d/t keeps its chunks");
  }, { namespace: { bucketType: "kvmulti", ...SMALL_CHUNKS } });
});

/**
 * Runs `change` (after `setup`) in a process that dies at its first, second, ... request until
 * it completes; after each death, every one of `paths` holding a file is readable and holds
 * bytes of `allowed`, one holds bytes of `kept`, and removing them in each of `orders`
 * (indexes into `paths`) keeps the rest readable.
 */
async function diesAtEveryRequest(
  { store, client, bucket }: StoreFixture,
  setup: () => Promise<unknown>,
  change: (dying: Store) => Promise<unknown>,
  { paths, allowed, kept, orders }: {
    paths: string[];
    allowed: Buffer[];
    kept: Buffer[];
    orders: number[][];
  },
) {
  const readable = async (path: string, why: string) => {
    const bytes = await store.readFile(path).catch((error) => Buffer.from(`${error}`));
    assert.ok(allowed.some((one) => one.equals(bytes)), `${why}: ${path}: ${bytes}`);
    return bytes;
  };
  const files = async () => {
    const found: string[] = [];
    for (const path of paths) if ((await store.tryStat(path))?.type === "file") found.push(path);
    return found;
  };
  for (let dies = 1;; dies++) {
    let finished = false;
    for (const order of orders) {
      await setup();
      let sent = 0;
      const dying = dyingClient(client, () => ++sent === dies);
      try {
        await change(new Store(dying, { namespace: { bucket, ...SMALL_CHUNKS } }));
        finished = true;
      } catch { /* died */ }
      const why = `died at request ${dies}`;
      const held = await Promise.all((await files()).map((path) => readable(path, why)));
      assert.ok(
        held.some((bytes) => kept.some((one) => one.equals(bytes))),
        `${why}: no name holds the file`,
      );
      for (const [i, index] of order.entries()) {
        if (await store.tryStat(paths[index])) await store.remove(paths[index]);
        for (const path of await files()) {
          await readable(path, `${why}, removed ${order.slice(0, i + 1).map((n) => paths[n])}`);
        }
      }
      for (const path of await files()) await store.remove(path);
    }
    if (finished) return;
  }
}

/** Removes the directories `tops` where they exist, with everything below them. */
async function removeTrees(store: Store, tops: string[]): Promise<void> {
  for (const top of tops) {
    if (await store.tryStat(top)) await store.remove(top, { recursive: true });
  }
}

const OTHER = Buffer.from("another chunked file, in more than one chunk");

Deno.test("a file renamed over another by a process that dies at any request: no loss, every name readable", async () => {
  await withStore(async (fixture) => {
    const { store } = fixture;
    await diesAtEveryRequest(
      fixture,
      async () => {
        await store.writeFile("d/f", CONTENT);
        await store.writeFile("d/t", OTHER);
      },
      (dying) => dying.rename("d/f", "d/t"),
      {
        paths: ["d/f", "d/t"],
        allowed: [CONTENT, OTHER],
        kept: [CONTENT],
        orders: [[0, 1], [1, 0]],
      },
    );
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("an overwrite by a process that dies at any request: the old or the new file, readable", async () => {
  await withStore(async (fixture) => {
    const { store } = fixture;
    await diesAtEveryRequest(
      fixture,
      () => store.writeFile("d/f", CONTENT),
      async (dying) => dying.writeFile("d/f", OTHER, { previous: await dying.stat("d/f") }),
      { paths: ["d/f"], allowed: [CONTENT, OTHER], kept: [CONTENT, OTHER], orders: [[0]] },
    );
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a directory renamed by a process that dies at any request: no loss, every name readable", async () => {
  await withStore(async (fixture) => {
    const { store } = fixture;
    await diesAtEveryRequest(
      fixture,
      async () => {
        await removeTrees(store, ["src", "dst"]);
        await store.writeFile("src/f", CONTENT);
        await store.writeFile("src/sub/g", OTHER);
      },
      (dying) => dying.rename("src", "dst"),
      {
        paths: ["src/f", "dst/f", "src/sub/g", "dst/sub/g"],
        allowed: [CONTENT, OTHER],
        kept: [CONTENT],
        orders: [[0, 1, 2, 3], [1, 0, 3, 2]],
      },
    );
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a crash leftover renamed on by a process that dies at any request: removing names in any order keeps the rest readable", async () => {
  await withStore(async (fixture) => {
    const { store, client, bucket } = fixture;
    await diesAtEveryRequest(
      fixture,
      async () => {
        // d/f renamed to d/p by a process that died with both names there.
        await store.writeFile("d/f", CONTENT);
        await renameDying(client, bucket, 2, { to: "d/p" });
      },
      (dying) => dying.rename("d/f", "d/t"),
      {
        paths: ["d/f", "d/p", "d/t"],
        allowed: [CONTENT],
        kept: [CONTENT],
        orders: [[0, 1, 2], [1, 0, 2], [0, 2, 1], [2, 1, 0]],
      },
    );
  }, { namespace: SMALL_CHUNKS });
});

Deno.test("a directory holding a crash leftover renamed by a process that dies at any request: every name readable", async () => {
  await withStore(async (fixture) => {
    const { store, client, bucket } = fixture;
    await diesAtEveryRequest(
      fixture,
      async () => {
        await removeTrees(store, ["src", "dst"]);
        await store.writeFile("src/f", CONTENT);
        await renameDying(client, bucket, 2, { from: "src/f", to: "src/p" });
      },
      (dying) => dying.rename("src", "dst"),
      {
        paths: ["src/f", "src/p", "dst/f", "dst/p"],
        allowed: [CONTENT],
        kept: [CONTENT],
        orders: [[0, 1, 2, 3], [2, 0, 1, 3], [1, 3, 0, 2], [3, 2, 1, 0]],
      },
    );
  }, { namespace: SMALL_CHUNKS });
});

/** What two hosts rename at once: `from` to `a` and to `b`; the file moves from `from`+`file`. */
const TWO_RENAMES = [
  { what: "a file", from: "d/f", a: "d/t", b: "d/u", file: "", tops: [] as string[] },
  { what: "a directory", from: "src", a: "a", b: "b", file: "/x", tops: ["src", "a", "b"] },
];

for (const { what, from, a, b, file, tops } of TWO_RENAMES) {
  Deno.test(`${what} renamed by two hosts at once to two names: removing either copy keeps the other readable`, async () => {
    await withStore(async ({ store, client, bucket }) => {
      for (const [removed, kept] of [[a + file, b + file], [b + file, a + file]]) {
        await removeTrees(store, tops);
        await store.writeFile(from + file, CONTENT);
        // A's rename, held at its put of the file's new object (the old one marked), while
        // B's rename runs; both succeed (no transactions), leaving a duplicate.
        const { slow, atPut, proceed } = holdingFirstPut(client, a + file);
        const renaming = new Store(slow, { namespace: { bucket, ...SMALL_CHUNKS } })
          .rename(from, a);
        renaming.catch(() => {}); // awaited below
        await atPut;
        await store.rename(from, b);
        proceed();
        await renaming;
        assert.ok(CONTENT.equals(await store.readFile(a + file)));
        await store.remove(removed);
        assert.ok(CONTENT.equals(await store.readFile(kept)), `${removed} removed: ${kept} kept`);
        await store.remove(kept);
      }
    }, { namespace: SMALL_CHUNKS });
  });
}
