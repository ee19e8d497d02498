/**
 * `riakfs umount MOUNTPOINT`: unmounts a riakfs mount; its serving process then exits.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { readMounts, unmount } from "../fuse/mod.ts";

/** Registers `riakfs umount`. */
export function installUmount(program: Command): void {
  program.command("umount")
    .description("unmount a riakfs mount; its serving process exits")
    .argument("<mountpoint>", "where riakfs is mounted")
    .option("-l, --lazy", "detach now even if busy; it goes when its last user does")
    .action(async (mountpoint: string, flags: { lazy?: boolean }) => {
      // Not realpath: it would stat through the mount, which may be dead or hung.
      const path = resolve(mountpoint);
      const mount = (await readMounts()).find((m) => m.mountpoint === path);
      if (!mount || !mount.fstype.startsWith("fuse.")) {
        throw new Error(`${path} is not a FUSE mount`);
      }
      try {
        await unmount(path, flags.lazy ?? false);
      } catch (error) {
        const message = (error as Error).message;
        if (/busy/i.test(message) && !flags.lazy) {
          throw new Error(
            `${path} is busy (files open or a process inside); close them or use --lazy`,
          );
        }
        throw error;
      }
    });
}
