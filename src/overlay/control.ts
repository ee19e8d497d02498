/**
 * The control socket of a running mount: a unix socket beside the pid file that answers
 * `riakfs status MOUNTPOINT` with the mount's counters as JSON. One request per connection:
 * the client writes a command line (`status\n`), the server writes one JSON line and closes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { chmod, lstat, unlink } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { resolve } from "node:path";
import { formatBytes } from "../migration/progress_reporter.ts";
import type { HealthSnapshot } from "./health.ts";
import { DEFAULT_RUN_DIRECTORY, DEFAULT_STATUS_TIMEOUT_MS } from "./defaults.ts";
import { cacheHitRatio, type MetricsSnapshot } from "./metrics.ts";
import { describeMode, type MountMode, presetOf } from "./modes.ts";

/** The run-time files of one mount. */
export interface RuntimePaths {
  pidFile: string;
  controlSocket: string;
  /** Where a background mount logs when it was given no `--log-file`. */
  logFile: string;
}

/** The longest path a unix socket address holds (108 bytes with the terminating NUL). */
const SOCKET_PATH_MAX_BYTES = 107;

/** The run directory is too long for a control socket path below it. */
export class RunDirectoryTooLongError extends Error {
  constructor(runDirectory: string) {
    super(
      `run directory ${runDirectory} is too long for a control socket below it (unix socket ` +
        `paths hold ${SOCKET_PATH_MAX_BYTES} bytes); choose a shorter --run-dir`,
    );
    this.name = "RunDirectoryTooLongError";
  }
}

/**
 * The pid file, control socket and log of the mount at `mountpoint`. Names are derived from the
 * absolute mountpoint, shortened and hashed so the socket path stays below the 108-byte
 * limit of unix socket addresses: the readable part shrinks with a long run directory, and a
 * run directory that leaves no room even for the hash is refused
 * ({@link RunDirectoryTooLongError}) rather than failing later as EINVAL.
 *
 * @example
 * ```ts
 * runtimePaths("/srv/images").controlSocket; // "/run/riakfs/srv-images-<hash>.sock"
 * ```
 */
export function runtimePaths(
  mountpoint: string,
  runDirectory = DEFAULT_RUN_DIRECTORY,
): RuntimePaths {
  const absolute = resolve(mountpoint);
  const directory = resolve(runDirectory);
  const hash = createHash("sha256").update(absolute).digest("hex").slice(0, 12);
  const room = SOCKET_PATH_MAX_BYTES - Buffer.byteLength(`${directory}/-${hash}.sock`);
  if (room < 0) throw new RunDirectoryTooLongError(directory);
  const readable = absolute.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]+/g, "-")
    .slice(0, Math.min(40, room)) || "root".slice(0, room);
  const base = `${directory}/${readable}-${hash}`;
  return { pidFile: `${base}.pid`, controlSocket: `${base}.sock`, logFile: `${base}.log` };
}

/** What a running mount reports about itself. */
export interface StatusReport {
  mountpoint: string;
  /** The source directory, if the mode uses one. */
  source?: string;
  pid: number;
  /** When the mount started serving (ISO 8601). */
  startedAt: string;
  /** The preset the knobs match, if any. */
  preset?: string;
  mode: MountMode;
  /** `pings`: how each node answered a ping just now (Riak-backed modes). */
  riak: HealthSnapshot & { nodes: string[]; pings?: NodePing[] };
  spool?: { directory: string; files: number; bytes: number };
  metrics: MetricsSnapshot;
}

/** How one Riak node answered a ping: its round trip, or why it did not. */
export interface NodePing {
  node: string;
  /** Milliseconds the ping took; undefined when it failed. */
  ms?: number;
  /** Why it failed. */
  error?: string;
}

/**
 * Why no answer came from a control socket: no socket file (`absent`), nobody listening on it
 * (`refused`), a listener that stayed silent for the timeout (`silent`: a stuck process), a
 * connection closed before the answer (`closed`: the process ended meanwhile), or an answer
 * not understood (`garbled`).
 */
export type NotServingKind = "absent" | "refused" | "silent" | "closed" | "garbled";

/** No mount answers at the control socket. */
export class NotServingError extends Error {
  /** The control socket tried. */
  readonly socket: string;
  /** Why it did not answer. */
  readonly kind: NotServingKind;

  constructor(mountpoint: string, socket: string, reason: string, kind: NotServingKind) {
    super(`no riakfs mount answers for ${mountpoint} (control socket ${socket}: ${reason})`);
    this.name = "NotServingError";
    this.socket = socket;
    this.kind = kind;
  }
}

/**
 * The mount's process ended (or dropped the connection) before it answered a drain: another
 * `riakfs umount` or a signal took it down meanwhile.
 */
export class DrainInterruptedError extends NotServingError {
  /** The uploads pending when the mount last reported progress; undefined if it never did. */
  readonly lastPending: number | undefined;

  constructor(cause: NotServingError, mountpoint: string, lastPending: number | undefined) {
    super(mountpoint, cause.socket, "closed before the drain's outcome", "closed");
    this.name = "DrainInterruptedError";
    this.lastPending = lastPending;
  }
}

/** A listening control server. */
export interface ControlServer {
  socket: string;
  close(): Promise<void>;
}

/** What a drain of the upload queue achieved (`riakfs umount`, SIGTERM/SIGINT). */
export interface DrainOutcome {
  /** Uploads that reached Riak while draining (including writes made meanwhile). */
  drained: number;
  /**
   * Uploads that left the queue while draining without reaching Riak, since a later change of
   * the same file did all they would, or there was nothing left to do; a mount of an older
   * riakfs does not say.
   */
  unneeded?: number;
  /** Uploads given up on while draining (the mount's log says why); see {@link unneeded}. */
  givenUp?: number;
  /** Uploads still pending when the drain ended; they stay journaled for the next start. */
  pending: number;
  /** How long the drain was allowed to take. */
  timeoutMs: number;
  /** Where the pending uploads wait (the spool), if the mode has one. */
  spool?: string;
  /**
   * Why uploads stayed pending, as far as the mount knows: Riak unreachable since when and
   * with what error, or refusing requests (the last one's error); a mount of an older riakfs
   * does not say.
   */
  riak?: string;
  /**
   * The mount's serving process, which ends after the unmount and holds the spool until then
   * (a mount of an older riakfs does not say).
   */
  pid?: number;
}

/**
 * Drains the mount's upload queue while it keeps serving; `timeoutMs` undefined means the
 * mount's own `--drain-timeout`. `progress` is called now and then with the uploads left.
 */
export type DrainHandler = (
  timeoutMs: number | undefined,
  progress: (pending: number) => void,
) => Promise<DrainOutcome>;

/** How often a drain in progress tells its client it is alive. */
const DRAIN_PROGRESS_INTERVAL_MS = 1_000;

/**
 * Listens on `socket` (mode 0600; a stale socket file from a crashed run is replaced) and
 * answers `status` with `report()` and `drain [ms]` with `drain()` (one progress line a
 * second while it runs, then the outcome).
 */
export async function startControlServer(
  socket: string,
  report: () => Promise<StatusReport>,
  drain?: DrainHandler,
): Promise<ControlServer> {
  await unlinkIfPresent(socket);
  const answer = (
    command: string,
    send: (value: unknown) => void,
  ): Promise<unknown> => {
    const [verb, argument] = command.split(/\s+/, 2);
    if (verb === "status") return report().then((value) => ({ ok: true, status: value }));
    if (verb === "drain" && drain) {
      const timeoutMs = argument === undefined ? undefined : Number(argument);
      if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0)) {
        return Promise.resolve({ ok: false, error: `bad drain timeout ${argument}` });
      }
      let last = -1;
      const progress = (pending: number) => {
        if (pending !== last) send({ ok: true, progress: { pending } });
        last = pending;
      };
      const alive = setInterval(
        () => send({ ok: true, progress: { pending: last } }),
        DRAIN_PROGRESS_INTERVAL_MS,
      );
      return drain(timeoutMs, progress)
        .then((outcome) => ({ ok: true, drain: outcome }))
        .finally(() => clearInterval(alive));
    }
    return Promise.resolve({ ok: false, error: `unknown command ${JSON.stringify(command)}` });
  };
  const server: Server = createServer((connection) => {
    let request = "";
    connection.setEncoding("utf8");
    connection.on("error", () => {}); // A client that went away is not the mount's problem.
    connection.on("data", (piece: string) => {
      if (request.includes("\n")) return; // One request per connection.
      request += piece;
      if (!request.includes("\n")) return;
      const command = request.slice(0, request.indexOf("\n")).trim();
      const send = (value: unknown) => {
        if (!connection.writableEnded) connection.write(JSON.stringify(value) + "\n");
      };
      answer(command, send)
        .catch((error: Error) => ({ ok: false, error: error.message }))
        .then((value) => connection.end(JSON.stringify(value) + "\n"));
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(socket, () => {
      server.off("error", fail);
      done();
    });
  });
  await chmod(socket, 0o600);
  const own = (await lstat(socket)).ino;
  return {
    socket,
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      // A mount of the same mountpoint started since (this one lingered, detached) has put
      // its own socket there: that one stays.
      const there = await lstat(socket).catch(() => undefined);
      if (there?.ino === own) await unlinkIfPresent(socket);
    },
  };
}

/**
 * Sends one command to the mount behind `socket` and resolves with the last JSON line of
 * its answer (`ok` checked). Every line received restarts the `idleTimeoutMs` clock, so a
 * long drain that reports progress is waited for, a mount that went silent is not.
 */
function request(
  mountpoint: string,
  socket: string,
  command: string,
  idleTimeoutMs: number,
  onLine: (line: Record<string, unknown>) => void = () => {},
): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    let answer = "";
    const client = connect(socket);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        client.destroy();
        fail(
          new NotServingError(
            mountpoint,
            socket,
            `no answer within ${idleTimeoutMs} ms`,
            "silent",
          ),
        );
      }, idleTimeoutMs);
    };
    arm();
    client.setEncoding("utf8");
    client.on("connect", () => client.write(`${command}\n`));
    client.on("data", (piece: string) => {
      arm();
      answer += piece;
      let newline: number;
      while ((newline = answer.indexOf("\n")) !== -1 && answer.indexOf("\n", newline + 1) !== -1) {
        try {
          onLine(JSON.parse(answer.slice(0, newline)));
        } catch {
          // A garbled progress line is not worth failing the request for.
        }
        answer = answer.slice(newline + 1);
      }
    });
    client.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const [reason, kind]: [string, NotServingKind] = error.code === "ENOENT"
        ? ["not found", "absent"]
        : error.code === "ECONNREFUSED"
        ? ["nothing listening", "refused"]
        : error.code === "ECONNRESET" || error.code === "EPIPE"
        ? [error.message, "closed"]
        : error.code === "EACCES"
        // The socket is root's (mode 0600): another user's "connect EACCES" read as broken.
        ? ["permission denied: only root may ask the mount (run this as root)", "garbled"]
        : [error.message, "garbled"];
      fail(new NotServingError(mountpoint, socket, reason, kind));
    });
    client.on("end", () => {
      clearTimeout(timer);
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(answer);
      } catch {
        // Nothing, or half a line: the process ended before it answered.
      }
      if (parsed !== undefined && "progress" in parsed) onLine(parsed);
      if (parsed === undefined || "progress" in parsed) {
        fail(new NotServingError(mountpoint, socket, "closed without an answer", "closed"));
      } else if (!parsed.ok) {
        fail(new NotServingError(mountpoint, socket, `bad answer: ${parsed.error}`, "garbled"));
      } else done(parsed);
    });
  });
}

/** Asks the mount behind `socket` for its status. */
export async function queryStatus(
  mountpoint: string,
  socket: string,
  timeoutMs = DEFAULT_STATUS_TIMEOUT_MS,
): Promise<StatusReport> {
  return (await request(mountpoint, socket, "status", timeoutMs)).status as StatusReport;
}

/**
 * Asks the mount behind `socket` to drain its upload queue while it keeps serving (for at
 * most `timeoutMs`, or its own `--drain-timeout` when undefined); `onProgress` hears the
 * uploads left. Throws {@link NotServingError} when no mount answers or one goes silent for
 * `idleTimeoutMs`.
 */
export async function requestDrain(
  mountpoint: string,
  socket: string,
  timeoutMs: number | undefined,
  onProgress: (pending: number) => void = () => {},
  idleTimeoutMs = DEFAULT_STATUS_TIMEOUT_MS,
): Promise<DrainOutcome> {
  const command = timeoutMs === undefined ? "drain" : `drain ${timeoutMs}`;
  let lastPending: number | undefined;
  const heard = (line: Record<string, unknown>) => {
    const progress = line.progress as { pending: number } | undefined;
    if (progress && progress.pending >= 0) {
      lastPending = progress.pending;
      onProgress(progress.pending);
    }
  };
  let answer: Record<string, unknown>;
  try {
    answer = await request(mountpoint, socket, command, idleTimeoutMs, heard);
  } catch (error) {
    if (error instanceof NotServingError && error.kind === "closed") {
      throw new DrainInterruptedError(error, mountpoint, lastPending);
    }
    throw error;
  }
  if (!answer.drain) {
    throw new NotServingError(
      mountpoint,
      socket,
      "bad answer: the mount cannot drain",
      "garbled",
    );
  }
  return answer.drain as DrainOutcome;
}

/**
 * The requests Riak refused, for the status's riak line: reachable is not all is well when
 * Riak answers every upload with an error (its disk full), while the uploads pile up.
 */
function refusals(refused: HealthSnapshot["refused"]): string {
  if (!refused) return "";
  return `, ${refused.count} request(s) refused (the last at ${
    new Date(refused.lastAt).toISOString()
  }: ${refused.lastError})`;
}

/**
 * What Riak did that keeps uploads pending, for a drain's outcome: unreachable (since when,
 * and why), or refusing requests since `since` (ms since the epoch); undefined when neither.
 */
export function riakTrouble(health: HealthSnapshot, since: number): string | undefined {
  if (!health.reachable) {
    return `Riak unreachable since ${
      new Date(health.downSince!).toISOString()
    }: ${health.lastError}`;
  }
  const refused = health.refused;
  if (refused && refused.lastAt >= since) {
    return `Riak refused requests, the last at ${
      new Date(refused.lastAt).toISOString()
    }: ${refused.lastError}`;
  }
  return undefined;
}

/** The status as text for people. */
export function formatStatus(report: StatusReport): string {
  const m = report.metrics;
  const ratio = cacheHitRatio(m);
  const ops = Object.entries(m.ops).sort(([a], [b]) => a.localeCompare(b));
  const inReaders = Object.entries(m.opsInReaders).sort(([a], [b]) => a.localeCompare(b));
  const errors = Object.entries(m.errors).sort(([a], [b]) => a.localeCompare(b));
  const lines = [
    `mountpoint   ${report.mountpoint}`,
    `source       ${report.source ?? "-"}`,
    `pid          ${report.pid}, serving since ${report.startedAt}`,
    `mode         ${report.preset ?? presetOf(report.mode) ?? "custom"} (${
      describeMode(report.mode)
    })`,
    // The passthrough never talks to Riak: nothing to say of it.
    report.riak.nodes.length === 0
      ? "riak         - (this preset does not use Riak)"
      : `riak         ${report.riak.nodes.join(",")} ${
        report.riak.reachable
          ? "reachable"
          : `UNREACHABLE since ${
            new Date(report.riak.downSince!).toISOString()
          }: ${report.riak.lastError}`
      }, ${report.riak.outages} outage(s)${refusals(report.riak.refused)}`,
    ...(report.riak.pings === undefined ? [] : [
      `ping         ${
        report.riak.pings.map((ping) =>
          ping.ms === undefined
            ? `${ping.node} NO ANSWER (${ping.error})`
            : `${ping.node} ${ping.ms.toFixed(1)} ms`
        ).join(", ")
      }`,
    ]),
    `read         ${formatBytes(m.bytesReadLocal)} local, ${
      formatBytes(m.bytesReadRiak)
    } from Riak`,
    `written      ${formatBytes(m.bytesWritten)}`,
    `uploads      ${m.uploads.pending} pending, ${m.uploads.active} running, ${m.uploads.uploaded} done (${
      formatBytes(m.uploads.bytesUploaded)
    }), ${m.uploads.failedAttempts} failed attempts, ${m.uploads.abandoned} abandoned`,
    `copy-on-read ${m.copyOnRead.queued} queued, ${m.copyOnRead.active} running, ${m.copyOnRead.copied} copied, ${m.copyOnRead.skipped} skipped, ${m.copyOnRead.failed} failed, ${m.copyOnRead.withdrawn} withdrawn`,
    `dir mtimes   ${m.directoryTimesPending} not yet written to Riak`,
    `local copies ${m.localDeletion.deleted} deleted after verification, ${m.localDeletion.kept} kept`,
    `cache        ${formatBytes(m.cache.bytes)} held, hit ratio ${
      ratio === undefined ? "-" : `${(ratio * 100).toFixed(1)}%`
    } (${m.cache.hits} hits, ${m.cache.misses} misses)`,
  ];
  if (report.spool) {
    lines.push(
      `spool        ${report.spool.directory}: ${report.spool.files} file(s), ${
        formatBytes(report.spool.bytes)
      }`,
    );
  }
  lines.push(
    `ops          ${ops.length === 0 ? "-" : ops.map(([op, n]) => `${op}=${n}`).join(" ")}`,
  );
  // Of `ops`, what never reached the event loop: tells whether the fast path is taken.
  lines.push(
    `  in readers ${
      inReaders.length === 0 ? "-" : inReaders.map(([op, n]) => `${op}=${n}`).join(" ")
    }`,
  );
  lines.push(
    `errors       ${
      errors.length === 0 ? "-" : errors.map(([code, n]) => `${code}=${n}`).join(" ")
    }`,
  );
  return lines.join("\n");
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
