import assert from "node:assert/strict";
import { buildProgram, EXIT_USAGE, runCli, VERSION } from "./program.ts";
import pkg from "../../package.json" with { type: "json" };

Deno.test("the version comes from package.json", () => {
  assert.equal(VERSION, pkg.version);
  assert.equal(buildProgram().version(), pkg.version);
});

Deno.test("usage errors return exit code 2", async () => {
  const silenced = process.stderr.write;
  process.stderr.write = () => true;
  try {
    assert.equal(await runCli([]), EXIT_USAGE);
    assert.equal(await runCli(["--no-such-flag"]), EXIT_USAGE);
    assert.equal(await runCli(["help", "nosuch"]), EXIT_USAGE);
  } finally {
    process.stderr.write = silenced;
  }
});
