/**
 * Progress output of long runs: on a terminal a bar with rate and ETA redrawn in place;
 * elsewhere (cron, logs) one summary line every `intervalMs`, so a mail or log shows the run
 * advancing without a flood of carriage returns.
 *
 * @module
 */
import type { PassTally } from "./state.ts";

/** Where progress goes: a stream and whether it is a terminal. */
export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** The state of a run at one moment. */
export interface ProgressSnapshot {
  tally: PassTally;
  elapsedMs: number;
  /** Files the pass is expected to see in all (from the last complete pass), if known. */
  expectedFiles?: number;
}

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  sink: ProgressSink;
  /** Prefix of each line, e.g. `riakfs prewarm`. */
  label: string;
  /** Seconds between lines on a non-terminal; default 60. */
  intervalMs?: number;
  /** Bar redraws per second on a terminal: every 250 ms. */
  redrawMs?: number;
}

/**
 * Draws or prints progress until stopped.
 *
 * @example
 * ```ts
 * const reporter = new ProgressReporter({ sink: process.stderr, label: "riakfs prewarm" });
 * reporter.start(() => ({ tally, elapsedMs: Date.now() - started }));
 * try { await run(); } finally { reporter.stop(); }
 * ```
 */
export class ProgressReporter {
  readonly #options: ProgressOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #snapshot: (() => ProgressSnapshot) | undefined;

  constructor(options: ProgressOptions) {
    this.#options = options;
  }

  /** Starts drawing (terminal) or printing periodic lines (otherwise). */
  start(snapshot: () => ProgressSnapshot): void {
    this.#snapshot = snapshot;
    const tty = this.#options.sink.isTTY === true;
    const every = tty ? (this.#options.redrawMs ?? 250) : (this.#options.intervalMs ?? 60_000);
    this.#timer = setInterval(() => this.#emit(), every);
    // Progress output must never keep the process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Stops; on a terminal the bar line is cleared for the summary that follows. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#options.sink.isTTY === true && this.#snapshot) this.#options.sink.write("\r\x1b[K");
  }

  #emit(): void {
    if (!this.#snapshot) return;
    const snapshot = this.#snapshot();
    if (this.#options.sink.isTTY === true) {
      this.#options.sink.write(`\r\x1b[K${progressBar(snapshot, 30)}`);
    } else {
      this.#options.sink.write(`${this.#options.label}: ${progressLine(snapshot)}\n`);
    }
  }
}

/** One line for logs: counts, bytes moved, rate, elapsed. */
export function progressLine(snapshot: ProgressSnapshot): string {
  const t = snapshot.tally;
  const parts = [
    `${t.seen.files} files checked` + expectedSuffix(snapshot),
    `${t.uploaded.files} uploaded (${formatBytes(t.uploaded.bytes)}, ` +
    `${formatRate(t.uploaded.bytes, snapshot.elapsedMs)})`,
    `${t.failed.files} failed`,
  ];
  if (t.busy.files > 0) parts.push(`${t.busy.files} busy`);
  parts.push(`elapsed ${formatDuration(snapshot.elapsedMs)}`);
  const eta = etaMs(snapshot);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join(", ");
}

/** A terminal bar: `[#####.....] 50% 1234/2468 files 12.0 MB/s ETA 3m05s`. */
export function progressBar(snapshot: ProgressSnapshot, width: number): string {
  const t = snapshot.tally;
  const rate = formatRate(t.uploaded.bytes, snapshot.elapsedMs);
  const fraction = doneFraction(snapshot);
  const eta = etaMs(snapshot);
  if (fraction === undefined) {
    return `${t.seen.files} files checked, ${t.uploaded.files} uploaded, ${rate}, ` +
      `${t.failed.files} failed`;
  }
  const filled = Math.round(fraction * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.floor(fraction * 100)}% ` +
    `${t.seen.files}/${snapshot.expectedFiles} files ${rate}` +
    (eta === undefined ? "" : ` ETA ${formatDuration(eta)}`) +
    (t.failed.files > 0 ? ` ${t.failed.files} failed` : "");
}

function expectedSuffix(snapshot: ProgressSnapshot): string {
  return snapshot.expectedFiles === undefined ? "" : ` of ~${snapshot.expectedFiles}`;
}

function doneFraction(snapshot: ProgressSnapshot): number | undefined {
  const expected = snapshot.expectedFiles;
  if (expected === undefined || expected <= 0) return undefined;
  return Math.min(1, snapshot.tally.seen.files / expected);
}

function etaMs(snapshot: ProgressSnapshot): number | undefined {
  const fraction = doneFraction(snapshot);
  if (fraction === undefined || fraction <= 0 || snapshot.elapsedMs <= 0) return undefined;
  // Past the count (files made since it, or the last pass's count a new pass outgrew): what
  // is left is unknown, not nothing.
  if (snapshot.tally.seen.files > snapshot.expectedFiles!) return undefined;
  return (snapshot.elapsedMs * (1 - fraction)) / fraction;
}

/** Bytes in decimal units (MB = 1,000,000 bytes, as `--max-rate` counts). */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A transfer rate in MB/s. */
export function formatRate(bytes: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? bytes / 1e6 / (elapsedMs / 1000) : 0;
  return `${rate.toFixed(1)} MB/s`;
}

/** A duration such as `42s`, `3m05s`, `1h02m` or `3d04h`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  if (seconds < 86_400) {
    return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m`;
  }
  return `${Math.floor(seconds / 86_400)}d${pad(Math.floor(seconds / 3600) % 24)}h`;
}
