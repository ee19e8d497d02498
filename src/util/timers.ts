/**
 * The longest delay a timer holds. Node (and Deno) fire a setTimeout or setInterval of a
 * longer delay after 1 ms instead, with only a warning, so a timeout given as "very long"
 * would fail every request at once: settings that become timers are refused above it.
 *
 * @module
 */

/** 2^31 - 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2_147_483_647;
