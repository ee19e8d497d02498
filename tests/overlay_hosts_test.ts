/**
 * Several hosts on one namespace, as operators run them: two `riak`-preset mounts (each with
 * its own mountpoint and spool) of one bucket, against one `riakfs serve-riak` process. What
 * one host changes the other sees, and when one removes or renames a directory while the other
 * writes below it, every write the writer got acknowledged (fsync) is listed and readable on
 * both hosts and in Riak afterwards, whichever way the race went. The interleavings differ
 * from run to run; what is asserted holds for each of them. Against a `migrate` mount, the
 * other host is the test's own store.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import { join } from "node:path";
import { startMount, stopMount, type TestMount } from "./_mount.ts";
import { eventually, type OverlayEnv, prewarmSource, withOverlayEnv } from "./_overlay.ts";

/** Host A is the env's own mount; host B a second mount of the same namespace. */
async function withTwoHosts(
  body: (a: string, b: string, env: OverlayEnv) => Promise<void>,
): Promise<void> {
  await withOverlayEnv(async (env) => {
    const timeouts = ["-o", "entry_timeout=0,attr_timeout=0"];
    await env.mount("riak", timeouts);
    let second: TestMount | undefined;
    try {
      second = await startMount({
        preset: "riak",
        args: ["--riak", env.riak.nodes.join(","), "--bucket", env.bucket, ...timeouts],
      });
      await body(env.mountpoint, second.mountpoint, env);
    } finally {
      if (second) await stopMount(second);
    }
  });
}

/** Writes `content` and waits for Riak's acknowledgement (fsync), as a careful writer does. */
async function writeAcknowledged(path: string, content: string): Promise<void> {
  const file = await fs.promises.open(path, "w");
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** ESTALE (116), which Deno's node:fs reports with no `code`: by errno or message alone. */
const isStale = (error: unknown) =>
  (error as NodeJS.ErrnoException).code === "ESTALE" ||
  (error as NodeJS.ErrnoException).errno === -116 || /\(os error 116\)/.test(String(error));

const listing = (directory: string) => fs.readdirSync(directory).sort();

/** Riak's listing of `path`, as `riakfs ls` shows it. */
async function riakListing(env: OverlayEnv, path: string): Promise<string[]> {
  return (await Array.fromAsync(env.store.list(path))).map((entry) => `${entry.name}`).sort();
}

Deno.test("two riak-preset mounts of one namespace see each other's changes", async () => {
  await withTwoHosts(async (a, b, env) => {
    fs.mkdirSync(join(a, "d"));
    await writeAcknowledged(join(a, "d", "f"), "from A");
    assert.equal(fs.readFileSync(join(b, "d", "f"), "utf8"), "from A");
    fs.renameSync(join(b, "d", "f"), join(b, "d", "g"));
    assert.deepEqual(listing(join(a, "d")), ["g"]);
    await writeAcknowledged(join(b, "d", "g"), "from B");
    assert.equal(fs.readFileSync(join(a, "d", "g"), "utf8"), "from B");
    fs.renameSync(join(a, "d"), join(a, "e"));
    assert.deepEqual(listing(b), ["e"]);
    fs.unlinkSync(join(b, "e", "g"));
    fs.rmdirSync(join(a, "e"));
    assert.deepEqual(listing(b), []);
    assert.deepEqual(await riakListing(env, ""), []);
  });
});

Deno.test("a directory removed on one host while the other writes below it loses no write", async () => {
  await withTwoHosts(async (a, b, env) => {
    const rounds = 12;
    for (let i = 0; i < rounds; i++) {
      fs.mkdirSync(join(a, `d${i}`));
      // B has written into it, so it knows the directory and does not look it up again.
      await writeAcknowledged(join(b, `d${i}`, "warm"), "warm");
      fs.unlinkSync(join(a, `d${i}`, "warm"));
      const [write, removal] = await Promise.allSettled([
        writeAcknowledged(join(b, `d${i}`, "x"), `x${i}`),
        fs.promises.rmdir(join(a, `d${i}`)),
      ]);
      if (removal.status === "rejected") {
        assert.equal((removal.reason as NodeJS.ErrnoException).code, "ENOTEMPTY");
      }
      if (write.status === "rejected") {
        // The removal came first: the directory was gone when the writer looked it up.
        assert.equal((write.reason as NodeJS.ErrnoException).code, "ENOENT");
        continue;
      }
      for (const host of [a, b]) {
        assert.ok(listing(host).includes(`d${i}`), `d${i} listed on ${host}`);
        assert.deepEqual(listing(join(host, `d${i}`)), ["x"]);
        assert.equal(fs.readFileSync(join(host, `d${i}`, "x"), "utf8"), `x${i}`);
      }
      assert.deepEqual(await riakListing(env, `d${i}`), ["x"]);
    }
    assert.deepEqual(await riakListing(env, ""), listing(a));
    assert.deepEqual(listing(a), listing(b));
  });
});

Deno.test("a directory renamed on one host while the other writes into it loses no write", async () => {
  await withTwoHosts(async (a, b, env) => {
    fs.mkdirSync(join(a, "r"));
    for (let i = 0; i < 20; i++) await writeAcknowledged(join(a, "r", `old${i}`), `old${i}`);
    assert.equal(listing(join(b, "r")).length, 20);
    const acknowledged: string[] = [];
    const writes = (async () => {
      for (let i = 0; i < 40; i++) {
        try {
          await writeAcknowledged(join(b, "r", `w${i}`), `w${i}`);
          acknowledged.push(`w${i}`);
        } catch (error) {
          assert.equal((error as NodeJS.ErrnoException).code, "ENOENT", `w${i}`);
        }
      }
    })();
    // The rename starts once the writer is under way, and runs while it goes on.
    while (acknowledged.length < 3) await new Promise((resolve) => setImmediate(resolve));
    fs.renameSync(join(a, "r"), join(a, "r2"));
    await writes;
    // Where a name is listed, from the root down: a directory reached by its path alone, but
    // listed nowhere, does not count.
    const where = (host: string, name: string) =>
      ["r", "r2"].filter((dir) =>
        listing(host).includes(dir) && listing(join(host, dir)).includes(name)
      );
    for (const name of [...acknowledged, ...Array.from({ length: 20 }, (_, i) => `old${i}`)]) {
      for (const host of [a, b]) {
        const found = where(host, name);
        assert.equal(found.length, 1, `${name} listed once on ${host}: ${found}`);
        assert.equal(fs.readFileSync(join(host, found[0], name), "utf8"), name);
      }
    }
    assert.deepEqual(listing(b), listing(a));
    assert.deepEqual(await riakListing(env, ""), listing(a));
    for (const dir of listing(a)) {
      assert.deepEqual(listing(join(b, dir)), listing(join(a, dir)), dir);
      assert.deepEqual(await riakListing(env, dir), listing(join(a, dir)), dir);
    }
  });
});

Deno.test("a file another host rewrote is read anew while a descriptor still reads the old one", async () => {
  await withTwoHosts(async (a, b) => {
    const size = 64 * 1024;
    await writeAcknowledged(join(b, "f"), "1".repeat(size));
    const old = fs.openSync(join(a, "f"), "r");
    const opens: number[] = [];
    // The distinct bytes a whole read through `fd` gets: one version never mixes with another.
    const readAll = (fd: number) => {
      const bytes = Buffer.alloc(size);
      assert.equal(fs.readSync(fd, bytes, 0, size, 0), size);
      return [...new Set(bytes.toString())].join("");
    };
    try {
      assert.equal(readAll(old), "1");
      await writeAcknowledged(join(b, "f"), "2".repeat(size));
      opens.push(fs.openSync(join(a, "f"), "r"));
      // The old descriptor reads the version it opened, into the kernel's cache of the file.
      assert.equal(readAll(old), "1");
      assert.equal(readAll(opens[0]), "2");
      opens.push(fs.openSync(join(a, "f"), "r"));
      assert.equal(readAll(opens[1]), "2");
    } finally {
      fs.closeSync(old);
      for (const fd of opens) fs.closeSync(fd);
    }
    assert.ok(fs.readFileSync(join(a, "f"), "utf8") === "2".repeat(size));
    assert.ok(fs.readFileSync(join(a, "f"), "utf8") === "2".repeat(size));
  });
});

Deno.test("a write on one host keeps the mode and owner another host set while it was open", async () => {
  await withTwoHosts(async (a, b, env) => {
    await writeAcknowledged(join(a, "f"), "from A");
    const file = await fs.promises.open(join(b, "f"), "r+");
    try {
      await file.write("B");
      // Set on A after B opened the file, before B's write reaches Riak.
      fs.chmodSync(join(a, "f"), 0o600);
      fs.chownSync(join(a, "f"), 1234, 5678);
      await file.sync();
    } finally {
      await file.close();
    }
    for (const host of [a, b]) {
      const stats = fs.statSync(join(host, "f"));
      assert.deepEqual([stats.mode & 0o7777, stats.uid, stats.gid], [0o600, 1234, 5678], host);
      assert.equal(fs.readFileSync(join(host, "f"), "utf8"), "Brom A");
    }
    const stat = await env.store.stat("f");
    assert.deepEqual([stat.mode, stat.uid, stat.gid], [0o600, 1234, 5678]);
  });
});

Deno.test("a file another host removed or renamed before a write opened here copied its bytes answers ESTALE, appended or not", async () => {
  await withTwoHosts(async (a, b, env) => {
    // Above the chunk size: its bytes do not come along with its stat, and are copied only
    // once a write needs them.
    const content = Buffer.alloc(3 * 1024 * 1024 + 5, "o");
    for (const name of ["log", "data"]) await env.store.writeFile(name, content);
    const appender = await fs.promises.open(join(a, "log"), "a");
    const writer = await fs.promises.open(join(a, "data"), "r+");
    try {
      fs.unlinkSync(join(b, "log"));
      fs.renameSync(join(b, "data"), join(b, "moved"));
      await assert.rejects(appender.write("line\n"), isStale);
      await assert.rejects(appender.write("line\n"), isStale);
      await assert.rejects(writer.write("X", 10), isStale);
      await assert.rejects(writer.read(Buffer.alloc(10), 0, 10, 0), isStale);
    } finally {
      await appender.close();
      await writer.close();
    }
    // Nothing was written: nothing is put back under the old names. A lists the names of its
    // open files until the kernel's RELEASE of their descriptors, which close(2) does not
    // wait for, reaches it (a pending upload would be listed after that too).
    await eventually("A's descriptors released", () => Promise.resolve(listing(a).length === 1));
    assert.deepEqual(listing(a), ["moved"]);
    assert.deepEqual(listing(b), ["moved"]);
    assert.deepEqual(await riakListing(env, ""), ["moved"]);
    assert.ok(content.equals(fs.readFileSync(join(a, "moved"))));
    // Opened again, the name makes a new file.
    const again = await fs.promises.open(join(a, "log"), "a");
    try {
      await again.write("line\n");
      await again.sync();
    } finally {
      await again.close();
    }
    assert.equal(fs.readFileSync(join(b, "log"), "utf8"), "line\n");
  });
});

Deno.test("migrate: SOURCE's mode and owner win over another host's chmod, at the close of a write opened before it and at the next pre-warm", async () => {
  await withOverlayEnv(async (env) => {
    const mounted = await env.mount("migrate", ["-o", "entry_timeout=0,attr_timeout=0"]);
    const local = join(env.source, "f");
    const attributesOf = (stats: { mode: number; uid: number; gid: number }) => [
      stats.mode & 0o7777,
      stats.uid,
      stats.gid,
    ];
    const otherHosts = { mode: 0o600, uid: 1234, gid: 5678 };
    let sourceAttributes: number[] = [];
    try {
      await writeAcknowledged(join(env.mountpoint, "f"), "from A");
      sourceAttributes = attributesOf(fs.statSync(local));
      assert.notDeepEqual(sourceAttributes, attributesOf(otherHosts));
      const file = await fs.promises.open(join(env.mountpoint, "f"), "r+");
      try {
        await file.write("B");
        // Set by another host after this mount opened the file, before its write reached Riak.
        await env.store.setAttributes("f", otherHosts);
      } finally {
        await file.close();
      }
    } finally {
      await env.unmount(mounted); // Once the close's upload landed.
    }
    assert.equal((await env.store.readFile("f")).toString(), "Brom A");
    assert.deepEqual(attributesOf(await env.store.stat("f")), sourceAttributes);
    assert.deepEqual(attributesOf(fs.statSync(local)), sourceAttributes);
    // With nothing open, the pre-warm gives Riak SOURCE's attributes back just the same.
    await env.store.setAttributes("f", otherHosts);
    await prewarmSource(env);
    assert.deepEqual(attributesOf(await env.store.stat("f")), sourceAttributes);
  });
});
