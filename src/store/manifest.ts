/**
 * The manifest of a chunked file: the JSON value of the object at the file's key when the
 * file is larger than one chunk. Chunks live in the namespace's chunk bucket under keys
 * derived from the generation id, so an overwrite (a new generation) never touches the
 * chunks a reader of the old manifest is fetching.
 *
 * @module
 */
import { randomBytes } from "node:crypto";

/** Value of the manifest's `format` field. */
export const MANIFEST_FORMAT = "riakfs-manifest/1";

/** Content type of a manifest object. */
export const MANIFEST_CONTENT_TYPE = "application/vnd.riakfs.manifest+json";

/** A decoded manifest. */
export interface Manifest {
  /** File size in bytes. */
  size: number;
  /** Bytes per chunk; every chunk but the last is exactly this long. */
  chunkSize: number;
  /** sha256 of the whole file, lowercase hex. */
  sha256: string;
  /** Generation id: 32 lowercase hex digits, new for every upload. */
  generation: string;
  /** sha256 of each chunk in order, lowercase hex. */
  chunks: string[];
  /** Content type of the file itself (the manifest object's own type is the manifest's). */
  contentType: string;
}

/** Why a manifest could not be decoded. */
export class ManifestFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestFormatError";
  }
}

/** A fresh random generation id (128 bits, hex). */
export function newGenerationId(): string {
  return randomBytes(16).toString("hex");
}

/**
 * Key of chunk `index` (0-based) of a generation in the chunk bucket: `<generation>.<index>`.
 *
 * @example
 * ```ts
 * chunkKey("0123456789abcdef0123456789abcdef", 2); // "0123456789abcdef0123456789abcdef.2"
 * ```
 */
export function chunkKey(generation: string, index: number): string {
  return `${generation}.${index}`;
}

/** Splits a chunk key back into generation and index, or `undefined` if it is not one. */
export function parseChunkKey(key: string): { generation: string; index: number } | undefined {
  const match = /^([0-9a-f]{32})\.(0|[1-9]\d{0,9})$/.exec(key);
  return match ? { generation: match[1], index: Number(match[2]) } : undefined;
}

/**
 * Key of the rename stamp of a generation in the chunk bucket: `<generation>.renamed`, an
 * empty object every rename of a file holding the generation puts again, so that its Riak
 * last-modified time tells `riakfs gc` the generation was moved lately (see gc.ts).
 */
export function renameStampKey(generation: string): string {
  return `${generation}.renamed`;
}

/** The generation of a rename stamp's key, or `undefined` if it is not one. */
export function parseRenameStampKey(key: string): string | undefined {
  return /^([0-9a-f]{32})\.renamed$/.exec(key)?.[1];
}

/** Number of chunks a file of `size` bytes has. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Encodes a manifest as the JSON documented in docs/layout.md. */
export function encodeManifest(manifest: Manifest): Uint8Array {
  const ordered = {
    format: MANIFEST_FORMAT,
    size: manifest.size,
    chunkSize: manifest.chunkSize,
    sha256: manifest.sha256,
    generation: manifest.generation,
    contentType: manifest.contentType,
    chunks: manifest.chunks,
  };
  return new TextEncoder().encode(JSON.stringify(ordered));
}

/** Decodes and validates a manifest; throws {@link ManifestFormatError} when malformed. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ManifestFormatError(`manifest is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null) {
    throw new ManifestFormatError("manifest is not a JSON object");
  }
  const record = value as Record<string, unknown>;
  if (record.format !== MANIFEST_FORMAT) {
    throw new ManifestFormatError(`manifest format is ${JSON.stringify(record.format)}`);
  }
  const size = wholeNumber(record.size, "size");
  const chunkSize = wholeNumber(record.chunkSize, "chunkSize");
  if (chunkSize === 0) throw new ManifestFormatError("manifest chunkSize is 0");
  const sha256 = hexDigest(record.sha256, "sha256");
  if (typeof record.generation !== "string" || !/^[0-9a-f]{32}$/.test(record.generation)) {
    throw new ManifestFormatError("manifest generation is not 32 hex digits");
  }
  if (!Array.isArray(record.chunks)) throw new ManifestFormatError("manifest chunks missing");
  const chunks = record.chunks.map((chunk, i) => hexDigest(chunk, `chunks[${i}]`));
  if (chunks.length !== chunkCount(size, chunkSize)) {
    throw new ManifestFormatError(
      `manifest lists ${chunks.length} chunks; size ${size} needs ${chunkCount(size, chunkSize)}`,
    );
  }
  const contentType = typeof record.contentType === "string"
    ? record.contentType
    : "application/octet-stream";
  return { size, chunkSize, sha256, generation: record.generation, chunks, contentType };
}

function wholeNumber(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ManifestFormatError(`manifest ${name} is not a whole number`);
  }
  return value;
}

function hexDigest(value: unknown, name: string): string {
  if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value)) {
    throw new ManifestFormatError(`manifest ${name} is not a sha256 hex digest`);
  }
  return value;
}
