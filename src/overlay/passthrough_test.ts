import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryBuffer } from "../fuse/session.ts";
import { Errno, FuseError, type LocalFiles, type LocalNodes, ROOT_NODE_ID } from "../fuse/mod.ts";
import { ROOT_CTX } from "./_overlay_fixture.ts";
import { openPassthrough } from "./passthrough.ts";

const ctx = ROOT_CTX;

async function withSource(body: (source: string) => Promise<void>): Promise<void> {
  const source = fs.mkdtempSync(join(tmpdir(), "riakfs-passthrough-"));
  try {
    await body(source);
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
  }
}

Deno.test("lookups are counted and forget frees nodes, parents last", async () => {
  await withSource(async (source) => {
    fs.mkdirSync(join(source, "d"));
    fs.writeFileSync(join(source, "d/f"), "x");
    const pfs = await openPassthrough(source);
    const dir = await pfs.lookup(ctx, ROOT_NODE_ID, "d");
    const file = await pfs.lookup(ctx, dir.nodeid, "f");
    const again = await pfs.lookup(ctx, dir.nodeid, "f");
    assert.equal(again.nodeid, file.nodeid, "one node per source inode");
    assert.equal(file.attr.ino, fs.statSync(join(source, "d/f")).ino);
    assert.equal(pfs.liveNodes, 3);
    pfs.forget(dir.nodeid, 1);
    assert.equal(pfs.liveNodes, 3, "a directory with a live child stays");
    pfs.forget(file.nodeid, 1);
    assert.equal(pfs.liveNodes, 3);
    pfs.forget(file.nodeid, 1);
    assert.equal(pfs.liveNodes, 1, "child and then parent are freed");
  });
});

Deno.test("a rename moves the node and its subtree", async () => {
  await withSource(async (source) => {
    fs.mkdirSync(join(source, "a"));
    fs.writeFileSync(join(source, "a/f"), "x");
    fs.mkdirSync(join(source, "b"));
    const pfs = await openPassthrough(source);
    const a = await pfs.lookup(ctx, ROOT_NODE_ID, "a");
    const b = await pfs.lookup(ctx, ROOT_NODE_ID, "b");
    const f = await pfs.lookup(ctx, a.nodeid, "f");
    await pfs.rename(ctx, ROOT_NODE_ID, "a", b.nodeid, "moved", 0);
    const attr = await pfs.getattr(ctx, f.nodeid, undefined);
    assert.equal(attr.attr.ino, f.attr.ino, "the file is found at its new path");
    assert.equal(fs.readFileSync(join(source, "b/moved/f"), "utf8"), "x");
  });
});

Deno.test("names that could climb out are refused", async () => {
  await withSource(async (source) => {
    const pfs = await openPassthrough(source);
    for (const name of ["..", ".", "a/b", ""]) {
      await assert.rejects(
        pfs.lookup(ctx, ROOT_NODE_ID, name),
        (error: FuseError) => error.errno === Errno.EINVAL,
      );
    }
    await assert.rejects(
      pfs.lookup(ctx, ROOT_NODE_ID, "x".repeat(256)),
      (error: FuseError) => error.errno === Errno.ENAMETOOLONG,
    );
    await assert.rejects(
      pfs.getattr(ctx, 12345, undefined),
      (error: FuseError) => error.errno === Errno.ESTALE,
    );
  });
});

Deno.test("READDIRPLUS takes a lookup only for entries that were sent", async () => {
  await withSource(async (source) => {
    for (let i = 0; i < 50; i++) fs.writeFileSync(join(source, `f${i}`), "");
    const pfs = await openPassthrough(source);
    const dir = await pfs.opendir(ctx, ROOT_NODE_ID);
    const sink = new DirectoryBuffer(4096); // . and .. plus about 23 entries
    await pfs.readdirplus(ctx, ROOT_NODE_ID, dir.fh, 0, sink);
    const sent = Math.floor((4096 - 2 * 160) / 160);
    assert.equal(pfs.liveNodes, 1 + sent);
    const rest = new DirectoryBuffer(64 * 1024);
    await pfs.readdirplus(ctx, ROOT_NODE_ID, dir.fh, 2 + sent, rest);
    assert.equal(pfs.liveNodes, 51);
    await pfs.releasedir(ctx, ROOT_NODE_ID, dir.fh);
  });
});

Deno.test("create chowns to the caller and keeps the requested mode", async () => {
  await withSource(async (source) => {
    const pfs = await openPassthrough(source);
    const caller = { ...ctx, uid: 1234, gid: 5678 };
    const created = await pfs.create(caller, ROOT_NODE_ID, "new", fs.constants.O_WRONLY, 0o4755);
    await pfs.write(
      caller,
      created.entry.nodeid,
      created.opened.fh,
      0,
      new TextEncoder().encode("hi"),
    );
    await pfs.release(caller, created.entry.nodeid, created.opened.fh);
    const stat = fs.statSync(join(source, "new"));
    assert.deepEqual([stat.uid, stat.gid, stat.mode & 0o7777], [1234, 5678, 0o4755]);
    assert.equal(fs.readFileSync(join(source, "new"), "utf8"), "hi");
  });
});

/** A LocalNodes that keeps the links like the reader threads do and rebuilds paths. */
class RecordedNodes implements LocalNodes {
  readonly supported = true;
  readonly links = new Map<
    number,
    { parent: number; name: string; attrTimeout: number; ino?: number; regular?: boolean }
  >();
  files: LocalFiles | undefined;
  #nextNodeId = 0;
  set: LocalNodes["set"] = (nodeid, parent, name, attrTimeout, ino, regular) => {
    this.links.set(nodeid, { parent, name, attrTimeout, ino, regular });
  };
  serveFiles(files: LocalFiles): void {
    this.files = files;
    this.#nextNodeId = files.firstNodeId;
  }
  allocateNodeId(): number {
    return this.#nextNodeId++;
  }
  unserveHandle(): void {}
  delete(nodeid: number): void {
    this.links.delete(nodeid);
  }
  pathOf(nodeid: number): string | undefined {
    const names: string[] = [];
    for (let link = this.links.get(nodeid); link; link = this.links.get(link.parent)) {
      names.push(link.name);
      if (link.parent === 0) return names.reverse().join("/");
    }
    return undefined;
  }
}

Deno.test("the reader threads' node table follows lookups, renames and forgets", async () => {
  await withSource(async (source) => {
    fs.mkdirSync(join(source, "a"));
    fs.writeFileSync(join(source, "a/f"), "x");
    fs.mkdirSync(join(source, "b"));
    const pfs = await openPassthrough(source, { attrTimeout: 0.5 });
    const nodes = new RecordedNodes();
    pfs.attachLocalNodes(nodes);
    assert.equal(nodes.pathOf(ROOT_NODE_ID), pfs.source);
    const a = await pfs.lookup(ctx, ROOT_NODE_ID, "a");
    const b = await pfs.lookup(ctx, ROOT_NODE_ID, "b");
    const f = await pfs.lookup(ctx, a.nodeid, "f");
    assert.equal(nodes.pathOf(f.nodeid), join(pfs.source, "a/f"));
    assert.equal(nodes.links.get(f.nodeid)?.attrTimeout, 0.5);
    assert.equal(nodes.links.get(f.nodeid)?.ino, f.attr.ino, "GETATTRs check the inode");
    assert.equal(nodes.links.get(ROOT_NODE_ID)?.ino, fs.statSync(source).ino);

    await pfs.rename(ctx, ROOT_NODE_ID, "a", b.nodeid, "moved", 0);
    assert.equal(nodes.pathOf(f.nodeid), join(pfs.source, "b/moved/f"), "the subtree moved");
    await pfs.rename(ctx, a.nodeid, "f", ROOT_NODE_ID, "g", 0);
    assert.equal(nodes.pathOf(f.nodeid), join(pfs.source, "g"));

    const created = await pfs.create(ctx, b.nodeid, "new", fs.constants.O_WRONLY, 0o644);
    await pfs.release(ctx, created.entry.nodeid, created.opened.fh);
    assert.equal(nodes.pathOf(created.entry.nodeid), join(pfs.source, "b/new"));

    pfs.forget(f.nodeid, 1);
    pfs.forget(created.entry.nodeid, 1);
    pfs.forget(a.nodeid, 1);
    pfs.forget(b.nodeid, 1);
    assert.equal(pfs.liveNodes, 1);
    assert.deepEqual([...nodes.links.keys()], [ROOT_NODE_ID], "forgotten nodes are dropped");
  });
});

Deno.test("READDIRPLUS registers the entries it sent, and only those", async () => {
  await withSource(async (source) => {
    for (let i = 0; i < 50; i++) fs.writeFileSync(join(source, `file-${i}`), "x");
    const pfs = await openPassthrough(source);
    const nodes = new RecordedNodes();
    pfs.attachLocalNodes(nodes);
    const dir = await pfs.opendir(ctx, ROOT_NODE_ID);
    const sink = new DirectoryBuffer(2048);
    await pfs.readdirplus(ctx, ROOT_NODE_ID, dir.fh, 0, sink);
    assert.ok(nodes.links.size > 1 && nodes.links.size < 51, "a partial listing");
    assert.equal(nodes.links.size, pfs.liveNodes);
    for (const id of nodes.links.keys()) {
      const path = nodes.pathOf(id)!;
      assert.ok(fs.existsSync(path), `${path} exists`);
    }
  });
});

Deno.test("a filesystem under Deno's readers registers nothing", async () => {
  await withSource(async (source) => {
    const pfs = await openPassthrough(source);
    let calls = 0;
    pfs.attachLocalNodes({
      supported: false,
      set: () => calls++,
      delete: () => calls++,
      serveFiles: () => calls++,
      allocateNodeId: () => calls++,
      unserveHandle: () => calls++,
    });
    await pfs.lookup(ctx, ROOT_NODE_ID, ".").catch(() => {});
    fs.writeFileSync(join(source, "x"), "x");
    await pfs.lookup(ctx, ROOT_NODE_ID, "x");
    assert.equal(calls, 0);
  });
});

Deno.test("files the reader threads created are adopted: looked up, renamed, forgotten", async () => {
  await withSource(async (source) => {
    fs.writeFileSync(join(source, "old"), "x");
    const pfs = await openPassthrough(source, { entryTimeout: 0.25, directIo: true });
    const old = await pfs.lookup(ctx, ROOT_NODE_ID, "old");
    const nodes = new RecordedNodes();
    pfs.attachLocalNodes(nodes);
    const files = nodes.files!;
    assert.ok(files, "the passthrough lets the readers open and create");
    assert.ok(files.firstNodeId > old.nodeid, "reader node ids never collide with earlier ones");
    assert.deepEqual([files.entryTimeout, files.directIo], [0.25, true]);
    assert.equal(nodes.links.get(old.nodeid)?.regular, true, "regular files may be opened");
    assert.equal(nodes.links.get(ROOT_NODE_ID)?.regular, false);

    // What a reader thread does on CREATE: create the file, then hand the node over.
    fs.writeFileSync(join(source, "made"), "y");
    const stat = fs.statSync(join(source, "made"), { bigint: true });
    const nodeid = nodes.allocateNodeId();
    files.adopt({ nodeid, parent: ROOT_NODE_ID, name: "made", dev: stat.dev, ino: stat.ino });
    assert.equal(nodes.pathOf(nodeid), join(pfs.source, "made"));
    const looked = await pfs.lookup(ctx, ROOT_NODE_ID, "made");
    assert.equal(looked.nodeid, nodeid, "a lookup finds the adopted node");
    const fresh = await pfs.lookup(ctx, ROOT_NODE_ID, "old");
    assert.equal(fresh.nodeid, old.nodeid);
    await pfs.rename(ctx, ROOT_NODE_ID, "made", ROOT_NODE_ID, "renamed", 0);
    assert.equal(nodes.pathOf(nodeid), join(pfs.source, "renamed"));
    pfs.forget(nodeid, 2);
    assert.equal(nodes.links.has(nodeid), false, "both references gone: dropped");

    const opened = await pfs.open(ctx, old.nodeid, fs.constants.O_RDONLY);
    assert.equal(opened.closeOnRelease, true, "release is only the close");
    assert.equal(opened.localFd, opened.fh);
    await pfs.release(ctx, old.nodeid, opened.fh);
  });
});

Deno.test("an inode number reused by a newer file stays with the newer node", async () => {
  await withSource(async (source) => {
    const pfs = await openPassthrough(source);
    const nodes = new RecordedNodes();
    pfs.attachLocalNodes(nodes);
    const files = nodes.files!;
    fs.writeFileSync(join(source, "x"), "x");
    const { dev, ino } = fs.statSync(join(source, "x"), { bigint: true });
    const older = nodes.allocateNodeId(); // A deleted file that had the same inode number.
    const newer = nodes.allocateNodeId();
    // Adopted out of order, as when two reader threads made them.
    files.adopt({ nodeid: newer, parent: ROOT_NODE_ID, name: "x", dev, ino });
    files.adopt({ nodeid: older, parent: ROOT_NODE_ID, name: "gone", dev, ino });
    pfs.forget(older, 1);
    await pfs.rename(ctx, ROOT_NODE_ID, "x", ROOT_NODE_ID, "y", 0);
    assert.equal(nodes.pathOf(newer), join(pfs.source, "y"), "the rename moved the live node");
    assert.equal((await pfs.lookup(ctx, ROOT_NODE_ID, "y")).nodeid, newer);
  });
});
