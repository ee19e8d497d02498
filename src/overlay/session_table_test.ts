import assert from "node:assert/strict";
import type { FileIdentity } from "../migration/file_identity.ts";
import {
  holdsNothingWritten,
  SessionTable,
  takeAttributes,
  type WriteSession,
} from "./session_table.ts";

function session(overrides: Partial<WriteSession> = {}): WriteSession {
  return {
    path: "/f",
    mode: 0o644,
    uid: 1,
    gid: 2,
    dirty: false,
    committed: false,
    detached: false,
    refs: 1,
    queue: Promise.resolve(),
    ...overrides,
  } as WriteSession;
}

Deno.test("a session holds something written once dirty, committed or detached", () => {
  assert.equal(holdsNothingWritten(session()), true);
  assert.equal(holdsNothingWritten(session({ closed: true, unstaged: { size: 3 } })), true);
  for (const change of [{ dirty: true }, { committed: true }, { detached: true }]) {
    assert.equal(holdsNothingWritten(session(change)), false, JSON.stringify(change));
  }
});

Deno.test("takeAttributes sets the attributes given and keeps the others", () => {
  const taken = session({ mtimeNs: 5n, atimeNs: 6n });
  takeAttributes(taken, { uid: 7, mtimeNs: 8n }, undefined);
  assert.deepEqual(
    [taken.mode, taken.uid, taken.gid, taken.mtimeNs, taken.atimeNs],
    [0o644, 7, 2, 8n, 6n],
  );
  takeAttributes(taken, { mode: 0o600, gid: 9 }, 10n);
  assert.deepEqual(
    [taken.mode, taken.uid, taken.gid, taken.mtimeNs, taken.atimeNs],
    [0o600, 7, 9, 8n, 10n],
  );
});

/** A promise and its resolve, to hold an operation open until the test lets it end. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => resolve = done);
  return { promise, resolve };
}

/** `table` with a session started (and ready) at each of `paths`. */
async function tableWith(...paths: string[]): Promise<[SessionTable, ...WriteSession[]]> {
  const table = new SessionTable();
  const sessions = [];
  for (const path of paths) {
    sessions.push(await table.starting(path, () => Promise.resolve(session({ path })), () => {}));
  }
  return [table, ...sessions];
}

Deno.test("sessions held in opposite orders at once are taken in one order, without deadlock", async () => {
  const [table, a, b] = await tableWith("/a", "/b");
  const taken: string[] = [];
  // Given in opposite orders: each taking its first session before the other's second would
  // wait for the other forever (the test would end with its promises pending).
  const holds = [[a, b], [b, a]].map((sessions, holder) =>
    table.holding(sessions, () => {
      taken.push(`holder ${holder}`);
      return Promise.resolve(holder);
    })
  );
  assert.deepEqual(await Promise.all(holds), [0, 1]);
  assert.deepEqual(taken, ["holder 0", "holder 1"]);
});

Deno.test("holding takes the sessions by path order, each once, after what was queued on them", async () => {
  const [table, a, b, c] = await tableWith("/a", "/b", "/c");
  const events: string[] = [];
  const queuedOnB = deferred();
  const running = table.inSession(b, async () => {
    events.push("b's operation starts");
    await queuedOnB.promise;
    events.push("b's operation ends");
  });
  const held = table.holding([c, b, a, c], () => {
    events.push("body");
    return Promise.resolve("held");
  });
  // Queued on a while it is held: runs after the body, not before.
  const afterA = table.inSession(a, () => {
    events.push("a's later operation");
    return Promise.resolve();
  });
  await Promise.resolve();
  queuedOnB.resolve();
  assert.equal(await held, "held");
  await Promise.all([running, afterA]);
  assert.deepEqual(events, [
    "b's operation starts",
    "b's operation ends",
    "body",
    "a's later operation",
  ]);
});

Deno.test("a session's operations run one at a time in order; one that fails stops none after it", async () => {
  const [table, a] = await tableWith("/a");
  const events: string[] = [];
  const first = deferred();
  const one = table.inSession(a, async () => {
    events.push("one starts");
    await first.promise;
    events.push("one ends");
  });
  const two = table.inSession(a, () => Promise.reject(new Error("two fails")));
  const three = table.inSession(a, () => {
    events.push("three");
    return Promise.resolve(3);
  });
  first.resolve();
  await one;
  await assert.rejects(two, /two fails/);
  assert.equal(await three, 3);
  assert.deepEqual(events, ["one starts", "one ends", "three"]);
});

Deno.test("an open session is found by its path until closed; a newer one at the name stays", async () => {
  const [table, first] = await tableWith("/f");
  assert.equal(table.get("/f"), first);
  assert.equal(table.has("/f"), true);
  table.detach(first);
  assert.equal(first.detached, true);
  assert.equal(table.get("/f"), undefined);
  const second = await table.starting("/f", () => Promise.resolve(session()), () => {});
  assert.notEqual(second, first);
  // The detached one's last handle closes after the name went to the newer one.
  table.close(first);
  assert.equal(first.closed, true);
  assert.equal(table.get("/f"), second);
  table.detach(first);
  assert.equal(table.get("/f"), second);
  table.close(second);
  assert.equal(second.closed, true);
  assert.equal(table.has("/f"), false);
  assert.equal(table.size, 0);
  // A closed session is not joined: the next open starts a new one.
  const third = await table.starting("/f", () => Promise.resolve(session()), () => {});
  assert.equal(table.get("/f"), third);
  assert.notEqual(third, second);
});

Deno.test("a session being started is found by its start, and in the table once ready", async () => {
  const table = new SessionTable();
  const start = deferred<WriteSession>();
  const readyWith: (WriteSession | undefined)[] = [];
  const starting = table.starting("/f", () => start.promise, (ready) => {
    readyWith.push(table.get("/f"), ready);
  });
  assert.equal(table.startingAt("/f") !== undefined, true);
  assert.equal(table.get("/f"), undefined);
  const started = session();
  start.resolve(started);
  assert.equal(await starting, started);
  assert.deepEqual(readyWith, [started, started]);
  assert.equal(table.startingAt("/f"), undefined);
  assert.deepEqual([...table.values()], [started]);
});

Deno.test("a start that fails leaves nothing at its path and does not call ready", async () => {
  const table = new SessionTable();
  let readied = false;
  await assert.rejects(
    table.starting("/f", () => Promise.reject(new Error("no room")), () => readied = true),
    /no room/,
  );
  assert.equal(readied, false);
  assert.equal(table.startingAt("/f"), undefined);
  assert.equal(table.has("/f"), false);
});

Deno.test("startedAtOrBelow waits for the starts at or below the paths, failed ones too", async () => {
  const table = new SessionTable();
  const below = deferred<WriteSession>();
  const beside = deferred<WriteSession>();
  const belowStart = table.starting("/d/f", () => below.promise, () => {});
  const besideStart = table.starting("/dx", () => beside.promise, () => {});
  let waited = false;
  const waiting = table.startedAtOrBelow(["/d"]).then(() => waited = true);
  await Promise.resolve();
  assert.equal(waited, false);
  below.resolve(session({ path: "/d/f" }));
  await belowStart;
  await waiting;
  assert.equal(waited, true);
  // "/dx" is not below "/d": its start, never ready, was not waited for.
  assert.equal(table.startingAt("/dx") !== undefined, true);
  const failing = table.starting("/e", () => Promise.reject(new Error("failed")), () => {});
  await table.startedAtOrBelow(["/e"]);
  await assert.rejects(failing, /failed/);
  beside.resolve(session({ path: "/dx" }));
  await besideStart;
});

Deno.test("atOrBelow lists the sessions at a path and below it, not beside it", async () => {
  const [table, dir, file, beside] = await tableWith("/d", "/d/f", "/dx");
  assert.deepEqual(table.atOrBelow("/d"), [dir, file]);
  assert.deepEqual(table.atOrBelow("/d/f"), [file]);
  assert.deepEqual(table.atOrBelow("/dx"), [beside]);
  assert.deepEqual(table.atOrBelow("/e"), []);
});

Deno.test("a moved session takes its superseded local file to its new name", async () => {
  const [table, moving] = await tableWith("/a");
  const identity = { dev: 1n, ino: 2n } as unknown as FileIdentity;
  table.superseded.set("/a", identity);
  table.move(moving, "/b");
  assert.equal(moving.path, "/b");
  assert.equal(table.get("/a"), undefined);
  assert.equal(table.get("/b"), moving);
  assert.deepEqual([...table.superseded], [["/b", identity]]);
});

Deno.test("a session moved after its name went to another leaves that one in place", async () => {
  const [table, old] = await tableWith("/a");
  table.detach(old);
  const newer = await table.starting("/a", () => Promise.resolve(session()), () => {});
  table.move(old, "/b");
  assert.equal(table.get("/a"), newer);
  assert.equal(table.get("/b"), old);
});
