/**
 * The lowest layer: small helpers with no knowledge of FUSE, Riak or files in Riak, shared by
 * every layer above.
 *
 * @module
 */
export { isProcessAlive } from "./process.ts";
export { seededRandom } from "./random.ts";
