/**
 * Fields of /proc/PID/mountinfo (proc(5)).
 *
 * @module
 */

/**
 * A mountinfo field (a mount point, a root) as the path it names: mountinfo writes space, tab,
 * newline and backslash in names as octal escapes (`\040` for a space).
 *
 * @example
 * ```ts
 * unescapeMountinfo("/srv/my\\040data"); // "/srv/my data"
 * ```
 */
export function unescapeMountinfo(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}
