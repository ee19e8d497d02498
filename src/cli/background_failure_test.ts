import assert from "node:assert/strict";
import { backgroundFailureLines } from "./background_failure.ts";

Deno.test("a background mount's own error line reaches the terminal, with the log's name", () => {
  const written = "2026-12-07T18:00:00.000Z info starting\n" +
    "riakfs: --config cfgm.json: ENOENT: no such file or directory, open 'cfgm.json'\n";
  assert.deepEqual(backgroundFailureLines(written, "/run/riakfs/m.log"), [
    "riakfs: --config cfgm.json: ENOENT: no such file or directory, open 'cfgm.json' " +
    "(background process's log: /run/riakfs/m.log)",
  ]);
});

Deno.test("without a riakfs error line the last line written is shown; nothing written, the log", () => {
  const crash = "2026-12-07T18:00:00.000Z warn something\nSegmentation fault\n";
  assert.deepEqual(backgroundFailureLines(crash, "/l.log"), [
    "riakfs: Segmentation fault (background process's log: /l.log)",
  ]);
  assert.deepEqual(backgroundFailureLines("", "/l.log"), [
    "riakfs: the background process exited before the mount was ready (see /l.log)",
  ]);
});
