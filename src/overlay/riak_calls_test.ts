import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { RequestContext } from "../fuse/filesystem.ts";
import type { FileStat } from "../store/store.ts";
import { ROOT_CTX } from "./_overlay_fixture.ts";
import { rootStat } from "./attributes.ts";
import { RiakTimeoutError } from "./health.ts";
import { Logger } from "./log.ts";
import { RiakCalls, type RiakCallsOptions } from "./riak_calls.ts";

/** What the fakes behind a {@link RiakCalls} were asked, in order. */
interface Asked {
  calls: string[];
  logged: string[];
  /** The progress callback of the last `health.run`, if any. */
  progress?: () => number;
}

/** A RiakCalls over fakes; `hold` answers the copy-on-read holds (default: held at once). */
function riakCalls(
  overrides: Partial<RiakCallsOptions> & {
    pending?: boolean;
    hold?: (path: string) => Promise<() => void>;
  } = {},
): { riak: RiakCalls; asked: Asked } {
  const asked: Asked = { calls: [], logged: [] };
  const released = (path: string) => () => asked.calls.push(`release ${path}`);
  const hold = overrides.hold ?? ((path: string) => Promise.resolve(released(path)));
  const riak = new RiakCalls({
    store: { tryStat: (path) => Promise.resolve(void asked.calls.push(`tryStat ${path}`)) },
    health: {
      run: (operation, timeoutMs, request, progress) => {
        asked.calls.push(`run ${operation} within ${timeoutMs}`);
        asked.progress = progress;
        return request();
      },
    },
    uploads: {
      hasPending: () => overrides.pending ?? false,
      hurry: (path, below) => void asked.calls.push(`hurry ${path}${below ? " below" : ""}`),
      settled: (path) => Promise.resolve(void asked.calls.push(`settled ${path}`)),
      settledBelow: (path) => Promise.resolve(void asked.calls.push(`settledBelow ${path}`)),
      acknowledged: 42,
    },
    copies: {
      hold: (path) => (asked.calls.push(`hold ${path}`), hold(path)),
      pause: (path) => (asked.calls.push(`pause ${path}`), hold(path)),
    },
    logger: new Logger({ sink: { write: (line) => asked.logged.push(line) } }),
    riakTimeoutMs: 5_000,
    cache: { prime: (version) => void asked.calls.push(`prime ${version.path}`) },
    knowledge: {
      cached: () => undefined,
      rememberStat: (path, stat, now) =>
        void asked.calls.push(`remember ${path} ${stat?.type ?? "absent"} at ${now}`),
    },
    now: () => 1_000,
    ...overrides,
  });
  return { riak, asked };
}

Deno.test("a Riak request runs under the mount's deadline and outage tracking", async () => {
  const { riak, asked } = riakCalls();
  assert.equal(await riak.run("stat /a", () => Promise.resolve("answer")), "answer");
  assert.deepEqual(asked.calls, ["run stat /a within 5000"]);
});

Deno.test("a wait of the mount's own fails with EIO once the Riak deadline passed", async () => {
  const { riak } = riakCalls({ riakTimeoutMs: 1 });
  const never = new Promise<never>(() => {});
  const error = await riak.withinDeadline("copies of /a", never).catch((error) => error);
  assert.ok(error instanceof RiakTimeoutError);
  assert.equal(error.code, "EIO");
  assert.equal(error.timeoutMs, 1);
  assert.equal(await riak.withinDeadline("copies of /a", Promise.resolve(7)), 7);
});

Deno.test("a change runs with the copies of its paths held, then lets them go", async () => {
  const { riak, asked } = riakCalls();
  const result = await riak.holdingCopies("rename /a", ["/a", "/b"], () => {
    asked.calls.push("body");
    return Promise.resolve("done");
  });
  assert.equal(result, "done");
  await Promise.resolve();
  assert.deepEqual(asked.calls, ["hold /a", "hold /b", "body", "release /a", "release /b"]);
});

Deno.test("a change that leaves its files where they are pauses their copies instead", async () => {
  const { riak, asked } = riakCalls();
  await riak.holdingCopies("chmod /a", ["/a"], () => Promise.resolve(), { requeued: true });
  await Promise.resolve();
  assert.deepEqual(asked.calls, ["pause /a", "release /a"]);
});

Deno.test("a copy that does not let go within the deadline keeps the change from running", async () => {
  const { riak, asked } = riakCalls({ riakTimeoutMs: 1, hold: () => new Promise(() => {}) });
  const body = () => Promise.resolve(void asked.calls.push("body"));
  await assert.rejects(riak.holdingCopies("remove /a", ["/a"], body), RiakTimeoutError);
  assert.deepEqual(asked.calls, ["hold /a"]);
});

Deno.test("waiting for a path's uploads asks nothing when none is pending", async () => {
  const { riak, asked } = riakCalls();
  await riak.settled("/a");
  assert.deepEqual(asked.calls, []);
});

Deno.test("a path's pending uploads are hurried and waited for, bounded by Riak's progress", async () => {
  const { riak, asked } = riakCalls({ pending: true });
  await riak.settled("/a");
  assert.deepEqual(asked.calls, ["hurry /a", "run upload /a within 5000", "settled /a"]);
  assert.equal(asked.progress?.(), 42);
});

Deno.test("the uploads below a directory are hurried and waited for", async () => {
  const { riak, asked } = riakCalls();
  await riak.settledBelow("/d");
  assert.deepEqual(asked.calls, [
    "hurry /d below",
    "run upload below /d within 5000",
    "settledBelow /d",
  ]);
});

Deno.test("a request's own deadline is held off while it waits for uploads", async () => {
  const { riak, asked } = riakCalls({ pending: true });
  const ctx: RequestContext = {
    ...ROOT_CTX,
    withoutDeadline: (wait) => {
      asked.calls.push("without deadline");
      return wait();
    },
  };
  await riak.settled("/a", ctx);
  assert.deepEqual(asked.calls, [
    "hurry /a",
    "without deadline",
    "run upload /a within 5000",
    "settled /a",
  ]);
});

Deno.test("a wait for a late write is logged only where a put may still land", () => {
  const quiet = riakCalls();
  assert.equal(quiet.riak.putMayLand("/a"), false);
  quiet.riak.logLateWriteWait("removal", "/a");
  assert.deepEqual(quiet.asked.logged, []);

  const late = riakCalls({
    store: { tryStat: () => Promise.resolve(undefined), awaitsLateWrites: (path) => path === "/a" },
  });
  assert.equal(late.riak.putMayLand("/a"), true);
  late.riak.logLateWriteWait("rename", "/b");
  late.riak.logLateWriteWait("rename", "/a");
  assert.equal(late.asked.logged.length, 1);
  assert.match(late.asked.logged[0], /rename waits for the answer to a put/);
  assert.match(late.asked.logged[0], /\/a/);
});

/** Riak's stat of a small file `/a`, with `content` fetched along. */
function fileStat(content?: Buffer): FileStat {
  return { ...rootStat(5n), path: Buffer.from("a"), type: "file", size: 3, content };
}

Deno.test("a stat cached and not expired asks Riak nothing", async () => {
  const cachedStat = fileStat();
  const { riak, asked } = riakCalls({
    knowledge: {
      cached: (path) => path === "/a" ? { stat: cachedStat, expires: 2_000 } : undefined,
      rememberStat: () => assert.fail("nothing new to remember"),
    },
  });
  assert.equal(await riak.stat("/a"), cachedStat);
  assert.deepEqual(asked.calls, []);
});

Deno.test("a stat expired is asked of Riak again under the deadline, and remembered as of the ask", async () => {
  let clock = 1_000;
  const { riak, asked } = riakCalls({
    knowledge: {
      cached: () => ({ stat: undefined, expires: 1_000 }),
      rememberStat: (path, stat, now) =>
        void asked.calls.push(`remember ${path} ${stat?.type ?? "absent"} at ${now}`),
    },
    now: () => clock,
    store: {
      tryStat: (path) => {
        asked.calls.push(`tryStat ${path}`);
        clock = 9_000; // The answer took a while: the entry counts from the ask.
        return Promise.resolve(undefined);
      },
    },
  });
  assert.equal(await riak.stat("/a"), undefined);
  assert.deepEqual(asked.calls, [
    "run stat /a within 5000",
    "tryStat /a",
    "remember /a absent at 1000",
  ]);
});

Deno.test("a small file's bytes fetched along go to the chunk cache, not into the stat kept", async () => {
  const content = Buffer.from("abc");
  let remembered: FileStat | undefined;
  const { riak, asked } = riakCalls({
    store: {
      tryStat: (_path, options) => {
        asked.calls.push(
          `tryStat withContent=${options?.withContent} likelyAbsent=${options?.likelyAbsent}`,
        );
        return Promise.resolve(fileStat(content));
      },
    },
    knowledge: { cached: () => undefined, rememberStat: (_path, stat) => void (remembered = stat) },
  });
  const stat = await riak.stat("/a", { withContent: true, likelyAbsent: true });
  assert.equal(stat?.content, undefined);
  assert.equal(remembered, stat);
  assert.deepEqual(asked.calls, [
    "run stat /a within 5000",
    "tryStat withContent=true likelyAbsent=true",
    "prime /a",
  ]);
});

Deno.test("a quiet stat answers undefined for Riak's errors, but an outage still fails", async () => {
  const failing = (error: Error) =>
    riakCalls({ store: { tryStat: () => Promise.reject(error) } }).riak;
  const broken = new Error("bad answer");
  assert.equal(await failing(broken).stat("/a", { quiet: true }), undefined);
  await assert.rejects(failing(broken).stat("/a"), /bad answer/);
  const outage = new RiakTimeoutError("stat /a", 5_000);
  await assert.rejects(failing(outage).stat("/a", { quiet: true }), RiakTimeoutError);
});
