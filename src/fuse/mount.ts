/**
 * Mounting and unmounting a FUSE filesystem as root, without libfuse or fusermount3:
 * riakfs opens /dev/fuse and hands the descriptor to mount(8) as the child's fd 3.
 *
 * Also: detection and clearing of stale mounts ("Transport endpoint is not connected"
 * after a crash), and a watchdog process that lazily unmounts when the serving process
 * dies without saying goodbye (kill -9, OOM), so a dead process never leaves a dead mount.
 *
 * Nothing here touches a live mountpoint synchronously: a synchronous stat of our own
 * mountpoint from the thread that serves it would deadlock. umount(8) runs with
 * `--no-canonicalize` for the same reason.
 *
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { isAbsolute } from "node:path";

/** A mount or unmount that failed, with mount(8)'s or umount(8)'s own words. */
export class MountError extends Error {
  override name = "MountError";
  /** The mountpoint concerned. */
  readonly mountpoint: string;

  /** `message` is one line an operator can act on. */
  constructor(mountpoint: string, message: string) {
    super(message);
    this.mountpoint = mountpoint;
  }
}

/** Options of {@link mountFuse}. */
export interface MountOptions {
  /** Absolute, already resolved path of an existing directory. */
  mountpoint: string;
  /** The "source" column of /proc/mounts (default "riakfs"). */
  fsname?: string;
  /** The type becomes `fuse.<subtype>` (default "riakfs"). */
  subtype?: string;
  /** Let users other than root use the mount. */
  allowOther?: boolean;
  /** Let the kernel check permissions against the reported modes (recommended). */
  defaultPermissions?: boolean;
  /** Further generic mount options passed to mount(8) as they are (ro, nosuid, noatime...). */
  extraOptions?: string[];
}

/** A mounted FUSE connection: serve `fd` with a FuseSession. */
export interface Mounted {
  /** The open /dev/fuse descriptor the kernel sends this mount's requests to. */
  fd: number;
  mountpoint: string;
  /** "major:minor" of the mount, which names its FUSE connection (see {@link abortConnection}). */
  device: string;
}

/** One line of /proc/self/mountinfo that matters here. */
export interface MountInfo {
  mountpoint: string;
  fstype: string;
  source: string;
  /** "major:minor" of the mount's device; names its fuse connection. */
  device: string;
}

const OPTION_VALUE = /^[^,\s=]+$/;

/**
 * `name` (a mount's source directory, say) as an fsname {@link mountFuse} takes: as it is,
 * or with each comma, blank and `=` made `_`, which mount(8)'s option string cannot carry.
 */
export function fsnameFor(name: string): string {
  return OPTION_VALUE.test(name) ? name : name.replace(/[,\s=]/g, "_");
}

/**
 * Mounts a FUSE filesystem at `options.mountpoint` and returns the descriptor to serve.
 * A stale mount left by a crashed process is cleared first; a live one is an error.
 */
export async function mountFuse(options: MountOptions): Promise<Mounted> {
  const { mountpoint } = options;
  if (!isAbsolute(mountpoint)) {
    throw new MountError(mountpoint, `mountpoint must be an absolute path: ${mountpoint}`);
  }
  const fsname = options.fsname ?? "riakfs";
  const subtype = options.subtype ?? "riakfs";
  for (const [what, value] of [["fsname", fsname], ["subtype", subtype]]) {
    if (!OPTION_VALUE.test(value)) {
      throw new MountError(mountpoint, `${what} must not contain commas, spaces or '=': ${value}`);
    }
  }
  await clearStaleMount(mountpoint);
  await checkMountpoint(mountpoint);

  let fd: number;
  try {
    fd = fs.openSync("/dev/fuse", "r+");
  } catch (error) {
    throw new MountError(mountpoint, `cannot open /dev/fuse: ${(error as Error).message}`);
  }
  const mountOptions = [
    "fd=3",
    "rootmode=40000",
    `user_id=${process.getuid?.() ?? 0}`,
    `group_id=${process.getgid?.() ?? 0}`,
    ...(options.allowOther ? ["allow_other"] : []),
    ...(options.defaultPermissions ? ["default_permissions"] : []),
    ...(options.extraOptions ?? []),
  ];
  try {
    // -i: do not hand over to /sbin/mount.fuse3, which would want to open /dev/fuse itself.
    await runTool(
      "mount",
      ["-i", "-t", `fuse.${subtype}`, "-o", mountOptions.join(","), fsname, mountpoint],
      [fd],
    );
  } catch (error) {
    fs.closeSync(fd);
    throw new MountError(mountpoint, `mount failed: ${(error as Error).message}`);
  }
  const mount = (await readMounts()).findLast((m) => m.mountpoint === mountpoint);
  return { fd, mountpoint, device: mount?.device ?? "" };
}

/** How long a mountpoint's filesystem may take to answer a stat before a mount is refused. */
const MOUNTPOINT_ANSWER_MS = 5000;

/**
 * Throws a {@link MountError} unless `mountpoint` can take a mount: a directory that no live
 * FUSE filesystem is mounted on (a dead one, left by a crash, is cleared by
 * {@link mountFuse}), and that answers (a hung one would hold the mount forever). A path that
 * does not exist or is not a directory is left to the caller, who says so.
 */
export async function checkMountpoint(mountpoint: string): Promise<void> {
  if (!(await answersWithin(mountpoint, MOUNTPOINT_ANSWER_MS))) {
    throw new MountError(
      mountpoint,
      `cannot mount on ${mountpoint}: the filesystem mounted there does not answer within ` +
        `${MOUNTPOINT_ANSWER_MS / 1000} s (its process hung or stopped?); unmount it first ` +
        `(riakfs umount ${mountpoint}, --lazy if it is busy)`,
    );
  }
  const state = await mountpointState(mountpoint);
  if (state === "stale" || state === "missing") return;
  if (state !== "ok") throw new MountError(mountpoint, `cannot mount on ${mountpoint}: ${state}`);
  const existing = (await readMounts()).find((mount) => mount.mountpoint === mountpoint);
  if (existing?.fstype.startsWith("fuse")) {
    throw new MountError(mountpoint, `${mountpoint} is already a ${existing.fstype} mount`);
  }
}

/**
 * Unmounts `mountpoint`. A busy mount is an error unless `lazy`, which detaches it now
 * and lets it go when its last user does.
 */
export async function unmount(mountpoint: string, lazy = false): Promise<void> {
  try {
    await runTool("umount", ["--no-canonicalize", ...(lazy ? ["-l"] : []), mountpoint]);
  } catch (error) {
    throw new MountError(
      mountpoint,
      `unmounting ${mountpoint} failed: ${(error as Error).message}`,
    );
  }
}

/** The mounts of this process's mount namespace. */
export async function readMounts(): Promise<MountInfo[]> {
  const text = await fs.promises.readFile("/proc/self/mountinfo", "utf8");
  const mounts: MountInfo[] = [];
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source super
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 0 || fields.length < separator + 3) continue;
    mounts.push({
      device: fields[2],
      mountpoint: unescapeMountField(fields[4]),
      fstype: fields[separator + 1],
      source: unescapeMountField(fields[separator + 2]),
    });
  }
  return mounts;
}

/**
 * Whether `mount` is still among `mounts`: its device at its mountpoint. The device alone does
 * not say it: the anonymous device number of a FUSE mount that went is taken at once by the
 * next FUSE mount made anywhere on the machine (another service's, another test run's).
 */
export function isStillMounted(mount: MountInfo, mounts: MountInfo[]): boolean {
  return mounts.some((m) => m.device === mount.device && m.mountpoint === mount.mountpoint);
}

/** Whether `mountpoint` is currently a FUSE mount (of any FUSE filesystem). */
export async function isFuseMounted(mountpoint: string): Promise<boolean> {
  return (await readMounts()).some((mount) =>
    mount.mountpoint === mountpoint && mount.fstype.startsWith("fuse")
  );
}

/** "\040" in mountinfo stands for a space, and so on for tab, newline and backslash. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Clears a dead FUSE mount at `mountpoint` (its process is gone; every access answers
 * ENOTCONN). Returns whether there was one.
 */
export async function clearStaleMount(mountpoint: string): Promise<boolean> {
  if (await mountpointState(mountpoint) !== "stale") return false;
  await unmount(mountpoint, true);
  return true;
}

/**
 * Whether the FUSE filesystem at `mountpoint` answers a stat of its root within `timeoutMs`:
 * "stale" when its process is gone (ENOTCONN), "silent" when nothing answers in time (a hung
 * or stopped process), "live" otherwise (also when it answers with an error).
 */
export async function probeMount(
  mountpoint: string,
  timeoutMs: number,
): Promise<"live" | "stale" | "silent"> {
  if (!(await answersWithin(mountpoint, timeoutMs))) return "silent";
  const state = await mountpointState(mountpoint);
  return state === "stale" ? "stale" : "live";
}

/**
 * Whether a stat of `path` returns within `timeoutMs`, asked by a child process that is
 * killed when it does not: a stat this process made of a hung mount would never return,
 * keeping this process from exiting and the mount busy (so that it could not be unmounted).
 */
function answersWithin(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", 'test -e "$1"', "riakfs-probe", path], { stdio: "ignore" });
    const timer = setTimeout(() => {
      // A request the hung server already read outlives even SIGKILL: not waited for.
      child.kill("SIGKILL");
      child.unref();
      resolve(false);
    }, timeoutMs);
    child.on("error", () => {
      clearTimeout(timer);
      resolve(true); // No shell to ask: the stat this process makes answers instead.
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** "missing" when `mountpoint` is no directory; "stale" for a dead mount; else an error. */
async function mountpointState(mountpoint: string): Promise<"ok" | "stale" | "missing" | string> {
  try {
    const stat = await fs.promises.stat(mountpoint);
    return stat.isDirectory() ? "ok" : "missing";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTCONN" || code === "ECONNABORTED") return "stale";
    if (code === "ENOENT" || code === "ENOTDIR") return "missing";
    return (error as Error).message;
  }
}

/** Runs a system tool, passing `fds` as its fd 3, 4...; rejects with its stderr. */
function runTool(file: string, args: string[], fds: number[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe", ...fds] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    child.on("error", (error) => reject(new Error(`cannot run ${file}: ${error.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = stderr.trim().split("\n").pop() || `exit ${code ?? signal}`;
        reject(new Error(why));
      }
    });
  });
}

const FUSECTL = "/sys/fs/fuse/connections";

/**
 * Aborts the FUSE connection of the mount with device `device` ("major:minor", from
 * {@link Mounted.device} or mountinfo) through the fuse control filesystem, mounted on
 * demand: every pending and future request fails at once and reads of the device end, so
 * even a server with open files or a hung handler can stop. Never touches the mountpoint.
 * "gone" when the connection had ended already.
 */
export async function abortConnection(device: string): Promise<"aborted" | "gone" | "failed"> {
  const [major, minor] = device.split(":").map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return "failed";
  const abortFile = `${FUSECTL}/${(major << 20) | minor}/abort`;
  if (!fs.existsSync(abortFile)) {
    await runTool("mount", ["-t", "fusectl", "none", FUSECTL]).catch(() => {});
  }
  try {
    await fs.promises.writeFile(abortFile, "1");
    return "aborted";
  } catch (error) {
    // Ended already (detached with no user left, the kernel let the connection go): the
    // control filesystem is there, the connection's directory is not.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return "failed";
    const controlMounted = (await readMounts()).some((mount) => mount.fstype === "fusectl");
    return controlMounted ? "gone" : "failed";
  }
}

/** The word the server sends the watchdog on a clean shutdown. */
const CLEAN_WORD = "clean";

/** A process that lazily unmounts when the serving process dies without a clean word. */
export interface Watchdog {
  /** The watchdog's pid (it lives until the server exits or says goodbye). */
  pid: number | undefined;
  /** Tells the watchdog the mount was taken down cleanly; it exits without unmounting. */
  disarm(): Promise<void>;
}

/**
 * Starts a detached watchdog for `mountpoint`. It holds the read end of a pipe from this
 * process; when the pipe closes without the clean word (this process died), it runs
 * `umount -l`, so applications get a usable directory back at once: only while the mount
 * there is dead (an open of it answers ENOTCONN), since a process that hung, was unmounted
 * and then killed must not take away the mount that took its place.
 */
export function startWatchdog(mountpoint: string): Watchdog {
  const script = `read -r word; [ "$word" = ${CLEAN_WORD} ] && exit 0
true 2>/dev/null < "$1" || exec umount --no-canonicalize -l "$1"`;
  const child = spawn("sh", ["-c", script, "riakfs-watchdog", mountpoint], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.on("error", () => {}); // Reported through pid === undefined.
  child.unref();
  const stdin = child.stdin!;
  (stdin as unknown as { unref?: () => void }).unref?.();
  stdin.on("error", () => {});
  return {
    pid: child.pid,
    disarm: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || stdin.destroyed) return resolve();
        stdin.end(`${CLEAN_WORD}\n`, () => resolve());
      }),
  };
}

/** Waits for the unmount of `mountpoint` by polling mountinfo, up to `timeoutMs`. */
export async function waitUntilUnmounted(mountpoint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isFuseMounted(mountpoint))) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return !(await isFuseMounted(mountpoint));
}
