import assert from "node:assert/strict";
import { ContentPrefetch } from "./content_prefetch.ts";

Deno.test("contents are fetched while looked-up files are read, not while they are only stat'ed", () => {
  const prefetch = new ContentPrefetch();
  assert.equal(prefetch.wanted(), true, "reading is assumed at first");
  // `ls -l` of a large directory: lookups, no opens.
  for (let index = 0; index < 100; index++) prefetch.lookedUp();
  assert.equal(prefetch.wanted(), false);
  // Then files are read one after another: lookup + open each.
  let turnedOn = -1;
  for (let index = 0; index < 1000 && turnedOn < 0; index++) {
    prefetch.lookedUp();
    prefetch.opened();
    if (prefetch.wanted()) turnedOn = index;
  }
  assert.ok(turnedOn > 0 && turnedOn < 300, `back on after ${turnedOn} reads`);
  // Half of the files read keeps it on.
  for (let index = 0; index < 1000; index++) {
    prefetch.lookedUp();
    if (index % 2 === 0) prefetch.opened();
  }
  assert.equal(prefetch.wanted(), true);
});
