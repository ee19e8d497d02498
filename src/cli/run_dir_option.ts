/**
 * The `--run-dir` option of `umount` and `status`, which find a mount's control socket where
 * `riakfs mount --run-dir` (or RIAKFS_RUN_DIR) put it.
 *
 * @module
 */
import { Option } from "commander";
import { DEFAULT_RUN_DIRECTORY } from "../overlay/defaults.ts";
import { nonEmpty } from "./migration-options.ts";

/**
 * `--run-dir DIR`, from RIAKFS_RUN_DIR when not given, as `riakfs mount` takes it; an empty
 * one is refused, as mount refuses it, rather than looked for in the working directory.
 */
export function runDirOption(): Option {
  return new Option("--run-dir <dir>", "directory of the mounts' pid files and control sockets")
    .env("RIAKFS_RUN_DIR")
    .default(DEFAULT_RUN_DIRECTORY)
    .argParser(nonEmpty);
}
