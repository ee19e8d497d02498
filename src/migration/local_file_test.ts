import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { currentIdentity, FileChangedError, type FileIdentity } from "./file_identity.ts";
import {
  hashBytes,
  isFileChanged,
  RACY_WINDOW_MS,
  racyForMs,
  readSmallUnchanged,
  readUnchanged,
} from "./local_file.ts";
import { SmallFileReaders } from "./small_file_readers.ts";

/** Writes a file and dates its change back past the racy window (utimes moves ctime to now). */
async function settledFile(path: string, content: string) {
  writeFileSync(path, content);
  utimesSync(path, new Date(1_000_000), new Date(1_000_000));
  await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 5));
  return (await currentIdentity(path))!;
}

Deno.test("readUnchanged streams an unchanged file in pieces", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
  try {
    const file = join(dir, "f");
    const identity = await settledFile(file, "0123456789");
    const pieces: string[] = [];
    for await (const piece of readUnchanged(file, identity, { readSize: 4 })) {
      pieces.push(piece.toString());
    }
    assert.deepEqual(pieces, ["0123", "4567", "89"]);
    const hashed = await hashBytes(readUnchanged(file, identity));
    assert.equal(hashed.size, 10);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("readUnchanged throws FileChangedError when the file changes while read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
  try {
    const file = join(dir, "f");
    const identity = await settledFile(file, "0123456789");
    const reading = readUnchanged(file, identity, { readSize: 4 });
    await reading.next();
    writeFileSync(file, "abcdefghij"); // same size, new content: ctime moves
    await assert.rejects(async () => {
      for await (const _ of reading) { /* drain */ }
    }, FileChangedError);
    // Replaced, or changed before the read started.
    await assert.rejects(hashBytes(readUnchanged(file, identity)), FileChangedError);
    // Changed within the racy window: not provably whole yet.
    const fresh = (await currentIdentity(file))!;
    await assert.rejects(hashBytes(readUnchanged(file, fresh)), FileChangedError);
    assert.equal(isFileChanged(new Error("wrapped", { cause: new FileChangedError("x") })), true);
    assert.equal(isFileChanged(new Error("other")), false);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

/** The two ways a small file is read whole: blocking on this thread, and on reader threads. */
const smallReads: [string, (readers: SmallFileReaders) => SmallRead][] = [
  [
    "readSmallUnchanged",
    // A throw becomes a rejection, as the threads' reads report it.
    () => (file, identity, name) =>
      new Promise((resolve) => resolve(readSmallUnchanged(file, identity, { displayName: name }))),
  ],
  [
    "SmallFileReaders",
    (readers) => (file, identity, name) => readers.read(Buffer.from(file), identity, name ?? file),
  ],
];
type SmallRead = (file: string, identity: FileIdentity, name?: string) => Promise<Buffer>;

for (const [what, readerOf] of smallReads) {
  Deno.test(`${what} reads a settled file whole and refuses any other version`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
    // slowReadMs 0: every read counts as slow, so the first reads run here, the rest on threads.
    const readers = new SmallFileReaders(2, { slowReadMs: 0 });
    const read = readerOf(readers);
    try {
      const file = join(dir, "f");
      const identity = await settledFile(file, "0123456789");
      assert.equal((await read(file, identity)).toString(), "0123456789");
      const empty = join(dir, "empty");
      assert.equal((await read(empty, await settledFile(empty, ""))).length, 0);

      // Grown, rewritten in place, replaced by a rename, removed: never the expected version.
      writeFileSync(file, "0123456789+");
      await assert.rejects(read(file, identity, "f"), FileChangedError);
      const same = await settledFile(file, "0123456789");
      writeFileSync(join(dir, "g"), "abcdefghij");
      utimesSync(join(dir, "g"), new Date(1_000_000), new Date(1_000_000));
      renameSync(join(dir, "g"), file);
      await assert.rejects(read(file, same), FileChangedError);
      unlinkSync(file);
      await assert.rejects(read(file, same), FileChangedError);
      // A FIFO or a symlink in the file's place: refused at once, never waited on or followed.
      execFileSync("mkfifo", [file]);
      await assert.rejects(read(file, same), FileChangedError);
      unlinkSync(file);
      symlinkSync(join(dir, "empty"), file);
      await assert.rejects(read(file, same), FileChangedError);
      unlinkSync(file);

      // Written just now: not provably whole yet (the racy window). The clock stands at the
      // write, as for a read right after it: on a loaded machine more than the window may
      // pass between the two, and the read would rightly take the file.
      writeFileSync(file, "fresh");
      const fresh = (await currentIdentity(file))!;
      const clock = Date.now;
      Date.now = () => Number(fresh.mtimeNs / 1_000_000n);
      try {
        await assert.rejects(read(file, fresh), FileChangedError);
      } finally {
        Date.now = clock;
      }
    } finally {
      await readers.close();
      rmSync(dir, { recursive: true });
    }
  });
}

Deno.test("SmallFileReaders: many reads at once, on threads, each its own file's bytes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
  const readers = new SmallFileReaders(3, { slowReadMs: 0 });
  try {
    const files = Array.from({ length: 40 }, (_, i) => join(dir, `f${i}`));
    const identities: FileIdentity[] = [];
    for (const [i, file] of files.entries()) {
      writeFileSync(file, `file ${i} `.repeat(i * 100));
      utimesSync(file, new Date(1_000_000), new Date(1_000_000));
    }
    await new Promise((resolve) => setTimeout(resolve, RACY_WINDOW_MS + 5));
    for (const file of files) identities.push((await currentIdentity(file))!);
    const contents = await Promise.all(
      files.map((file, i) => readers.read(Buffer.from(file), identities[i], file)),
    );
    for (const [i, content] of contents.entries()) {
      assert.equal(content.toString(), `file ${i} `.repeat(i * 100));
    }
    assert.equal(readers.onThreads, true, "the reads ran on reader threads");
  } finally {
    await readers.close();
    rmSync(dir, { recursive: true });
  }
});

Deno.test("SmallFileReaders.lstat answers as lstat(2) does, blocking while fast and then on the pool", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
  // slowReadMs 0: every call counts as slow, so the first ones block and the rest do not.
  const readers = new SmallFileReaders(2, { slowReadMs: 0 });
  try {
    const file = join(dir, "f");
    writeFileSync(file, "0123");
    for (let call = 0; call < 6; call++) {
      const stats = await readers.lstat(Buffer.from(file));
      assert.equal(stats?.size, 4n);
      assert.equal(stats?.ino, lstatSync(file, { bigint: true }).ino);
      assert.equal(await readers.lstat(Buffer.from(join(dir, "missing"))), undefined);
    }
  } finally {
    await readers.close();
    rmSync(dir, { recursive: true });
  }
});

Deno.test("readUnchanged and readSmallUnchanged leave the access time alone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-local-"));
  try {
    const file = join(dir, "f");
    const identity = await settledFile(file, "read by the migration, not by a user");
    const atimeMs = () => lstatSync(file).atimeMs;
    await hashBytes(readUnchanged(file, identity));
    readSmallUnchanged(file, identity);
    assert.equal(atimeMs(), 1_000_000, "untouched by the migration's reads");
    // A plain read moves it here (relatime: an access time older than a day), so the
    // check above means something.
    readFileSync(file);
    assert.ok(atimeMs() > 1_000_000, "a plain read moves it");
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("a file whose times are whole seconds (ext3, FAT, NFS from them) is racy until its second and a tick have passed: a rewrite within that second leaves size, mtime and ctime as they were", () => {
  const SECOND_NS = 1_000_000_000n;
  const nowMs = Date.now();
  const nowNs = BigInt(nowMs) * 1_000_000n;
  const at = (ns: bigint): FileIdentity => ({
    size: 4n,
    mtimeNs: ns,
    ctimeNs: ns,
    ino: 1n,
    dev: 1n,
  });
  // As the shipped binary (Node) reports times, to the nanosecond.
  const racy = (identity: FileIdentity) => racyForMs(identity, nowMs, true) > 0;
  // Shown as the whole second before now: the change may have come up to a second later.
  const wholeSecondAgo = (nowNs / SECOND_NS) * SECOND_NS - SECOND_NS;
  assert.equal(racy(at(wholeSecondAgo)), true);
  assert.equal(racy(at(wholeSecondAgo - 2n * SECOND_NS)), false);
  // A filesystem with finer times shows a change as it came: a second ago is long past.
  assert.equal(racy(at(nowNs - SECOND_NS + 123n)), false);
});
