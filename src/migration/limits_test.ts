import assert from "node:assert/strict";
import { ConnectionError, RiakError } from "../riak/errors.ts";
import { parseDuration, RunLimits, UNREACHABLE_FAILURES_TO_STOP } from "./limits.ts";

Deno.test("parseDuration accepts units, combinations and bare seconds", () => {
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("45s"), 45_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("90"), 90_000);
  assert.equal(parseDuration("1d"), 86_400_000);
  for (const bad of ["", "h", "2x", "1h 30", "-5m", "0s", "2h-", "0", "0.0001", "0.0001s"]) {
    assert.throws(() => parseDuration(bad), RangeError, bad);
  }
});

Deno.test("RunLimits stops at max files and at the deadline", () => {
  let now = 1000;
  const limits = new RunLimits({ budgetMs: 500, maxFiles: 2 }, () => now);
  assert.equal(limits.reached(), undefined);
  limits.startFile();
  limits.startFile();
  assert.equal(limits.reached(), "max-files");
  const timed = new RunLimits({ budgetMs: 500 }, () => now);
  now = 1499;
  assert.equal(timed.reached(), undefined);
  assert.equal(timed.remainingMs(), 1);
  now = 1500;
  assert.equal(timed.reached(), "time-budget");
  assert.equal(new RunLimits({}).remainingMs(), Infinity);
});

Deno.test("RunLimits stops once its signal is aborted", () => {
  const controller = new AbortController();
  const limits = new RunLimits({ signal: controller.signal });
  assert.equal(limits.reached(), undefined);
  controller.abort();
  assert.equal(limits.reached(), "interrupted");
});

Deno.test("RunLimits stops once entries keep failing with no Riak node answering, long enough", () => {
  let now = 0;
  const limits = new RunLimits({ unreachableStopMs: 1000 }, () => now);
  const unanswered = new Error("Riak get failed", {
    cause: new ConnectionError("connect ECONNREFUSED", "10.0.0.1:8087"),
  });
  const answered = new Error("Riak put failed", {
    cause: new RiakError("{error,enospc}", 0, "10.0.0.1:8087"),
  });
  const fail = (times: number, error: unknown) => {
    for (let i = 0; i < times; i++) limits.entryFailed(error);
  };
  fail(UNREACHABLE_FAILURES_TO_STOP - 1, unanswered);
  limits.entryDone();
  fail(UNREACHABLE_FAILURES_TO_STOP - 1, unanswered);
  fail(1, answered);
  fail(UNREACHABLE_FAILURES_TO_STOP - 1, unanswered);
  fail(1, new Error("EACCES: a local error"));
  now = 5000;
  fail(UNREACHABLE_FAILURES_TO_STOP - 1, unanswered);
  assert.equal(limits.reached(), undefined, "every streak was ended short of the count");
  fail(1, unanswered);
  assert.equal(limits.reached(), undefined, "the count, but not yet for long enough");
  now = 6000;
  fail(1, unanswered);
  assert.equal(limits.reached(), "riak-unreachable");
  limits.entryDone();
  assert.equal(limits.reached(), "riak-unreachable", "a stopped run stays stopped");
});
