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
