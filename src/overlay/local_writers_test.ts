import assert from "node:assert/strict";
import { LocalWriters } from "./local_writers.ts";
import { PRESETS } from "./modes.ts";

const NO_MIRRORS = { newestIsMirror: () => false };

Deno.test("a path stays newest locally until its last writer is forgotten", () => {
  const writers = new LocalWriters(PRESETS.migrate, NO_MIRRORS);
  writers.add("/a");
  writers.add("/a");
  writers.forget("/a");
  assert.equal(writers.localIsNewest("/a"), true);
  assert.equal(writers.size, 1);
  writers.forget("/a");
  assert.equal(writers.localIsNewest("/a"), false);
  assert.equal(writers.size, 0);
});

Deno.test("forgetting a writer never added leaves no entry behind", () => {
  const writers = new LocalWriters(PRESETS.migrate, NO_MIRRORS);
  writers.forget("/a");
  assert.equal(writers.size, 0);
  assert.equal(writers.localIsNewest("/a"), false);
});

Deno.test("a mirror still on its way makes the local file the newest without a writer", () => {
  const writers = new LocalWriters(PRESETS.migrate, { newestIsMirror: (path) => path === "/m" });
  assert.equal(writers.localIsNewest("/m"), true);
  assert.equal(writers.localIsNewest("/other"), false);
  assert.equal(writers.size, 0);
});

/**
 * Starts two write opens of `/f`, the first held until `releaseFirst`: `order` shows whether
 * the second waited for it.
 */
function twoOpens(writers: LocalWriters) {
  const order: string[] = [];
  const { promise: held, resolve: releaseFirst } = Promise.withResolvers<void>();
  const first = writers.oneWriteOpenAtATime("/f", async () => {
    order.push("first starts");
    await held;
    order.push("first ends");
  });
  const second = writers.oneWriteOpenAtATime("/f", () => {
    order.push("second");
    return Promise.resolve();
  });
  return { order, first, second, releaseFirst };
}

Deno.test("write opens of one path run one at a time where writes are mirrored", async () => {
  const writers = new LocalWriters(PRESETS.migrate, NO_MIRRORS);
  const { order, first, second, releaseFirst } = twoOpens(writers);
  await writers.oneWriteOpenAtATime("/g", () => {
    order.push("other path");
    return Promise.resolve();
  });
  releaseFirst();
  await Promise.all([first, second]);
  assert.deepEqual(order, ["first starts", "other path", "first ends", "second"]);
});

Deno.test("a failed write open does not stop the next one of the path", async () => {
  const writers = new LocalWriters(PRESETS.migrate, NO_MIRRORS);
  const failed = writers.oneWriteOpenAtATime("/f", () => Promise.reject(new Error("no room")));
  const next = writers.oneWriteOpenAtATime("/f", () => Promise.resolve("opened"));
  await assert.rejects(failed, /no room/);
  assert.equal(await next, "opened");
});

Deno.test("write opens run at once where no fetch can race (local reads, staged writes)", async () => {
  for (const mode of [PRESETS.shadow, PRESETS.riak]) {
    const { order, first, second, releaseFirst } = twoOpens(new LocalWriters(mode, NO_MIRRORS));
    await second;
    releaseFirst();
    await first;
    assert.deepEqual(order, ["first starts", "second", "first ends"]);
  }
});
