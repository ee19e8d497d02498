import assert from "node:assert/strict";
import { PathFilter } from "./glob.ts";

const p = (text: string) => Buffer.from(text);

Deno.test("a glob without a slash matches a name at any depth", () => {
  const filter = new PathFilter([], ["*.tmp", ".cache"]);
  assert.equal(filter.selects(p("x.tmp")), false);
  assert.equal(filter.selects(p("a/b/x.tmp")), false);
  assert.equal(filter.selects(p("a/b/x.txt")), true);
  assert.equal(filter.walksInto(p("home/.cache")), false);
  assert.equal(filter.walksInto(p("home/cache")), true);
});

Deno.test("a glob with a slash matches the whole relative path", () => {
  const filter = new PathFilter(["logs/**/*.gz"]);
  assert.equal(filter.selects(p("logs/2024/01/a.gz")), true);
  assert.equal(filter.selects(p("other/logs/a.gz")), false);
  assert.equal(filter.walksInto(p("other")), true, "includes never prune directories");
});

Deno.test("exclude wins over include; no globs selects everything", () => {
  assert.equal(new PathFilter(["*.txt"], ["secret*"]).selects(p("secret.txt")), false);
  assert.equal(new PathFilter().selects(p("anything")), true);
  assert.equal(new PathFilter().isEmpty, true);
  assert.throws(() => new PathFilter([""]), RangeError);
});
