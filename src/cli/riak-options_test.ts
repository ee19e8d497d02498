import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import {
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STALL_CHECK_AFTER_MS,
} from "../riak/mod.ts";
import { addRiakOptions } from "./riak-options.ts";
import {
  clusterOptionsFromSettings,
  RiakConfigError,
  riakSettingsFromOptions,
} from "./riak-session.ts";

/** Parses `args` with only `env` as RIAKFS_* environment, restoring the environment after. */
function parse(args: string[], env: Record<string, string> = {}) {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env)) {
    if (key.startsWith("RIAKFS_")) delete process.env[key];
  }
  Object.assign(process.env, env);
  try {
    const command = addRiakOptions(new Command("x")).exitOverride().configureOutput({
      writeErr: () => {},
    });
    command.parse(args, { from: "user" });
    return riakSettingsFromOptions(command.opts(), command);
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

Deno.test("defaults without flags, env or config", () => {
  const settings = parse([]);
  assert.deepEqual(settings.riak.nodes, ["127.0.0.1:8087"]);
  assert.equal(settings.riak.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  assert.equal(settings.riak.tls, undefined);
  assert.equal(settings.riak.auth, undefined);
  assert.equal(settings.namespace.bucket, undefined);
});

Deno.test("the hung-node thresholds: flag beats environment beats config file, the client gets them", () => {
  const defaults = parse([]).riak;
  assert.deepEqual(
    [defaults.stallCheckAfterMs, defaults.pingTimeoutMs],
    [DEFAULT_STALL_CHECK_AFTER_MS, DEFAULT_PING_TIMEOUT_MS],
  );
  const folder = mkdtempSync(join(tmpdir(), "riakfs-opts-"));
  try {
    const config = join(folder, "c.json");
    writeFileSync(config, JSON.stringify({ stallCheckAfter: 5000, pingTimeout: 7000 }));
    const fromConfig = clusterOptionsFromSettings(parse(["--config", config]).riak);
    assert.deepEqual([fromConfig.stallCheckAfterMs, fromConfig.pingTimeoutMs], [5000, 7000]);
    const env = { RIAKFS_STALL_CHECK_AFTER: "3000", RIAKFS_PING_TIMEOUT: "8000" };
    const fromEnv = parse(["--config", config], env).riak;
    assert.deepEqual([fromEnv.stallCheckAfterMs, fromEnv.pingTimeoutMs], [3000, 8000]);
    const fromFlags = parse(
      ["--config", config, "--stall-check-after", "0", "--ping-timeout", "9000"],
      env,
    ).riak;
    assert.deepEqual([fromFlags.stallCheckAfterMs, fromFlags.pingTimeoutMs], [0, 9000]);
    for (
      const [content, message] of [
        [{ pingTimeout: "2s" }, /"pingTimeout" must be a number/],
        [{ pingTimeout: 0 }, /: pingTimeout must be a positive whole number, got 0$/],
        [{ stallCheckAfter: -1 }, /: stallCheckAfter must be a whole number \(0 turns/],
        [{ stallCheckAfter: 1.5 }, /: stallCheckAfter must be a whole number .*got 1\.5$/],
      ] as const
    ) {
      writeFileSync(config, JSON.stringify(content));
      assert.throws(() => parse(["--config", config]), message, JSON.stringify(content));
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  assert.throws(
    () => parse(["--ping-timeout", "0"]),
    /Error: --ping-timeout must be a positive whole number, got "0"$/,
  );
  assert.throws(() => parse(["--ping-timeout", "2s"]), /--ping-timeout .*got "2s"/);
  assert.throws(
    () => parse(["--stall-check-after", ""]),
    /Error: --stall-check-after must be a whole number \(0 turns the check off\), got ""$/,
  );
  assert.throws(
    () => parse([], { RIAKFS_STALL_CHECK_AFTER: "-5" }),
    /Error: RIAKFS_STALL_CHECK_AFTER \(--stall-check-after\) must be a whole number/,
  );
  assert.throws(
    () => parse(["--stall-check-after", "2147483648"]),
    /--stall-check-after must be at most 2147483647/,
  );
});

Deno.test("several nodes, default port, IPv6", () => {
  const settings = parse(["--riak", "a:1, b ,[::1]:8088"]);
  assert.deepEqual(settings.riak.nodes, ["a:1", "b:8087", "[::1]:8088"]);
  assert.deepEqual(clusterOptionsFromSettings(settings.riak).nodes, settings.riak.nodes);
  assert.throws(() => parse(["--riak", "a:99999"]), RiakConfigError);
  assert.throws(() => parse(["--riak", ","]), RiakConfigError);
});

Deno.test("flag beats environment beats config file; password never from a flag", () => {
  const folder = mkdtempSync(join(tmpdir(), "riakfs-opts-"));
  try {
    const config = join(folder, "c.json");
    const passwordFile = join(folder, "pw");
    writeFileSync(
      config,
      JSON.stringify({
        riak: ["c:1"],
        bucket: "fromconfig",
        user: "u",
        tls: true,
        w: "all",
        layout: "riak-fuse",
        passwordFile,
        chunkBucket: "cb",
        directoryBucket: "db",
        shardCapacity: 500,
        shardFanout: 8,
      }),
    );
    writeFileSync(passwordFile, "s3cret\n");
    const fromConfig = parse(["--config", config]);
    assert.deepEqual(fromConfig.riak.nodes, ["c:1"]);
    assert.equal(fromConfig.namespace.bucket, "fromconfig");
    assert.equal(fromConfig.namespace.preset, "riak-fuse");
    assert.deepEqual(fromConfig.riak.auth, { user: "u", password: "s3cret" });
    assert.equal(fromConfig.riak.w, "all");
    const { chunkBucket, directoryBucket, shardCapacity, shardFanout } = fromConfig.namespace;
    assert.deepEqual({ chunkBucket, directoryBucket, shardCapacity, shardFanout }, {
      chunkBucket: "cb",
      directoryBucket: "db",
      shardCapacity: 500,
      shardFanout: 8,
    });
    const fromEnv = parse(["--config", config], {
      RIAKFS_RIAK: "e:2",
      RIAKFS_PASSWORD: "envpw",
      RIAKFS_TLS: "1",
      RIAKFS_BUCKET: "envbucket",
    });
    assert.deepEqual(fromEnv.riak.nodes, ["e:2"]);
    assert.equal(fromEnv.riak.auth?.password, "envpw");
    assert.equal(fromEnv.namespace.bucket, "envbucket");
    assert.ok(fromEnv.riak.tls);
    const fromFlag = parse(["--config", config, "--riak", "f:3", "--bucket", "b"], {
      RIAKFS_RIAK: "e:2",
    });
    assert.deepEqual(fromFlag.riak.nodes, ["f:3"]);
    assert.equal(fromFlag.namespace.bucket, "b");
    const flagFile = join(folder, "flag-pw");
    writeFileSync(flagFile, "fromflag\n");
    const fileFlag = parse(["--config", config, "--password-file", flagFile], {
      RIAKFS_PASSWORD: "envpw",
    });
    assert.equal(fileFlag.riak.auth?.password, "fromflag");
    assert.throws(
      () =>
        parse(["--config", config, "--password-file", join(folder, "missing")], {
          RIAKFS_PASSWORD: "envpw",
        }),
      /cannot read the Riak password file/,
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  assert.throws(() => parse(["--password", "x"]), /unknown option/);
});

Deno.test("riak-fuse's names on every command: flag beats environment beats config file", () => {
  const folder = mkdtempSync(join(tmpdir(), "riakfs-opts-"));
  try {
    const config = join(folder, "c.json");
    writeFileSync(
      config,
      JSON.stringify({ layout: "riak-fuse", riakFuse: { contentPrefix: "C_", directoryKey: "k" } }),
    );
    assert.equal(parse([]).namespace.riakFuse, undefined);
    assert.deepEqual(parse(["--config", config]).namespace.riakFuse, {
      contentPrefix: "C_",
      directoryKey: "k",
    });
    // A cron job beside a mount of riak-fuse's `-rnp PIC_ -rdnp PICDIR_` names them as it does.
    const given = parse(
      [
        "--config",
        config,
        "--riak-fuse-content-prefix",
        "PIC_",
        "--riak-fuse-content-type",
        "image/jpeg",
      ],
      { RIAKFS_RIAK_FUSE_CONTENT_PREFIX: "ENV_", RIAKFS_RIAK_FUSE_DIRECTORY_PREFIX: "PICDIR_" },
    );
    assert.deepEqual(given.namespace.riakFuse, {
      contentPrefix: "PIC_",
      directoryPrefix: "PICDIR_",
      directoryKey: "k",
      contentType: "image/jpeg",
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

Deno.test("bad values are configuration errors naming the setting", () => {
  assert.throws(() => parse(["--user", "u", "--tls"]), /RIAKFS_PASSWORD/);
  assert.throws(() => parse(["--user", "u"]), /--user u needs --tls/);
  assert.throws(() => parse(["--request-timeout", "0"]), /--request-timeout/);
  assert.throws(() => parse(["--w", "most"]), /--w/);
  assert.throws(() => parse(["--layout", "s3"]), /--layout/);
  assert.throws(() => parse(["--chunk-size", "-1"]), /--chunk-size/);
  assert.throws(() => parse(["--chunk-size", "60000000"]), /--chunk-size must be at most/);
  assert.throws(() => parse(["--chunk-size", "1"]), /--chunk-size must be at least 4096, got 1/);
  assert.equal(parse(["--chunk-size", "4096"]).namespace.chunkSize, 4096);
  assert.throws(() => parse(["--config", "/nonexistent/riakfs.json"]), /--config/);
  assert.throws(() => parse(["--bucket", ""]), /--bucket must not be empty/);
  assert.throws(() => parse(["--password-file", "/etc/hostname"]), /--password-file needs --user/);
  assert.throws(() => parse(["--tls-ca", "/nonexistent/ca.pem"]), /--tls-ca \/nonexistent/);
  assert.throws(() => parse(["--tls", "--tls-cert", "/etc/hostname"]), /go together/);
  assert.throws(
    () => parse(["--tls", "--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname"]),
    /--tls-cert \/etc\/hostname: not usable PEM/,
  );
  // Named where the value came from: the environment, or the flag that overrides it.
  assert.throws(
    () => parse([], { RIAKFS_BUCKET_TYPE: "" }),
    /: RIAKFS_BUCKET_TYPE \(--bucket-type\) must not be empty/,
  );
  assert.throws(() => parse(["--w", "most"], { RIAKFS_W: "1" }), /: --w must be/);
  assert.throws(() => parse([], { RIAKFS_W: "most" }), /: RIAKFS_W \(--w\) must be/);
});

Deno.test("RIAKFS_TLS is a switch: 0, false, no and off keep TLS off; anything else is an error", () => {
  for (const off of ["0", "false", "no", "off", ""]) {
    assert.equal(parse([], { RIAKFS_TLS: off }).riak.tls, undefined, off);
  }
  for (const on of ["1", "true", "YES", "on"]) assert.ok(parse([], { RIAKFS_TLS: on }).riak.tls);
  assert.throws(() => parse([], { RIAKFS_TLS: "maybe" }), /RIAKFS_TLS must be 1 or 0/);
  assert.ok(parse(["--tls"], { RIAKFS_TLS: "0" }).riak.tls, "the flag wins");
});

Deno.test("a config file setting of the wrong type or an unknown name is an error naming it", () => {
  const folder = mkdtempSync(join(tmpdir(), "riakfs-opts-"));
  try {
    const config = join(folder, "c.json");
    const cases: [unknown, RegExp][] = [
      [{ riak: 5 }, /"riak" must be a host:port text/],
      [{ bucket: 7 }, /"bucket" must be a non-empty text/],
      [{ bucket: "" }, /"bucket" must be a non-empty text/],
      [{ bucketType: {} }, /"bucketType" must be a non-empty text/],
      [{ tls: "no" }, /"tls" must be true or false/],
      [{ chunkSize: "big" }, /"chunkSize" must be a number/],
      [{ riakFuse: 3 }, /"riakFuse" must be an object/],
      [{ riakFuse: { contentPrefix: 1 } }, /"riakFuse" must be an object of non-empty texts/],
      [{ chunksize: 4 }, /unknown setting "chunksize" \(did you mean "chunkSize"\?\)/],
      [{ chunkBucket: ["a"] }, /"chunkBucket" must be a non-empty text/],
      [{ shardFanout: 1 }, /shardFanout must be at least 2, got 1/],
      [{ shardCapacity: 0 }, /shardCapacity must be a positive whole number, got 0$/],
    ];
    for (const [content, message] of cases) {
      writeFileSync(config, JSON.stringify(content));
      assert.throws(
        () => parse(["--config", config]),
        (error) => error instanceof RiakConfigError && message.test(error.message),
        JSON.stringify(content),
      );
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
