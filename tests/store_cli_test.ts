/**
 * End-to-end tests of the inspection commands (ls, stat, cat, doctor, gc): the built binary
 * against an embedded Riak started in this process (or the real one in RIAKFS_TEST_RIAK).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { startTestRiak } from "../src/riak-server/testing.ts";
import { chunkKey } from "../src/store/manifest.ts";
import { encodeEntryMember, shardKey } from "../src/store/shards.ts";
import { openRiakStoreClient } from "../src/store/riak_adapter.ts";
import { Store } from "../src/store/store.ts";
import { runRiakfs } from "./_riakfs.ts";

interface Fixture {
  store: Store;
  /** `--riak` and `--bucket` for the binary. */
  flags: string[];
}

async function withRiak(fn: (fixture: Fixture) => Promise<void>): Promise<void> {
  const riak = await startTestRiak();
  const opened = openRiakStoreClient({ nodes: riak.nodes });
  try {
    const bucket = `${riak.prefix}-files`;
    const store = new Store(opened.client, { namespace: { bucket, chunkSize: 4096 } });
    await fn({ store, flags: ["--riak", riak.nodes.join(","), "--bucket", bucket] });
  } finally {
    await opened.close();
    await riak.close();
  }
}

function pattern(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => 97 + (i * 7) % 26));
}

Deno.test("ls: names, --long and --json", async () => {
  await withRiak(async ({ store, flags }) => {
    await store.writeFile("photos/a.jpg", Buffer.from("aaa"), { mode: 0o640 });
    await store.writeFile("photos/b c.txt", pattern(10_000));
    await store.mkdir("photos/sub");
    const plain = await runRiakfs(["ls", "photos", ...flags]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(plain.stdout.trim().split("\n").sort(), ["a.jpg", "b c.txt", "sub/"]);
    const long = await runRiakfs(["ls", "-l", "photos", ...flags]);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stdout, /^-rw-r----- 0 0 +3 \S+ a\.jpg$/m);
    assert.match(long.stdout, /^drwxr-xr-x .* sub\/$/m);
    const json = await runRiakfs(["ls", "--json", "photos", ...flags]);
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout) as Array<{ name: string; type: string }>;
    assert.deepEqual(
      entries.map((e) => `${e.type}:${e.name}`).sort(),
      ["directory:sub", "file:a.jpg", "file:b c.txt"],
    );
    const root = await runRiakfs(["ls", "--json", ...flags]);
    assert.deepEqual(JSON.parse(root.stdout), [{ name: "photos", type: "directory" }]);
    const missing = await runRiakfs(["ls", "nope", ...flags]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
    assert.equal(missing.stderr.trim().split("\n").length, 1);
    // As ls(1): a file named is listed as itself, under the name given; `FILE/` is no directory.
    const file = await runRiakfs(["ls", "./photos/a.jpg", ...flags]);
    assert.equal(file.stdout, "./photos/a.jpg\n", file.stderr);
    const fileLong = await runRiakfs(["ls", "-l", "photos/a.jpg", ...flags]);
    assert.match(fileLong.stdout, /^-rw-r----- 0 0 +3 \S+ photos\/a\.jpg\n$/, fileLong.stderr);
    const fileJson = await runRiakfs(["ls", "--json", "photos/a.jpg", ...flags]);
    assert.deepEqual(JSON.parse(fileJson.stdout), [{ name: "photos/a.jpg", type: "file" }]);
    const slashed = await runRiakfs(["ls", "photos/a.jpg/", ...flags]);
    assert.equal(slashed.code, 1, slashed.stderr);
    assert.match(slashed.stderr, /photos\/a\.jpg: not a directory/);
  });
});

Deno.test("stat: human and --json, with the Riak location", async () => {
  await withRiak(async ({ store, flags }) => {
    const content = pattern(10_000);
    await store.writeFile("docs/big.txt", content, {
      uid: 12,
      gid: 34,
      mtimeNs: 1_700_000_000_000_000_000n,
    });
    const json = await runRiakfs(["stat", "docs/big.txt", "--json", ...flags]);
    assert.equal(json.code, 0, json.stderr);
    const stat = JSON.parse(json.stdout);
    assert.equal(stat.type, "file");
    assert.equal(stat.storage, "chunked");
    assert.equal(stat.size, 10_000);
    assert.equal(stat.uid, 12);
    assert.equal(stat.mtimeNs, "1700000000000000000");
    assert.equal(stat.sha256, createHash("sha256").update(content).digest("hex"));
    assert.equal(stat.riak.key, "docs/big.txt");
    const human = await runRiakfs(["stat", "docs/big.txt", ...flags]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Size: 10000/);
    assert.match(human.stdout, /Riak: type default, bucket \S+-files, key docs\/big\.txt/);
    const missing = await runRiakfs(["stat", "docs/none", ...flags]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /docs\/none: not found/);
    // As on a local disk: `.` segments name where they are, a trailing `/` only a directory.
    const dotted = await runRiakfs(["stat", "./docs/./big.txt", "--json", ...flags]);
    assert.equal(JSON.parse(dotted.stdout).sha256, stat.sha256, dotted.stderr);
    const dir = await runRiakfs(["stat", "docs/", "--json", ...flags]);
    assert.equal(JSON.parse(dir.stdout).type, "directory", dir.stderr);
    for (const command of ["stat", "cat"]) {
      const slashed = await runRiakfs([command, "docs/big.txt/", ...flags]);
      assert.equal(slashed.code, 1, command);
      assert.match(slashed.stderr, /docs\/big\.txt: not a directory/, command);
    }
    const root = await runRiakfs(["ls", ".", ...flags]);
    assert.equal(root.stdout, "docs/\n", root.stderr);
  });
});

Deno.test("cat: streams verified bytes; a corrupted chunk fails with a non-zero exit", async () => {
  await withRiak(async ({ store, flags }) => {
    const content = pattern(20_000);
    await store.writeFile("f.txt", content);
    const out = await runRiakfs(["cat", "f.txt", ...flags]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, content.toString());
    const json = await runRiakfs(["cat", "f.txt", "--json", ...flags]);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(Buffer.from(JSON.parse(json.stdout).base64, "base64").equals(content));
    const manifest = await store.manifest("f.txt");
    const client = openRiakStoreClient({ nodes: [flags[1]] });
    try {
      await client.client.put(store.layout.chunk(chunkKey(manifest!.generation, 2)), {
        value: Buffer.alloc(4096, 0x21),
        contentType: "application/octet-stream",
        usermeta: [],
      });
    } finally {
      await client.close();
    }
    const bad = await runRiakfs(["cat", "f.txt", ...flags]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /checksum mismatch/);
  });
});

Deno.test("cat, ls and stat fail (exit 1, one line) when stdout refuses their output", async () => {
  await withRiak(async ({ store, flags }) => {
    await store.writeFile("f.txt", pattern(20_000));
    // /dev/full answers every write with ENOSPC, as a file on the disk that filled up does.
    for (const args of [["cat", "f.txt"], ["ls", "/"], ["stat", "f.txt", "--json"]]) {
      const run = await runRiakfs([...args, ...flags], { stdoutTo: "/dev/full" });
      assert.equal(run.code, 1, `${args[0]}: ${run.stderr}`);
      assert.match(
        run.stderr,
        new RegExp(`^riakfs ${args[0]}: cannot write to standard output: ENOSPC[^\\n]*\\n$`),
      );
    }
  });
});

Deno.test("stat, cat and ls find a name that is not UTF-8 by its exact bytes", async () => {
  await withRiak(async ({ store, flags }) => {
    // Latin-1 "déjà/café.txt" and "cafè.txt": UTF-8 decoding makes both names one text.
    const directory = Buffer.from("d\xe9j\xe0", "latin1");
    const acute = Buffer.concat([directory, Buffer.from("/caf\xe9.txt", "latin1")]);
    const grave = Buffer.concat([directory, Buffer.from("/caf\xe8.txt", "latin1")]);
    // Not even a character: a lead byte without its continuation, an encoded surrogate.
    const broken = Buffer.concat([
      directory,
      Buffer.from([0x2f, 0x78, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
    ]);
    await store.writeFile(acute, Buffer.from("acute"));
    await store.writeFile(grave, Buffer.from("grave"));
    await store.writeFile(broken, Buffer.from("broken"));

    for (
      const [path, content] of [[acute, "acute"], [grave, "grave"], [broken, "broken"]] as const
    ) {
      const cat = await runRiakfs(["cat", path, ...flags]);
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, content);
      const stat = await runRiakfs(["stat", "--json", ...flags, "--", path]);
      assert.equal(stat.code, 0, stat.stderr);
      const json = JSON.parse(stat.stdout);
      assert.equal(json.size, content.length);
      assert.equal(json.sha256, createHash("sha256").update(content).digest("hex"));
    }
    const named = await runRiakfs(["stat", acute, ...flags]);
    assert.match(named.stdout, /^ {2}Path: \/d\\xe9j\\xe0\/caf\\xe9\.txt$/m);
    const catJson = await runRiakfs(["cat", "--json", broken, ...flags]);
    assert.equal(JSON.parse(catJson.stdout).path, "/d\\xe9j\\xe0/x\\xc3(\\xed\\xa0\\x80");

    const ls = await runRiakfs(["ls", directory, ...flags]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      ls.stdout.trim().split("\n").sort(),
      ["caf\\xe8.txt", "caf\\xe9.txt", "x\\xc3(\\xed\\xa0\\x80"],
    );
    const long = await runRiakfs(["ls", "-l", ...flags, directory]);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stdout, /^-rw-r--r-- 0 0 +5 \S+ caf\\xe9\.txt$/m);
    const root = await runRiakfs(["ls", "--json", ...flags]);
    assert.deepEqual(JSON.parse(root.stdout), [{ name: "d\\xe9j\\xe0", type: "directory" }]);

    // The same name in valid UTF-8 is another file, which Riak does not hold.
    const utf8 = await runRiakfs(["cat", "déjà/café.txt", ...flags]);
    assert.equal(utf8.code, 1);
    assert.match(utf8.stderr, /\/déjà\/café\.txt: not found/);
    const missing = await runRiakfs([
      "stat",
      Buffer.concat([directory, Buffer.from("/\xff", "latin1")]),
      ...flags,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /d\\xe9j\\xe0\/\\xff: not found/);
  });
});

Deno.test("doctor: every check passes on a good Riak; an unreachable node fails it", async () => {
  await withRiak(async ({ flags }) => {
    const json = await runRiakfs(["doctor", "--json", ...flags]);
    assert.equal(json.code, 0, json.stdout + json.stderr);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      checks: Array<{ name: string; ok: boolean }>;
    };
    assert.equal(report.ok, true);
    const names = report.checks.map((c) => c.name);
    assert.ok(names.some((n) => n.startsWith("node ")));
    assert.ok(names.includes("bucket type default (files)"));
    assert.ok(names.includes("bucket type sets (directories)"));
    assert.ok(names.includes("write/read/delete round trip"));
    const human = await runRiakfs(["doctor", ...flags]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /all checks passed/);
    const noSets = await runRiakfs(["doctor", ...flags, "--sets-bucket-type", "kvmulti"]);
    assert.equal(noSets.code, 1);
    assert.match(noSets.stdout, /FAIL bucket type kvmulti \(directories\): datatype is unset/);
    assert.match(noSets.stdout, /use a set type .*bucket-type create sets /);
    const missing = await runRiakfs(["doctor", ...flags, "--sets-bucket-type", "no_such_type"]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stdout,
      /FAIL bucket type no_such_type \(directories\): does not exist; riak admin bucket-type create no_such_type '\{"props":\{"datatype":"set"\}\}'/,
    );
    const down = await runRiakfs([
      "doctor",
      "--json",
      ...flags.slice(2),
      "--riak",
      `${flags[1]},127.0.0.1:1`,
      "--connect-timeout",
      "2000",
    ]);
    assert.equal(down.code, 1);
    const downReport = JSON.parse(down.stdout) as { checks: Array<{ name: string; ok: boolean }> };
    assert.equal(downReport.checks.find((c) => c.name === "node 127.0.0.1:1")?.ok, false);
    for (const node of flags[1].split(",")) {
      assert.equal(downReport.checks.find((c) => c.name === `node ${node}`)?.ok, true, node);
    }
    // No node answers: the checks that need one say so instead of waiting out their timeouts.
    const none = await runRiakfs(["doctor", "--json", ...flags.slice(2), "--riak", "127.0.0.1:1"]);
    assert.equal(none.code, 1);
    const noneReport = JSON.parse(none.stdout) as {
      checks: Array<{ name: string; ok: boolean; detail: string }>;
    };
    const notRun = noneReport.checks.filter((c) => c.detail === "not run: no Riak node answered");
    assert.deepEqual(
      notRun.map((c) => c.name),
      noneReport.checks.filter((c) => !c.name.startsWith("node ")).map((c) => c.name),
    );
    assert.ok(notRun.length >= 3);
  });
});

Deno.test("doctor: nodes that accept and never answer are checked at once, each within --ping-timeout", async () => {
  await withRiak(async ({ flags }) => {
    const silent = [await listenSilently(), await listenSilently()];
    try {
      const started = Date.now();
      const result = await runRiakfs([
        "doctor",
        "--json",
        ...flags.slice(2),
        "--riak",
        [...silent.map((s) => s.address), flags[1]].join(","),
        "--request-timeout",
        "20000",
        "--ping-timeout",
        "500",
      ]);
      const tookMs = Date.now() - started;
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout) as {
        checks: Array<{ name: string; ok: boolean; detail: string }>;
      };
      for (const { address } of silent) {
        const check = report.checks.find((c) => c.name === `node ${address}`);
        assert.equal(check?.ok, false, address);
        assert.match(check!.detail, /timed out after 500 ms \(--ping-timeout\)/);
      }
      assert.ok(report.checks.filter((c) => !c.name.startsWith("node ")).every((c) => c.ok));
      // One after the other, each waited out --request-timeout: 40 s for these two.
      assert.ok(tookMs < 15_000, `doctor took ${tookMs} ms`);
    } finally {
      for (const listener of silent) await listener.close();
    }
  });
});

/** A TCP port that accepts connections and never answers (a hung node). */
async function listenSilently(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

Deno.test("gc: reports unreferenced chunks in a dry run and deletes them with --delete", async () => {
  await withRiak(async ({ store, flags }) => {
    await store.writeFile("kept.bin", pattern(9000));
    const kept = await store.manifest("kept.bin");
    const orphan = "0123456789abcdef0123456789abcdef";
    const client = openRiakStoreClient({ nodes: [flags[1]] });
    try {
      for (const index of [0, 1]) {
        await client.client.put(store.layout.chunk(chunkKey(orphan, index)), {
          value: Buffer.from("orphan"),
          contentType: "application/octet-stream",
          usermeta: [],
        });
      }
    } finally {
      await client.close();
    }
    const young = await runRiakfs(["gc", "--json", ...flags]);
    assert.equal(young.code, 0, young.stderr);
    assert.deepEqual(JSON.parse(young.stdout).recent, [orphan], "too young to collect");
    const dry = await runRiakfs(["gc", "--json", "--min-age", "0", ...flags]);
    assert.equal(dry.code, 0, dry.stderr);
    const report = JSON.parse(dry.stdout);
    assert.equal(report.dryRun, true);
    assert.equal(report.manifests, 1);
    assert.deepEqual(report.garbage.map((g: { generation: string }) => g.generation), [orphan]);
    assert.equal(report.garbageChunks, 2);
    assert.equal(report.deleted, 0);
    const human = await runRiakfs(["gc", "--min-age", "0", "--delete", ...flags]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /deleted: 2 chunks/);
    const after = await runRiakfs(["gc", "--json", "--min-age", "0", ...flags]);
    assert.deepEqual(JSON.parse(after.stdout).garbage, []);
    assert.ok((await store.readFile("kept.bin")).equals(pattern(9000)));
    assert.ok(kept);
  });
});

Deno.test("gc: reports entries with nothing stored behind them, and --delete removes them", async () => {
  await withRiak(async ({ store, flags }) => {
    await store.writeFile("docs/kept.txt", Buffer.from("kept"));
    const { entries } = store.layout.directory(Buffer.from("docs"));
    assert.equal(entries.kind, "sharded");
    const client = openRiakStoreClient({ nodes: [flags[1]] });
    try {
      // Left as an add Riak applied after the name's removal leaves them: no object behind.
      await client.client.updateSet({
        bucketType: entries.bucketType,
        bucket: entries.bucket,
        key: shardKey(entries.dirKey, 1, 0),
      }, {
        add: [
          encodeEntryMember("file", Buffer.from("gone.txt")),
          encodeEntryMember("directory", Buffer.from("gone dir")),
        ],
      });
    } finally {
      await client.close();
    }
    const dry = await runRiakfs(["gc", "--json", ...flags]);
    assert.equal(dry.code, 0, dry.stderr);
    const report = JSON.parse(dry.stdout);
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.orphanEntries.map((o: { path: string; type: string }) => `${o.type}:${o.path}`).sort(),
      ["directory:docs/gone dir", "file:docs/gone.txt"],
    );
    assert.equal(report.deletedEntries, 0);
    const listed = await runRiakfs(["ls", "docs", ...flags]);
    assert.deepEqual(listed.stdout.trim().split("\n").sort(), [
      "gone dir/",
      "gone.txt",
      "kept.txt",
    ]);
    const long = await runRiakfs(["ls", "-l", "docs", ...flags]);
    assert.notEqual(long.code, 0, "an entry it could not stat");
    const rows = long.stdout.trim().split("\n");
    assert.equal(rows.length, 3, long.stdout);
    assert.equal(rows.filter((row) => row.startsWith("?????????? ")).length, 2, long.stdout);
    assert.ok(rows.some((row) => row.startsWith("-rw") && row.endsWith(" kept.txt")), long.stdout);
    assert.match(
      long.stderr.trim(),
      /^riakfs ls: 2 entries listed with nothing stored .*gc --delete/,
    );
    assert.equal(long.stderr.trim().split("\n").length, 1, long.stderr);
    const human = await runRiakfs(["gc", "--delete", ...flags]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^orphan entries \(listed, nothing stored\): 2$/m);
    assert.match(human.stdout, /^ {2}docs\/gone dir\/$/m);
    assert.match(human.stdout, /^deleted: 0 chunks, 2 entries$/m);
    const after = await runRiakfs(["ls", "docs", ...flags]);
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(after.stdout.trim().split("\n"), ["kept.txt"]);
    const again = await runRiakfs(["gc", "--json", ...flags]);
    assert.deepEqual(JSON.parse(again.stdout).orphanEntries, []);
  });
});

Deno.test("--layout riak-fuse: ls and cat read what riak-fuse wrote", async () => {
  await withRiak(async ({ flags }) => {
    const client = openRiakStoreClient({ nodes: [flags[1]] });
    const prefix = `${flags[3]}-`;
    try {
      await client.client.put({
        bucketType: "default",
        bucket: Buffer.from(`${prefix}IMG_shop`),
        key: Buffer.from("logo.png"),
      }, {
        value: Buffer.from("PNG bytes"),
        contentType: "application/octet-stream",
        usermeta: [],
      });
      await client.client.updateSet({
        bucketType: "sets",
        bucket: Buffer.from(`${prefix}IMGDIR_shop`),
        key: Buffer.from("directory"),
      }, { add: [Buffer.from("logo.png")] });
    } finally {
      await client.close();
    }
    const config = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          layout: "riak-fuse",
          riakFuse: { contentPrefix: `${prefix}IMG_`, directoryPrefix: `${prefix}IMGDIR_` },
        }),
      );
      const ls = await runRiakfs(["ls", "shop/images", "--config", config, ...flags]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.equal(ls.stdout, "logo.png\n");
      const cat = await runRiakfs(["cat", "shop/images/logo.png", "--config", config, ...flags]);
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, "PNG bytes");
    } finally {
      await Deno.remove(config);
    }
  });
});

Deno.test("bad connection settings are usage errors (exit 2, one line)", async () => {
  const badNode = await runRiakfs(["ls", "--riak", "host:99999"]);
  assert.equal(badNode.code, 2);
  assert.match(badNode.stderr, /--riak/);
  const badLayout = await runRiakfs(["stat", "x", "--layout", "s3"]);
  assert.equal(badLayout.code, 2);
  assert.match(badLayout.stderr, /--layout/);
  const password = await runRiakfs(["ls", "--user", "u", "--tls"], {
    env: { PATH: process.env.PATH ?? "" },
  });
  assert.equal(password.code, 2);
  assert.match(password.stderr, /RIAKFS_PASSWORD/);
  const plainAuth = await runRiakfs(["ls", "--user", "u"], {
    env: { PATH: process.env.PATH ?? "", RIAKFS_PASSWORD: "pw" },
  });
  assert.equal(plainAuth.code, 2);
  assert.match(plainAuth.stderr, /needs --tls/);
  const unknownFlag = await runRiakfs(["ls", "--jsn"]);
  assert.equal(unknownFlag.code, 2);
  for (const run of [badNode, badLayout, password, plainAuth, unknownFlag]) {
    assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
  }
  assert.match(unknownFlag.stderr, /--json\?.*riakfs ls --help/);
});
