import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import process from "node:process";
import { promisify } from "node:util";
import { join } from "node:path";
import { withStore } from "../store/_test_support.ts";
import type { Store } from "../store/store.ts";
import { currentIdentity } from "./file_identity.ts";
import { deleteIfVerified, describeAttributeDifference } from "./verified_delete.ts";
import { hashStoredFile } from "./stored_file.ts";
import { OpenWriters } from "./open_writers.ts";
import { holdOpen, saveAtomically } from "./_test_support.ts";

const SHA_OF_HELLO = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

Deno.test("deleteIfVerified deletes only a verified, unchanged local file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  try {
    await withStore(async ({ store }) => {
      const file = join(dir, "f");
      writeFileSync(file, "hello");
      const identity = (await currentIdentity(file))!;
      const hashed = { identity, sha256: SHA_OF_HELLO };

      assert.deepEqual(
        (await deleteIfVerified(store, Buffer.from("f"), file, hashed)).deleted,
        false,
        "not in Riak yet",
      );
      await store.writeFile("f", Buffer.from("HELLO"));
      const differs = await deleteIfVerified(store, Buffer.from("f"), file, hashed);
      assert.equal(differs.deleted ? "" : differs.reason, "riak-differs");
      await store.writeFile("f", Buffer.from("hello"));
      utimesSync(file, new Date(), new Date(5_000));
      const changed = await deleteIfVerified(store, Buffer.from("f"), file, hashed);
      assert.equal(changed.deleted ? "" : changed.reason, "local-changed");
      assert.ok(existsSync(file));
      const now = (await currentIdentity(file))!;
      const done = await deleteIfVerified(store, Buffer.from("f"), file, {
        identity: now,
        sha256: SHA_OF_HELLO,
      });
      assert.deepEqual(done, { deleted: true });
      assert.equal(existsSync(file), false);
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("deleteIfVerified keeps a file whose mode or owner Riak does not hold", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  try {
    await withStore(async ({ store }) => {
      const file = join(dir, "f");
      writeFileSync(file, "hello");
      await store.writeFile("f", Buffer.from("hello"), { mode: 0o644, uid: 0, gid: 0 });
      const identity = (await currentIdentity(file))!;
      const hashed = {
        identity,
        sha256: SHA_OF_HELLO,
        attributes: { mode: 0o600, uid: 0, gid: 0 },
      };
      const kept = await deleteIfVerified(store, Buffer.from("f"), file, hashed);
      assert.equal(
        kept.deleted ? "" : kept.detail,
        "Riak holds mode 0644, owner 0:0; local mode 0600, owner 0:0",
      );
      assert.ok(existsSync(file));
      await store.setAttributes("f", { mode: 0o600 });
      assert.deepEqual(await deleteIfVerified(store, Buffer.from("f"), file, hashed), {
        deleted: true,
      });
      assert.equal(existsSync(file), false);
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("describeAttributeDifference says an object riakfs did not write holds no mode or owner", () => {
  const local = { mode: 0o644, uid: 33, gid: 33 };
  // riak-fuse's objects carry no usermeta: 0644 and 0:0 are what they are read as.
  assert.equal(
    describeAttributeDifference({ mode: 0o644, uid: 0, gid: 0, managed: false }, local),
    "Riak holds no mode or owner (not written by riakfs: read as mode 0644, owner 0:0); " +
      "local mode 0644, owner 33:33",
  );
  assert.equal(
    describeAttributeDifference({ mode: 0o644, uid: 0, gid: 0, managed: true }, local),
    "Riak holds mode 0644, owner 0:0; local mode 0644, owner 33:33",
  );
  assert.equal(describeAttributeDifference({ ...local, managed: false }, local), undefined);
});

Deno.test("deleteIfVerified keeps a file another process holds open for writing, and deletes it once closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  try {
    await withStore(async ({ store }) => {
      const file = join(dir, "daemon.log");
      writeFileSync(file, "hello");
      await store.writeFile("daemon.log", Buffer.from("hello"));
      const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
      const fresh = { openWriters: new OpenWriters({ maxAgeMs: 0 }) };
      const holder = await holdOpen(file, ">>");
      try {
        const kept = await deleteIfVerified(store, Buffer.from("daemon.log"), file, hashed, {
          root: Buffer.from(dir),
          directory: Buffer.alloc(0),
        }, fresh);
        assert.equal(kept.deleted ? "" : kept.reason, "local-active");
        assert.match(kept.deleted ? "" : kept.detail, /open for writing/);
        assert.ok(existsSync(file));
      } finally {
        await holder.release();
      }
      const done = await deleteIfVerified(store, Buffer.from("daemon.log"), file, hashed, {
        root: Buffer.from(dir),
        directory: Buffer.alloc(0),
      }, fresh);
      assert.deepEqual(done, { deleted: true });
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("deleteIfVerified keeps a file changed (mtime or ctime) within the quiet period", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  try {
    await withStore(async ({ store }) => {
      const file = join(dir, "f");
      writeFileSync(file, "hello");
      await store.writeFile("f", Buffer.from("hello"));
      // An old mtime: the ctime (now, set by utimes itself) still counts.
      utimesSync(file, new Date(5_000), new Date(5_000));
      const identity = (await currentIdentity(file))!;
      const ctimeMs = Number(identity.ctimeNs / 1_000_000n);
      const hashed = { identity, sha256: SHA_OF_HELLO };
      const quiet = (now: number) => ({ quietPeriodMs: 60_000, now: () => now });
      const kept = await deleteIfVerified(
        store,
        Buffer.from("f"),
        file,
        hashed,
        undefined,
        quiet(ctimeMs + 59_000),
      );
      assert.equal(kept.deleted ? "" : kept.reason, "local-active");
      assert.match(kept.deleted ? "" : kept.detail, /quiet period/);
      assert.ok(existsSync(file));
      const done = await deleteIfVerified(
        store,
        Buffer.from("f"),
        file,
        hashed,
        undefined,
        quiet(ctimeMs + 61_000),
      );
      assert.deepEqual(done, { deleted: true });
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

/**
 * Runs `body` with `name` holding "hello" in a fresh directory and in Riak (at the same
 * name); removes the directory after.
 */
async function withHelloInBoth(
  name: Buffer,
  body: (store: Store, file: Buffer, dir: string) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  try {
    await withStore(async ({ store }) => {
      const file = Buffer.concat([Buffer.from(`${dir}/`), name]);
      writeFileSync(file, "hello");
      await store.writeFile(name, Buffer.from("hello"));
      await body(store, file, dir);
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
}

Deno.test("deleteIfVerified names a kept file as bytes shown safely: a newline or a byte that is not UTF-8 never reaches the log raw", async () => {
  const name = Buffer.from("log\nfaked line \xff", "latin1");
  await withHelloInBoth(name, async (store, file, dir) => {
    const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    const kept = await deleteIfVerified(store, name, file, hashed, undefined, {
      quietPeriodMs: 60_000,
    });
    assert.equal(kept.deleted ? "" : kept.reason, "local-active");
    assert.ok(
      (kept.deleted ? "" : kept.detail).startsWith(`${dir}/log\\x0afaked line \\xff: `),
      kept.deleted ? "" : kept.detail,
    );
  });
});

Deno.test("deleteIfVerified goes by the ctime of a file whose mtime is in the future (a skewed clock, a tool): the quiet period ends", async () => {
  await withHelloInBoth(Buffer.from("f"), async (store, file) => {
    const dayMs = 86_400_000;
    utimesSync(file, new Date(Date.now() + dayMs), new Date(Date.now() + dayMs));
    const identity = (await currentIdentity(file))!;
    const ctimeMs = Number(identity.ctimeNs / 1_000_000n);
    const done = await deleteIfVerified(
      store,
      Buffer.from("f"),
      file,
      { identity, sha256: SHA_OF_HELLO },
      undefined,
      { quietPeriodMs: 60_000, now: () => ctimeMs + 61_000 },
    );
    assert.deepEqual(done, { deleted: true });
  });
});

Deno.test("deleteIfVerified deletes by identity: an atomic save over the name right before the deletion survives, kept as changed", async () => {
  await withHelloInBoth(Buffer.from("doc"), async (store, file, dir) => {
    const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    const outcome = await deleteIfVerified(store, Buffer.from("doc"), file, hashed, undefined, {
      beforeStep: (step) => {
        if (step === "set-aside") saveAtomically(file, "new version");
      },
    });
    assert.equal(outcome.deleted ? "" : outcome.reason, "local-changed");
    assert.equal(readFileSync(file, "utf8"), "new version");
    assert.deepEqual(readdirSync(dir), ["doc"], "nothing left beside it");
  });
});

// The move aside takes whatever holds the name then: a directory made there (rm, then mkdir)
// could not be put back by a link, and stayed hidden under the private name with all it held;
// a symlink saved over the name (ln -s, then mv -T) is put back by the link, not followed.
for (const saved of ["directory", "long-named directory", "symlink"] as const) {
  Deno.test(`deleteIfVerified puts back a ${saved} saved at the name right before the deletion`, async () => {
    const name = Buffer.from(saved === "long-named directory" ? "d".repeat(240) : "doc");
    await withHelloInBoth(name, async (store, file, dir) => {
      const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
      const outcome = await deleteIfVerified(store, name, file, hashed, undefined, {
        beforeStep: (step) => {
          if (step !== "set-aside") return;
          rmSync(file);
          if (saved === "symlink") return symlinkSync("target", file);
          mkdirSync(file);
          writeFileSync(join(file.toString(), "inside"), "kept");
        },
      });
      assert.equal(outcome.deleted ? "" : outcome.reason, "local-changed");
      assert.deepEqual(readdirSync(dir), [name.toString()], "nothing left beside it");
      if (saved === "symlink") assert.equal(readlinkSync(file), "target");
      else assert.equal(readFileSync(join(file.toString(), "inside"), "utf8"), "kept");
    });
  });
}

Deno.test("deleteIfVerified keeps the version it moved aside where the name holds yet another one by the time it is put back", async () => {
  await withHelloInBoth(Buffer.from("doc"), async (store, file, dir) => {
    const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    const outcome = await deleteIfVerified(store, Buffer.from("doc"), file, hashed, undefined, {
      beforeStep: (step) => saveAtomically(file, step === "set-aside" ? "second" : "third"),
    });
    assert.equal(outcome.deleted ? "" : outcome.reason, "local-changed");
    assert.equal(readFileSync(file, "utf8"), "third");
    const aside = readdirSync(dir).filter((name) => name.startsWith(".riakfs-deleting."));
    assert.equal(aside.length, 1);
    assert.match(aside[0], /^\.riakfs-deleting\.[0-9a-f]{12}\.doc$/);
    assert.equal(readFileSync(join(dir, aside[0]), "utf8"), "second");
    assert.ok(
      (outcome.deleted ? "" : outcome.detail).endsWith(`kept as ${dir}/${aside[0]}`),
      outcome.deleted ? "" : outcome.detail,
    );
  });
});

Deno.test("deleteIfVerified deletes a verified file by moving it aside first, and leaves nothing beside it", async () => {
  await withHelloInBoth(Buffer.from("doc"), async (store, file, dir) => {
    const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    const steps: string[] = [];
    const outcome = await deleteIfVerified(store, Buffer.from("doc"), file, hashed, undefined, {
      beforeStep: (step) => void steps.push(step),
    });
    assert.deepEqual(outcome, { deleted: true });
    assert.deepEqual(steps, ["set-aside", "discard"]);
    assert.deepEqual(readdirSync(dir), []);
  });
});

Deno.test("deleteIfVerified sets a name too long for a private name of its own aside in a private directory: deleted, or put back", async () => {
  const name = Buffer.from("n".repeat(240));
  await withHelloInBoth(name, async (store, file, dir) => {
    const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    const changed = await deleteIfVerified(store, name, file, hashed, undefined, {
      beforeStep: (step) => {
        if (step === "set-aside") saveAtomically(file, "new version");
      },
    });
    assert.equal(changed.deleted ? "" : changed.reason, "local-changed");
    assert.equal(readFileSync(file, "utf8"), "new version");
    assert.deepEqual(readdirSync(dir), [name.toString()]);
    const now = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
    await store.writeFile(name, Buffer.from("new version"));
    now.sha256 = (await hashStoredFile(store, name)).sha256;
    assert.deepEqual(await deleteIfVerified(store, name, file, now), { deleted: true });
    assert.deepEqual(readdirSync(dir), []);
  });
});

/**
 * What another process's listing of `dir` (a mount's, a pre-warm walk's: both call
 * restoreSetAside) does with private name `name` right now: run in a process of its own,
 * which sees none of this one's memory.
 */
async function restoredByAnotherProcess(
  dir: string,
  name: string,
): Promise<{ putBack: string[]; kept: string[] }> {
  const module = new URL("./set_aside.ts", import.meta.url).href;
  const script = `import { Buffer } from "node:buffer";
import { restoreSetAside } from ${JSON.stringify(module)};
const r = await restoreSetAside(Buffer.from(Deno.args[0]), Buffer.from(Deno.args[1]));
console.log(JSON.stringify({ putBack: r.putBack.map(String), kept: r.kept.map(String) }));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["eval", script, "--", dir, name],
  );
  return JSON.parse(stdout);
}

// Two processes at once: a mount listing the directory while a pre-warm deletes (or a walk
// while a drain mount deletes) took the deletion under way for a crash's leftover and put
// the file back between the move and the unlink: the deletion failed with ENOENT, or counted
// a file deleted that was back in SOURCE.
for (const name of ["doc", "n".repeat(240)]) {
  Deno.test(`deleteIfVerified: another process listing the directory leaves a deletion under way alone (${name.length}-byte name)`, async () => {
    await withHelloInBoth(Buffer.from(name), async (store, file, dir) => {
      const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
      let seen: { putBack: string[]; kept: string[] } | undefined;
      const outcome = await deleteIfVerified(store, Buffer.from(name), file, hashed, undefined, {
        beforeStep: async (step) => {
          if (step !== "discard") return;
          const [aside] = readdirSync(dir);
          assert.match(aside, /^\.riakfs-deleting\.[0-9a-f]{12}(\.doc)?$/);
          seen = await restoredByAnotherProcess(dir, aside);
        },
      });
      assert.deepEqual(seen, { putBack: [], kept: [] });
      assert.deepEqual(outcome, { deleted: true });
      assert.deepEqual(readdirSync(dir), []);
    });
  });
}

// A crash's leftover is put back by the next listing; one a reader holds open (as a deletion
// holds its file) waits until it closed it, never hidden for good.
Deno.test("restoreSetAside puts back a leftover no process holds open, one held open once it is closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riakfs-delete-"));
  const aside = ".riakfs-deleting.00000000000a.doc";
  try {
    writeFileSync(join(dir, aside), "left by a crash");
    const reader = await holdOpen(join(dir, aside), "<");
    try {
      assert.deepEqual(await restoredByAnotherProcess(dir, aside), { putBack: [], kept: [] });
      assert.deepEqual(readdirSync(dir), [aside]);
    } finally {
      await reader.release();
    }
    assert.deepEqual(await restoredByAnotherProcess(dir, aside), { putBack: ["doc"], kept: [] });
    assert.equal(readFileSync(join(dir, "doc"), "utf8"), "left by a crash");
  } finally {
    rmSync(dir, { recursive: true });
  }
});

// A process that cannot see the deletion under way (another user's, without access to its
// /proc entries) may still put the file back, by link then unlink (set_aside.ts putBack):
// the deleting side found its private name gone and failed with ENOENT, or unlinked it
// between the two and counted deleted a file still in SOURCE. It is kept, in use.
for (
  const { at, unlinked } of [
    { at: "discard", unlinked: true },
    { at: "discard", unlinked: false },
    { at: "put-back", unlinked: true },
  ] as const
) {
  Deno.test(`deleteIfVerified keeps a file another process put back (${unlinked ? "linked, unlinked" : "linked only"}) before its ${at}`, async () => {
    await withHelloInBoth(Buffer.from("doc"), async (store, file, dir) => {
      const hashed = { identity: (await currentIdentity(file))!, sha256: SHA_OF_HELLO };
      const outcome = await deleteIfVerified(store, Buffer.from("doc"), file, hashed, undefined, {
        beforeStep: (step) => {
          if (at === "put-back" && step === "set-aside") saveAtomically(file, "new version");
          if (step !== at) return;
          const aside = join(dir, readdirSync(dir)[0]);
          linkSync(aside, file);
          if (unlinked) unlinkSync(aside);
        },
      });
      assert.equal(outcome.deleted ? "" : outcome.reason, "local-active");
      assert.match(outcome.deleted ? "" : outcome.detail, /put back by another process/);
      assert.equal(readFileSync(file, "utf8"), at === "put-back" ? "new version" : "hello");
      assert.deepEqual(readdirSync(dir), ["doc"]);
    });
  });
}
