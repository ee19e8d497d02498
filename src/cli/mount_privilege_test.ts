import assert from "node:assert/strict";
import { mountPrivilegeProblem } from "./mount_privilege.ts";

/** A /proc/PID/status with these ids and effective capabilities. */
const status = (uid: number, capEff: string) =>
  `Name:\triakfs\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nCapInh:\t0000000000000000\n` +
  `CapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

Deno.test("root, or anyone with CAP_SYS_ADMIN, may mount; without it one line says why not", () => {
  assert.equal(mountPrivilegeProblem("mounting", status(0, "000001ffffffffff")), undefined);
  assert.equal(mountPrivilegeProblem("mounting", status(1000, "0000000000200000")), undefined);
  assert.match(
    mountPrivilegeProblem("mounting", status(65534, "0000000000000000"))!,
    /^mounting needs root or CAP_SYS_ADMIN, which this process \(uid 65534\) lacks/,
  );
  // Root with every capability but CAP_SYS_ADMIN (a container, setpriv).
  assert.match(
    mountPrivilegeProblem("unmounting", status(0, "000001ffffdfffff"))!,
    /^unmounting needs root or CAP_SYS_ADMIN, which this process \(uid 0\) lacks/,
  );
  // No capabilities to read: mount(8) tells.
  assert.equal(mountPrivilegeProblem("mounting", ""), undefined);
});
