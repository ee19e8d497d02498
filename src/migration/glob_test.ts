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

Deno.test("a glob ending in a slash matches that directory and everything below it", () => {
  const filter = new PathFilter([], ["cache/", "logs/old/"]);
  assert.equal(filter.walksInto(p("cache")), false);
  assert.equal(filter.walksInto(p("home/cache")), false, "a name at any depth, without another /");
  assert.equal(filter.selects(p("cache/a.txt")), false);
  assert.equal(filter.selects(p("home/cache/deep/a.txt")), false);
  assert.equal(filter.selects(p("cache")), true, "a file of the name is no directory");
  assert.equal(filter.walksInto(p("logs/old")), false);
  assert.equal(filter.selects(p("logs/old/a.gz")), false);
  assert.equal(filter.walksInto(p("x/logs/old")), true, "one with a / inside is anchored");
  assert.equal(filter.selects(p("logs/older/a.gz")), true);
  const included = new PathFilter(["keep/"]);
  assert.equal(included.selects(p("keep/a.txt")), true);
  assert.equal(included.selects(p("other/a.txt")), false);
});

Deno.test("a directory takes part by itself where no include is given or a directory include covers it", () => {
  assert.equal(new PathFilter().selectsDirectory(p("a/b")), true);
  assert.equal(new PathFilter([], ["b/"]).selectsDirectory(p("a/b")), false, "excluded");
  const directories = new PathFilter(["c/"]);
  assert.equal(directories.selectsDirectory(p("c")), true);
  assert.equal(directories.selectsDirectory(p("d/c/e")), true, "below a directory included");
  assert.equal(directories.selectsDirectory(p("a/b")), false, "only a way to what is included");
  assert.equal(new PathFilter(["*.gz"]).selectsDirectory(p("logs")), false);
});

Deno.test("wildcards match names starting with a dot, as in rsync and .gitignore", () => {
  // node:path matchesGlob alone skips them: `--exclude '*.swp'` let vim's `.notes.swp` through,
  // to be uploaded and, in a drain, deleted.
  const excluded = new PathFilter([], ["*.swp", "?lock", "tmp/*", "cache*/"]);
  assert.equal(excluded.selects(p("a/.notes.swp")), false);
  assert.equal(excluded.selects(p(".lock")), false);
  assert.equal(excluded.selects(p("tmp/.x")), false);
  assert.equal(excluded.walksInto(p("home/.cache")), true, "cache*/ names no dot");
  assert.equal(new PathFilter([], ["*/"]).walksInto(p("a/.git")), false);
  const included = new PathFilter(["logs/**"]);
  assert.equal(included.selects(p("logs/.hidden")), true);
  assert.equal(included.selects(p("logs/.old/a.gz")), true);
  assert.equal(new PathFilter(["**/*.gz"]).selects(p(".x/.y.gz")), true);
  assert.equal(new PathFilter(["*.gz"]).selects(p("a.tgz")), false, "still a glob");
  assert.equal(new PathFilter([], ["[.]x"]).selects(p(".x")), false);
});
