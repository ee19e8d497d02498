import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  appendFile,
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MigrationStore } from "../migration/stored_file.ts";
import { OpenWriters } from "../migration/open_writers.ts";
import { holdOpen } from "../migration/_test_support.ts";
import { seededBytes, withStore } from "../store/_test_support.ts";
import { Store } from "../store/store.ts";
import { countingClient, noRequests } from "./_overlay_fixture.ts";
import { MountMetrics } from "./metrics.ts";
import {
  conflictPath,
  copyLocalFile,
  localPathMirrorer,
  riakNameMirrorer,
  setAsideUnseen,
  stagedFileUploader,
} from "./transfer.ts";
import { type Mirrorer, NotYetError } from "./upload_queue.ts";
import { Logger, SILENT_LOGGER } from "./log.ts";

async function withSource(body: (source: string) => Promise<void>): Promise<void> {
  const source = await mkdtemp(join(tmpdir(), "riakfs-transfer-"));
  try {
    await body(source);
  } finally {
    await rm(source, { recursive: true, force: true });
  }
}

/** The store's operations, with readRange running `before` first (to act mid-verification). */
function storeWithHook(
  store: Store,
  before: () => Promise<void>,
): MigrationStore & Pick<Store, "ensureListed"> {
  return {
    tryStat: (path, options) => store.tryStat(path, options),
    writeFile: (path, source, options) => store.writeFile(path, source, options),
    mkdir: (path, options) => store.mkdir(path, options),
    symlink: (path, target, options) => store.symlink(path, target, options),
    readlink: (path) => store.readlink(path),
    remove: (path, options) => store.remove(path, options),
    ensureListed: (path, options) => store.ensureListed(path, options),
    readRange: async function* (path, offset, length) {
      await before();
      yield* store.readRange(path, offset, length);
    },
  };
}

/** A logger that keeps each line it writes in `lines`, for a test to look at. */
function loggerInto(lines: string[]): Logger {
  return new Logger({ sink: { write: (line) => lines.push(line) > 0 } });
}

/** The riak preset's mirrorer over `store`, the lines it logs, and a signal never aborted. */
function riakMirroring(store: Store) {
  const lines: string[] = [];
  const mirror = riakNameMirrorer({ store, logger: loggerInto(lines) });
  return { lines, mirror, signal: new AbortController().signal };
}

/** The mirrorers of the riak and drain presets over `store`, logging into `lines`. */
function presetMirrorers(store: Store, source: string, lines: string[]) {
  const logger = loggerInto(lines);
  return {
    riak: riakNameMirrorer({ store, logger }),
    drain: localPathMirrorer({ store, source, afterTransfer: "delete", logger }),
  };
}

/** One run of a test through {@link forEachPreset}. */
interface PresetRun {
  /** The preset this run is of. */
  preset: keyof ReturnType<typeof presetMirrorers>;
  /** The preset's mirrorer over the store, logging into `lines`. */
  mirror: Mirrorer;
  /** What the preset's mirrorer logged in this run. */
  lines: string[];
  /** The drain preset's source directory. */
  source: string;
  /** A signal never aborted, for the mirrorer's calls. */
  signal: AbortSignal;
}

/** Runs `body` with the mirrorer of the riak preset, then of the drain preset, over `store`. */
async function forEachPreset(store: Store, body: (run: PresetRun) => Promise<void>) {
  await withSource(async (source) => {
    const lines: string[] = [];
    const mirrorers = presetMirrorers(store, source, lines);
    const signal = new AbortController().signal;
    for (const preset of ["riak", "drain"] as const) {
      lines.length = 0;
      await body({ preset, mirror: mirrorers[preset], lines, source, signal });
    }
  });
}

/** Asserts that `directory` holds one entry only: `name` set aside, holding `content`. */
async function assertOnlySetAside(store: Store, directory: string, name: string, content: string) {
  const names = (await Array.fromAsync(store.list(directory))).map((entry) =>
    entry.name.toString()
  );
  assert.equal(names.length, 1, `${names}`);
  const setAside = `^${name.replaceAll(".", "\\.")}\\.riakfs-conflict-\\d{8}T\\d{6}Z-[0-9a-f]{6}$`;
  assert.match(names[0], new RegExp(setAside));
  assert.equal((await store.readFile(`${directory}/${names[0]}`)).toString(), content);
}

Deno.test("a staged file is uploaded with the journaled attributes, reported back exactly", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (directory) => {
      const staged = join(directory, "staged-1");
      const content = seededBytes(1, 3 * 1024 * 1024 + 17);
      await writeFile(staged, content);
      const upload = stagedFileUploader(store);
      await upload(
        {
          id: 1,
          path: "/docs/report.bin",
          staged: "staged-1",
          mode: 0o640,
          uid: 1234,
          gid: 5678,
          mtimeNs: "1700000000123456789",
          size: content.length,
        },
        staged,
        new AbortController().signal,
      );
      const stored = await store.stat("/docs/report.bin");
      assert.equal(stored.size, content.length);
      assert.equal(stored.mode, 0o640);
      assert.equal(stored.uid, 1234);
      assert.equal(stored.gid, 5678);
      assert.equal(stored.mtimeNs, 1700000000123456789n);
      assert.ok(content.equals(await store.readFile("/docs/report.bin")));
    });
  });
});

Deno.test("an upload over a small file sends its bytes once, at the store's chunk size", async () => {
  await withStore(async ({ client, bucket }) => {
    await withSource(async (directory) => {
      const requests = noRequests();
      const counted = new Store(countingClient(client, requests), {
        namespace: { bucket, chunkSize: 2 * 1024 * 1024 },
      });
      const upload = stagedFileUploader(counted);
      for (const [id, size] of [[1, 1_500_000], [2, 1_600_000], [3, 1_600_000]]) {
        const staged = join(directory, `staged-${id}`);
        await writeFile(staged, seededBytes(id, size));
        await upload(
          {
            id,
            path: "/small.bin",
            staged: `staged-${id}`,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtimeNs: "1700000000000000000",
            size,
          },
          staged,
          new AbortController().signal,
        );
      }
      // Below the store's chunk size (2 MiB here, not the default 1 MiB) a look comes first,
      // so the two overwrites are one put each, not a refused if_none_match put and another.
      assert.equal(requests.puts, 3);
      assert.ok(seededBytes(3, 1_600_000).equals(await counted.readFile("/small.bin")));
    });
  });
});

Deno.test("copy-on-read uploads a local file once; an unchanged file is not uploaded again", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await writeFile(join(source, "a.txt"), "alpha");
      await utimes(join(source, "a.txt"), 1_600_000_000, 1_600_000_000);
      const options = { store, source, afterTransfer: "keep" as const };
      assert.equal(await copyLocalFile(options, "/a.txt"), "uploaded");
      assert.equal((await store.readFile("/a.txt")).toString(), "alpha");
      assert.equal((await store.stat("/a.txt")).mtimeNs, 1_600_000_000_000_000_000n);
      assert.equal(await copyLocalFile(options, "/a.txt"), "already-in-riak");
      assert.equal(await copyLocalFile(options, "/missing"), "not-a-file");
      assert.equal(await readFile(join(source, "a.txt"), "utf8"), "alpha", "local copy kept");
    });
  });
});

Deno.test("copy-on-read over an older Riak copy looks once (one head-only get), then puts", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await withSource(async (source) => {
      await store.writeFile("/a.txt", new TextEncoder().encode("old bytes"), {
        mtimeNs: 1_500_000_000_000_000_000n,
      });
      await writeFile(join(source, "a.txt"), "new local bytes");
      const requests = noRequests();
      const counted = new Store(countingClient(client, requests), { namespace: { bucket } });
      const options = { store: counted, source, afterTransfer: "keep" as const };
      assert.equal(await copyLocalFile(options, "/a.txt"), "uploaded");
      assert.equal((await store.readFile("/a.txt")).toString(), "new local bytes");
      assert.equal(requests.heads, 1);
      assert.equal(requests.gets, 0);
      assert.equal(requests.puts, 1);
    });
  });
});

for (const afterTransfer of ["keep", "delete"] as const) {
  Deno.test(`a copy cut off before its entry is listed by the next copy (${afterTransfer})`, async () => {
    await withStore(async ({ store, client, bucket }) => {
      await withSource(async (source) => {
        await mkdir(join(source, "d"));
        await writeFile(join(source, "d", "y"), "legacy bytes");
        await store.mkdir("/d");
        // Riak goes away after the file's object: its entry never comes.
        const cutOff = new Store({
          ...client,
          updateSet: () => Promise.reject(new Error("Riak went away")),
        }, { namespace: { bucket } });
        await assert.rejects(
          copyLocalFile({ store: cutOff, source, afterTransfer }, "/d/y"),
          /Riak went away/,
        );
        assert.equal((await store.tryStat("/d/y"))?.size, 12, "its object is there");
        const names = async () => (await Array.fromAsync(store.list("/d"))).map((e) => `${e.name}`);
        assert.deepEqual(await names(), [], "unlisted");
        assert.equal(
          await copyLocalFile({ store, source, afterTransfer }, "/d/y"),
          "already-in-riak",
        );
        assert.deepEqual(await names(), ["y"]);
        const local = await stat(join(source, "d", "y")).then(() => true, () => false);
        assert.equal(local, afterTransfer === "keep");
      });
    });
  });
}

Deno.test("drain deletes the local copy only after Riak's copy was verified", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      const metrics = new MountMetrics();
      await writeFile(join(source, "b.bin"), seededBytes(2, 100_000));
      const options = { store, source, afterTransfer: "delete" as const, metrics };
      assert.equal(await copyLocalFile(options, "/b.bin"), "uploaded");
      await assert.rejects(stat(join(source, "b.bin")), { code: "ENOENT" });
      assert.ok(seededBytes(2, 100_000).equals(await store.readFile("/b.bin")));
      assert.equal(metrics.snapshot().localDeletion.deleted, 1);
    });
  });
});

Deno.test("a file changed between hashing and deletion is kept", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      const file = join(source, "c.txt");
      await writeFile(file, "version one");
      const metrics = new MountMetrics();
      // The change lands while Riak's copy is being read back for verification.
      const racing = storeWithHook(store, () => appendFile(file, " and two"));
      const outcome = await copyLocalFile(
        { store: racing, source, afterTransfer: "delete", metrics },
        "/c.txt",
      );
      assert.equal(outcome, "uploaded");
      assert.equal(await readFile(file, "utf8"), "version one and two");
      assert.equal(metrics.snapshot().localDeletion.kept, 1);
      assert.equal(metrics.snapshot().localDeletion.deleted, 0);
    });
  });
});

Deno.test("a file Riak holds unseen under a new file's name is set aside, never its own copy", async () => {
  await withStore(async ({ store }) => {
    const theirs = Buffer.from("written by another host");
    await store.writeFile("/d/report.txt", theirs);
    const ours = async () => (await store.tryStat("/d/report.txt"))?.sha256;
    // The same bytes: this upload, repeated after a crash; nothing moves.
    await setAsideUnseen(store, "/d/report.txt", ours, SILENT_LOGGER);
    assert.deepEqual(
      (await Array.fromAsync(store.list("/d"))).map((entry) => entry.name.toString()),
      [
        "report.txt",
      ],
    );
    await setAsideUnseen(
      store,
      "/d/report.txt",
      () => Promise.resolve("0".repeat(64)),
      SILENT_LOGGER,
    );
    const names = (await Array.fromAsync(store.list("/d"))).map((entry) => entry.name.toString());
    assert.equal(names.length, 1);
    assert.match(names[0], /^report\.txt\.riakfs-conflict-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.ok(theirs.equals(await store.readFile(`/d/${names[0]}`)));
    // Nothing there (or a directory): nothing to set aside.
    await setAsideUnseen(store, "/d/report.txt", () => Promise.resolve(undefined), SILENT_LOGGER);
    await store.mkdir("/d/sub");
    await setAsideUnseen(store, "/d/sub", () => Promise.resolve(undefined), SILENT_LOGGER);
    assert.equal((await Array.fromAsync(store.list("/d"))).length, 2);
  });
});

Deno.test("a file removed while Riak was away goes at the version seen; a newer one is set aside", async () => {
  await withStore(({ store }) =>
    forEachPreset(store, async ({ preset, mirror, signal }) => {
      const path = `/${preset}/report.txt`;
      await store.writeFile(path, Buffer.from("seen by the mount"), { mtimeNs: 1_000n });
      const seen = await store.tryStat(path);
      const removes = { size: seen!.size, mtimeNs: String(seen!.mtimeNs) };
      await mirror({ id: 1, path, mirror: "remove", removes }, signal);
      assert.equal(await store.tryStat(path), undefined, `${preset}: the version seen goes`);
      // Written elsewhere after the version the application removed.
      await store.writeFile(path, Buffer.from("newer, from another host"), { mtimeNs: 2_000n });
      await mirror({ id: 2, path, mirror: "remove", removes }, signal);
      assert.equal(await store.tryStat(path), undefined, `${preset}: the name is gone`);
      await assertOnlySetAside(store, `/${preset}`, "report.txt", "newer, from another host");
    })
  );
});

Deno.test("a file removed while Riak was away, at the version seen, goes also where Riak holds one of the mount's own uploads called off by the removal", async () => {
  await withStore(async ({ store }) => {
    const { lines, mirror, signal } = riakMirroring(store);
    // An attempt of the mount's own upload that landed after the version it opened.
    await store.writeFile("/f.txt", Buffer.from("ours, landed"), { mtimeNs: 3_000n });
    const removal = {
      id: 1,
      path: "/f.txt",
      mirror: "remove" as const,
      removes: { size: 4, mtimeNs: "1000" },
      ours: [{ size: 12, mtimeNs: "3000" }],
    };
    await mirror(removal, signal);
    assert.equal(await store.tryStat("/f.txt"), undefined);
    const names = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString());
    assert.deepEqual(names, [], "nothing set aside");
    assert.deepEqual(lines, []);
  });
});

Deno.test("a file the mount created where Riak held none, removed while Riak was away, takes only the mount's own upload from Riak; another host's file there is set aside", async () => {
  await withStore(({ store }) =>
    forEachPreset(store, async ({ preset, mirror, signal }) => {
      const path = `/${preset}/new.txt`;
      const removal = {
        path,
        mirror: "remove" as const,
        created: true as const,
        ours: [{ size: 12, mtimeNs: "3000" }],
      };
      // An attempt of the mount's own upload that landed: it goes, nothing set aside.
      await store.writeFile(path, Buffer.from("ours, landed"), { mtimeNs: 3_000n });
      await mirror({ id: 1, ...removal }, signal);
      assert.equal(await store.tryStat(path), undefined, `${preset}: its own upload goes`);
      // Nothing there: nothing to do.
      await mirror({ id: 2, ...removal }, signal);
      // Made elsewhere under the name: set aside, never removed.
      await store.writeFile(path, Buffer.from("another host's file"), { mtimeNs: 2_000n });
      await mirror({ id: 3, ...removal }, signal);
      assert.equal(await store.tryStat(path), undefined, `${preset}: the name is gone`);
      await assertOnlySetAside(store, `/${preset}`, "new.txt", "another host's file");
    })
  );
});

Deno.test("an upload journaled while Riak was away goes over only what the mount knew Riak held there, or an attempt of its own: another host's file is set aside; one journaled while Riak answered goes over it", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (directory) => {
      const lines: string[] = [];
      const upload = stagedFileUploader(store, undefined, loggerInto(lines));
      const staged = join(directory, "staged");
      await writeFile(staged, "ours");
      const ours = { id: 1, staged: "staged", mode: 0o644, uid: 0, gid: 0, size: 4 };
      const signal = new AbortController().signal;
      const cases = [
        // [name, journaled over, Riak's file (mtime), set aside]
        ["created.txt", { creates: true, away: true }, 2_000n, true],
        ["replaced.txt", { replaces: { size: 6, mtimeNs: "1000" }, away: true }, 2_000n, true],
        ["known.txt", { replaces: { size: 6, mtimeNs: "2000" }, away: true }, 2_000n, false],
        ["landed.txt", { creates: true, away: true }, 3_000n, false],
        ["online.txt", { creates: true }, 2_000n, false],
      ] as const;
      for (const [name, over, mtimeNs, setAside] of cases) {
        const theirs = mtimeNs === 3_000n ? "ours" : "theirs";
        await store.writeFile(`/${name}`, Buffer.from(theirs), { mtimeNs });
        await upload({ ...ours, ...over, path: `/${name}`, mtimeNs: "3000" }, staged, signal);
        assert.equal((await store.readFile(`/${name}`)).toString(), "ours", name);
        const aside = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString())
          .filter((entry) => entry.startsWith(`${name}.riakfs-conflict-`));
        assert.equal(aside.length, setAside ? 1 : 0, `${name}: ${aside}`);
        if (setAside) assert.equal((await store.readFile(`/${aside[0]}`)).toString(), theirs);
      }
      assert.equal(
        lines.filter((line) => line.includes("under a name written during an outage")).length,
        2,
      );
    });
  });
});

Deno.test("a file renamed while Riak was away is moved in Riak at the version seen, once, and not when it changed", async () => {
  await withStore(async ({ store }) => {
    const { lines, mirror, signal } = riakMirroring(store);
    await store.writeFile("/a.txt", Buffer.from("seen"), { mtimeNs: 1_000n });
    const seen = { size: 4, mtimeNs: "1000" };
    const moves = { from: "/a.txt", ...seen, mode: 0o644, uid: 0, gid: 0 };
    const move = { id: 1, path: "/d/b.txt", mirror: "move" as const, moves };
    await mirror(move, signal);
    assert.equal(await store.tryStat("/a.txt"), undefined);
    assert.equal(
      (await store.readFile("/d/b.txt")).toString(),
      "seen",
      "moved, its directory made",
    );
    // Replayed after a crash that came after the rename: nothing to do, nothing to say.
    await mirror(move, signal);
    assert.equal((await store.readFile("/d/b.txt")).toString(), "seen");
    assert.deepEqual(lines, []);
    // Written elsewhere after the version seen: not moved (the old name's removal sets it aside).
    await store.writeFile("/a.txt", Buffer.from("newer"), { mtimeNs: 2_000n });
    await mirror({ ...move, id: 2, path: "/c.txt" }, signal);
    assert.equal((await store.readFile("/a.txt")).toString(), "newer");
    assert.equal(await store.tryStat("/c.txt"), undefined);
    assert.match(lines.join(""), /renamed during an outage was not in Riak as the mount showed it/);
    // The old name's removal, journaled with the move: the version moved, found still there
    // (its move was given up), stays; another is set aside; nothing there is nothing to do.
    lines.length = 0;
    await store.writeFile("/g.txt", Buffer.from("seen"), { mtimeNs: 1_000n });
    const removal = {
      id: 3,
      path: "/g.txt",
      mirror: "remove" as const,
      removes: seen,
      movedAway: true as const,
    };
    await mirror(removal, signal);
    assert.equal((await store.readFile("/g.txt")).toString(), "seen", "kept");
    assert.match(lines.join(""), /was not moved in Riak; kept under its old name/);
    await store.writeFile("/g.txt", Buffer.from("newer"), { mtimeNs: 2_000n });
    await mirror(removal, signal);
    assert.equal(await store.tryStat("/g.txt"), undefined);
    const names = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString());
    assert.ok(names.some((name) => name.startsWith("g.txt.riakfs-conflict-")), `${names}`);
    await mirror(removal, signal);
  });
});

Deno.test("a directory renamed while Riak was away is renamed in Riak with what it holds, once, and not over what Riak holds under the new name", async () => {
  await withStore(({ store }) =>
    forEachPreset(store, async ({ preset, mirror, lines, signal }) => {
      await store.writeFile(`/${preset}/d/a.txt`, Buffer.from("a"));
      await store.writeFile(`/${preset}/d/sub/b.txt`, Buffer.from("b"));
      const movesDirectory = { from: `/${preset}/d`, mode: 0o755, uid: 0, gid: 0, mtimeNs: "0" };
      const move = { id: 1, path: `/${preset}/new/e`, mirror: "move" as const, movesDirectory };
      await mirror(move, signal);
      assert.equal(await store.tryStat(`/${preset}/d`), undefined, preset);
      assert.equal((await store.readFile(`/${preset}/new/e/sub/b.txt`)).toString(), "b");
      assert.equal((await store.readFile(`/${preset}/new/e/a.txt`)).toString(), "a");
      // Replayed after a crash that came after the rename: nothing to do, nothing to say.
      await mirror(move, signal);
      assert.deepEqual(lines, [], preset);
      // Riak holds entries under the new name (a name the mount could not look at): the
      // directory stays under its old name, with a warning.
      await store.writeFile(`/${preset}/d/c.txt`, Buffer.from("c"));
      await mirror({ ...move, id: 2 }, signal);
      assert.equal((await store.readFile(`/${preset}/d/c.txt`)).toString(), "c");
      assert.equal((await store.readFile(`/${preset}/new/e/a.txt`)).toString(), "a");
      assert.match(lines.join(""), /stays under its old name/);
      // Gone from Riak (removed elsewhere): nothing to move, with a warning.
      lines.length = 0;
      const gone = { ...movesDirectory, from: `/${preset}/gone` };
      await mirror({ ...move, id: 3, path: `/${preset}/f`, movesDirectory: gone }, signal);
      assert.equal(await store.tryStat(`/${preset}/f`), undefined);
      assert.match(lines.join(""), /was not in Riak; nothing moved/);
    })
  );
});

Deno.test("a directory's move replayed after a crash cut Riak's rename short finishes the rename: nothing stays under the old name", async () => {
  await withStore(({ store, client, bucket }) =>
    forEachPreset(store, async ({ preset, mirror, lines, source, signal }) => {
      await store.writeFile(`/${preset}/d/a.txt`, Buffer.from("a"));
      await store.writeFile(`/${preset}/d/c.txt`, Buffer.from("c"));
      await store.writeFile(`/${preset}/d/sub/b.txt`, Buffer.from("b"));
      const shown = await store.stat(`/${preset}/d`);
      const movesDirectory = {
        from: `/${preset}/d`,
        mode: shown.mode,
        uid: shown.uid,
        gid: shown.gid,
        mtimeNs: String(shown.mtimeNs),
      };
      const move = { id: 1, path: `/${preset}/e`, mirror: "move" as const, movesDirectory };
      // The first run dies (SIGKILL) as Riak's rename removes the old names: part of the
      // tree is under the new name, the rest still under the old one.
      const dying = new Store({
        ...client,
        delete: (location, options) => {
          if (Buffer.from(location.key).toString().endsWith("d/c.txt")) {
            return Promise.reject(new Error("killed"));
          }
          return client.delete(location, options);
        },
      }, { namespace: { bucket } });
      const cutShort = presetMirrorers(dying, source, lines)[preset];
      await assert.rejects(cutShort(move, signal), /killed/);
      assert.equal((await store.readFile(`/${preset}/e/sub/b.txt`)).toString(), "b");
      // The journal's line, replayed at the next start.
      await mirror(move, signal);
      assert.equal(await store.tryStat(`/${preset}/d`), undefined, preset);
      for (const [name, bytes] of [["a.txt", "a"], ["c.txt", "c"], ["sub/b.txt", "b"]]) {
        assert.equal((await store.readFile(`/${preset}/e/${name}`)).toString(), bytes, name);
      }
      assert.deepEqual(lines, [], preset);
    })
  );
});

Deno.test("conflict names are distinct for one time", () => {
  const now = new Date("2026-12-06T08:01:02.345Z");
  const first = conflictPath("/a b.txt", now);
  assert.match(first, /^\/a b\.txt\.riakfs-conflict-20261206T080102Z-[0-9a-f]{6}$/);
  assert.notEqual(first, conflictPath("/a b.txt", now));
});

Deno.test("copy-on-read never puts older local bytes over a newer copy in Riak", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await store.writeFile("/n.txt", new TextEncoder().encode("newer in Riak"), {
        mtimeNs: 1_700_000_000_000_000_000n,
      });
      await writeFile(join(source, "n.txt"), "older local");
      await utimes(join(source, "n.txt"), 1_500_000_000, 1_500_000_000);
      const options = { store, source, afterTransfer: "delete" as const };
      assert.equal(await copyLocalFile(options, "/n.txt"), "newer-in-riak");
      assert.equal((await store.readFile("/n.txt")).toString(), "newer in Riak");
      assert.equal(await readFile(join(source, "n.txt"), "utf8"), "older local", "kept");
    });
  });
});

Deno.test("copy-on-read racing another host's newer write leaves the newer one", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      // In Riak already (older) or not at all: either way another host writes a newer
      // version between the copy's look and its put.
      await store.writeFile("/older.txt", new TextEncoder().encode("older in Riak"), {
        mtimeNs: 1_400_000_000_000_000_000n,
      });
      for (const name of ["older.txt", "absent.txt"]) {
        await writeFile(join(source, name), "legacy bytes");
        await utimes(join(source, name), 1_500_000_000, 1_500_000_000);
        let written = false;
        const racing: MigrationStore & Pick<Store, "ensureListed"> = {
          ...storeWithHook(store, () => Promise.resolve()),
          tryStat: async (path, options) => {
            const found = await store.tryStat(path, options);
            if (!written) {
              written = true;
              await store.writeFile(path, new TextEncoder().encode("another host's"), {
                mtimeNs: 1_700_000_000_000_000_000n,
              });
            }
            return found;
          },
        };
        const options = { store: racing, source, afterTransfer: "delete" as const };
        assert.equal(await copyLocalFile(options, `/${name}`), "newer-in-riak", name);
        assert.equal((await store.readFile(`/${name}`)).toString(), "another host's", name);
        assert.equal(await readFile(join(source, name), "utf8"), "legacy bytes", "kept");
      }
    });
  });
});

Deno.test("a directory removed from the source leaves Riak once empty, never with entries only Riak holds", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      let jobsBelow = true;
      const mirror = localPathMirrorer({
        store,
        source,
        afterTransfer: "keep",
        jobsBelow: () => jobsBelow,
      });
      const removal = (path: string) => ({
        id: 1,
        path,
        mirror: "remove" as const,
        directory: true as const,
      });
      const signal = new AbortController().signal;
      await store.mkdir("/gone");
      await store.mkdir("/gone/empty");
      await store.writeFile("/gone/only-in-riak.txt", Buffer.from("another host's"));
      // Entries still being removed: tried again later, never counted as Riak refusing.
      await assert.rejects(mirror(removal("/gone"), signal), NotYetError);
      await mirror(removal("/gone/empty"), signal);
      assert.equal(await store.tryStat("/gone/empty"), undefined, "an empty directory goes");
      jobsBelow = false;
      await mirror(removal("/gone"), signal);
      assert.equal((await store.stat("/gone")).type, "directory", "kept for its Riak-only file");
      assert.ok(
        Buffer.from("another host's").equals(await store.readFile("/gone/only-in-riak.txt")),
      );
      // A file under the name, or the directory back in the source: nothing is removed.
      await mirror(removal("/gone/only-in-riak.txt"), signal);
      assert.ok(await store.tryStat("/gone/only-in-riak.txt"));
      await mkdir(join(source, "back"));
      await store.mkdir("/back");
      await mirror(removal("/back"), signal);
      assert.equal((await store.stat("/back")).type, "directory");
      // A file put where the directory was (`rm -r d; echo > d`): Riak's directory goes, so
      // the file's copy, queued after, can take the name.
      await writeFile(join(source, "now-a-file"), "x");
      await store.mkdir("/now-a-file");
      await mirror(removal("/now-a-file"), signal);
      assert.equal(await store.tryStat("/now-a-file"), undefined);
    });
  });
});

Deno.test("a mirror's copy counts its bytes with the uploads', a copy-on-read's does not", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await writeFile(join(source, "w.txt"), "written through the mount");
      await writeFile(join(source, "r.txt"), "read through the mount");
      const metrics = new MountMetrics();
      const options = { store, source, afterTransfer: "keep" as const, metrics };
      const mirror = localPathMirrorer(options);
      await mirror({ id: 1, path: "/w.txt", mirror: "copy" }, new AbortController().signal);
      assert.equal(metrics.value.uploads.bytesUploaded, "written through the mount".length);
      assert.equal(await copyLocalFile(options, "/r.txt"), "uploaded");
      assert.equal(metrics.value.uploads.bytesUploaded, "written through the mount".length);
    });
  });
});

// Found by shadow's 400-operation model runs (seed 59): mirrors journaled under a directory
// that a file then replaced (or moved by a rename below a name that is a file now) met
// ENOTDIR from the source's lstat, were retried as Riak's refusals and given up after about
// half a minute each with "mirror refused by Riak; given up", holding up that path's queue.
Deno.test("a mirror of a path below what is now a file has nothing to do, and succeeds", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await writeFile(join(source, "was-a-directory"), "a file now");
      await store.mkdir("/was-a-directory");
      await store.writeFile("/was-a-directory/x", Buffer.from("the old entry"));
      const options = { store, source, afterTransfer: "keep" as const };
      const mirror = localPathMirrorer(options);
      const signal = new AbortController().signal;
      const path = "/was-a-directory/x";
      await mirror({ id: 1, path, mirror: "copy" }, signal);
      await mirror({ id: 2, path, mirror: "attributes", set: { mode: 0o600 } }, signal);
      await mirror({ id: 3, path, mirror: "copy", snapshot: true }, signal);
      assert.equal(await copyLocalFile(options, path), "not-a-file");
      await mirror({ id: 4, path, mirror: "remove" }, signal);
      assert.equal(await store.tryStat(path), undefined, "its removal still removes it");
    });
  });
});

// Found by migrate's 400-operation model runs (seed 94): the copy of a name journaled while it
// was a file ran after the file was removed and a directory made there, ahead of the file's
// queued removal. It met Riak's old file (mkdir: "already exists") and was given up after its
// retries, and so were the copies of everything below the directory ("not a directory"); an
// rmdir waiting for them failed with EEXIST.
Deno.test("a directory's mirror replaces the file or link Riak still holds under its name", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await mkdir(join(source, "d", "y"), { recursive: true, mode: 0o750 });
      await mkdir(join(source, "e"), { mode: 0o700 });
      await store.writeFile("/d", Buffer.from("the old file"));
      await store.symlink("/e", Buffer.from("an old link"));
      const mirror = localPathMirrorer({ store, source, afterTransfer: "keep" });
      const signal = new AbortController().signal;
      // Below it first: refused (tried again later) while its parent is Riak's file, which only
      // the job of the name itself replaces (or sets aside, where the mount never saw it).
      await assert.rejects(mirror({ id: 1, path: "/d/y", mirror: "copy" }, signal));
      assert.ok(Buffer.from("the old file").equals(await store.readFile("/d")));
      await mirror({ id: 2, path: "/d", mirror: "copy" }, signal);
      assert.equal((await store.stat("/d")).type, "directory");
      await mirror({ id: 1, path: "/d/y", mirror: "copy" }, signal);
      assert.equal((await store.stat("/d/y")).type, "directory");
      await mirror({ id: 3, path: "/e", mirror: "copy" }, signal);
      assert.equal((await store.stat("/e")).type, "directory");
      assert.equal((await store.stat("/e")).mode & 0o7777, 0o700);
      // The old file's removal, queued behind, leaves the directory.
      await mirror({ id: 4, path: "/d", mirror: "remove" }, signal);
      assert.equal((await store.stat("/d/y")).type, "directory");
    });
  });
});

// Found by migrate's 400-operation model runs (seed 613): a directory renamed away, whose
// entries' removals from Riak were journaled, then a symlink made under its old name: the
// removals, reaching their paths through that symlink now, were skipped, Riak's directory was
// kept for its old entries ("directory removed through the mount kept in Riak", then worded
// "... from the source ...") and the mount showed it again once the symlink was removed.
Deno.test("a removal runs where its path now leads through a symlink", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await mkdir(join(source, "b"));
      await writeFile(join(source, "b", "x"), "moved here");
      await symlink("b", join(source, "d")); // Where the directory d was.
      await store.mkdir("/d");
      await store.writeFile("/d/x", Buffer.from("the old entry"));
      const mirror = localPathMirrorer({ store, source, afterTransfer: "keep" });
      const signal = new AbortController().signal;
      await mirror({ id: 1, path: "/d/x", mirror: "remove" }, signal);
      assert.equal(await store.tryStat("/d/x"), undefined);
      // Nothing is copied through it.
      await mirror({ id: 2, path: "/d/x", mirror: "copy" }, signal);
      assert.equal(await store.tryStat("/d/x"), undefined);
    });
  });
});

// Found by the concurrent model runs (migrate, seed 9): a legacy symlink renamed over a file
// written in a legacy directory of mode 0700, the file's upload still queued, was mirrored
// into Riak, which made the missing directory with the default mode, 0755; migrate's union
// then showed the directory as 0755.
Deno.test("a symlink's mirror makes its missing directories with the source's attributes", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await mkdir(join(source, "d", "e"), { recursive: true });
      await chmod(join(source, "d"), 0o2750);
      await chmod(join(source, "d", "e"), 0o700);
      await symlink("target", join(source, "d", "e", "link"));
      const mirror = localPathMirrorer({ store, source, afterTransfer: "keep" });
      await mirror({ id: 1, path: "/d/e/link", mirror: "copy" }, new AbortController().signal);
      assert.equal((await store.stat("/d/e/link")).type, "symlink");
      assert.equal((await store.stat("/d")).mode & 0o7777, 0o2750);
      assert.equal((await store.stat("/d/e")).mode & 0o7777, 0o700);
    });
  });
});

Deno.test("copy-on-read leaves a riak-fuse object with the local bytes alone, whatever the times", async () => {
  await withStore(async ({ store, client, bucket }) => {
    await withSource(async (source) => {
      const content = seededBytes(41, 3000);
      await writeFile(join(source, "legacy.jpg"), content);
      await utimes(join(source, "legacy.jpg"), 2_000_000_000, 2_000_000_000); // After Riak's.
      const location = {
        bucketType: "default",
        bucket: Buffer.from(bucket),
        key: Buffer.from("legacy.jpg"),
      };
      // Written by riak-fuse: the bytes alone, no usermeta.
      await client.put(location, { value: content, contentType: "image/jpeg", usermeta: [] });
      const before = await client.get(location);
      const options = { store, source, afterTransfer: "keep" as const };
      assert.equal(await copyLocalFile(options, "/legacy.jpg"), "already-in-riak");
      const after = await client.get(location);
      assert.deepEqual(after.contents[0].usermeta, [], "not rewritten");
      assert.equal(after.contents[0].contentType, "image/jpeg");
      assert.deepEqual(after.vclock, before.vclock);
      // Other bytes of the same size are another version: copied. (Its time is set after
      // Riak's: the kernel's file clock runs up to a tick behind Riak's last-modified time,
      // so a file written right after the put could look older than Riak's copy.)
      await writeFile(join(source, "legacy.jpg"), seededBytes(42, 3000));
      await utimes(join(source, "legacy.jpg"), 2_000_000_000, 2_000_000_000);
      assert.equal(await copyLocalFile(options, "/legacy.jpg"), "uploaded");
    });
  });
});

Deno.test("a mirror's copy and snapshot tell of each chunk Riak acknowledged", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      await writeFile(join(source, "big.bin"), seededBytes(5, 10_000));
      const mirror = localPathMirrorer({ store, source, afterTransfer: "keep" });
      const signal = new AbortController().signal;
      let acknowledged = 0;
      const progress = () => acknowledged++;
      await mirror({ id: 1, path: "/big.bin", mirror: "copy" }, signal, progress);
      assert.equal(acknowledged, 3, "three chunks of 4096 bytes");
      await mirror({ id: 2, path: "/big.bin", mirror: "copy", snapshot: true }, signal, progress);
      assert.equal(acknowledged, 6);
      assert.ok(seededBytes(5, 10_000).equals(await store.readFile("/big.bin")));
    });
  }, { namespace: { chunkSize: 4096 } });
});

Deno.test("drain keeps a local copy another process holds open for writing (not taken as mirrored), and deletes it on a later copy once closed", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      const file = join(source, "held.log");
      await writeFile(file, "line 0\n");
      const metrics = new MountMetrics();
      const mirrored: string[] = [];
      const options = {
        store,
        source,
        afterTransfer: "delete" as const,
        metrics,
        inUse: { openWriters: new OpenWriters({ maxAgeMs: 0 }) },
        onMirrored: (path: string) => mirrored.push(path),
      };
      const holder = await holdOpen(file, ">>");
      try {
        assert.equal(await copyLocalFile(options, "/held.log"), "uploaded");
        assert.equal(await readFile(file, "utf8"), "line 0\n");
        assert.equal(metrics.snapshot().localDeletion.kept, 1);
        assert.deepEqual(mirrored, [], "a read of it copies again, and tries again");
      } finally {
        await holder.release();
      }
      assert.equal(await copyLocalFile(options, "/held.log"), "already-in-riak");
      await assert.rejects(stat(file), { code: "ENOENT" });
      assert.equal(metrics.snapshot().localDeletion.deleted, 1);
      assert.equal((await store.readFile("/held.log")).toString(), "line 0\n");
    });
  });
});

Deno.test("drain keeps a local copy changed within the quiet period", async () => {
  await withStore(async ({ store }) => {
    await withSource(async (source) => {
      const file = join(source, "fresh.txt");
      await writeFile(file, "just written");
      const metrics = new MountMetrics();
      const options = {
        store,
        source,
        afterTransfer: "delete" as const,
        metrics,
        inUse: { quietPeriodMs: 60_000 },
      };
      assert.equal(await copyLocalFile(options, "/fresh.txt"), "uploaded");
      assert.equal(await readFile(file, "utf8"), "just written");
      assert.equal(metrics.snapshot().localDeletion.kept, 1);
      assert.equal(metrics.snapshot().localDeletion.deleted, 0);
    });
  });
});
