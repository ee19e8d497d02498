/**
 * Mount modes: five orthogonal knobs say where reads, writes and listings go, and named
 * presets set all five at once. Any knob may be overridden after the preset; combinations
 * that would make files unreachable are refused with a one-line {@link ModeError}.
 *
 * | preset      | reads           | copy-on-read | writes     | after transfer | listings |
 * | ----------- | --------------- | ------------ | ---------- | -------------- | -------- |
 * | passthrough | local           | no           | local      | keep           | local    |
 * | shadow      | local           | yes          | local+riak | keep           | local    |
 * | migrate     | riak-then-local | yes          | riak+local | keep           | union    |
 * | drain       | riak-then-local | yes          | riak       | delete         | union    |
 * | riak        | riak            | no           | riak       | keep           | riak     |
 *
 * @module
 */

/** Where file contents are read from. */
export type ReadSource = "local" | "riak-then-local" | "riak";

/**
 * Where writes go. `local+riak`: the local file is the truth, written as in the passthrough,
 * and a journaled copy goes to Riak after close; fsync waits for Riak's acknowledgement of
 * the file as it then is. `riak+local`: the same, but what readers see is Riak's copy once
 * the upload is done (a file only Riak holds is fetched into the source before a write).
 * `riak`: staged in the spool, uploaded, never written to the source.
 */
export type WriteTarget = "local" | "local+riak" | "riak+local" | "riak";

/** What happens to the local copy once Riak holds a verified copy of the file. */
export type AfterTransfer = "keep" | "delete";

/** Where directory listings come from. */
export type ListingSource = "local" | "union" | "riak";

/** The five knobs that describe a mount. */
export interface MountMode {
  reads: ReadSource;
  /** Whether reading a file completely queues a background copy into Riak. */
  copyOnRead: boolean;
  writes: WriteTarget;
  afterTransfer: AfterTransfer;
  listings: ListingSource;
}

/** The names of the presets. */
export type PresetName = "passthrough" | "shadow" | "migrate" | "drain" | "riak";

/** The presets, exactly as the table (and the README) describes them. */
export const PRESETS: Readonly<Record<PresetName, Readonly<MountMode>>> = Object.freeze({
  passthrough: {
    reads: "local",
    copyOnRead: false,
    writes: "local",
    afterTransfer: "keep",
    listings: "local",
  },
  shadow: {
    reads: "local",
    copyOnRead: true,
    writes: "local+riak",
    afterTransfer: "keep",
    listings: "local",
  },
  migrate: {
    reads: "riak-then-local",
    copyOnRead: true,
    writes: "riak+local",
    afterTransfer: "keep",
    listings: "union",
  },
  drain: {
    reads: "riak-then-local",
    copyOnRead: true,
    writes: "riak",
    afterTransfer: "delete",
    listings: "union",
  },
  riak: {
    reads: "riak",
    copyOnRead: false,
    writes: "riak",
    afterTransfer: "keep",
    listings: "riak",
  },
});

/** The preset a mount gets when none is named. */
export const DEFAULT_PRESET: PresetName = "passthrough";

/** Allowed values of each knob, in the order help text lists them. */
export const KNOB_VALUES = {
  reads: ["local", "riak-then-local", "riak"],
  copyOnRead: ["yes", "no"],
  writes: ["local", "local+riak", "riak+local", "riak"],
  afterTransfer: ["keep", "delete"],
  listings: ["local", "union", "riak"],
} as const;

/** The command-line flag of each knob (used in messages and help). */
export const KNOB_FLAGS: Readonly<Record<keyof MountMode, string>> = {
  reads: "--reads",
  copyOnRead: "--copy-on-read",
  writes: "--writes",
  afterTransfer: "--after-transfer",
  listings: "--listings",
};

/** A knob value or combination that cannot work; the message is one line for the operator. */
export class ModeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModeError";
  }
}

/** Knob overrides as text, as they come from flags or a config file. */
export interface ModeOverrides {
  reads?: string;
  copyOnRead?: string | boolean;
  writes?: string;
  afterTransfer?: string;
  listings?: string;
}

/** Whether `name` is a preset. */
export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/**
 * Resolves a preset plus overrides into a checked mode.
 *
 * @example
 * ```ts
 * resolveMode("migrate", { afterTransfer: "delete" });
 * // { reads: "riak-then-local", copyOnRead: true, writes: "riak+local", afterTransfer: "delete", listings: "union" }
 * ```
 */
export function resolveMode(
  preset: string = DEFAULT_PRESET,
  overrides: ModeOverrides = {},
): MountMode {
  if (!isPresetName(preset)) {
    throw new ModeError(
      `--preset must be one of ${Object.keys(PRESETS).join(", ")}, got ${JSON.stringify(preset)}`,
    );
  }
  const mode: MountMode = { ...PRESETS[preset] };
  if (overrides.reads !== undefined) mode.reads = pick("reads", overrides.reads);
  if (overrides.copyOnRead !== undefined) {
    mode.copyOnRead = typeof overrides.copyOnRead === "boolean"
      ? overrides.copyOnRead
      : pick("copyOnRead", overrides.copyOnRead) === "yes";
  }
  if (overrides.writes !== undefined) mode.writes = pick("writes", overrides.writes);
  if (overrides.afterTransfer !== undefined) {
    mode.afterTransfer = pick("afterTransfer", overrides.afterTransfer);
  }
  if (overrides.listings !== undefined) mode.listings = pick("listings", overrides.listings);
  checkMode(mode);
  return mode;
}

/** Throws {@link ModeError} when the knobs contradict each other. */
export function checkMode(mode: MountMode): void {
  const usesSource = mode.reads !== "riak";
  if (!usesSource) {
    if (mode.writes !== "riak") {
      refuse("--reads riak does not use the source, so --writes must be riak", mode);
    }
    if (mode.listings !== "riak") {
      refuse("--reads riak does not use the source, so --listings must be riak", mode);
    }
    if (mode.copyOnRead) refuse("--copy-on-read yes needs a source to copy from", mode);
    if (mode.afterTransfer === "delete") {
      refuse("--after-transfer delete needs a source to delete from", mode);
    }
    return;
  }
  if (mode.listings === "riak") {
    refuse("--listings riak would hide files that exist only locally; use union", mode);
  }
  if (mode.reads === "local") {
    if (mode.writes === "riak") {
      refuse("--writes riak with --reads local: written files could not be read back", mode);
    }
    if (mode.afterTransfer === "delete") {
      refuse("--after-transfer delete with --reads local: deleted files could not be read", mode);
    }
  }
  if (mode.listings === "local" && mode.writes === "riak") {
    refuse("--writes riak with --listings local: written files would not be listed", mode);
  }
  if (mode.listings === "local" && mode.afterTransfer === "delete") {
    refuse(
      "--after-transfer delete with --listings local: deleted files would not be listed",
      mode,
    );
  }
}

/** Whether the mount talks to Riak at all. */
export function usesRiak(mode: MountMode): boolean {
  return mode.reads !== "local" || mode.writes !== "local" || mode.copyOnRead ||
    mode.listings !== "local";
}

/** Whether the mount reads or writes the source directory. */
export function usesSource(mode: MountMode): boolean {
  return mode.reads !== "riak";
}

/** Whether written files go to Riak at all (staged, or mirrored after close). */
export function writesRiak(mode: MountMode): boolean {
  return mode.writes !== "local";
}

/**
 * Whether file contents are written to a staged file in the spool, then uploaded, never
 * to the source.
 */
export function stagesWrites(mode: MountMode): boolean {
  return mode.writes === "riak";
}

/** Whether file contents are written to the local file, then mirrored into Riak. */
export function mirrorsWrites(mode: MountMode): boolean {
  return mode.writes === "local+riak" || mode.writes === "riak+local";
}

/** Whether written files land in the source directory. */
export function writesLocal(mode: MountMode): boolean {
  return mode.writes === "local" || mode.writes === "local+riak" ||
    mode.writes === "riak+local";
}

/** Whether a copy-on-read moves a file from the source into Riak, deleting the local copy. */
export function copiesMoveFiles(mode: MountMode): boolean {
  return writesRiak(mode) && mode.afterTransfer === "delete";
}

/** The preset whose knobs equal `mode`, if any (for status output). */
export function presetOf(mode: MountMode): PresetName | undefined {
  for (const [name, preset] of Object.entries(PRESETS) as [PresetName, MountMode][]) {
    if (sameMode(preset, mode)) return name;
  }
  return undefined;
}

/** The mode as flags, e.g. for logs: `--reads local --copy-on-read no ...`. */
export function describeMode(mode: MountMode): string {
  return [
    `${KNOB_FLAGS.reads} ${mode.reads}`,
    `${KNOB_FLAGS.copyOnRead} ${mode.copyOnRead ? "yes" : "no"}`,
    `${KNOB_FLAGS.writes} ${mode.writes}`,
    `${KNOB_FLAGS.afterTransfer} ${mode.afterTransfer}`,
    `${KNOB_FLAGS.listings} ${mode.listings}`,
  ].join(" ");
}

/**
 * The mode `flags` names: `--preset NAME` or the five knobs as {@link describeMode} writes
 * them; undefined when it names none (an unknown preset, a contradiction).
 *
 * @example
 * ```ts
 * parseModeFlags("--preset shadow")?.listings; // "local"
 * ```
 */
export function parseModeFlags(flags: string): MountMode | undefined {
  const words = flags.split(" ");
  const knobs = Object.entries(KNOB_FLAGS) as [keyof MountMode, string][];
  try {
    if (words.length === 2 && words[0] === "--preset") return resolveMode(words[1]);
    if (words.length !== 2 * knobs.length) return undefined;
    const overrides: ModeOverrides = {};
    for (let at = 0; at < words.length; at += 2) {
      const knob = knobs.find(([, flag]) => flag === words[at])?.[0];
      if (knob === undefined) return undefined;
      overrides[knob] = words[at + 1];
    }
    return resolveMode(DEFAULT_PRESET, overrides);
  } catch (error) {
    if (error instanceof ModeError) return undefined;
    throw error;
  }
}

/**
 * The preset table as plain text for `riakfs mount --help` (the README carries the same
 * table in Markdown).
 */
export function renderModeTable(): string {
  const header = ["preset", "reads", "copy-on-read", "writes", "after transfer", "listings"];
  const rows = (Object.entries(PRESETS) as [PresetName, MountMode][]).map(([name, mode]) => [
    name,
    mode.reads,
    mode.reads === "riak" ? "-" : mode.copyOnRead ? "yes" : "no",
    mode.writes,
    mode.reads === "riak" ? "-" : mode.afterTransfer,
    mode.listings,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function pick<K extends keyof typeof KNOB_VALUES>(
  knob: K,
  value: string,
): (typeof KNOB_VALUES)[K][number] {
  const allowed: readonly string[] = KNOB_VALUES[knob];
  if (!allowed.includes(value)) {
    throw new ModeError(
      `${KNOB_FLAGS[knob]} must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as (typeof KNOB_VALUES)[K][number];
}

function refuse(reason: string, mode: MountMode): never {
  throw new ModeError(`${reason} (mode: ${describeMode(mode)})`);
}

function sameMode(a: MountMode, b: MountMode): boolean {
  return a.reads === b.reads && a.copyOnRead === b.copyOnRead && a.writes === b.writes &&
    a.afterTransfer === b.afterTransfer && a.listings === b.listings;
}
