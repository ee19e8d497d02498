/**
 * What Riak ends up with when a copy-on-read is still on its way while the path changes
 * through the mount: the change, never the older copy landing after it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../store/_test_support.ts";
import {
  type OverlayFixture,
  readThrough,
  ROOT_CTX,
  until,
  withOverlay,
} from "./_overlay_fixture.ts";

/** A legacy file read whole through the mount, its copy-on-read held at its put. */
async function readWithCopyHeld(fixture: OverlayFixture, name: string, content: Buffer) {
  await writeFile(join(fixture.source, name), content);
  const hold = fixture.holdPuts();
  assert.ok(content.equals(await readThrough(fixture.fs, `/${name}`)));
  await hold.reached;
  return hold;
}

/**
 * Lets the held put of the copy go once the change called it off (the change now waits for
 * it): without the withdrawal this never happens, and the change would overtake the copy.
 */
async function releaseOnceWithdrawn(fixture: OverlayFixture, hold: { release(): void }) {
  try {
    await until(() => fixture.runtime.metrics.snapshot().copyOnRead.withdrawn > 0);
  } finally {
    hold.release();
  }
}

for (const preset of ["shadow", "migrate", "drain"]) {
  Deno.test(`${preset}: a file removed while its copy-on-read runs stays removed in Riak`, async () => {
    await withOverlay(preset, async (fixture) => {
      const hold = await readWithCopyHeld(fixture, "gone.bin", seededBytes(41, 200_000));
      const removed = fixture.fs.unlink!(ROOT_CTX, 1, "gone.bin");
      await releaseOnceWithdrawn(fixture, hold);
      await removed;
      assert.equal(await fixture.runtime.settle(10_000), 0);
      assert.equal(await fixture.store.tryStat("/gone.bin"), undefined);
    });
  });

  Deno.test(`${preset}: a file renamed while its copy-on-read runs leaves no old name in Riak`, async () => {
    await withOverlay(preset, async (fixture) => {
      const content = seededBytes(42, 200_000);
      const hold = await readWithCopyHeld(fixture, "old.bin", content);
      // The rename waits for the copy in flight: Riak renames what it then holds.
      const renamed = fixture.fs.rename!(ROOT_CTX, 1, "old.bin", 1, "new.bin", 0);
      await releaseOnceWithdrawn(fixture, hold);
      await renamed;
      assert.equal(await fixture.runtime.settle(10_000), 0);
      assert.equal(await fixture.store.tryStat("/old.bin"), undefined);
      assert.ok(content.equals(await fixture.store.readFile("/new.bin")));
    });
  });

  Deno.test(`${preset}: a file rewritten while its copy-on-read runs ends with the new bytes in Riak`, async () => {
    await withOverlay(preset, async (fixture) => {
      const hold = await readWithCopyHeld(fixture, "doc.txt", seededBytes(43, 200_000));
      const { fs } = fixture;
      try {
        const entry = await fs.lookup!(ROOT_CTX, 1, "doc.txt");
        const { fh } = await fs.open!(ROOT_CTX, entry.nodeid, 0o1001); // O_WRONLY | O_TRUNC
        await fs.write!(ROOT_CTX, entry.nodeid, fh, 0, Buffer.from("rewritten"));
        await fs.flush!(ROOT_CTX, entry.nodeid, fh);
        await fs.release!(ROOT_CTX, entry.nodeid, fh, 0);
      } finally {
        await releaseOnceWithdrawn(fixture, hold);
      }
      assert.equal(await fixture.runtime.settle(10_000), 0);
      assert.equal((await fixture.store.readFile("/doc.txt")).toString(), "rewritten");
    });
  });
}
