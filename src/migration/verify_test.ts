import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import { reservoir, symlinkOnTheWay, verifyTree } from "./verify.ts";
import { PathFilter } from "./glob.ts";
import type { MigrationStore } from "./stored_file.ts";
import { ConnectionError } from "../riak/errors.ts";
import { RiakRequestError } from "../store/errors.ts";

Deno.test("verifyTree matches identical copies and lists missing and differing files", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  mkdirSync(join(source, "d"));
  writeFileSync(join(source, "same"), "same bytes");
  writeFileSync(join(source, "d/changed"), "local version");
  writeFileSync(join(source, "d/absent"), "never uploaded");
  writeFileSync(join(source, "empty"), "");
  try {
    await withStore(async ({ store }) => {
      await store.writeFile("same", Buffer.from("same bytes"));
      await store.writeFile("empty", Buffer.alloc(0));
      await store.writeFile("d/changed", Buffer.from("riak version!"));
      const summary = await verifyTree({ source, store });
      assert.equal(summary.checked, 4);
      assert.equal(summary.matched, 2);
      const problems = summary.differences.map((d) => `${d.status} ${d.path}`).sort();
      assert.deepEqual(problems, ["differs /d/changed", "missing /d/absent"]);
      const some = await verifyTree({ source, store, paths: ["same", "d"] });
      assert.equal(some.checked, 3);
      const sampled = await verifyTree({ source, store, sample: 2, seed: 7 });
      assert.equal(sampled.checked, 2);
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("verifyTree compares symlinks' targets, dangling ones and ones leading out too", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  symlinkSync("same-target", join(source, "same"));
  symlinkSync("/etc/hostname", join(source, "outside"));
  symlinkSync("local-target", join(source, "retargeted"));
  symlinkSync("never-uploaded", join(source, "absent"));
  writeFileSync(join(source, "file-in-riak-as-link"), "a file");
  try {
    await withStore(async ({ store }) => {
      await store.symlink("same", "same-target");
      await store.symlink("outside", "/etc/hostname");
      await store.symlink("retargeted", "riak-target");
      await store.symlink("file-in-riak-as-link", "somewhere");
      const summary = await verifyTree({ source, store });
      assert.equal(summary.checked, 5);
      assert.equal(summary.matched, 2);
      const problems = summary.differences.map((d) => `${d.status} ${d.path}: ${d.detail}`).sort();
      assert.equal(problems.length, 3, JSON.stringify(problems));
      assert.equal(problems[0], "differs /file-in-riak-as-link: Riak holds a symlink");
      assert.equal(
        problems[1],
        "differs /retargeted: target differs: local local-target, Riak riak-target",
      );
      assert.equal(problems[2], "missing /absent: not in Riak");
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("reservoir keeps n items, all of them when fewer, and is reproducible by seed", async () => {
  async function* numbers(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }
  assert.deepEqual(await reservoir(numbers(3), 5, 1), [0, 1, 2]);
  const a = await reservoir(numbers(1000), 10, 42);
  assert.equal(a.length, 10);
  assert.equal(new Set(a).size, 10);
  assert.deepEqual(await reservoir(numbers(1000), 10, 42), a);
  assert.ok(a.some((value) => value >= 10), "later items get picked too");
});

Deno.test("verifyTree names FIFOs and sockets instead of passing over them, and compares nothing of them", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  mkdirSync(join(source, "d"));
  writeFileSync(join(source, "d/file"), "bytes");
  execFileSync("mkfifo", [join(source, "d/pipe")]);
  execFileSync("python3", [
    "-c",
    "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
    join(source, "d/socket"),
  ]);
  try {
    await withStore(async ({ store }) => {
      await store.writeFile("d/file", Buffer.from("bytes"));
      const met: string[] = [];
      const whole = await verifyTree({
        source,
        store,
        onSpecial: (path, type) => met.push(`${type} ${path}`),
      });
      assert.deepEqual(met.sort(), ["FIFO /d/pipe", "socket /d/socket"]);
      assert.equal(whole.special, 2);
      assert.equal(whole.checked, 1);
      assert.deepEqual(whole.differences, []);
      // Named on the command line: the same, never opened (a FIFO's open waits for a writer).
      const named = await verifyTree({ source, store, paths: ["d/pipe"] });
      assert.deepEqual([named.checked, named.special, named.differences.length], [0, 1, 0]);
      const sampled = await verifyTree({ source, store, sample: 3, seed: 1 });
      assert.deepEqual([sampled.checked, sampled.special], [1, 2], "never sampled");
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("verifyTree says where Riak's differing copy is the newer one, which the pre-warm leaves", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  writeFileSync(join(source, "edited"), "old local bytes");
  writeFileSync(join(source, "stale"), "new local bytes");
  utimesSync(join(source, "edited"), 1_000_000, 1_000_000);
  utimesSync(join(source, "stale"), 3_000_000, 3_000_000);
  try {
    await withStore(async ({ store }) => {
      // Written through a drain mount (or by riak-fuse) after the local copy: no damage.
      await store.writeFile("edited", Buffer.from("written since"), {
        mtimeNs: 2_000_000_000_000_000n,
      });
      await store.writeFile("stale", Buffer.from("older in Riak"), {
        mtimeNs: 2_000_000_000_000_000n,
      });
      const summary = await verifyTree({ source, store });
      // Files are compared concurrently: the order of their differences is the order they end.
      assert.deepEqual(summary.differences.map((d) => `${d.path}: ${d.detail}`).sort(), [
        "/edited: size differs: local 15, Riak 13; Riak's copy is the newer one " +
        "(mtime 1970-01-24T03:33:20.000Z, local 1970-01-12T13:46:40.000Z): the pre-warm leaves it",
        "/stale: size differs: local 15, Riak 13",
      ]);
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("verifyTree lists a file whose bytes match but whose mode or owner in Riak do not", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  writeFileSync(join(source, "private"), "secret");
  chmodSync(join(source, "private"), 0o600);
  try {
    await withStore(async ({ store }) => {
      await store.writeFile("private", Buffer.from("secret"), { mode: 0o644, uid: 0, gid: 0 });
      const summary = await verifyTree({ source, store });
      assert.equal(summary.matched, 0);
      assert.deepEqual(summary.differences.map((d) => `${d.status} ${d.path}: ${d.detail}`), [
        "differs /private: Riak holds mode 0644, owner 0:0; local mode 0600, owner 0:0",
      ]);
      await store.setAttributes("private", { mode: 0o600 });
      assert.equal((await verifyTree({ source, store })).matched, 1);
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("verifyTree stops early when file after file finds no Riak node", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  for (let i = 0; i < 120; i++) writeFileSync(join(source, `f${i}`), `file ${i}`);
  const refused = () =>
    new RiakRequestError(
      "get",
      undefined,
      new ConnectionError("every Riak node is down (connect ECONNREFUSED)", "cluster"),
    );
  const unreachable = {
    tryStat: () => Promise.reject(refused()),
    readlink: () => Promise.reject(refused()),
    // deno-lint-ignore require-yield
    readRange: async function* () {
      throw refused();
    },
  } as unknown as MigrationStore;
  try {
    const summary = await verifyTree({ source, store: unreachable, unreachableStopMs: 0 });
    assert.equal(summary.stopReason, "riak-unreachable");
    assert.ok(summary.checked >= 50 && summary.checked < 120, `${summary.checked} compared`);
    assert.ok(summary.differences.every((d) => d.status === "error"));
  } finally {
    rmSync(source, { recursive: true });
  }
});

Deno.test("verifyTree never follows a symlinked directory named in a PATH out of the source", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  const outside = mkdtempSync(join(tmpdir(), "riakfs-verify-outside-"));
  writeFileSync(join(outside, "secret"), "not the source's");
  symlinkSync(outside, join(source, "outlink"));
  mkdirSync(join(source, "a"));
  symlinkSync("..", join(source, "a/up"));
  writeFileSync(join(source, "inside"), "inside");
  try {
    await withStore(async ({ store }) => {
      await store.writeFile("inside", Buffer.from("inside"));
      const seen: string[] = [];
      const summary = await verifyTree({
        source,
        store,
        paths: ["outlink/secret", "a/up/inside", "outlink"],
        onFile: (comparison) => seen.push(`${comparison.status} ${comparison.path}`),
      });
      // The link itself is compared as a link; nothing is read through one.
      assert.deepEqual(seen.sort(), [
        "error /a/up/inside",
        "error /outlink/secret",
        "missing /outlink",
      ]);
      const detail = summary.differences.find((d) => d.path === "/outlink/secret")?.detail;
      assert.match(detail ?? "", /outlink is a symlink; not followed/);
      assert.equal(await symlinkOnTheWay(source, Buffer.from("a/up/inside")), "a/up");
      assert.equal(await symlinkOnTheWay(source, Buffer.from("a/missing/x")), undefined);
      assert.equal(await symlinkOnTheWay(source, Buffer.from("outlink")), undefined);
    });
  } finally {
    rmSync(source, { recursive: true });
    rmSync(outside, { recursive: true });
  }
});

Deno.test("verifyTree of a PATH selects with the globs as the pre-warm does, paths from SOURCE's root", async () => {
  const source = mkdtempSync(join(tmpdir(), "riakfs-verify-"));
  mkdirSync(join(source, "logs/old"), { recursive: true });
  writeFileSync(join(source, "logs/kept"), "uploaded");
  writeFileSync(join(source, "logs/old/left-out"), "never uploaded: excluded");
  mkdirSync(join(source, "logs/.riakfs-spool"));
  writeFileSync(join(source, "logs/.riakfs-spool/data"), "data, not a mount's spool");
  try {
    await withStore(async ({ store }) => {
      await store.writeFile("logs/kept", Buffer.from("uploaded"));
      await store.writeFile("logs/.riakfs-spool/data", Buffer.from("data, not a mount's spool"));
      const filter = new PathFilter([], ["logs/old/"]);
      const whole = await verifyTree({ source, store, filter });
      const some = await verifyTree({ source, store, filter, paths: ["logs"] });
      for (const summary of [whole, some]) {
        assert.deepEqual(summary.differences, []);
        assert.equal(summary.matched, 2);
      }
    });
  } finally {
    rmSync(source, { recursive: true });
  }
});
