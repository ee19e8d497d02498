import assert from "node:assert/strict";
import {
  ClosedError,
  ConnectionError,
  noNodeAnswered,
  ProtocolError,
  QueueFullError,
  riakAnswerOf,
  RiakError,
  TimeoutError,
} from "./errors.ts";

Deno.test("noNodeAnswered: refused, reset and timed-out requests, not Riak's error answers", () => {
  const refused = new ConnectionError("connect ECONNREFUSED", "10.0.0.1:8087", {
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
  const answered = new RiakError("{error,enospc}", 0, "10.0.0.1:8087");
  // How the store hands them on: its own error, the client's as the cause.
  const wrapped = (cause: unknown) => new Error("Riak put failed", { cause });
  assert.equal(noNodeAnswered(refused), true);
  assert.equal(noNodeAnswered(wrapped(refused)), true);
  assert.equal(
    noNodeAnswered(wrapped(new ConnectionError("every Riak node is down", "cluster"))),
    true,
  );
  for (const phase of ["connect", "tls", "request", "queue"] as const) {
    assert.equal(noNodeAnswered(wrapped(new TimeoutError("10.0.0.1:8087", phase, 5000))), true);
  }
  assert.equal(noNodeAnswered(answered), false);
  assert.equal(noNodeAnswered(wrapped(answered)), false);
  assert.equal(noNodeAnswered(wrapped(new RiakError("overload", 0, "10.0.0.1:8087"))), false);
  assert.equal(noNodeAnswered(wrapped(new ProtocolError("bad frame", "10.0.0.1:8087"))), false);
  for (const other of [new ClosedError("client"), new QueueFullError(8), new Error("EACCES")]) {
    assert.equal(noNodeAnswered(wrapped(other)), false, other.message);
  }
  assert.equal(noNodeAnswered("not an error"), false);
  assert.equal(noNodeAnswered(undefined), false);
});

Deno.test("riakAnswerOf tells an error answer from a garbled one and from none", () => {
  const wrapped = (cause: unknown) => new Error("Riak put failed", { cause });
  assert.equal(riakAnswerOf(wrapped(new RiakError("{error,enospc}", 0, "n:8087"))), "error");
  assert.equal(riakAnswerOf(wrapped(new ProtocolError("bad frame", "n:8087"))), "garbled");
  assert.equal(riakAnswerOf(wrapped(new ConnectionError("ECONNRESET", "n:8087"))), "none");
  assert.equal(riakAnswerOf(wrapped(new Error("EACCES"))), undefined);
});
