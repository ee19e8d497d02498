/**
 * `mkdir -p` that cannot spin. Node's `mkdir(path, { recursive: true })` retries a path
 * forever where the kernel answers ENOENT for a directory whose parent exists (procfs,
 * sysfs): `--state-dir /proc/x` hung at 100 % CPU. Here each missing component is made
 * once, and the first refusal is the error. The directories made are durable: what is
 * written into them (a spool's journal, the embedded server's log) and fsynced must not
 * vanish with their own entries at a power cut.
 *
 * @module
 */
import { closeSync, fsyncSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * {@link makeDirectories} of the directory an option names: the error says which
 * (`--run-dir /x: cannot make it: ENOTDIR...`), where the system call's words alone did not.
 */
export function makeOptionDirectory(option: string, path: string, mode?: number): void {
  try {
    makeDirectories(path, mode);
  } catch (error) {
    throw new Error(`${option} ${path}: cannot make it: ${(error as Error).message}`);
  }
}

/**
 * Makes `path` and its missing parents (`mode` for the ones made); an existing directory is
 * fine. Throws the system error of the first component that cannot be made, or ENOTDIR
 * when one on the way is not a directory.
 *
 * @example
 * ```ts
 * makeDirectories("/var/lib/riakfs/state", 0o755);
 * ```
 */
export function makeDirectories(path: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let at = resolve(path);; at = dirname(at)) {
    const stats = statSync(at, { throwIfNoEntry: false });
    if (stats?.isDirectory()) break;
    if (stats) {
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), {
        code: "ENOTDIR",
        path: at,
      });
    }
    missing.push(at);
    if (at === dirname(at)) break;
  }
  for (const directory of missing.reverse()) {
    try {
      mkdirSync(directory, mode);
    } catch (error) {
      // Made meanwhile by someone else: as good.
      const made = statSync(directory, { throwIfNoEntry: false })?.isDirectory();
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || !made) throw error;
    }
  }
  for (const directory of missing) syncDirectory(dirname(directory));
}

/**
 * fsyncs the directory `path`, so that the names made, renamed or removed in it survive a
 * power cut.
 *
 * @example
 * ```ts
 * renameSync(temporary, final);
 * syncDirectory(dirname(final));
 * ```
 */
export function syncDirectory(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
