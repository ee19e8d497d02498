import assert from "node:assert/strict";
import { LegacyFlagError, translateLegacyFlags } from "./legacy_flags.ts";
import { resolveMode } from "./modes.ts";

Deno.test("an argv without riak-fuse flags is returned unchanged", () => {
  const argv = ["--preset", "migrate", "-f", "/data", "/mnt/data"];
  const result = translateLegacyFlags(argv);
  assert.deepEqual(result, { argv, hints: [], legacy: false });
});

Deno.test("a typical supervisord line translates to shadow + riak-fuse layout", () => {
  const result = translateLegacyFlags([
    "-s",
    "/srv/images",
    "-t",
    "/mnt/images",
    "-f",
    "-rh",
    "riak1.example",
    "-rp",
    "8088",
  ]);
  assert.equal(result.legacy, true);
  assert.deepEqual(result.argv, [
    "--foreground",
    "--riak",
    "riak1.example:8088",
    "--layout",
    "riak-fuse",
    "--preset",
    "shadow",
    "/srv/images",
    "/mnt/images",
  ]);
  assert.deepEqual(result.hints, [
    "riakfs: -s is riak-fuse's flag; riakfs spells it the first argument: riakfs mount SOURCE MOUNTPOINT",
    "riakfs: -t is riak-fuse's flag; riakfs spells it the second argument: riakfs mount SOURCE MOUNTPOINT",
    "riakfs: -f is riak-fuse's flag; riakfs spells it --foreground",
    "riakfs: -rh is riak-fuse's flag; riakfs spells it --riak HOST:PORT (with --layout riak-fuse)",
    "riakfs: -rp is riak-fuse's flag; riakfs spells it --riak HOST:PORT (with --layout riak-fuse)",
    "riakfs: riak-fuse's behaviour is --preset shadow --layout riak-fuse (see riakfs mount --help)",
  ]);
});

Deno.test("every riak-fuse flag has its new spelling, short and long forms alike", () => {
  const result = translateLegacyFlags([
    "--source=/a",
    "--target",
    "/b",
    "-rnp",
    "PIC_",
    "-rdnp=PICDIR_",
    "--riak_directory_set_buckettype",
    "mysets",
    "-rdk",
    "listing",
    "-rct",
    "image/jpeg",
    "-dell",
    "-ddir",
    "-rreadcontent",
    "--use_riak_read_directory",
    "-rfuid",
    "33",
    "-rfgid",
    "44",
    "--preset",
    "migrate",
  ]);
  assert.deepEqual(result.argv, [
    "--riak-fuse-content-prefix",
    "PIC_",
    "--riak-fuse-directory-prefix",
    "PICDIR_",
    "--sets-bucket-type",
    "mysets",
    "--riak-fuse-directory-key",
    "listing",
    "--riak-fuse-content-type",
    "image/jpeg",
    "--after-transfer",
    "delete",
    "--reads",
    "riak-then-local",
    "--listings",
    "union",
    "--default-uid",
    "33",
    "--default-gid",
    "44",
    "--preset",
    "migrate",
    "--layout",
    "riak-fuse",
    "/a",
    "/b",
  ]);
  // One hint per legacy flag (13 here), none for the explicit --preset.
  assert.equal(result.hints.length, 13);
  assert.match(result.hints[7], /-dell .* --after-transfer delete/);
  assert.match(result.hints[8], /-ddir is ignored: riakfs always keeps directory listings/);
  for (const line of result.hints) assert.ok(!line.includes("\n"));
});

Deno.test("-dell without a preset is the drain preset, which the mode check accepts", () => {
  const result = translateLegacyFlags(["-s", "/a", "-t", "/b", "-dell"]);
  assert.deepEqual(result.argv, [
    "--after-transfer",
    "delete",
    "--layout",
    "riak-fuse",
    "--preset",
    "drain",
    "/a",
    "/b",
  ]);
  assert.match(result.hints.at(-1)!, /with -dell is --preset drain --layout riak-fuse/);
  const mode = resolveMode("drain", { afterTransfer: "delete" });
  assert.equal(mode.reads, "riak-then-local");
  assert.equal(mode.listings, "union");
});

Deno.test("-rh alone uses riak-fuse's default port, -rp alone its default host", () => {
  assert.ok(
    translateLegacyFlags(["-rh", "10.0.0.5"]).argv.join(" ").includes("--riak 10.0.0.5:8087"),
  );
  assert.ok(translateLegacyFlags(["-rp", "9000"]).argv.join(" ").includes("--riak localhost:9000"));
  // An IPv6 address, which riak-fuse's client took as it is, goes in brackets before the port.
  assert.ok(translateLegacyFlags(["-rh", "::1"]).argv.join(" ").includes("--riak [::1]:8087"));
});

Deno.test("arguments after -- are not translated", () => {
  const result = translateLegacyFlags(["-dell", "--", "-rh"]);
  assert.deepEqual(result.argv.slice(-2), ["--", "-rh"]);
});

Deno.test("missing or malformed legacy values are one-line errors", () => {
  for (
    const [argv, pattern] of [
      [["-rh"], /-rh needs a value/],
      [
        ["-rh", "riak1:8087"],
        /^riak-fuse flag -rh takes a host name or address \(its port goes in -rp\), got riak1:8087$/,
      ],
      [["-rp", "http"], /-rp needs a port number, got http/],
      [["-rp", "70000"], /port number/],
      [["-rfuid", "www"], /-rfuid needs a number/],
      [["-s", "/a"], /-s SOURCE and -t TARGET must be given together/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(() => translateLegacyFlags(argv), (error: unknown) => {
      assert.ok(error instanceof LegacyFlagError);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("a setting given by a riak-fuse flag and again by its riakfs spelling is refused", () => {
  for (
    const [argv, message] of [
      [["-rh", "riak1", "--riak", "riak2:8087"], /--riak is given twice/],
      [["-dell", "--after-transfer", "keep"], /--after-transfer is given twice/],
      [["-rreadcontent", "--reads=local"], /--reads is given twice/],
      [["-rnp", "X_", "--layout", "default"], /need --layout riak-fuse, not --layout default/],
      [
        ["-rh", "riak1", "--layout", "default"],
        /-rh and -rp mean --layout riak-fuse, not --layout default/,
      ],
      [
        ["-rp", "8098", "--layout=default"],
        /-rh and -rp mean --layout riak-fuse, not --layout default/,
      ],
    ] as const
  ) {
    assert.throws(() => translateLegacyFlags([...argv, "/src", "/mnt"]), message);
  }
  // Each once: fine.
  assert.ok(translateLegacyFlags(["-rh", "riak1", "--reads", "local", "/src", "/mnt"]).legacy);
  assert.ok(translateLegacyFlags(["-rh", "riak1", "--layout", "riak-fuse", "/src", "/mnt"]).legacy);
  assert.ok(translateLegacyFlags(["-rh", "riak1", "--layout=riak-fuse", "--preset=drain"]).legacy);
});
