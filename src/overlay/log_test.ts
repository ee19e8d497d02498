import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { FileDescriptorSink, Logger } from "./log.ts";
import { withFullFilesystem } from "../util/_full_filesystem.ts";

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

Deno.test("a log on a full disk loses lines without throwing, and says how many once it fits", async () => {
  await withFullFilesystem(({ directory, makeRoom }) => {
    const file = join(directory, "riakfs.log");
    const fd = openSync(file, "a");
    try {
      const now = () => new Date("2026-11-25T01:02:03.004Z");
      const log = new Logger({ sink: new FileDescriptorSink(fd), now });
      log.info("first");
      log.warn("second", { path: "/a" });
      assert.equal(readFileSync(file, "utf8"), "", "nothing fits");
      makeRoom(4096);
      log.info("third");
      assert.deepEqual(readFileSync(file, "utf8").split("\n"), [
        "",
        "2026-11-25T01:02:03.004Z warn log lines lost: the log could not be written (disk full?) lines=2",
        "2026-11-25T01:02:03.004Z info third",
        "",
      ]);
      // The page fills up in the middle of a line: the line after it is a line of its own.
      for (let index = 0; index < 200; index++) log.info(`line ${index}`);
      assert.equal(statSync(file).size, 4096, "the page filled up");
      assert.ok(!readFileSync(file, "utf8").endsWith("\n"), "within a line");
      makeRoom(4096);
      log.info("after");
      const lines = readFileSync(file, "utf8").split("\n");
      assert.match(lines.at(-3)!, /^2026-11-25T01:02:03.004Z warn log lines lost/);
      assert.equal(lines.at(-2), "2026-11-25T01:02:03.004Z info after");
    } finally {
      closeSync(fd);
    }
  });
});

Deno.test("a sink that throws loses the line, and the logger goes on", () => {
  const lines: string[] = [];
  let refuse = true;
  const log = new Logger({
    sink: {
      write: (text: string) => {
        if (refuse) throw Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
        lines.push(text);
      },
    },
    now: () => new Date("2026-11-25T01:02:03.004Z"),
    format: "json",
  });
  log.error("lost");
  refuse = false;
  log.info("kept");
  assert.equal(lines.length, 2);
  assert.equal(JSON.parse(lines[0]).lines, 1);
  assert.equal(JSON.parse(lines[1]).message, "kept");
});
