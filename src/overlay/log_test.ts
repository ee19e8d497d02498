import assert from "node:assert/strict";
import { Logger } from "./log.ts";

Deno.test("text and JSON lines carry the same fields; levels filter", () => {
  const lines: string[] = [];
  const sink = { write: (text: string) => lines.push(text) };
  const now = () => new Date("2026-11-25T01:02:03.004Z");
  const text = new Logger({ sink, now });
  text.info("upload done", { path: "/a b", bytes: 3, skipped: undefined });
  text.debug("hidden");
  const json = new Logger({ sink, now, format: "json", level: "debug" });
  json.debug("shown", { ok: true });
  assert.deepEqual(lines, [
    '2026-11-25T01:02:03.004Z info upload done path="/a b" bytes=3\n',
    '{"time":"2026-11-25T01:02:03.004Z","level":"debug","message":"shown","ok":true}\n',
  ]);
});

Deno.test("syslog lines start with the priority and the pid, the collector adds the time", () => {
  const lines: string[] = [];
  const log = new Logger({ sink: { write: (text: string) => lines.push(text) }, format: "syslog" });
  log.warn("Riak unreachable", { node: "10.0.0.1:8087" });
  log.error("mirror refused");
  assert.deepEqual(lines, [
    `<4>riakfs[${process.pid}]: warn Riak unreachable node=10.0.0.1:8087\n`,
    `<3>riakfs[${process.pid}]: error mirror refused\n`,
  ]);
});
