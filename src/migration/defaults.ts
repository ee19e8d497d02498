/**
 * The migration commands' default settings, in a module without imports so that a command
 * line can show them in its help without loading the pre-warm and the store.
 *
 * @module
 */

/** Default files uploaded at once. */
export const DEFAULT_CONCURRENCY = 4;

/**
 * Files in flight besides the uploads, per upload slot: while `concurrency` files are being
 * uploaded, the next ones are already stat'ed locally and looked up in Riak (and, in a first
 * pass, a small file read), so an upload slot never waits for a look-up; and files whose
 * object is stored wait for their directory entry (a batched set update, a round trip or
 * two) without holding up the next uploads. One per slot left a third of the slots idle
 * against a Riak answering in 2 ms (bench/prewarm/latency_bench.ts: 513-530 files/s against
 * 593-740 with three, the plain loop 822-880).
 */
export const CHECKED_AHEAD_PER_UPLOAD = 3;

/**
 * Default quiet period of the verified deletion (`--delete-quiet-period`, seconds): a local
 * file whose mtime or ctime is more recent is kept for now, as something may still be writing
 * it (a writer that opens the file for each line holds it open only now and then).
 */
export const DEFAULT_DELETE_QUIET_PERIOD_S = 60;

/** The environment variable that sets `--delete-quiet-period` (prewarm and mount). */
export const DELETE_QUIET_PERIOD_ENV = "RIAKFS_DELETE_QUIET_PERIOD";

/** Default parent of the state directories. */
export const DEFAULT_STATE_ROOT = "/var/lib/riakfs";
