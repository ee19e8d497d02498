import assert from "node:assert/strict";
import { ConnectionError, ProtocolError, RiakError } from "../riak/mod.ts";
import { NotFoundError, RiakRequestError } from "../store/errors.ts";
import { isOutageError, RiakHealth, RiakTimeoutError, RiakUnreachableError } from "./health.ts";
import { Logger } from "./log.ts";

function recordingLogger() {
  const lines: string[] = [];
  const logger = new Logger({
    format: "json",
    sink: { write: (text: string) => lines.push(text) },
    now: () => new Date(0),
  });
  return { lines, logger };
}

Deno.test("an outage is logged once, however many requests fail, and its end once", () => {
  const { lines, logger } = recordingLogger();
  let now = 1_000;
  const health = new RiakHealth(logger, () => now);
  for (let index = 0; index < 50; index++) {
    health.failed(new RiakRequestError("get", undefined, new Error("connect ECONNREFUSED")));
  }
  assert.equal(health.reachable, false);
  assert.equal(lines.length, 1);
  const down = JSON.parse(lines[0]);
  assert.equal(down.level, "warn");
  assert.match(down.message, /Riak unreachable/);
  assert.match(down.error, /ECONNREFUSED/);
  assert.equal(health.snapshot().downSince, 1_000);
  now = 4_500;
  health.succeeded();
  health.succeeded();
  assert.equal(lines.length, 2);
  const up = JSON.parse(lines[1]);
  assert.equal(up.message, "Riak reachable again");
  assert.equal(up.failed_requests, 50);
  assert.equal(up.outage_seconds, 3.5);
  assert.deepEqual(health.snapshot(), {
    reachable: true,
    downSince: undefined,
    lastError: undefined,
    outages: 1,
    refused: undefined,
  });
});

Deno.test("the start of each outage is told once, as it is declared, however many requests fail", () => {
  const { logger } = recordingLogger();
  const health = new RiakHealth(logger);
  const told: boolean[] = [];
  health.onUnreachable(() => told.push(health.reachable));
  const refused = () => new RiakRequestError("get", undefined, new Error("connect ECONNREFUSED"));
  health.failed(new NotFoundError("/x"));
  assert.deepEqual(told, [], "an answer is no outage");
  health.failed(refused());
  health.failed(refused());
  assert.deepEqual(told, [false], "once, Riak already taken as away");
  health.succeeded();
  health.failed(refused());
  assert.deepEqual(told, [false, false], "again for the next outage");
});

Deno.test("answers such as not-found do not count as an outage", () => {
  const { lines, logger } = recordingLogger();
  const health = new RiakHealth(logger);
  health.failed(new NotFoundError("/x"));
  assert.equal(health.reachable, true);
  assert.equal(lines.length, 0);
  assert.equal(isOutageError(Object.assign(new Error("x"), { code: "ECONNRESET" })), true);
  assert.equal(isOutageError(new Error("plain")), false);
  assert.equal(isOutageError(new RiakTimeoutError("get", 5)), true);
});

Deno.test("run() fails with EIO at the deadline instead of hanging", async () => {
  const { logger } = recordingLogger();
  const health = new RiakHealth(logger);
  const never = new Promise<string>(() => {});
  await assert.rejects(health.run("get /slow", 20, () => never), (error: unknown) => {
    assert.ok(error instanceof RiakTimeoutError);
    assert.equal(error.code, "EIO");
    assert.match(error.message, /did not answer within 20 ms/);
    return true;
  });
  assert.equal(health.reachable, false);
  assert.equal(await health.run("get /fast", 1_000, () => Promise.resolve("ok")), "ok");
  assert.equal(health.reachable, true);
});

Deno.test("run() with progress outlasts its deadline while Riak acknowledges, fails once it stops", async () => {
  const { logger } = recordingLogger();
  const health = new RiakHealth(logger);
  const acknowledge = () => new Promise<void>((resolve) => setTimeout(resolve, 30));
  let acknowledged = 0;
  let finish!: (value: string) => void;
  const long = health.run(
    "upload /big",
    100,
    () => new Promise((resolve) => finish = resolve),
    () => acknowledged,
  );
  // Riak acknowledges a part every 30 ms, the whole taking five deadlines.
  for (let part = 0; part < 17; part++) {
    await acknowledge();
    acknowledged++;
  }
  finish("done");
  assert.equal(await long, "done");
  assert.equal(health.reachable, true);
  const started = Date.now();
  const stalled = health.run("upload /stuck", 100, () => new Promise(() => {}), () => acknowledged);
  await acknowledge();
  acknowledged++; // the last acknowledgement; none comes after it
  await assert.rejects(stalled, RiakTimeoutError);
  assert.ok(Date.now() - started >= 100, "not before a whole deadline without one");
});

Deno.test("with a confirmation, an outage ends only once Riak itself answers", async () => {
  const { lines, logger } = recordingLogger();
  const answers: boolean[] = [false, true];
  const asked: Array<() => void> = [];
  /** Lets the question's answer reach the tracker (a few promise turns). */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  const health = new RiakHealth(logger, Date.now, () => {
    const answer = answers.shift()!;
    return new Promise((resolve) => asked.push(() => resolve(answer)));
  });
  health.failed(new RiakRequestError("get", undefined, new Error("connect ECONNREFUSED")));
  // Ended well without reaching Riak (nothing left to copy): Riak is asked, and says no.
  health.succeeded();
  health.succeeded(); // one question at a time
  assert.equal(asked.length, 1);
  asked.shift()!();
  await settle();
  assert.equal(health.reachable, false);
  assert.equal(lines.length, 1, "only the outage's line");
  health.succeeded();
  asked.shift()!();
  await settle();
  assert.equal(health.reachable, true);
  assert.equal(JSON.parse(lines[1]).message, "Riak reachable again");
});

Deno.test("a node answering with errors is no outage: logged once a minute with a count, never flapping", () => {
  const { lines, logger } = recordingLogger();
  let now = 0;
  const health = new RiakHealth(logger, () => now);
  const refusal = () =>
    new RiakRequestError("put", undefined, new RiakError("{error,enospc}", 0, "riak1:8087"));
  for (let index = 0; index < 30; index++) {
    health.failed(refusal());
    now += 1_000;
    health.succeeded(); // the gets in between still work
  }
  assert.equal(health.reachable, true);
  assert.equal(health.snapshot().outages, 0);
  assert.equal(lines.length, 1, "one line for the first 30 s");
  const first = JSON.parse(lines[0]);
  assert.equal(first.level, "warn");
  assert.match(first.message, /Riak answered a request with an error/);
  assert.match(first.error, /enospc/);
  assert.equal(first.refused_requests, 1);
  for (let index = 0; index < 40; index++) {
    health.failed(refusal());
    now += 1_000;
  }
  assert.equal(lines.length, 2);
  const second = JSON.parse(lines[1]);
  assert.equal(second.refused_requests, 60, "the refusals since the last line");
  assert.equal(second.since_seconds, 60);

  // No node answering at all is an outage, as is a garbled answer.
  health.failed(
    new RiakRequestError("get", undefined, new ConnectionError("ECONNREFUSED", "riak1:8087")),
  );
  assert.equal(health.reachable, false);
  const fresh = new RiakHealth(logger);
  fresh.failed(
    new RiakRequestError("get", undefined, new ProtocolError("bad frame", "riak1:8087")),
  );
  assert.equal(fresh.reachable, false);
});

Deno.test("with a confirmation, run() fails at once during an outage, and a probe ends it", async () => {
  const { logger } = recordingLogger();
  let probed!: () => void;
  const reachableAgain = new Promise<void>((resolve) => probed = resolve);
  const answers = [false, true];
  const health = new RiakHealth(logger, Date.now, () => {
    const answer = answers.shift() ?? true;
    if (answer) queueMicrotask(probed);
    return Promise.resolve(answer);
  }, { probeIntervalMs: 1 });
  try {
    health.failed(new RiakRequestError("get", undefined, new Error("connect ECONNREFUSED")));
    let asked = 0;
    await assert.rejects(
      health.run("stat /a", 60_000, () => Promise.resolve(asked++)),
      (error) => error instanceof RiakUnreachableError && isOutageError(error),
    );
    assert.equal(asked, 0, "Riak was not asked");
    await reachableAgain; // The probes: Riak says no, then yes.
    await new Promise((resolve) => setTimeout(resolve, 0)); // The answer reaches the tracker.
    assert.equal(health.reachable, true);
    assert.equal(await health.run("stat /a", 60_000, () => Promise.resolve(asked++)), 0);
  } finally {
    health.close();
  }
});

Deno.test("with a confirmation, a timed-out request is no outage while another node answers", async () => {
  const { lines, logger } = recordingLogger();
  let answered!: () => void;
  const asked = new Promise<void>((resolve) => answered = resolve);
  const health = new RiakHealth(logger, Date.now, () => {
    queueMicrotask(answered);
    return Promise.resolve(true); // The other nodes answer the ping.
  }, { probeIntervalMs: 1 });
  try {
    health.failed(new RiakTimeoutError("stat /a", 10_000)); // Sent to the hung node.
    await asked;
    await new Promise((resolve) => setTimeout(resolve, 0)); // The answer reaches the tracker.
    assert.equal(health.reachable, true);
    assert.deepEqual(lines, [], "no outage logged");
    assert.equal(await health.run("stat /b", 60_000, () => Promise.resolve("asked")), "asked");
  } finally {
    health.close();
  }
});

Deno.test("a Riak that does not answer as the mount starts is an outage at once: logged once, and no request waits for it", async () => {
  const { lines, logger } = recordingLogger();
  const health = new RiakHealth(logger, Date.now, () => Promise.resolve(false), {
    probeIntervalMs: 60_000,
  });
  try {
    assert.equal(await health.answers(), false);
    health.unreachableAtStart();
    health.unreachableAtStart();
    assert.equal(health.reachable, false);
    let asked = 0;
    await assert.rejects(
      health.run("rename /a", 60_000, () => Promise.resolve(asked++)),
      (error) => error instanceof RiakUnreachableError && isOutageError(error),
    );
    assert.equal(asked, 0, "Riak was not asked");
    assert.equal(lines.length, 1, "one line for the outage");
    assert.match(lines[0], /Riak unreachable.*as the mount started/);
  } finally {
    health.close();
  }
});

Deno.test("without a way to ask Riak, it is taken to answer as the mount starts", async () => {
  const { lines, logger } = recordingLogger();
  const health = new RiakHealth(logger);
  assert.equal(await health.answers(), true);
  assert.equal(health.reachable, true);
  assert.deepEqual(lines, []);
});

Deno.test("an outage is over once Riak answers within the request deadline, however slower than the pings that began it", async () => {
  const { lines, logger } = recordingLogger();
  const asked: (number | undefined)[] = [];
  let askedThrice!: () => void;
  const thrice = new Promise<void>((resolve) => askedThrice = resolve);
  // A busy node: its pings answer, but later than the ping timeout the doubts wait for.
  const health = new RiakHealth(
    logger,
    Date.now,
    (timeoutMs) => {
      if (asked.push(timeoutMs) === 3) askedThrice();
      return Promise.resolve(timeoutMs !== undefined && timeoutMs >= 2_500);
    },
    { probeIntervalMs: 1, overWithinMs: 10_000 },
  );
  try {
    assert.equal(await health.answers(), false, "not within the ping timeout");
    const over = new Promise<void>((resolve) => health.onReachableAgain(resolve));
    health.unreachableAtStart();
    assert.equal(health.reachable, false);
    await Promise.race([over, thrice]);
    assert.equal(health.reachable, true, `still down after asking ${JSON.stringify(asked)}`);
    assert.deepEqual(
      asked,
      [undefined, 10_000],
      "the start asked within the ping timeout, the probe within the deadline",
    );
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[1], /Riak reachable again/);
  } finally {
    health.close();
  }
});

Deno.test("with a confirmation, requests waiting on Riak as an outage is declared fail then, not at their own deadline; waits for uploads go on", async () => {
  const { logger } = recordingLogger();
  const health = new RiakHealth(logger, Date.now, () => Promise.resolve(false), {
    probeIntervalMs: 60_000,
  });
  try {
    // Sent before the outage was declared (the open after a lookup that timed out).
    const waiting = health.run("open /b", 5_000, () => new Promise<never>(() => {}));
    let finish!: (value: string) => void;
    const uploads = health.run(
      "fsync /c",
      5_000,
      () => new Promise<string>((resolve) => finish = resolve),
      () => 0,
    );
    uploads.catch(() => {}); // Awaited below, once the other wait's outcome is checked.
    health.failed(new RiakTimeoutError("stat /a", 5_000)); // The ping confirms: an outage.
    await assert.rejects(
      waiting,
      (error) => error instanceof RiakUnreachableError && isOutageError(error),
    );
    assert.equal(health.reachable, false);
    // A wait for uploads ends on its own terms: Riak acknowledging them, or a silence.
    finish("synced");
    assert.equal(await uploads, "synced");
  } finally {
    health.close();
  }
});
