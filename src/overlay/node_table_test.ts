import assert from "node:assert/strict";
import process from "node:process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Errno, FuseError, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { childPath, inodeOf, NodeTable, parentOf } from "./node_table.ts";

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

Deno.test("a node keeps its inode number; a new file under a name whose number a live node holds gets another", () => {
  const nodes = new NodeTable();
  assert.equal(nodes.inoOf("/"), 1);
  assert.equal(nodes.inoOf("/app.log"), inodeOf("/app.log"), "a path's own number by default");
  // logrotate: app.log renamed while tail -F has it open, then made again.
  const rotated = nodes.reference("/app.log");
  nodes.rename("/app.log", "/app.log.1");
  assert.equal(nodes.inoOf("/app.log.1"), inodeOf("/app.log"), "renamed: its number stays");
  assert.equal(nodes.inoOfNode(rotated), inodeOf("/app.log"));
  const fresh = nodes.inoOf("/app.log");
  assert.notEqual(fresh, inodeOf("/app.log"), "two files, two numbers");
  assert.equal(nodes.inoOf("/app.log"), fresh, "the same one each time");
  const made = nodes.reference("/app.log");
  assert.equal(nodes.inoOfNode(made), fresh, "the number the lookup reported");
  // Removed while open: a file made under the name is another one too.
  const open = nodes.reference("/data.db");
  nodes.unbind("/data.db");
  assert.notEqual(nodes.inoOfNode(nodes.reference("/data.db")), nodes.inoOfNode(open));
  // Once the kernel forgot the renamed file, the name's own number is free again for a
  // node made then; the live node keeps what it was given.
  nodes.forget(rotated, 1);
  assert.equal(nodes.inoOfNode(made), fresh);
  nodes.forget(made, 1);
  assert.equal(nodes.inoOf("/app.log"), inodeOf("/app.log"));
  // Below a renamed directory every node keeps its number; new names get their own.
  const file = nodes.reference("/d/f");
  nodes.rename("/d", "/e");
  assert.equal(nodes.inoOf("/e/f"), inodeOf("/d/f"));
  assert.equal(nodes.inoOfNode(file), inodeOf("/d/f"));
  assert.equal(nodes.inoOf("/e/g"), inodeOf("/e/g"));
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

Deno.test("renaming a file costs the same whatever else the kernel holds; a directory's nodes move with it", () => {
  const nodes = new NodeTable();
  // `ls -l` of a big directory: the kernel holds a node of every entry.
  for (let i = 0; i < 200_000; i++) nodes.reference(`/big/${i}`);
  const file = nodes.reference("/big/file");
  const started = process.cpuUsage();
  for (let i = 0; i < 200; i++) {
    nodes.rename(
      i % 2 === 0 ? "/big/file" : "/big/moved",
      i % 2 === 0 ? "/big/moved" : "/big/file",
    );
  }
  const used = process.cpuUsage(started);
  // A look at every node per rename took 0.7 s of CPU here; one at the moved nodes, < 1 ms.
  assert.ok(used.user + used.system < 100_000, `200 renames took ${used.user + used.system} µs`);
  assert.equal(nodes.pathOf(file), "/big/file");
  const inner = nodes.reference("/big/sub/inner");
  const deeper = nodes.reference("/big/sub/d/e");
  nodes.rename("/big", "/huge");
  assert.equal(nodes.pathOf(file), "/huge/file");
  assert.equal(nodes.pathOf(inner), "/huge/sub/inner", "below a node the table never had");
  assert.equal(nodes.pathOf(deeper), "/huge/sub/d/e");
  assert.equal(nodes.pathOf(nodes.reference("/huge/199999")), "/huge/199999");
  nodes.rename("/huge/sub", "/elsewhere");
  assert.equal(nodes.pathOf(deeper), "/elsewhere/d/e");
  assert.equal(nodes.pathOf(file), "/huge/file", "a sibling stays");
});

Deno.test("a walk over many names leaves nothing behind once the kernel forgot them", () => {
  const nodes = new NodeTable();
  const empty = nodes.capacity;
  const kept = nodes.reference("/keep/me");
  for (let round = 0; round < 3; round++) {
    const ids: number[] = [];
    for (let i = 0; i < 20_000; i++) ids.push(nodes.reference(`/walk/d${i % 7}/name-${i}.jpg`));
    assert.equal(nodes.size, 20_002);
    assert.ok(nodes.capacity > empty);
    for (const id of ids) nodes.forget(id, 1);
    assert.equal(nodes.size, 2, "the root and /keep/me");
    assert.equal(nodes.capacity, empty, "the room the walk took is given back");
  }
  assert.equal(nodes.pathOf(kept), "/keep/me");
  assert.equal(nodes.inoOfNode(kept), inodeOf("/keep/me"));
});

Deno.test("nodes kept while the table moves its slots together keep everything", () => {
  const nodes = new NodeTable();
  const ids: number[] = [];
  for (let i = 0; i < 10_000; i++) ids.push(nodes.reference(`/d/${i}`));
  const renamed = nodes.reference("/d/renamed");
  nodes.rename("/d/renamed", "/e/moved");
  const held = nodes.reference("/d/held");
  nodes.reference("/d/held"); // Two references.
  const open = nodes.reference("/d/removed");
  nodes.unbind("/d/removed");
  const fresh = nodes.reference("/d/removed");
  const before = nodes.capacity;
  for (const id of ids) nodes.forget(id, 1);
  assert.ok(nodes.capacity < before, "the slots moved");
  assert.equal(nodes.pathOf(renamed), "/e/moved");
  assert.equal(nodes.inoOfNode(renamed), inodeOf("/d/renamed"));
  assert.equal(nodes.reference("/e/moved"), renamed);
  assert.ok(nodes.isDetached(open));
  assert.equal(nodes.pathOf(open), "/d/removed");
  assert.equal(nodes.reference("/d/removed"), fresh);
  assert.notEqual(nodes.inoOfNode(fresh), nodes.inoOfNode(open));
  nodes.forget(held, 1);
  assert.equal(nodes.pathOf(held), "/d/held", "one reference left");
  nodes.forget(held, 1);
  assert.equal(nodes.pathIfKnown(held), undefined);
  assert.equal(nodes.reference("/d/0") > fresh, true, "ids are never given twice");
});

Deno.test("a directory forgotten before what is below it: its children keep their paths, it gets a new node", () => {
  const nodes = new NodeTable();
  const dir = nodes.reference("/a");
  const file = nodes.reference("/a/f");
  nodes.forget(dir, 1);
  assert.equal(nodes.pathIfKnown(dir), undefined);
  assert.equal(nodes.pathOf(file), "/a/f");
  assert.equal(nodes.inoOf("/a"), inodeOf("/a"));
  const again = nodes.reference("/a");
  assert.notEqual(again, dir);
  nodes.rename("/a", "/b");
  assert.equal(nodes.pathOf(file), "/b/f");
  assert.equal(nodes.pathOf(again), "/b");
});

Deno.test("a removed node keeps the path it had; a directory never moves below itself", () => {
  const nodes = new NodeTable();
  const file = nodes.reference("/a/f");
  nodes.unbind("/a/f");
  nodes.rename("/a", "/b");
  assert.equal(nodes.pathOf(file), "/a/f", "detached: the path it had (for messages)");
  // Removed with a node below it, whose name another client removed: the kernel never
  // learns it went, and the name made again is another file (a node of a directory known
  // under two parents would be an alias the kernel refuses).
  nodes.reference("/c/d");
  const below = nodes.reference("/c/d/e");
  nodes.unbind("/c/d");
  assert.equal(nodes.pathOf(below), "/c/d/e");
  assert.notEqual(nodes.reference("/c/d/e"), below, "another file under that path now");
  const inner = nodes.reference("/x/y/z");
  nodes.unbind("/x/y"); // No node there: nothing to detach.
  assert.equal(nodes.reference("/x/y/z"), inner);
  assert.throws(() => nodes.rename("/b", "/b/inner"), (error: unknown) => {
    assert.equal((error as FuseError).errno, Errno.EINVAL);
    return true;
  });
});

/** Heap and ArrayBuffer bytes in use after full garbage collections. */
function memoryInUse(): number {
  setFlagsFromString("--expose-gc");
  const collect = runInNewContext("gc") as () => void;
  collect();
  collect();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

Deno.test("a node the kernel holds costs about a hundred bytes, and nothing once forgotten", () => {
  const nodes = new NodeTable();
  nodes.reference("/d");
  const count = 250_000;
  const ids = new Float64Array(count);
  const before = memoryInUse();
  // As `ls -l` of a big directory: a LOOKUP of each name, each name a string of its own.
  for (let i = 0; i < count; i++) {
    ids[i] = nodes.reference(childPath("/d", `IMG_${String(i).padStart(8, "0")}.jpg`));
  }
  const perNode = (memoryInUse() - before) / count;
  // An object with its whole path, in maps by path, id and inode number: 246 bytes.
  assert.ok(perNode < 160, `${perNode.toFixed(1)} bytes per node`);
  for (const id of ids) nodes.forget(id, 1);
  const left = (memoryInUse() - before) / count;
  assert.ok(left < 5, `${left.toFixed(1)} bytes per forgotten node left`);
});
