import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ENTRY_OUT_SIZE,
  IN_HEADER_SIZE,
  InitFlag,
  Opcode,
  ReplyWriter,
  SetattrValid,
  utf8,
} from "./abi.ts";
import { type Entry, Errno, fail, type FileSystem, FuseError } from "./filesystem.ts";
import { FuseSession, type SessionOptions } from "./session.ts";

/** A session whose "device" is a plain file, so every reply can be read back. */
function harness(fileSystem: FileSystem, options: SessionOptions = {}) {
  const dir = fs.mkdtempSync(join(tmpdir(), "riakfs-session-"));
  const path = join(dir, "replies");
  const fd = fs.openSync(path, "w+");
  const logs: string[] = [];
  const session = new FuseSession(fd, fileSystem, { ...options, log: (m) => logs.push(m) });
  let unique = 0n;
  return {
    session,
    logs,
    /** Sends one request; resolves when it was answered (or needs no answer). */
    send(opcode: number, nodeid: number, body: Uint8Array = new Uint8Array(0), id?: bigint) {
      const request = new ReplyWriter(IN_HEADER_SIZE + body.byteLength);
      request.u32(IN_HEADER_SIZE + body.byteLength).u32(opcode).u64(id ?? ++unique).u64(nodeid);
      request.u32(1000).u32(100).u32(42).u32(0).raw(body);
      return session.handle(request.bytes);
    },
    /** Every reply written so far: unique, error, payload. */
    replies() {
      const bytes = new Uint8Array(fs.readFileSync(path));
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const out: { unique: bigint; error: number; payload: Uint8Array }[] = [];
      for (let offset = 0; offset < bytes.length;) {
        const len = view.getUint32(offset, true);
        out.push({
          unique: view.getBigUint64(offset + 8, true),
          error: view.getInt32(offset + 4, true),
          payload: bytes.subarray(offset + 16, offset + len),
        });
        offset += len;
      }
      return out;
    },
    close() {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const cstring = (text: string) => utf8(`${text}\0`);

function entryFor(nodeid: number): Entry {
  const time = { sec: 0, nsec: 0 };
  return {
    nodeid,
    entryTimeout: 1,
    attrTimeout: 1,
    attr: {
      ino: nodeid,
      size: 0,
      blocks: 0,
      atime: time,
      mtime: time,
      ctime: time,
      mode: 0o100644,
      nlink: 1,
      uid: 0,
      gid: 0,
      rdev: 0,
      blksize: 4096,
    },
  };
}

Deno.test("INIT takes what the kernel offers, with 1 MiB writes", async () => {
  const h = harness({ readdirplus: () => Promise.resolve() });
  try {
    const offer = new ReplyWriter(64).u32(7).u32(45).u32(131072).u32(0xffffffff).bytes;
    await h.send(Opcode.INIT, 0, offer);
    const [reply] = h.replies();
    assert.equal(reply.error, 0);
    const view = new DataView(reply.payload.buffer, reply.payload.byteOffset);
    assert.equal(view.getUint32(0, true), 7);
    assert.equal(view.getUint32(4, true), 45);
    const flags = view.getUint32(12, true);
    for (const flag of [InitFlag.ASYNC_READ, InitFlag.MAX_PAGES, InitFlag.DO_READDIRPLUS]) {
      assert.ok(flags & flag, `flag ${flag}`);
    }
    assert.equal(flags & InitFlag.WRITEBACK_CACHE, 0);
    assert.equal(view.getUint32(20, true), 1 << 20, "max_write");
    assert.equal(view.getUint16(28, true), 256, "max_pages");
    assert.equal(h.session.negotiated?.minor, 45);

    await h.send(Opcode.INIT, 0, new ReplyWriter(64).u32(7).u32(45).u32(131072).u32(0).bytes);
    const second = h.replies()[1].payload;
    assert.equal(
      new DataView(second.buffer, second.byteOffset).getUint32(12, true),
      0,
      "nothing offered, nothing taken",
    );
  } finally {
    h.close();
  }
});

Deno.test("AUTO_INVAL_DATA is asked for unless turned off", async () => {
  for (const autoInvalData of [true, false]) {
    const h = harness({}, { autoInvalData });
    try {
      await h.send(Opcode.INIT, 0, new ReplyWriter(64).u32(7).u32(45).u32(0).u32(0xffffffff).bytes);
      const reply = h.replies()[0].payload;
      const flags = new DataView(reply.buffer, reply.byteOffset).getUint32(12, true);
      assert.equal((flags & InitFlag.AUTO_INVAL_DATA) !== 0, autoInvalData);
    } finally {
      h.close();
    }
  }
});

Deno.test("an old kernel protocol is refused with EPROTO, and said so: the mount would never work", async () => {
  const h = harness({});
  let refusal: Error | undefined;
  h.session.initialized.catch((error: Error) => refusal = error);
  try {
    await h.send(Opcode.INIT, 0, new ReplyWriter(64).u32(7).u32(26).u32(0).u32(0).bytes);
    assert.equal(h.replies()[0].error, -Errno.EPROTO);
    assert.match(refusal?.message ?? "no refusal", /7\.26.*7\.31 or later/);
    assert.deepEqual(h.logs, [refusal?.message]);
  } finally {
    h.close();
  }
});

Deno.test("a missing method answers ENOSYS; unknown opcodes too", async () => {
  const h = harness({});
  try {
    await h.send(Opcode.LOOKUP, 1, cstring("x"));
    await h.send(999, 1);
    assert.deepEqual(h.replies().map((r) => r.error), [-Errno.ENOSYS, -Errno.ENOSYS]);
  } finally {
    h.close();
  }
});

Deno.test("errno from FuseError and from Node system errors; other throws are EIO and logged", async () => {
  const h = harness({
    lookup: (_ctx, _parent, name) => {
      if (name === "fuse") return Promise.reject(new FuseError(Errno.EACCES));
      if (name === "node") return Promise.reject(Object.assign(new Error("x"), { code: "ENOENT" }));
      if (name === "sync") throw new Error("thrown synchronously");
      return Promise.reject(new Error("a bug"));
    },
  });
  try {
    for (const name of ["fuse", "node", "bug", "sync"]) {
      await h.send(Opcode.LOOKUP, 1, cstring(name));
    }
    assert.deepEqual(h.replies().map((r) => r.error), [
      -Errno.EACCES,
      -Errno.ENOENT,
      -Errno.EIO,
      -Errno.EIO,
    ]);
    assert.equal(h.logs.length, 2);
    assert.match(h.logs[0], /LOOKUP.*a bug/);
  } finally {
    h.close();
  }
});

Deno.test("FORGET and BATCH_FORGET reach the filesystem and are never answered", async () => {
  const forgotten: [number, number][] = [];
  const h = harness({ forget: (node, n) => void forgotten.push([node, n]) });
  try {
    await h.send(Opcode.FORGET, 5, new ReplyWriter(8).u64(3).bytes);
    const batch = new ReplyWriter(40).u32(2).u32(0).u64(6).u64(1).u64(7).u64(2).bytes;
    await h.send(Opcode.BATCH_FORGET, 0, batch);
    assert.deepEqual(forgotten, [[5, 3], [6, 1], [7, 2]]);
    assert.equal(h.replies().length, 0);
  } finally {
    h.close();
  }
});

Deno.test("requests are served concurrently: a slow one does not hold back a fast one", async () => {
  let releaseSlow!: () => void;
  const slowGate = new Promise<void>((resolve) => releaseSlow = resolve);
  const h = harness({
    lookup: async (_ctx, _parent, name) => {
      if (name === "slow") await slowGate;
      return entryFor(name === "slow" ? 2 : 3);
    },
  });
  try {
    const slow = h.send(Opcode.LOOKUP, 1, cstring("slow"));
    await h.send(Opcode.LOOKUP, 1, cstring("fast"));
    assert.deepEqual(h.replies().map((r) => r.unique), [2n]);
    releaseSlow();
    await slow;
    assert.deepEqual(h.replies().map((r) => r.unique), [2n, 1n]);
    assert.equal(h.replies()[1].payload.length, ENTRY_OUT_SIZE);
  } finally {
    h.close();
  }
});

Deno.test("the deadline answers EIO and releases a handle opened too late", async () => {
  let finishOpen!: () => void;
  const released: number[] = [];
  const timedOut: string[] = [];
  const h = harness({
    open: async () => {
      await new Promise<void>((resolve) => finishOpen = resolve);
      return { fh: 77 };
    },
    release: (_ctx, _node, fh) => {
      released.push(fh);
      return Promise.resolve();
    },
  }, { requestTimeoutMs: 20, onTimedOut: (opcode) => timedOut.push(opcode) });
  try {
    await h.send(Opcode.OPEN, 2, new ReplyWriter(8).u32(0).u32(0).bytes);
    assert.deepEqual(h.replies().map((r) => r.error), [-Errno.EIO]);
    assert.match(h.logs[0], /OPEN.*timed out/);
    assert.deepEqual(timedOut, ["OPEN"], "told, so the mount counts the EIO its caller got");
    finishOpen();
    const deadline = Date.now() + 2000;
    while (released.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(released, [77]);
    assert.equal(h.replies().length, 1, "the late result is not sent");
  } finally {
    h.close();
  }
});

/** Resolves once `finish` is called: a handler that answers after the request's deadline. */
function late<T>(value: () => T): { run: () => Promise<T>; finish: () => void } {
  let finish!: () => void;
  const released = new Promise<void>((resolve) => finish = resolve);
  return { run: async () => (await released, value()), finish };
}

const lateReplies: [
  string,
  number,
  Uint8Array,
  (answer: ReturnType<typeof late>) => FileSystem,
  number[],
][] = [
  ["LOOKUP", Opcode.LOOKUP, cstring("late"), (answer) => ({
    lookup: () => answer.run().then(() => entryFor(9)),
  }), [9]],
  [
    "READDIRPLUS",
    Opcode.READDIRPLUS,
    new ReplyWriter(40).u64(1).u64(0).u32(4096).bytes,
    (answer) => ({
      readdirplus: (_ctx, _node, _fh, _offset, sink) =>
        answer.run().then(() => {
          sink.addPlus({ name: "a", ino: 11, mode: 0o100644, nextOffset: 1 }, entryFor(11));
          sink.addPlus({ name: "unlooked", ino: 12, mode: 0o100644, nextOffset: 2 }, undefined);
          sink.addPlus(
            { name: "a-longer-name", ino: 13, mode: 0o100644, nextOffset: 3 },
            entryFor(13),
          );
        }),
    }),
    [11, 13],
  ],
];

for (const [what, opcode, body, fileSystem, expected] of lateReplies) {
  Deno.test(`a ${what} answered after its deadline gives its lookup references back`, async () => {
    const answer = late(() => undefined);
    const forgotten: number[] = [];
    let allForgotten!: () => void;
    const done = new Promise<void>((resolve) => allForgotten = resolve);
    const h = harness({
      ...fileSystem(answer),
      forget: (nodeid, nlookup) => {
        assert.equal(nlookup, 1);
        forgotten.push(nodeid);
        if (forgotten.length === expected.length) allForgotten();
      },
    }, { requestTimeoutMs: 20 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await h.send(opcode, 1, body);
      assert.deepEqual(h.replies().map((r) => r.error), [-Errno.EIO]);
      answer.finish();
      const failed = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no forget of ${expected} within 2 s`)), 2000);
      });
      await Promise.race([done, failed]);
      assert.deepEqual(forgotten, expected);
      assert.equal(h.replies().length, 1, "the late result is not sent");
    } finally {
      clearTimeout(timer);
      h.close();
    }
  });
}

/** A RENAME of "a" to "b" in the root. */
const renameBody = () => {
  const names = utf8("a\0b\0");
  return new ReplyWriter(8 + names.byteLength).u64(1).raw(names).bytes;
};

Deno.test("a request committed to its changes answers how they went, past its deadline and an INTERRUPT", async () => {
  let committed!: () => void;
  const changing = new Promise<void>((resolve) => committed = resolve);
  let changed = false;
  const h = harness({
    rename: async (ctx) => {
      ctx.commit();
      committed();
      // Slower than the deadline: its timer was set first, so it has fired by now.
      await new Promise((resolve) => setTimeout(resolve, 100));
      changed = true;
    },
  }, { requestTimeoutMs: 20 });
  try {
    const rename = h.send(Opcode.RENAME, 1, renameBody(), 60n);
    await changing;
    await h.send(Opcode.INTERRUPT, 0, new ReplyWriter(8).u64(60).bytes);
    await rename;
    assert.ok(changed);
    assert.deepEqual(h.replies().map((r) => [r.unique, r.error]), [[60n, 0]]);
  } finally {
    h.close();
  }
});

Deno.test("a request past its deadline cannot commit: the EIO it answered stays true", async () => {
  let settled!: (outcome: string) => void;
  const outcome = new Promise<string>((resolve) => settled = resolve);
  const h = harness({
    rename: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        ctx.commit();
        settled("committed");
      } catch (error) {
        settled(`refused: ${(error as FuseError).errno}`);
        throw error;
      }
    },
  }, { requestTimeoutMs: 20 });
  try {
    await h.send(Opcode.RENAME, 1, renameBody());
    assert.deepEqual(h.replies().map((r) => r.error), [-Errno.EIO]);
    assert.equal(await outcome, `refused: ${Errno.ETIMEDOUT}`);
    assert.equal(h.replies().length, 1);
  } finally {
    h.close();
  }
});

Deno.test("a wait held off the deadline outlasts it; the deadline starts afresh after it", async () => {
  const took: string[] = [];
  const h = harness({
    rename: async (ctx) => {
      // A wait that keeps moving, five deadlines long: it bounds itself.
      await ctx.withoutDeadline(() => new Promise((resolve) => setTimeout(resolve, 100)));
      took.push("waited");
    },
    unlink: async (ctx) => {
      await ctx.withoutDeadline(() => Promise.resolve());
      // Slower than a whole deadline after the wait: the deadline applies again.
      await new Promise((resolve) => setTimeout(resolve, 100));
      took.push("late");
    },
  }, { requestTimeoutMs: 20 });
  try {
    await h.send(Opcode.RENAME, 1, renameBody(), 70n);
    await h.send(Opcode.UNLINK, 1, cstring("a"), 71n);
    assert.deepEqual(h.replies().map((r) => [r.unique, r.error]), [[70n, 0], [71n, -Errno.EIO]]);
    assert.deepEqual(took, ["waited"]);
  } finally {
    h.close();
  }
});

Deno.test("an INTERRUPT ends a wait held off the deadline: EINTR", async () => {
  let started!: () => void;
  const running = new Promise<void>((resolve) => started = resolve);
  const h = harness({
    rename: (ctx) =>
      ctx.withoutDeadline(() => {
        started();
        return new Promise<void>(() => {}); // Never moves on by itself.
      }),
  }, { requestTimeoutMs: 20 });
  try {
    const rename = h.send(Opcode.RENAME, 1, renameBody(), 80n);
    await running;
    await h.send(Opcode.INTERRUPT, 0, new ReplyWriter(8).u64(80).bytes);
    await rename;
    assert.deepEqual(h.replies().map((r) => [r.unique, r.error]), [[80n, -Errno.EINTR]]);
  } finally {
    h.close();
  }
});

Deno.test("INTERRUPT aborts the handler's signal; the request answers EINTR", async () => {
  let started!: () => void;
  const running = new Promise<void>((resolve) => started = resolve);
  const h = harness({
    read: (ctx) =>
      new Promise((_, reject) => {
        started();
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
      }),
  });
  try {
    const read = h.send(Opcode.READ, 2, new Uint8Array(40), 50n);
    await running;
    assert.equal(h.session.inFlight, 1);
    await h.send(Opcode.INTERRUPT, 0, new ReplyWriter(8).u64(50).bytes);
    await read;
    assert.deepEqual(h.replies().map((r) => [r.unique, r.error]), [[50n, -Errno.EINTR]]);
    assert.equal(h.session.inFlight, 0);
  } finally {
    h.close();
  }
});

Deno.test("READDIRPLUS stops at the kernel's buffer size and says so to the filesystem", async () => {
  const added: string[] = [];
  const h = harness({
    readdirplus: (_ctx, _node, _fh, offset, sink) => {
      for (let i = offset; i < 100; i++) {
        const name = `entry-${i}`;
        if (
          !sink.addPlus({ name, ino: i + 10, mode: 0o100644, nextOffset: i + 1 }, entryFor(i + 10))
        ) {
          break;
        }
        added.push(name);
      }
      return Promise.resolve();
    },
  });
  try {
    // Each entry takes 128 + 32 bytes; 1000 bytes hold 6 of them.
    const body = new ReplyWriter(40).u64(1).u64(0).u32(1000).bytes;
    await h.send(Opcode.READDIRPLUS, 1, body);
    assert.equal(added.length, 6);
    assert.equal(h.replies()[0].payload.length, 6 * 160);
  } finally {
    h.close();
  }
});

Deno.test("GETXATTR: size 0 asks for the length, a short buffer is ERANGE", async () => {
  const h = harness({ getxattr: () => Promise.resolve(utf8("value")) });
  try {
    const ask = (size: number) =>
      h.send(
        Opcode.GETXATTR,
        2,
        new Uint8Array([...new ReplyWriter(8).u32(size).bytes, ...cstring("user.k")]),
      );
    await ask(0);
    await ask(2);
    await ask(64);
    const [length, short, value] = h.replies();
    assert.equal(
      new DataView(length.payload.buffer, length.payload.byteOffset).getUint32(0, true),
      5,
    );
    assert.equal(short.error, -Errno.ERANGE);
    assert.equal(new TextDecoder().decode(value.payload), "value");
  } finally {
    h.close();
  }
});

Deno.test("a reply that comes after the connection ended is never written (the descriptor may be another file's by then); its reference is given back, a failing forget logged", async () => {
  let finish!: () => void;
  const forgotten: number[] = [];
  const h = harness({
    lookup: () => new Promise((resolve) => finish = () => resolve(entryFor(2))),
    forget: (nodeid) => {
      forgotten.push(nodeid);
      throw new Error("forget bug");
    },
  });
  try {
    const pending = h.send(Opcode.LOOKUP, 1, cstring("slow"));
    // Reads of the (empty) file end at once, as reads of /dev/fuse do at unmount.
    h.session.start();
    await h.session.closed;
    finish();
    await pending;
    assert.deepEqual(h.replies(), [], "nothing written after the end");
    assert.deepEqual(forgotten, [2]);
    assert.match(h.logs.at(-1) ?? "", /LOOKUP.*forget bug/);
  } finally {
    h.close();
  }
});

Deno.test("an INTERRUPT that overtakes its request (read by another reader) still interrupts it", async () => {
  const h = harness({
    read: (ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
      }),
  }, { requestTimeoutMs: 500 });
  try {
    await h.send(Opcode.INTERRUPT, 0, new ReplyWriter(8).u64(60).bytes, 61n);
    await h.send(Opcode.READ, 2, new Uint8Array(40), 60n);
    assert.deepEqual(h.replies().map((r) => [r.unique, r.error]), [[60n, -Errno.EINTR]]);
  } finally {
    h.close();
  }
});

Deno.test("a FORGET the filesystem fails on, or a malformed one, is logged; the session goes on", async () => {
  const h = harness({
    forget: () => {
      throw new Error("forget bug");
    },
    statfs: () => Promise.reject(new FuseError(Errno.EACCES)),
  });
  try {
    await h.send(Opcode.FORGET, 5, new ReplyWriter(8).u64(1).bytes);
    // The count says two items; only one follows.
    await h.send(Opcode.BATCH_FORGET, 0, new ReplyWriter(24).u32(2).u32(0).u64(6).u64(1).bytes);
    await h.send(Opcode.INTERRUPT, 0, new Uint8Array(4));
    await h.send(Opcode.STATFS, 1);
    assert.deepEqual(h.replies().map((r) => r.error), [-Errno.EACCES]);
    assert.equal(h.logs.length, 3);
    assert.match(h.logs[0], /FORGET.*forget bug/);
    assert.match(h.logs[1], /BATCH_FORGET.*too short/);
  } finally {
    h.close();
  }
});

Deno.test("an errno the kernel would refuse (0, negative, 512 and up) answers EIO: the request never hangs", async () => {
  const h = harness({
    lookup: (_ctx, _parent, name) => Promise.reject(new FuseError(Number(name))),
  });
  try {
    for (const errno of [0, -2, 512, 1.5, 511]) await h.send(Opcode.LOOKUP, 1, cstring(`${errno}`));
    assert.deepEqual(h.replies().map((r) => r.error), [
      -Errno.EIO,
      -Errno.EIO,
      -Errno.EIO,
      -Errno.EIO,
      -511,
    ]);
    assert.equal(h.logs.length, 4);
    assert.match(h.logs[1], /LOOKUP.*errno -2/);
  } finally {
    h.close();
  }
});

Deno.test("a WRITE, truncate or fallocate beyond 2^53 answers EFBIG and never reaches the filesystem rounded", async () => {
  const seen: number[] = [];
  const h = harness({
    write: (_ctx, _node, _fh, offset, data) => (seen.push(offset), Promise.resolve(data.length)),
    setattr: (_ctx, _node, changes) => (seen.push(changes.size!), Promise.reject(fail(Errno.EIO))),
    fallocate: (_ctx, _node, _fh, offset) => (seen.push(offset), Promise.resolve()),
  });
  try {
    const beyond = 2n ** 53n + 1n;
    await h.send(Opcode.WRITE, 2, new ReplyWriter(41).u64(1).u64(beyond).u32(1).bytes);
    const truncate = new ReplyWriter(88).u32(SetattrValid.SIZE).u32(0).u64(0).u64(beyond).bytes;
    await h.send(Opcode.SETATTR, 2, truncate);
    const end = Number.MAX_SAFE_INTEGER - 1;
    await h.send(Opcode.FALLOCATE, 2, new ReplyWriter(32).u64(1).u64(end).u64(2).bytes);
    assert.deepEqual(h.replies().map((r) => r.error), [-Errno.EFBIG, -Errno.EFBIG, -Errno.EFBIG]);
    assert.deepEqual(seen, []);
  } finally {
    h.close();
  }
});
