import assert from "node:assert/strict";
import {
  copiesMoveFiles,
  describeMode,
  mirrorsWrites,
  ModeError,
  type MountMode,
  presetOf,
  PRESETS,
  renderModeTable,
  resolveMode,
  stagesWrites,
  usesRiak,
  usesSource,
  writesLocal,
  writesRiak,
  type WriteTarget,
} from "./modes.ts";

Deno.test("presets match the issue's table", () => {
  assert.deepEqual(resolveMode("passthrough"), {
    reads: "local",
    copyOnRead: false,
    writes: "local",
    afterTransfer: "keep",
    listings: "local",
  });
  assert.deepEqual(resolveMode("shadow"), {
    reads: "local",
    copyOnRead: true,
    writes: "local+riak",
    afterTransfer: "keep",
    listings: "local",
  });
  assert.deepEqual(resolveMode("migrate"), {
    reads: "riak-then-local",
    copyOnRead: true,
    writes: "riak+local",
    afterTransfer: "keep",
    listings: "union",
  });
  assert.deepEqual(resolveMode("drain"), {
    reads: "riak-then-local",
    copyOnRead: true,
    writes: "riak",
    afterTransfer: "delete",
    listings: "union",
  });
  assert.deepEqual(resolveMode("riak"), {
    reads: "riak",
    copyOnRead: false,
    writes: "riak",
    afterTransfer: "keep",
    listings: "riak",
  });
  assert.deepEqual(resolveMode(), PRESETS.passthrough);
});

Deno.test("every preset passes its own validation and is recognised back", () => {
  for (const name of Object.keys(PRESETS)) {
    const mode = resolveMode(name);
    assert.equal(presetOf(mode), name);
  }
});

Deno.test("knobs override the preset", () => {
  const mode = resolveMode("migrate", { afterTransfer: "delete", copyOnRead: "no" });
  assert.equal(mode.afterTransfer, "delete");
  assert.equal(mode.copyOnRead, false);
  assert.equal(mode.reads, "riak-then-local");
  assert.equal(presetOf(mode), undefined);
  assert.equal(resolveMode("shadow", { copyOnRead: false }).copyOnRead, false);
  assert.equal(resolveMode("passthrough", { listings: "union" }).listings, "union");
});

Deno.test("bad values and contradictions are one-line ModeErrors naming the flag", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["nosuch", {}, /--preset must be one of passthrough, shadow, migrate, drain, riak/],
    ["migrate", { reads: "remote" }, /--reads must be one of local, riak-then-local, riak/],
    ["migrate", { copyOnRead: "maybe" }, /--copy-on-read must be one of yes, no/],
    ["migrate", { writes: "nowhere" }, /--writes must be one of/],
    ["migrate", { afterTransfer: "shred" }, /--after-transfer must be one of keep, delete/],
    ["migrate", { listings: "all" }, /--listings must be one of local, union, riak/],
    ["riak", { writes: "local" }, /--reads riak does not use the source/],
    ["riak", { listings: "union" }, /--listings must be riak/],
    ["riak", { copyOnRead: "yes" }, /--copy-on-read yes needs a source/],
    ["riak", { afterTransfer: "delete" }, /needs a source to delete from/],
    ["migrate", { listings: "riak" }, /--listings riak would hide files/],
    ["shadow", { writes: "riak" }, /could not be read back/],
    ["shadow", { afterTransfer: "delete" }, /deleted files could not be read/],
    ["drain", { listings: "local" }, /would not be listed/],
    [
      "migrate",
      { afterTransfer: "delete", listings: "local" },
      /deleted files would not be listed/,
    ],
  ];
  for (const [preset, overrides, pattern] of cases) {
    assert.throws(() => resolveMode(preset, overrides), (error: unknown) => {
      assert.ok(error instanceof ModeError);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("usesRiak and usesSource follow the knobs", () => {
  assert.equal(usesRiak(resolveMode("passthrough")), false);
  assert.equal(usesRiak(resolveMode("shadow")), true);
  assert.equal(usesSource(resolveMode("riak")), false);
  assert.equal(usesSource(resolveMode("drain")), true);
});

Deno.test("each write target is exactly one of local only, staged, or mirrored", () => {
  const expected: Record<WriteTarget, [boolean, boolean, boolean, boolean]> = {
    //              writesRiak stagesWrites mirrorsWrites writesLocal
    "local": [false, false, false, true],
    "local+riak": [true, false, true, true],
    "riak+local": [true, false, true, true],
    "riak": [true, true, false, false],
  };
  for (const [writes, want] of Object.entries(expected) as [WriteTarget, boolean[]][]) {
    const mode: MountMode = { ...PRESETS.migrate, writes };
    assert.deepEqual(
      [writesRiak(mode), stagesWrites(mode), mirrorsWrites(mode), writesLocal(mode)],
      want,
      writes,
    );
  }
});

Deno.test("copy-on-read moves files only when writes reach Riak and local copies are deleted", () => {
  assert.equal(copiesMoveFiles(resolveMode("drain")), true);
  for (const preset of ["passthrough", "shadow", "migrate", "riak"] as const) {
    assert.equal(copiesMoveFiles(resolveMode(preset)), false, preset);
  }
  assert.equal(copiesMoveFiles(resolveMode("migrate", { afterTransfer: "delete" })), true);
  const localDelete: MountMode = { ...PRESETS.passthrough, afterTransfer: "delete" };
  assert.equal(copiesMoveFiles(localDelete), false);
});

Deno.test("the help table lists every preset with aligned columns", () => {
  const table = renderModeTable().split("\n");
  assert.equal(table.length, 6);
  assert.match(table[0], /^preset\s+reads\s+copy-on-read\s+writes\s+after transfer\s+listings$/);
  assert.match(table[3], /^migrate\s+riak-then-local\s+yes\s+riak\+local\s+keep\s+union$/);
  assert.match(table[5], /^riak\s+riak\s+-\s+riak\s+-\s+riak$/);
  const column = table[0].indexOf("writes");
  for (const row of table.slice(1)) assert.notEqual(row[column - 1], undefined);
  assert.equal(
    describeMode(resolveMode("drain")),
    "--reads riak-then-local --copy-on-read yes --writes riak --after-transfer delete --listings union",
  );
});
