/**
 * End-to-end tests of `riakfs verify`: byte-exact comparison of a source with Riak.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chunkKey } from "../src/store/manifest.ts";
import { withMigration } from "./_migration.ts";
import { runRiakfs } from "./_riakfs.ts";

Deno.test("verify: a damaged chunk, a missing file and a local change are all listed", async () => {
  await withMigration(async ({ source, store, client, flags }) => {
    const chunked = [...flags, "--chunk-size", "4096"];
    const big = Buffer.alloc(50_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    writeFileSync(join(source, "big.bin"), big);
    writeFileSync(join(source, "small.txt"), "small");
    writeFileSync(join(source, "local-edit.txt"), "before");
    const warmed = await runRiakfs(["prewarm", source, ...chunked]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const clean = await runRiakfs(["verify", source, "--json", ...chunked]);
    assert.equal(clean.code, 0, clean.stdout);
    assert.deepEqual(JSON.parse(clean.stdout).matched, 3);

    // Damage chunk 5 of big.bin in Riak, add a file Riak lacks, change one locally.
    const manifest = await store.manifest("big.bin");
    assert.ok(manifest, "big.bin is chunked");
    const location = store.layout.chunk(chunkKey(manifest.generation, 5));
    const chunk = await client.get(location);
    const damaged = Buffer.from(chunk.contents[0].value);
    damaged[100] ^= 1;
    await client.put(location, {
      ...chunk.contents[0],
      value: damaged,
      contentType: "application/octet-stream",
    }, {
      vclock: chunk.vclock,
    });
    writeFileSync(join(source, "not-uploaded"), "new");
    writeFileSync(join(source, "local-edit.txt"), "after!");

    const run = await runRiakfs(["verify", source, ...chunked]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^differs: \/big\.bin: .*checksum mismatch/m);
    assert.match(run.stdout, /^missing: \/not-uploaded: not in Riak$/m);
    assert.match(run.stdout, /^differs: \/local-edit\.txt: sha256 differs/m);
    assert.match(run.stdout, /4 files .* 1 identical, 3 differ$/m);

    const one = await runRiakfs(["verify", source, "small.txt", ...chunked]);
    assert.equal(one.code, 0, one.stdout);
    // As the shell completes it: SOURCE/small.txt is small.txt.
    const completed = await runRiakfs(["verify", source, join(source, "small.txt"), ...chunked]);
    assert.equal(completed.code, 0, completed.stdout + completed.stderr);
    assert.match(completed.stdout, /1 files .* 1 identical, 0 differ$/m);
    const bad = await runRiakfs(["verify", source, "--sample", "zero", ...chunked]);
    assert.equal(bad.code, 2);
    const outside = await runRiakfs(["verify", source, "../elsewhere", ...chunked]);
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(outside.stderr, /^riakfs: .*PATHs are relative to SOURCE/);
  });
});

Deno.test("verify: files Riak could not be asked about are not differences, and nothing is recorded", async () => {
  await withMigration(async ({ riak, source, stateDir, flags }) => {
    writeFileSync(join(source, "a.txt"), "a");
    writeFileSync(join(source, "b.txt"), "b");
    const warmed = await runRiakfs(["prewarm", source, ...flags]);
    assert.equal(warmed.code, 0, warmed.stderr + warmed.stdout);
    const recorded = readFileSync(join(stateDir, "state.json"), "utf8");
    await riak.server!.faults.stopAccepting();
    riak.server!.faults.dropConnections();
    try {
      const down = await runRiakfs(["verify", source, ...flags]);
      assert.equal(down.code, 1, down.stdout);
      assert.match(down.stdout, /0 identical, 0 differ, 2 could not be checked$/m);
      assert.match(down.stderr, /2 file\(s\) could not be checked; the result is not recorded/);
      assert.equal(readFileSync(join(stateDir, "state.json"), "utf8"), recorded);
    } finally {
      await riak.server!.faults.resumeAccepting();
    }
  });
});
