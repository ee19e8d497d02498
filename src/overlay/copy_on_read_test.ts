import assert from "node:assert/strict";
import { CopyOnReadQueue, ReadCoverage } from "./copy_on_read.ts";
import { MountMetrics } from "./metrics.ts";
import { until } from "./_overlay_fixture.ts";

Deno.test("ReadCoverage merges ranges read in any order", () => {
  const coverage = new ReadCoverage();
  assert.equal(coverage.covers(10), false);
  coverage.add(6, 4);
  coverage.add(0, 3);
  assert.equal(coverage.covers(10), false);
  assert.equal(coverage.bytes, 7);
  coverage.add(2, 5);
  assert.equal(coverage.covers(10), true);
  assert.equal(coverage.covers(11), false);
  assert.equal(coverage.bytes, 10);
  coverage.add(20, 0);
  assert.equal(coverage.bytes, 10);
  assert.equal(new ReadCoverage().covers(0), true);
});

Deno.test("ReadCoverage counts reads recorded elsewhere, gaps filled from either side", () => {
  const coverage = new ReadCoverage();
  coverage.add(4096, 100); // An unaligned read the event loop served.
  coverage.add(8192, 50);
  // Reads recorded elsewhere (the FUSE reader threads' blocks): [0, 4096) and [4196, 8192).
  const threads = {
    readFrom: (offset: number) =>
      offset < 4096 ? 4096 : offset >= 4196 && offset < 8192 ? 8192 : offset,
  };
  assert.equal(coverage.covers(8242, threads), true);
  assert.equal(coverage.covers(8243, threads), false);
  assert.equal(coverage.covers(8242), false);
  assert.equal(new ReadCoverage().covers(4096, threads), true);
  assert.equal(coverage.readFrom(4100), 4196);
  assert.equal(coverage.readFrom(4196), 4196);
});

Deno.test("enqueue returns before the copy runs and dedupes queued paths", async () => {
  const copied: string[] = [];
  const metrics = new MountMetrics();
  const queue = new CopyOnReadQueue({
    metrics,
    copy: (path) => {
      copied.push(path);
      return Promise.resolve();
    },
  });
  assert.equal(queue.enqueue("/a", 1), true);
  assert.equal(queue.enqueue("/a", 1), false);
  assert.equal(queue.enqueue("/b", 1), true);
  assert.deepEqual(copied, [], "nothing runs on the caller's turn");
  assert.equal(metrics.snapshot().copyOnRead.queued, 2);
  await queue.idle();
  assert.deepEqual(copied.sort(), ["/a", "/b"]);
  const counters = metrics.snapshot().copyOnRead;
  assert.equal(counters.copied, 2);
  assert.equal(counters.skipped, 1);
  assert.equal(counters.queued, 0);
  // Once done, the same path may be queued again (it may have changed since).
  assert.equal(queue.enqueue("/a", 1), true);
  await queue.idle();
  assert.equal(copied.length, 3);
});

Deno.test("concurrency, queue length and bytes in flight are bounded", async () => {
  let running = 0;
  let peak = 0;
  let peakBytes = 0;
  let bytes = 0;
  const sizes = new Map<string, number>();
  const queue = new CopyOnReadQueue({
    concurrency: 3,
    queueLimit: 20,
    activeBytesLimit: 250,
    copy: async (path) => {
      running++;
      bytes += sizes.get(path)!;
      peak = Math.max(peak, running);
      peakBytes = Math.max(peakBytes, bytes);
      await new Promise((resolve) => setImmediate(resolve));
      bytes -= sizes.get(path)!;
      running--;
    },
  });
  let accepted = 0;
  for (let index = 0; index < 30; index++) {
    const path = `/f${index}`;
    sizes.set(path, index === 0 ? 1000 : 100);
    if (queue.enqueue(path, sizes.get(path)!)) accepted++;
  }
  assert.equal(accepted, 20);
  await queue.idle();
  assert.ok(peak <= 3);
  // The 1000-byte file ran alone; the others at most two at a time (250-byte bound).
  assert.equal(peakBytes, 1000);
});

Deno.test("a failed copy is counted, logged, and does not block the queue", async () => {
  const metrics = new MountMetrics();
  const queue = new CopyOnReadQueue({
    metrics,
    copy: (path) => path === "/bad" ? Promise.reject(new Error("EIO")) : Promise.resolve(),
  });
  queue.enqueue("/bad", 1);
  queue.enqueue("/good", 1);
  await queue.idle();
  const counters = metrics.snapshot().copyOnRead;
  assert.equal(counters.failed, 1);
  assert.equal(counters.copied, 1);
});

Deno.test("stop drops the queue, aborts running copies and refuses new ones", async () => {
  let aborted = false;
  const queue = new CopyOnReadQueue({
    concurrency: 1,
    copy: (_path, signal) =>
      new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(new Error("aborted"));
        });
      }),
  });
  queue.enqueue("/slow", 1);
  queue.enqueue("/never", 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(queue.depth, 2);
  await queue.stop();
  assert.equal(aborted, true);
  assert.equal(queue.depth, 0);
  assert.equal(queue.enqueue("/late", 1), false);
});

Deno.test("withdraw drops queued copies at or below a path and waits for running ones", async () => {
  const metrics = new MountMetrics();
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const queue = new CopyOnReadQueue({
    metrics,
    concurrency: 1,
    copy: (path, signal) => {
      started.push(path);
      return new Promise<void>((resolve, reject) => {
        // Like a put already sent: the abort is seen only once Riak answered.
        finish.set(path, () => signal.aborted ? reject(signal.reason) : resolve());
      });
    },
  });
  queue.enqueue("/d/a", 1);
  queue.enqueue("/d/b", 1);
  queue.enqueue("/dx", 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, ["/d/a"]);
  let withdrawn = false;
  const withdrawing = queue.withdraw("/d").then(() => withdrawn = true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(withdrawn, false, "waits for the copy in flight");
  finish.get("/d/a")!();
  await withdrawing;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, ["/d/a", "/dx"], "/d/b dropped, /dx (not below /d) kept");
  finish.get("/dx")!();
  await queue.idle();
  const counters = metrics.snapshot().copyOnRead;
  assert.equal(counters.copied, 1);
  assert.equal(counters.withdrawn, 2, "the dropped and the aborted copy");
  assert.equal(counters.failed, 0, "a withdrawal is not a failure");
  assert.equal(counters.skipped, 0);
  await queue.withdraw("/nothing"); // Nothing queued: resolves at once.
});

Deno.test("hold keeps copies at or below a path from being queued until released", async () => {
  const metrics = new MountMetrics();
  const copied: string[] = [];
  const queue = new CopyOnReadQueue({
    metrics,
    copy: (path) => {
      copied.push(path);
      return Promise.resolve();
    },
  });
  const release = await queue.hold("/d");
  assert.equal(queue.enqueue("/d/a", 1), false, "a read completing while /d changes");
  assert.equal(queue.enqueue("/dx", 1), true);
  release();
  release(); // Twice is once.
  assert.equal(queue.enqueue("/d/a", 1), true);
  await queue.idle();
  assert.deepEqual(copied.sort(), ["/d/a", "/dx"]);
  assert.equal(metrics.snapshot().copyOnRead.withdrawn, 1);
  const everything = await queue.hold("/");
  assert.equal(queue.enqueue("/any", 1), false);
  everything();
});

Deno.test("pause calls copies off and queues them again once released, unless a hold keeps them off", async () => {
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const queue = new CopyOnReadQueue({
    concurrency: 1,
    copy: (path, signal) => {
      started.push(path);
      return new Promise((resolve, reject) => {
        finish.set(path, resolve);
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    },
  });
  queue.enqueue("/running", 10);
  queue.enqueue("/queued", 20);
  await until(() => started.length === 1);
  const queued = await queue.pause("/queued");
  const running = await queue.pause("/running");
  assert.equal(queue.depth, 0, "both called off");
  assert.equal(queue.enqueue("/queued", 20), false, "a read completing while it changes");
  const renamed = await queue.hold("/queued"); // A rename of it, say, comes meanwhile.
  queued();
  assert.equal(queue.depth, 0, "the hold keeps it off");
  renamed();
  running();
  assert.deepEqual(queue.namesIn("/"), ["running"], "queued again");
  await until(() => started.length === 2);
  finish.get("/running")!();
  await queue.idle();
  assert.deepEqual(started, ["/running", "/running"]);
  // Paused twice, the copy waits for both releases.
  const first = await queue.pause("/again");
  const second = await queue.pause("/again");
  assert.equal(queue.enqueue("/again", 1), false);
  first();
  assert.equal(queue.depth, 0);
  second();
  assert.equal(queue.depth, 1);
  await until(() => started.length === 3);
  finish.get("/again")!();
  await queue.idle();
});

Deno.test("copies that failed for an outage are queued again when asked, unless withdrawn since", async () => {
  let riakUp = false;
  const copied: string[] = [];
  const queue = new CopyOnReadQueue({
    copy: (path) => {
      if (path === "/corrupt") return Promise.reject(new Error("checksum mismatch"));
      if (!riakUp) {
        return Promise.reject(
          Object.assign(new Error("connect refused"), { code: "ECONNREFUSED" }),
        );
      }
      copied.push(path);
      return Promise.resolve();
    },
  });
  for (const path of ["/a", "/dir/b", "/dir/c", "/corrupt"]) queue.enqueue(path, 1);
  await queue.idle();
  await queue.withdraw("/dir/c", { below: false }); // Changed through the mount meanwhile.
  riakUp = true;
  queue.retryAfterOutage();
  await queue.idle();
  assert.deepEqual(copied.sort(), ["/a", "/dir/b"], "not the withdrawn one, nor one Riak refused");
  queue.retryAfterOutage();
  await queue.idle();
  assert.deepEqual(copied.sort(), ["/a", "/dir/b"], "each retried once");
});

Deno.test("a copy that only frees a local copy stays one when queued again after an outage or a pause", async () => {
  let riakUp = false;
  const copied: string[] = [];
  const queue = new CopyOnReadQueue({
    copy: (path, _signal, kind) => {
      if (!riakUp) {
        return Promise.reject(
          Object.assign(new Error("connect refused"), { code: "ECONNREFUSED" }),
        );
      }
      copied.push(`${path} ${kind.freeOnly ? "freed" : "copied"}`);
      return Promise.resolve();
    },
  });
  queue.enqueue("/free", 1, { freeOnly: true });
  queue.enqueue("/copy", 1);
  await queue.idle();
  riakUp = true;
  queue.retryAfterOutage();
  await queue.idle();
  const released = await queue.pause("/d");
  assert.equal(queue.enqueue("/d/free", 1, { freeOnly: true }), false, "kept back");
  released();
  await queue.idle();
  assert.deepEqual(copied.sort(), ["/copy copied", "/d/free freed", "/free freed"]);
});

Deno.test("watchNamesIn collects the names queued directly in a directory until it ends", () => {
  const queue = new CopyOnReadQueue({ copy: () => new Promise(() => {}) });
  queue.enqueue("/d/before", 1);
  const root = queue.watchNamesIn("/");
  const watch = queue.watchNamesIn("/d/");
  const other = queue.watchNamesIn("/d");
  queue.enqueue("/d/a", 1);
  queue.enqueue("/d/e/nested", 1);
  queue.enqueue("/dx/b", 1);
  queue.enqueue("/top", 1);
  other.end();
  watch.end();
  watch.end(); // Twice is once.
  queue.enqueue("/d/after", 1);
  root.end();
  assert.deepEqual([...watch.names], ["a"]);
  assert.deepEqual([...other.names], ["a"]);
  assert.deepEqual([...root.names], ["top"]);
});

Deno.test("namesIn names the copies queued or running directly in a directory, until they end or are withdrawn", async () => {
  const finish = new Map<string, () => void>();
  const queue = new CopyOnReadQueue({
    concurrency: 1,
    copy: (path, signal) =>
      new Promise((resolve, reject) => {
        finish.set(path, resolve);
        signal.addEventListener("abort", () => reject(signal.reason));
      }),
  });
  for (const path of ["/d/a", "/d/e/nested", "/d/b", "/dx/c", "/top", "/d/e/f/deep"]) {
    queue.enqueue(path, 1);
  }
  await until(() => finish.has("/d/a"));
  assert.deepEqual(queue.namesIn("/d"), ["a", "b"], "not the nested ones, nor /dx's");
  assert.deepEqual(queue.namesIn("/d/"), ["a", "b"]);
  assert.deepEqual(queue.namesIn("/d/e"), ["nested"]);
  assert.deepEqual(queue.namesIn("/d/e/f"), ["deep"]);
  assert.deepEqual(queue.namesIn("/"), ["top"]);
  assert.deepEqual(queue.namesIn("/elsewhere"), []);
  finish.get("/d/a")!(); // The running copy ends.
  await until(() => finish.has("/d/e/nested"));
  assert.deepEqual(queue.namesIn("/d"), ["b"]);
  await queue.withdraw("/d/e"); // The running nested copy and the queued deeper one.
  assert.deepEqual(queue.namesIn("/d/e"), []);
  assert.deepEqual(queue.namesIn("/d/e/f"), []);
  await queue.withdraw("/d/b", { below: false }); // Running by now: the nested one ended.
  assert.deepEqual(queue.namesIn("/d"), []);
  assert.deepEqual(queue.namesIn("/dx"), ["c"]);
  await queue.stop();
  assert.deepEqual(queue.namesIn("/dx"), []);
  assert.deepEqual(queue.namesIn("/"), []);
});

Deno.test("withdraw and pause find the copies queued, running or failed in an outage at or below a path (or at it alone), and no other, in the order queued", async () => {
  let riakUp = false;
  const copied: string[] = [];
  const running = new Map<string, () => void>();
  const queue = new CopyOnReadQueue({
    concurrency: 1,
    copy: (path, signal) => {
      if (!riakUp) {
        return Promise.reject(
          Object.assign(new Error("connect refused"), { code: "ECONNREFUSED" }),
        );
      }
      return new Promise<void>((resolve, reject) => {
        running.set(path, () => {
          copied.push(path);
          resolve();
        });
        signal.addEventListener("abort", () => {
          running.delete(path);
          reject(signal.reason);
        });
      });
    },
  });
  // Failed during an outage: kept for retryAfterOutage.
  for (const path of ["/f/a", "/f/sub/b", "/fx", "/f"]) queue.enqueue(path, 1);
  await queue.idle();
  riakUp = true;
  // One running (/d/a), the others queued behind it.
  for (const path of ["/d/a", "/d/e/deep", "/dx/c", "/d", "/d/b", "/top"]) queue.enqueue(path, 1);
  await until(() => running.has("/d/a"));
  // At the path alone: neither what is below it nor a name it begins.
  await queue.withdraw("/d", { below: false });
  await queue.withdraw("/f", { below: false });
  assert.deepEqual(queue.namesIn("/"), ["top"], "/d went, /dx and /top stay");
  assert.deepEqual(queue.namesIn("/d"), ["a", "b"]);
  // A pause of /d takes the running and queued copies below it, to queue again after it.
  const resume = await queue.pause("/d");
  assert.deepEqual(queue.namesIn("/d"), []);
  assert.deepEqual(queue.namesIn("/d/e"), []);
  assert.deepEqual(queue.namesIn("/dx"), ["c"]);
  // Failed in the outage below /f: withdrawn, not retried; /fx is not below /f.
  await queue.withdraw("/f");
  resume();
  assert.deepEqual(queue.namesIn("/d"), ["a", "b"], "queued again, in the order queued");
  assert.deepEqual(queue.namesIn("/d/e"), ["deep"]);
  queue.retryAfterOutage();
  for (let done = 0; done < 6; done++) {
    await until(() => running.size > 0);
    const [path, finish] = [...running][0];
    running.delete(path);
    finish();
  }
  await queue.idle();
  assert.deepEqual(copied, ["/dx/c", "/top", "/d/a", "/d/e/deep", "/d/b", "/fx"]);
});
