/**
 * What a background mount that ended before its mount was ready says on the terminal: the
 * error its process wrote to the log, which is the operator's next step, rather than only
 * where the log is.
 *
 * @module
 */

/**
 * The lines to print for a background process that ended without reporting its error, from
 * `written`, what it appended to `logFile`: its `riakfs...` error lines (a usage error, an
 * uncaught failure), else its last line; the last one names the log.
 */
export function backgroundFailureLines(written: string, logFile: string): string[] {
  const lines = written.split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
  const errors = lines.filter((line) => /^riakfs[ :]/.test(line));
  const shown = errors.length > 0 ? errors : lines.slice(-1);
  if (shown.length === 0) {
    return [`riakfs: the background process exited before the mount was ready (see ${logFile})`];
  }
  const last = shown.length - 1;
  return shown.map((line, index) => {
    const text = /^riakfs[ :]/.test(line) ? line : `riakfs: ${line}`;
    return index === last ? `${text} (background process's log: ${logFile})` : text;
  });
}
