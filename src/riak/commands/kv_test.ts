// The decision behind verify-then-retry of puts: from what a key holds after a failure that may
// have applied a put, was it applied? Pure: no server needed.
import assert from "node:assert/strict";
import { type GetResult, putAppliedResult, putCommand } from "./kv.ts";
import type { ContentToPut, RiakContent } from "./values.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const vclock = bytes("vclock-after");

const sent: ContentToPut = {
  value: bytes("hello"),
  contentType: "text/plain",
  usermeta: [{ key: "owner", value: "a" }, { key: "mode", value: "644" }],
};

/** What a get returns for these siblings. */
function holding(...siblings: RiakContent[]): GetResult {
  return { found: siblings.length > 0, unchanged: false, vclock, siblings };
}

/** The content as Riak gives it back: usermeta possibly reordered, plus its own fields. */
function stored(content: ContentToPut, extra: Partial<RiakContent> = {}): RiakContent {
  return {
    value: new Uint8Array(content.value), // a copy: compared by bytes, not identity
    contentType: content.contentType,
    usermeta: content.usermeta === undefined ? undefined : [...content.usermeta].reverse(),
    vtag: "3xYz",
    lastModifiedUs: 1_795_564_638_000_000,
    ...extra,
  };
}

Deno.test("put verification: the content sent is stored, so the put was applied", () => {
  assert.deepEqual(putAppliedResult(sent, {}, holding(stored(sent))), { siblings: [] });
});

Deno.test("put verification: not found, or other content, means not applied (send it again)", () => {
  assert.equal(putAppliedResult(sent, {}, holding()), undefined);
  const others: Partial<RiakContent>[] = [
    { value: bytes("hellO") },
    { value: bytes("hello!") },
    { contentType: "application/octet-stream" },
    { contentType: undefined },
    { charset: "utf-8" },
    { contentEncoding: "gzip" },
    { usermeta: [{ key: "owner", value: "b" }, { key: "mode", value: "644" }] },
    { usermeta: [{ key: "owner", value: "a" }] },
    { usermeta: undefined },
    { deleted: true }, // a tombstone with the same bytes is not our write
  ];
  for (const other of others) {
    assert.equal(
      putAppliedResult(sent, {}, holding(stored(sent, other))),
      undefined,
      JSON.stringify(other),
    );
  }
});

Deno.test("put verification: on an allow_mult type, our content among siblings means applied", () => {
  const theirs = stored({ value: bytes("concurrent write") });
  const found = holding(theirs, stored(sent));
  // return_body: what Riak holds now, every sibling, with the vclock to write back
  assert.deepEqual(putAppliedResult(sent, { returnBody: true }, found), {
    vclock,
    siblings: found.siblings,
  });
  // return_head: the same without values, as Riak answers return_head
  const head = putAppliedResult(sent, { returnHead: true }, found);
  assert.deepEqual(head?.siblings.map((s) => [s.value.length, s.vtag]), [[0, "3xYz"], [
    0,
    "3xYz",
  ]]);
  assert.deepEqual(head?.vclock, vclock);
  // only siblings of other writers: not applied
  assert.equal(putAppliedResult(sent, {}, holding(theirs)), undefined);
});

Deno.test("put verification: if_none_match applied counts as done; someone else's object does not", () => {
  const options = { ifNoneMatch: true };
  // the first attempt created it: a repeat would answer match_found, the check says success
  assert.deepEqual(putAppliedResult(sent, options, holding(stored(sent))), { siblings: [] });
  // another writer's object: not applied; the repeat then fails with match_found, as it should
  const theirs = stored({ value: bytes("theirs") });
  assert.equal(putAppliedResult(sent, options, holding(theirs)), undefined);
});

Deno.test("put verification: the check exists only for puts with a key that are not declared idempotent", () => {
  const where = { type: "kvmulti", bucket: "b", key: "k" };
  const check = putCommand(where, sent).appliedCheck;
  assert.ok(check !== undefined);
  assert.deepEqual(check.decide(holding(stored(sent))), { siblings: [] });
  // the read is a full get (values needed), not satisfied by a single notfound replica
  assert.equal(check.read().idempotent, true);
  assert.deepEqual(check.read().label, {
    name: "RpbGetReq",
    type: "kvmulti",
    bucket: "b",
    key: "k",
  });
  assert.equal((check.read().message as { head?: boolean }).head, undefined);
  assert.equal((check.read().message as { notfound_ok?: boolean }).notfound_ok, false);
  // a generated key cannot be looked up; a declared-idempotent put is repeated blindly
  assert.equal(putCommand({ bucket: "b" }, sent).appliedCheck, undefined);
  assert.equal(putCommand(where, sent, { idempotent: true }).appliedCheck, undefined);
});
