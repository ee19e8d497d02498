/**
 * The write path never loses an acknowledged write: Riak is down during a write burst,
 * riakfs is killed with SIGKILL, Riak comes back, riakfs is started again and replays its
 * journal: every file whose close() returned is in Riak, byte for byte. In shadow and
 * migrate the journal names local files to mirror, and removals (a file removed during the
 * outage is gone from Riak after the replay); in drain and riak it holds staged files. A
 * stale mount left by a crash that took the watchdog along is cleared by the next mount.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { existsSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import { crashLeavingStaleMount, isMounted, tempDir } from "./_mount.ts";
import {
  assertReplayedAfterRemount,
  eventually,
  killMount,
  type OverlayEnv,
  startFaultProxyProcess,
  startRiakProcess,
  waitForQuiet,
  withOverlayEnv,
} from "./_overlay.ts";

/** Riak down during a write burst, riakfs killed, Riak back, riakfs again: all in Riak. */
async function burstDuringOutage(env: OverlayEnv, preset: string): Promise<void> {
  const mirrored = preset === "migrate" || preset === "shadow";
  const first = await env.mount(preset);
  const files = new Map<string, Uint8Array>();
  // Removed through the mount during the outage: Riak's copy goes too, after the replay.
  const removed = "removed.bin";
  await fsp.writeFile(join(env.mountpoint, removed), seededBytes(499, 4096));
  await eventually(`${removed} in Riak`, async () => !!(await env.store.tryStat(removed)));
  await env.riak.stop(); // Riak down: connections refused.
  try {
    for (let index = 0; index < 20; index++) {
      const content = seededBytes(500 + index, 1000 + index * 70_000);
      const name = `burst-${String(index).padStart(2, "0")}.bin`;
      await fsp.writeFile(join(env.mountpoint, name), content); // close() acknowledged
      files.set(name, content);
    }
    if (mirrored) await fsp.unlink(join(env.mountpoint, removed));
    await killMount(env, first);
  } finally {
    await env.riak.restart(); // Back, with what it held before the outage only.
  }
  for (const name of files.keys()) assert.equal(await env.store.tryStat(name), undefined);
  assert.ok(await env.store.tryStat(removed), `${removed} still in Riak before the replay`);
  await assertReplayedAfterRemount(env, files, preset, async () => {
    if (!mirrored) return;
    await eventually(
      `${removed} gone from Riak`,
      async () => (await env.store.tryStat(removed)) === undefined,
    );
  });
}

for (const preset of ["migrate", "shadow", "drain", "riak"]) {
  Deno.test(`${preset}: SIGKILL during an outage: the journal replay puts every closed file into Riak`, async () => {
    await withOverlayEnv((env) => burstDuringOutage(env, preset));
  });
}

// As every mount test runs with RIAKFS_TEST_RIAK set: real nodes, the outage the proxy's.
Deno.test("drain, Riak behind the fault proxy: SIGKILL during an outage: the replay puts every closed file into Riak", async () => {
  const data = tempDir("riakfs-proxied-node-");
  try {
    const node = await startRiakProcess(data);
    try {
      await withOverlayEnv((env) => burstDuringOutage(env, "drain"), { nodes: node.nodes });
    } finally {
      await node.close();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

Deno.test("migrate: a stale mount (riakfs and its watchdog killed) is cleared by the next mount, which replays the journal", async () => {
  await withOverlayEnv(async (env) => {
    const first = await env.mount("migrate");
    const files = new Map([["written-in-the-outage.bin", seededBytes(600, 300_000)]]);
    await env.riak.stop();
    try {
      for (const [name, content] of files) await fsp.writeFile(join(env.mountpoint, name), content);
      await crashLeavingStaleMount(first.server);
      assert.ok(isMounted(env.mountpoint), "the dead mount is still there");
      await assert.rejects(fsp.stat(env.mountpoint), /ENOTCONN|ECONNABORTED/);
    } finally {
      await env.riak.restart();
    }
    await assertReplayedAfterRemount(env, files, "migrate", async () => {
      assert.ok(
        Buffer.from(files.get("written-in-the-outage.bin")!).equals(
          await fsp.readFile(join(env.mountpoint, "written-in-the-outage.bin")),
        ),
        "served through the new mount",
      );
    });
  });
});

for (
  const [riakIs, riakMtimeNs] of [["later", undefined], [
    "earlier (cp -p)",
    1_500_000_000n * 10n ** 9n,
  ]] as const
) {
  Deno.test(`migrate: a rename cut short by a SIGKILL before Riak renamed keeps the copy Riak held of the file, dated ${riakIs} than the source's: the replay puts it under the new name`, async () => {
    await withOverlayEnv(async (env) => {
      const older = seededBytes(700, 5_000);
      const newer = seededBytes(701, 6_000);
      await fsp.writeFile(join(env.source, "a.bin"), older);
      utimesSync(join(env.source, "a.bin"), new Date("2020-01-01"), new Date("2020-01-01"));
      // Written since by another host: Riak's copy is the one the mount shows.
      await env.store.writeFile("a.bin", newer, {
        mode: 0o644,
        ...(riakMtimeNs === undefined ? {} : { mtimeNs: riakMtimeNs }),
      });
      const proxy = await startFaultProxyProcess(env.riak.nodes);
      try {
        const first = await env.mount("migrate", [], proxy.nodes.join(","));
        assert.ok(Buffer.from(newer).equals(await fsp.readFile(join(env.mountpoint, "a.bin"))));
        // Each of Riak's answers takes a while: the rename is seen done in SOURCE, and the
        // mount killed, long before Riak's rename (several requests) could be.
        await proxy.setLatency(1_500);
        fsp.rename(join(env.mountpoint, "a.bin"), join(env.mountpoint, "b.bin")).catch(() => {});
        await eventually(
          "renamed in SOURCE",
          () => Promise.resolve(existsSync(join(env.source, "b.bin"))),
        );
        await killMount(env, first);
      } finally {
        await proxy.close();
      }
      assert.ok(await env.store.tryStat("a.bin"), "killed before Riak renamed");
      assert.equal(await env.store.tryStat("b.bin"), undefined, "killed before Riak renamed");
      const second = await env.mount("migrate");
      try {
        await waitForQuiet(env);
        assert.ok(Buffer.from(newer).equals(await env.store.readFile("b.bin")), "Riak's kept");
        assert.ok(Buffer.from(newer).equals(await fsp.readFile(join(env.mountpoint, "b.bin"))));
      } finally {
        await env.unmount(second);
      }
    });
  });
}
