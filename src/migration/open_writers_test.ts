import assert from "node:assert/strict";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CAN_MOUNT, holdOpen } from "./_test_support.ts";
import { RACY_WINDOW_MS } from "./local_file.ts";
import { OpenWriters, writesThrough } from "./open_writers.ts";

function withFile(body: (file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-writers-"));
  const file = join(dir, "daemon.log");
  writeFileSync(file, "line 0\n");
  return body(file).finally(() => rmSync(dir, { recursive: true }));
}

function openForWriting(writers: OpenWriters, file: string): Promise<boolean> {
  const { dev, ino } = statSync(file, { bigint: true });
  return writers.isOpenForWriting(dev, ino);
}

Deno.test("fdinfo flags: write-only and read-write count, read-only does not, whatever else is set", () => {
  assert.equal(writesThrough("pos:\t0\nflags:\t0102001\nmnt_id:\t25\n"), true, "O_WRONLY|O_APPEND");
  assert.equal(writesThrough("pos:\t0\nflags:\t02\nmnt_id:\t25\n"), true, "O_RDWR");
  assert.equal(writesThrough("pos:\t0\nflags:\t0100000\nmnt_id:\t25\n"), false, "O_RDONLY");
  assert.equal(writesThrough("pos:\t0\nflags:\t02100000\n"), false, "O_RDONLY|O_CLOEXEC");
  assert.equal(writesThrough("pos:\t0\nmnt_id:\t25\n"), false, "no flags line");
});

Deno.test("a file another process holds open for writing is seen; once it is closed, it is not", async () => {
  await withFile(async (file) => {
    const holder = await holdOpen(file, ">>");
    try {
      assert.equal(await openForWriting(new OpenWriters({ maxAgeMs: 0 }), file), true);
    } finally {
      await holder.release();
    }
    assert.equal(await openForWriting(new OpenWriters({ maxAgeMs: 0 }), file), false);
  });
});

Deno.test("a file another process holds open only for reading is not taken as written", async () => {
  await withFile(async (file) => {
    const holder = await holdOpen(file, "<");
    try {
      assert.equal(await openForWriting(new OpenWriters({ maxAgeMs: 0 }), file), false);
    } finally {
      await holder.release();
    }
  });
});

Deno.test("this process's own handles do not count: its writes are its own", async () => {
  await withFile(async (file) => {
    const fd = openSync(file, "a");
    try {
      assert.equal(await openForWriting(new OpenWriters({ maxAgeMs: 0 }), file), false);
      const asIfAnother = new OpenWriters({ maxAgeMs: 0, ownPid: -1 });
      assert.equal(await openForWriting(asIfAnother, file), true);
    } finally {
      closeSync(fd);
    }
  });
});

/**
 * Runs `body` once an index was built at 1,000 ms (the file not held) and another process
 * then opened the file for writing; `advance` moves the index's clock on.
 */
function heldAfterIndexBuilt(
  body: (file: string, writers: OpenWriters, advance: (ms: number) => void) => Promise<void>,
): Promise<void> {
  return withFile(async (file) => {
    let now = 1_000;
    const writers = new OpenWriters({ maxAgeMs: 1000, now: () => now });
    assert.equal(await openForWriting(writers, file), false);
    const holder = await holdOpen(file, ">>");
    try {
      await body(file, writers, (ms) => now += ms);
    } finally {
      await holder.release();
    }
  });
}

Deno.test("one index serves for maxAgeMs, then /proc is read again", async () => {
  await heldAfterIndexBuilt(async (file, writers, advance) => {
    advance(999);
    assert.equal(await openForWriting(writers, file), false, "the index of a moment ago");
    advance(1);
    assert.equal(await openForWriting(writers, file), true, "built again");
  });
});

Deno.test("an index built before the file last changed is built anew: it may know another file under the inode number, or not yet the file's writer", async () => {
  await heldAfterIndexBuilt(async (file, writers, advance) => {
    advance(10);
    const { dev, ino } = statSync(file, { bigint: true });
    const builtAtNs = 1_000n * 1_000_000n;
    const windowNs = BigInt(RACY_WINDOW_MS) * 1_000_000n;
    assert.equal(
      await writers.isOpenForWriting(dev, ino, builtAtNs - windowNs - 1n),
      false,
      "older",
    );
    assert.equal(await writers.isOpenForWriting(dev, ino, builtAtNs), true, "built again");
  });
});

// The kernel stamps ctime from its coarse clock, up to a tick behind: a file made (under an
// inode number another process's file, open for writing when the index was read, freed just
// then) moments after the index was begun may show a ctime before it. Taken for that file, it
// was kept by drains as in use (overlay tests running side by side failed so, 5 in 18).
Deno.test("an index begun less than a clock tick before the file's ctime is built anew too", async () => {
  await heldAfterIndexBuilt(async (file, writers, advance) => {
    advance(10);
    const { dev, ino } = statSync(file, { bigint: true });
    const tickBeforeBuildNs = 1_000n * 1_000_000n - 4_000_000n;
    assert.equal(await writers.isOpenForWriting(dev, ino, tickBeforeBuildNs), true);
  });
});

Deno.test("without /proc nothing is known to be open", async () => {
  await withFile(async (file) => {
    const writers = new OpenWriters({ procRoot: join(file, "no-proc-here"), maxAgeMs: 0 });
    assert.equal(await openForWriting(writers, file), false);
  });
});

Deno.test("a file on a riakfs mount is never stat'ed (from the mount's own thread that stat would wait on itself); one on any other mount is", async () => {
  await withFile(async (file) => {
    const proc = mkdtempSync(join(tmpdir(), "riakfs-proc-"));
    try {
      // A process 4242 holds `file` open for writing as descriptor 3, on mount 99.
      mkdirSync(join(proc, "self"));
      mkdirSync(join(proc, "4242", "fd"), { recursive: true });
      mkdirSync(join(proc, "4242", "fdinfo"));
      symlinkSync(file, join(proc, "4242", "fd", "3"));
      writeFileSync(join(proc, "4242", "fdinfo", "3"), "pos:\t7\nflags:\t0102001\nmnt_id:\t99\n");
      // `mountinfo` of a namespace (this one's: "self") where `id` is a mount of `type`.
      const mountedAs = (namespace: string, id: number, type: string) =>
        writeFileSync(
          join(proc, namespace, "mountinfo"),
          `1 0 8:1 / / rw - ext4 /dev/sda1 rw\n${id} 1 0:99 / /srv/images rw - ${type} /srv/images rw\n`,
        );
      const seen = () => openForWriting(new OpenWriters({ procRoot: proc, maxAgeMs: 0 }), file);
      mountedAs("self", 99, "fuse.riakfs");
      assert.equal(await seen(), false);
      mountedAs("self", 99, "fuse.sshfs");
      assert.equal(await seen(), true);
      // A mount of another namespace (not in this one's mountinfo): as that namespace's
      // mountinfo says, and passed over where it cannot be read.
      writeFileSync(join(proc, "4242", "fdinfo", "3"), "pos:\t7\nflags:\t0102001\nmnt_id:\t7\n");
      assert.equal(await seen(), false, "no mountinfo of its namespace to go by");
      mountedAs("4242", 7, "fuse.riakfs");
      assert.equal(await seen(), false);
      mountedAs("4242", 7, "ext4");
      assert.equal(await seen(), true);
    } finally {
      rmSync(proc, { recursive: true });
    }
  });
});

Deno.test({
  name:
    "a file a process of another mount namespace holds open for writing is seen (a systemd service with PrivateTmp=, a container)",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withFile(async (file) => {
      const holder = await holdOpen(file, ">>", { ownMountNamespace: true });
      try {
        assert.equal(await openForWriting(new OpenWriters({ maxAgeMs: 0 }), file), true);
      } finally {
        await holder.release();
      }
    });
  },
});
