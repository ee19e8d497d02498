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

/** Default parent of the state directories. */
export const DEFAULT_STATE_ROOT = "/var/lib/riakfs";
