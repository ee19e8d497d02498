import assert from "node:assert/strict";
import { PathTree } from "./path_tree.ts";

Deno.test("paths are found directly in a directory and at or below one", () => {
  const tree = new PathTree();
  for (const path of ["/a", "/a/b/c", "/a/d", "/ab", "/x/y"]) tree.add(path);
  tree.add("/a/d"); // Twice: held once.
  assert.equal(tree.size, 5);
  assert.deepEqual([...tree.namesIn("/")].sort(), ["a", "ab"]);
  assert.deepEqual([...tree.namesIn("/a")].sort(), ["d"], "b leads to a path, holds none");
  assert.deepEqual([...tree.namesIn("/a/")].sort(), ["d"]);
  assert.deepEqual([...tree.atOrBelow("/a")].sort(), ["/a", "/a/b/c", "/a/d"], "not /ab");
  assert.deepEqual([...tree.atOrBelow("/")].sort(), ["/a", "/a/b/c", "/a/d", "/ab", "/x/y"]);
  assert.equal(tree.hasBelow("/a"), true);
  assert.equal(tree.hasBelow("/ab"), false);
  assert.equal(tree.hasBelow("/x"), true);
  tree.delete("/a/b/c");
  tree.delete("/a/b/c"); // Gone already: nothing changes.
  assert.deepEqual([...tree.atOrBelow("/a")].sort(), ["/a", "/a/d"]);
  tree.delete("/x/y");
  assert.equal(tree.hasBelow("/x"), false, "nothing is left leading there");
  assert.deepEqual([...tree.namesIn("/")].sort(), ["a", "ab"]);
  assert.equal(tree.has("/a/d"), true);
  assert.equal(tree.size, 3);
});

Deno.test("lists come in the order the paths were added", () => {
  const tree = new PathTree();
  for (const path of ["/d/z", "/d/a", "/d/m/x", "/d/m", "/d/b"]) tree.add(path);
  assert.deepEqual(tree.namesIn("/d"), ["z", "a", "m", "b"], "m once it is held itself");
  assert.deepEqual(tree.allAtOrBelow("/d"), ["/d/z", "/d/a", "/d/m/x", "/d/m", "/d/b"]);
  tree.delete("/d/a");
  tree.add("/d/a"); // Added again: last.
  assert.deepEqual(tree.namesIn("/d"), ["z", "m", "b", "a"]);
});

Deno.test("what leads to paths goes with the last of them", () => {
  const tree = new PathTree();
  for (let i = 0; i < 1_000; i++) tree.add(`/d${i % 10}/e/f${i}`);
  assert.deepEqual(tree.namesIn("/d3/e").length, 100);
  for (let i = 0; i < 1_000; i++) tree.delete(`/d${i % 10}/e/f${i}`);
  assert.equal(tree.size, 0);
  assert.equal(tree.hasBelow("/"), false);
  assert.deepEqual([...tree.namesIn("/")], []);
});
