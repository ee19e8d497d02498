import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { type FileHandle, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileStat, Store } from "../store/store.ts";
import { readAt } from "./file_bytes.ts";
import { type Handle, HandleTable, type RiakHandle } from "./handle_table.ts";
import { RemovedWhileOpen } from "./removed_copies.ts";
import { Spool } from "./spool.ts";

/** What a {@link RemovedWhileOpen} under test works on, and what its fakes saw. */
interface Copies {
  copies: RemovedWhileOpen;
  /** The mount's open handles. */
  handles: HandleTable;
  /** Riak's bytes by path (the fake store reads them in two pieces). */
  riak: Map<string, Buffer>;
  /** The operations run under the Riak deadline, in order. */
  runs: string[];
  /** The pieces the store was told to free. */
  released: number;
  /** The files the spool made, closed or not (a closed one's fd is -1). */
  made: FileHandle[];
  /** The names left in the spool's staged directory. */
  staged(): Promise<string[]>;
}

/** A Riak handle of `path` opened at the version `content`. */
function riakHandle(path: string, content: Buffer): RiakHandle {
  const sha256 = createHash("sha256").update(content).digest("hex");
  // The copies look at the path and version only: its reads are the overlay's business.
  return {
    kind: "riak",
    path,
    stat: { sha256 } as FileStat,
    version: { path, version: sha256, size: content.length },
  } as RiakHandle;
}

/**
 * Runs `body` with a {@link RemovedWhileOpen} over a real spool in a temporary directory and a
 * fake store; `beforeRead` runs as the store begins to read a path.
 */
async function withCopies(
  body: (c: Copies) => Promise<void>,
  options: {
    limitBytes?: number;
    beforeRead?: (path: string, handles: HandleTable) => void;
  } = {},
): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "riakfs-removed-copies-"));
  try {
    const spool = Spool.open(join(directory, "spool"));
    const handles = new HandleTable();
    const riak = new Map<string, Buffer>();
    const c: Copies = {
      copies: undefined as unknown as RemovedWhileOpen,
      handles,
      riak,
      runs: [],
      released: 0,
      made: [],
      staged: () => readdir(join(directory, "spool", "staged")),
    };
    const readRange = async function* (path: string): AsyncGenerator<Buffer> {
      options.beforeRead?.(path, handles);
      const content = riak.get(path);
      if (content === undefined) throw new Error(`${path}: not found`);
      const half = Math.ceil(content.length / 2);
      yield content.subarray(0, half);
      yield content.subarray(half);
    } as Store["readRange"];
    c.copies = new RemovedWhileOpen({
      spool: {
        create: async () => {
          const staged = await spool.create();
          c.made.push(staged.handle);
          return staged;
        },
        remove: (name) => spool.remove(name),
      },
      store: { readRange, releaseRead: () => void c.released++ },
      riak: {
        run: (operation, request) => {
          c.runs.push(operation);
          return request();
        },
      },
      handles,
      limitBytes: options.limitBytes,
    });
    try {
      await body(c);
    } finally {
      for (const file of c.made) if (file.fd !== -1) await file.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The bytes a handle reads from its copy. */
async function copied(handle: RiakHandle): Promise<Buffer> {
  assert.ok(handle.removedCopy, `${handle.path} has no copy`);
  return Buffer.from(await readAt(handle.removedCopy.file, 0, handle.version.size + 1));
}

Deno.test("the Riak handles of a removed file share one unlinked spool copy of Riak's bytes", async () => {
  await withCopies(async (c) => {
    const content = Buffer.from("the bytes opened");
    c.riak.set("/f", content);
    c.riak.set("/other", Buffer.from("not removed"));
    const first = riakHandle("/f", content);
    const second = riakHandle("/f", content);
    const other = riakHandle("/other", Buffer.from("not removed"));
    for (const handle of [first, second, other]) c.handles.add(handle);
    await c.copies.copyOpenContent("/f");
    assert.equal(first.removedCopy, second.removedCopy);
    assert.equal(first.removedCopy?.handles, 2);
    assert.equal(first.removedCopy?.size, content.length);
    assert.deepEqual(await copied(first), content);
    assert.equal(other.removedCopy, undefined);
    // Read under the Riak deadline, each piece freed once written.
    assert.deepEqual(c.runs, ["read /f", "read /f", "read /f"]);
    assert.equal(c.released, 2);
    // Nothing of it in the spool for a restart to find.
    assert.deepEqual(await c.staged(), []);
  });
});

Deno.test("a copy stays open until the last handle reading it is released", async () => {
  await withCopies(async (c) => {
    const content = Buffer.from("kept for two");
    c.riak.set("/f", content);
    const first = riakHandle("/f", content);
    const second = riakHandle("/f", content);
    const [one, two] = [c.handles.add(first), c.handles.add(second)];
    await c.copies.copyOpenContent("/f");
    c.handles.remove(one);
    await c.copies.released(first);
    assert.notEqual(c.made[0].fd, -1);
    assert.deepEqual(await copied(second), content);
    c.handles.remove(two);
    await c.copies.released(second);
    assert.equal(c.made[0].fd, -1);
  });
});

Deno.test("with no Riak handle open, a removal copies nothing and asks Riak nothing", async () => {
  await withCopies(async (c) => {
    c.riak.set("/f", Buffer.from("bytes"));
    c.handles.add({ kind: "write", path: "/f" } as Handle);
    await c.copies.copyOpenContent("/f");
    assert.deepEqual(c.runs, []);
    assert.deepEqual(c.made, []);
  });
});

Deno.test("a handle that holds a copy already is not copied again (renamed, then removed)", async () => {
  await withCopies(async (c) => {
    const content = Buffer.from("copied once");
    c.riak.set("/f", content);
    const handle = riakHandle("/f", content);
    c.handles.add(handle);
    await c.copies.copyOpenContent("/f");
    const copy = handle.removedCopy;
    await c.copies.copyOpenContent("/f");
    assert.equal(handle.removedCopy, copy);
    assert.equal(c.made.length, 1);
  });
});

Deno.test("a handle of another version than Riak holds now gets no copy; the one made is closed", async () => {
  await withCopies(async (c) => {
    const now = Buffer.from("written elsewhere since");
    c.riak.set("/f", now);
    const old = riakHandle("/f", Buffer.from("the version opened before"));
    const current = riakHandle("/f", now);
    c.handles.add(old);
    c.handles.add(current);
    await c.copies.copyOpenContent("/f");
    assert.equal(old.removedCopy, undefined);
    assert.deepEqual(await copied(current), now);
    assert.equal(c.made.length, 2);
    assert.equal(c.made.filter((file) => file.fd === -1).length, 1);
    assert.deepEqual(await c.staged(), []);
  });
});

Deno.test("a Riak read that fails leaves the handles without a copy and does not throw", async () => {
  await withCopies(async (c) => {
    const handle = riakHandle("/gone", Buffer.from("no longer in Riak"));
    c.handles.add(handle);
    await c.copies.copyOpenContent("/gone");
    assert.equal(handle.removedCopy, undefined);
    assert.equal(c.made.length, 1);
    assert.equal(c.made[0].fd, -1);
    assert.deepEqual(await c.staged(), []);
  });
});

Deno.test("the copies held stay within the limit: one over it is not made until another is released", async () => {
  await withCopies(async (c) => {
    const a = Buffer.from("8 bytes!");
    const b = Buffer.from("five!");
    c.riak.set("/a", a).set("/b", b);
    const onA = riakHandle("/a", a);
    const onB = riakHandle("/b", b);
    const openA = c.handles.add(onA);
    c.handles.add(onB);
    await c.copies.copyOpenContent("/a");
    await c.copies.copyOpenContent("/b");
    assert.ok(onA.removedCopy);
    assert.equal(onB.removedCopy, undefined, "8 + 5 bytes are over the limit of 10");
    assert.equal(c.made.length, 1);
    c.handles.remove(openA);
    await c.copies.released(onA);
    await c.copies.copyOpenContent("/b");
    assert.deepEqual(await copied(onB), b);
  }, { limitBytes: 10 });
});

Deno.test("a copy whose handles all closed while it was made is closed at once, its bytes freed", async () => {
  let closing: number | undefined;
  await withCopies(async (c) => {
    const content = Buffer.from("ten bytes!");
    c.riak.set("/f", content).set("/g", content);
    const early = riakHandle("/f", content);
    const later = riakHandle("/g", content);
    closing = c.handles.add(early);
    c.handles.add(later);
    await c.copies.copyOpenContent("/f");
    assert.equal(early.removedCopy, undefined);
    assert.equal(c.made[0].fd, -1);
    // The limit holds one copy of this size: the first one no longer counts.
    await c.copies.copyOpenContent("/g");
    assert.deepEqual(await copied(later), content);
  }, {
    limitBytes: 10,
    // The handle is released while Riak's bytes are read (its RELEASE answered meanwhile).
    beforeRead: (_path, handles) => {
      if (closing === undefined) return;
      handles.remove(closing);
      closing = undefined;
    },
  });
});
