/**
 * The original riak-fuse's command-line flags (`riak-fuse.py -s SRC -t MNT -rh HOST ...`),
 * translated into riakfs mount flags so existing supervisord lines keep working. Commander
 * cannot parse multi-letter single-dash flags such as `-rh`, so the argv is rewritten before
 * commander sees it, and one hint line per old flag tells the operator the new spelling.
 *
 * riak-fuse's behaviour without flags was: reads and listings from the local source, every
 * close uploads the file into Riak, the local copy kept, buckets `IMG_<folder>` and
 * `IMGDIR_<folder>`. That is riakfs's `shadow` preset with the `riak-fuse` layout, so a
 * translated argv gets `--preset shadow --layout riak-fuse` unless it names its own; with
 * `-dell` (local copies deleted once in Riak) it gets `--preset drain`, which reads and
 * lists Riak first so the deleted files stay visible.
 *
 * @module
 */

/** Default host and port riak-fuse used (`-rh`, `-rp`). */
const RIAK_FUSE_DEFAULT_HOST = "localhost";
const RIAK_FUSE_DEFAULT_PORT = 8087;

/** What a legacy flag becomes. */
type Translation =
  | { kind: "source" }
  | { kind: "target" }
  | { kind: "host" }
  | { kind: "port" }
  | { kind: "value"; flag: string; numeric?: boolean }
  | { kind: "switch"; flags: string[] }
  | { kind: "dropped"; reason: string };

interface LegacyFlag {
  names: string[];
  translation: Translation;
}

/** riak-fuse's flags (short and long spellings) and their riakfs meaning. */
const LEGACY_FLAGS: LegacyFlag[] = [
  { names: ["-s", "--source"], translation: { kind: "source" } },
  { names: ["-t", "--target"], translation: { kind: "target" } },
  { names: ["-rh", "--riakhost"], translation: { kind: "host" } },
  { names: ["-rp", "--riakport"], translation: { kind: "port" } },
  {
    names: ["-rnp", "--riak_namespace_prefix"],
    translation: { kind: "value", flag: "--riak-fuse-content-prefix" },
  },
  {
    names: ["-rdnp", "--riak_directory_namespace_prefix"],
    translation: { kind: "value", flag: "--riak-fuse-directory-prefix" },
  },
  {
    names: ["-rbt", "--riak_directory_set_buckettype"],
    translation: { kind: "value", flag: "--sets-bucket-type" },
  },
  {
    names: ["-rdk", "--riak_directory_set_directorykey"],
    translation: { kind: "value", flag: "--riak-fuse-directory-key" },
  },
  {
    names: ["-rct", "--riak_content_type"],
    translation: { kind: "value", flag: "--riak-fuse-content-type" },
  },
  {
    names: ["-dell", "--delete_local"],
    translation: { kind: "switch", flags: ["--after-transfer", "delete"] },
  },
  {
    names: ["-ddir", "--disable_maintain_directory"],
    translation: {
      kind: "dropped",
      reason: "riakfs always keeps directory listings in Riak (listings from Riak need them)",
    },
  },
  {
    names: ["-rreadcontent", "--use_riak_read_content"],
    translation: { kind: "switch", flags: ["--reads", "riak-then-local"] },
  },
  {
    names: ["-rreaddir", "--use_riak_read_directory"],
    translation: { kind: "switch", flags: ["--listings", "union"] },
  },
  {
    names: ["-rfuid", "--riak_contents_file_uid"],
    translation: { kind: "value", flag: "--default-uid", numeric: true },
  },
  {
    names: ["-rfgid", "--riak_contents_file_gid"],
    translation: { kind: "value", flag: "--default-gid", numeric: true },
  },
];

/** `-f/--foreground` is also a riakfs flag; it is translated only next to legacy flags. */
const FOREGROUND_NAMES = ["-f", "--foreground"];

/** A legacy flag was given without its value, or with a malformed one. */
export class LegacyFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LegacyFlagError";
  }
}

/** The rewritten argv and one hint per legacy flag found. */
export interface LegacyTranslation {
  /** The argv commander should parse. Unchanged when no legacy flag was present. */
  argv: string[];
  /** One line per legacy flag: `riakfs: -rh is riak-fuse's flag; use --riak HOST:PORT`. */
  hints: string[];
  /** Whether any legacy flag was present. */
  legacy: boolean;
}

/**
 * Whether `arg` is one of riak-fuse's flags (`-s`, `-rh HOST`, `--riakhost=HOST`...): a
 * command line that starts with one is riak-fuse's, which only ever mounted.
 *
 * @example
 * ```ts
 * isLegacyFlag("-s"); // true
 * isLegacyFlag("--preset"); // false
 * ```
 */
export function isLegacyFlag(arg: string): boolean {
  return findLegacy(nameOf(arg)) !== undefined;
}

/**
 * Rewrites the arguments of `riakfs mount` that use riak-fuse's flags into riakfs's flags.
 * Everything after `--` is left alone. Throws {@link LegacyFlagError} (one line) when a
 * legacy flag lacks its value.
 *
 * @example
 * ```ts
 * translateLegacyFlags(["-s", "/data", "-t", "/mnt/data", "-rh", "riak1", "-dell"]).argv;
 * // ["--after-transfer", "delete", "--riak", "riak1:8087", "--layout", "riak-fuse",
 * //  "--preset", "shadow", "/data", "/mnt/data"]
 * ```
 */
export function translateLegacyFlags(argv: readonly string[]): LegacyTranslation {
  const end = argv.indexOf("--");
  const options = end === -1 ? argv : argv.slice(0, end);
  const rest = end === -1 ? [] : argv.slice(end);
  if (!options.some((arg) => findLegacy(nameOf(arg)) !== undefined)) {
    return { argv: [...argv], hints: [], legacy: false };
  }

  const out: string[] = [];
  const hints: string[] = [];
  let source: string | undefined;
  let target: string | undefined;
  let host: string | undefined;
  let port: number | undefined;
  for (let index = 0; index < options.length; index++) {
    const arg = options[index];
    const name = nameOf(arg);
    if (FOREGROUND_NAMES.includes(name) && name === arg) {
      out.push("--foreground");
      if (arg !== "--foreground") hints.push(hint(arg, "--foreground"));
      continue;
    }
    const legacy = findLegacy(name);
    if (!legacy) {
      out.push(arg);
      continue;
    }
    const translation = legacy.translation;
    const takesValue = translation.kind !== "switch" && translation.kind !== "dropped";
    let value: string | undefined;
    if (takesValue) {
      if (arg.length > name.length) value = arg.slice(name.length + 1);
      else if (index + 1 < options.length) value = options[++index];
      if (value === undefined || value === "") {
        throw new LegacyFlagError(`riak-fuse flag ${name} needs a value`);
      }
    }
    switch (translation.kind) {
      case "source":
        source = value;
        hints.push(hint(name, "the first argument: riakfs mount SOURCE MOUNTPOINT"));
        break;
      case "target":
        target = value;
        hints.push(hint(name, "the second argument: riakfs mount SOURCE MOUNTPOINT"));
        break;
      case "host":
        host = riakFuseHost(name, value!);
        hints.push(hint(name, "--riak HOST:PORT (with --layout riak-fuse)"));
        break;
      case "port":
        port = parsePort(name, value!);
        hints.push(hint(name, "--riak HOST:PORT (with --layout riak-fuse)"));
        break;
      case "value":
        if (translation.numeric && !/^\d+$/.test(value!)) {
          throw new LegacyFlagError(`riak-fuse flag ${name} needs a number, got ${value}`);
        }
        out.push(translation.flag, value!);
        hints.push(hint(name, `${translation.flag} ${value}`));
        break;
      case "switch":
        out.push(...translation.flags);
        hints.push(hint(name, translation.flags.join(" ")));
        break;
      case "dropped":
        hints.push(`riakfs: riak-fuse flag ${name} is ignored: ${translation.reason}`);
        break;
    }
  }
  if (host !== undefined || port !== undefined) {
    out.push(
      "--riak",
      `${host ?? RIAK_FUSE_DEFAULT_HOST}:${port ?? RIAK_FUSE_DEFAULT_PORT}`,
    );
  }
  // `--layout=X` and `--preset=X` name theirs too.
  if (layoutOf(out) === undefined) out.push("--layout", "riak-fuse");
  if (!out.some((arg) => nameOf(arg) === "--preset")) {
    // With -dell the local copies go once in Riak: only reading and listing Riak first keeps
    // those files there for the applications, which is the drain preset.
    const deletes = options.some((arg) => findLegacy(nameOf(arg))?.names[0] === "-dell");
    const preset = deletes ? "drain" : "shadow";
    out.push("--preset", preset);
    hints.push(
      `riakfs: riak-fuse's behaviour${
        deletes ? " with -dell" : ""
      } is --preset ${preset} --layout riak-fuse (see riakfs mount --help)`,
    );
  }
  if (source !== undefined || target !== undefined) {
    if (source === undefined || target === undefined) {
      throw new LegacyFlagError("riak-fuse flags -s SOURCE and -t TARGET must be given together");
    }
    out.push(source, target);
  }
  refuseTwice(out);
  const layout = layoutOf(out);
  if ((host !== undefined || port !== undefined) && layout !== "riak-fuse") {
    // Their hints say "(with --layout riak-fuse)": riak-fuse's Riak holds riak-fuse's layout.
    throw new LegacyFlagError(
      `riak-fuse flags -rh and -rp mean --layout riak-fuse, not --layout ${layout}: ` +
        "give --riak HOST:PORT instead",
    );
  }
  return { argv: [...out, ...rest], hints, legacy: true };
}

/**
 * A setting given by a riak-fuse flag and again by its riakfs spelling (`-rh` and `--riak`,
 * `-dell` and `--after-transfer keep`), or riak-fuse's prefixes with another layout, is
 * refused: whichever came last would win silently.
 */
function refuseTwice(argv: readonly string[]): void {
  const seen = new Set<string>();
  for (const arg of argv) {
    const name = nameOf(arg);
    if (!TRANSLATED_FLAGS.has(name)) continue;
    if (seen.has(name)) {
      throw new LegacyFlagError(
        `${name} is given twice (once by a riak-fuse flag): give the setting once`,
      );
    }
    seen.add(name);
  }
  const layout = layoutOf(argv);
  if (layout !== "riak-fuse" && argv.some((arg) => nameOf(arg).startsWith("--riak-fuse-"))) {
    throw new LegacyFlagError(
      `riak-fuse's prefixes and keys (-rnp, -rdnp, -rdk, -rct) need --layout riak-fuse, not --layout ${layout}`,
    );
  }
}

/** The value of `--layout` in `argv` (`--layout X` or `--layout=X`), if given. */
function layoutOf(argv: readonly string[]): string | undefined {
  const layoutAt = argv.findIndex((arg) => nameOf(arg) === "--layout");
  if (layoutAt === -1) return undefined;
  return argv[layoutAt].includes("=")
    ? argv[layoutAt].slice(argv[layoutAt].indexOf("=") + 1)
    : argv[layoutAt + 1];
}

/** The riakfs flags riak-fuse's flags translate to (see {@link refuseTwice}). */
const TRANSLATED_FLAGS = new Set([
  "--riak",
  "--layout",
  "--preset",
  ...LEGACY_FLAGS.flatMap(({ translation }) =>
    translation.kind === "value"
      ? [translation.flag]
      : translation.kind === "switch"
      ? [translation.flags[0]]
      : []
  ),
]);

function hint(oldFlag: string, newSpelling: string): string {
  return `riakfs: ${oldFlag} is riak-fuse's flag; riakfs spells it ${newSpelling}`;
}

/** The flag name of an argument: `-rh=x` -> `-rh`. */
function nameOf(arg: string): string {
  if (!arg.startsWith("-")) return arg;
  const equals = arg.indexOf("=");
  return equals === -1 ? arg : arg.slice(0, equals);
}

function findLegacy(name: string): LegacyFlag | undefined {
  return LEGACY_FLAGS.find((flag) => flag.names.includes(name));
}

/**
 * riak-fuse's `-rh` value as the host of a `--riak` node: an IPv6 address in brackets. A port
 * there (`riak1:8087`) is refused: riak-fuse took it from `-rp` alone, and `--riak` would read
 * `riak1:8087:8087`.
 */
function riakFuseHost(flag: string, value: string): string {
  const colons = value.split(":").length - 1;
  if (colons >= 2) return `[${value}]`; // An IPv6 address (node:net is too heavy for start-up).
  if (colons === 1) {
    throw new LegacyFlagError(
      `riak-fuse flag ${flag} takes a host name or address (its port goes in -rp), got ${value}`,
    );
  }
  return value;
}

function parsePort(flag: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new LegacyFlagError(`riak-fuse flag ${flag} needs a port number, got ${value}`);
  }
  return port;
}
