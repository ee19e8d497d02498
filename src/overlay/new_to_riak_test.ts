import assert from "node:assert/strict";
import { NewToRiak } from "./new_to_riak.ts";

Deno.test("an absence Riak answered stays known until the mount changes the path", () => {
  const known = new NewToRiak();
  assert.equal(known.isNew("/a"), false, "never looked at");
  known.absent("/a", known.look());
  known.changed("/b");
  assert.equal(known.isNew("/a"), true, "another path's change is not its own");
  known.changed("/a");
  assert.equal(known.isNew("/a"), false);
  known.absent("/a", known.look());
  assert.equal(known.isNew("/a"), true, "looked at again");
});

Deno.test("an answer to a look that a change overtook is not taken", () => {
  const known = new NewToRiak();
  const look = known.look();
  known.changed("/a"); // An upload of it landed while Riak was being asked.
  known.absent("/a", look);
  assert.equal(known.isNew("/a"), false);
});

Deno.test("a change under way hides the absence until it ended, and its end counts as a change", () => {
  const known = new NewToRiak();
  const look = known.look();
  const ended = known.changing("/a");
  known.absent("/a", known.look());
  assert.equal(known.isNew("/a"), false, "under way while Riak was asked");
  ended();
  assert.equal(known.isNew("/a"), false);
  known.absent("/a", look);
  assert.equal(known.isNew("/a"), false, "the change came after the look");
  const later = known.look();
  const second = known.changing("/a");
  second();
  second(); // Ending twice ends once.
  known.absent("/a", known.look());
  assert.equal(known.isNew("/a"), true);
  known.absent("/b", later);
  assert.equal(known.isNew("/b"), true, "no change of /b since");
});

Deno.test("a change below a directory (a rename) changes every path below it", () => {
  const known = new NewToRiak();
  known.absent("/d/e/f", known.look());
  known.absent("/d2/f", known.look());
  known.absent("/d", known.look());
  known.changed("/d", { below: true });
  assert.equal(known.isNew("/d/e/f"), false);
  assert.equal(known.isNew("/d"), false);
  assert.equal(known.isNew("/d2/f"), true, "a name that only starts alike");
  known.changed("/", { below: true });
  assert.equal(known.isNew("/d2/f"), false, "below the root: everything");
});

Deno.test("a path whose change was forgotten to keep the memory bounded counts as changed", () => {
  const known = new NewToRiak();
  known.absent("/kept", known.look());
  const look = known.look();
  for (let index = 0; index <= 10_000; index++) known.changed(`/other-${index}`);
  assert.equal(known.isNew("/kept"), false, "one of the forgotten changes may have been its own");
  known.absent("/kept", look);
  assert.equal(known.isNew("/kept"), false);
  known.absent("/kept", known.look());
  assert.equal(known.isNew("/kept"), true, "a look after the forgotten ones");
});

Deno.test("an answer from a look holds while nothing changed the path since, nor is under way", () => {
  const known = new NewToRiak();
  const look = known.look();
  assert.equal(known.unchangedSince("/a", look), true);
  known.changed("/b");
  assert.equal(known.unchangedSince("/a", look), true, "another path's change");
  const ended = known.changing("/a");
  const during = known.look();
  assert.equal(known.unchangedSince("/a", during), false, "under way");
  ended();
  assert.equal(known.unchangedSince("/a", look), false, "changed after the look");
  assert.equal(known.unchangedSince("/a", known.look()), true, "a look after the change");
  const beforeRename = known.look();
  known.changed("/d", { below: true });
  assert.equal(known.unchangedSince("/d/e", beforeRename), false, "below a renamed directory");
});
