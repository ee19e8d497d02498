/**
 * The store's default settings that commands show in their help, in a module without
 * imports so that the help does not load the store.
 *
 * @module
 */

/** Default grace period before an unreferenced generation counts as garbage: one hour. */
export const DEFAULT_GC_MIN_AGE_MS = 60 * 60 * 1000;
