import assert from "node:assert/strict";
import * as fs from "node:fs";
import { readAnswer, ReadyChannel, StartLogger } from "./ready_channel.ts";

Deno.test("the start's warnings reach the starting command before ready, and nothing after it", () => {
  const directory = Deno.makeTempDirSync({ prefix: "riakfs-ready-" });
  try {
    const file = `${directory}/channel`;
    const channel = new ReadyChannel(String(fs.openSync(file, "w")));
    const logger = new StartLogger(channel, { sink: { write: () => true } });
    logger.info("replaying upload journal", { pending: 1 });
    logger.warn("Riak unreachable", { error: "no Riak node answered" });
    channel.end("ready");
    logger.warn("later");
    assert.deepEqual(readAnswer(fs.readFileSync(file, "utf8")), {
      warnings: ["Riak unreachable error=no Riak node answered"],
      last: "ready",
    });
  } finally {
    Deno.removeSync(directory, { recursive: true });
  }
});

Deno.test("an answer without its last line reads as none", () => {
  assert.deepEqual(readAnswer("warn a\n"), { warnings: ["a"], last: "" });
  assert.deepEqual(readAnswer("error cannot mount\n"), {
    warnings: [],
    last: "error cannot mount",
  });
});
