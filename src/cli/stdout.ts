/**
 * Standard output of the commands whose output is what they are run for (`cat`, `ls`,
 * `verify`, `progress`, `status`): every write is awaited, so a full disk behind `> file`
 * fails the command instead of ending with status 0 and a short file, while a closed pipe
 * (`| head`) ends it quietly.
 *
 * @module
 */

/** Writes to stdout, waiting when the pipe is full; a closed pipe (`| head`) ends quietly. */
export type Output = (data: string | Uint8Array) => Promise<void>;

/** Standard output was closed by its reader (EPIPE): the command stops without an error. */
export class ClosedPipe extends Error {}

/**
 * Standard output refused what a command wrote (a full disk, a quota, an I/O error): the
 * command fails, since its output is what it was run for (`riakfs cat PATH > copy` must not
 * end with status 0 and an empty copy).
 */
export class StdoutWriteError extends Error {}

let stdoutClosed = false;
let stdoutWatched = false;

/** Notes a closed stdout (EPIPE) instead of crashing on it; any other error fails the writes. */
export function watchStdout(): void {
  if (stdoutWatched) return;
  stdoutWatched = true;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") stdoutClosed = true;
  });
}

/** Writes to stdout and resolves once the write is done, or rejects with why it failed. */
export function writeStdout(data: string | Uint8Array): Promise<void> {
  watchStdout();
  if (stdoutClosed) return Promise.reject(new ClosedPipe());
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error?: Error | null) => {
      if (!error) return resolve();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EPIPE" || stdoutClosed) {
        stdoutClosed = true;
        return reject(new ClosedPipe());
      }
      reject(new StdoutWriteError(`cannot write to standard output: ${error.message}`));
    });
  });
}

/**
 * Writes a command's result outside a Riak session: a refused write prints one line on stderr
 * and sets exit code 1; a closed pipe is not an error.
 */
export async function printResult(command: string, text: string): Promise<void> {
  try {
    await writeStdout(text);
  } catch (error) {
    if (error instanceof ClosedPipe) return;
    if (!(error instanceof StdoutWriteError)) throw error;
    process.stderr.write(`riakfs ${command}: ${error.message}\n`);
    process.exitCode = 1;
  }
}
