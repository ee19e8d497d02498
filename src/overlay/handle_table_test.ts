import assert from "node:assert/strict";
import { Errno, FuseError } from "../fuse/filesystem.ts";
import type { DirectoryStream } from "./directory_stream.ts";
import { type Handle, HandleTable, type OpenedOn, type RiakHandle } from "./handle_table.ts";
import type { WriteSession } from "./session_table.ts";

/** The table looks at a handle's kind, path, node, mirror and session only. */
function riak(path: string, nodeid?: number): RiakHandle & OpenedOn {
  const handle = { kind: "riak", path } as RiakHandle & OpenedOn;
  handle.nodeid = nodeid;
  return handle;
}

function local(path: string, options: { mirror?: boolean; nodeid?: number } = {}): Handle {
  const mirror = options.mirror ? {} : undefined;
  return { kind: "local", path, mirror, nodeid: options.nodeid } as Handle;
}

function write(path: string, session: WriteSession): Handle {
  return { kind: "write", path, session } as Handle;
}

/** The table only holds a directory handle's listing: any object stands for one. */
function listing(): DirectoryStream {
  return {} as DirectoryStream;
}

Deno.test("a released number is handed out again before a new one", () => {
  const handles = new HandleTable();
  const [one, two, three] = [riak("/a"), riak("/b"), riak("/c")].map((h) => handles.add(h));
  assert.deepEqual([one, two, three], [1, 2, 3]);
  handles.remove(two);
  assert.equal(handles.add(riak("/d")), two);
  assert.equal(handles.add(riak("/e")), 4);
});

Deno.test("a mount that opens and closes handles for long stays below 65,536", () => {
  const handles = new HandleTable();
  const held = [handles.add(local("/held")), handles.addDirectory(listing())];
  let highest = 0;
  for (let i = 0; i < 100_000; i++) {
    const file = handles.add(local(`/f${i}`));
    const directory = handles.addDirectory(listing());
    highest = Math.max(highest, file, directory);
    handles.remove(file);
    handles.removeDirectory(directory);
  }
  assert.equal(highest, 4);
  assert.deepEqual(held, [1, 2]);
  assert.equal(handles.size, 1);
});

Deno.test("file and directory handles share one pool of numbers", () => {
  const handles = new HandleTable();
  const file = handles.add(local("/f"));
  const directory = handles.addDirectory(listing());
  assert.notEqual(file, directory);
  // A directory's number is no file handle, and a file's is no directory handle.
  assert.equal(handles.get(directory), undefined);
  assert.equal(handles.directory(file), undefined);
  handles.removeDirectory(directory);
  assert.equal(handles.add(local("/g")), directory);
  handles.remove(file);
  assert.equal(handles.addDirectory(listing()), file);
});

Deno.test("releasedir hands back the listing once; a number not open is not freed", () => {
  const handles = new HandleTable();
  const stream = listing();
  const fh = handles.addDirectory(stream);
  assert.equal(handles.directory(fh), stream);
  assert.equal(handles.removeDirectory(fh), stream);
  assert.equal(handles.directory(fh), undefined);
  // Released twice (or a file's number released as a directory): freed only once.
  assert.equal(handles.removeDirectory(fh), undefined);
  const file = handles.add(local("/f"));
  assert.equal(handles.removeDirectory(file), undefined);
  assert.equal(handles.get(file)?.path, "/f");
  assert.equal(file, fh);
  assert.equal(handles.addDirectory(listing()), 2);
});

Deno.test("release frees a file handle's number once and hands back the handle", () => {
  const handles = new HandleTable();
  const handle = local("/f");
  const fh = handles.add(handle);
  assert.equal(handles.remove(fh), handle);
  assert.equal(handles.remove(fh), undefined);
  assert.equal(handles.add(local("/g")), fh);
  assert.equal(handles.add(local("/h")), 2);
  assert.equal(handles.size, 2);
});

Deno.test("a file handle not open is EBADF where one is required", () => {
  const handles = new HandleTable();
  const fh = handles.add(local("/f"));
  assert.equal(handles.require(fh).path, "/f");
  handles.remove(fh);
  assert.throws(
    () => handles.require(fh),
    (error) => error instanceof FuseError && error.errno === Errno.EBADF,
  );
});

Deno.test("Riak handles are counted as they open and close", () => {
  const handles = new HandleTable();
  const first = handles.add(riak("/a"));
  const second = handles.add(riak("/a"));
  const other = handles.add(local("/a"));
  assert.equal(handles.riakHandlesOpen, 2);
  handles.remove(first);
  handles.remove(first);
  handles.remove(other);
  assert.equal(handles.riakHandlesOpen, 1);
  handles.remove(second);
  assert.equal(handles.riakHandlesOpen, 0);
});

Deno.test("the handle given answers for its node, else any handle open on it", () => {
  const handles = new HandleTable();
  const first = local("/a", { nodeid: 7 });
  const second = riak("/a", 7);
  handles.add(first);
  handles.add(second);
  assert.equal(handles.openOn(7, second), second);
  assert.equal(handles.openOn(7, undefined), first);
  assert.equal(handles.openOn(7, riak("/b", 8)), first);
  assert.equal(handles.openOn(9, undefined), undefined);
  assert.equal(handles.openAt("/a"), first);
  assert.equal(handles.openAt("/b"), undefined);
});

Deno.test("only the handles that read what they opened are reading; Riak's by path", () => {
  const handles = new HandleTable();
  const session = {} as WriteSession;
  const onRiak = riak("/f");
  const reader = local("/f");
  handles.add(write("/f", session));
  const riakFh = handles.add(onRiak);
  handles.add(local("/f", { mirror: true }));
  const readerFh = handles.add(reader);
  handles.add(riak("/g"));
  assert.deepEqual(handles.readingAt("/f"), [[riakFh, onRiak], [readerFh, reader]]);
  assert.deepEqual(handles.riakAt("/f"), [onRiak]);
  assert.deepEqual(handles.riakAt("/none"), []);
});

Deno.test("a write session's handles follow it to its new name; others stay", () => {
  const handles = new HandleTable();
  const session = {} as WriteSession;
  const moved = [write("/old", session), write("/old", session)];
  const another = write("/old", {} as WriteSession);
  const reader = local("/old");
  for (const handle of [...moved, another, reader]) handles.add(handle);
  handles.repath(session, "/old", "/new");
  assert.deepEqual(moved.map((handle) => handle.path), ["/new", "/new"]);
  assert.equal(another.path, "/old");
  assert.equal(reader.path, "/old");
  // Found at their new name, no longer at the old one.
  assert.deepEqual(handles.atOrBelow("/new").map(([, handle]) => handle), moved);
  assert.deepEqual(handles.atOrBelow("/old").map(([, handle]) => handle), [another, reader]);
});

/** What the table answers about `path`, by its index, and what a look at every handle says. */
function seenAt(handles: HandleTable, path: string, every: Map<number, Handle>) {
  const at = [...every].filter(([, handle]) => handle.path === path);
  assert.deepEqual(
    new Set(handles.atOrBelow(path).filter(([, handle]) => handle.path === path)),
    new Set(at),
    `the handles at ${path}`,
  );
  assert.deepEqual(
    new Set(handles.riakAt(path)),
    new Set(at.map(([, handle]) => handle).filter((handle) => handle.kind === "riak")),
  );
  assert.equal(handles.openAt(path) !== undefined, at.length > 0);
  return at.length;
}

Deno.test("the handles by path follow renames of files and of directories above them, and releases", () => {
  const handles = new HandleTable();
  /** Every handle open, by number, as the table should know them. */
  const open = new Map<number, Handle>();
  const add = (handle: Handle) => open.set(handles.add(handle), handle);
  for (let i = 0; i < 1_000; i++) add(i % 2 ? riak(`/d/sub/f${i % 100}`) : local(`/d/f${i % 50}`));
  add(riak("/d"));
  add(riak("/dx/f0")); // Beside /d, not below it.
  add(local("/e/f0"));
  // A directory renamed: every handle below it moves, each under its own new name.
  for (const [fh, handle] of handles.atOrBelow("/d/sub")) {
    handles.move(fh, handle, "/e/sub" + handle.path.slice("/d/sub".length));
  }
  assert.equal(handles.atOrBelow("/d/sub").length, 0);
  assert.equal(handles.atOrBelow("/e/sub").length, 500);
  assert.equal(seenAt(handles, "/e/sub/f1", open), 10);
  assert.equal(seenAt(handles, "/d/sub/f1", open), 0);
  assert.equal(seenAt(handles, "/d/f0", open), 20);
  assert.equal(seenAt(handles, "/dx/f0", open), 1);
  // A file renamed over one open at its new name: both sets of handles are at the new name.
  for (const [fh, handle] of handles.atOrBelow("/d/f2")) handles.move(fh, handle, "/e/f0");
  assert.equal(seenAt(handles, "/e/f0", open), 21);
  assert.equal(seenAt(handles, "/d/f2", open), 0);
  // Released: gone from its path; the last one of a path takes the path with it.
  for (const [fh, handle] of handles.atOrBelow("/e/f0")) {
    assert.equal(handles.remove(fh), handle);
    open.delete(fh);
    assert.equal(handles.holds(handle), false);
  }
  assert.equal(seenAt(handles, "/e/f0", open), 0);
  assert.equal(handles.openAt("/e/f0"), undefined);
  // A released number handed out again is not moved by a rename that held the old handle.
  const [[fh, gone]] = handles.atOrBelow("/dx/f0");
  handles.remove(fh);
  open.delete(fh);
  const reused = local("/elsewhere");
  assert.equal(handles.add(reused), fh);
  open.set(fh, reused);
  handles.move(fh, gone, "/renamed");
  assert.equal(gone.path, "/renamed");
  assert.equal(seenAt(handles, "/renamed", open), 0);
  assert.equal(seenAt(handles, "/elsewhere", open), 1);
  // Everything the index holds is what is open, and nothing more.
  assert.deepEqual(new Set(handles.atOrBelow("")), new Set(open));
  assert.equal(handles.size, open.size);
});

Deno.test("whether a Riak handle reads another version looks at that path's handles only", () => {
  const handles = new HandleTable();
  const version = (handle: RiakHandle & OpenedOn, v: string) => {
    handle.version = { version: v } as RiakHandle["version"];
    return handle;
  };
  const never = () => false;
  handles.add(version(riak("/a", 3), "v1"));
  handles.add(version(riak("/b", 4), "v2"));
  assert.equal(handles.readsOtherVersion("/a", "v1", never), false);
  assert.equal(handles.readsOtherVersion("/a", "v2", never), true);
  // Its node went with its name: another file now, whatever it reads.
  assert.equal(handles.readsOtherVersion("/a", "v2", (id) => id === 3), false);
  const [[fh, handle]] = handles.atOrBelow("/b");
  handles.move(fh, handle, "/a");
  assert.equal(handles.readsOtherVersion("/a", "v1", (id) => id === 3), true);
  assert.equal(handles.readsOtherVersion("/b", "v1", never), false);
});

Deno.test("what an OPEN asks about its path reads no handle open at another path", () => {
  const handles = new HandleTable();
  let looks = 0;
  for (let i = 0; i < 1_000; i++) {
    const handle = riak(`/other/f${i}`);
    const path = handle.path;
    Object.defineProperty(handle, "path", { get: () => (looks++, path) });
    handles.add(handle);
  }
  const mine = riak("/mine");
  mine.version = { version: "v1" } as RiakHandle["version"];
  handles.add(mine);
  looks = 0;
  assert.equal(handles.readsOtherVersion("/mine", "v2", () => false), true);
  assert.equal(handles.readsOtherVersion("/none", "v2", () => false), false);
  assert.deepEqual(handles.riakAt("/mine"), [mine]);
  assert.equal(handles.readingAt("/mine").length, 1);
  assert.equal(handles.openAt("/none"), undefined);
  assert.equal(looks, 0, "handles of other paths were looked at");
});
