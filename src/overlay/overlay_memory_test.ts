/**
 * A mount runs for months: what it remembers by path must follow its live files, not every
 * name it ever served. Each test drives a steady workload of fresh names (made, written,
 * read, renamed, removed, as the kernel would, FORGETs included) and checks that the
 * overlay's tables come back to where they started.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Entry, FileSystem } from "../fuse/filesystem.ts";
import { ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { seededBytes } from "../store/_test_support.ts";
import { readThrough, ROOT_CTX, withOverlay } from "./_overlay_fixture.ts";

const ROUNDS = 60;
/** The fixture's entry timeout (the default): how long Riak's answers are cached. */
const ENTRY_TIMEOUT_MS = 1_000;
/** The tables of Riak's cached answers (checked apart: they hold the last timeout's). */
const CACHED_STATS = ["statCache", "riakDirectories"];

/** Makes `name` in `parent` with `content`, closes it, and returns its entry. */
async function createFile(
  fs: FileSystem,
  parent: number,
  name: string,
  content: Uint8Array,
): Promise<Entry> {
  const { entry, opened } = await fs.create!(ROOT_CTX, parent, name, 0o1101, 0o644, 0o022);
  await fs.write!(ROOT_CTX, entry.nodeid, opened.fh, 0, content);
  await fs.flush!(ROOT_CTX, entry.nodeid, opened.fh);
  await fs.release!(ROOT_CTX, entry.nodeid, opened.fh, 0);
  return entry;
}

/** Entries of Riak's cached answers in `sizes`. */
function cachedStats(sizes: Record<string, number>): number {
  return CACHED_STATS.reduce((sum, table) => sum + (sizes[table] ?? 0), 0);
}

for (const preset of ["shadow", "migrate", "drain", "riak"]) {
  Deno.test(`${preset}: names made and removed leave nothing behind in the overlay's tables`, async () => {
    // The overlay's clock moves on by more than the entry timeout each round, as a slow
    // workload's would: what Riak answered rounds ago is old news.
    let clockAhead = 0;
    const now = () => Date.now() + clockAhead;
    await withOverlay(
      preset,
      async ({ fs, runtime }) => {
        const directory = await fs.mkdir!(ROOT_CTX, ROOT_NODE_ID, "churn", 0o755, 0o022);
        const parent = directory.nodeid;
        await runtime.settle(10_000);
        const before = runtime.tableSizes();
        let afterOneRound = before;
        for (let round = 0; round < ROUNDS; round++) {
          clockAhead += 2 * ENTRY_TIMEOUT_MS;
          const content = seededBytes(round, 100 + round);
          // Made, read back, renamed, looked up under its new name, removed: as `mv` and `rm`.
          const made = await createFile(fs, parent, `made-${round}`, content);
          assert.deepEqual(await readThrough(fs, `/churn/made-${round}`), content);
          await fs.rename!(ROOT_CTX, parent, `made-${round}`, parent, `moved-${round}`, 0);
          const moved = await fs.lookup!(ROOT_CTX, parent, `moved-${round}`);
          assert.equal(moved.nodeid, made.nodeid, "a rename keeps the node");
          await fs.setattr!(ROOT_CTX, moved.nodeid, { mode: 0o600 });
          await fs.unlink!(ROOT_CTX, parent, `moved-${round}`);
          // The kernel forgets the removed file's node: its create's and two lookups' references.
          fs.forget!(made.nodeid, 3);
          // A name that is not there, and a directory made and removed.
          await assert.rejects(fs.lookup!(ROOT_CTX, parent, `missing-${round}`));
          const sub = await fs.mkdir!(ROOT_CTX, parent, `dir-${round}`, 0o755, 0o022);
          await fs.rmdir!(ROOT_CTX, parent, `dir-${round}`);
          fs.forget!(sub.nodeid, 1);
          if (round === 0) afterOneRound = runtime.tableSizes();
        }
        await runtime.settle(10_000);
        const after = runtime.tableSizes();
        for (const [table, size] of Object.entries(after)) {
          if (CACHED_STATS.includes(table)) continue;
          const was = before[table];
          assert.ok(size <= was, `${table}: ${was} entries before ${ROUNDS} rounds, ${size} after`);
        }
        // Riak's answers are cached for the entry timeout: what the last round looked up, as
        // after the first, not what every round did.
        assert.ok(
          cachedStats(after) <= cachedStats(afterOneRound),
          `Riak's answers cached: ${JSON.stringify(afterOneRound)} after one round, ` +
            `${JSON.stringify(after)} after ${ROUNDS}`,
        );
      },
      {},
      { now },
    );
  });
}

Deno.test("riak: a walk over more names than the tables keep leaves them at their bounds, whatever the clock", async () => {
  // The clock stands still: no cached answer ever expires, so only a bound by count keeps
  // the tables from growing with each name walked (`ls -l`, `find -ls`, rsync of millions).
  const now = () => 1_800_000_000_000;
  const limits = { stats: 20, paths: 50 };
  const names = Array.from({ length: 200 }, (_, i) => `IMG_${i}.jpg`);
  await withOverlay(
    "riak",
    async ({ fs, runtime, store }) => {
      for (const name of names) await store.writeFile(`walk/${name}`, Buffer.from(name));
      const walk = await fs.lookup!(ROOT_CTX, ROOT_NODE_ID, "walk");
      const before = runtime.tableSizes();
      for (const name of names) {
        // What `ls -l` and a copy ask of each name; the kernel then forgets the node.
        const { nodeid } = await fs.lookup!(ROOT_CTX, walk.nodeid, name);
        await fs.getattr!(ROOT_CTX, nodeid, undefined);
        const { fh } = await fs.open!(ROOT_CTX, nodeid, 0);
        assert.equal(Buffer.from(await fs.read!(ROOT_CTX, nodeid, fh, 0, 4096)).toString(), name);
        await fs.release!(ROOT_CTX, nodeid, fh, 0);
        await assert.rejects(fs.lookup!(ROOT_CTX, walk.nodeid, `${name}.xmp`)); // Absent.
        fs.forget!(nodeid, 1);
      }
      const after = runtime.tableSizes();
      assert.equal(after.nodes, before.nodes, "every node the walk made is forgotten");
      for (const table of CACHED_STATS) {
        assert.ok(after[table] <= limits.stats, `${table}: ${after[table]} > ${limits.stats}`);
      }
      for (const [table, size] of Object.entries(after)) {
        assert.ok(size <= limits.paths, `${table}: ${size} entries > ${limits.paths}`);
      }
      assert.equal(after.statCache, limits.stats, "full: the walk's last answers");
      assert.equal(after.knownInRiak, limits.paths, "full: the walk's last names");
    },
    {},
    { now, tableLimits: limits },
  );
});
