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

Deno.test("a listing is not kept where a name in its directory changed after it began", () => {
  const listed = new ListedInRiak(100);
  const before = listed.look();
  listed.added("/d/landed"); // An upload landing after the listing's shards were read.
  listed.listed("/d", ["old"], before);
  assert.equal(listed.namesIn("/d"), undefined, "it may lack the name");
  const removedLook = listed.look();
  listed.removed("/e/gone");
  listed.listed("/e", ["gone"], removedLook);
  assert.equal(listed.namesIn("/e"), undefined);
  const quiet = listed.look();
  listed.added("/elsewhere/x");
  listed.listed("/f", ["held"]);
  const looked = listed.look();
  listed.added("/f/held"); // A lookup finding what the listing held: no change.
  listed.removed("/f/never"); // Nor one missing what it did not hold.
  listed.listed("/f", ["held"], looked);
  assert.deepEqual([...listed.namesIn("/f")!], ["held"]);
  listed.listed("/d", ["old", "landed"], quiet);
  assert.deepEqual([...listed.namesIn("/d")!].sort(), ["landed", "old"], "no change in /d since");
});

Deno.test("a listing begun before changes forgotten to keep the table bounded is not kept", () => {
  const listed = new ListedInRiak(2);
  const look = listed.look();
  for (const directory of ["/a", "/b", "/c"]) listed.added(`${directory}/x`);
  listed.listed("/d", ["y"], look);
  assert.equal(listed.namesIn("/d"), undefined);
});

Deno.test("the listings of a directory renamed and of those below it move along, with which names are no directories", () => {
  const listed = new ListedInRiak(100);
  listed.listed("/d", ["a", "sub"], undefined, ["a"]);
  listed.listed("/d/sub", ["b"], undefined, ["b"]);
  listed.listed("/dx", ["c"]);
  listed.listed("/e", ["old"]);
  listed.moved("/d", "/e");
  assert.equal(listed.namesIn("/d"), undefined);
  assert.equal(listed.namesIn("/d/sub"), undefined);
  assert.deepEqual([...listed.namesIn("/e")!], ["a", "sub"]);
  assert.deepEqual([...listed.namesIn("/e/sub")!], ["b"]);
  assert.deepEqual([...listed.namesIn("/dx")!], ["c"], "only at or below the name");
  assert.ok(listed.isFile("/e/a") && listed.isFile("/e/sub/b"));
  assert.ok(!listed.isFile("/e/sub") && !listed.isFile("/d/a") && !listed.isFile("/dx/c"));
  listed.removed("/e/a");
  assert.ok(!listed.isFile("/e/a"));
});
