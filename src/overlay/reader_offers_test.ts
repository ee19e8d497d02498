import assert from "node:assert/strict";
import { type LocalNodeAnswers, type LocalNodes, ROOT_NODE_ID } from "../fuse/filesystem.ts";
import { type MountMode, PRESETS } from "./modes.ts";
import { NodeTable } from "./node_table.ts";
import { ReaderOffers } from "./reader_offers.ts";

interface SetCall {
  nodeid: number;
  parent: number;
  name: string;
  attrTimeout: number;
  ino?: number;
  answers?: LocalNodeAnswers;
}

/** The reader threads' node table, as the calls that reached it. */
function threads() {
  const known = new Map<number, SetCall>();
  const sets: SetCall[] = [];
  const nodes: LocalNodes = {
    supported: true,
    set(nodeid, parent, name, attrTimeout, ino, _regularFile, answers) {
      const call = { nodeid, parent, name, attrTimeout, ino, answers };
      sets.push(call);
      known.set(nodeid, call);
    },
    delete(nodeid) {
      known.delete(nodeid);
    },
    serveFiles() {},
    allocateNodeId: () => 0,
    unserveHandle() {},
  };
  return { nodes, known, sets };
}

const DIRECTORY = { ino: 7n, isDirectory: () => true };
const FILE = { ino: 9n, isDirectory: () => false };

/** Offers attached to fake threads, the root being `/src`. */
function attached(mode: MountMode = PRESETS.passthrough) {
  const table = new NodeTable();
  const offers = new ReaderOffers(table, 5, mode);
  const readers = threads();
  offers.attach(readers.nodes, "/src");
  /** Offers `path` as a kernel lookup would: a node referenced, then offered. */
  const offer = (path: string, stats = FILE, expiresAt?: number) => {
    const id = table.reference(path);
    offers.offer(path, id, stats, expiresAt);
    return id;
  };
  return { table, offers, readers, offer };
}

Deno.test("attaching hands the threads the root as the source directory itself", () => {
  const { table, offers, readers } = attached();
  assert.deepEqual(readers.sets, [{
    nodeid: ROOT_NODE_ID,
    parent: 0,
    name: "/src",
    attrTimeout: 5,
    ino: undefined,
    answers: { reportedIno: table.inoOf("/"), missingNames: true, removals: false },
  }]);
  assert.equal(offers.size, 1);
  assert.equal(offers.attached, true);
});

Deno.test("nothing is offered before the threads are attached", () => {
  const table = new NodeTable();
  const offers = new ReaderOffers(table, 5, PRESETS.passthrough);
  offers.offer("/a", table.reference("/a"), FILE, undefined);
  assert.equal(offers.attached, false);
  assert.equal(offers.size, 0);
});

Deno.test("a node is offered under its parent's id with the overlay's inode number", () => {
  const { table, readers, offer } = attached();
  const dir = offer("/d", DIRECTORY);
  const file = offer("/d/f", FILE, 1234);
  assert.deepEqual(readers.known.get(file), {
    nodeid: file,
    parent: dir,
    name: "f",
    attrTimeout: 5,
    ino: 9,
    answers: {
      reportedIno: table.inoOf("/d/f"),
      missingNames: true,
      removals: false,
      expiresAt: 1234,
    },
  });
});

Deno.test("missing names are answered only where the local directory is the whole namespace", () => {
  for (const [mode, missingNames] of [[PRESETS.shadow, true], [PRESETS.migrate, false]] as const) {
    const { readers, offer } = attached(mode);
    const file = offer("/f");
    assert.equal(readers.known.get(ROOT_NODE_ID)?.answers?.missingNames, missingNames);
    assert.equal(readers.known.get(file)?.answers?.missingNames, missingNames);
  }
});

Deno.test("a node whose parent is not an offered directory is not offered", () => {
  const { offers, readers, offer } = attached();
  const below = offer("/unoffered/f");
  offer("/file", FILE);
  const belowFile = offer("/file/x");
  assert.equal(readers.known.has(below), false);
  assert.equal(readers.known.has(belowFile), false);
  assert.equal(offers.size, 2); // The root and /file.
});

Deno.test("a node no longer at the path it was found at is not offered", () => {
  const { table, offers, readers } = attached();
  const id = table.reference("/old");
  table.rename("/old", "/new");
  offers.offer("/old", id, FILE, undefined);
  assert.equal(readers.known.has(id), false);
  assert.equal(offers.size, 1);
});

Deno.test("the root is never offered again: the source directory stays its answer", () => {
  const { offers, readers } = attached();
  offers.offer("/", ROOT_NODE_ID, DIRECTORY, 1);
  assert.equal(readers.sets.length, 1);
});

Deno.test("withdrawing a directory withdraws what is offered below it, not its siblings", () => {
  const { offers, readers, offer } = attached();
  const dir = offer("/a", DIRECTORY);
  const inside = offer("/a/f");
  const sibling = offer("/ab");
  offers.withdraw("/a");
  assert.deepEqual([...readers.known.keys()].sort(), [ROOT_NODE_ID, sibling].sort());
  assert.equal(readers.known.has(dir) || readers.known.has(inside), false);
  assert.equal(offers.size, 2);
});

Deno.test("withdrawing the root withdraws every node but keeps the root", () => {
  const { offers, readers, offer } = attached();
  offer("/a", DIRECTORY);
  offer("/a/f");
  offer("/b");
  offers.withdraw("/");
  assert.deepEqual([...readers.known.keys()], [ROOT_NODE_ID]);
  assert.equal(offers.size, 1);
  const again = offer("/c");
  assert.equal(readers.known.has(again), true);
});

Deno.test("withdrawing a path never offered changes nothing", () => {
  const { offers, readers, offer } = attached();
  const file = offer("/f");
  offers.withdraw("/g");
  offers.withdraw("/f/x");
  assert.equal(readers.known.has(file), true);
  assert.equal(offers.size, 2);
});

Deno.test("a path offered as another node withdraws the old node and what was below it", () => {
  const { table, offers, readers, offer } = attached();
  const old = offer("/d", DIRECTORY);
  const inside = offer("/d/f");
  table.rename("/d", "/moved");
  const replacement = offer("/d", FILE);
  assert.notEqual(replacement, old);
  assert.equal(readers.known.has(old), false);
  assert.equal(readers.known.has(inside), false);
  assert.equal(readers.known.get(replacement)?.parent, ROOT_NODE_ID);
  assert.equal(offers.size, 2);
});

Deno.test("a forgotten node is withdrawn only once the node table no longer knows it", () => {
  const { table, offers, readers, offer } = attached();
  const dir = offer("/d", DIRECTORY);
  const inside = offer("/d/f");
  table.reference("/d"); // A second lookup: the kernel holds two references.
  table.forget(dir, 1);
  offers.forgotten(dir);
  assert.equal(readers.known.has(dir), true);
  table.forget(dir, 1);
  offers.forgotten(dir);
  assert.equal(readers.known.has(dir), false);
  assert.equal(readers.known.has(inside), false);
  assert.equal(offers.size, 1);
});
