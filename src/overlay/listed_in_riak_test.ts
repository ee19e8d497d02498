import assert from "node:assert/strict";
import { ListedInRiak } from "./listed_in_riak.ts";

Deno.test("a directory's listing follows the names made and removed since it was read", () => {
  const listed = new ListedInRiak(100);
  assert.equal(listed.namesIn("/d"), undefined, "never listed: unknown, not empty");
  listed.listed("/d", ["a", "b"]);
  listed.added("/d/c");
  listed.added("/d/a"); // Known already: held once.
  listed.removed("/d/b");
  listed.removed("/d/never");
  listed.added("/e/x"); // A directory never listed learns nothing.
  assert.deepEqual([...listed.namesIn("/d")!].sort(), ["a", "c"]);
  assert.equal(listed.namesIn("/e"), undefined);
  listed.removed("/d/a");
  listed.removed("/d/c");
  assert.deepEqual([...listed.namesIn("/d")!], [], "known empty");
});

Deno.test("listings of a directory and below it are forgotten together, not those beside it", () => {
  const listed = new ListedInRiak(100);
  for (const directory of ["/a", "/a/b", "/ab", "/"]) listed.listed(directory, ["x"]);
  listed.forget("/a");
  assert.equal(listed.namesIn("/a"), undefined);
  assert.equal(listed.namesIn("/a/b"), undefined);
  assert.deepEqual([...listed.namesIn("/ab")!], ["x"]);
  assert.deepEqual([...listed.namesIn("/")!], ["x"]);
  listed.forget("/");
  assert.equal(listed.size, 0);
});

Deno.test("the names held are bounded: the oldest listings go, a large one is not kept", () => {
  const listed = new ListedInRiak(5, 3);
  listed.listed("/big", ["a", "b", "c", "d"]);
  assert.equal(listed.namesIn("/big"), undefined, "more than a directory may hold");
  listed.listed("/old", ["a", "b"]);
  listed.listed("/new", ["a", "b", "c"]);
  assert.deepEqual([...listed.namesIn("/old")!].sort(), ["a", "b"], "five names in all");
  listed.listed("/newer", ["a"]);
  assert.equal(listed.namesIn("/old"), undefined, "the oldest went");
  assert.equal(listed.size, 2);
  // A listing that grows past what a directory may hold is no longer known.
  listed.added("/new/d");
  assert.equal(listed.namesIn("/new"), undefined);
  listed.listed("/again", undefined);
  assert.equal(listed.namesIn("/again"), undefined);
});
