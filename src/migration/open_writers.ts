/**
 * Which files other processes hold open for writing, from /proc (Linux): a daemon started
 * before the mount keeps writing into the source file beneath it, and a verified deletion
 * of that file would take every later write with it.
 *
 * @module
 */
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { openDescriptors, processIds } from "../util/process.ts";
import { RACY_WINDOW_MS } from "./local_file.ts";

/** Longest time an index of open writers is used before it is built again. */
export const OPEN_WRITERS_MAX_AGE_MS = 1000;

/** The access mode bits of open(2)'s flags (O_ACCMODE) and its two writing values. */
const O_ACCMODE = 0o3;
const O_WRONLY = 0o1;
const O_RDWR = 0o2;

/** Processes looked at between two yields to the event loop while an index is built. */
const PROCESSES_PER_TURN = 32;

/** Options of {@link OpenWriters}. */
export interface OpenWritersOptions {
  /** Where procfs is mounted; default /proc. */
  procRoot?: string;
  /** The process whose own handles do not count (this one: its writes are its own). */
  ownPid?: number;
  /** How long one index is used; default {@link OPEN_WRITERS_MAX_AGE_MS}. */
  maxAgeMs?: number;
  /** The clock, in ms. */
  now?: () => number;
}

/**
 * The (device, inode) pairs other processes hold open for writing (O_WRONLY or O_RDWR), as an
 * index built from every /proc/PID/fd and reused for {@link OpenWritersOptions.maxAgeMs}, so a
 * pre-warm deleting many files reads /proc about once a second, not once a file. A process
 * that ends or denies access while it is read is passed over; without /proc nothing is known
 * to be open.
 *
 * @example
 * ```ts
 * const writers = new OpenWriters();
 * if (await writers.isOpenForWriting(stats.dev, stats.ino)) keep(file);
 * ```
 */
export class OpenWriters {
  readonly #procRoot: string;
  readonly #ownPid: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #index: { builtAt: number; files: Promise<Set<string>> } | undefined;

  constructor(options: OpenWritersOptions = {}) {
    this.#procRoot = options.procRoot ?? "/proc";
    this.#ownPid = String(options.ownPid ?? process.pid);
    this.#maxAgeMs = options.maxAgeMs ?? OPEN_WRITERS_MAX_AGE_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Whether another process holds the file `dev`/`ino` open for writing. `changedNs`, the
   * file's ctime (ns since the epoch), makes an index built before it be built anew: that index
   * knew another file under the inode number (freed and taken again), or not yet the process
   * that made this one and still writes it. The ctime comes from the kernel's coarse clock, up
   * to a tick behind the time it stands for: an index begun less than {@link RACY_WINDOW_MS}
   * before it is not trusted either (one built just before another process freed the inode
   * number this file took took the file for that process's, and a drain kept it as in use).
   */
  async isOpenForWriting(dev: bigint, ino: bigint, changedNs?: bigint): Promise<boolean> {
    const now = this.#now();
    if (
      this.#index === undefined || now - this.#index.builtAt >= this.#maxAgeMs ||
      (changedNs !== undefined &&
        BigInt(this.#index.builtAt - RACY_WINDOW_MS) * 1_000_000n <= changedNs)
    ) {
      const files = this.#build();
      this.#index = { builtAt: now, files };
      // A failed build is not reused: the next question builds again.
      files.catch(() => {
        if (this.#index?.files === files) this.#index = undefined;
      });
    }
    return (await this.#index.files).has(fileKey(dev, ino));
  }

  async #build(): Promise<Set<string>> {
    const files = new Set<string>();
    let processes: string[];
    let ours: MountsOf;
    try {
      processes = processIds(this.#procRoot);
      ours = mountsOf(readFileSync(`${this.#procRoot}/self/mountinfo`, "latin1"));
    } catch {
      return files;
    }
    // Other mount namespaces' mounts, by namespace: read once per index, when needed.
    const theirs = new Map<string, MountsOf | undefined>();
    for (let at = 0; at < processes.length; at++) {
      if (at > 0 && at % PROCESSES_PER_TURN === 0) await nextTurn();
      if (processes[at] === this.#ownPid) continue;
      const statable = (mountId: string) =>
        ours.all.has(mountId)
          ? ours.statable.has(mountId)
          : this.#namespaceMounts(processes[at], theirs)?.statable.has(mountId) === true;
      this.#addWritersOf(processes[at], statable, files);
    }
    return files;
  }

  /**
   * The mounts of process `pid`'s mount namespace (cached in `known` by namespace), undefined
   * where they cannot be read. Every mount of another namespace (a container's, a systemd
   * service's with PrivateTmp= or ProtectSystem=) has an id this one's mountinfo lacks, the
   * copies of the host's mounts included: passed over, a daemon of such a service holding a
   * file of the source open for writing went unseen, and a drain deleted the file.
   */
  #namespaceMounts(pid: string, known: Map<string, MountsOf | undefined>): MountsOf | undefined {
    let namespace: string;
    try {
      namespace = readlinkSync(`${this.#procRoot}/${pid}/ns/mnt`);
    } catch {
      namespace = `pid ${pid}`;
    }
    if (!known.has(namespace)) {
      try {
        known.set(
          namespace,
          mountsOf(readFileSync(`${this.#procRoot}/${pid}/mountinfo`, "latin1")),
        );
      } catch {
        known.set(namespace, undefined);
      }
    }
    return known.get(namespace);
  }

  /**
   * Adds the files process `pid` has open for writing; nothing where it is gone or hidden.
   * Only files on `statable` mounts (by fdinfo's `mnt_id`) are looked at: a stat of a file on
   * a riakfs mount is a request to that mount, and from the mount's own thread one to itself
   * that never gets an answer (an application writing through the mount hung a drain's
   * deletion). A source beneath a riakfs mount is on the filesystem under it, never on it.
   */
  #addWritersOf(pid: string, statable: (mountId: string) => boolean, into: Set<string>): void {
    for (const { fd, target } of openDescriptors(pid, this.#procRoot)) {
      // Sockets, pipes and anonymous inodes ("socket:[...]") are no files of a tree: their
      // fdinfo is not worth reading.
      if (target[0] !== 0x2f) continue;
      try {
        const info = readFileSync(`${this.#procRoot}/${pid}/fdinfo/${fd}`, "latin1");
        if (!writesThrough(info) || !statable(mountIdOf(info) ?? "")) continue;
        const stats = statSync(`${this.#procRoot}/${pid}/fd/${fd}`, { bigint: true });
        into.add(fileKey(stats.dev, stats.ino));
      } catch {
        // Closed meanwhile, or the process ended.
      }
    }
  }
}

/** Whether an fdinfo text's `flags:` (octal) open the file for writing. */
export function writesThrough(fdinfo: string): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(fdinfo);
  if (flags === null) return false;
  const access = parseInt(flags[1], 8) & O_ACCMODE;
  return access === O_WRONLY || access === O_RDWR;
}

/** An fdinfo text's `mnt_id:`, the mount its file is on; undefined before Linux 3.15. */
function mountIdOf(fdinfo: string): string | undefined {
  return /^mnt_id:\s*([0-9]+)$/m.exec(fdinfo)?.[1];
}

/** The ids of the mounts of one mount namespace, and of those among them that are statable. */
interface MountsOf {
  all: Set<string>;
  statable: Set<string>;
}

/**
 * The ids of the mounts in a mountinfo text (proc(5)), and those whose files can be stat'ed
 * without asking a riakfs mount: every one but those of type `fuse.riakfs`.
 */
function mountsOf(mountinfo: string): MountsOf {
  const all = new Set<string>();
  const statable = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const [id] = line.split(" ", 1);
    const type = line.split(" - ", 2)[1]?.split(" ", 1)[0];
    if (!id || type === undefined) continue;
    all.add(id);
    if (type !== "fuse.riakfs") statable.add(id);
  }
  return { all, statable };
}

function fileKey(dev: bigint, ino: bigint): string {
  return `${dev}:${ino}`;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The index the verified deletions of this process share (one /proc read a second at most). */
export const OPEN_WRITERS: OpenWriters = new OpenWriters();
