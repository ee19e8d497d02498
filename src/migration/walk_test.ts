import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PathFilter } from "./glob.ts";
import { CAN_MOUNT, withTmpfsAt } from "./_test_support.ts";
import { compareWalkOrder, countTree, type WalkEntry, type WalkFailure, walkTree } from "./walk.ts";

function makeTree(): string {
  const root = mkdtempSync(join(tmpdir(), "riakfs-walk-"));
  for (const dir of ["a", "a/b", "a b", "c", "c/d", "c/d/e"]) mkdirSync(join(root, dir));
  for (const file of ["z.txt", "a/1.log", "a/b/2.txt", "a b/3.txt", "c/d/e/4.tmp", "c/5"]) {
    writeFileSync(join(root, file), file);
  }
  symlinkSync("z.txt", join(root, "link"));
  return root;
}

async function collect(iterable: AsyncIterable<WalkEntry | WalkFailure>): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of iterable) out.push(`${entry.kind}:${entry.path.toString()}`);
  return out;
}

const FULL = [
  "directory:a",
  "file:a/1.log",
  "directory:a/b",
  "file:a/b/2.txt",
  "directory:a b",
  "file:a b/3.txt",
  "directory:c",
  "file:c/5",
  "directory:c/d",
  "directory:c/d/e",
  "file:c/d/e/4.tmp",
  "symlink:link",
  "file:z.txt",
];

Deno.test("walkTree yields a stable depth-first order with names sorted by bytes", async () => {
  const root = makeTree();
  try {
    assert.deepEqual(await collect(walkTree(root)), FULL);
    assert.deepEqual(await collect(walkTree(root, { direntBatch: 1 })), FULL);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("walkTree walks only a subtree when asked, resuming inside it", async () => {
  const root = makeTree();
  try {
    const c = FULL.filter((line) => line.includes(":c/"));
    assert.deepEqual(await collect(walkTree(root, { under: Buffer.from("c") })), c);
    assert.deepEqual(
      await collect(walkTree(root, { under: Buffer.from("c"), startAfter: Buffer.from("c/5") })),
      c.slice(1),
    );
    const gone = await collect(walkTree(root, { under: Buffer.from("nope") }));
    assert.deepEqual(gone, ["unreadable:nope"]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("walk order agrees with compareWalkOrder (a directory before its contents)", () => {
  const paths = FULL.map((line) => Buffer.from(line.slice(line.indexOf(":") + 1)));
  for (let i = 1; i < paths.length; i++) {
    assert.ok(compareWalkOrder(paths[i - 1], paths[i]) < 0, `${paths[i - 1]} < ${paths[i]}`);
  }
  assert.equal(compareWalkOrder(Buffer.from("a/b"), Buffer.from("a/b")), 0);
});

Deno.test("walkTree resumes strictly after a cursor and stops at an end (inclusive)", async () => {
  const root = makeTree();
  try {
    for (let cut = 0; cut < FULL.length; cut++) {
      const cursor = Buffer.from(FULL[cut].slice(FULL[cut].indexOf(":") + 1));
      const after = await collect(walkTree(root, { startAfter: cursor }));
      const upTo = await collect(walkTree(root, { endAt: cursor }));
      assert.deepEqual(after, FULL.slice(cut + 1), `after ${cursor}`);
      assert.deepEqual(upTo, FULL.slice(0, cut + 1), `up to ${cursor}`);
    }
    // A cursor that no longer exists still resumes at the right place.
    assert.deepEqual(
      await collect(walkTree(root, { startAfter: Buffer.from("a/b/1-gone") })),
      FULL.slice(3),
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("walkTree prunes excluded directories and keeps only included files", async () => {
  const root = makeTree();
  try {
    const filter = new PathFilter(["*.txt", "c/**"], ["d", "*.log"]);
    assert.deepEqual(await collect(walkTree(root, { filter })), [
      "directory:a",
      "directory:a/b",
      "file:a/b/2.txt",
      "directory:a b",
      "file:a b/3.txt",
      "directory:c",
      "file:c/5",
      "file:z.txt",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("walkTree reports an unreadable root instead of throwing", async () => {
  const out = await collect(walkTree("/nonexistent/riakfs-walk-test"));
  assert.deepEqual(out, ["unreadable:"]);
});

Deno.test("countTree counts what walkTree yields (files and symlinks), with filters and a cursor", async () => {
  const root = makeTree();
  try {
    const filters = [
      undefined,
      new PathFilter([], ["*.tmp", "a b"]),
      new PathFilter(["*.txt"], []),
    ];
    const cursors = [undefined, "a", "a/b/2.txt", "a b/3.txt", "c/d", "link", "z.txt"];
    for (const filter of filters) {
      for (const cursor of cursors) {
        const startAfter = cursor === undefined ? undefined : Buffer.from(cursor);
        const walked = (await collect(walkTree(root, { filter, startAfter })))
          .filter((entry) => entry.startsWith("file:") || entry.startsWith("symlink:")).length;
        assert.equal(
          await countTree(root, { filter, startAfter }),
          walked,
          `filter ${filter ? "set" : "none"}, after ${cursor}`,
        );
      }
    }
    const stopped = new AbortController();
    stopped.abort();
    assert.equal(await countTree(root, { signal: stopped.signal }), undefined);
    assert.equal(await countTree(join(root, "missing")), 0, "an unreadable root counts as empty");
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test({
  name: "walkTree and countTree never cross into another filesystem mounted below the root",
  ignore: !CAN_MOUNT,
  fn: async () => {
    const root = makeTree();
    try {
      await withTmpfsAt(join(root, "c/d"), async () => {
        writeFileSync(join(root, "c/d/on-tmpfs"), "another filesystem");
        const walked = await collect(walkTree(root));
        assert.deepEqual(
          walked.filter((entry) => entry.includes("c/d")),
          ["mount-point:c/d"],
          "the mount point is named once, nothing below it",
        );
        assert.equal(await countTree(root), 6, "files and the symlink outside the mount");
        const resumed = await collect(walkTree(root, { startAfter: Buffer.from("c/5") }));
        assert.deepEqual(resumed, ["mount-point:c/d", "symlink:link", "file:z.txt"]);
        const below = await collect(walkTree(root, { under: Buffer.from("c/d") }));
        assert.deepEqual(below, ["mount-point:c/d"]);
      });
    } finally {
      rmSync(root, { recursive: true });
    }
  },
});

// A put back is a link to the original name, then the unlink of the private one: killed in
// between, both name the one file, and the private name stayed for good, reported each time.
Deno.test("a walk drops the private second name of a file whose put back was killed after its link", async () => {
  const root = mkdtempSync(join(tmpdir(), "riakfs-walk-"));
  try {
    writeFileSync(join(root, "doc"), "put back");
    linkSync(join(root, "doc"), join(root, ".riakfs-deleting.00000000000e.doc"));
    const told: string[] = [];
    const walked = await collect(walkTree(root, {
      onSetAsideRestored: (_directory, { putBack, kept }) =>
        told.push(`${putBack.join()}|${kept.join()}`),
    }));
    assert.deepEqual(walked, ["file:doc"]);
    assert.deepEqual(told, ["doc|"]);
    assert.deepEqual(readdirSync(root), ["doc"]);
    assert.equal(readFileSync(join(root, "doc"), "utf8"), "put back");
  } finally {
    rmSync(root, { recursive: true });
  }
});

// A deletion moves aside whatever holds the name: a directory or symlink saved there just then.
Deno.test("a walk puts back a directory or symlink an interrupted deletion left set aside, and walks them as such", async () => {
  const root = mkdtempSync(join(tmpdir(), "riakfs-walk-"));
  try {
    mkdirSync(join(root, ".riakfs-deleting.00000000000f.dir"));
    writeFileSync(join(root, ".riakfs-deleting.00000000000f.dir/inside"), "kept");
    symlinkSync("target", join(root, ".riakfs-deleting.000000000010.link"));
    const told: string[] = [];
    const walked = await collect(walkTree(root, {
      onSetAsideRestored: (_directory, { putBack, kept }) =>
        told.push(`${putBack.join()}|${kept.join()}`),
    }));
    assert.deepEqual(walked, ["directory:dir", "file:dir/inside", "symlink:link"]);
    assert.deepEqual(told.sort(), ["dir|", "link|"]);
    assert.deepEqual(readdirSync(root), ["dir", "link"]);
    assert.equal(readFileSync(join(root, "dir/inside"), "utf8"), "kept");
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("a walk told to put back what an interrupted deletion left set aside, walks it under its name, and keeps one whose name is taken", async () => {
  const root = mkdtempSync(join(tmpdir(), "riakfs-walk-"));
  try {
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "d/.riakfs-deleting.00000000000a.free"), "set aside");
    writeFileSync(join(root, "d/.riakfs-deleting.00000000000b.taken"), "older");
    writeFileSync(join(root, "d/taken"), "newer");
    // A name too long for a private name of its own has a private directory.
    const long = "l".repeat(240);
    mkdirSync(join(root, "d/.riakfs-deleting.00000000000c"));
    writeFileSync(join(root, "d/.riakfs-deleting.00000000000c", long), "long");
    mkdirSync(join(root, ".riakfs-deleting.00000000000d")); // Killed before its move: empty.
    // Not the form of a private name: someone else's file, walked as any other.
    writeFileSync(join(root, ".riakfs-deleting.not-riakfs"), "someone else's");
    assert.deepEqual(
      await collect(walkTree(root)),
      ["file:.riakfs-deleting.not-riakfs", "directory:d", "file:d/taken"],
      "the private names hidden",
    );
    const told: string[] = [];
    const walked = await collect(walkTree(root, {
      onSetAsideRestored: (directory, { aside, putBack, kept }) =>
        told.push(`${directory}|${aside}|${putBack.join()}|${kept.join()}`),
    }));
    assert.deepEqual(walked, [
      "file:.riakfs-deleting.not-riakfs",
      "directory:d",
      "file:d/free",
      `file:d/${long}`,
      "file:d/taken",
    ]);
    assert.deepEqual(told, [
      "|.riakfs-deleting.00000000000d||",
      "d|.riakfs-deleting.00000000000a.free|free|",
      "d|.riakfs-deleting.00000000000b.taken||.riakfs-deleting.00000000000b.taken",
      `d|.riakfs-deleting.00000000000c|${long}|`,
    ]);
    assert.equal(readFileSync(join(root, "d/free"), "utf8"), "set aside");
    assert.equal(readFileSync(join(root, "d", long), "utf8"), "long");
    assert.equal(readFileSync(join(root, "d/taken"), "utf8"), "newer");
    assert.equal(
      readFileSync(join(root, "d/.riakfs-deleting.00000000000b.taken"), "utf8"),
      "older",
    );
    assert.deepEqual(readdirSync(root), [".riakfs-deleting.not-riakfs", "d"]);
    assert.deepEqual(
      readdirSync(join(root, "d")).sort(),
      [".riakfs-deleting.00000000000b.taken", "free", long, "taken"].sort(),
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("a directory removed after the walk yielded it is no failure: there is nothing below it to walk", async () => {
  const root = makeTree();
  try {
    const out: string[] = [];
    for await (const entry of walkTree(root)) {
      out.push(`${entry.kind}:${entry.path.toString()}`);
      // As a drain's empty leftover is removed while the walk goes on.
      if (entry.path.toString() === "c/d") rmSync(join(root, "c/d"), { recursive: true });
    }
    assert.deepEqual(out, FULL.filter((line) => !line.includes("c/d/")));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
