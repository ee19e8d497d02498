import assert from "node:assert/strict";
import { directWritesInvalidateCache, Errno, fail, FuseError, rootAccess } from "./filesystem.ts";

Deno.test("rootAccess: root may do anything but execute a file without an x bit", () => {
  const R_OK = 4, W_OK = 2, X_OK = 1;
  rootAccess(0o100000, R_OK | W_OK);
  rootAccess(0o100010, X_OK);
  rootAccess(0o040000, X_OK); // a directory: search is root's
  assert.throws(
    () => rootAccess(0o100666, R_OK | X_OK),
    (error: unknown) => error instanceof FuseError && error.errno === Errno.EACCES,
  );
});

Deno.test("directWritesInvalidateCache: from Linux 6.6 on", () => {
  assert.equal(directWritesInvalidateCache("6.18.44-fc-v1300"), true);
  assert.equal(directWritesInvalidateCache("6.6.0"), true);
  assert.equal(directWritesInvalidateCache("7.0.1"), true);
  assert.equal(directWritesInvalidateCache("6.5.13-generic"), false);
  assert.equal(directWritesInvalidateCache("5.15.0-91-generic"), false);
  assert.equal(directWritesInvalidateCache("garbage"), false);
});

Deno.test("fail: an errno and its message, without a stack, and other errors keep theirs", () => {
  const error = fail(Errno.ENOENT, "/a: no such file");
  assert.ok(error instanceof FuseError);
  assert.equal(error.errno, Errno.ENOENT);
  assert.equal(error.message, "/a: no such file");
  assert.equal(error.stack, "FuseError: /a: no such file");
  assert.ok((new Error("other").stack ?? "").includes("filesystem_test.ts"));
});
