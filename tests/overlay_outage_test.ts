/**
 * A Riak outage under a working mount, as a maintenance window or a partition brings one:
 * Riak hangs (SIGSTOP) or goes away (SIGKILL, restarted later), the application goes on
 * writing into the directories it uses, and once Riak is back every file it closed is there,
 * the outage logged once and its end once. Made short here (the kernel's caches are off, so
 * every request reaches the mount as after a long outage), structurally the same.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { seededBytes } from "../src/store/_test_support.ts";
import {
  assertInRiak,
  eventually,
  type OverlayEnv,
  waitForQuiet,
  withLog,
  withOverlayEnv,
} from "./_overlay.ts";

/** Lines of `log` holding `text`. */
function linesWith(log: string, text: string): number {
  return log.split("\n").filter((line) => line.includes(text)).length;
}

async function writeThroughOutage(
  env: OverlayEnv,
  preset: string,
  outage: "hang" | "down",
): Promise<void> {
  // No kernel caching: every lookup reaches the mount, as once its entries expired.
  const mounted = await env.mount(preset, ["-o", "entry_timeout=0,attr_timeout=0"]);
  try {
    const app = join(env.mountpoint, "app");
    await fsp.mkdir(app);
    await fsp.writeFile(join(app, "before.txt"), "before");
    await waitForQuiet(env); // Its upload and the directory's new mtime are in Riak.
    const files = new Map<string, Uint8Array>([["app/before.txt", Buffer.from("before")]]);
    if (outage === "hang") env.riak.pause();
    else await env.riak.stop();
    try {
      // The first requests find out (a hung node takes a few seconds to be declared).
      await fsp.writeFile(join(app, "first.bin"), seededBytes(700, 5_000));
      files.set("app/first.bin", seededBytes(700, 5_000));
      await eventually(
        "the outage logged",
        () => Promise.resolve(mounted.stderr().includes("Riak unreachable")),
      );
      for (let index = 0; index < 10; index++) {
        const content = seededBytes(701 + index, 1_000 + index * 3_000);
        await fsp.writeFile(join(app, `during-${index}.bin`), content);
        files.set(`app/during-${index}.bin`, content);
        assert.ok(
          Buffer.from(content).equals(await fsp.readFile(join(app, `during-${index}.bin`))),
        );
      }
      // drain lists the union (degraded to what the mount holds); riak's listings are Riak's.
      if (preset === "drain") assert.ok((await fsp.readdir(app)).includes("during-9.bin"));
    } finally {
      if (outage === "hang") env.riak.resume();
      else await env.riak.restart();
    }
    await waitForQuiet(env);
    await assertInRiak(env, files);
    await eventually(
      "the outage's end logged",
      () => Promise.resolve(mounted.stderr().includes("Riak reachable again")),
    );
    assert.equal(linesWith(mounted.stderr(), "Riak unreachable"), 1, "the outage logged once");
    assert.equal(linesWith(mounted.stderr(), "Riak reachable again"), 1, "its end logged once");
  } catch (error) {
    throw withLog(error, mounted);
  } finally {
    await env.unmount(mounted);
  }
}

for (const preset of ["drain", "riak"]) {
  for (const outage of ["hang", "down"] as const) {
    Deno.test(`${preset}, Riak ${outage === "hang" ? "hung" : "down"}: the application writes on into the directory it made, and Riak gets every file`, async () => {
      await withOverlayEnv((env) => writeThroughOutage(env, preset, outage));
    });
  }
}
