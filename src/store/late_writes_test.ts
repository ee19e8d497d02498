// A put of a file that failed while Riak may still apply it (timed out) can land after a
// removal or rename of the file: the store waits for the client to settle such puts of the
// file's key before it takes the name away. So with the add of its entry to its directory's
// set: Riak applying it after the removal would list the name again.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { StoreClient } from "./client.ts";
import type { ObjectLocation } from "./layout.ts";
import { withStore } from "./_test_support.ts";
import { Store } from "./store.ts";

/**
 * `client` with a late put of key `key` pending until `settle()`; records every delete and
 * whether it came after the settling.
 */
function withLatePut(client: StoreClient, key: string) {
  let settle!: () => void;
  let settled = false;
  const pending = new Promise<void>((resolve) => settle = resolve).then(() => {
    settled = true;
  });
  const deletes: { key: string; afterSettled: boolean }[] = [];
  let ask!: () => void;
  /** Resolves once the store asked about the late put. */
  const asked = new Promise<void>((resolve) => ask = resolve);
  const isLate = (location: ObjectLocation) => Buffer.from(location.key).toString() === key;
  const wrapped: StoreClient = {
    ...client,
    delete(location, options) {
      deletes.push({ key: Buffer.from(location.key).toString(), afterSettled: settled });
      return client.delete(location, options);
    },
    lateWritesSettled(location) {
      if (!isLate(location) || settled) return Promise.resolve();
      ask();
      return pending;
    },
    awaitsLateWrites: (location) => isLate(location) && !settled,
  };
  return { client: wrapped, settle, deletes, asked };
}

for (const change of ["remove", "rename"] as const) {
  Deno.test(`${change} of a file waits for its late puts to settle before the name goes`, async () => {
    await withStore(async ({ client, bucket }) => {
      const late = withLatePut(client, "d/late.txt");
      const store = new Store(late.client, { namespace: { bucket } });
      await store.writeFile("d/late.txt", Buffer.from("late"));
      assert.equal(store.awaitsLateWrites("d/late.txt"), true);
      assert.equal(store.awaitsLateWrites("d/other.txt"), false);
      let done = false;
      const changing = (change === "remove"
        ? store.remove("d/late.txt")
        : store.rename("d/late.txt", "d/moved.txt")).then(() =>
          done = true
        );
      // Without the wait, the change would be over by now.
      await Promise.race([late.asked, changing]);
      assert.equal(done, false);
      assert.equal(late.deletes.length, 0, "nothing deleted while the put may land");
      // Looks go on meanwhile.
      assert.equal((await store.tryStat("d/late.txt"))?.size, 4);
      late.settle();
      await changing;
      assert.equal(await store.tryStat("d/late.txt"), undefined);
      assert.ok(late.deletes.length > 0);
      assert.ok(late.deletes.every((deleted) => deleted.afterSettled), "no delete before");
    });
  });
}

Deno.test("rename of a directory waits for the late puts of the files in it before their old names go", async () => {
  await withStore(async ({ client, bucket }) => {
    const late = withLatePut(client, "d/late.txt");
    const store = new Store(late.client, { namespace: { bucket } });
    await store.mkdir("d");
    await store.writeFile("d/late.txt", Buffer.from("late"));
    let done = false;
    const changing = store.rename("d", "e").then(() => done = true);
    // Without the wait, the rename would be over by now, d/late.txt's object deleted: the
    // put landing then would make it again under the directory's old name.
    await Promise.race([late.asked, changing]);
    assert.equal(done, false);
    assert.ok(
      late.deletes.every((deleted) => deleted.key !== "d/late.txt"),
      "d/late.txt not deleted while its put may land",
    );
    late.settle();
    await changing;
    assert.equal(await store.tryStat("d/late.txt"), undefined);
    assert.equal((await store.tryStat("e/late.txt"))?.size, 4);
    assert.ok(late.deletes.some((deleted) => deleted.key === "d/late.txt" && deleted.afterSettled));
  });
});

/**
 * `client` where the first set update adding `member` is late: a retry (the update itself)
 * stores it at once, and the first one lands again, as Riak applies it late, only when the
 * test calls `land()`; until then it is a write of that shard that may still land.
 */
function withLateEntryAdd(client: StoreClient, member: string) {
  let lateAdd: (() => Promise<void>) | undefined;
  let lateShard: string | undefined;
  let landNow!: () => void;
  const landing = new Promise<void>((resolve) => landNow = resolve);
  let landed = false;
  const settledAfterLanding = landing.then(() => lateAdd!()).then(() => {
    landed = true;
  });
  let ask!: () => void;
  /** Resolves once the store asked about the late add. */
  const asked = new Promise<void>((resolve) => ask = resolve);
  const isLate = (location: ObjectLocation) =>
    !landed && Buffer.from(location.key).toString("latin1") === lateShard;
  const wrapped: StoreClient = {
    ...client,
    async updateSet(location, change) {
      const adds = (change.add ?? []).map((added) => Buffer.from(added).toString());
      if (lateAdd === undefined && adds.includes(member)) {
        lateShard = Buffer.from(location.key).toString("latin1");
        lateAdd = () => client.updateSet(location, change);
      }
      await client.updateSet(location, change);
    },
    lateWritesSettled(location) {
      if (!isLate(location)) return client.lateWritesSettled?.(location) ?? Promise.resolve();
      ask();
      return settledAfterLanding;
    },
    awaitsLateWrites: (location) =>
      isLate(location) || (client.awaitsLateWrites?.(location) ?? false),
  };
  return { client: wrapped, land: () => landNow(), asked };
}

/** Names listed in directory `path`. */
async function listed(store: Store, path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of store.list(path)) names.push(entry.name.toString());
  return names.sort();
}

for (const type of ["file", "directory"] as const) {
  for (const change of ["remove", "rename"] as const) {
    Deno.test(`${change} of a ${type} waits for a late add of its entry, which would list the name again (sets are add-wins)`, async () => {
      await withStore(async ({ client, bucket }) => {
        const late = withLateEntryAdd(client, `${type === "file" ? "f" : "d"}:late`);
        const store = new Store(late.client, { namespace: { bucket } });
        await store.mkdir("d");
        if (type === "file") await store.writeFile("d/late", Buffer.from("late"));
        else await store.mkdir("d/late");
        const awaitedBefore = store.awaitsLateWrites("d/late");
        assert.equal(store.awaitsLateWrites("d/other"), false);
        let done = false;
        const changing =
          (change === "remove" ? store.remove("d/late") : store.rename("d/late", "d/moved")).then(
            () => done = true,
          );
        // Without the wait, the change is over before the add lands.
        await Promise.race([late.asked, changing]);
        const doneBeforeTheAdd = done;
        late.land();
        await changing;
        assert.deepEqual(await listed(store, "d"), change === "rename" ? ["moved"] : []);
        assert.equal(doneBeforeTheAdd, false, "the change waited for the add");
        assert.equal(awaitedBefore, true, "the add was known to be on its way");
        assert.equal(await store.tryStat("d/late"), undefined);
        assert.equal(store.awaitsLateWrites("d/late"), false);
      });
    });
  }
}
