/**
 * The usermeta pairs riakfs writes on every object at a path key (file, manifest, directory,
 * symlink). Plain Riak tools show them as HTTP headers (under their bare names: Riak adds no
 * `X-Riak-Meta-` prefix to usermeta written over protocol buffers), so the names are lowercase
 * ASCII with dashes and every value is decimal, octal or hex text.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Version of the layout written by this code; readers refuse newer ones. */
export const LAYOUT_VERSION = 1;

/** Usermeta names, as documented in docs/layout.md. */
export const USERMETA = {
  layout: "riakfs-layout",
  type: "riakfs-type",
  storage: "riakfs-storage",
  size: "riakfs-size",
  mode: "riakfs-mode",
  uid: "riakfs-uid",
  gid: "riakfs-gid",
  mtimeNs: "riakfs-mtime-ns",
  /** Set only once an access time was set explicitly (utimens); else it shows the mtime. */
  atimeNs: "riakfs-atime-ns",
  sha256: "riakfs-sha256",
  /**
   * Set on a chunked file's old object while it is renamed: hex of the new path (several
   * paths comma-separated, see {@link renamePartners}).
   */
  renamedTo: "riakfs-renamed-to",
  /**
   * Set on a chunked file's new object by a rename: hex of the old path, which shares its
   * generation until the rename ends (a crash can leave both); comma-separated like
   * `renamedTo`.
   */
  renamedFrom: "riakfs-renamed-from",
} as const;

/** The usermeta pairs of a rename's marks in `pairs` (kept when attributes change). */
export function renameMarks(pairs: readonly UsermetaPair[]): UsermetaPair[] {
  return pairs.filter((pair) =>
    pair.key === USERMETA.renamedTo || pair.key === USERMETA.renamedFrom
  );
}

/** The paths a rename mark's value names; parts that are not hex are skipped. */
function markedPaths(value: string): Buffer[] {
  return value.split(",").filter((part) => /^([0-9a-f]{2})+$/.test(part))
    .map((part) => Buffer.from(part, "hex"));
}

/** Every path the rename marks in `pairs` name (either direction), each once. */
export function renamePartners(pairs: readonly UsermetaPair[]): Buffer[] {
  const partners: Buffer[] = [];
  for (const mark of renameMarks(pairs)) {
    for (const path of markedPaths(mark.value)) {
      if (!partners.some((known) => known.equals(path))) partners.push(path);
    }
  }
  return partners;
}

/**
 * The rename marks of `pairs` with `paths` added to the `key` mark (one pair per key, its
 * paths comma-separated: usermeta keys are best kept unique, as HTTP headers merge them).
 */
export function withRenameMark(
  pairs: readonly UsermetaPair[],
  key: typeof USERMETA.renamedTo | typeof USERMETA.renamedFrom,
  paths: readonly Uint8Array[],
): UsermetaPair[] {
  const marks = renameMarks(pairs);
  const existing = marks.filter((mark) => mark.key === key)
    .flatMap((mark) => markedPaths(mark.value));
  const named = [...existing];
  for (const path of paths) {
    if (!named.some((known) => known.equals(path))) named.push(Buffer.from(path));
  }
  return [
    ...marks.filter((mark) => mark.key !== key),
    { key, value: named.map((path) => path.toString("hex")).join(",") },
  ];
}

/**
 * The rename marks of several versions of one object merged (each key's paths once, sorted):
 * what a resolution of siblings keeps of the losers, whose marks may be the only ones naming
 * a partner that shares the winner's chunks.
 */
export function mergedRenameMarks(versions: readonly (readonly UsermetaPair[])[]): UsermetaPair[] {
  let merged: UsermetaPair[] = [];
  for (const key of [USERMETA.renamedTo, USERMETA.renamedFrom] as const) {
    const paths = versions.flatMap((pairs) =>
      renameMarks(pairs).filter((mark) => mark.key === key).flatMap((mark) =>
        markedPaths(mark.value)
      )
    );
    if (paths.length > 0) merged = withRenameMark(merged, key, paths.sort(Buffer.compare));
  }
  return merged;
}

/** What a path holds. */
export type EntryType = "file" | "directory" | "symlink";

/** How a file's bytes are kept: in the object's value, or in chunks listed by a manifest. */
export type Storage = "inline" | "chunked";

/** The attributes a caller may set. */
export interface FileAttributes {
  /** Permission bits (07777), without the file type. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Access time as set explicitly (utimens), nanoseconds; absent: the mtime is shown. */
  atimeNs?: bigint;
}

/** Everything usermeta says about the object at a path key. */
export interface ObjectMeta extends FileAttributes {
  type: EntryType;
  storage: Storage;
  /** Content size in bytes (for a symlink: the target's length). */
  size: number;
  /** sha256 of the whole content, lowercase hex. */
  sha256: string;
  /** Layout version the writer used. */
  layout: number;
}

/** One usermeta pair as text. */
export interface UsermetaPair {
  key: string;
  value: string;
}

/**
 * Encodes object metadata as usermeta pairs.
 *
 * @example
 * ```ts
 * encodeUsermeta({ type: "file", storage: "inline", size: 3, mode: 0o644, uid: 0, gid: 0,
 *   mtimeNs: 1n, sha256: "ab", layout: LAYOUT_VERSION });
 * ```
 */
export function encodeUsermeta(meta: ObjectMeta): UsermetaPair[] {
  return [
    { key: USERMETA.layout, value: String(meta.layout) },
    { key: USERMETA.type, value: meta.type },
    { key: USERMETA.storage, value: meta.storage },
    { key: USERMETA.size, value: String(meta.size) },
    { key: USERMETA.mode, value: (meta.mode & 0o7777).toString(8).padStart(4, "0") },
    { key: USERMETA.uid, value: String(meta.uid) },
    { key: USERMETA.gid, value: String(meta.gid) },
    { key: USERMETA.mtimeNs, value: meta.mtimeNs.toString() },
    { key: USERMETA.sha256, value: meta.sha256 },
    ...(meta.atimeNs === undefined
      ? []
      : [{ key: USERMETA.atimeNs, value: meta.atimeNs.toString() }]),
  ];
}

/** Why usermeta could not be decoded. */
export class UsermetaFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsermetaFormatError";
  }
}

/**
 * Decodes usermeta pairs. Returns `undefined` for an object riakfs did not write (no
 * `riakfs-layout` pair: a riak-fuse object or any foreign value) and throws
 * {@link UsermetaFormatError} for a riakfs object whose pairs are malformed or newer.
 */
export function decodeUsermeta(pairs: readonly UsermetaPair[]): ObjectMeta | undefined {
  // Read on every stat and every read: one pass over the pairs, no map of them (a later pair
  // of the same name wins, as a map would have it).
  const texts: Partial<Record<UsermetaName, string>> = {};
  for (const pair of pairs) {
    const name = usermetaName(pair.key) ?? usermetaName(pair.key.toLowerCase());
    if (name !== undefined) texts[name] = pair.value;
  }
  const layoutText = texts.layout;
  if (layoutText === undefined) return undefined;
  const layout = decimal(layoutText, USERMETA.layout);
  if (layout > LAYOUT_VERSION) {
    throw new UsermetaFormatError(
      `written with layout version ${layout}; this riakfs reads up to ${LAYOUT_VERSION}`,
    );
  }
  const type = required(texts, "type");
  if (type !== "file" && type !== "directory" && type !== "symlink") {
    throw new UsermetaFormatError(`${USERMETA.type} is ${JSON.stringify(type)}`);
  }
  const storage = texts.storage ?? "inline";
  if (storage !== "inline" && storage !== "chunked") {
    throw new UsermetaFormatError(`${USERMETA.storage} is ${JSON.stringify(storage)}`);
  }
  const modeText = required(texts, "mode");
  if (!/^[0-7]{1,6}$/.test(modeText)) {
    throw new UsermetaFormatError(`${USERMETA.mode} is ${JSON.stringify(modeText)}`);
  }
  const mtimeText = required(texts, "mtimeNs");
  if (!/^-?\d{1,25}$/.test(mtimeText)) {
    throw new UsermetaFormatError(`${USERMETA.mtimeNs} is ${JSON.stringify(mtimeText)}`);
  }
  const atimeText = texts.atimeNs;
  if (atimeText !== undefined && !/^-?\d{1,25}$/.test(atimeText)) {
    throw new UsermetaFormatError(`${USERMETA.atimeNs} is ${JSON.stringify(atimeText)}`);
  }
  const sha256 = required(texts, "sha256");
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new UsermetaFormatError(`${USERMETA.sha256} is ${JSON.stringify(sha256)}`);
  }
  return {
    layout,
    type,
    storage,
    size: decimal(required(texts, "size"), USERMETA.size),
    mode: parseInt(modeText, 8) & 0o7777,
    uid: decimal(required(texts, "uid"), USERMETA.uid),
    gid: decimal(required(texts, "gid"), USERMETA.gid),
    mtimeNs: BigInt(mtimeText),
    ...(atimeText === undefined ? {} : { atimeNs: BigInt(atimeText) }),
    sha256,
  };
}

/** The attributes decodeUsermeta reads (the rename marks are read where renames need them). */
type UsermetaName = Exclude<keyof typeof USERMETA, "renamedTo" | "renamedFrom">;

/** The usermeta keys decodeUsermeta reads, by the attribute each names. */
const USERMETA_NAMES: ReadonlyMap<string, UsermetaName> = new Map(
  (Object.keys(USERMETA) as (keyof typeof USERMETA)[])
    .filter((name): name is UsermetaName => name !== "renamedTo" && name !== "renamedFrom")
    .map((name) => [USERMETA[name], name]),
);

/** Which attribute a usermeta key names, if it is one decodeUsermeta reads (exact case). */
function usermetaName(key: string): UsermetaName | undefined {
  return USERMETA_NAMES.get(key);
}

function required(texts: Partial<Record<UsermetaName, string>>, name: UsermetaName): string {
  const value = texts[name];
  if (value === undefined) throw new UsermetaFormatError(`usermeta ${USERMETA[name]} is missing`);
  return value;
}

function decimal(text: string, key: string): number {
  if (!/^\d{1,15}$/.test(text)) {
    throw new UsermetaFormatError(`${key} is ${JSON.stringify(text)}, not a decimal number`);
  }
  return Number(text);
}
