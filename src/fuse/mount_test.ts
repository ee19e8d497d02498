import assert from "node:assert/strict";
import { isStillMounted, type MountInfo } from "./mount.ts";

const served: MountInfo = {
  mountpoint: "/srv/images",
  fstype: "fuse.riakfs",
  source: "/srv/images",
  device: "0:63",
};

// A riakfs umount waiting on a drain while the mount's process was killed: the mount went, and
// another FUSE mount made elsewhere at that moment (a test run beside it in CI) took its
// device number 0:63. Taken for the same mount, the umount then failed with "not mounted".
Deno.test("a mount is still mounted only with its device at its mountpoint: a freed device number taken elsewhere is not it", () => {
  assert.equal(isStillMounted(served, [served]), true);
  assert.equal(isStillMounted(served, [{ ...served, mountpoint: "/tmp/other/mnt" }]), false);
  assert.equal(isStillMounted(served, [{ ...served, device: "0:64" }]), false, "mounted anew");
  assert.equal(isStillMounted(served, []), false);
});
