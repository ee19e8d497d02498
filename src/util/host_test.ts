import assert from "node:assert/strict";
import { isHostName } from "./host.ts";

Deno.test("host names: DNS names and IPv4 addresses pass, what could only fail a lookup later does not", () => {
  for (
    const good of ["localhost", "riak-1.example.com", "riak_1.dc.internal", "a.b.", "10.0.0.1"]
  ) {
    assert.equal(isHostName(good), true, good);
  }
  for (const bad of ["a b", "user@h", "h/x", "-h", "h-", "a..b", "256.1.1.1", "1.2.3", ""]) {
    assert.equal(isHostName(bad), false, bad);
  }
});
