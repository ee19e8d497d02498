import assert from "node:assert/strict";
import { Errno, fail } from "../fuse/filesystem.ts";
import { NotFoundError } from "../store/errors.ts";
import { absentBelowFile, ignoreMissing, isMissing, isNotFound } from "./not_found.ts";

function systemError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

Deno.test("isNotFound takes ENOENT as an errno or as the store's NotFoundError", () => {
  assert.equal(isNotFound(fail(Errno.ENOENT)), true);
  assert.equal(isNotFound(new NotFoundError("/a")), true);
  assert.equal(isNotFound(fail(Errno.EIO)), false);
  assert.equal(isNotFound(systemError("ENOENT")), false, "a system error has a code, not an errno");
});

Deno.test("isMissing and ignoreMissing take only ENOENT as the path not being there", async () => {
  assert.equal(isMissing(systemError("ENOENT")), true);
  assert.equal(isMissing(systemError("ENOTDIR")), false);
  assert.equal(await ignoreMissing(Promise.resolve()), true);
  assert.equal(await ignoreMissing(Promise.reject(systemError("ENOENT"))), false);
  await assert.rejects(ignoreMissing(Promise.reject(systemError("EACCES"))), /EACCES/);
});

Deno.test("absentBelowFile answers nothing for ENOTDIR and throws anything else again", () => {
  assert.equal(absentBelowFile(systemError("ENOTDIR")), undefined);
  assert.throws(() => absentBelowFile(systemError("ENOENT")), /ENOENT/);
});
