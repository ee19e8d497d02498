/**
 * End-to-end through the kernel with a tiny filesystem served in this process: what the
 * protocol layer (src/fuse) puts on the wire, as stat(1) in another process sees it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import {
  type Attr,
  Errno,
  fail,
  type FileSystem,
  ROOT_NODE_ID,
  type ServedMount,
  serveFileSystem,
} from "../src/fuse/mod.ts";
import { run, tempDir, waitFor } from "./_mount.ts";

/** Serves `fileSystem` at a fresh mountpoint for `body`; unmounts and cleans up after. */
async function withServed(
  fileSystem: FileSystem,
  body: (mountpoint: string, served: ServedMount) => Promise<void>,
): Promise<void> {
  const dir = tempDir("riakfs-session-mount-");
  const mountpoint = join(dir, "mnt");
  fs.mkdirSync(mountpoint);
  const served = await serveFileSystem(fileSystem, {
    mountpoint,
    handleSignals: false,
    readaheadKb: 0,
    log: () => {},
  });
  try {
    await body(mountpoint, served);
  } finally {
    await served.stop();
    await served.finished;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

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
  // -1.5 s split as the Riak-backed presets do: -1 s and -500,000,000 ns.
  await withServed(oneFile({ sec: -1, nsec: -500_000_000 }), async (mountpoint) => {
    const stat = await run("stat", ["-c", "%.9Y", join(mountpoint, "old")]);
    assert.equal(stat.code, 0, stat.stderr);
    assert.equal(stat.stdout.trim(), "-1.500000000");
  });
});

/** stat(2)s argv[1] until SIGUSR1 comes; prints what the stat ended with. */
const STAT_UNTIL_SIGNALLED = `
import errno, os, signal, sys
class Interrupted(Exception):
    pass
def interrupted(signum, frame):
    raise Interrupted()
signal.signal(signal.SIGUSR1, interrupted)
try:
    os.stat(sys.argv[1])
    print("answered")
except Interrupted:
    print("interrupted")
except OSError as error:
    print(errno.errorcode[error.errno])
`;

Deno.test("a signal to a caller waiting on a LOOKUP interrupts it: the handler's signal aborts, the call gets EINTR", async () => {
  let started!: () => void;
  const lookupStarted = new Promise<void>((resolve) => started = resolve);
  const fileSystem: FileSystem = {
    ...oneFile({ sec: 0, nsec: 0 }),
    lookup: (ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
        started();
      }),
  };
  await withServed(fileSystem, async (mountpoint, served) => {
    const child = spawn("python3", ["-c", STAT_UNTIL_SIGNALLED, join(mountpoint, "slow")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    const exited = new Promise((resolve) => child.on("close", resolve));
    try {
      await lookupStarted;
      child.kill("SIGUSR1");
      // (Deno reports a child sent a signal as killed by it, even one that handled it.)
      await exited;
      assert.equal(output.trim(), "interrupted");
      assert.equal(served.session.inFlight, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    }
  });
});

/** The descriptors of this process open on /dev/fuse. */
function fuseDescriptors(): number[] {
  return fs.readdirSync("/proc/self/fd").map(Number).filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === "/dev/fuse";
    } catch {
      return false; // Closed while we looked (the readdir's own descriptor).
    }
  });
}

Deno.test("a handler that settles after an abort writes nothing: the device's descriptor number may name another file by then", async () => {
  let started!: () => void;
  const lookupStarted = new Promise<void>((resolve) => started = resolve);
  let finish!: () => void;
  const slow = oneFile({ sec: 0, nsec: 0 });
  const fileSystem: FileSystem = {
    ...slow,
    lookup: (ctx, parent) =>
      new Promise((resolve) => {
        finish = () => resolve(slow.lookup!(ctx, parent, "old"));
        started();
      }),
  };
  const dir = tempDir("riakfs-session-other-");
  const opened: number[] = [];
  try {
    await withServed(fileSystem, async (mountpoint, served) => {
      const child = spawn("stat", [join(mountpoint, "slow")], { stdio: "ignore" });
      const exited = new Promise((resolve) => child.on("close", resolve));
      await lookupStarted;
      const [device] = fuseDescriptors();
      assert.ok(device !== undefined, "the mount's /dev/fuse descriptor");
      await served.abort(); // stat(1) gets ECONNABORTED; the LOOKUP handler runs on.
      await served.finished;
      await exited;
      // The device's descriptor is closed: open files until one takes its number.
      for (let i = 0; i < 256 && !opened.includes(device); i++) {
        opened.push(fs.openSync(join(dir, `other-${i}`), "w+"));
      }
      assert.ok(opened.includes(device), `descriptor ${device} taken by another file`);
      finish();
      assert.ok(await waitFor(() => served.session.inFlight === 0, 5_000));
      const other = `other-${opened.indexOf(device)}`;
      assert.equal(fs.statSync(join(dir, other)).size, 0, "no reply written into it");
    });
  } finally {
    for (const fd of opened) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
