/**
 * Times for utimes(2) through Node, whose fs takes seconds as a double and sets
 * `tv_nsec = trunc((seconds - trunc(seconds)) * 1e9)`. A double holds about a quarter of a
 * microsecond at today's epoch values, so the nearest one can land just early: 1577836800.123
 * sets .122999906, and adding half a microsecond to be safe turned whole seconds into
 * .000000476.
 *
 * @module
 */

const NS_PER_SECOND = 1_000_000_000n;
/** Doubles looked at on each side of the nearest one: a few ulps cover the truncation. */
const NEIGHBOURS = 4;

/**
 * The seconds to pass to Node's utimes for `ns` nanoseconds since the epoch: of the doubles
 * around it, the one that sets exactly `ns`, else the one setting the least time not before
 * it (a few hundred nanoseconds at most).
 *
 * @example
 * ```ts
 * fs.utimesSync(path, utimesSeconds(atimeNs), utimesSeconds(mtimeNs));
 * ```
 */
export function utimesSeconds(ns: bigint): number {
  const nearest = Number(ns / NS_PER_SECOND) + Number(ns % NS_PER_SECOND) / 1e9;
  if (ns < 0n) return nearest;
  let best = nearest;
  let bestSet: bigint | undefined;
  for (let step = -NEIGHBOURS; step <= NEIGHBOURS; step++) {
    const candidate = stepDouble(nearest, step);
    if (!(candidate >= 0)) continue; // below zero's bits: not a number
    const set = timeSetBy(candidate);
    if (set >= ns && (bestSet === undefined || set < bestSet)) {
      best = candidate;
      bestSet = set;
    }
  }
  return best;
}

/** The time, in nanoseconds, that Node's utimes sets for `seconds` (not negative). */
export function timeSetBy(seconds: number): bigint {
  const whole = Math.trunc(seconds);
  return BigInt(whole) * NS_PER_SECOND + BigInt(Math.trunc((seconds - whole) * 1e9));
}

/** The double `steps` representable values away from `value` (positive, finite). */
function stepDouble(value: number, steps: number): number {
  const bits = new BigInt64Array(new Float64Array([value]).buffer);
  bits[0] += BigInt(steps);
  return new Float64Array(bits.buffer)[0];
}
