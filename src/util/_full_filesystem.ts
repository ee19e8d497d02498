/**
 * Test support: a small tmpfs filled to its last byte, for code that must keep working on the
 * disk that filled up (unit tests, and the end-to-end tests of tests/ that mount over one).
 * Mounting needs root (as every FUSE test does); the filesystem is unmounted and its
 * temporary mountpoint removed when the test's function returns or throws.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A mounted, full tmpfs. */
export interface FullFilesystem {
  /** Its mountpoint. */
  directory: string;
  /** Frees about `bytes` (whole pages) by shrinking the filler file. */
  makeRoom(bytes: number): void;
  /** Fills whatever room there is again. */
  fill(): void;
  /**
   * Takes every inode left (empty files under `.inodes/`): no file, directory or symlink
   * can be made any more, as where a full ext4 has no block for a new directory.
   */
  fillInodes(): void;
}

/** Options of {@link withFullFilesystem}. */
export interface FullFilesystemOptions {
  /** Size of the tmpfs; default 512 KiB. */
  sizeKiB?: number;
  /** Inodes of the tmpfs; default 256 (so that {@link FullFilesystem.fillInodes} is quick). */
  inodes?: number;
  /** Where to mount it (an existing, empty directory); default a new temporary directory. */
  at?: string;
  /** Leave it empty: the test fills it ({@link FullFilesystem.fill}) once it set things up. */
  empty?: boolean;
}

/**
 * Runs `test` on a tmpfs filled up (a filler file, `.filler`, takes every page), unmounting
 * it afterwards whatever happens (lazily: a process that still has files open on it keeps
 * them).
 *
 * @example
 * ```ts
 * await withFullFilesystem(async ({ directory }) => {
 *   assert.throws(() => writeFileSync(join(directory, "a"), "x"), /ENOSPC/);
 * });
 * ```
 */
export async function withFullFilesystem<T>(
  test: (filesystem: FullFilesystem) => T | Promise<T>,
  options: FullFilesystemOptions = {},
): Promise<T> {
  const directory = options.at ?? mkdtempSync(join(tmpdir(), "riakfs-full-"));
  try {
    const mountOptions = `size=${options.sizeKiB ?? 512}k,nr_inodes=${options.inodes ?? 256}`;
    execFileSync("mount", ["-t", "tmpfs", "-o", `${mountOptions},mode=0755`, "tmpfs", directory]);
    const filler = openSync(join(directory, ".filler"), "w");
    try {
      const filesystem: FullFilesystem = {
        directory,
        makeRoom: (bytes) => {
          const size = Number(fstatSync(filler).size);
          ftruncateSync(filler, Math.max(0, size - Math.ceil(bytes / 4096) * 4096));
        },
        fill: () => fillUp(filler),
        fillInodes: () => {
          mkdirSync(join(directory, ".inodes"));
          for (let index = 0;; index++) {
            try {
              closeSync(openSync(join(directory, ".inodes", String(index)), "w"));
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
              break;
            }
          }
        },
      };
      if (!options.empty) filesystem.fill();
      return await test(filesystem);
    } finally {
      closeSync(filler);
      execFileSync("umount", ["-l", directory]);
    }
  } finally {
    if (options.at === undefined) rmdirSync(directory);
  }
}

/** Appends to `fd` until not one more byte fits, in ever smaller writes. */
function fillUp(fd: number): void {
  for (const chunk of [65_536, 4_096, 1]) {
    const bytes = new Uint8Array(chunk);
    for (;;) {
      try {
        writeSync(fd, bytes, 0, chunk, Number(fstatSync(fd).size));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
        break;
      }
    }
  }
}
