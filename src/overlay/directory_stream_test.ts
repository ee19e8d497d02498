import assert from "node:assert/strict";
import { S_IFDIR, S_IFLNK, S_IFREG } from "./attributes.ts";
import {
  DirectoryStream,
  direntOf,
  direntType,
  type Listed,
  listedType,
} from "./directory_stream.ts";
import { NodeTable } from "./node_table.ts";

/** A listing of `count` entries that records how far it was read and whether it was closed. */
function listing(count: number) {
  const state = { started: 0, read: 0, closed: 0 };
  const start = () => {
    state.started++;
    return (async function* (): AsyncGenerator<Listed> {
      try {
        for (let i = 0; i < count; i++) {
          state.read++;
          yield { name: `e${i}`, type: 0o100000 };
        }
      } finally {
        state.closed++;
      }
    })();
  };
  return { state, start };
}

const names = (entries: Listed[]) => entries.map((entry) => entry.name);

Deno.test("a directory stream reads its listing only as far as the kernel asks, and keeps what it did not take", async () => {
  const { state, start } = listing(100_000);
  const stream = new DirectoryStream(start);
  assert.deepEqual(names(await stream.entriesAt(0, 3)), ["e0", "e1", "e2"]);
  assert.equal(state.read, 3, "nothing read ahead of the request");
  // The reply took two of them: the next READDIR starts at the third.
  assert.deepEqual(names(await stream.entriesAt(2, 3)), ["e2", "e3", "e4"]);
  assert.equal(state.read, 5);
  let offset = 5;
  for (let batch = await stream.entriesAt(offset, 64); batch.length > 0;) {
    offset += batch.length;
    assert.ok(state.read - offset <= 64, "never more than one batch read ahead");
    batch = await stream.entriesAt(offset, 64);
  }
  assert.equal(offset, 100_000);
  assert.equal(state.started, 1, "read once, front to back");
  assert.deepEqual(await stream.entriesAt(100_000, 64), [], "at the end: nothing, again");
  await stream.close();
});

Deno.test("a directory stream starts again for an offset it let go of, and skips to an offset ahead", async () => {
  const { state, start } = listing(10);
  const stream = new DirectoryStream(start);
  await stream.entriesAt(0, 4);
  assert.deepEqual(names(await stream.entriesAt(4, 2)), ["e4", "e5"]);
  // rewinddir: the listing is read anew.
  assert.deepEqual(names(await stream.entriesAt(0, 2)), ["e0", "e1"]);
  assert.equal(state.started, 2);
  assert.equal(state.closed, 1, "the first listing was ended");
  // seekdir forward, past what was read.
  assert.deepEqual(names(await stream.entriesAt(7, 10)), ["e7", "e8", "e9"]);
  assert.deepEqual(await stream.entriesAt(12, 1), []);
  await stream.close();
  assert.equal(state.closed, 2);
});

Deno.test("closing a directory stream ends the listing it has begun", async () => {
  const { state, start } = listing(10);
  const stream = new DirectoryStream(start);
  assert.deepEqual(names(await stream.entriesAt(0, 1)), ["e0"]); // As opendir reads it.
  assert.deepEqual(names(await stream.entriesAt(1, 1)), ["e1"]);
  await stream.close();
  assert.equal(state.closed, 1);
  assert.equal(state.started, 1);
  assert.deepEqual(await stream.entriesAt(1, 2), [], "a closed stream lists nothing");
  assert.deepEqual(await stream.entriesAt(0, 2), [], "...and begins no listing again");
  assert.equal(state.started, 1);
});

Deno.test("a directory stream whose listing failed partway lists on from where it was asked again, not its end", async () => {
  let starts = 0;
  const stream = new DirectoryStream(() => {
    const attempt = ++starts;
    return (async function* (): AsyncGenerator<Listed> {
      for (let i = 0; i < 10; i++) {
        // Riak's listing timed out at its sixth entry, the first time.
        if (attempt === 1 && i === 5) throw new Error("Riak list / did not answer in time");
        yield { name: `e${i}`, type: 0o100000 };
      }
    })();
  });
  assert.deepEqual(names(await stream.entriesAt(0, 3)), ["e0", "e1", "e2"]);
  await assert.rejects(stream.entriesAt(3, 4), /did not answer/);
  // The application reads on after the EIO: the kernel asks for the same offset again.
  assert.deepEqual(names(await stream.entriesAt(3, 4)), ["e3", "e4", "e5", "e6"]);
  assert.deepEqual(names(await stream.entriesAt(7, 4)), ["e7", "e8", "e9"]);
  assert.deepEqual(await stream.entriesAt(10, 4), []);
  await stream.close();
});

Deno.test("direntOf numbers entries for the next READDIR; dot entries take their directory's inode", () => {
  const nodes = new NodeTable();
  const file = direntOf(nodes, "/d", { name: "f", type: S_IFREG }, 4);
  assert.deepEqual(file, { name: "f", ino: nodes.inoOf("/d/f"), mode: S_IFREG, nextOffset: 5 });
  assert.equal(direntOf(nodes, "/d", { name: ".", type: S_IFDIR }, 0).ino, nodes.inoOf("/d"));
  assert.equal(direntOf(nodes, "/", { name: "g", type: S_IFREG }, 0).ino, nodes.inoOf("/g"));
});

Deno.test("listedType and direntType give the file type bits of Riak's and the source's entries", () => {
  assert.deepEqual(
    (["directory", "symlink", "file"] as const).map(listedType),
    [S_IFDIR, S_IFLNK, S_IFREG],
  );
  const dirent = (directory: boolean, symlink: boolean) => ({
    isDirectory: () => directory,
    isSymbolicLink: () => symlink,
  });
  assert.deepEqual(
    [dirent(true, false), dirent(false, true), dirent(false, false)].map(direntType),
    [S_IFDIR, S_IFLNK, S_IFREG],
  );
});
