import assert from "node:assert/strict";
import { holdsNothingWritten, takeAttributes, type WriteSession } from "./session_table.ts";

function session(overrides: Partial<WriteSession> = {}): WriteSession {
  return {
    path: "/f",
    mode: 0o644,
    uid: 1,
    gid: 2,
    dirty: false,
    committed: false,
    detached: false,
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
