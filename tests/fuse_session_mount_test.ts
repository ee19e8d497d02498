/**
 * End-to-end through the kernel with a tiny filesystem served in this process: what the
 * protocol layer (src/fuse) puts on the wire, as stat(1) in another process sees it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import {
  type Attr,
  Errno,
  fail,
  type FileSystem,
  ROOT_NODE_ID,
  serveFileSystem,
} from "../src/fuse/mod.ts";
import { run, tempDir } from "./_mount.ts";

function attr(ino: number, mode: number, mtime: Attr["mtime"]): Attr {
  return {
    ino,
    size: 0,
    blocks: 0,
    atime: mtime,
    mtime,
    ctime: mtime,
    mode,
    nlink: 1,
    uid: 0,
    gid: 0,
    rdev: 0,
    blksize: 4096,
  };
}

/** A root directory holding one file, "old", whose times are `mtime`. */
function oneFile(mtime: Attr["mtime"]): FileSystem {
  const root = attr(ROOT_NODE_ID, 0o40755, { sec: 0, nsec: 0 });
  const file = attr(2, 0o100644, mtime);
  return {
    lookup: (_ctx, parent, name) =>
      parent === ROOT_NODE_ID && name === "old"
        ? Promise.resolve({ nodeid: 2, entryTimeout: 0, attrTimeout: 0, attr: file })
        : Promise.reject(fail(Errno.ENOENT)),
    getattr: (_ctx, nodeid) =>
      Promise.resolve({ attr: nodeid === ROOT_NODE_ID ? root : file, attrTimeout: 0 }),
  };
}

Deno.test("a time before 1970 split by truncation reaches stat(1) as that time", async () => {
  const dir = tempDir("riakfs-session-mount-");
  const mountpoint = join(dir, "mnt");
  fs.mkdirSync(mountpoint);
  // -1.5 s split as the Riak-backed presets do: -1 s and -500,000,000 ns.
  const served = await serveFileSystem(oneFile({ sec: -1, nsec: -500_000_000 }), {
    mountpoint,
    handleSignals: false,
    readaheadKb: 0,
    log: () => {},
  });
  try {
    const stat = await run("stat", ["-c", "%.9Y", join(mountpoint, "old")]);
    assert.equal(stat.code, 0, stat.stderr);
    assert.equal(stat.stdout.trim(), "-1.500000000");
  } finally {
    await served.stop();
    await served.finished;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
