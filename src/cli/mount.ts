/**
 * `riakfs mount --preset PRESET SOURCE MOUNTPOINT`: mounts a preset of the overlay
 * (passthrough, shadow, migrate, drain, riak; see src/overlay/modes.ts), with the Riak
 * connection options of src/cli/riak-options.ts and the overlay's own options.
 *
 * Without `--foreground` the command starts itself again in the background, waits until
 * the mount answers, and exits 0 (or 1 with the background process's one-line error).
 *
 * @module
 */
import { type Command, Option } from "commander";
import { PRESETS as MODE_PRESETS } from "../overlay/modes.ts";
import { addOverlayOptions } from "../overlay/mount_options.ts";
import { decimal } from "./numbers.ts";
import { addRiakOptions } from "./riak-options.ts";

/** The FUSE subtype of riakfs mounts: they show as `fuse.riakfs` in /proc/mounts. */
export const MOUNT_SUBTYPE = "riakfs";

/** The mount presets (the overlay's mode presets). */
export const PRESETS: readonly string[] = Object.keys(MODE_PRESETS);

/** Options parsed from `-o a,b=c`. */
export interface FuseOptionSet {
  allowOther: boolean;
  /**
   * The kernel checks permissions against the modes. Always with allow_other; without it
   * only root can use the mount, and root's permissions are riakfs's own (see README).
   */
  defaultPermissions: boolean;
  fsname?: string;
  subtype?: string;
  entryTimeout?: number;
  attrTimeout?: number;
  directIo: boolean;
  keepCache: boolean;
  /** Generic mount(8) options passed through as they are. */
  generic: string[];
}

/** Generic mount options that pass through to mount(8) unchanged. */
const GENERIC_OPTIONS = new Set([
  "ro",
  "rw",
  "nosuid",
  "suid",
  "nodev",
  "dev",
  "noexec",
  "exec",
  "noatime",
  "atime",
  "relatime",
  "norelatime",
  "strictatime",
  "lazytime",
  "sync",
  "async",
  "dirsync",
]);

/**
 * Parses `-o` option lists (may be given several times). Throws a one-line Error naming
 * the first unknown or malformed option.
 */
export function parseFuseOptions(lists: string[]): FuseOptionSet {
  const result: FuseOptionSet = {
    allowOther: false,
    defaultPermissions: false,
    directIo: false,
    keepCache: false,
    generic: [],
  };
  const seconds = (name: string, value: string | undefined) => {
    const number = value === undefined ? NaN : decimal(value, { fraction: true });
    if (value === undefined || !Number.isFinite(number)) {
      throw new Error(
        `-o ${name} needs a number of seconds >= 0, got ${
          value === undefined ? "nothing" : JSON.stringify(value)
        }`,
      );
    }
    return number;
  };
  for (const list of lists) {
    for (const item of list.split(",")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const name = eq < 0 ? item : item.slice(0, eq);
      const value = eq < 0 ? undefined : item.slice(eq + 1);
      switch (name) {
        case "allow_other":
          result.allowOther = true;
          break;
        case "default_permissions":
          result.defaultPermissions = true;
          break;
        case "fsname":
        case "subtype":
          if (!value || !/^[A-Za-z0-9_.:/@+-]+$/.test(value)) {
            throw new Error(`-o ${name} needs a value of letters, digits and _.:/@+-`);
          }
          result[name] = value;
          break;
        case "entry_timeout":
          result.entryTimeout = seconds(name, value);
          break;
        case "attr_timeout":
          result.attrTimeout = seconds(name, value);
          break;
        case "direct_io":
          result.directIo = true;
          break;
        case "keep_cache":
          result.keepCache = true;
          break;
        default:
          if (value === undefined && GENERIC_OPTIONS.has(name)) result.generic.push(name);
          else throw new Error(`unknown mount option -o ${item}`);
      }
    }
  }
  return result;
}

/** The flags of `riakfs mount` itself, as commander parses them. */
export interface MountFlags {
  preset: string;
  foreground?: boolean;
  options: string[];
  pidFile?: string;
  logFile?: string;
  requestTimeout: string;
}

/** Registers `riakfs mount`. */
export function installMount(program: Command): void {
  const mount = program.command("mount")
    .description("mount a preset of the overlay at MOUNTPOINT (needs root or CAP_SYS_ADMIN)")
    .argument("<source>", "the local directory to serve")
    .argument("<mountpoint>", "an existing directory to mount on")
    .addOption(
      new Option("--preset <preset>", "what the mount does").choices(PRESETS).makeOptionMandatory(),
    )
    .option("-f, --foreground", "serve in this process until unmounted")
    .option(
      "-o, --options <list>",
      "comma-separated: allow_other, default_permissions, fsname=, subtype=, entry_timeout=, " +
        "attr_timeout=, " +
        "direct_io, keep_cache, and generic mount options (ro, nosuid, noatime...)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option(
      "--pid-file <file>",
      "write the serving process's pid here while mounted (default: <run dir>/<mount>.pid)",
    )
    .option(
      "--log-file <file>",
      "append the background process's messages here (default: <run dir>/<mount>.log)",
    )
    .option(
      "--request-timeout <seconds>",
      "answer EIO to requests slower than this (Riak's own timeout, in ms: " +
        "RIAKFS_REQUEST_TIMEOUT or the config file's requestTimeout)",
      "30",
    );
  addOverlayOptions(mount, { preset: false });
  addRiakOptions(mount, ["--request-timeout"]);
  mount
    .action(async (source: string, mountpoint: string, flags: MountFlags, command: Command) => {
      const { mountCommand } = await import("./mount_action.ts");
      await mountCommand(source, mountpoint, flags, command);
    });
}
