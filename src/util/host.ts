/**
 * Host names as the commands accept them, checked before anything connects or listens.
 *
 * @module
 */
import { isIPv4 } from "node:net";

/**
 * Whether `host` is a DNS name (letters, digits, hyphens; underscores too, which some
 * internal zones use) or an IPv4 address: anything else ("a b", "user@host", "256.1.1.1")
 * would only fail later, as a lookup error, while the command ran on.
 *
 * @example
 * ```ts
 * isHostName("riak-1.example.com"); // true
 * isHostName("user@riak-1"); // false
 * ```
 */
export function isHostName(host: string): boolean {
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  return host.length <= 253 &&
    /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/
      .test(host);
}
