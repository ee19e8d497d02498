/**
 * What a riakfs mount keeps for itself inside SOURCE: its spool (journal and staged files)
 * at the top, and the temporary files it publishes fetched copies through, anywhere. The
 * mount hides them from its listings; the pre-warm, `progress` and `verify` leave them alone
 * too, so they are never uploaded as data, counted, or deleted by `--delete-local` (which
 * would lose the uploads the journal still owes Riak). So are the private names a
 * local deletion moves a file into before it deletes it (set_aside.ts), anywhere.
 *
 * @module
 */

/** Name of a mount's spool directory at the top of SOURCE (its default place). */
export const SPOOL_DIRECTORY_NAME = ".riakfs-spool";

/** Start of the names of the temporary files a mount makes in SOURCE. */
export const SOURCE_TEMPORARY_PREFIX = ".riakfs-publish-";

/** Start of the private names of local deletions (set_aside.ts). */
export const SET_ASIDE_PREFIX = ".riakfs-deleting.";

/** `.riakfs-publish-<12 hex>`, as a mount names them (overlay.ts). */
const SOURCE_TEMPORARY_NAME = /^\.riakfs-publish-[0-9a-f]{12}$/;

/** `.riakfs-deleting.<12 hex>`, alone (a private directory) or before `.<name>`. */
const SET_ASIDE_NAME = /^\.riakfs-deleting\.[0-9a-f]{12}(?:\..+)?$/s;

/**
 * Whether `name` (text, or bytes as latin1) has the form of a local deletion's private name
 * (set_aside.ts). Another name that merely starts with {@link SET_ASIDE_PREFIX} is someone
 * else's file: listed, walked and uploaded like any other.
 *
 * @example
 * ```ts
 * isSetAsideName(".riakfs-deleting.0123456789ab.report.txt"); // true
 * isSetAsideName(".riakfs-deleting.notes"); // false
 * ```
 */
export function isSetAsideName(name: string): boolean {
  return SET_ASIDE_NAME.test(name);
}

/**
 * Whether entry `name` of the directory at `parent` (relative to SOURCE, "" for SOURCE
 * itself) is the mount's own.
 *
 * @example
 * ```ts
 * isMountsOwnEntry("", ".riakfs-spool"); // true
 * isMountsOwnEntry("photos", ".riakfs-spool"); // false: only the top one is a spool
 * isMountsOwnEntry("", ".riakfs-publish-notes"); // false: not the form of a mount's
 * ```
 */
export function isMountsOwnEntry(parent: string, name: string): boolean {
  return (parent === "" && name === SPOOL_DIRECTORY_NAME) ||
    SOURCE_TEMPORARY_NAME.test(name) || isSetAsideName(name);
}
