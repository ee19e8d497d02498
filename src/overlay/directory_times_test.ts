import assert from "node:assert/strict";
import { DirectoryTimes } from "./directory_times.ts";

/** A write function that records its calls and lets the test decide when each one ends. */
function recordingWrites() {
  const written: [string, bigint][] = [];
  const waiting: { path: string; finish: (error?: Error) => void }[] = [];
  let arrived: (() => void) | undefined;
  return {
    written,
    waiting,
    /** Ends every write started so far, in order. */
    finishAll(error?: Error) {
      for (const write of waiting.splice(0)) write.finish(error);
    },
    /** Resolves once a write is waiting. */
    nextWrite(): Promise<void> {
      if (waiting.length > 0) return Promise.resolve();
      return new Promise((resolve) => arrived = resolve);
    },
    write: (path: string, mtimeNs: bigint) =>
      new Promise<void>((resolve, reject) => {
        written.push([path, mtimeNs]);
        waiting.push({ path, finish: (error) => error ? reject(error) : resolve() });
        arrived?.();
        arrived = undefined;
      }),
  };
}

/** Waits for `settling`, ending every write that starts meanwhile (failing it with `error`). */
async function settleWriting(
  writes: ReturnType<typeof recordingWrites>,
  settling: Promise<void>,
  error?: Error,
): Promise<void> {
  let done = false;
  const settled = settling.then(() => {
    done = true;
  });
  while (!done) {
    await Promise.race([writes.nextWrite(), settled]);
    writes.finishAll(error);
  }
}

Deno.test("changes to one directory are shown at once and written once, with the newest time", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 3_600_000 });
  times.changed("/d", 3n);
  times.changed("/d", 5n);
  times.changed("/d", 4n);
  assert.equal(times.mtimeOf("/d"), 5n);
  assert.equal(times.mtimeOf("/other"), undefined);
  await settleWriting(writes, times.settledBelow("/"));
  assert.deepEqual(writes.written, [["/d", 5n]]);
  assert.equal(times.mtimeOf("/d"), undefined, "Riak holds it now");
  assert.equal(times.pendingCount, 0);
});

Deno.test("a change is written by itself once the delay passed", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 0 });
  times.changed("/d", 7n);
  assert.deepEqual(writes.written, [], "not before the delay");
  await writes.nextWrite();
  assert.deepEqual(writes.written, [["/d", 7n]]);
  writes.finishAll();
  await times.settledBelow("/");
  assert.equal(times.pendingCount, 0);
});

Deno.test("a change during a write is written after it, and settled waits for that", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 3_600_000 });
  times.changed("/d", 1n);
  const first = times.settled("/d");
  await writes.nextWrite();
  times.changed("/d", 2n);
  assert.equal(times.mtimeOf("/d"), 2n, "the newer change is shown while the older is written");
  const second = times.settled("/d");
  writes.finishAll();
  await first;
  assert.equal(times.mtimeOf("/d"), 2n, "not written yet");
  await writes.nextWrite();
  writes.finishAll();
  await second;
  assert.deepEqual(writes.written, [["/d", 1n], ["/d", 2n]]);
  assert.equal(times.pendingCount, 0);
});

Deno.test("settling a directory writes it alone; below it, those below too, not its namesakes", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 3_600_000 });
  for (const path of ["/a", "/a/b", "/ab", "/c"]) times.changed(path, 1n);
  await settleWriting(writes, times.settled("/a"));
  assert.deepEqual(writes.written, [["/a", 1n]], "settled: the directory alone");
  await settleWriting(writes, times.settledBelow("/a"));
  assert.deepEqual(writes.written.map(([path]) => path).sort(), ["/a", "/a/b"]);
  assert.equal(times.mtimeOf("/ab"), 1n);
  await settleWriting(writes, times.settledBelow("/"));
  assert.equal(times.pendingCount, 0);
});

Deno.test("a failed write leaves the directory at what Riak holds", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 3_600_000 });
  times.changed("/d", 9n);
  await settleWriting(writes, times.settledBelow("/"), new Error("Riak away"));
  assert.equal(times.mtimeOf("/d"), undefined);
  assert.equal(times.pendingCount, 0);
});

Deno.test("forgetting a directory writes nothing more of it, and waits for a write under way", async () => {
  const writes = recordingWrites();
  const times = new DirectoryTimes({ write: writes.write, delayMs: 3_600_000 });
  times.changed("/gone", 1n);
  await times.forget("/gone");
  assert.equal(times.mtimeOf("/gone"), undefined);
  assert.equal(times.pendingCount, 0);

  times.changed("/busy", 1n);
  const first = times.settled("/busy");
  await writes.nextWrite();
  times.changed("/busy", 2n);
  const second = times.settled("/busy"); // Queued behind the running write.
  let forgotten = false;
  const forgetting = times.forget("/busy").then(() => forgotten = true);
  await Promise.resolve();
  assert.equal(forgotten, false, "waits for the running write");
  writes.finishAll();
  await Promise.all([first, second, forgetting]);
  assert.deepEqual(writes.written, [["/busy", 1n]], "the queued write was not made");
  assert.equal(times.pendingCount, 0);
  times.changed("/busy", 3n); // Made again under the same name: a change of its own.
  assert.equal(times.mtimeOf("/busy"), 3n);
  await settleWriting(writes, times.settled("/busy"));
  assert.deepEqual(writes.written.at(-1), ["/busy", 3n]);
});
