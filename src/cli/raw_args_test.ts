import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Command, CommanderError } from "commander";
import { seededRandom } from "../util/random.ts";
import { argumentBytes, exactArguments, requireTextPath } from "./raw_args.ts";

/** /proc/self/cmdline's form of a command line. */
function cmdline(...entries: Array<string | Buffer>): Buffer {
  return Buffer.concat(entries.flatMap((entry) => [Buffer.from(entry), Buffer.of(0)]));
}

/** What the runtime makes of the user's arguments: lenient UTF-8 decoding. */
function decode(...entries: Array<string | Buffer>): string[] {
  return entries.map((entry) => Buffer.from(entry).toString("utf8"));
}

const LATIN1_E = Buffer.from("caf\xe9.txt", "latin1");
const LATIN1_GRAVE = Buffer.from("caf\xe8.txt", "latin1");

Deno.test("the user's arguments are the last entries, whatever the runtime put before them", () => {
  const user = ["cat", LATIN1_E, "--json"];
  const runtimes = [
    ["node", "--no-warnings", "dist/riakfs.cjs"],
    ["./riakfs"], // the single executable: argv[1] repeats the binary, cmdline has it once
    ["deno", "run", "-A", "src/cli/main.ts"],
  ];
  for (const runtime of runtimes) {
    const args = exactArguments(decode(...user), cmdline(...runtime, ...user));
    assert.deepEqual(args, ["cat", "caf\udce9.txt", "--json"], runtime.join(" "));
    assert.ok(argumentBytes(args[1]).equals(LATIN1_E));
  }
});

Deno.test("two names UTF-8 decoding makes one stay apart, also as --opt=value", () => {
  const user = ["verify", "/srv", LATIN1_E, LATIN1_GRAVE, LATIN1_E, "--include=caf\xe9*"];
  const raw = user.map((entry) => typeof entry === "string" ? Buffer.from(entry, "latin1") : entry);
  const decoded = decode(...raw);
  assert.equal(decoded[2], decoded[3], "the runtime cannot tell them apart");
  const args = exactArguments(decoded, cmdline("./riakfs", ...raw));
  assert.deepEqual(args.map((arg) => argumentBytes(arg)), raw);
  assert.equal(args[2], args[4]);
  assert.notEqual(args[2], args[3]);
});

Deno.test("text arguments stay as they are, U+FFFD and emoji included", () => {
  const user = ["ls", "café/\u{1F600}", "\uFFFD", "", "--json"];
  assert.deepEqual(exactArguments(user, cmdline("./riakfs", ...user)), user);
  for (const arg of user) assert.ok(argumentBytes(arg).equals(Buffer.from(arg)));
});

Deno.test("where cmdline does not match the arguments, they are kept as the runtime decoded them", () => {
  const decoded = decode("cat", LATIN1_E);
  assert.deepEqual(exactArguments(decoded, undefined), decoded, "no /proc");
  assert.deepEqual(exactArguments(decoded, cmdline(LATIN1_E)), decoded, "fewer entries");
  assert.deepEqual(
    exactArguments(decoded, cmdline("riakfs: serving /srv", "cat", "other")),
    decoded,
    "a command line rewritten (process.title)",
  );
  // Without its last NUL, the last entry still counts.
  const unterminated = cmdline("./riakfs", "cat", LATIN1_E).subarray(0, -1);
  assert.deepEqual(exactArguments(decoded, unterminated), ["cat", "caf\udce9.txt"]);
});

Deno.test("every byte sequence comes back exactly, valid UTF-8 inside it kept as text", () => {
  const edges = [
    [0xe2, 0x82], // a truncated three-byte character
    [0xf0, 0x9f, 0x98], // a truncated four-byte character
    [0xed, 0xa0, 0x80], // an encoded surrogate
    [0xc0, 0x80], // overlong NUL
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0x80, 0xbf, 0xff, 0xfe],
    [0xc3, 0xa9, 0xe9, 0xc3],
  ].map((bytes) => Buffer.from(bytes));
  const random = seededRandom(7);
  const samples = [...edges];
  for (let i = 0; i < 2000; i++) {
    const length = 1 + Math.floor(random() * 12);
    // Mostly bytes of multi-byte characters, so valid and broken ones both turn up.
    const bytes = Array.from(
      { length },
      () => random() < 0.2 ? 0x61 : 0x80 + Math.floor(random() * 0x80),
    );
    samples.push(Buffer.from(bytes));
  }
  for (const bytes of samples) {
    const [arg] = exactArguments(decode(bytes), cmdline("./riakfs", bytes));
    assert.ok(argumentBytes(arg).equals(bytes), bytes.toString("hex"));
    const text = bytes.toString("utf8");
    if (Buffer.from(text).equals(bytes)) assert.equal(arg, text, "valid UTF-8 is plain text");
  }
  const [mixed] = exactArguments(
    decode(Buffer.from([0xc3, 0xa9, 0xe9])),
    cmdline(Buffer.from([0xc3, 0xa9, 0xe9])),
  );
  assert.equal(mixed, "é\udce9");
});

Deno.test("a directory argument that is not UTF-8 is a usage error naming its bytes", () => {
  const command = new Command("prewarm").exitOverride().configureOutput({ writeErr: () => {} });
  requireTextPath(command, "SOURCE", "/srv/café");
  assert.throws(
    () => requireTextPath(command, "SOURCE", "/srv/caf\udce9"),
    (error: unknown) =>
      error instanceof CommanderError && error.exitCode === 2 &&
      /^riakfs: SOURCE \/srv\/caf\\xe9 is not UTF-8, .*any bytes\)$/.test(error.message),
  );
  assert.throws(
    () => requireTextPath(command, "SOURCE", "/srv/caf\udce9", "use a symlink"),
    /any bytes\); use a symlink$/,
  );
});
