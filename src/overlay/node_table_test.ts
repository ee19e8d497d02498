import assert from "node:assert/strict";
import { Errno, FuseError, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { childPath, NodeTable, parentOf } from "./node_table.ts";

Deno.test("nodes keep their id across lookups and renames, and go when forgotten", () => {
  const nodes = new NodeTable();
  assert.equal(nodes.pathOf(ROOT_NODE_ID), "/");
  const dir = nodes.reference("/a");
  const file = nodes.reference("/a/f");
  assert.equal(nodes.reference("/a/f"), file);
  nodes.rename("/a", "/b");
  assert.equal(nodes.pathOf(dir), "/b");
  assert.equal(nodes.pathOf(file), "/b/f");
  assert.equal(nodes.reference("/b/f"), file, "the moved node answers at its new path");
  nodes.forget(file, 2);
  assert.equal(nodes.pathOf(file), "/b/f", "one reference left");
  nodes.forget(file, 1);
  assert.throws(() => nodes.pathOf(file), (error: unknown) => {
    assert.ok(error instanceof FuseError);
    assert.equal(error.errno, Errno.ESTALE);
    return true;
  });
  nodes.forget(ROOT_NODE_ID, 100);
  assert.equal(nodes.pathOf(ROOT_NODE_ID), "/", "the root is never forgotten");
  const other = nodes.reference("/x");
  nodes.unbind("/x");
  assert.notEqual(nodes.reference("/x"), other, "an unlinked name gets a new node");
});

Deno.test("a rename onto a bound name replaces it; prefixes are whole components", () => {
  const nodes = new NodeTable();
  const ab = nodes.reference("/ab");
  const a = nodes.reference("/a");
  const target = nodes.reference("/c");
  nodes.rename("/a", "/c");
  assert.equal(nodes.pathOf(ab), "/ab", "/ab is not below /a");
  assert.equal(nodes.reference("/c"), a);
  assert.equal(nodes.pathOf(target), "/c", "the replaced node keeps its last path until forgotten");
  assert.ok(nodes.isDetached(target), "...but only its open handles answer for it");
  assert.ok(!nodes.isDetached(a));
  const other = nodes.reference("/x");
  nodes.unbind("/x");
  assert.ok(nodes.isDetached(other));
  assert.ok(!nodes.isDetached(nodes.reference("/x")), "a new file under the name is not");
});

Deno.test("childPath refuses what is not one name; parentOf climbs one level", () => {
  assert.equal(childPath("/", "a"), "/a");
  assert.equal(childPath("/a", "b"), "/a/b");
  for (const bad of ["", ".", "..", "a/b", "a\0b"]) {
    assert.throws(
      () => childPath("/", bad),
      (error: unknown) => (error as FuseError).errno === Errno.EINVAL,
    );
  }
  assert.throws(
    () => childPath("/", "x".repeat(256)),
    (error: unknown) => (error as FuseError).errno === Errno.ENAMETOOLONG,
  );
  assert.equal(parentOf("/a/b"), "/a");
  assert.equal(parentOf("/a"), "/");
});
