import assert from "node:assert/strict";
import * as fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import {
  XATTR_CREATE,
  XATTR_REPLACE,
  XATTR_SIZE_MAX,
  XattrError,
  XattrHelper,
} from "./xattr_helper.ts";
import { seededRandom } from "./random.ts";

const { E2BIG, EEXIST, EIO, ENODATA, ENOENT, EOPNOTSUPP, EPERM } = os.constants.errno;

/** A temp directory with one file, a helper, and both cleaned up afterwards. */
async function withHelper(
  body: (helper: XattrHelper, dir: string, file: string) => Promise<void>,
): Promise<void> {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "riakfs-xattr-"));
  const file = join(dir, "file");
  fs.writeFileSync(file, "data");
  const helper = new XattrHelper();
  try {
    await body(helper, dir, file);
  } finally {
    await helper.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function errnoOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof XattrError, String(error));
    return error.errno;
  }
  assert.fail("expected a failure");
}

Deno.test("no helper process runs before the first request", async () => {
  const helper = new XattrHelper();
  assert.equal(helper.pid, undefined);
  await helper.close();
});

Deno.test("set, get, list and remove round-trip; the kernel sees the same", async () => {
  await withHelper(async (helper, _dir, file) => {
    await helper.set(file, "user.colour", Buffer.from("blue"), 0);
    assert.equal((await helper.get(file, "user.colour")).toString(), "blue");
    assert.ok(helper.pid !== undefined);
    await helper.set(file, "user.size", Buffer.from("big"), 0);
    const names = (await helper.list(file)).map((name) => name.toString()).sort();
    assert.deepEqual(names, ["user.colour", "user.size"]);
    await helper.remove(file, "user.colour");
    assert.deepEqual((await helper.list(file)).map(String), ["user.size"]);
    assert.equal(await errnoOf(helper.get(file, "user.colour")), ENODATA);
    assert.equal(await errnoOf(helper.remove(file, "user.colour")), ENODATA);
  });
});

Deno.test("values are binary-safe up to 64 KiB; a larger one is E2BIG", async () => {
  await withHelper(async (helper, _dir, file) => {
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await helper.set(file, "user.bytes", every, 0);
    assert.deepEqual(await helper.get(file, "user.bytes"), every);
    await helper.set(file, "user.empty", new Uint8Array(0), 0);
    assert.equal((await helper.get(file, "user.empty")).byteLength, 0);
    const random = seededRandom(4);
    const big = Buffer.from(Array.from({ length: XATTR_SIZE_MAX }, () => random() * 256 | 0));
    // ext4 keeps at most one block of xattrs per inode; tmpfs takes the Linux maximum.
    const roomy = fs.mkdtempSync("/dev/shm/riakfs-xattr-");
    try {
      fs.writeFileSync(join(roomy, "big"), "");
      await helper.set(join(roomy, "big"), "user.big", big, 0);
      assert.deepEqual(await helper.get(join(roomy, "big"), "user.big"), big);
    } finally {
      fs.rmSync(roomy, { recursive: true, force: true });
    }
    const tooBig = new Uint8Array(XATTR_SIZE_MAX + 1);
    assert.equal(await errnoOf(helper.set(file, "user.huge", tooBig, 0)), E2BIG);
  });
});

Deno.test("names are bytes: a name that is not UTF-8 survives the round trip", async () => {
  await withHelper(async (helper, _dir, file) => {
    const name = Buffer.from([...Buffer.from("user.raw-"), 0xff, 0xfe]);
    await helper.set(file, name, Buffer.from("x"), 0);
    assert.deepEqual(await helper.list(file), [name]);
    assert.equal((await helper.get(file, name)).toString(), "x");
  });
});

Deno.test("XATTR_CREATE on an existing name is EEXIST, XATTR_REPLACE of a missing one ENODATA", async () => {
  await withHelper(async (helper, _dir, file) => {
    await helper.set(file, "user.k", Buffer.from("1"), XATTR_CREATE);
    assert.equal(await errnoOf(helper.set(file, "user.k", Buffer.from("2"), XATTR_CREATE)), EEXIST);
    await helper.set(file, "user.k", Buffer.from("3"), XATTR_REPLACE);
    assert.equal((await helper.get(file, "user.k")).toString(), "3");
    const missing = helper.set(file, "user.nope", Buffer.from("4"), XATTR_REPLACE);
    assert.equal(await errnoOf(missing), ENODATA);
  });
});

Deno.test("symlinks are not followed; errors carry their errno and code", async () => {
  await withHelper(async (helper, dir, file) => {
    const link = join(dir, "link");
    fs.symlinkSync(file, link);
    // Linux refuses user.* on a symlink itself: proof that the link was not followed.
    assert.equal(await errnoOf(helper.set(link, "user.k", Buffer.from("v"), 0)), EPERM);
    assert.deepEqual(await helper.list(file), []);
    assert.deepEqual(await helper.list(link), []);
    const failure = await helper.get(join(dir, "absent"), "user.k").catch((error) => error);
    assert.ok(failure instanceof XattrError);
    assert.equal(failure.errno, ENOENT);
    assert.equal(failure.code, "ENOENT");
    assert.match(failure.message, /getxattr .*absent: ENOENT/);
  });
});

Deno.test("many requests in flight each get their own answer", async () => {
  await withHelper(async (helper, dir) => {
    const files = Array.from({ length: 50 }, (_, i) => join(dir, `f${i}`));
    for (const file of files) fs.writeFileSync(file, "");
    await Promise.all(files.map((file, i) => helper.set(file, "user.n", Buffer.from(`${i}`), 0)));
    const values = await Promise.all(
      files.flatMap((file) => [helper.get(file, "user.n"), helper.get(file, "user.absent")])
        .map((request) => request.then(String, (error: XattrError) => error.code)),
    );
    const expected = files.flatMap((_, i) => [`${i}`, "ENODATA"]);
    assert.deepEqual(values, expected);
  });
});

Deno.test("a helper killed mid-flight fails its requests with EIO, the next one starts anew", async () => {
  await withHelper(async (helper, _dir, file) => {
    await helper.set(file, "user.k", Buffer.from("v"), 0);
    const first = helper.pid!;
    // Stopped first, so that no request can be answered before the kill lands.
    process.kill(first, "SIGSTOP");
    const inFlight = Array.from({ length: 20 }, () => helper.get(file, "user.k"));
    process.kill(first, "SIGKILL");
    const outcomes = await Promise.all(
      inFlight.map((request) => request.then(() => 0, (error: XattrError) => error.errno)),
    );
    assert.deepEqual(outcomes, inFlight.map(() => EIO));
    assert.equal((await helper.get(file, "user.k")).toString(), "v");
    assert.ok(helper.pid !== undefined && helper.pid !== first, "a new helper");
  });
});

Deno.test("without python3 every request is EOPNOTSUPP and the reason is told once", async () => {
  const told: string[] = [];
  const helper = new XattrHelper({
    python: "/nonexistent/python3",
    onUnavailable: (message) => told.push(message),
  });
  try {
    assert.equal(await errnoOf(helper.get("/", "user.k")), EOPNOTSUPP);
    assert.equal(await errnoOf(helper.list("/")), EOPNOTSUPP);
    assert.equal(await errnoOf(helper.set("/", "user.k", new Uint8Array(1), 0)), EOPNOTSUPP);
    assert.equal(told.length, 1);
    assert.match(told[0], /python3 is needed for extended attributes/);
  } finally {
    await helper.close();
  }
});

Deno.test("after close, requests fail with EIO and the helper is gone", async () => {
  await withHelper(async (helper, _dir, file) => {
    await helper.list(file);
    const pid = helper.pid!;
    await helper.close();
    assert.equal(helper.pid, undefined);
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(await errnoOf(helper.list(file)), EIO);
  });
});
