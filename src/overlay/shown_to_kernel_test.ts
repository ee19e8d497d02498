import assert from "node:assert/strict";
import type { Attr } from "../fuse/filesystem.ts";
import { fileAttr } from "./attributes.ts";
import { ShownToKernel } from "./shown_to_kernel.ts";

/** A file's attributes whose ctime (and mtime) is `ctimeNs`. */
function attrWithCtime(ctimeNs: bigint): Attr {
  return fileAttr(2, 3, 0o100644, 0, 0, ctimeNs);
}

Deno.test("a ctime seen locally is kept when a later answer (Riak's copy) shows an older one", () => {
  const shown = new ShownToKernel(10);
  assert.deepEqual(shown.attrOf("/f", attrWithCtime(5_000_000_007n), true).ctime, {
    sec: 5,
    nsec: 7,
  });
  const fromRiak = shown.attrOf("/f", attrWithCtime(4_000_000_000n), false);
  assert.deepEqual(fromRiak.ctime, { sec: 5, nsec: 7 });
  assert.deepEqual(fromRiak.mtime, { sec: 4, nsec: 0 });
  assert.equal(shown.latestCtime("/f"), 5_000_000_007n);
});

Deno.test("a ctime from Riak is shown as is and not remembered", () => {
  const shown = new ShownToKernel(10);
  const attr = attrWithCtime(4_000_000_000n);
  assert.equal(shown.attrOf("/f", attr, false), attr);
  assert.equal(shown.latestCtime("/f"), undefined);
  assert.equal(shown.ctimeCount, 0);
});

Deno.test("a noted ctime never goes back, and a later local one replaces it", () => {
  const shown = new ShownToKernel(10);
  shown.noteCtime("/f", 9n);
  shown.noteCtime("/f", 3n);
  assert.equal(shown.latestCtime("/f"), 9n);
  shown.attrOf("/f", attrWithCtime(12n), true);
  assert.equal(shown.latestCtime("/f"), 12n);
  shown.forgetCtime("/f");
  assert.equal(shown.latestCtime("/f"), undefined);
});

Deno.test("the ctimes kept are bounded, the one noted longest ago goes first", () => {
  const shown = new ShownToKernel(2);
  shown.noteCtime("/a", 1n);
  shown.noteCtime("/b", 1n);
  shown.noteCtime("/a", 2n);
  shown.noteCtime("/c", 1n);
  assert.equal(shown.ctimeCount, 2);
  assert.equal(shown.latestCtime("/b"), undefined);
  assert.equal(shown.latestCtime("/a"), 2n);
});

Deno.test("only the version served last keeps the kernel's cached pages", () => {
  const shown = new ShownToKernel(10);
  assert.equal(shown.servedKeepsCache("/f", "v1"), false);
  assert.equal(shown.servedKeepsCache("/f", "v1"), true);
  assert.equal(shown.servedKeepsCache("/f", "v2"), false);
  shown.forgetServed("/f");
  assert.equal(shown.servedKeepsCache("/f", "v2"), false);
  assert.equal(shown.servedCount, 1);
});

Deno.test("the served versions are bounded, the one served longest ago goes first", () => {
  const shown = new ShownToKernel(2);
  shown.servedKeepsCache("/a", "v");
  shown.servedKeepsCache("/b", "v");
  shown.servedKeepsCache("/a", "v");
  shown.servedKeepsCache("/c", "v");
  assert.equal(shown.servedCount, 2);
  assert.equal(shown.servedKeepsCache("/a", "v"), true);
  assert.equal(shown.servedKeepsCache("/b", "v"), false);
});

Deno.test("a renamed file keeps its ctime under the new name; both names lose their pages", () => {
  const shown = new ShownToKernel(10);
  shown.noteCtime("/from", 7n);
  shown.noteCtime("/to", 9n);
  shown.servedKeepsCache("/from", "v");
  shown.servedKeepsCache("/to", "w");
  shown.renamed("/from", "/to");
  assert.equal(shown.latestCtime("/from"), undefined);
  assert.equal(shown.latestCtime("/to"), 7n);
  assert.equal(shown.servedCount, 0);
});

Deno.test("renaming a file with no ctime remembered leaves none under either name", () => {
  const shown = new ShownToKernel(10);
  shown.noteCtime("/to", 9n);
  shown.renamed("/from", "/to");
  assert.equal(shown.ctimeCount, 0);
});
