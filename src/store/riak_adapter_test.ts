import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { withStore } from "./_test_support.ts";
import { KeyExistsError } from "./errors.ts";

Deno.test("a put with ifNoneMatch on a key holding an object is a KeyExistsError", async () => {
  await withStore(async ({ client, bucket }) => {
    const location = { bucketType: "default", bucket: Buffer.from(bucket), key: Buffer.from("k") };
    const content = (text: string) => ({
      value: Buffer.from(text),
      contentType: "text/plain",
      usermeta: [],
    });
    await client.put(location, content("first"), { ifNoneMatch: true });
    const refused = await client.put(location, content("second"), { ifNoneMatch: true }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof KeyExistsError, String(refused));
    assert.equal(refused.code, "EEXIST");
    assert.equal(refused.location?.key, "k");
    const stored = await client.get(location);
    assert.equal(Buffer.from(stored.contents[0].value).toString(), "first");
    // A deleted key (a tombstone) holds no object: the put goes through, as on Riak.
    await client.delete(location);
    await client.put(location, content("third"), { ifNoneMatch: true });
    const after = await client.get(location);
    assert.equal(Buffer.from(after.contents[0].value).toString(), "third");
  });
});
