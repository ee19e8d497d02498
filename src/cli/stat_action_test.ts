import assert from "node:assert/strict";
import { formatMode } from "./stat_action.ts";

Deno.test("formatMode shows setuid, setgid and sticky bits as ls does", () => {
  assert.equal(formatMode("file", 0o644), "-rw-r--r--");
  assert.equal(formatMode("file", 0o4755), "-rwsr-xr-x");
  assert.equal(formatMode("file", 0o2745), "-rwxr-Sr-x");
  assert.equal(formatMode("directory", 0o1777), "drwxrwxrwt");
  assert.equal(formatMode("directory", 0o1770), "drwxrwx--T");
  assert.equal(formatMode("symlink", 0o777), "lrwxrwxrwx");
});
