/**
 * Bad input to every subcommand, as an operator gives it by mistake: malformed numbers,
 * empty values, paths that cannot be used, Riak addresses where nothing, or something else,
 * listens. Each is refused with one line naming it and a non-zero exit, and leaves nothing
 * behind: no mount, no process, no file where none was asked for.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { isMounted, run, tempDir, waitFor, withMount } from "./_mount.ts";
import { RIAKFS_BINARY, type RunResult, runRiakfs } from "./_riakfs.ts";

/** The first line names `pattern`; any other line is the usual `--help` hint. */
function assertOneLine(result: RunResult, pattern: RegExp, code: number): void {
  const [line, ...rest] = result.stderr.trim().split("\n");
  assert.equal(result.code, code, result.stderr);
  assert.match(line, /^riakfs[ :]/, result.stderr);
  assert.match(line, pattern, result.stderr);
  assert.deepEqual(rest.filter((hint) => !hint.includes("--help")), [], result.stderr);
}

/** A TCP listener that counts connections and never answers: where no command may get to. */
interface Listener {
  address: string;
  connections(): number;
  close(): Promise<void>;
}

/** Starts a {@link Listener} on a free port of 127.0.0.1; `onConnection` may answer. */
async function listen(onConnection: (socket: Socket) => void = () => {}): Promise<Listener> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    connections: () => count,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A source, a mountpoint and a listener no refused command may reach. */
interface RefusalPlace {
  base: string;
  source: string;
  mountpoint: string;
  riak: Listener;
}

/**
 * Runs the cases `casesIn` makes in a fresh place, its base the working directory (arguments,
 * environment, the one line expected): each must be a usage error (exit 2) that reached
 * neither Riak nor the mount; `checks` has the rest, `after` what the place must hold at the end.
 */
async function assertRefused(
  casesIn: (place: RefusalPlace) => Array<[string[], Record<string, string>, RegExp]>,
  checks: { each?: (result: RunResult) => void; after?: (place: RefusalPlace) => void } = {},
): Promise<void> {
  const base = tempDir("riakfs-bad-");
  const riak = await listen();
  const place = { base, source: join(base, "source"), mountpoint: join(base, "mnt"), riak };
  try {
    fs.mkdirSync(place.source);
    fs.mkdirSync(place.mountpoint);
    for (const [args, env, pattern] of casesIn(place)) {
      const result = await runRiakfs(args, {
        cwd: base,
        env: { ...process.env as Record<string, string>, RIAKFS_RIAK: riak.address, ...env },
      });
      assertOneLine(result, pattern, 2);
      checks.each?.(result);
    }
    assert.equal(riak.connections(), 0, "refused before anything was asked of Riak");
    assert.equal(isMounted(place.mountpoint), false);
    checks.after?.(place);
  } finally {
    // A case that mounted after all (a regression) must not leave its mount behind.
    await clearMount(place.mountpoint);
    await riak.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** Pids of the processes whose command line names `path` (a mount's serving process). */
function processesNaming(path: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.includes(path)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * Unmounts `mountpoint` if a failed test left it mounted, and kills by pid what still serves
 * it, so a regression fails the test without leaving a mount behind.
 */
async function clearMount(mountpoint: string): Promise<void> {
  if (isMounted(mountpoint)) await run("umount", ["-l", mountpoint]);
  for (const pid of processesNaming(mountpoint)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs `body` with a fresh SOURCE holding one file and an empty MOUNTPOINT in `base`; then
 * clears what a regression mounted there, and removes it all.
 */
async function withMountPlace(
  body: (place: { base: string; source: string; mountpoint: string }) => Promise<void>,
): Promise<void> {
  const base = tempDir("riakfs-bad-");
  const place = { base, source: join(base, "source"), mountpoint: join(base, "mnt") };
  try {
    fs.mkdirSync(place.source);
    fs.mkdirSync(place.mountpoint);
    fs.writeFileSync(join(place.source, "kept"), "legacy data");
    await body(place);
  } finally {
    await clearMount(place.mountpoint);
    fs.rmSync(base, { recursive: true, force: true });
  }
}

Deno.test("mount: a pid file that cannot be written is refused, and no mount stays behind", async () => {
  await withMountPlace(async ({ base, source, mountpoint }) => {
    const run = join(base, "run");
    for (const pidFile of [join(base, "missing", "riakfs.pid"), base]) {
      const result = await runRiakfs([
        "mount",
        "--preset",
        "passthrough",
        "--run-dir",
        run,
        "--pid-file",
        pidFile,
        source,
        mountpoint,
      ]);
      assertOneLine(result, new RegExp(`--pid-file ${pidFile}: E(NOENT|ISDIR)`), 1);
      assert.ok(
        await waitFor(
          () => !isMounted(mountpoint) && processesNaming(mountpoint).length === 0,
          5_000,
        ),
        "the mount and its serving process are gone",
      );
    }
    assert.deepEqual(fs.readdirSync(source), ["kept"]);
    assert.equal(fs.readFileSync(join(source, "kept"), "utf8"), "legacy data");
  });
});

Deno.test("numbers are decimal digits: an empty, blank, hex or exponent value is refused by name", async () => {
  await assertRefused(({ base, source, mountpoint }) => {
    fs.writeFileSync(join(source, "kept"), "legacy data");
    const mount = ["mount", "--preset", "migrate", "--run-dir", join(base, "run")];
    const prewarm = ["prewarm", source, "--state-dir", join(base, "state")];
    // Number() took "" and " " as 0: gc --delete --min-age "" deleted the chunks of uploads
    // under way, and RIAKFS_W= asked Riak for a write quorum of 0.
    return [
      [["gc", "--delete", "--min-age", ""], {}, /--min-age must be a number of seconds, got ""/],
      [["gc", "--delete", "--min-age", " "], {}, /--min-age .*got " "/],
      [["gc", "--min-age", "0x10"], {}, /--min-age .*got "0x10"/],
      [["ls", "--w", ""], {}, /--w must be a number, one, quorum, all or default, got ""/],
      [["ls"], { RIAKFS_W: "" }, /RIAKFS_W \(--w\) must be .*got ""/],
      [["ls", "--dw", " 1"], {}, /--dw must be .*got " 1"/],
      [["ls", "--connect-timeout", "1e3"], {}, /--connect-timeout must be .*got "1e3"/],
      [["stat", "x", "--request-timeout", "0x10"], {}, /--request-timeout .*got "0x10"/],
      [["ls", "--ping-timeout", "0"], {}, /--ping-timeout must be a positive whole number/],
      [
        ["ls"],
        { RIAKFS_STALL_CHECK_AFTER: "1s" },
        /RIAKFS_STALL_CHECK_AFTER \(--stall-check-after\) must be a whole number .*got "1s"/,
      ],
      [[...mount, "--stall-check-after", "-1", source, mountpoint], {}, /--stall-check-after/],
      [
        [...mount, source, mountpoint],
        { RIAKFS_DELETE_QUIET_PERIOD: "1m" },
        /^riakfs: RIAKFS_DELETE_QUIET_PERIOD \(--delete-quiet-period\) must be .*got "1m"/,
      ],
      [
        [...mount, "--delete-quiet-period", "", source, mountpoint],
        { RIAKFS_DELETE_QUIET_PERIOD: "60" },
        /^riakfs: --delete-quiet-period must be .*got ""/,
      ],
      [
        ["cat", "x"],
        { RIAKFS_CHUNK_SIZE: " 1024" },
        /RIAKFS_CHUNK_SIZE \(--chunk-size\) .*" 1024"/,
      ],
      // A put per chunk: --chunk-size 1 made a 1 MB file take minutes, and each command agrees.
      [["ls", "--chunk-size", "1"], {}, /--chunk-size must be at least 4096, got 1/],
      [[...prewarm, "--chunk-size", "64"], {}, /--chunk-size must be at least 4096, got 64/],
      [
        ["cat", "x"],
        { RIAKFS_CHUNK_SIZE: "8" },
        /RIAKFS_CHUNK_SIZE \(--chunk-size\) must be at least 4096/,
      ],
      [["status", mountpoint, "--timeout", ""], {}, /--timeout .*got ""/],
      [["umount", mountpoint, "--drain-timeout", ""], {}, /^riakfs: --drain-timeout .*got ""/],
      [[...mount, "--request-timeout", " 5", source, mountpoint], {}, /--request-timeout .*" 5"/],
      [[...mount, "-o", "attr_timeout=", source, mountpoint], {}, /-o attr_timeout .*got ""/],
      [[...mount, "-o", "entry_timeout=Infinity", source, mountpoint], {}, /entry_timeout/],
      [[...prewarm, "--max-rate", "0x10"], {}, /--max-rate .*got "0x10"/],
      [[...prewarm, "--progress-interval", ""], {}, /--progress-interval .*got ""/],
    ];
  }, {
    after: ({ base, source }) => {
      assert.deepEqual(fs.readdirSync(source), ["kept"], "no spool made");
      assert.deepEqual(fs.readdirSync(base).sort(), ["mnt", "source"], "no state or run directory");
    },
  });
});

Deno.test("an empty path option or RIAKFS_RUN_DIR is refused, not taken as the working directory", async () => {
  await assertRefused(({ base, source, mountpoint }) => {
    fs.writeFileSync(join(source, "kept"), "legacy data");
    const mount = (preset: string, ...flags: string[]) => [
      "mount",
      "--preset",
      preset,
      "--run-dir",
      join(base, "run"),
      ...flags,
      source,
      mountpoint,
    ];
    const unset = { RIAKFS_RUN_DIR: "" };
    // `--spool "$SPOOL"` with SPOOL unset put a spool's journal in the working directory;
    // RIAKFS_RUN_DIR= put the socket and pid file in / and the log in the working directory,
    // where status and umount (looking in /run/riakfs, or the working directory) found none.
    return [
      [mount("drain", "--spool", ""), {}, /^riakfs: --spool must not be empty/],
      [mount("passthrough", "--pid-file", ""), {}, /^riakfs: --pid-file must not be empty/],
      [mount("passthrough", "--log-file", ""), {}, /^riakfs: --log-file must not be empty/],
      [mount("passthrough", "--run-dir", ""), {}, /^riakfs: --run-dir must not be empty/],
      [
        ["mount", "--preset", "drain", source, mountpoint],
        unset,
        /^riakfs: RIAKFS_RUN_DIR \(--run-dir\) must not be empty/,
      ],
      [["status", mountpoint], unset, /RIAKFS_RUN_DIR.* must not be empty/],
      [["umount", mountpoint, "--run-dir", ""], {}, /--run-dir.* must not be empty/],
    ];
  }, {
    after: ({ base, source }) => {
      assert.deepEqual(fs.readdirSync(source), ["kept"], "no spool made");
      assert.deepEqual(fs.readdirSync(base).sort(), ["mnt", "source"], "nothing made here");
    },
  });
});

Deno.test("mount without root or CAP_SYS_ADMIN says so in one line, and mounts nothing", async () => {
  await withMountPlace(async ({ base, source, mountpoint }) => {
    // Another user may look at the directories; the run directory and /dev/fuse stay root's.
    fs.chmodSync(base, 0o755);
    const users: Array<[string[], RegExp]> = [
      [["--reuid=65534", "--regid=65534", "--clear-groups"], /\(uid 65534\) lacks/],
      [["--inh-caps=-sys_admin", "--bounding-set=-sys_admin"], /\(uid 0\) lacks/],
    ];
    for (const [user, who] of users) {
      for (const foreground of [[], ["--foreground"]]) {
        // Each failed on what it met first: the log file or socket in the run directory,
        // /dev/fuse, or mount(8), in words that did not say what was missing.
        const result = await runRiakfs([
          ...user,
          RIAKFS_BINARY,
          "mount",
          "--preset",
          "passthrough",
          "--run-dir",
          join(base, "run"),
          ...foreground,
          source,
          mountpoint,
        ], { binary: "/usr/bin/setpriv", cwd: base });
        assertOneLine(result, /^riakfs: mounting needs root or CAP_SYS_ADMIN, which /, 1);
        assert.match(result.stderr, who);
        assert.equal(isMounted(mountpoint), false);
      }
    }
    assert.deepEqual(fs.readdirSync(source), ["kept"]);
    assert.deepEqual(fs.readdirSync(base).sort(), ["mnt", "source"]);
  });
});

Deno.test("a passthrough mount refuses bad Riak settings too, though it uses none", async () => {
  await assertRefused(({ base, source, mountpoint }) => {
    fs.writeFileSync(join(source, "kept"), "legacy data");
    const config = join(base, "riakfs.json");
    fs.writeFileSync(config, '{ "bucket": "photos", }');
    const mount = ["mount", "--preset", "passthrough", "--run-dir", join(base, "run")];
    // Each mounted without a word; the first Riak-backed mount was the first to be told.
    return [
      [[...mount, "--config", config, source, mountpoint], {}, /--config .*riakfs\.json: /],
      [[...mount, "--riak", "riak1:8087,", source, mountpoint], {}, /empty entry/],
      [[...mount, source, mountpoint], { RIAKFS_CHUNK_SIZE: "1M" }, /RIAKFS_CHUNK_SIZE/],
    ];
  }, {
    after: ({ source }) => assert.deepEqual(fs.readdirSync(source), ["kept"], "not mounted"),
  });
});

Deno.test("a --run-dir that cannot be made is named in the one line, and nothing is mounted", async () => {
  await withMountPlace(async ({ base, source, mountpoint }) => {
    const file = join(base, "a-file");
    fs.writeFileSync(file, "");
    const runDirectory = join(file, "run");
    for (const foreground of [[], ["--foreground"]]) {
      const result = await runRiakfs([
        "mount",
        "--preset",
        "passthrough",
        ...foreground,
        "--run-dir",
        runDirectory,
        source,
        mountpoint,
      ]);
      // It said "ENOTDIR: not a directory, mkdir '...'", naming no option.
      assertOneLine(result, new RegExp(`^riakfs: --run-dir ${runDirectory}: cannot make it: `), 1);
      assert.equal(isMounted(mountpoint), false);
    }
  });
});

Deno.test("umount without root or CAP_SYS_ADMIN says so in one line, and leaves the mount", async () => {
  const runDirectory = tempDir("riakfs-run-");
  try {
    await withMount(async (mount) => {
      const result = await runRiakfs([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        RIAKFS_BINARY,
        "umount",
        "--run-dir",
        runDirectory,
        mount.mountpoint,
      ], { binary: "/usr/bin/setpriv" });
      // It said the mount's control socket was "not in" the run directory it was in.
      assertOneLine(result, /^riakfs: unmounting needs root or CAP_SYS_ADMIN, which /, 1);
      assert.ok(isMounted(mount.mountpoint), "still mounted");
    }, { args: ["--run-dir", runDirectory] });
  } finally {
    fs.rmSync(runDirectory, { recursive: true, force: true });
  }
});

Deno.test("a timeout longer than a timer holds is refused, not taken as 1 ms", async () => {
  await assertRefused(({ base, source, mountpoint }) => {
    const config = join(base, "riakfs.json");
    fs.writeFileSync(config, JSON.stringify({ requestTimeout: 3_000_000_000 }));
    const mount = ["mount", "--preset", "migrate", "--run-dir", join(base, "run")];
    const over = "2147483648";
    // Past 2^31 - 1 ms a timer fires after 1 ms: every Riak request, FUSE request or drain
    // timed out at once.
    return [
      [["ls", "--connect-timeout", over], {}, /--connect-timeout must be at most 2147483647/],
      [
        [...mount, "--ping-timeout", over, source, mountpoint],
        {},
        /--ping-timeout must be at most/,
      ],
      [["ls"], { RIAKFS_REQUEST_TIMEOUT: over }, /RIAKFS_REQUEST_TIMEOUT \(--request-timeout\) mu/],
      // Mount's --request-timeout is FUSE's (seconds): Riak's comes from the environment, which
      // a mount ignored, so a bad value (or a good one) there changed nothing.
      [
        [...mount, source, mountpoint],
        { RIAKFS_REQUEST_TIMEOUT: over },
        /^riakfs: RIAKFS_REQUEST_TIMEOUT must be at most 2147483647/,
      ],
      [["doctor", "--config", config], {}, /--config .*riakfs\.json: requestTimeout must be at/],
      [[...mount, "--request-timeout", "2147484", source, mountpoint], {}, /--request-timeout/],
      [[...mount, "--riak-read-timeout", over, source, mountpoint], {}, /--riak-read-timeout/],
      [[...mount, "--drain-timeout", over, source, mountpoint], {}, /--drain-timeout/],
      [["umount", mountpoint, "--drain-timeout", over], {}, /--drain-timeout .*2147483647/],
      [["status", mountpoint, "--timeout", over], {}, /--timeout .*2147483647/],
      [["prewarm", source, "--progress-interval", "2147484"], {}, /--progress-interval/],
    ];
  }, {
    each: (result) => assert.doesNotMatch(result.stderr, /TimeoutOverflowWarning/),
    after: ({ source }) => assert.deepEqual(fs.readdirSync(source), [], "no spool made"),
  });
});

Deno.test("serve-riak: an empty --data and a config file's unknown or mistyped setting are refused", async () => {
  const base = tempDir("riakfs-bad-");
  // Taken, so a regression fails at once (address in use) instead of serving forever.
  const taken = await listen();
  try {
    const config = join(base, "config.json");
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ lisen: "127.0.0.1:1", memory: true }, /unknown setting "lisen"/],
      [{ memory: "no", data: join(base, "data") }, /"memory" must be true or false, got "no"/],
      [{ memory: true, tls: { crt: "cert.pem" } }, /unknown setting "tls.crt"/],
      [{ data: 5 }, /"data" must be a non-empty text, got 5/],
    ];
    for (const [settings, pattern] of cases) {
      fs.writeFileSync(config, JSON.stringify({ listen: taken.address, ...settings }));
      const result = await runRiakfs(["serve-riak", "--config", config], { cwd: base });
      assertOneLine(result, new RegExp(`--config ${config}: ${pattern.source}`), 2);
    }
    const empty = await runRiakfs(["serve-riak", "--data", "", "--listen", taken.address], {
      cwd: base,
    });
    assertOneLine(empty, /serve-riak: --data must not be empty/, 2);
    assert.deepEqual(fs.readdirSync(base), ["config.json"], "no log or lock in the directory");
    assert.equal(taken.connections(), 0);
  } finally {
    await taken.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("umount and status refuse an empty MOUNTPOINT instead of taking the current directory", async () => {
  await withMount(async (mount) => {
    fs.writeFileSync(join(mount.mountpoint, "open"), "in use");
    // Run from inside the mount: "" was the mount itself, which --lazy detached.
    for (const args of [["umount", "", "--lazy"], ["status", ""]]) {
      const result = await runRiakfs(args, { cwd: mount.mountpoint });
      assertOneLine(result, /MOUNTPOINT must not be empty/, 2);
    }
    assert.ok(isMounted(mount.mountpoint), "still mounted");
    assert.equal(fs.readFileSync(join(mount.source, "open"), "utf8"), "in use");
  });
});

Deno.test("--riak: an empty entry, a bad port or host, or an IPv6 address without brackets is refused", async () => {
  const riak = await listen();
  try {
    const cases: Array<[string, RegExp]> = [
      [`${riak.address},`, /empty entry in the Riak node list '127\.0\.0\.1:\d+,'/],
      [`,${riak.address}`, /empty entry/],
      [`${riak.address},,127.0.0.1:2`, /empty entry/],
      [",", /no Riak node given/],
      ["127.0.0.1:0", /bad Riak node '127\.0\.0\.1:0'/],
      ["127.0.0.1:65536", /bad Riak node '127\.0\.0\.1:65536'/],
      ["127.0.0.1:", /bad Riak node '127\.0\.0\.1:'/],
      ["::1:8087", /bad Riak node '::1:8087' .*an IPv6 address in brackets/],
      // Host names that could only fail a lookup later, while the command ran on.
      [`user@h:8087,${riak.address}`, /bad Riak node 'user@h:8087'/],
      ["a b:8087", /bad Riak node 'a b:8087'/],
      ["256.1.1.1:8087", /bad Riak node '256\.1\.1\.1:8087'/],
    ];
    for (const [nodes, pattern] of cases) {
      // Named where the value came from: the command line, or the environment.
      const named: Array<[string[], string]> = [
        [["ls", "--riak", nodes], "--riak"],
        [["doctor"], "RIAKFS_RIAK \\(--riak\\)"],
      ];
      for (const [args, name] of named) {
        const result = await runRiakfs(args, {
          env: { ...process.env as Record<string, string>, RIAKFS_RIAK: nodes },
        });
        assertOneLine(result, new RegExp(`${name}: ${pattern.source}`), 2);
      }
    }
    assert.equal(riak.connections(), 0, "no node of a refused list was asked");
  } finally {
    await riak.close();
  }
});

Deno.test("an empty --config or RIAKFS_CONFIG is refused, not read as no config file", async () => {
  const base = tempDir("riakfs-bad-");
  try {
    const cases: Array<[string[], Record<string, string>]> = [
      [["ls", "--config", ""], {}],
      [["doctor"], { RIAKFS_CONFIG: "" }],
      [["serve-riak", "--memory", "--config", ""], {}],
    ];
    for (const [args, env] of cases) {
      const result = await runRiakfs(args, {
        cwd: base,
        env: { ...process.env as Record<string, string>, RIAKFS_RIAK: "127.0.0.1:1", ...env },
      });
      assertOneLine(result, /--config must not be empty/, 2);
    }
    assert.deepEqual(fs.readdirSync(base), [], "nothing made");
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

Deno.test("every command: --help exits 0; a missing or extra argument is a usage error", async () => {
  // command, too few arguments, too many (undefined: the command has no such case)
  const commands: Array<[string, string[] | undefined, string[] | undefined]> = [
    ["mount", ["--preset", "passthrough", "a"], ["--preset", "passthrough", "a", "b", "c"]],
    ["umount", [], ["a", "b"]],
    ["status", [], ["a", "b"]],
    ["stat", [], ["a", "b"]],
    ["cat", [], ["a", "b"]],
    ["prewarm", [], ["a", "b"]],
    ["progress", [], ["a", "b"]],
    ["verify", [], undefined],
    ["ls", undefined, ["a", "b"]],
    ["doctor", undefined, ["a"]],
    ["gc", undefined, ["a"]],
    ["demo", undefined, ["a"]],
    ["serve-riak", undefined, ["a"]],
  ];
  for (const [command, few, many] of commands) {
    const help = await runRiakfs([command, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^Usage: riakfs ${command} `));
    if (few) {
      assertOneLine(await runRiakfs([command, ...few]), /missing required argument/, 2);
    }
    if (many) assertOneLine(await runRiakfs([command, ...many]), /too many arguments/, 2);
  }
});

Deno.test("a Riak address where something else listens: one line naming the node, exit 1", async () => {
  const http = await listen((socket) =>
    socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"))
  );
  const silent = await listen();
  const closing = await listen((socket) => socket.destroy());
  try {
    const timeouts = ["--connect-timeout", "300", "--request-timeout", "300"];
    for (const riak of [http, silent, closing]) {
      for (const args of [["ls"], ["stat", "x"], ["cat", "x"], ["gc"]]) {
        const result = await runRiakfs([...args, "--riak", riak.address, ...timeouts]);
        assertOneLine(result, new RegExp(`^riakfs ${args[0]}: .*${riak.address}`), 1);
        assert.equal(result.stdout, "");
      }
      const doctor = await runRiakfs(["doctor", "--riak", riak.address, ...timeouts]);
      assert.equal(doctor.code, 1, doctor.stderr);
      assert.match(doctor.stdout, new RegExp(`FAIL node ${riak.address}`));
      assert.ok(riak.connections() > 0);
    }
  } finally {
    await Promise.all([http.close(), silent.close(), closing.close()]);
  }
});
