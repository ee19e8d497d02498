/**
 * The lowest layer: small helpers with no knowledge of FUSE, Riak or files in Riak, shared by
 * every layer above.
 *
 * @module
 */
export { makeDirectories } from "./directories.ts";
export { isProcessAlive } from "./process.ts";
export { seededRandom } from "./random.ts";
export { MAX_TIMER_MS } from "./timers.ts";
export {
  XATTR_CREATE,
  XATTR_REPLACE,
  XATTR_SIZE_MAX,
  XattrError,
  XattrHelper,
  type XattrHelperOptions,
} from "./xattr_helper.ts";
