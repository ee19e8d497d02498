/**
 * The migration commands' default settings, in a module without imports so that a command
 * line can show them in its help without loading the pre-warm and the store.
 *
 * @module
 */

/** Default files uploaded at once. */
export const DEFAULT_CONCURRENCY = 4;

/** Default parent of the state directories. */
export const DEFAULT_STATE_ROOT = "/var/lib/riakfs";
