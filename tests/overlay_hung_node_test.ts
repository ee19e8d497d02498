/**
 * One hung Riak node of three (it accepts connections and answers nothing, as a frozen
 * process does): the mount's reads, writes and listings go on through the other two. The
 * first requests sent to the hung node wait for the client's check (a ping), not for
 * `--riak-read-timeout` and an EIO, or an ENOENT for a file Riak holds; the node is logged
 * once as taken out of rotation and once as back.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import {
  assertInRiak,
  eventually,
  type RiakProcess,
  startFaultProxyProcess,
  statusOf,
  withOverlayEnv,
} from "./_overlay.ts";

const FILES = 12;

Deno.test("riak, three nodes, one hung: reads, writes and listings go on; the node is logged out and back", async () => {
  await withOverlayEnv(async (env) => {
    const names = Array.from({ length: FILES }, (_, i) => `f${i}`);
    for (const name of names) await env.store.writeFile(`d/${name}`, Buffer.from(`old ${name}`));
    // Three "nodes" of one cluster: proxies in front of the same Riak.
    const nodes: RiakProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await startFaultProxyProcess([env.riak.nodes[0]]));
      const [hung] = nodes;
      const hungAddress = hung.nodes[0];
      const mounted = await env.mount("riak", [], nodes.map((node) => node.nodes[0]).join(","));
      try {
        hung.pause();
        const written = new Map<string, Uint8Array>();
        await fsp.mkdir(join(env.mountpoint, "w"));
        for (const name of names) {
          const path = join(env.mountpoint, "d", name);
          assert.equal((await fsp.stat(path)).size, `old ${name}`.length);
          assert.equal(await fsp.readFile(path, "utf8"), `old ${name}`);
          const content = Buffer.from(`new ${name}`);
          await fsp.writeFile(join(env.mountpoint, "w", name), content);
          written.set(`w/${name}`, content);
        }
        assert.deepEqual((await fsp.readdir(join(env.mountpoint, "d"))).sort(), names.sort());
        await eventually("the writes in Riak", async () => {
          await assertInRiak(env, written);
          return true;
        });
        const outOfRotation = mounted.stderr().match(/Riak node taken out of rotation.*/g) ?? [];
        assert.equal(outOfRotation.length, 1, mounted.stderr());
        assert.match(outOfRotation[0], new RegExp(`node=${hungAddress} .*not answering`));
        assert.doesNotMatch(mounted.stderr(), /unreachable/, "one hung node is no outage");
        const status = await statusOf(env);
        assert.equal(status.riak.reachable, true);
        const pings = new Map(status.riak.pings!.map((ping) => [ping.node, ping]));
        assert.equal(pings.get(hungAddress)?.ms, undefined, "the hung node's ping fails");
        assert.equal(status.riak.pings!.filter((ping) => ping.ms !== undefined).length, 2);
        assert.equal(status.metrics.errors.EIO ?? 0, 0);
        hung.resume();
        await eventually(
          "the node back in rotation",
          () => Promise.resolve(/Riak node answers again.*/.test(mounted.stderr())),
        );
        assert.match(mounted.stderr(), new RegExp(`answers again.*node=${hungAddress}`));
        for (const name of names) {
          assert.equal(await fsp.readFile(join(env.mountpoint, "w", name), "utf8"), `new ${name}`);
        }
      } finally {
        await env.unmount(mounted);
      }
    } finally {
      for (const node of nodes) await node.close();
    }
  });
});
