/**
 * The product's story, on a source whose filesystem is really full (a small tmpfs, filled to
 * its last byte, the spool in its default place on it): a drain mount starts over it,
 * writes answer ENOSPC at once and work again once reads drained files away, a mount killed
 * with a full spool comes up again and drains it, a spool an operator removed while mounted
 * is made again without losing a write close() acknowledged, and the temporary files a
 * crash leaves in SOURCE while a file is fetched into it are removed by the next mount. A
 * copy a mount makes on the full disk (a file staged for writing, fetched into SOURCE) is
 * whole or refused with ENOSPC, never cut short and uploaded as the file.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes, sha256Hex } from "../src/store/_test_support.ts";
import { type FullFilesystem, withFullFilesystem } from "../src/util/_full_filesystem.ts";
import { isProcessAlive } from "../src/util/process.ts";
import { isMounted, waitFor } from "./_mount.ts";
import {
  assertInRiak,
  eventually,
  killMount,
  type OverlayEnv,
  type OverlayMount,
  statusOf,
  waitForQuiet,
  withLog,
  withMounted,
  withOverlayEnv,
} from "./_overlay.ts";
import { startRiakProxy } from "./_riak_proxy.ts";
import { runRiakfs } from "./_riakfs.ts";

/**
 * `preset` (drain by default) with the spool in SOURCE/.riakfs-spool: its default place where
 * the preset reads SOURCE, named for riak (which would keep it under /var/lib/riakfs).
 */
function mountOverSource(env: OverlayEnv, riak = env.riak.nodes.join(","), preset = "drain") {
  return env.mountArgs([
    "--preset",
    preset,
    "--foreground",
    "--riak",
    riak,
    "--bucket",
    env.bucket,
    "--run-dir",
    env.runDirectory,
    ...(preset === "riak" ? ["--spool", join(env.source, ".riakfs-spool")] : []),
    env.source,
    env.mountpoint,
  ]);
}

/** Runs `body` on a mount of `preset` over SOURCE ({@link mountOverSource}). */
function onMountOverSource(
  env: OverlayEnv,
  preset: string,
  body: (mounted: OverlayMount) => Promise<void>,
): Promise<void> {
  return withMounted(env, () => mountOverSource(env, undefined, preset), body);
}

/**
 * Runs `body` with an overlay env whose SOURCE is a tmpfs of its own, empty: the test puts
 * its files there, then fills it up.
 */
function withSourceOnTmpfs(
  options: { sizeKiB: number; inodes?: number },
  body: (env: OverlayEnv, disk: FullFilesystem) => Promise<void>,
): Promise<void> {
  return withOverlayEnv((env) =>
    withFullFilesystem((disk) => body(env, disk), {
      inodes: 1024,
      ...options,
      at: env.source,
      empty: true,
    })
  );
}

/** Writes `count` files of `size` bytes into SOURCE/`directory`; returns them by path. */
function legacyFiles(
  env: OverlayEnv,
  directory: string,
  count: number,
  size: number,
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  fs.mkdirSync(join(env.source, directory), { recursive: true });
  for (let index = 0; index < count; index++) {
    const name = join(directory, `f${index}`);
    const content = seededBytes(size + index, size);
    fs.writeFileSync(join(env.source, name), content);
    files.set(name, content);
  }
  return files;
}

/** Whether `promise` rejects with ENOSPC (what a full local disk answers). */
async function refusedForRoom(promise: Promise<unknown>): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOSPC";
  }
}

/**
 * Writes a small file through the mount and waits for it in Riak: the journal then has a
 * block in use, which holds its next lines without a free one.
 */
async function journalInUse(env: OverlayEnv): Promise<void> {
  await fsp.writeFile(join(env.mountpoint, "first.txt"), "first");
  await eventually("first.txt in Riak", async () => !!(await env.store.tryStat("first.txt")));
}

/** Opens `file` for writing in place and writes `head` at its start, as a database does. */
async function overwriteHead(file: string, head: Uint8Array): Promise<void> {
  const handle = await fsp.open(file, "r+");
  try {
    await handle.write(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
}

Deno.test("drain: a write into a local file bigger than the room left answers ENOSPC; the full disk never cuts its staged copy short (Riak and SOURCE keep every byte)", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    const [[name, original]] = legacyFiles(env, "old", 1, 700_000);
    await onMountOverSource(env, "drain", async () => {
      await journalInUse(env);
      disk.fill();
      disk.makeRoom(300_000); // Less than the file: a copy of it cannot be staged whole.
      const file = join(env.mountpoint, name);
      const head = Buffer.alloc(100, "X");
      assert.ok(await refusedForRoom(overwriteHead(file, head)), "ENOSPC, not a torn copy");
      assert.ok(Buffer.from(original).equals(fs.readFileSync(join(env.source, name))));
      assert.equal(await env.store.tryStat(name), undefined, "nothing went to Riak");
      disk.makeRoom(1_000_000);
      await overwriteHead(file, head);
      const written = Buffer.concat([head, original.subarray(head.length)]);
      await eventually(
        "the superseded local copy drained away",
        () => Promise.resolve(!fs.existsSync(join(env.source, name))),
      );
      await assertInRiak(env, new Map([[name, written]]));
      assert.ok(written.equals(await fsp.readFile(file)));
    });
  });
});

/**
 * A file only Riak holds, bigger than the room left on the full source, opened for writing
 * in `preset`: migrate fetches it into SOURCE first, drain stages it in the spool. Either
 * copy cut short by the disk (a short write(2) taken for the whole) was a torn file, uploaded
 * over Riak's whole one.
 */
async function writeIntoRiakFileOnFullDisk(preset: string): Promise<void> {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    const original = seededBytes(950, 700_000);
    await env.store.writeFile("r.bin", original, { mode: 0o644 });
    await onMountOverSource(env, preset, async () => {
      await journalInUse(env);
      disk.fill();
      disk.makeRoom(300_000);
      const file = join(env.mountpoint, "r.bin");
      const head = Buffer.alloc(100, "X");
      assert.ok(await refusedForRoom(overwriteHead(file, head)), "ENOSPC, not a torn copy");
      assert.deepEqual(
        fs.readdirSync(env.source).filter((entry) =>
          entry === "r.bin" || entry.startsWith(".riakfs-publish-")
        ),
        [],
        "no copy, whole or torn, left in SOURCE",
      );
      assert.ok(Buffer.from(original).equals(await env.store.readFile("r.bin")), "Riak's kept");
      disk.makeRoom(1_000_000);
      await overwriteHead(file, head);
      const written = Buffer.concat([head, original.subarray(head.length)]);
      await eventually(
        "the write in Riak",
        async () => written.equals(await env.store.readFile("r.bin")),
      );
      assert.ok(written.equals(await fsp.readFile(file)));
    });
  });
}

Deno.test("migrate: a write into a Riak file bigger than the room left answers ENOSPC; the fetch into SOURCE is never cut short by the full disk", async () => {
  await writeIntoRiakFileOnFullDisk("migrate");
});

Deno.test("drain: a write into a Riak file bigger than the room left answers ENOSPC; its staged copy is never cut short by the full disk", async () => {
  await writeIntoRiakFileOnFullDisk("drain");
});

/** `truncate -s 0 FILE`, coreutils': open(2) without O_TRUNC, then ftruncate(fd, 0). */
async function truncateToZero(file: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("truncate", {
    args: ["-s", "0", file],
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** Opens `file` for writing in place, as `preset`'s writers do, and writes `bytes` at `at`. */
async function writeAt(file: string, at: number, bytes: Uint8Array): Promise<void> {
  const handle = await fsp.open(file, "r+");
  try {
    await handle.write(bytes, 0, bytes.length, at);
  } finally {
    await handle.close();
  }
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset} on a full disk: truncate -s 0 and an open for writing closed unused copy nothing of the file, so they work; a write once room is back keeps the bytes around it`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
      const original = seededBytes(980, 700_000);
      for (const name of ["emptied.bin", "r.bin"]) {
        await env.store.writeFile(name, original, { mode: 0o644 });
      }
      // drain serves the legacy files of SOURCE too; riak shows Riak alone.
      const legacy = preset === "drain" ? [...legacyFiles(env, "old", 1, 700_000).keys()] : [];
      await onMountOverSource(env, preset, async () => {
        await journalInUse(env);
        const before = await env.store.stat("r.bin");
        disk.fill();
        disk.makeRoom(300_000); // Less than either file: a copy of it does not fit.
        const at = (name: string) => join(env.mountpoint, name);
        for (const name of ["emptied.bin", ...legacy]) await truncateToZero(at(name));
        await (await fsp.open(at("r.bin"), "r+")).close();
        for (const name of ["emptied.bin", ...legacy]) {
          await eventually(
            `${name} empty in Riak`,
            async () => (await env.store.tryStat(name))?.size === 0,
          );
          assert.equal(fs.statSync(at(name)).size, 0);
        }
        for (const name of legacy) {
          await eventually(
            `${name}'s local copy gone`,
            () => Promise.resolve(!fs.existsSync(join(env.source, name))),
          );
        }
        const after = await env.store.stat("r.bin");
        assert.equal(after.mtimeNs, before.mtimeNs, "closed unused: not uploaded again");
        assert.equal(after.sha256, before.sha256);
        disk.makeRoom(1_000_000);
        const middle = Buffer.from("MIDDLE");
        await writeAt(at("r.bin"), 350_000, middle);
        const written = Buffer.from(original);
        written.set(middle, 350_000);
        await eventually(
          "the write in Riak",
          async () => written.equals(await env.store.readFile("r.bin")),
        );
        assert.ok(written.equals(await fsp.readFile(at("r.bin"))));
        // O_APPEND: the kernel writes at the size stat showed before anything was copied.
        await fsp.appendFile(at("r.bin"), "TAIL");
        const appended = Buffer.concat([written, Buffer.from("TAIL")]);
        await eventually(
          "the append in Riak",
          async () => appended.equals(await env.store.readFile("r.bin")),
        );
      });
    });
  });
}

/** Runs `command` with `args`, failing with what it printed unless it exits 0. */
async function runTool(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stderr: "piped" }).output();
  assert.equal(code, 0, `${command}: ${new TextDecoder().decode(stderr)}`);
}

/**
 * Fills `disk` but for 300 000 bytes, far less than a file of three chunks of the default size:
 * a copy of one does not fit. Resolves to the mount's upload figures from before.
 */
async function fillLeavingLessThanAFile(env: OverlayEnv, disk: FullFilesystem) {
  const uploads = (await statusOf(env)).metrics.uploads;
  disk.fill();
  disk.makeRoom(300_000);
  return uploads;
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset} on a full disk: touch, touch -d and fchmod of a 3-chunk Riak file bigger than the room left work, copying and uploading none of its bytes`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
      const original = seededBytes(982, 3 * 1024 * 1024); // Three chunks of the default size.
      await env.store.writeFile("big.bin", original, { mode: 0o644 });
      await onMountOverSource(env, preset, async () => {
        await journalInUse(env);
        const before = await env.store.stat("big.bin");
        const uploadsBefore = await fillLeavingLessThanAFile(env, disk);
        const file = join(env.mountpoint, "big.bin");
        // touch opens the file for writing (O_WRONLY | O_CREAT) and sets its times on the fd.
        await runTool("touch", ["-d", "2001-09-09T01:46:40Z", file]);
        assert.equal(fs.statSync(file, { bigint: true }).mtimeNs, 1_000_000_000_000_000_000n);
        assert.equal((await env.store.stat("big.bin")).mtimeNs, 1_000_000_000_000_000_000n);
        await runTool("touch", [file]);
        const touched = (await env.store.stat("big.bin")).mtimeNs;
        assert.ok(touched > before.mtimeNs, "touch: the time now, in Riak");
        assert.equal(fs.statSync(file, { bigint: true }).mtimeNs, touched);
        await runTool("python3", [
          "-c",
          "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fchmod(fd, 0o600); " +
          "os.fsync(fd); os.close(fd)",
          file,
        ]);
        assert.equal(fs.statSync(file).mode & 0o7777, 0o600);
        const after = await env.store.stat("big.bin");
        assert.equal(after.mode, 0o600);
        assert.equal(after.sha256, before.sha256);
        await waitForQuiet(env);
        const uploads = (await statusOf(env)).metrics.uploads;
        assert.equal(uploads.uploaded, uploadsBefore.uploaded, "nothing uploaded again");
        assert.equal(uploads.bytesUploaded, uploadsBefore.bytesUploaded);
        disk.makeRoom(4_000_000);
        assert.ok(original.equals(await env.store.readFile("big.bin")));
        assert.ok(original.equals(await fsp.readFile(file)));
      });
    });
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset} on a full disk: truncate -s and truncate(2) of a 3-chunk Riak file bigger than the room left work: to its size they copy and upload nothing, to a smaller size only the bytes kept`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
      const original = seededBytes(983, 3 * 1024 * 1024); // Three chunks of the default size.
      for (const name of ["same.bin", "cut.bin", "by-path.bin"]) {
        await env.store.writeFile(name, original, { mode: 0o644 });
      }
      // drain serves the legacy files of SOURCE too; riak shows Riak alone.
      const legacy = preset === "drain" ? [...legacyFiles(env, "old", 1, 700_000)] : [];
      await onMountOverSource(env, preset, async () => {
        await journalInUse(env);
        const before = await env.store.stat("same.bin");
        const uploadsBefore = await fillLeavingLessThanAFile(env, disk);
        const at = (name: string) => join(env.mountpoint, name);
        /** truncate(2) by path, no descriptor (coreutils' truncate opens the file). */
        const truncateByPath = (name: string, size: number) =>
          runTool("python3", [
            "-c",
            "import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))",
            at(name),
            String(size),
          ]);
        await truncateByPath("same.bin", original.length);
        const same = await env.store.stat("same.bin");
        assert.ok(same.mtimeNs > before.mtimeNs, "the truncate's mtime, in Riak");
        assert.equal(same.sha256, before.sha256);
        assert.equal(fs.statSync(at("same.bin"), { bigint: true }).mtimeNs, same.mtimeNs);
        await waitForQuiet(env);
        const uploads = (await statusOf(env)).metrics.uploads;
        assert.equal(uploads.uploaded, uploadsBefore.uploaded, "nothing uploaded again");
        const kept = 100_000;
        const cuts: [string, Uint8Array, () => Promise<void>][] = [
          ["cut.bin", original, () => runTool("truncate", ["-s", String(kept), at("cut.bin")])],
          ["by-path.bin", original, () => truncateByPath("by-path.bin", kept)],
          ...legacy.map(([name, content]): [string, Uint8Array, () => Promise<void>] => [
            name,
            content,
            () => runTool("truncate", ["-s", String(kept), at(name)]),
          ]),
        ];
        for (const [name, content, cut] of cuts) {
          await cut();
          assert.equal(fs.statSync(at(name)).size, kept);
          const wanted = content.subarray(0, kept);
          await eventually(
            `${name} cut in Riak`,
            async () => (await env.store.tryStat(name))?.sha256 === sha256Hex(wanted),
          );
          assert.ok(Buffer.from(wanted).equals(await env.store.readFile(name)));
          assert.ok(Buffer.from(wanted).equals(await fsp.readFile(at(name))));
        }
        await waitForQuiet(env);
        const after = (await statusOf(env)).metrics.uploads;
        assert.equal(after.bytesUploaded - uploadsBefore.bytesUploaded, cuts.length * kept);
        for (const [name] of legacy) {
          assert.equal(fs.existsSync(join(env.source, name)), false, `${name} drained`);
        }
        disk.makeRoom(4_000_000);
        assert.ok(original.equals(await env.store.readFile("same.bin")));
      });
    });
  });
}

/** What {@link writeUntilFull} runs: python3, whose close() says what close(2) said. */
const WRITE_UNTIL_FULL = `
import errno, json, os, sys
content = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
written = 0
while written < len(content):
    try:
        written += os.write(fd, content[written:written + 4096])
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        break
result = {"written": written}
try:
    os.close(fd)
except OSError as error:
    result["closeError"] = errno.errorcode[error.errno]
print(json.dumps(result))
`;

/**
 * Writes `content` into `file` a block at a time (the full disk takes a block whole or not at
 * all) until ENOSPC, as an application does; returns how many bytes write(2) took, and the
 * error close(2) answered, if any (Deno's close() leaves it unsaid, so python3 writes).
 */
async function writeUntilFull(
  env: OverlayEnv,
  file: string,
  content: Uint8Array,
): Promise<{ written: number; closeError?: string }> {
  const from = join(env.base, "content");
  fs.writeFileSync(from, content);
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: ["-c", WRITE_UNTIL_FULL, from, file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.equal(code, 0, text(stderr));
  return JSON.parse(text(stdout));
}

Deno.test("drain: a file written until the disk is full keeps what write(2) took: close() succeeds, as on a local disk, and Riak gets those bytes", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    await onMountOverSource(env, "drain", async () => {
      disk.fill(); // The mount's journal has no block yet.
      const content = seededBytes(960, 1_000_000);
      const empty = join(env.mountpoint, "empty.bin");
      assert.deepEqual(await writeUntilFull(env, empty, content), { written: 0 }, "no byte");
      disk.makeRoom(200_000); // The application's write(2)s take all of it.
      const file = join(env.mountpoint, "log.bin");
      const { written, closeError } = await writeUntilFull(env, file, content);
      assert.equal(closeError, undefined, "close(2) answered as a local disk's does");
      assert.ok(written > 100_000 && written < content.length, `${written} bytes taken`);
      assert.equal(fs.statSync(file).size, written);
      await eventually(
        "both in Riak",
        async () =>
          !!(await env.store.tryStat("log.bin")) && !!(await env.store.tryStat("empty.bin")),
      );
      await assertInRiak(
        env,
        new Map<string, Uint8Array>([
          ["log.bin", content.subarray(0, written)],
          ["empty.bin", new Uint8Array()],
        ]),
      );
    });
  });
});

Deno.test("drain: a close() acknowledged with the journal's room survives a SIGKILL, and a restart on the full disk uploads it", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    const content = seededBytes(961, 1_000_000);
    const first = await mountOverSource(env);
    let written: number;
    try {
      await env.riak.stop(); // The upload waits in the spool.
      disk.fill();
      disk.makeRoom(200_000);
      const wrote = await writeUntilFull(env, join(env.mountpoint, "log.bin"), content);
      assert.equal(wrote.closeError, undefined);
      written = wrote.written;
      await killMount(env, first);
    } catch (error) {
      throw withLog(error, first);
    } finally {
      await env.riak.restart();
    }
    disk.fill(); // What the kill left free, if anything.
    await onMountOverSource(env, "drain", async () => {
      await eventually(
        "log.bin in Riak",
        async () => (await env.store.tryStat("log.bin"))?.size === written,
      );
      await assertInRiak(env, new Map([["log.bin", content.subarray(0, written)]]));
    });
  });
});

/**
 * What needs no byte of data on a local disk works on the full one in `preset` (whose local
 * file is the truth): a create, an overwrite in place, a rename, a truncate; each reaches Riak.
 */
async function metadataOnFullDisk(preset: string): Promise<void> {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    const files = legacyFiles(env, "old", 2, 100_000);
    await onMountOverSource(env, preset, async () => {
      disk.fill(); // The mount's journal has no block yet.
      const at = (name: string) => join(env.mountpoint, name);
      await fsp.writeFile(at("old/created"), "");
      const head = Buffer.alloc(100, "X");
      await overwriteHead(at("old/f0"), head);
      await fsp.rename(at("old/f0"), at("old/renamed"));
      const truncated = await fsp.open(at("old/f1"), "r+"); // truncate(1): no O_TRUNC.
      await truncated.truncate(0);
      await truncated.close();
      const expected = new Map<string, Uint8Array>([
        ["old/created", new Uint8Array()],
        ["old/renamed", Buffer.concat([head, files.get("old/f0")!.subarray(head.length)])],
        ["old/f1", new Uint8Array()],
      ]);
      for (const [name, content] of expected) {
        await eventually(
          `${name} in Riak`,
          async () => (await env.store.tryStat(name))?.size === content.length,
        );
      }
      await assertInRiak(env, expected);
      assert.equal(await env.store.tryStat("old/f0"), undefined, "renamed away in Riak too");
    });
  });
}

Deno.test("shadow on a full disk: create, overwrite in place, rename and truncate work, as on a local disk", async () => {
  await metadataOnFullDisk("shadow");
});

Deno.test("migrate on a full disk: create, overwrite in place, rename and truncate work, as on a local disk", async () => {
  await metadataOnFullDisk("migrate");
});

Deno.test("shadow: a create the full disk refuses (the journal's room used up too) answers ENOSPC and leaves no file behind", async () => {
  await withSourceOnTmpfs({ sizeKiB: 2048 }, async (env, disk) => {
    await onMountOverSource(env, "shadow", async () => {
      fs.rmSync(join(env.source, ".riakfs-spool", "journal.room"));
      disk.fill(); // Neither the journal nor its room has a block left.
      const created = join(env.mountpoint, "new.txt");
      assert.ok(await refusedForRoom(fsp.writeFile(created, "")), "ENOSPC");
      assert.equal(fs.existsSync(join(env.source, "new.txt")), false, "none left in SOURCE");
      assert.ok(!(await fsp.readdir(env.mountpoint)).includes("new.txt"), "nor listed");
      disk.makeRoom(64 * 1024);
      await fsp.writeFile(created, "room again");
      await eventually("new.txt in Riak", async () => !!(await env.store.tryStat("new.txt")));
      await assertInRiak(env, new Map([["new.txt", Buffer.from("room again")]]));
    });
  });
});

for (const preset of ["shadow", "migrate"]) {
  Deno.test(`${preset}: an overwrite (O_TRUNC) the full disk refuses (the journal's room used up too) answers ENOSPC and leaves the file as it was`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 2048 }, async (env, disk) => {
      // Sparse: its truncation frees no block the journal's line could take (on ext4 the
      // blocks a truncate frees wait for the next commit of its journal too).
      const old = new Uint8Array(20_000);
      fs.writeFileSync(join(env.source, "old.bin"), "");
      fs.truncateSync(join(env.source, "old.bin"), old.length);
      await onMountOverSource(env, preset, async () => {
        const file = join(env.mountpoint, "old.bin");
        assert.deepEqual(await fsp.readFile(file), Buffer.from(old));
        fs.rmSync(join(env.source, ".riakfs-spool", "journal.room"));
        disk.fill(); // Neither the journal nor its room has a block left.
        assert.ok(await refusedForRoom(fsp.writeFile(file, "new")), "ENOSPC");
        assert.deepEqual(fs.readFileSync(join(env.source, "old.bin")), Buffer.from(old), "SOURCE");
        assert.deepEqual(await fsp.readFile(file), Buffer.from(old), "through the mount");
        disk.makeRoom(64 * 1024);
        await fsp.writeFile(file, "room again");
        await eventually(
          "old.bin in Riak",
          async () => (await env.store.tryStat("old.bin"))?.size === "room again".length,
        );
        await assertInRiak(env, new Map([["old.bin", Buffer.from("room again")]]));
      });
    });
  });
}

Deno.test("migrate: an overwrite (O_TRUNC) of a file Riak holds a newer copy of, refused by the full disk (the journal's room used up too), leaves no empty copy in SOURCE that looks newer than Riak's", async () => {
  await withSourceOnTmpfs({ sizeKiB: 2048 }, async (env, disk) => {
    const local = join(env.source, "old.bin");
    // Sparse, as above: emptied, it frees no block the journal's line could take.
    fs.writeFileSync(local, "");
    fs.truncateSync(local, 20_000);
    fs.utimesSync(local, new Date("2020-01-01"), new Date("2020-01-01"));
    const newer = Buffer.from("Riak's newer copy, written elsewhere");
    await env.store.writeFile("old.bin", newer, { mode: 0o644 });
    await onMountOverSource(env, "migrate", async () => {
      const file = join(env.mountpoint, "old.bin");
      assert.deepEqual(await fsp.readFile(file), newer);
      fs.rmSync(join(env.source, ".riakfs-spool", "journal.room"));
      disk.fill(); // Neither the journal nor its room has a block left.
      assert.ok(await refusedForRoom(fsp.writeFile(file, "new")), "ENOSPC");
      // A pre-warm would take such a copy for the newer file, and empty Riak's.
      const inRiak = await env.store.stat("old.bin");
      const left = fs.statSync(local, { bigint: true, throwIfNoEntry: false });
      assert.ok(left === undefined || left.mtimeNs <= inRiak.mtimeNs, "none newer in SOURCE");
      assert.deepEqual(await fsp.readFile(file), newer, "through the mount");
      assert.deepEqual(await env.store.readFile("old.bin"), newer, "in Riak");
    });
  });
});

for (const preset of ["passthrough", "shadow", "drain"]) {
  Deno.test(`${preset}: the full disk is logged once, not once per refused write`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 1024 }, async (env, disk) => {
      await onMountOverSource(env, preset, async (mounted) => {
        disk.fill();
        for (let index = 0; index < 5; index++) {
          const file = join(env.mountpoint, `f${index}`);
          const { written } = await writeUntilFull(env, file, seededBytes(index, 8192));
          assert.equal(written, 0, "ENOSPC at the first write");
        }
        const lines = () =>
          mounted.stderr().split("\n").filter((line) =>
            line.includes("a disk of the mount is full")
          );
        await eventually("the full disk logged", () => Promise.resolve(lines().length > 0));
        assert.equal(lines().length, 1, mounted.stderr());
      });
    });
  });
}

Deno.test("drain over a disk with no inode left, its spool there from an earlier mount: refused in one line that says what to do", async () => {
  await withSourceOnTmpfs({ sizeKiB: 2048, inodes: 64 }, async (env, disk) => {
    legacyFiles(env, "old", 4, 10_000);
    // Not made by the mount, so its clean unmount leaves it, with its journal.
    fs.mkdirSync(join(env.source, ".riakfs-spool"));
    await onMountOverSource(env, "drain", () => Promise.resolve());
    assert.ok(fs.existsSync(join(env.source, ".riakfs-spool", "journal")));
    disk.fillInodes(); // Many small files took every inode: the spool's lock has none.
    disk.fill();
    const refused = await mountOverSource(env).then(
      () => assert.fail("mounted without a lock on its spool"),
      (error: Error) => error.message,
    );
    assert.match(
      refused,
      /riakfs: cannot take the spool's lock .*\.riakfs-spool\/lock: .*not even an inode: free a few files there first/,
    );
    assert.equal(isMounted(env.mountpoint), false);
  });
});

Deno.test("drain: a write refused because the file's copy could not be staged again leaves no partial copy in the spool", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    await onMountOverSource(env, "drain", async () => {
      const staged = join(env.source, ".riakfs-spool", "staged");
      disk.fill();
      disk.makeRoom(300_000);
      const file = join(env.mountpoint, "db.bin");
      const content = seededBytes(970, 200_000);
      const writer = await fsp.open(file, "w");
      try {
        await writer.write(content, 0, content.length, 0);
        await env.riak.stop(); // The committed copy stays in the spool, waiting for Riak.
        await (await fsp.open(file, "r+")).close(); // Its close commits the file as it is.
        // Written again: the rest of the disk cannot hold a second copy to write into.
        for (let attempt = 0; attempt < 3; attempt++) {
          assert.ok(await refusedForRoom(writer.write(Buffer.from("x"), 0, 1, content.length)));
        }
        assert.equal(fs.readdirSync(staged).length, 1, "only the committed copy");
      } finally {
        await writer.close();
        await env.riak.restart();
      }
      await eventually("db.bin in Riak", async () => !!(await env.store.tryStat("db.bin")));
      await assertInRiak(env, new Map([["db.bin", content]]));
      await eventually(
        "the spool emptied",
        () => Promise.resolve(fs.readdirSync(staged).length === 0),
      );
    });
  });
});

for (const preset of ["shadow", "migrate"]) {
  Deno.test(`${preset}: a mkdir or symlink the full disk refuses is not left in Riak, nor listed`, async () => {
    await withSourceOnTmpfs({ sizeKiB: 2048, inodes: 64 }, async (env, disk) => {
      await onMountOverSource(env, preset, async () => {
        disk.fillInodes(); // SOURCE has no inode for them; Riak is asked first.
        assert.ok(await refusedForRoom(fsp.mkdir(join(env.mountpoint, "d"))), "mkdir");
        assert.ok(await refusedForRoom(fsp.symlink("t", join(env.mountpoint, "l"))), "symlink");
        assert.equal(await env.store.tryStat("d"), undefined, "no directory in Riak");
        assert.equal(await env.store.tryStat("l"), undefined, "no symlink in Riak");
        const listed = await fsp.readdir(env.mountpoint);
        assert.ok(!listed.includes("d") && !listed.includes("l"), listed.join(" "));
      });
    });
  });
}

Deno.test("drain over a full source: the mount starts, writes answer ENOSPC, reads free the disk, writes work again", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096 }, async (env, disk) => {
    const files = legacyFiles(env, "old", 4, 600_000);
    disk.fill();
    const mounted = await mountOverSource(env);
    try {
      const refused = join(env.mountpoint, "refused.bin");
      assert.ok(
        await refusedForRoom(fsp.writeFile(refused, seededBytes(710, 100_000))),
        "a write to the full disk answers ENOSPC",
      );
      for (const [name, content] of files) {
        assert.ok(Buffer.from(content).equals(await fsp.readFile(join(env.mountpoint, name))));
      }
      await eventually(
        "the local copies drained away",
        async () => (await fsp.readdir(join(env.source, "old"))).length === 0,
      );
      const { bavail, bsize } = fs.statfsSync(env.source);
      assert.ok(bavail * bsize >= 4 * 600_000, `the disk has their room back: ${bavail * bsize}`);
      await assertInRiak(env, files);
      assert.equal(await env.store.tryStat("refused.bin"), undefined, "nothing half-written");
      // Room again, without a remount.
      const content = seededBytes(711, 300_000);
      await fsp.writeFile(join(env.mountpoint, "after.bin"), content);
      await eventually("after.bin in Riak", async () => !!(await env.store.tryStat("after.bin")));
      await assertInRiak(env, new Map([["after.bin", content]]));
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("drain over a source with no room for the spool's directory: it serves, and makes the spool once reads made room", async () => {
  await withSourceOnTmpfs({ sizeKiB: 4096, inodes: 64 }, async (env, disk) => {
    const files = legacyFiles(env, "old", 8, 50_000);
    disk.fillInodes(); // Not a directory more (a full ext4 has no block for one).
    const mounted = await mountOverSource(env);
    try {
      const written = join(env.mountpoint, "new.bin");
      assert.ok(await refusedForRoom(fsp.writeFile(written, "x")), "ENOSPC, not EIO");
      for (const name of files.keys()) await fsp.readFile(join(env.mountpoint, name));
      await eventually(
        "the local copies drained away",
        async () => (await fsp.readdir(join(env.source, "old"))).length === 0,
      );
      await fsp.writeFile(written, "room again");
      await eventually("new.bin in Riak", async () => !!(await env.store.tryStat("new.bin")));
      await assertInRiak(env, new Map([...files, ["new.bin", Buffer.from("room again")]]));
      assert.match(mounted.stderr(), /the spool is made now that its disk has room/);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("migrate over a full source: rm through the mount frees the disk, from Riak too", async () => {
  await withSourceOnTmpfs({ sizeKiB: 2048 }, async (env, disk) => {
    const files = legacyFiles(env, "old", 3, 300_000);
    disk.fill();
    const mounted = await mountOverSource(env, undefined, "migrate");
    try {
      // One of them is in Riak too (copied after it was read): its removal takes both.
      await fsp.readFile(join(env.mountpoint, "old/f0"));
      await eventually("old/f0 copied", async () => !!(await env.store.tryStat("old/f0")));
      for (const name of files.keys()) await fsp.unlink(join(env.mountpoint, name));
      assert.deepEqual(await fsp.readdir(join(env.source, "old")), []);
      assert.deepEqual(await fsp.readdir(join(env.mountpoint, "old")), []);
      assert.equal(await env.store.tryStat("old/f0"), undefined);
      await fsp.writeFile(join(env.mountpoint, "old/new.txt"), "room again");
      await eventually("new.txt in Riak", async () => !!(await env.store.tryStat("old/new.txt")));
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("a mount killed with its spool filling the disk comes up again over it and drains it", async () => {
  await withSourceOnTmpfs({ sizeKiB: 2048 }, async (env, disk) => {
    await env.riak.stop(); // Writes wait in the spool until the disk is full.
    const acknowledged = new Map<string, Uint8Array>();
    try {
      const first = await mountOverSource(env);
      for (let index = 0;; index++) {
        const name = `w${index}.bin`;
        const content = seededBytes(800 + index, 200_000);
        try {
          await fsp.writeFile(join(env.mountpoint, name), content);
        } catch (error) {
          assert.equal((error as NodeJS.ErrnoException).code, "ENOSPC", String(error));
          break;
        }
        acknowledged.set(name, content);
      }
      assert.ok(acknowledged.size > 3, `${acknowledged.size} writes before the disk was full`);
      await killMount(env, first);
    } finally {
      await env.riak.restart();
    }
    disk.fill(); // Not a byte left, the lock and the journal's rewrite included.
    const second = await mountOverSource(env);
    try {
      for (const name of acknowledged.keys()) {
        await eventually(`${name} in Riak`, async () => !!(await env.store.tryStat(name)));
      }
      await assertInRiak(env, acknowledged);
      await eventually(
        "the spool emptied",
        async () => (await fsp.readdir(join(env.source, ".riakfs-spool", "staged"))).length === 0,
      );
      await fsp.writeFile(join(env.mountpoint, "later.bin"), "room again");
    } finally {
      await env.unmount(second);
    }
  });
});

Deno.test("a spool removed while mounted is made again: no write close() acknowledged is lost", async () => {
  await withOverlayEnv(async (env) => {
    const mounted = await mountOverSource(env);
    try {
      const spool = join(env.source, ".riakfs-spool");
      // Open before the removal, written on both sides of it.
      const open = await fsp.open(join(env.mountpoint, "across.txt"), "w");
      await open.write("before the removal; ");
      fs.rmSync(spool, { recursive: true });
      await open.write("after it");
      await open.close();
      await eventually("across.txt in Riak", async () => !!(await env.store.tryStat("across.txt")));
      // Created after another removal.
      fs.rmSync(spool, { recursive: true });
      await fsp.writeFile(join(env.mountpoint, "small.txt"), "small");
      await eventually("small.txt in Riak", async () => !!(await env.store.tryStat("small.txt")));
      await assertInRiak(
        env,
        new Map([
          ["across.txt", Buffer.from("before the removal; after it")],
          ["small.txt", Buffer.from("small")],
        ]),
      );
      assert.ok(fs.existsSync(join(spool, "journal")), "the journal is there again");
      // With what it is written for: another namespace would not take its entries.
      assert.ok(fs.existsSync(join(spool, "namespace")), "the spool's namespace is recorded again");
      assert.match(mounted.stderr(), /the spool was removed while mounted: made again/);
    } finally {
      await env.unmount(mounted);
    }
  });
});

Deno.test("migrate: the temporary file a crash leaves while a file is fetched into SOURCE is removed by the next mount, never a user's", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(900, 3 * 1024 * 1024 + 17);
    await env.store.writeFile("fetched.bin", content, { mode: 0o644 });
    const [generation] = (await env.store.generationsAt(env.bucket, "fetched.bin"))!;
    const users = join(env.source, ".riakfs-publish-0123456789ab"); // A user's, by its name.
    fs.writeFileSync(users, "not riakfs's");
    const proxy = await startRiakProxy(env.riak.nodes[0]);
    try {
      const first = await env.mount("migrate", [], proxy.node);
      // The fetch into SOURCE waits for the file's second chunk: the temporary file is there.
      const held = proxy.holdGet(`${env.bucket}.chunks`, `${generation}.1`);
      const append = fsp.appendFile(join(env.mountpoint, "fetched.bin"), "more").catch(() => {});
      await held.reached;
      const leftovers = () =>
        fs.readdirSync(env.source).filter((name) =>
          name.startsWith(".riakfs-publish-") && join(env.source, name) !== users
        );
      assert.equal(leftovers().length, 1, "the fetch's temporary file");
      await killMount(env, first);
      held.release();
      await append;
      assert.equal(leftovers().length, 1, "left behind by the crash");
      const second = await env.mount("migrate");
      try {
        assert.deepEqual(leftovers(), [], "removed by the next mount");
        assert.equal(fs.readFileSync(users, "utf8"), "not riakfs's", "a user's file stays");
        assert.deepEqual(fs.readdirSync(env.mountpoint), ["fetched.bin"], "and is not listed");
      } finally {
        await env.unmount(second);
      }
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("a background mount whose log file is on the full disk serves on, and logs again once there is room", async () => {
  await withSourceOnTmpfs({ sizeKiB: 1024 }, async (env, disk) => {
    const logFile = join(env.source, "riakfs.log");
    fs.writeFileSync(logFile, "");
    const files = legacyFiles(env, "old", 1, 200_000);
    disk.fill();
    fs.mkdirSync(env.mountpoint, { recursive: true });
    const where = ["--run-dir", env.runDirectory];
    const started = await runRiakfs([
      "mount",
      "--preset",
      "drain",
      ...["--riak", env.riak.nodes.join(","), "--bucket", env.bucket],
      ...where,
      ...["--log-file", logFile],
      env.source,
      env.mountpoint,
    ]);
    const pidFile = fs.existsSync(env.runDirectory)
      ? fs.readdirSync(env.runDirectory).find((name) => name.endsWith(".pid"))
      : undefined;
    const pid = pidFile && Number(fs.readFileSync(join(env.runDirectory, pidFile), "utf8"));
    try {
      assert.equal(started.code, 0, started.stderr);
      // Its lines are lost meanwhile ("overlay ready"); the process must not die of it.
      for (const name of files.keys()) await fsp.readFile(join(env.mountpoint, name));
      await eventually(
        "the local copy drained away",
        async () => (await fsp.readdir(join(env.source, "old"))).length === 0,
      );
      const stopped = await runRiakfs(["umount", ...where, env.mountpoint]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(fs.readFileSync(logFile, "utf8"), /log lines lost: .* lines=\d+/);
    } finally {
      if (isMounted(env.mountpoint)) {
        await runRiakfs(["umount", "--lazy", ...where, env.mountpoint]);
      }
      if (pid && !await waitFor(() => !isProcessAlive(pid), 10_000)) process.kill(pid, "SIGKILL");
    }
  });
});
