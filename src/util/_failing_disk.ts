/**
 * Test support: a disk whose writeback fails, as a thin-provisioned, network or dying disk's
 * does: write(2) still lands in the page cache, and fsync(2) reports the error (ENOSPC: the
 * loop device's backing file cannot grow). A small ext4 (no journal, errors=continue) on a
 * loop device whose sparse image lives on a tmpfs ({@link withFullFilesystem}, left empty):
 * filling that tmpfs makes the disk fail, making room there heals it. Needs root, losetup and
 * mkfs.ext4; everything is unmounted when the test's function returns or throws.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withFullFilesystem } from "./_full_filesystem.ts";

/** A mounted disk that fails on demand. */
export interface FailingDisk {
  /** Its mountpoint. */
  directory: string;
  /** The writeback of every page written from now on fails (as it is done). */
  fail(): void;
  /** Writebacks succeed again. */
  heal(): void;
  /**
   * Unmounts and mounts it again: its files as the disk holds them, the pages whose writeback
   * failed gone from memory, as a start after a crash finds them.
   */
  remount(): void;
}

/** Size of the disk's image (sparse: its tmpfs holds only what was written of it). */
const IMAGE_BYTES = 16 * 1024 * 1024;

/**
 * Runs `test` on a {@link FailingDisk}, working until `fail` is called.
 *
 * @example
 * ```ts
 * await withFailingDisk(async (disk) => {
 *   const fd = openSync(join(disk.directory, "a"), "w");
 *   disk.fail();
 *   writeSync(fd, "x");
 *   assert.throws(() => fsyncSync(fd), /ENOSPC/);
 * });
 * ```
 */
export async function withFailingDisk<T>(
  test: (disk: FailingDisk) => T | Promise<T>,
): Promise<T> {
  return await withFullFilesystem(async (backing) => {
    const image = join(backing.directory, "disk.img");
    execFileSync("truncate", ["-s", String(IMAGE_BYTES), image]);
    execFileSync("mkfs.ext4", ["-q", "-O", "^has_journal", "-E", "nodiscard", image]);
    const directory = mkdtempSync(join(tmpdir(), "riakfs-failing-"));
    // `loop`: the device goes with the unmount.
    const mount = () =>
      execFileSync("mount", ["-t", "ext4", "-o", "loop,errors=continue", image, directory]);
    try {
      mount();
      try {
        return await test({
          directory,
          fail: () => backing.fill(),
          heal: () => backing.makeRoom(Number.MAX_SAFE_INTEGER),
          remount: () => {
            execFileSync("umount", [directory]);
            mount();
          },
        });
      } finally {
        // Lazily: a descriptor the test left open keeps its file.
        execFileSync("umount", ["-l", directory]);
      }
    } finally {
      rmdirSync(directory);
    }
  }, { sizeKiB: 4096, empty: true });
}
