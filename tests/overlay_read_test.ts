/**
 * Reading from Riak through a real mount: small files served from the bytes that came with
 * their lookup (no second get, seen as chunk-cache hits), a large file streamed with
 * read-ahead, a file changed in Riak behind the mount read fresh once the entry timeout
 * passed (no stale bytes served past it), the kernel's page cache kept for a file that did
 * not change, and a large file read by several readers at once, out of order, each byte right
 * (the mount frees each chunk's memory once no read needs it).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { statusOf, withOverlayEnv } from "./_overlay.ts";

Deno.test("riak: small files are read from their lookup's bytes; a large file streams ahead", async () => {
  await withOverlayEnv(async (env) => {
    const small = Array.from({ length: 20 }, (_, index) => seededBytes(40 + index, 100 * 1024));
    for (const [index, content] of small.entries()) {
      await env.store.writeFile(`small/${index}.bin`, content);
    }
    const large = seededBytes(39, 6 * 1024 * 1024 + 777);
    await env.store.writeFile("large.bin", large);
    const mounted = await env.mount("riak");
    try {
      for (const [index, content] of small.entries()) {
        const read = await fsp.readFile(join(env.mountpoint, "small", `${index}.bin`));
        assert.ok(content.equals(read), `small/${index}.bin byte for byte`);
      }
      let report = await statusOf(env);
      assert.equal(report.metrics.cache.misses, 0, "no read of a small file fetched again");
      assert.ok(report.metrics.cache.hits >= small.length);
      assert.ok(large.equals(await fsp.readFile(join(env.mountpoint, "large.bin"))));
      report = await statusOf(env);
      assert.ok(report.metrics.cache.readAheadChunks > 0, "the stream pulled ahead of the reads");
      assert.ok(report.metrics.bytesReadRiak >= 20 * 100 * 1024 + large.length);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("riak: a file changed in Riak behind the mount is read fresh after the entry timeout", async () => {
  await withOverlayEnv(async (env) => {
    const TIMEOUT_MS = 400;
    const before = seededBytes(60, 30_000);
    const after = seededBytes(61, 45_000);
    await env.store.writeFile("notes.bin", before);
    const seconds = `${TIMEOUT_MS / 1000}`;
    const mounted = await env.mount("riak", [
      "-o",
      `entry_timeout=${seconds},attr_timeout=${seconds}`,
    ]);
    try {
      const file = join(env.mountpoint, "notes.bin");
      assert.ok(before.equals(await fsp.readFile(file)));
      await env.store.writeFile("notes.bin", after);
      const changedAt = Date.now();
      // The timeout itself is what is tested: wait until it has passed, then read once.
      while (Date.now() < changedAt + TIMEOUT_MS + 100) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(after.equals(await fsp.readFile(file)), "no stale bytes past the entry timeout");
      assert.equal((await fsp.stat(file)).size, after.length);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("riak: an unchanged file is read again from the kernel's page cache; direct_io skips it", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(62, 3 * 1024 * 1024);
    await env.store.writeFile("kept.bin", content);
    const file = join(env.mountpoint, "kept.bin");
    const readTwice = async () => {
      assert.ok(content.equals(await fsp.readFile(file)));
      const first = (await statusOf(env)).metrics.bytesReadRiak;
      assert.ok(content.equals(await fsp.readFile(file)));
      return (await statusOf(env)).metrics.bytesReadRiak - first;
    };
    let mounted = await env.mount("riak");
    try {
      assert.equal(await readTwice(), 0, "the second read asked riakfs for nothing");
    } finally {
      await env.unmount(mounted);
    }
    mounted = await env.mount("riak", ["-o", "direct_io"]);
    try {
      assert.ok(await readTwice() >= content.length, "direct_io: every read reaches riakfs");
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("riak: a large file read by several readers at once, reads in flight out of order, is byte for byte", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(63, 9 * 1024 * 1024 + 4321);
    await env.store.writeFile("shared.bin", content);
    const file = join(env.mountpoint, "shared.bin");
    const PIECE = 300 * 1024; // crosses the 1 MiB chunks, so some replies span two of them
    /** One handle, `inFlight` positional reads at a time, handed out in order. */
    const readWhole = async (inFlight: number) => {
      const handle = await fsp.open(file, "r");
      try {
        const got = Buffer.alloc(content.length);
        let next = 0;
        const reader = async () => {
          while (next < content.length) {
            const at = next;
            next += PIECE;
            const length = Math.min(PIECE, content.length - at);
            const { bytesRead } = await handle.read(got, at, length, at);
            assert.equal(bytesRead, length, `a full read at ${at}`);
          }
        };
        await Promise.all(Array.from({ length: inFlight }, reader));
        return got;
      } finally {
        await handle.close();
      }
    };
    for (const options of [[], ["-o", "direct_io"]]) {
      const mounted = await env.mount("riak", options);
      try {
        const copies = await Promise.all([readWhole(1), readWhole(4), readWhole(8)]);
        for (const [index, copy] of copies.entries()) {
          assert.ok(content.equals(copy), `reader ${index} ${options.join(" ")}: byte for byte`);
        }
      } finally {
        await env.unmount(mounted);
      }
    }
  });
});
