import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { seededBytes, sha256Hex, withStore } from "../store/_test_support.ts";
import { DEFAULT_CHUNK_SIZE } from "../store/layout.ts";
import { hashStoredFile, type MigrationStore } from "./stored_file.ts";

Deno.test("a read-back hashes each chunk, then hands it back to the store to free", async () => {
  await withStore(async ({ store }) => {
    const content = seededBytes(5, 2 * DEFAULT_CHUNK_SIZE + 30_000);
    await store.writeFile("back.bin", content);
    const yielded: Uint8Array[] = [];
    const released: Uint8Array[] = [];
    const watched: MigrationStore = {
      tryStat: store.tryStat.bind(store),
      writeFile: store.writeFile.bind(store),
      mkdir: store.mkdir.bind(store),
      symlink: store.symlink.bind(store),
      readlink: store.readlink.bind(store),
      remove: store.remove.bind(store),
      readRange: async function* (path, offset, length) {
        for await (const piece of store.readRange(path, offset, length)) {
          yielded.push(piece);
          yield piece;
        }
      },
      releaseRead: (bytes) => {
        released.push(bytes);
        store.releaseRead(bytes);
      },
    };
    const back = await hashStoredFile(watched, Buffer.from("back.bin"));
    assert.deepEqual(back, { sha256: sha256Hex(content), size: content.length });
    assert.equal(yielded.length, 3);
    assert.equal(released.length, yielded.length, "every chunk, once hashed");
    assert.ok(released.every((piece, index) => piece === yielded[index]), "in order");
    assert.ok(yielded.every((piece) => piece.length === 0), "their memory is freed");
  });
});
