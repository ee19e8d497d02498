import assert from "node:assert/strict";
import { parseFuseOptions } from "./mount.ts";

Deno.test("-o lists: riakfs options, generic mount options, repeated -o", () => {
  const parsed = parseFuseOptions([
    "allow_other,attr_timeout=0.5",
    "ro,noatime,direct_io,fsname=old",
  ]);
  assert.equal(parsed.allowOther, true);
  assert.equal(parsed.defaultPermissions, false);
  assert.equal(parseFuseOptions(["default_permissions"]).defaultPermissions, true);
  assert.equal(parsed.attrTimeout, 0.5);
  assert.equal(parsed.directIo, true);
  assert.equal(parsed.fsname, "old");
  assert.deepEqual(parsed.generic, ["ro", "noatime"]);
});

Deno.test("-o rejects unknown options and malformed values in one line", () => {
  assert.throws(() => parseFuseOptions(["frob"]), /unknown mount option -o frob/);
  assert.throws(() => parseFuseOptions(["attr_timeout=-1"]), /attr_timeout/);
  assert.throws(() => parseFuseOptions(["fsname=a b"]), /fsname/);
  assert.throws(() => parseFuseOptions(["ro=1"]), /unknown mount option/);
});
