/**
 * The mount's default settings, in a module without imports so that `riakfs --help` and
 * the commands' option parsing can show them without loading the overlay.
 *
 * @module
 */

/** Where mounts keep their pid files and control sockets. */
export const DEFAULT_RUN_DIRECTORY = "/run/riakfs";

/** Default time `riakfs status` waits for the mount to answer. */
export const DEFAULT_STATUS_TIMEOUT_MS = 5_000;

/** Default byte bound of the chunk cache. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** Default blocks a sequential reader pulls ahead (see sequential_reader.ts). */
export const DEFAULT_READ_AHEAD_BLOCKS = 4;

/** Default number of copy-on-read copies running at once. */
export const DEFAULT_COPY_CONCURRENCY = 2;

/** Default number of uploads running at once. */
export const DEFAULT_UPLOAD_CONCURRENCY = 4;
