/**
 * A put Riak receives but answers late: the mount's request timed out, so the mount cannot
 * know whether Riak stored the file (a timed-out request may or may not be applied), and
 * the application then removes or renames the file. Riak must not end up holding the file
 * under the old name once the put is applied: neither its object (a lookup by key, as the
 * riak preset's, would show the file again) nor its directory entry.
 *
 * The put is held by a proxy (tests/_riak_proxy_process.ts) until the test froze the Riak
 * server (SIGSTOP of its own process, or of the fault proxy in front of RIAKFS_TEST_RIAK's
 * nodes: the put then waits in the frozen process's socket, to be applied once it is
 * thawed). The removal, journaled during the outage, goes to Riak only once Riak answers
 * again, by then after the put: it finds the file and takes it away, also when riakfs was
 * killed meanwhile and replays its journal.
 *
 * The other order: the put held past the client's timeout while Riak answers everything
 * else (a node that hangs with the put in its socket while the others answer, a put slow on
 * its way), so that the client's check finds nothing and its retry stores the file; the
 * removal's delete then goes out before the first put lands. The removal waits for the
 * first put's answer, which the client keeps its connection open for, and then finds the
 * file.
 *
 * So with the add of a name's entry to its directory's set (a file's, a directory's): held
 * while its retry adds it, it would land after rm, rmdir or mv took the entry out and list
 * the name again, with nothing behind it (ls shows it, stat and rm answer ENOENT). Riak's
 * sets are add-wins and an add's context is ignored, so no removal can take it out first:
 * the removal waits for it.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import {
  eventually,
  killMount,
  type OverlayEnv,
  type OverlayMount,
  statusOf,
  waitForQuiet,
  withLog,
  withOverlayEnv,
} from "./_overlay.ts";
import { type HeldRequest, type RiakProxyProcess, startRiakProxyProcess } from "./_riak_proxy.ts";

/** Riak's request timeout of the mount (ms): the put held longer than this times out. */
const REQUEST_TIMEOUT_MS = 1_000;

/**
 * The mount's flags: short timeouts, so that a frozen Riak is an outage within seconds.
 * `readTimeoutMs`: how long a request of an application waits for Riak.
 */
function mountFlags(env: OverlayEnv, readTimeoutMs = REQUEST_TIMEOUT_MS): string[] {
  const config = join(env.base, "riakfs.json");
  fs.writeFileSync(config, JSON.stringify({ requestTimeout: REQUEST_TIMEOUT_MS }));
  return [
    "--config",
    config,
    "--riak-read-timeout",
    String(readTimeoutMs),
    "--stall-check-after",
    "200",
    "--ping-timeout",
    "300",
    // Every lookup reaches the mount: a file back in Riak would show at once.
    "-o",
    "entry_timeout=0,attr_timeout=0",
  ];
}

/** The names Riak's directory entries list at the root. */
async function riakRootNames(env: OverlayEnv): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of env.store.list("")) names.push(entry.name.toString());
  return names.sort();
}

/** Asserts that Riak holds nothing of `name`: no object at its key, no directory entry. */
async function assertNotInRiak(env: OverlayEnv, name: string): Promise<void> {
  assert.equal(
    await env.store.tryStat(name, { fileOnly: true }),
    undefined,
    `no object at ${name}'s key in Riak`,
  );
  assert.ok(!(await riakRootNames(env)).includes(name), `${name} not listed in Riak`);
}

type Change = "rm" | "rename";

/** What the application does to `late.txt` while its upload's outcome is unknown. */
async function change(env: OverlayEnv, how: Change): Promise<void> {
  const file = join(env.mountpoint, "late.txt");
  if (how === "rm") await fsp.unlink(file);
  else await fsp.rename(file, join(env.mountpoint, "moved.txt"));
}

/** The end state: `late.txt` gone everywhere, `moved.txt` (after a rename) in Riak. */
async function assertChanged(env: OverlayEnv, how: Change, content: string): Promise<void> {
  await assert.rejects(
    fsp.lstat(join(env.mountpoint, "late.txt")),
    { code: "ENOENT" },
    "late.txt does not show through the mount again",
  );
  await assertNotInRiak(env, "late.txt");
  if (how === "rename") {
    assert.equal((await env.store.readFile("moved.txt")).toString(), content);
    assert.equal(await fsp.readFile(join(env.mountpoint, "moved.txt"), "utf8"), content);
  }
}

/** Waits until the mount logged an outage. */
async function outageLogged(mounted: OverlayMount): Promise<void> {
  await eventually(
    "the outage logged",
    () => Promise.resolve(mounted.stderr().includes("Riak unreachable")),
  );
}

/** What a test of a late put works with: the env, the proxy's address and the held put. */
interface LatePut {
  env: OverlayEnv;
  /** Mounts `preset` through the proxy, with {@link mountFlags}. */
  mount(preset: string, readTimeoutMs?: number): Promise<OverlayMount>;
  held: HeldRequest;
}

/**
 * Runs `body` with a proxy process in front of a fresh env's Riak holding the first put of
 * `late.txt` (or what `hold` names); Riak is thawed (and the request let go) before the
 * mounts are unmounted.
 */
function withLatePut(
  body: (late: LatePut) => Promise<void>,
  hold: (proxy: RiakProxyProcess, env: OverlayEnv) => Promise<HeldRequest> = (proxy, env) =>
    proxy.holdPut(env.bucket, "late.txt"),
): Promise<void> {
  return withOverlayEnv(async (env) => {
    const proxy = await startRiakProxyProcess(env.riak.nodes[0]);
    const mounts: OverlayMount[] = [];
    let held: HeldRequest | undefined;
    try {
      held = await hold(proxy, env);
      const mount = async (preset: string, readTimeoutMs?: number) => {
        const mounted = await env.mount(preset, mountFlags(env, readTimeoutMs), proxy.node);
        mounts.push(mounted);
        return mounted;
      };
      await body({ env, mount, held });
    } catch (error) {
      throw mounts.length > 0 ? withLog(error, mounts.at(-1)!) : error;
    } finally {
      env.riak.resume();
      held?.release();
      for (const mounted of mounts) await env.unmount(mounted);
      await proxy.close();
    }
  });
}

/**
 * Writes `late.txt` through `mounted`, freezes Riak once its put reached the proxy, lets the
 * put go into the frozen server's socket (applied once it is thawed) and waits for the
 * outage the put's timeout makes.
 */
async function writeAndFreeze(
  { env, held }: LatePut,
  mounted: OverlayMount,
  content: string,
): Promise<void> {
  await writeUntilPutHeld(env, held, content);
  env.riak.pause();
  held.release();
  await outageLogged(mounted);
}

/** Writes `late.txt` through the mount and waits until its put reached the proxy. */
async function writeUntilPutHeld(env: OverlayEnv, held: HeldRequest, content: string) {
  await fsp.writeFile(join(env.mountpoint, "late.txt"), content);
  await held.reached;
}

const PRESETS = ["riak", "drain", "migrate", "shadow"];

for (const preset of PRESETS) {
  for (const how of ["rm", "rename"] as const) {
    Deno.test(`${preset}: ${how} while Riak is frozen with the file's put unanswered: the put applied on thaw does not bring the file back`, async () => {
      await withLatePut(async (late) => {
        const { env, held } = late;
        const mounted = await late.mount(preset);
        const content = `late put through ${preset}`;
        await writeAndFreeze(late, mounted, content);
        await change(env, how);
        env.riak.resume();
        await held.answered;
        await waitForQuiet(env);
        assert.equal((await statusOf(env)).riak.reachable, true);
        await assertChanged(env, how, content);
      });
    });
  }
}

/**
 * What the mount logs when a removal or rename waits for a put, or an add of its entry, that
 * may still land.
 */
const WAITS_FOR_LATE_WRITE =
  "waits for the answer to a put of the file or an add of its entry that may still land";

/**
 * Runs `change` while the held request (a write a retry already did) is on its way, lets it
 * go once the change is done in Riak (a job of its own, but in the riak preset) or waits for
 * it, and waits until the change is done and the mount quiet.
 */
async function changeBeforeLateWrite(
  { env, held }: LatePut,
  mounted: OverlayMount,
  change: () => Promise<void>,
): Promise<void> {
  let done = false;
  const changing = change().finally(() => done = true);
  changing.catch(() => {}); // awaited below
  await eventually(
    "the change done in Riak, or waiting for the write on its way",
    async () =>
      mounted.stderr().includes(WAITS_FOR_LATE_WRITE) ||
      (done && (await statusOf(env)).metrics.uploads.pending === 0),
  );
  held.release();
  await held.answered;
  await changing;
  await waitForQuiet(env);
}

for (const preset of PRESETS) {
  Deno.test(`${preset}: rm after a retry stored the file while its first put was still on its way: the put landing last does not bring the file back`, async () => {
    await withLatePut(async (late) => {
      const { env, held } = late;
      const mounted = await late.mount(preset);
      await writeUntilPutHeld(env, held, `late put through ${preset}`);
      // The first put times out; the client's retry stores the file while it is held.
      await waitForQuiet(env);
      // Its delete would go out now, before the first put lands.
      await changeBeforeLateWrite(late, mounted, () => change(env, "rm"));
      await assertChanged(env, "rm", "");
      assert.ok(mounted.stderr().includes(WAITS_FOR_LATE_WRITE), "the removal waited");
    });
  });
}

for (const preset of ["riak", "migrate"]) {
  Deno.test(`${preset}: rm while Riak is frozen with the file's put unanswered, riakfs killed, Riak thawed, mounted again: the journal's removal takes the late put away`, async () => {
    await withLatePut(async (late) => {
      const { env, held } = late;
      const mounted = await late.mount(preset);
      await writeAndFreeze(late, mounted, `late put through ${preset}`);
      await change(env, "rm");
      await killMount(env, mounted);
      env.riak.resume();
      await held.answered; // Applied while no mount runs: Riak holds late.txt now.
      assert.notEqual(await env.store.tryStat("late.txt", { fileOnly: true }), undefined);
      await late.mount(preset);
      await waitForQuiet(env);
      await assertChanged(env, "rm", "");
    });
  });
}

/** The directory-entry member of `name` of `type` (docs/layout.md: `f:` file, `d:` directory). */
function entryMember(type: "file" | "directory", name: string): string {
  return `${type === "file" ? "f" : "d"}:${name}`;
}

/** The name each change of {@link LATE_ENTRIES} moves its entry to, if any. */
const MOVED = "moved";

/**
 * Names made, then removed or moved away while the add of their entry may still land (Riak's
 * sets are add-wins: that add landing last would list the name again, nothing behind it).
 */
const LATE_ENTRIES = [
  { change: "rm", type: "file", make: fsp.writeFile, away: fsp.unlink },
  {
    change: "mv",
    type: "file",
    make: fsp.writeFile,
    away: (path: string) => fsp.rename(path, join(path, "..", MOVED)),
  },
  {
    change: "rmdir",
    type: "directory",
    make: (path: string) => fsp.mkdir(path),
    away: (path: string) => fsp.rmdir(path),
  },
  {
    change: "mv",
    type: "directory",
    make: (path: string) => fsp.mkdir(path),
    away: (path: string) => fsp.rename(path, join(path, "..", MOVED)),
  },
] as const;

for (const preset of PRESETS) {
  for (const entry of LATE_ENTRIES) {
    Deno.test(`${preset}: ${entry.change} of a ${entry.type} after a retry added its directory entry while the first add was still on its way: the add landing last does not bring the name back`, async () => {
      const name = "late";
      await withLatePut(
        async (late) => {
          const { env, held } = late;
          // A mkdir waits for its entry: long enough for the retry after the add timed out.
          const mounted = await late.mount(preset, 5 * REQUEST_TIMEOUT_MS);
          const path = join(env.mountpoint, name);
          await entry.make(path, "");
          await held.reached;
          // The first add times out; the client's retry adds the entry while it is held.
          await waitForQuiet(env);
          await eventually(
            "the entry listed in Riak",
            async () => (await riakRootNames(env)).includes(name),
          );
          // Its set update would go out now, before the first add lands.
          await changeBeforeLateWrite(late, mounted, () => entry.away(path));
          const left = entry.change === "mv" ? [MOVED] : [];
          assert.deepEqual(await riakRootNames(env), left, "what Riak lists");
          assert.deepEqual((await fsp.readdir(env.mountpoint)).sort(), left, "what ls shows");
          await assert.rejects(fsp.lstat(path), { code: "ENOENT" });
          assert.ok(mounted.stderr().includes(WAITS_FOR_LATE_WRITE), "the change waited");
        },
        (proxy, env) => proxy.holdSetAdd(`${env.bucket}.dirs`, entryMember(entry.type, name)),
      );
    });
  }
}
