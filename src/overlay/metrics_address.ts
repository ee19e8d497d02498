/**
 * The `--metrics HOST:PORT` address, parsed where the mount's options are checked (without
 * loading the HTTP server).
 *
 * @module
 */

/** A malformed `--metrics` address. */
export class MetricsAddressError extends Error {
  constructor(text: string) {
    super(`--metrics must be HOST:PORT (e.g. 127.0.0.1:9464), got ${JSON.stringify(text)}`);
    this.name = "MetricsAddressError";
  }
}

/** Parses `HOST:PORT` (IPv6 in brackets); port 0 picks a free port. */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (!match || Number(match[2]) > 65535) throw new MetricsAddressError(text);
  return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port: Number(match[2]) };
}
