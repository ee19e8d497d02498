import assert from "node:assert/strict";
import { buildProgram, EXIT_USAGE, runCli, VERSION } from "./program.ts";
import { CHECKED_AHEAD_PER_UPLOAD } from "../migration/defaults.ts";
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

Deno.test("riak-fuse's own command line (no command, its flags) is taken as riakfs mount", async () => {
  const written: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as never;
  try {
    // Refused by mount's own checks (no such mountpoint), before anything is mounted.
    assert.equal(
      await runCli(["-s", "/nonexistent/riakfs-source", "-t", "/nonexistent/mnt"]),
      EXIT_USAGE,
    );
  } finally {
    process.stderr.write = original;
  }
  const text = written.join("");
  assert.match(text, /mountpoint \/nonexistent\/mnt does not exist/);
  assert.match(text, /riak-fuse's command line; taken as riakfs mount/);
  assert.match(text, /-s is riak-fuse's flag/);
  assert.doesNotMatch(text, /unknown option/);
});

Deno.test("each command's help says what the code does", () => {
  const help = (name: string) =>
    buildProgram().commands.find((command) => command.name() === name)!.helpInformation()
      .replace(/\s+/g, " ");
  // The pre-warm checks several files ahead of each upload slot, not one.
  assert.match(
    help("prewarm"),
    new RegExp(`files uploaded at once \\(${CHECKED_AHEAD_PER_UPLOAD} times as many more`),
  );
  // Both find the control socket where RIAKFS_RUN_DIR put it, as mount does.
  assert.match(help("status"), /--run-dir <dir> .*env: RIAKFS_RUN_DIR\)/);
  assert.match(help("umount"), /--run-dir <dir> .*env: RIAKFS_RUN_DIR\)/);
  // Mount's --request-timeout is FUSE's: where Riak's comes from instead.
  assert.match(help("mount"), /--request-timeout <seconds> .*RIAKFS_REQUEST_TIMEOUT/);
});

Deno.test("prewarm --time-budget: a bare number is seconds, and 0 is refused as a budget of none", async () => {
  const help = buildProgram().commands.find((command) => command.name() === "prewarm")!
    .helpInformation().replace(/\s+/g, " ");
  assert.match(help, /--time-budget <duration> .*a bare number is seconds/);
  const written: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as never;
  try {
    for (const zero of ["0", "0s", "0h0m"]) {
      written.length = 0;
      assert.equal(await runCli(["prewarm", "/nonexistent", "--time-budget", zero]), EXIT_USAGE);
      assert.match(
        written.join(""),
        /--time-budget.*must be more than 0 \(a bare number is seconds\)/,
      );
    }
    written.length = 0;
    assert.equal(await runCli(["prewarm", "/nonexistent", "--time-budget", "soon"]), EXIT_USAGE);
    assert.match(written.join(""), /not a duration: "soon"/);
  } finally {
    process.stderr.write = original;
  }
});
