/**
 * End-to-end: the errno of every failure through a passthrough mount, permissions for an
 * unprivileged user, and attempts to reach outside the source.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { run, tempDir, withMount } from "./_mount.ts";

async function rejectsWith(action: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(action, (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** Runs a shell command as uid/gid 65534 with no supplementary groups. */
function asNobody(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return run("setpriv", [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "sh",
    "-c",
    command,
  ]);
}

Deno.test("errors carry the right errno", async () => {
  await withMount(async ({ mountpoint }) => {
    const m = (name: string) => join(mountpoint, name);
    await fs.promises.writeFile(m("file"), "x");
    await fs.promises.mkdir(m("dir"));
    await fs.promises.writeFile(m("dir/inside"), "y");

    await rejectsWith(fs.promises.readFile(m("missing")), "ENOENT");
    await rejectsWith(fs.promises.stat(m("missing/deeper")), "ENOENT");
    await rejectsWith(fs.promises.unlink(m("missing")), "ENOENT");
    await rejectsWith(fs.promises.mkdir(m("dir")), "EEXIST");
    await rejectsWith(fs.promises.writeFile(m("file"), "z", { flag: "wx" }), "EEXIST");
    await rejectsWith(fs.promises.symlink("t", m("file")), "EEXIST");
    await rejectsWith(fs.promises.link(m("file"), m("dir")), "EEXIST");
    await rejectsWith(fs.promises.rmdir(m("dir")), "ENOTEMPTY");
    await rejectsWith(fs.promises.rename(m("file"), m("dir")), "EISDIR");
    await rejectsWith(fs.promises.readFile(m("dir")), "EISDIR");
    await rejectsWith(fs.promises.writeFile(m("dir"), "x"), "EISDIR");
    await rejectsWith(fs.promises.mkdir(m("file/sub")), "ENOTDIR");
    await rejectsWith(fs.promises.rmdir(m("file")), "ENOTDIR");
    await rejectsWith(fs.promises.readdir(m("file")), "ENOTDIR");
    // unlink(1) calls unlink(2) itself (Deno's fs.unlink removes directories differently).
    const unlinkDir = await run("unlink", [m("dir")]);
    assert.notEqual(unlinkDir.code, 0);
    assert.match(unlinkDir.stderr, /Is a directory/);
    await rejectsWith(fs.promises.writeFile(m("n".repeat(256)), "x"), "ENAMETOOLONG");
    await rejectsWith(fs.promises.mkdir(m("n".repeat(256))), "ENAMETOOLONG");
    await rejectsWith(fs.promises.readlink(m("file")), "EINVAL");
    // 255 bytes is still fine.
    await fs.promises.writeFile(m("n".repeat(255)), "ok");
    assert.equal(await fs.promises.readFile(m("n".repeat(255)), "utf8"), "ok");
  });
});

/** pwrite(2) at each offset (Python's ints are exact), then truncate(2); prints each errno. */
const BEYOND_2_53 = `
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
def attempt(action):
    try:
        action()
        return "ok"
    except OSError as error:
        return errno.errorcode[error.errno]
print(" ".join([attempt(lambda: os.pwrite(fd, b"Z", offset)) for offset in (2**53, 2**53 + 1)]
    + [attempt(lambda: os.truncate(sys.argv[1], 2**53 + 1))]))
`;

Deno.test("writes and truncates beyond 2^53 - 1 answer EFBIG and leave the file as it was", async () => {
  await withMount(async ({ mountpoint, source }) => {
    await fs.promises.writeFile(join(mountpoint, "file"), "abc");
    const result = await run("python3", ["-c", BEYOND_2_53, join(mountpoint, "file")]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "EFBIG EFBIG EFBIG");
    assert.equal(fs.readFileSync(join(source, "file"), "utf8"), "abc");
  });
});

Deno.test("an unprivileged user is checked against the modes (EACCES) and owns what it creates", async () => {
  await withMount(async ({ mountpoint, source }) => {
    const m = (name: string) => join(mountpoint, name);
    await fs.promises.writeFile(m("secret"), "root only", { mode: 0o600 });
    await fs.promises.writeFile(m("public"), "everyone reads", { mode: 0o644 });
    await fs.promises.mkdir(m("closed"), { mode: 0o755 });
    await fs.promises.mkdir(m("open"));
    await fs.promises.chmod(m("open"), 0o777); // mkdir's mode went through our umask.

    const readSecret = await asNobody(`cat ${m("secret")}`);
    assert.notEqual(readSecret.code, 0);
    assert.match(readSecret.stderr, /Permission denied/);
    const readPublic = await asNobody(`cat ${m("public")}`);
    assert.equal(readPublic.code, 0, readPublic.stderr);
    assert.equal(readPublic.stdout, "everyone reads");
    const writePublic = await asNobody(`echo no >> ${m("public")}`);
    assert.notEqual(writePublic.code, 0);
    assert.match(writePublic.stderr, /Permission denied/);
    const createInClosed = await asNobody(`touch ${m("closed/new")}`);
    assert.notEqual(createInClosed.code, 0);
    assert.match(createInClosed.stderr, /Permission denied/);
    const chmodOthers = await asNobody(`chmod 777 ${m("public")}`);
    assert.notEqual(chmodOthers.code, 0);
    assert.match(chmodOthers.stderr, /Operation not permitted/);

    const create = await asNobody(
      `umask 022 && echo mine > ${m("open/mine")} && mkdir ${m("open/sub")} && ln -s x ${
        m("open/sym")
      }`,
    );
    assert.equal(create.code, 0, create.stderr);
    for (const name of ["open/mine", "open/sub", "open/sym"]) {
      const stat = fs.lstatSync(join(source, name));
      assert.deepEqual([stat.uid, stat.gid], [65534, 65534], name);
    }
    assert.equal(fs.statSync(join(source, "open/mine")).mode & 0o777, 0o644);
    assert.equal(fs.statSync(join(source, "open/sub")).mode & 0o777, 0o755);
  }, { options: "allow_other" });
});

Deno.test("nothing reaches outside the source through the mount", async () => {
  const outside = tempDir("riakfs-outside-");
  try {
    const target = join(outside, "target");
    fs.writeFileSync(target, "outside");
    fs.chmodSync(target, 0o644);
    await withMount(async ({ mountpoint, source }) => {
      const m = (name: string) => join(mountpoint, name);
      fs.symlinkSync(target, join(source, "abs-link"));
      fs.symlinkSync("../../../../../../../../..", join(source, "up-link"));
      // The link itself is what the mount shows; its target string is passed on unchanged.
      assert.ok((await fs.promises.lstat(m("abs-link"))).isSymbolicLink());
      assert.equal(await fs.promises.readlink(m("abs-link")), target);
      // Operations on the link change the link, never its target.
      await fs.promises.lchown(m("abs-link"), 4321, 4321);
      assert.equal(fs.lstatSync(join(source, "abs-link")).uid, 4321);
      assert.equal(fs.statSync(target).uid, 0);
      await fs.promises.lutimes(m("abs-link"), 1000, 1000);
      assert.notEqual(fs.statSync(target).mtimeMs, 1_000_000);
      await fs.promises.rename(m("abs-link"), m("moved-link"));
      await fs.promises.unlink(m("moved-link"));
      assert.equal(fs.readFileSync(target, "utf8"), "outside");
      // A relative link climbing up is resolved by the kernel from the mount's side, and
      // the mount never looks up ".." itself: the source's parent is not listed.
      assert.ok((await fs.promises.lstat(m("up-link"))).isSymbolicLink());
      const names = await fs.promises.readdir(mountpoint);
      assert.deepEqual(names.sort(), ["up-link"]);
    });
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
  }
});
