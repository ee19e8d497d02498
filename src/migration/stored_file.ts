/**
 * Reading back what Riak holds for a file, streaming, with the store's per-chunk checks.
 *
 * @module
 */
import { GenerationChangedError, type Store } from "../store/store.ts";
import { hashBytes } from "./local_file.ts";

/**
 * The store operations migration uses (a {@link Store} has them all; without `releaseRead`
 * the chunks read back are left to the garbage collector).
 */
export type MigrationStore =
  & Pick<
    Store,
    "tryStat" | "writeFile" | "mkdir" | "symlink" | "readRange" | "readlink" | "remove"
  >
  & Partial<Pick<Store, "releaseRead" | "lateWritesSettled" | "awaitsLateWrites">>;

/** Read-backs restarted when the file is overwritten while being read. */
const READ_BACK_ATTEMPTS = 3;

/**
 * sha256 and size of the file Riak holds at `path`, streaming chunk by chunk (memory: a
 * few chunks whatever the size). Rejects with the store's errors: NotFoundError,
 * ChecksumMismatchError / CorruptObjectError for a damaged copy.
 */
export async function hashStoredFile(
  store: MigrationStore,
  path: Uint8Array,
): Promise<{ sha256: string; size: number }> {
  for (let attempt = 1;; attempt++) {
    try {
      // Each chunk is only hashed: its memory goes back as soon as it is (Store.releaseRead).
      return await hashBytes(store.readRange(path), (piece) => store.releaseRead?.(piece));
    } catch (error) {
      if (!(error instanceof GenerationChangedError) || attempt >= READ_BACK_ATTEMPTS) throw error;
    }
  }
}
