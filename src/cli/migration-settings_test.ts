import assert from "node:assert/strict";
import { resolveNamespace } from "../store/layout.ts";
import { stateDirectoryFor } from "./migration-settings.ts";

// The default state directory is named by a hash of SOURCE and the namespace: another name
// after an upgrade would start every migration's pre-warm, progress and history over.
Deno.test("the default state directory of a source and namespace is where earlier builds (7cc39b4) kept it", () => {
  const source = "/riakfs-absent/srv/data";
  assert.equal(
    stateDirectoryFor(source, resolveNamespace(), {}).path,
    "/var/lib/riakfs/189d410b45f7693a",
  );
  assert.equal(
    stateDirectoryFor(source, resolveNamespace({ bucket: "files", preset: "riak-fuse" }), {})
      .path,
    "/var/lib/riakfs/ffdb7a7b4399a748",
  );
  assert.equal(stateDirectoryFor(source, resolveNamespace(), { stateDir: "/s" }).path, "/s");
});
