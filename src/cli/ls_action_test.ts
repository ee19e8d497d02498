import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { putLegacyRiakFuseFile, riakFusePrefixes, withStore } from "../store/_test_support.ts";
import { NotFoundError, StoreError } from "../store/errors.ts";
import { displayPath } from "../store/path.ts";
import type { DirEntry, FileStat, Store } from "../store/store.ts";
import { ListedNotStoredError, LONG_LISTING_STATS_AT_ONCE, writeListing } from "./ls_action.ts";

const T = 1_700_000_000_000_000_000n; // 2023-11-14T22:13:20Z
/** Files beside the four kinds of entry: more than the stats asked at once, twice over. */
const PLAIN_FILES = 2 * LONG_LISTING_STATS_AT_ONCE + 5;

/** `d`: a directory, an inline file, a chunked file, a symlink and plain files. */
async function mixedDirectory(store: Store): Promise<void> {
  await store.mkdir("d");
  await store.mkdir("d/sub", { mode: 0o750, uid: 7, gid: 8, mtimeNs: T });
  await store.writeFile("d/small.txt", Buffer.from("small"), {
    mode: 0o640,
    uid: 1,
    gid: 2,
    mtimeNs: T,
  });
  await store.writeFile("d/big.bin", Buffer.alloc(10_000, 7), { mtimeNs: T + 1_000_000_000n });
  await store.symlink("d/link", "small.txt", { uid: 3, gid: 4, mtimeNs: T });
  for (let i = 0; i < PLAIN_FILES; i++) {
    await store.writeFile(`d/f${i}`, Buffer.from(`${i}`), { mtimeNs: T });
  }
}

/** What {@link writeListing} writes, joined, and how it ended. */
async function listing(
  store: Pick<Store, "list" | "stat">,
  options: { long: boolean; json: boolean; statsAtOnce?: number },
): Promise<{ text: string; error?: unknown }> {
  let text = "";
  try {
    await writeListing(store, Buffer.from("d"), options, (data) => {
      text += data;
      return Promise.resolve();
    });
    return { text };
  } catch (error) {
    return { text, error };
  }
}

/** The listing's names, in its order. */
async function namesOf(store: Store): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of store.list("d")) names.push(entry.name.toString());
  return names;
}

Deno.test("ls --long, --json and plain: the same output as one stat after the other, in the listing's order", async () => {
  await withStore(async ({ store }) => {
    await mixedDirectory(store);
    const names = await namesOf(store);
    for (const json of [false, true]) {
      const serial = await listing(store, { long: true, json, statsAtOnce: 1 });
      const ahead = await listing(store, { long: true, json });
      assert.equal(ahead.error, undefined);
      assert.equal(ahead.text, serial.text, json ? "--long --json" : "--long");
    }
    const long = (await listing(store, { long: true, json: false })).text.split("\n");
    assert.deepEqual(long.pop(), "");
    assert.deepEqual(
      long.map((line) => line.split(" ").pop()),
      names.map((name) => name === "sub" ? "sub/" : name),
    );
    const line = (name: string) => long.find((text) => text.endsWith(` ${name}`));
    assert.equal(line("small.txt"), "-rw-r----- 1 2          5 2023-11-14T22:13:20.000Z small.txt");
    assert.equal(line("big.bin"), "-rw-r--r-- 0 0      10000 2023-11-14T22:13:21.000Z big.bin");
    assert.equal(line("sub/"), "drwxr-x--- 7 8          0 2023-11-14T22:13:20.000Z sub/");
    assert.equal(line("link"), "lrwxrwxrwx 3 4          9 2023-11-14T22:13:20.000Z link");
    const json = JSON.parse((await listing(store, { long: true, json: true })).text);
    assert.deepEqual(json.map((item: { name: string }) => item.name), names);
    const big = json.find((item: { name: string }) => item.name === "big.bin");
    assert.equal(big.storage, "chunked");
    const plain = await listing(store, { long: false, json: false });
    assert.equal(plain.text, names.map((name) => name === "sub" ? "sub/\n" : `${name}\n`).join(""));
  }, { namespace: { chunkSize: 4096 } });
});

/** The store, with the stat of the entries called `failing` throwing `error(path)`. */
function failingStats(
  store: Store,
  failing: ReadonlySet<string>,
  error: (path: string) => Error,
): Pick<Store, "list" | "stat"> {
  return {
    list: (path) => store.list(path),
    stat: async (path): Promise<FileStat> => {
      const name = Buffer.from(path).toString().split("/").pop()!;
      if (failing.has(name)) throw error(displayPath(Buffer.from(path)));
      return await store.stat(path);
    },
  };
}

Deno.test("ls --long: a stat that fails ends the output where one stat after the other did", async () => {
  await withStore(async ({ store }) => {
    await mixedDirectory(store);
    const names = await namesOf(store);
    // Past the first stats asked at once, and others after it failing too.
    const failing = new Set([names[LONG_LISTING_STATS_AT_ONCE + 3], names.at(-1)!]);
    const faulty = failingStats(
      store,
      failing,
      (path) => new StoreError("EIO", `${path}: Riak unreachable`, { path }),
    );
    for (const json of [false, true]) {
      const serial = await listing(faulty, { long: true, json, statsAtOnce: 1 });
      const ahead = await listing(faulty, { long: true, json });
      assert.ok(serial.error instanceof StoreError);
      assert.equal(ahead.text, serial.text);
      assert.ok(ahead.error instanceof StoreError);
      assert.equal(ahead.error.message, serial.error.message);
      assert.match(ahead.error.message, new RegExp(`/d/${names[LONG_LISTING_STATS_AT_ONCE + 3]}:`));
    }
    const lines = (await listing(faulty, { long: true, json: false })).text.split("\n");
    assert.equal(lines.length - 1, LONG_LISTING_STATS_AT_ONCE + 3, "the entries before it");
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("ls --long: entries listed with nothing stored are written with question marks, every other entry too, and the listing then fails naming them", async () => {
  await withStore(async ({ store }) => {
    await mixedDirectory(store);
    const names = await namesOf(store);
    const orphans = [names[1], names[LONG_LISTING_STATS_AT_ONCE + 3]];
    const faulty = failingStats(store, new Set(orphans), (path) => new NotFoundError(path));
    const text = await listing(faulty, { long: true, json: false });
    assert.ok(text.error instanceof ListedNotStoredError);
    assert.match(text.error.message, /^2 entries listed with nothing stored \(\/d\/.+, \/d\/.+\)/);
    assert.match(text.error.message, /riakfs gc --delete/);
    const lines = text.text.split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(lines.map((line) => line.split(" ").pop()!.replace(/\/$/, "")), names);
    for (const [i, line] of lines.entries()) {
      assert.equal(line.startsWith("?????????? ? ? "), orphans.includes(names[i]), line);
    }
    const json = await listing(faulty, { long: true, json: true });
    assert.ok(json.error instanceof ListedNotStoredError);
    const items = JSON.parse(json.text) as Array<{ name: string; stored?: boolean; size?: number }>;
    assert.deepEqual(items.map((item) => item.name), names);
    for (const item of items) {
      assert.equal(item.stored === false, orphans.includes(item.name), item.name);
      assert.equal(item.size === undefined, orphans.includes(item.name), item.name);
    }
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("ls --long asks for the stats at once, bounded, and writes the first line before the others are in", async () => {
  const entries: DirEntry[] = Array.from({ length: 100 }, (_, i) => ({
    name: Buffer.from(`f${i}`),
    type: "file",
  }));
  const held: { path: Buffer; answer: () => void }[] = [];
  const store = {
    async *list(): AsyncGenerator<DirEntry> {
      yield* entries;
    },
    stat: (path: Buffer) =>
      new Promise<FileStat>((resolve) =>
        held.push({
          path,
          answer: () =>
            resolve({
              path,
              type: "file",
              storage: "inline",
              size: 1,
              mode: 0o644,
              uid: 0,
              gid: 0,
              mtimeNs: T,
            } as FileStat),
        })
      ),
  };
  const lines: string[] = [];
  const writing = writeListing(store, Buffer.from("d"), { long: true, json: false }, (data) => {
    lines.push(String(data));
    return Promise.resolve();
  });
  const turns = async (condition: () => boolean, what: string) => {
    for (let turn = 0; !condition(); turn++) {
      if (turn > 1_000) throw new Error(`never: ${what} (${held.length} stats asked)`);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  // One after the other, the second stat waited for the first's answer.
  await turns(() => held.length >= 8, "several stats asked before any answer");
  await turns(() => held.length === LONG_LISTING_STATS_AT_ONCE, "the stats asked at once");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(held.length, LONG_LISTING_STATS_AT_ONCE, "no more before an answer");
  held[0].answer();
  await turns(() => lines.length === 1, "the first line");
  assert.equal(held.length, LONG_LISTING_STATS_AT_ONCE + 1, "one more asked, no more");
  assert.match(lines[0], / f0\n$/);
  for (let i = 1; i < entries.length; i++) {
    await turns(() => held.length > i, `stat ${i}`);
    held[i].answer();
  }
  await writing;
  assert.deepEqual(
    lines.map((line) => line.trim().split(" ").pop()),
    entries.map((e) => e.name.toString()),
  );
});

Deno.test("ls --long shows no time for a directory Riak keeps no attributes for (a riak-fuse folder), not the epoch", async () => {
  await withStore(async ({ client, riak, another }) => {
    const riakFuse = riakFusePrefixes(riak);
    const store = another({ namespace: { preset: "riak-fuse", riakFuse } });
    await putLegacyRiakFuseFile(client, riakFuse, "shop", "a.jpg", "a picture");
    let text = "";
    await writeListing(store, Buffer.from("shop"), { long: true, json: false }, (data) => {
      text += data;
      return Promise.resolve();
    });
    assert.equal(text, `drwxr-xr-x 0 0          0 ${"-".padEnd(24)} images/\n`);
  });
});
