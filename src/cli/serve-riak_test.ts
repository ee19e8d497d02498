import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveOptions } from "./serve-riak_action.ts";

Deno.test("serve-riak: flags win over the config file; bucket types from both", () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-riak-cli-"));
  try {
    const config = join(dir, "riak.json");
    writeFileSync(
      config,
      JSON.stringify({
        listen: "127.0.0.1:9000",
        data: "/from/config",
        bucket_types: { kvmulti: {} },
      }),
    );
    const options = serveOptions({
      config,
      listen: "127.0.0.1:9001",
      bucketType: ['lww:{"last_write_wins":true,"allow_mult":false,"dvv_enabled":false}'],
    });
    assert.equal(options.listen, "127.0.0.1:9001");
    assert.equal(options.dataDir, "/from/config");
    assert.deepEqual(Object.keys(options.bucketTypes ?? {}).sort(), ["kvmulti", "lww"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("serve-riak: contradictory or incomplete settings are refused with a reason", () => {
  assert.throws(() => serveOptions({ bucketType: [] }), /--data DIR, or --memory/);
  assert.throws(() => serveOptions({ memory: true, data: "/x", bucketType: [] }), /exclude/);
  assert.throws(
    () => serveOptions({ memory: true, salvage: true, bucketType: [] }),
    /--salvage needs --data/,
  );
  assert.deepEqual(serveOptions({ data: "/x", salvage: true, bucketType: [] }).log, {
    salvage: true,
  });
  assert.throws(
    () => serveOptions({ memory: true, tlsCert: "c.pem", bucketType: [] }),
    /go together/,
  );
  assert.throws(
    () => serveOptions({ memory: true, bucketType: ["bad name:{}"] }),
    /NAME:JSONPROPS/,
  );
  for (
    const [argument, message] of [
      ['y:{"n_val":"abc"}', /bucket type 'y': Invalid bucket type properties: \[\{n_val,"abc"\}\]/],
      ['x:{"datatype":"bogus"}', /bucket type 'x': .*datatype,bogus/],
      ['s:{"datatype":"set","allow_mult":false}', /bucket type 's': .*allow_mult=true/],
      ['z:{"frobnicate":true}', /\{frobnicate,unsupported\}/],
    ] as const
  ) {
    assert.throws(() => serveOptions({ memory: true, bucketType: [argument] }), message);
  }
  const quorums = serveOptions({ memory: true, bucketType: ['q:{"w":"all","n_val":5}'] });
  assert.deepEqual(quorums.bucketTypes?.q, { w: "all", n_val: 5 });
  assert.equal(serveOptions({ memory: true, bucketType: [] }).dataDir, undefined);
});
