/**
 * Telling a full disk from other failures: code that must keep a mount or a drain going on
 * the disk that filled up treats these errors as "no room now", not as a fault.
 *
 * @module
 */

/**
 * Whether `error` (a system error, or anything carrying its `code`) says the filesystem has
 * no room for another byte or inode: ENOSPC, or EDQUOT for this user's quota.
 *
 * @example
 * ```ts
 * try { writeFileSync(file, text); } catch (error) { if (!isNoRoomError(error)) throw error; }
 * ```
 */
export function isNoRoomError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
