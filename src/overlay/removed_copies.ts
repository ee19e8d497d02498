/**
 * The bytes of Riak files removed (or renamed over) while open for reading: copied into the
 * spool for their open handles before the name goes, so an open file stays readable after
 * its removal, as on a local disk (README, "A file removed while open").
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Store } from "../store/store.ts";
import type { HandleTable, RemovedCopy, RiakHandle } from "./handle_table.ts";
import type { RiakCalls } from "./riak_calls.ts";
import { type SourceFile, writeWhole } from "./source_file.ts";
import type { Spool } from "./spool.ts";

/**
 * A Riak file removed while open is copied into the spool for its open handles (the removal
 * waits for the copy), while the copies held at once stay within this many bytes; reads of
 * one not copied fail once Riak's copy is gone (README, "A file removed while open").
 */
const REMOVED_WHILE_OPEN_COPY_LIMIT = 256 * 1024 * 1024;

/** What {@link RemovedWhileOpen} is built from: the mount's spool, store and handles. */
export interface RemovedWhileOpenOptions {
  spool: Pick<Spool, "create" | "remove">;
  store: Pick<Store, "readRange" | "releaseRead">;
  riak: Pick<RiakCalls, "run">;
  /** The mount's open handles, held by reference: the copies are for its Riak ones. */
  handles: Pick<HandleTable, "riakHandlesOpen" | "riakAt" | "holds">;
  /** The bytes the copies held at once stay within; default 256 MiB. */
  limitBytes?: number;
}

/** The spool copies of Riak files removed while open, and the bytes they hold. */
export class RemovedWhileOpen {
  readonly #o: RemovedWhileOpenOptions;
  readonly #limitBytes: number;
  /** Bytes of the spool copies of Riak files removed while open ({@link RemovedCopy}). */
  #removedCopyBytes = 0;

  /** `options`: the mount's; held by reference. */
  constructor(options: RemovedWhileOpenOptions) {
    this.#o = options;
    this.#limitBytes = options.limitBytes ?? REMOVED_WHILE_OPEN_COPY_LIMIT;
  }

  /**
   * Riak handles open at `path` get a spool copy of the bytes they opened, before its name
   * goes from Riak: an open file stays readable after its removal, as on a local disk. One
   * copy per version; never throws: without a copy, reads fail once Riak's copy is gone.
   */
  async copyOpenContent(path: string): Promise<void> {
    // Every unlink and rename asks: mostly none.
    if (this.#o.handles.riakHandlesOpen === 0) return;
    const open = this.#o.handles.riakAt(path).filter((handle) => handle.removedCopy === undefined);
    for (const sha256 of new Set(open.map((handle) => handle.stat.sha256))) {
      const size = open.find((handle) => handle.stat.sha256 === sha256)!.version.size;
      if (this.#removedCopyBytes + size > this.#limitBytes) continue;
      const copy = await this.#copyIntoSpool(path, sha256);
      if (copy === undefined) continue;
      this.#removedCopyBytes += copy.size;
      // Handles closed while it was made do not hold it.
      const holders = open.filter((handle) =>
        handle.stat.sha256 === sha256 && this.#o.handles.holds(handle)
      );
      for (const handle of holders) handle.removedCopy = copy;
      copy.handles = holders.length;
      if (holders.length === 0) await this.#dropRemovedCopy(copy);
    }
  }

  /**
   * A Riak handle was released: the last handle reading a copy closes it, and its bytes no
   * longer count against the limit.
   */
  async released(handle: RiakHandle): Promise<void> {
    if (handle.removedCopy && --handle.removedCopy.handles === 0) {
      await this.#dropRemovedCopy(handle.removedCopy);
    }
  }

  /** Riak's bytes of `path` in an unlinked spool file, if they are still version `sha256`. */
  async #copyIntoSpool(path: string, sha256: string): Promise<RemovedCopy | undefined> {
    let file: SourceFile | undefined;
    try {
      const staged = await this.#o.spool.create();
      file = staged.handle;
      await this.#o.spool.remove(staged.name); // Nothing to find after a crash.
      const hash = createHash("sha256");
      let size = 0;
      const pieces = this.#o.store.readRange(path)[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await this.#o.riak.run(`read ${path}`, () => pieces.next());
          if (next.done) break;
          hash.update(next.value);
          await writeWhole(file, next.value, 0, next.value.length, size);
          size += next.value.length;
          this.#o.store.releaseRead(next.value);
        }
      } finally {
        await pieces.return?.(undefined);
      }
      // Another version meanwhile is not what the handles opened.
      if (hash.digest("hex") !== sha256) throw new Error("changed meanwhile");
      return { file, size, handles: 0 };
    } catch {
      await file?.close().catch(() => {});
      return undefined;
    }
  }

  async #dropRemovedCopy(copy: RemovedCopy): Promise<void> {
    this.#removedCopyBytes -= copy.size;
    await copy.file.close();
  }
}
