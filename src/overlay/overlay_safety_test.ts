/**
 * What the mount must never do, whatever the interleaving: put older local bytes over
 * Riak's newer copy, follow a symlink out of the source, or carry out a removal it refused.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, type FileSystem, type FuseError } from "../fuse/mod.ts";
import {
  lookupPath,
  readThrough,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";
import { runPrewarm } from "../migration/prewarm.ts";
import { StateDirectory } from "../migration/state.ts";
import type { Store } from "../store/store.ts";

const OLD_SECONDS = 1_500_000_000;
const NEWER_NS = 1_700_000_000_000_000_000n;

const O_WRONLY = 1;
const O_APPEND = 0o2000;
const O_TRUNC = 0o1000;

Deno.test("migrate: chmod of an older local copy brings Riak's newer copy in first; a write then keeps it", async () => {
  await withOverlay("migrate", async ({ fs, source, store, runtime }) => {
    await writeFile(join(source, "f"), "AAAA");
    await utimes(join(source, "f"), OLD_SECONDS, OLD_SECONDS);
    await store.writeFile("/f", Buffer.from("BBBB"), { mode: 0o644, mtimeNs: NEWER_NS });
    const node = await lookupPath(fs, "/f");
    await fs.setattr!(ROOT_CTX, node, { mode: 0o600 });
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.stat("/f")).mtimeNs, NEWER_NS, "Riak's mtime kept");
    const { fh } = await fs.open!(ROOT_CTX, node, 2);
    await fs.write!(ROOT_CTX, node, fh, 0, Buffer.from("X"));
    await fs.release!(ROOT_CTX, node, fh, 0);
    assert.equal(await runtime.settle(10_000), 0);
    assert.equal((await store.readFile("/f")).toString(), "XBBB");
    assert.equal((await store.stat("/f")).mode, 0o600);
  });
});

Deno.test("migrate: a file read locally during an outage is not copied over Riak's newer copy", async () => {
  await withOverlay(
    "migrate",
    async ({ fs, source, store, riak, runtime }) => {
      await store.writeFile("/f", Buffer.from("NEWER RIAK CONTENT"), { mtimeNs: NEWER_NS });
      await writeFile(join(source, "f"), "old local");
      await utimes(join(source, "f"), OLD_SECONDS, OLD_SECONDS);
      await whilePaused(riak, async () => {
        assert.equal((await readThrough(fs, "/f")).toString(), "old local", "served locally");
      });
      assert.equal(await runtime.settle(10_000), 0);
      assert.equal((await store.readFile("/f")).toString(), "NEWER RIAK CONTENT");
    },
    { riakReadTimeout: "300" },
  );
});

for (const preset of ["shadow", "migrate"]) {
  Deno.test(`${preset}: truncate and chmod never follow a symlink put in the source file's place`, async () => {
    const outside = await mkdtemp(join(tmpdir(), "riakfs-outside-"));
    const victim = join(outside, "victim");
    try {
      await writeFile(victim, "precious data outside the source");
      await withOverlay(preset, async ({ fs, source, runtime }) => {
        await writeThrough(fs, "/f", Buffer.from("mine"));
        await runtime.settle(10_000);
        const node = await lookupPath(fs, "/f");
        await rm(join(source, "f")); // Replaced outside the mount.
        await symlink(victim, join(source, "f"));
        await fs.setattr!(ROOT_CTX, node, { size: 0 }).catch(() => {});
        await fs.setattr!(ROOT_CTX, node, { mode: 0o600 }).catch(() => {});
        await runtime.settle(10_000);
      });
      assert.equal(await readFile(victim, "utf8"), "precious data outside the source");
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
}

Deno.test("migrate: an rm that failed with EIO during an outage is not carried out later", async () => {
  await withOverlay(
    "migrate",
    async ({ fs, store, riak, runtime, restart }) => {
      await store.writeFile("/r", Buffer.from("only in riak"));
      await lookupPath(fs, "/r");
      await whilePaused(riak, async () => {
        await assert.rejects(fs.unlink!(ROOT_CTX, 1, "r"));
      });
      assert.equal(runtime.pendingUploads(), 0, "nothing journaled");
      await runtime.stop(1_000);
      const again = await restart();
      assert.equal(await again.settle(10_000), 0);
      assert.equal((await store.readFile("/r")).toString(), "only in riak");
    },
    { riakReadTimeout: "300" },
    { entryTimeout: 0 },
  );
});

Deno.test("shadow: a directory renamed during an outage can be made again under its old name", async () => {
  await withOverlay(
    "shadow",
    async ({ fs, store, riak, runtime }) => {
      await fs.mkdir!(ROOT_CTX, 1, "d", 0o755, 0);
      await writeThrough(fs, "/d/f", Buffer.from("x"));
      await runtime.settle(10_000);
      await whilePaused(riak, async () => {
        await fs.rename!(ROOT_CTX, 1, "d", 1, "e", 0); // Riak follows from the journal.
      });
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.readFile("/e/f")).toString(), "x");
      // Riak kept the old, empty directory: mkdir takes it instead of failing with EEXIST.
      await fs.mkdir!(ROOT_CTX, 1, "d", 0o700, 0);
      assert.equal((await store.stat("/d")).mode, 0o700);
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("drain: a file renamed in Riak is no new name during an outage: shown as last seen, no file is made over it", async () => {
  await withOverlay(
    "drain",
    async ({ fs, store, riak }) => {
      const bytes = Buffer.from("renamed before the outage");
      await store.writeFile("/b", bytes);
      await lookupPath(fs, "/b");
      await fs.rename!(ROOT_CTX, 1, "b", 1, "d", 0);
      await whilePaused(riak, async () => {
        // An application appending to d (open with O_CREAT) must not get a new, empty d:
        // the kernel finds d (the mount saw it renamed there), and its open for writing
        // answers an outage's error, since Riak may hold a newer copy.
        const node = await lookupPath(fs, "/d");
        assert.equal((await fs.getattr!(ROOT_CTX, node, undefined)).attr.size, bytes.length);
        await assert.rejects(fs.open!(ROOT_CTX, node, O_WRONLY | O_APPEND), (error: FuseError) => {
          assert.equal(error.errno, Errno.EIO, String(error));
          return true;
        });
      });
      assert.equal((await store.readFile("/d")).toString(), "renamed before the outage");
    },
    { riakReadTimeout: "300" },
    { entryTimeout: 0 },
  );
});

Deno.test("drain: a chmod that fails for an outage changes nothing, not the local copy alone", async () => {
  await withOverlay(
    "drain",
    async ({ fs, source, riak }) => {
      await mkdir(join(source, "legacy"), { mode: 0o700 });
      await chmod(join(source, "legacy"), 0o700);
      const node = await lookupPath(fs, "/legacy");
      await whilePaused(riak, async () => {
        await assert.rejects(fs.setattr!(ROOT_CTX, node, { mode: 0o750 }));
      });
      assert.equal((await stat(join(source, "legacy"))).mode & 0o7777, 0o700);
    },
    { riakReadTimeout: "300" },
    { entryTimeout: 0 },
  );
});

/** The two ways a write empties a file: an open with O_TRUNC, a truncate(2) to 0. */
const EMPTYINGS: Record<string, (fs: FileSystem, node: number) => Promise<void>> = {
  "an O_TRUNC open": async (fs, node) => {
    const { fh } = await fs.open!(ROOT_CTX, node, O_WRONLY | O_TRUNC);
    await fs.release!(ROOT_CTX, node, fh, 0);
  },
  "a truncate to 0": async (fs, node) => {
    await fs.setattr!(ROOT_CTX, node, { size: 0 });
  },
};

for (const [emptying, empty] of Object.entries(EMPTYINGS)) {
  Deno.test(`migrate: ${emptying} of a file Riak holds another copy of, cut off by a crash before its write is journaled, leaves SOURCE a file a pre-warm does not put over Riak's copy`, async () => {
    const riakCopy = "Riak's newer copy, written elsewhere";
    const state = new StateDirectory(await mkdtemp(join(tmpdir(), "riakfs-state-")));
    let atCrash: { local: string; riak: string; uploaded: number } | undefined;
    let at: { source: string; store: Store } | undefined;
    try {
      await withOverlay(
        "migrate",
        async ({ fs, source, store, runtime }) => {
          at = { source, store };
          await writeFile(join(source, "f"), "old local copy");
          await utimes(join(source, "f"), OLD_SECONDS, OLD_SECONDS);
          await store.writeFile("/f", Buffer.from(riakCopy), { mode: 0o644, mtimeNs: NEWER_NS });
          const node = await lookupPath(fs, "/f");
          await empty(fs, node);
          assert.ok(atCrash, "the fault point was reached");
          assert.equal(atCrash.local, "", "SOURCE held the truncation's empty file");
          assert.equal(atCrash.uploaded, 0, "the pre-warm after the crash uploaded nothing");
          assert.equal(atCrash.riak, riakCopy, "Riak's copy kept");
          // Journaled, the truncation goes on: an empty file, dated now, in SOURCE and Riak.
          assert.equal(await runtime.settle(10_000), 0);
          assert.equal((await store.readFile("/f")).length, 0);
          assert.ok((await store.stat("/f")).mtimeNs > NEWER_NS, "dated now");
        },
        {},
        {
          // Where a SIGKILL would leave SOURCE as it is: a pre-warm (after the restart) sees it.
          fetchedIntoSource: async () => {
            const { source, store } = at!;
            const local = await readFile(join(source, "f"), "utf8");
            const prewarm = await runPrewarm({ source, store, state });
            const riak = (await store.readFile("/f")).toString();
            atCrash = { local, riak, uploaded: prewarm.tally.uploaded.files };
          },
        },
      );
    } finally {
      await rm(state.path, { recursive: true, force: true });
    }
  });
}
