import assert from "node:assert/strict";
import { Command } from "commander";
import { translateLegacyFlags } from "./legacy_flags.ts";
import { ModeError } from "./modes.ts";
import { addOverlayOptions, overlaySettingsFromOptions } from "./mount_options.ts";

/** Parses `argv` with the overlay options the way `riakfs mount` does. */
function parse(argv: string[]): Record<string, unknown> {
  const command = addOverlayOptions(new Command("mount").exitOverride())
    .option("--riak <nodes>")
    .option("--layout <preset>")
    .option("--sets-bucket-type <type>")
    .option("--riak-fuse-content-prefix <prefix>")
    .option("--foreground")
    .argument("[source]")
    .argument("[mountpoint]");
  command.parse(argv, { from: "user" });
  return command.opts();
}

Deno.test("defaults give the passthrough preset and documented bounds", () => {
  const settings = overlaySettingsFromOptions(parse([]));
  assert.equal(settings.preset, "passthrough");
  assert.equal(settings.mode.reads, "local");
  assert.equal(settings.uploadConcurrency, 4);
  assert.equal(settings.cacheBytes, 64 * 1048576);
  assert.equal(settings.logFormat, "text");
});

Deno.test("a preset with overrides, --delete-local, and the numeric bounds", () => {
  const settings = overlaySettingsFromOptions(parse([
    "--preset",
    "migrate",
    "--listings",
    "union",
    "--delete-local",
    "--cache-size",
    "32",
    "--upload-concurrency",
    "8",
    "--metrics",
    "127.0.0.1:9464",
    "--log-format",
    "json",
  ]));
  assert.equal(settings.mode.afterTransfer, "delete");
  assert.equal(settings.cacheBytes, 32 * 1048576);
  assert.equal(settings.uploadConcurrency, 8);
  assert.equal(settings.metrics, "127.0.0.1:9464");
  assert.equal(settings.logFormat, "json");
});

Deno.test("translated riak-fuse flags parse into the same settings", () => {
  const { argv } = translateLegacyFlags([
    "-s",
    "/srv/img",
    "-t",
    "/mnt/img",
    "-rh",
    "riak1",
    "-rreadcontent",
    "-rreaddir",
    "-dell",
    "-rnp",
    "PIC_",
    "-rfuid",
    "33",
  ]);
  const opts = parse(argv);
  const settings = overlaySettingsFromOptions(opts);
  assert.equal(settings.preset, "drain", "-dell: the local copies go once in Riak");
  assert.deepEqual(settings.mode, {
    reads: "riak-then-local",
    copyOnRead: true,
    writes: "riak",
    afterTransfer: "delete",
    listings: "union",
  });
  assert.equal(settings.defaultUid, 33);
  assert.equal(opts.riakFuseContentPrefix, "PIC_");
  assert.equal(opts.riak, "riak1:8087");
  assert.equal(opts.layout, "riak-fuse");
});

Deno.test("bad overlay values are one-line ModeErrors", () => {
  for (
    const [argv, pattern] of [
      [["--cache-size", "big"], /--cache-size must be a whole number >= 0/],
      [["--upload-concurrency", "0"], /--upload-concurrency must be a whole number >= 1/],
      [["--metrics", "9464"], /--metrics must be HOST:PORT/],
      [["--delete-local", "--after-transfer", "keep"], /--delete-local contradicts/],
      [["--preset", "riak", "--listings", "union"], /--listings must be riak/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(() => overlaySettingsFromOptions(parse(argv)), (error: unknown) => {
      assert.ok(error instanceof ModeError);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("the help shows the knobs and the preset table", () => {
  let help = "";
  const command = addOverlayOptions(new Command("mount"));
  command.configureOutput({ writeOut: (text) => help += text });
  command.outputHelp();
  assert.match(help, /--preset <preset>/);
  assert.match(help, /--reads <from>\s+override: local\|riak-then-local\|riak/);
  assert.match(help, /Presets \(any knob can be overridden after the preset\):/);
  assert.match(help, /^ {2}drain\s+riak-then-local\s+yes\s+riak\s+delete\s+union$/m);
});
