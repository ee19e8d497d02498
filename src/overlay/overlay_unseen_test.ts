/**
 * Files created during an outage under a name Riak holds but the mount could not see: the
 * new file takes the name once Riak is back, and Riak's own file is kept under a conflict
 * name beside it, never overwritten.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import {
  eventually,
  listThrough,
  lookupPath,
  readThrough,
  ROOT_CTX,
  whilePaused,
  withOverlay,
  writeThrough,
} from "./_overlay_fixture.ts";
import { Errno, FuseError, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { isOutageError } from "./health.ts";

for (const preset of ["migrate", "drain", "riak"]) {
  Deno.test(`${preset}: a file created during an outage over a name only Riak held sets Riak's file aside`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime, restart }) => {
        const theirs = seededBytes(51, 5_000);
        const ours = seededBytes(52, 7_000);
        await store.writeFile("/report.txt", theirs);
        const faults = riak.faults;
        await faults.stopAccepting();
        faults.dropConnections();
        try {
          await assert.rejects(
            lookupPath(fs, "/report.txt"),
            (error) => error instanceof FuseError && error.errno === Errno.ENOENT,
          );
          await writeThrough(fs, "/report.txt", ours);
          // Stopped while Riak is down: what is journaled must say what to set aside.
          assert.equal(await runtime.stop(50), 1);
        } finally {
          await faults.resumeAccepting();
        }
        const again = await restart({});
        assert.equal(await again.settle(20_000), 0);
        assert.ok(ours.equals(await store.readFile("/report.txt")), "the new file has the name");
        const names = (await Array.fromAsync(store.list("/"))).map((entry) =>
          entry.name.toString()
        );
        const aside = names.filter((name) => name.startsWith("report.txt.riakfs-conflict-"));
        assert.equal(aside.length, 1, `Riak's own file kept aside: ${names}`);
        assert.ok(theirs.equals(await store.readFile(`/${aside[0]}`)));
      },
      { riakReadTimeout: "300" },
    );
  });
}

Deno.test("migrate: a name Riak answered for again is no longer set aside", async () => {
  await withOverlay(
    "migrate",
    async ({ fs, store, riak, runtime }) => {
      await store.writeFile("/seen.txt", seededBytes(53, 100));
      await whilePaused(riak, async () => {
        await assert.rejects(lookupPath(fs, "/seen.txt"));
      });
      await lookupPath(fs, "/seen.txt"); // Riak answers: the file is there, and now seen.
      const ours = seededBytes(54, 200);
      await writeThrough(fs, "/seen.txt", ours);
      assert.equal(await runtime.settle(20_000), 0);
      assert.ok(ours.equals(await store.readFile("/seen.txt")));
      const names = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString());
      assert.deepEqual(names, ["seen.txt"], "an overwrite of a file seen, nothing set aside");
    },
    { riakReadTimeout: "300" },
  );
});

/** Riak's own `theirs` is kept under some name of the root, with these bytes. */
async function assertKept(store: Store, theirs: Buffer): Promise<string[]> {
  const names = (await Array.fromAsync(store.list("/"))).map((entry) => entry.name.toString());
  const kept = [];
  for (const name of names) {
    const stat = await store.tryStat(`/${name}`);
    if (stat?.type === "file" && theirs.equals(await store.readFile(`/${name}`))) kept.push(name);
  }
  assert.equal(kept.length, 1, `Riak's own file kept once: ${names}`);
  return names;
}

for (const change of ["unlinked", "renamed"]) {
  Deno.test(`migrate: a file created during an outage and ${change} while open leaves Riak's file aside`, async () => {
    await withOverlay(
      "migrate",
      async ({ fs, store, riak, runtime }) => {
        const theirs = seededBytes(61, 5_000);
        await store.writeFile("/x.log", theirs);
        const faults = riak.faults;
        await faults.stopAccepting();
        faults.dropConnections();
        try {
          await assert.rejects(lookupPath(fs, "/x.log"));
          const created = await fs.create!(ROOT_CTX, 1, "x.log", 0o1101, 0o644, 0o022);
          const { nodeid } = created.entry;
          await fs.write!(ROOT_CTX, nodeid, created.opened.fh, 0, Buffer.from("ours"));
          if (change === "unlinked") await fs.unlink!(ROOT_CTX, 1, "x.log");
          else await fs.rename!(ROOT_CTX, 1, "x.log", 1, "x.log.1", 0); // log rotation
          await fs.release!(ROOT_CTX, nodeid, created.opened.fh, 0);
        } finally {
          await faults.resumeAccepting();
        }
        assert.equal(await runtime.settle(20_000), 0);
        const names = await assertKept(store, theirs);
        if (change === "renamed") {
          assert.equal((await store.readFile("/x.log.1")).toString(), "ours");
          assert.ok(!names.includes("x.log"), "nothing left under the old name");
        }
      },
      { riakReadTimeout: "300" },
    );
  });
}

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}: several closes during the outage set Riak's file aside once, not the mount's own`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime }) => {
        const theirs = seededBytes(51, 5_000);
        await store.writeFile("/report.txt", theirs);
        const faults = riak.faults;
        await faults.stopAccepting();
        faults.dropConnections();
        try {
          await assert.rejects(lookupPath(fs, "/report.txt"));
          // The first upload starts (and waits out the outage) before the second is queued.
          await writeThrough(fs, "/report.txt", seededBytes(52, 7_000));
          await writeThrough(fs, "/report.txt", seededBytes(53, 7_000));
        } finally {
          await faults.resumeAccepting();
        }
        assert.equal(await runtime.settle(20_000), 0);
        const names = await assertKept(store, theirs);
        assert.equal(names.length, 2, `the file and one conflict copy: ${names}`);
        assert.ok(seededBytes(53, 7_000).equals(await store.readFile("/report.txt")));
      },
      { riakReadTimeout: "300" },
    );
  });
}

for (const preset of ["migrate", "drain"]) {
  Deno.test(`${preset}: a symlink Riak held under the name is set aside like a file`, async () => {
    await withOverlay(
      preset,
      async ({ fs, store, riak, runtime }) => {
        await store.symlink("/link", "somewhere/else");
        const faults = riak.faults;
        await faults.stopAccepting();
        faults.dropConnections();
        try {
          await assert.rejects(lookupPath(fs, "/link"));
          await writeThrough(fs, "/link", seededBytes(54, 700));
        } finally {
          await faults.resumeAccepting();
        }
        assert.equal(await runtime.settle(20_000), 0);
        assert.ok(seededBytes(54, 700).equals(await store.readFile("/link")));
        const entries = await Array.fromAsync(store.list("/"));
        const aside = entries.find((entry) => entry.type === "symlink");
        assert.ok(aside?.name.toString().startsWith("link.riakfs-conflict-"));
        assert.equal((await store.readlink(`/${aside!.name}`)).toString(), "somewhere/else");
      },
      { riakReadTimeout: "300" },
    );
  });
}

Deno.test("drain: removals refused during one outage log it once, and never as over", async () => {
  await withOverlay(
    "drain",
    async ({ fs, riak, source, logLines }) => {
      for (const n of [1, 2, 3]) await writeFile(join(source, `f${n}`), "x");
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        for (const n of [1, 2, 3]) await assert.rejects(fs.unlink!(ROOT_CTX, 1, `f${n}`));
      } finally {
        await faults.resumeAccepting();
      }
      assert.equal(logLines.filter((line) => line.includes("Riak unreachable")).length, 1);
      assert.equal(logLines.filter((line) => line.includes("Riak reachable again")).length, 0);
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("drain: a file created during the outage, renamed once Riak is back, does not carry Riak's file along", async () => {
  await withOverlay(
    "drain",
    async ({ fs, store, riak, runtime }) => {
      const theirs = seededBytes(62, 5_000);
      await store.writeFile("/x.log", theirs);
      const faults = riak.faults;
      faults.pause();
      let created;
      try {
        await assert.rejects(lookupPath(fs, "/x.log"));
        created = await fs.create!(ROOT_CTX, 1, "x.log", 0o1101, 0o644, 0o022);
      } finally {
        faults.resume();
      }
      const { nodeid } = created.entry;
      await fs.write!(ROOT_CTX, nodeid, created.opened.fh, 0, Buffer.from("ours"));
      await fs.rename!(ROOT_CTX, 1, "x.log", 1, "x.log.1", 0);
      await fs.release!(ROOT_CTX, nodeid, created.opened.fh, 0);
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.readFile("/x.log.1")).toString(), "ours");
      const names = await assertKept(store, theirs);
      assert.ok(names.some((name) => name.startsWith("x.log.riakfs-conflict-")), `${names}`);
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("migrate: mkdir and symlink during an outage answer at once; Riak gets them once back, its own file under the name kept aside", async () => {
  await withOverlay(
    "migrate",
    async ({ fs, store, riak, runtime }) => {
      const theirs = seededBytes(62, 300);
      await store.writeFile("/inbox", theirs);
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        await assert.rejects(lookupPath(fs, "/inbox"));
        const inbox = await fs.mkdir!(ROOT_CTX, 1, "inbox", 0o750, 0o022);
        await fs.mkdir!(ROOT_CTX, inbox.nodeid, "empty", 0o700, 0o022);
        await fs.symlink!(ROOT_CTX, inbox.nodeid, "latest", "empty");
      } finally {
        await faults.resumeAccepting();
      }
      assert.equal(await runtime.settle(20_000), 0);
      for (const [path, mode] of [["/inbox", 0o750], ["/inbox/empty", 0o700]] as const) {
        const made = await store.tryStat(path);
        assert.equal(made?.type, "directory", path);
        assert.equal(made?.mode, mode, path);
      }
      assert.equal((await store.readlink("/inbox/latest")).toString(), "empty");
      await assertKept(store, theirs);
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("shadow: rm x; mkdir x during an outage: the directory waits behind the removal in the journal, not for Riak", async () => {
  await withOverlay(
    "shadow",
    async ({ fs, store, riak, runtime }) => {
      await writeThrough(fs, "/x", seededBytes(63, 100));
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.tryStat("/x"))?.type, "file");
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        await fs.unlink!(ROOT_CTX, 1, "x");
        await fs.mkdir!(ROOT_CTX, 1, "x", 0o755, 0o022);
      } finally {
        await faults.resumeAccepting();
      }
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.tryStat("/x"))?.type, "directory");
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("riak: with Riak down the mount's root is still a directory; listing it fails with EIO", async () => {
  await withOverlay(
    "riak",
    async ({ fs, riak }) => {
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        const root = await fs.getattr!(ROOT_CTX, 1, undefined);
        assert.equal(root.attr.mode & 0o170000, 0o040000, "a directory, not ENOENT");
        // A Riak error, which the FUSE session answers with EIO.
        await assert.rejects(
          listThrough(fs, "/"),
          (error) => !(error instanceof FuseError) || error.errno === Errno.EIO,
        );
      } finally {
        await faults.resumeAccepting();
      }
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("shadow: rm x; mv d x while x's removal waits in the queue: the rename goes through the journal, behind it", async () => {
  await withOverlay(
    "shadow",
    async ({ fs, store, runtime, holdPuts }) => {
      await writeThrough(fs, "/x", seededBytes(64, 100));
      const d = await fs.mkdir!(ROOT_CTX, 1, "d", 0o755, 0o022);
      await fs.symlink!(ROOT_CTX, d.nodeid, "link", "target");
      await writeThrough(fs, "/d/f", Buffer.from("in d"));
      assert.equal(await runtime.settle(20_000), 0);
      // The only upload slot is taken by a put held back: x's removal waits behind it.
      const held = holdPuts();
      await writeThrough(fs, "/busy", Buffer.from("busy"));
      await held.reached;
      try {
        await fs.unlink!(ROOT_CTX, 1, "x");
        await fs.rename!(ROOT_CTX, 1, "d", 1, "x", 0); // ENOTDIR before: Riak still held x
      } finally {
        held.release();
      }
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.tryStat("/x"))?.type, "directory");
      assert.equal((await store.readFile("/x/f")).toString(), "in d");
      assert.equal((await store.readlink("/x/link")).toString(), "target");
      assert.equal(await store.tryStat("/d"), undefined);
    },
    { uploadConcurrency: "1" },
  );
});

Deno.test("shadow: during an outage a link renamed over a file, and a file over a link, replace them in Riak once back", async () => {
  await withOverlay(
    "shadow",
    async ({ fs, store, riak, runtime }) => {
      await writeThrough(fs, "/m", Buffer.from("file m"));
      await fs.symlink!(ROOT_CTX, 1, "l", "m");
      await fs.symlink!(ROOT_CTX, 1, "k", "m");
      await writeThrough(fs, "/g", Buffer.from("file g"));
      assert.equal(await runtime.settle(20_000), 0);
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        await fs.rename!(ROOT_CTX, 1, "l", 1, "m", 0); // a link over a file
        await fs.rename!(ROOT_CTX, 1, "g", 1, "k", 0); // a file over a link
      } finally {
        await faults.resumeAccepting();
      }
      assert.equal(await runtime.settle(20_000), 0);
      assert.equal((await store.readlink("/m")).toString(), "m");
      assert.equal((await store.readFile("/k")).toString(), "file g");
      assert.equal(await store.tryStat("/l"), undefined);
      assert.equal(await store.tryStat("/g"), undefined);
    },
    { riakReadTimeout: "300" },
  );
});

Deno.test("drain: a file the mount moved into Riak is EIO during an outage, not absent", async () => {
  await withOverlay(
    "drain",
    async ({ fs, source, riak, runtime }) => {
      const legacy = seededBytes(55, 3_000);
      await writeFile(join(source, "moved.txt"), legacy);
      assert.ok(legacy.equals(await readThrough(fs, "/moved.txt")));
      assert.equal(await runtime.settle(20_000), 0);
      await assert.rejects(readFile(join(source, "moved.txt")), { code: "ENOENT" });
      const faults = riak.faults;
      await faults.stopAccepting();
      faults.dropConnections();
      try {
        // Riak's error (answered EIO), where a name never seen in Riak is ENOENT. Which one
        // depends on the nodes: one is taken down after its refusals, of several each refuses.
        await assert.rejects(
          lookupPath(fs, "/moved.txt"),
          (error) =>
            !(error instanceof FuseError) && isOutageError(error) &&
            /every Riak node is down|cannot connect/.test(`${error}`),
        );
      } finally {
        await faults.resumeAccepting();
      }
    },
    { riakReadTimeout: "300" },
  );
});

// Riak refusing the directory sets (`--sets-bucket-type` misspelt) while answering for objects:
// the create's look at the name fails (unseen), its empty file's put lands and the directory
// set's add does not, so that upload gives way to the close's. The next mount's replay of
// the close's upload found the empty object and set it aside as another host's file.
for (const preset of ["drain", "riak"]) {
  for (const elsewhere of [false, true]) {
    Deno.test(`${preset}: the next mount ${elsewhere ? "still sets aside a file another host wrote meanwhile" : "sets nothing aside"} where the mount's own create landed its empty file and Riak refused its directory set`, async () => {
      await withOverlay(
        preset,
        async ({ fs, store, riak, runtime, restart, refuseSets, logLines }) => {
          const allowSets = refuseSets();
          try {
            // As `touch x.txt; echo x >> x.txt`: the first close uploads the empty file,
            // the second one its bytes. (A FLUSH of a handle still open holds back an empty
            // file's upload for the write that follows: `echo x > x.txt` puts it once.)
            const created = await fs.create!(ROOT_CTX, ROOT_NODE_ID, "x.txt", 2, 0o644, 0o022);
            const { nodeid } = created.entry;
            await fs.flush!(ROOT_CTX, nodeid, created.opened.fh);
            await fs.release!(ROOT_CTX, nodeid, created.opened.fh, 0);
            await eventually(
              "the empty file's upload failed after its put",
              () => logLines.some((line) => line.includes("upload failed; retrying")),
            );
            assert.equal((await store.tryStat("/x.txt"))?.size, 0, "the empty file's put landed");
            // The close's upload is not to land before the stop: the next mount finds the
            // empty file in Riak, as after the operator's drain timeout.
            const { fh } = await fs.open!(ROOT_CTX, nodeid, 1 /* O_WRONLY */);
            await whilePaused(riak, async () => {
              await fs.write!(ROOT_CTX, nodeid, fh, 0, Buffer.from("x\n"));
              await fs.release!(ROOT_CTX, nodeid, fh, 0);
              await eventually(
                "the empty file's upload given way",
                () => runtime.pendingUploads() === 1,
              );
              assert.equal(await runtime.stop(0), 1);
            });
          } finally {
            allowSets();
          }
          const theirs = Buffer.from("another host's");
          if (elsewhere) await store.writeFile("/x.txt", theirs);
          const again = await restart({});
          assert.equal(await again.settle(20_000), 0);
          assert.equal((await store.readFile("/x.txt")).toString(), "x\n");
          const names = await listThrough(again.fileSystem, "/");
          const aside = names.filter((name) => name.startsWith("x.txt.riakfs-conflict-"));
          assert.equal(aside.length, elsewhere ? 1 : 0, `set aside: ${names}`);
          if (elsewhere) assert.ok(theirs.equals(await store.readFile(`/${aside[0]}`)));
          assert.equal(logLines.some((line) => line.includes("kept aside")), elsewhere);
        },
        { riakReadTimeout: "300" },
      );
    });
  }
}
