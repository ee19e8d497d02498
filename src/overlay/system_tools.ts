/**
 * What Node cannot do itself, done by the util-linux tools on an open descriptor or a path:
 * fallocate(2) through fallocate(1), mknod(2) through mknod(1). Their messages are mapped back
 * to the errno they report.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { Errno, fail } from "../fuse/filesystem.ts";

/** Messages of util-linux tools mapped back to the errno they report. */
const TOOL_ERRORS: [RegExp, number][] = [
  [/No space left/, Errno.ENOSPC],
  [/not supported/i, Errno.EOPNOTSUPP],
  [/Invalid argument/, Errno.EINVAL],
  [/File too large/, Errno.EFBIG],
  [/File exists/, Errno.EEXIST],
  [/Permission denied/, Errno.EACCES],
  [/Operation not permitted/, Errno.EPERM],
  [/Bad file descriptor/, Errno.EBADF],
];

function runTool(file: string, args: string[], missing: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (error, _stdout, stderr) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(fail(missing, `${file}(1) is not installed`));
      }
      const known = TOOL_ERRORS.find(([pattern]) => pattern.test(stderr));
      reject(fail(known?.[1] ?? Errno.EIO, `${file}: ${stderr.trim()}`));
    });
  });
}

/**
 * fallocate(2) with FALLOC_FL_* `mode` on this process's descriptor `fd`; EOPNOTSUPP for a
 * mode fallocate(1) cannot express, or without util-linux.
 *
 * @example
 * ```ts
 * await fallocateDescriptor(fd, 0, 1 << 20, 0); // 1 MiB allocated, the size grown to it
 * ```
 */
export function fallocateDescriptor(
  fd: number,
  offset: number,
  length: number,
  mode: number,
): Promise<void> {
  const args = ["-o", String(offset), "-l", String(length)];
  const known: [number, string][] = [
    [0x01, "--keep-size"],
    [0x02, "--punch-hole"],
    [0x08, "--collapse-range"],
    [0x10, "--zero-range"],
    [0x20, "--insert-range"],
  ];
  let rest = mode;
  for (const [bit, flag] of known) {
    if (mode & bit) {
      // fallocate(1) implies --keep-size with --punch-hole and rejects it spelled out.
      if (!(bit === 0x01 && mode & 0x02)) args.push(flag);
      rest &= ~bit;
    }
  }
  if (rest !== 0) {
    return Promise.reject(fail(Errno.EOPNOTSUPP, `fallocate mode ${mode.toString(16)}`));
  }
  return runTool("fallocate", [...args, `/proc/${process.pid}/fd/${fd}`], Errno.EOPNOTSUPP);
}

/** mknod(1) with `args`; EPERM without util-linux. */
export function runMknod(args: string[]): Promise<void> {
  return runTool("mknod", args, Errno.EPERM);
}
