/**
 * The Riak client's default settings, in a module without imports so that a command line
 * can show them in its help without loading the client.
 *
 * @module
 */

/** Default bound on establishing a TCP connection (and on the TLS handshake). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default bound on a request: on its answer, or for a stream on the gap between two frames. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Default wait for an answer after which a node that answered nothing else meanwhile is
 * pinged: Riak answers in milliseconds, a ping even when it is busy.
 */
export const DEFAULT_STALL_CHECK_AFTER_MS = 1_000;
/** Default bound on a ping that checks a node (its connect included). */
export const DEFAULT_PING_TIMEOUT_MS = 2_000;
