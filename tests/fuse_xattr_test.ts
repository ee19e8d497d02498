/**
 * End-to-end: extended attributes through a passthrough mount made by dist/riakfs, driven
 * by python3 (os.*xattr, and libc's l*xattr through ctypes where the buffer size matters),
 * checked through the mount and in the source directory.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { run, tempDir, withMount } from "./_mount.ts";
import { runRiakfs } from "./_riakfs.ts";

const { EEXIST, ENODATA, EOPNOTSUPP, EPERM, ERANGE } = os.constants.errno;
/** setxattr(2) flags. */
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** One xattr call; `size` is the caller's buffer (0 asks for the length). */
type XattrCall =
  | { op: "get"; path: string; name: string; size: number }
  | { op: "list"; path: string; size: number }
  | { op: "set"; path: string; name: string; value: Uint8Array; flags?: number }
  | { op: "remove"; path: string; name: string };

/** What a call returned: its errno, or the length and bytes it got. */
interface XattrOutcome {
  errno?: number;
  size?: number;
  bytes?: Uint8Array;
}

/** python3 running each call exactly as a C program would (l* forms: symlinks not followed). */
const XATTR_SCRIPT = `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for function in (libc.lgetxattr, libc.llistxattr):
    function.restype = ctypes.c_ssize_t
def raw(function, size, *args):
    buffer = ctypes.create_string_buffer(max(size, 1))
    length = function(*args, buffer if size else None, ctypes.c_size_t(size))
    if length < 0:
        return {"errno": ctypes.get_errno()}
    return {"size": length, "hex": buffer.raw[:length].hex() if size else ""}
outcomes = []
for call in json.loads(sys.argv[1]):
    path, name = call["path"].encode(), call.get("name", "").encode()
    try:
        if call["op"] == "get":
            outcomes.append(raw(libc.lgetxattr, call["size"], path, name))
        elif call["op"] == "list":
            outcomes.append(raw(libc.llistxattr, call["size"], path))
        elif call["op"] == "set":
            value = bytes.fromhex(call["hex"])
            os.setxattr(path, name, value, call.get("flags", 0), follow_symlinks=False)
            outcomes.append({})
        else:
            os.removexattr(path, name, follow_symlinks=False)
            outcomes.append({})
    except OSError as error:
        outcomes.append({"errno": error.errno})
print(json.dumps(outcomes))
`;

/** Runs the calls in order in one python3 process. */
async function xattrs(calls: XattrCall[]): Promise<XattrOutcome[]> {
  const encoded = calls.map((call) =>
    "value" in call
      ? { ...call, value: undefined, hex: Buffer.from(call.value).toString("hex") }
      : call
  );
  const result = await run("python3", ["-c", XATTR_SCRIPT, JSON.stringify(encoded)]);
  assert.equal(result.code, 0, result.stderr);
  const outcomes = JSON.parse(result.stdout) as { errno?: number; size?: number; hex?: string }[];
  return outcomes.map(({ errno, size, hex }) => ({
    errno,
    size,
    bytes: hex === undefined ? undefined : new Uint8Array(Buffer.from(hex, "hex")),
  }));
}

async function xattr(call: XattrCall): Promise<XattrOutcome> {
  return (await xattrs([call]))[0];
}

/** The value of `name` as a string, or the errno. */
async function valueOf(path: string, name: string): Promise<string | number> {
  const outcome = await xattr({ op: "get", path, name, size: 65536 });
  return outcome.errno ?? Buffer.from(outcome.bytes!).toString();
}

/** The names, sorted, or the errno. */
async function namesOf(path: string): Promise<string[] | number> {
  const outcome = await xattr({ op: "list", path, size: 65536 });
  if (outcome.errno !== undefined) return outcome.errno;
  return Buffer.from(outcome.bytes!).toString().split("\0").filter((name) => name).sort();
}

const text = (value: string) => new TextEncoder().encode(value);

Deno.test("extended attributes through a passthrough mount", async (t) => {
  await withMount(async ({ source, mountpoint }) => {
    const m = (name: string) => join(mountpoint, name);
    const s = (name: string) => join(source, name);
    fs.writeFileSync(s("file"), "data");

    await t.step("user.* round trip, seen in the source too", async () => {
      assert.deepEqual(
        await xattr({ op: "set", path: m("file"), name: "user.k", value: text("v1") }),
        {
          errno: undefined,
          size: undefined,
          bytes: undefined,
        },
      );
      assert.equal(await valueOf(m("file"), "user.k"), "v1");
      assert.equal(await valueOf(s("file"), "user.k"), "v1");
    });

    await t.step("a binary value with every byte value", async () => {
      const every = new Uint8Array(Array.from({ length: 256 }, (_, i) => i));
      await xattr({ op: "set", path: m("file"), name: "user.bin", value: every });
      const got = await xattr({ op: "get", path: m("file"), name: "user.bin", size: 4096 });
      assert.deepEqual(got.bytes, every);
      const inSource = await xattr({ op: "get", path: s("file"), name: "user.bin", size: 4096 });
      assert.deepEqual(inSource.bytes, every);
    });

    await t.step("size 0 asks for the length; a buffer too small is ERANGE", async () => {
      const [probe, exact, short, listProbe, listShort] = await xattrs([
        { op: "get", path: m("file"), name: "user.k", size: 0 },
        { op: "get", path: m("file"), name: "user.k", size: 2 },
        { op: "get", path: m("file"), name: "user.k", size: 1 },
        { op: "list", path: m("file"), size: 0 },
        { op: "list", path: m("file"), size: 1 },
      ]);
      assert.equal(probe.size, 2);
      assert.equal(Buffer.from(exact.bytes!).toString(), "v1");
      assert.equal(short.errno, ERANGE);
      assert.equal(listProbe.size, "user.k\0user.bin\0".length);
      assert.equal(listShort.errno, ERANGE);
    });

    await t.step("listxattr shows the names", async () => {
      assert.deepEqual(await namesOf(m("file")), ["user.bin", "user.k"]);
    });

    await t.step(
      "XATTR_CREATE of an existing name is EEXIST, XATTR_REPLACE of a missing one ENODATA",
      async () => {
        const [create, replace, replaced] = await xattrs([
          { op: "set", path: m("file"), name: "user.k", value: text("v2"), flags: XATTR_CREATE },
          { op: "set", path: m("file"), name: "user.nope", value: text("x"), flags: XATTR_REPLACE },
          { op: "set", path: m("file"), name: "user.k", value: text("v3"), flags: XATTR_REPLACE },
        ]);
        assert.equal(create.errno, EEXIST);
        assert.equal(replace.errno, ENODATA);
        assert.equal(replaced.errno, undefined);
        assert.equal(await valueOf(m("file"), "user.k"), "v3");
      },
    );

    await t.step("removexattr; a missing name is ENODATA", async () => {
      const [removed, again, gone] = await xattrs([
        { op: "remove", path: m("file"), name: "user.k" },
        { op: "remove", path: m("file"), name: "user.k" },
        { op: "get", path: m("file"), name: "user.k", size: 64 },
      ]);
      assert.equal(removed.errno, undefined);
      assert.equal(again.errno, ENODATA);
      assert.equal(gone.errno, ENODATA);
      assert.deepEqual(await namesOf(s("file")), ["user.bin"]);
      assert.equal(await valueOf(m("file"), "user.never-set"), ENODATA);
    });

    await t.step("on a directory", async () => {
      fs.mkdirSync(s("dir"));
      await xattr({ op: "set", path: m("dir"), name: "user.d", value: text("dirval") });
      assert.equal(await valueOf(m("dir"), "user.d"), "dirval");
      assert.deepEqual(await namesOf(m("dir")), ["user.d"]);
      assert.equal(await valueOf(s("dir"), "user.d"), "dirval");
    });

    await t.step("on a symlink: the link itself, as Linux answers it", async () => {
      fs.symlinkSync("file", s("link"));
      const throughMount = await xattr({
        op: "set",
        path: m("link"),
        name: "user.k",
        value: text("x"),
      });
      const direct = await xattr({ op: "set", path: s("link"), name: "user.k", value: text("x") });
      assert.equal(throughMount.errno, EPERM);
      assert.equal(throughMount.errno, direct.errno);
      // The target has user.bin; the link itself has nothing: it was not followed.
      assert.equal(await valueOf(m("link"), "user.bin"), ENODATA);
      assert.deepEqual(await namesOf(m("link")), []);
    });

    await t.step("an xattr set directly in the source is seen through the mount", async () => {
      fs.writeFileSync(s("legacy"), "old");
      await xattr({ op: "set", path: s("legacy"), name: "user.origin", value: text("nfs") });
      assert.equal(await valueOf(m("legacy"), "user.origin"), "nfs");
      assert.deepEqual(await namesOf(m("legacy")), ["user.origin"]);
    });
  });
});

/** Runs a shell command as uid/gid 65534 with no supplementary groups. */
function asNobody(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", command]);
}

/**
 * GETXATTR requests so far: all of them, and those the event loop (not a reader) answered;
 * LISTXATTR requests the event loop answered.
 */
async function getxattrCounts(runDir: string, mountpoint: string) {
  const result = await runRiakfs(["status", "--json", "--run-dir", runDir, mountpoint]);
  assert.equal(result.code, 0, result.stderr);
  const metrics = JSON.parse(result.stdout).metrics;
  const all = metrics.ops.getxattr ?? 0;
  const lists = metrics.ops.listxattr ?? 0;
  return {
    all,
    onLoop: all - (metrics.opsInReaders?.getxattr ?? 0),
    listOnLoop: lists - (metrics.opsInReaders?.listxattr ?? 0),
  };
}

Deno.test("with xattrs served, writes cost no xattr round trip and still clear setuid/setgid", async (t) => {
  const runDir = tempDir("riakfs-xattr-run-");
  try {
    await withMount(async ({ source, mountpoint }) => {
      const m = (name: string) => join(mountpoint, name);
      const s = (name: string) => join(source, name);

      await t.step(
        "64 writes of 1 MiB and 20 new files: at most a few GETXATTRs on the loop",
        async () => {
          fs.writeFileSync(s("existing"), "");
          const before = await getxattrCounts(runDir, mountpoint);
          const handle = await fs.promises.open(m("existing"), "r+");
          const chunk = Buffer.alloc(1 << 20, 1);
          for (let i = 0; i < 64; i++) await handle.write(chunk, 0, chunk.length, i << 20);
          await handle.close();
          for (let i = 0; i < 20; i++) await fs.promises.writeFile(m(`new-${i}`), "small");
          const after = await getxattrCounts(runDir, mountpoint);
          // Before HANDLE_KILLPRIV_V2: one security.capability probe per write() on the loop
          // (84 here). Now: one per inode, and new files' probes are answered by the readers.
          assert.ok(
            after.onLoop - before.onLoop <= 3,
            `${after.onLoop - before.onLoop} on the loop`,
          );
          assert.ok(after.all - before.all <= 23, `${after.all - before.all} in all`);
        },
      );

      await t.step(
        "a file without xattrs: asked once on the loop, then by the readers until its ctime moves",
        async () => {
          fs.writeFileSync(s("plain"), "no xattrs");
          // "None at this ctime" is trusted only for a ctime 100 ms old (coarse timestamps):
          // the file must be that old before the first ask, as a file on an old disk is.
          const ctimeMs = Number(fs.lstatSync(s("plain"), { bigint: true }).ctimeNs / 1_000_000n);
          const settledIn = ctimeMs + 150 - Date.now();
          if (settledIn > 0) await new Promise((resolve) => setTimeout(resolve, settledIn));
          assert.equal(await valueOf(m("plain"), "user.first"), ENODATA);
          const asks: XattrCall[] = [
            { op: "get", path: m("plain"), name: "security.selinux", size: 256 },
            { op: "get", path: m("plain"), name: "system.posix_acl_access", size: 256 },
            { op: "list", path: m("plain"), size: 0 },
          ];
          // The first round may still meet the loop (once: it learns again); the second
          // round must be the readers' alone.
          await xattrs(asks);
          const before = await getxattrCounts(runDir, mountpoint);
          const [selinux, acl, names] = await xattrs(asks);
          assert.equal(selinux.errno, ENODATA);
          assert.equal(acl.errno, ENODATA);
          assert.equal(names.size, 0);
          assert.deepEqual(await namesOf(m("plain")), []);
          const after = await getxattrCounts(runDir, mountpoint);
          assert.equal(
            after.onLoop - before.onLoop,
            0,
            `getxattr answered on the loop: ${JSON.stringify({ before, after })}`,
          );
          assert.equal(after.all - before.all, 2);
          assert.equal(after.listOnLoop - before.listOnLoop, 0, "listxattr answered on the loop");
          // Set behind the mount: the ctime moves, so the readers pass the next ask on.
          await xattr({ op: "set", path: s("plain"), name: "user.late", value: text("seen") });
          assert.equal(await valueOf(m("plain"), "user.late"), "seen");
          assert.deepEqual(await namesOf(m("plain")), ["user.late"]);
          assert.equal(await valueOf(m("plain"), "user.other"), ENODATA);
        },
      );

      await t.step(
        "a write, append, O_TRUNC or truncate by a non-root user clears setuid/setgid",
        async () => {
          const cases: [string, string, number, number][] = [
            ["write", "printf x | dd of=FILE conv=notrunc status=none", 0o6775, 0o775],
            ["append", "echo more >> FILE", 0o6775, 0o775],
            ["otrunc", ": > FILE", 0o6775, 0o775],
            ["truncate", "truncate -s 2 FILE", 0o6775, 0o775],
            // setgid stays when the group may not execute, as on a local filesystem.
            ["nogroupexec", "printf x | dd of=FILE conv=notrunc status=none", 0o6764, 0o2764],
          ];
          for (const [name, command, mode, expected] of cases) {
            fs.writeFileSync(s(name), "data");
            fs.chownSync(s(name), 65534, 65534);
            fs.chmodSync(s(name), mode);
            const result = await asNobody(command.replace("FILE", m(name)));
            assert.equal(result.code, 0, `${name}: ${result.stderr}`);
            const got = fs.statSync(s(name)).mode & 0o7777;
            assert.equal(got.toString(8), expected.toString(8), name);
          }
        },
      );

      await t.step("root's writes keep setuid, as on a local filesystem", async () => {
        fs.writeFileSync(s("rootwrite"), "data");
        fs.chmodSync(s("rootwrite"), 0o6775);
        await fs.promises.appendFile(m("rootwrite"), "more");
        assert.equal((fs.statSync(s("rootwrite")).mode & 0o7777).toString(8), "6775");
      });

      await t.step("only the owner or root may change a system.* xattr", async () => {
        // POSIX ACL names the kernel checks itself; other system.* names reach riakfs,
        // whose helper runs as root.
        fs.writeFileSync(s("acl"), "data");
        fs.chmodSync(s("acl"), 0o666);
        const remove = (path: string) =>
          asNobody(
            `/usr/bin/python3 -c 'import os, sys
try:
    os.removexattr(sys.argv[1], "system.riakfs_test")
except OSError as error:
    print(error.errno)' ${path}`,
          );
        const others = await remove(m("acl"));
        assert.equal(others.stdout.trim(), String(EPERM), others.stderr);
        fs.chownSync(s("acl"), 65534, 65534);
        const owners = await remove(m("acl"));
        // The owner's request reaches the source, whose ext4 has no such name space.
        assert.equal(owners.stdout.trim(), String(EOPNOTSUPP), owners.stderr);
      });
    }, { options: "allow_other", args: ["--run-dir", runDir] });
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
});

Deno.test("without python3 on the host, xattrs answer EOPNOTSUPP and the log says why", async () => {
  // A PATH with what mounting needs and no python3; this test runs python3 by its full path.
  const python = fs.realpathSync("/usr/bin/python3");
  const bin = tempDir("riakfs-nopython-");
  for (const tool of ["mount", "umount", "sh"]) {
    fs.symlinkSync((await run("sh", ["-c", `command -v ${tool}`])).stdout.trim(), join(bin, tool));
  }
  const path = process.env.PATH;
  process.env.PATH = bin;
  try {
    await withMount(async ({ source, mountpoint, stderr }) => {
      fs.writeFileSync(join(source, "file"), "data");
      const script = [
        "import os, sys",
        "for call in (lambda: os.setxattr(sys.argv[1], 'user.k', b'v'),",
        "             lambda: os.getxattr(sys.argv[1], 'user.k'),",
        "             lambda: os.listxattr(sys.argv[1])):",
        "    try:",
        "        call()",
        "        print(0)",
        "    except OSError as e:",
        "        print(e.errno)",
      ].join("\n");
      const result = await run(python, ["-c", script, join(mountpoint, "file")]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.trim().split("\n"), Array(3).fill(String(EOPNOTSUPP)));
      const told = stderr().split("\n").filter((line) => line.includes("python3 is needed"));
      assert.equal(told.length, 1, stderr());
      // Everything else works without it.
      assert.equal(fs.readFileSync(join(mountpoint, "file"), "utf8"), "data");
    });
  } finally {
    process.env.PATH = path;
    fs.rmSync(bin, { recursive: true, force: true });
  }
});
