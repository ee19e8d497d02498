/**
 * What a big READ reply costs when the filesystem answers it on the main thread (the
 * overlay serving Riak data), against the same bytes answered by the reader threads from a
 * local descriptor (`Opened.localFd`, the passthrough). A one-file filesystem whose `read`
 * returns a 1 MiB buffer it keeps, mounted with direct I/O so every 1 MiB `dd` block is
 * one READ; `copy` returns a fresh copy per read, to show what one copy in a filesystem
 * costs. Prints MB/s and the main thread's CPU time per READ (from /proc).
 *
 * Runs under Node (the reader threads do not exist under Deno):
 *
 *   bash bench/fuse/read_reply.sh [MiB=2048]
 *
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  type Attr,
  Errno,
  fail,
  type FileSystem,
  FileType,
  type Opened,
  ROOT_NODE_ID,
  serveFileSystem,
} from "../../src/fuse/mod.ts";

const MIB = 1 << 20;
const sizeMib = Number(process.argv[2] ?? 2048);
const size = sizeMib * MIB;
const FILE_NODE = 2;
const kept = Buffer.alloc(MIB, 0x61);

type Variant = "main" | "copy" | "reader";
/** READs that reached `read` (none should in the reader variant). */
let readsOnMain = 0;

function attrOf(nodeid: number): Attr {
  const time = { sec: 0, nsec: 0 };
  const dir = nodeid === ROOT_NODE_ID;
  return {
    ino: nodeid,
    size: dir ? 0 : size,
    blocks: dir ? 0 : size / 512,
    atime: time,
    mtime: time,
    ctime: time,
    mode: dir ? FileType.DIRECTORY | 0o755 : FileType.REGULAR | 0o644,
    nlink: 1,
    uid: 0,
    gid: 0,
    rdev: 0,
    blksize: 4096,
  };
}

/** A filesystem of one file, `big`, of `size` bytes of "a". */
function oneFile(variant: Variant, localFile: string): FileSystem {
  return {
    lookup: (_ctx, parent, name) => {
      if (parent !== ROOT_NODE_ID || name !== "big") return Promise.reject(fail(Errno.ENOENT));
      return Promise.resolve({
        nodeid: FILE_NODE,
        attr: attrOf(FILE_NODE),
        entryTimeout: 60,
        attrTimeout: 60,
      });
    },
    getattr: (_ctx, nodeid) => Promise.resolve({ attr: attrOf(nodeid), attrTimeout: 60 }),
    open: (): Promise<Opened> => {
      if (variant !== "reader") return Promise.resolve({ fh: 1, directIo: true });
      const local = fs.openSync(localFile, "r");
      return Promise.resolve({ fh: local, localFd: local, closeOnRelease: true, directIo: true });
    },
    read: (_ctx, _nodeid, _fh, offset, wanted) => {
      readsOnMain++;
      const length = Math.max(0, Math.min(wanted, size - offset));
      const bytes = kept.subarray(0, length);
      return Promise.resolve(variant === "copy" ? Buffer.from(bytes) : bytes);
    },
    release: (_ctx, _nodeid, fh) => {
      if (variant === "reader") fs.closeSync(fh);
      return Promise.resolve();
    },
  };
}

/** CPU time (user + system) of the main thread so far, from /proc (clock ticks of 10 ms). */
function mainThreadCpuMs(): number {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function runDd(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const dd = spawn("dd", [`if=${path}`, "of=/dev/null", "bs=1M"], { stdio: "ignore" });
    dd.on("error", reject);
    dd.on("exit", (code) => code === 0 ? resolve() : reject(new Error(`dd exited ${code}`)));
  });
}

async function measure(
  variant: Variant,
  base: string,
  localFile: string,
  round: number,
): Promise<string> {
  const mountpoint = join(base, `mnt-${variant}-${round}`);
  readsOnMain = 0;
  fs.mkdirSync(mountpoint);
  const served = await serveFileSystem(oneFile(variant, localFile), {
    mountpoint,
    fsname: "readreply",
    subtype: "readreply",
    defaultPermissions: true,
    handleSignals: false,
    log: () => {},
  });
  try {
    const cpuBefore = mainThreadCpuMs();
    const start = performance.now();
    await runDd(join(mountpoint, "big"));
    const took = performance.now() - start;
    const cpuUsPerRead = (mainThreadCpuMs() - cpuBefore) * 1000 / sizeMib;
    const mbPerS = size / 1e6 / (took / 1000);
    return `${variant.padEnd(6)} ${mbPerS.toFixed(0).padStart(6)} MB/s, main thread CPU ` +
      `${cpuUsPerRead.toFixed(0)} us per 1 MiB READ, ${readsOnMain} READs on the main thread`;
  } finally {
    await served.stop();
    await served.finished;
  }
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(join(tmpdir(), "riakfs-read-reply-"));
  try {
    // The reader variant reads a local file of the same size (page-cached after it is written).
    const localFile = join(base, "local");
    const fd = fs.openSync(localFile, "w");
    for (let written = 0; written < size; written += MIB) fs.writeSync(fd, kept);
    fs.closeSync(fd);
    for (let round = 1; round <= 2; round++) {
      for (const variant of ["main", "copy", "reader"] as Variant[]) {
        console.log(`round ${round} ${await measure(variant, base, localFile, round)}`);
      }
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

// The bundle is CommonJS: no top-level await.
main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
