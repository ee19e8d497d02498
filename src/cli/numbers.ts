/**
 * How riakfs reads a number given as text (a flag, an environment variable): decimal digits,
 * with a fraction where one makes sense. `Number()` alone also takes "" and " " (as 0),
 * "0x10", "1e3" and "Infinity", so a value left empty by mistake (`--min-age "$UNSET"`,
 * `RIAKFS_W=`) was taken as 0.
 *
 * @module
 */

/**
 * `text` as a number when it is decimal digits (with a fraction if `fraction`), else NaN.
 *
 * @example
 * ```ts
 * decimal("30"); // 30
 * decimal("0.5", { fraction: true }); // 0.5
 * decimal(""); // NaN
 * ```
 */
export function decimal(text: string, options: { fraction?: boolean } = {}): number {
  const pattern = options.fraction ? /^\d+(\.\d+)?$/ : /^\d+$/;
  return pattern.test(text) ? Number(text) : NaN;
}
