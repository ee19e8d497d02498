/**
 * A mount started while Riak is unreachable (riakfs restarted during a maintenance window,
 * a node hung): it replays its journal and serves, says once that Riak is away, and the first
 * change of a name is journaled as the later ones are. It did not know of the outage until a
 * request had waited out its whole Riak deadline: that first request failed EIO (a rename of a
 * file in the spool), or outlasted the FUSE request's own deadline (EIO too).
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import {
  killMount,
  type OverlayEnv,
  type OverlayMount,
  waitForQuiet,
  withLog,
  withOverlayEnv,
} from "./_overlay.ts";

/** No kernel caching: every lookup reaches the mount. */
const NO_KERNEL_CACHE = ["-o", "entry_timeout=0,attr_timeout=0"];

function outagesLogged(mounted: OverlayMount): number {
  return mounted.stderr().split("\n").filter((line) => line.includes("Riak unreachable")).length;
}

/** Mounts `preset` with Riak hung (SIGSTOP), runs `body`, lets Riak answer again after it. */
async function withRiakHungAtStart(
  env: OverlayEnv,
  preset: string,
  extra: string[],
  body: (mounted: OverlayMount) => Promise<void>,
): Promise<void> {
  env.riak.pause();
  let mounted: OverlayMount | undefined;
  try {
    mounted = await env.mount(preset, [...NO_KERNEL_CACHE, ...extra]);
    await body(mounted);
  } catch (error) {
    throw mounted === undefined ? error : withLog(error, mounted);
  } finally {
    env.riak.resume();
    if (mounted !== undefined) await env.unmount(mounted);
  }
}

Deno.test("drain, Riak hung when the mount starts: a file the journal replays is renamed at once, and lands in Riak under its new name once Riak is back", async () => {
  await withOverlayEnv(async (env) => {
    const content = seededBytes(900, 4_000);
    // Written while Riak was down, riakfs killed: the journal holds the file.
    await env.riak.stop();
    const first = await env.mount("drain", NO_KERNEL_CACHE);
    try {
      await fsp.writeFile(join(env.mountpoint, "report.tmp"), content);
      await killMount(env, first);
    } catch (error) {
      throw withLog(error, first);
    } finally {
      await env.riak.restart();
      await env.unmount(first);
    }
    await withRiakHungAtStart(env, "drain", [], async (mounted) => {
      await fsp.rename(join(env.mountpoint, "report.tmp"), join(env.mountpoint, "report.txt"));
      assert.ok(content.equals(await fsp.readFile(join(env.mountpoint, "report.txt"))));
      assert.equal(outagesLogged(mounted), 1, "the outage logged once");
      env.riak.resume();
      await waitForQuiet(env);
      assert.ok(content.equals(await env.store.readFile("/report.txt")), "the new name");
      assert.equal(await env.store.tryStat("/report.tmp"), undefined, "not the old one");
    });
  });
});

for (const preset of ["drain", "riak"]) {
  Deno.test(`${preset}, Riak hung when the mount starts, its deadline longer than a FUSE request's: a directory made, a file written into it and renamed at once end in Riak once it is back`, async () => {
    await withOverlayEnv(async (env) => {
      const content = seededBytes(901, 3_000);
      // A lookup that waited out this deadline would be answered EIO by the FUSE layer first.
      const extra = ["--riak-read-timeout", "60000", "--request-timeout", "30"];
      await withRiakHungAtStart(env, preset, extra, async (mounted) => {
        const out = join(env.mountpoint, "out");
        await fsp.mkdir(out);
        await fsp.writeFile(join(out, "data.tmp"), content);
        await fsp.rename(join(out, "data.tmp"), join(out, "data.bin"));
        assert.ok(content.equals(await fsp.readFile(join(out, "data.bin"))));
        assert.equal(outagesLogged(mounted), 1, "the outage logged once");
        env.riak.resume();
        await waitForQuiet(env);
        assert.ok(content.equals(await env.store.readFile("/out/data.bin")), "the new name");
        assert.equal(await env.store.tryStat("/out/data.tmp"), undefined, "not the old one");
      });
    });
  });
}
