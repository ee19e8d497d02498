/**
 * Test-only: a reader of riakfs's data in Riak written from docs/layout.md ALONE, as an
 * operator's own program would be. It must never import src/store (nor read its code to decide
 * how to read): wherever the page is not enough to write it, the page is what needs fixing. It
 * uses only the raw protocol client of src/riak: gets, head-only gets and set fetches.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Location, RiakClient, RiakContent } from "../riak/mod.ts";

/** The riak-fuse preset's names (page: "The riak-fuse preset"). */
export interface DocRiakFuse {
  contentPrefix: string;
  directoryPrefix: string;
  directoryBucketType: string;
  directoryKey: string;
  imagesFolder: string;
}

/** A namespace as the page's table describes it. */
export interface DocNamespace {
  contentBucketType: string;
  bucket: string;
  chunkBucket: string;
  setsBucketType: string;
  directoryBucket: string;
  /** Present when the namespace is used with `--layout riak-fuse`. */
  riakFuse?: DocRiakFuse;
}

/** The page's defaults for a content bucket, with the given settings over them. */
export function docNamespace(
  settings: Partial<Omit<DocNamespace, "riakFuse">> & { riakFuse?: Partial<DocRiakFuse> } = {},
): DocNamespace {
  const bucket = settings.bucket ?? "riakfs";
  const setsBucketType = settings.setsBucketType ?? "sets";
  return {
    contentBucketType: settings.contentBucketType ?? "default",
    bucket,
    chunkBucket: settings.chunkBucket ?? `${bucket}.chunks`,
    setsBucketType,
    directoryBucket: settings.directoryBucket ?? `${bucket}.dirs`,
    riakFuse: settings.riakFuse && {
      contentPrefix: "IMG_",
      directoryPrefix: "IMGDIR_",
      directoryBucketType: setsBucketType,
      directoryKey: "directory",
      imagesFolder: "images",
      ...settings.riakFuse,
    },
  };
}

/** What the usermeta (or, for a riak-fuse object without it, the page's defaults) says. */
export interface DocAttributes {
  type: "file" | "directory" | "symlink";
  storage: "inline" | "chunked";
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  sha256?: string;
  contentType?: string;
  /** False for an object without `riakfs-layout` (riak-fuse's own). */
  writtenByRiakfs: boolean;
  usermeta: Map<string, string>;
}

/** A directory entry as listed. */
export interface DocEntry {
  name: Buffer;
  type: "file" | "directory" | "symlink";
}

const TYPE_OF_LETTER: Record<string, DocEntry["type"]> = {
  f: "file",
  d: "directory",
  l: "symlink",
};
const SHARDS_MARKER = Buffer.from("#shards:");
const MANIFEST_CONTENT_TYPE = "application/vnd.riakfs.manifest+json";

/** sha256 of bytes, lowercase hex. */
function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads riakfs's objects the way docs/layout.md says an operator can. */
export class LayoutDocReader {
  /** Reads `namespace` through `riak`. */
  constructor(readonly riak: RiakClient, readonly namespace: DocNamespace) {}

  // ---- Paths and keys -------------------------------------------------------------------

  /** Where a file's or symlink's object lives: the path key, or the riak-fuse folder's bucket. */
  objectLocation(path: Buffer): Location {
    const riakFuse = this.riakFuseParts(path);
    if (riakFuse) {
      return {
        type: this.namespace.contentBucketType,
        bucket: Buffer.concat([
          Buffer.from(this.namespace.riakFuse!.contentPrefix),
          riakFuse.folder,
        ]),
        key: riakFuse.file,
      };
    }
    return { type: this.namespace.contentBucketType, bucket: this.namespace.bucket, key: path };
  }

  /** `<path>/`, the root's `/`: key of a directory's attributes object and root shard. */
  directoryKey(path: Buffer): Buffer {
    return Buffer.concat([path, Buffer.from("/")]);
  }

  /** `<folder>` and `<file>` of a riak-fuse path `<folder>/images/<file>`, under the preset. */
  riakFuseParts(path: Buffer): { folder: Buffer; file: Buffer } | undefined {
    const names = splitPath(path);
    if (names.length !== 3) return undefined;
    const folder = this.riakFuseFolderOf(Buffer.concat([names[0], Buffer.from("/"), names[1]]));
    return folder && { folder, file: names[2] };
  }

  /** `<folder>` of a directory `<folder>/images`, under the preset. */
  riakFuseFolderOf(directory: Buffer): Buffer | undefined {
    const preset = this.namespace.riakFuse;
    const names = splitPath(directory);
    if (preset === undefined || names.length !== 2) return undefined;
    return names[1].equals(Buffer.from(preset.imagesFolder)) ? names[0] : undefined;
  }

  // ---- Usermeta -----------------------------------------------------------------------------

  /** Decodes the usermeta table of the page; riak-fuse objects without it get its defaults. */
  attributesOf(content: RiakContent, valueLength?: number): DocAttributes {
    const usermeta = new Map((content.usermeta ?? []).map((pair) => [pair.key, pair.value]));
    if (!usermeta.has("riakfs-layout")) {
      const lastModifiedNs = BigInt(content.lastModifiedUs ?? 0) * 1000n;
      return {
        type: "file",
        storage: "inline",
        size: valueLength ?? content.value.length,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtimeNs: lastModifiedNs,
        atimeNs: lastModifiedNs,
        contentType: content.contentType,
        writtenByRiakfs: false,
        usermeta,
      };
    }
    const field = (name: string) => {
      const value = usermeta.get(name);
      if (value === undefined) throw new Error(`usermeta ${name} missing`);
      return value;
    };
    if (field("riakfs-layout") !== "1") throw new Error(`unknown layout ${field("riakfs-layout")}`);
    const type = field("riakfs-type");
    if (type !== "file" && type !== "directory" && type !== "symlink") {
      throw new Error(`riakfs-type ${type}`);
    }
    const storage = field("riakfs-storage");
    if (storage !== "inline" && storage !== "chunked") throw new Error(`riakfs-storage ${storage}`);
    const decimal = (name: string) => {
      const text = field(name);
      if (!/^[0-9]+$/.test(text)) throw new Error(`${name} is not decimal: ${text}`);
      return text;
    };
    const mode = field("riakfs-mode");
    if (!/^[0-7]+$/.test(mode)) throw new Error(`riakfs-mode is not octal: ${mode}`);
    const sha = field("riakfs-sha256");
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Error(`riakfs-sha256 ${sha}`);
    const mtimeNs = BigInt(decimal("riakfs-mtime-ns"));
    const atime = usermeta.get("riakfs-atime-ns");
    return {
      type,
      storage,
      size: Number(decimal("riakfs-size")),
      mode: parseInt(mode, 8),
      uid: Number(decimal("riakfs-uid")),
      gid: Number(decimal("riakfs-gid")),
      mtimeNs,
      atimeNs: atime === undefined ? mtimeNs : BigInt(atime),
      sha256: sha,
      contentType: content.contentType,
      writtenByRiakfs: true,
      usermeta,
    };
  }

  // ---- Objects ------------------------------------------------------------------------------

  /** The winning sibling (page: "Siblings"), or undefined when nothing is stored. */
  async fetch(location: Location, head: boolean): Promise<RiakContent | undefined> {
    const got = await this.riak.get(location, head ? { head: true } : {});
    const live = got.siblings.filter((sibling) => !sibling.deleted);
    if (live.length === 0) return undefined;
    return live.reduce((
      best,
      next,
    ) => (this.#siblingKey(next) > this.#siblingKey(best) ? next : best));
  }

  /** Orders siblings: newest mtime, then greatest sha256 in hex order. */
  #siblingKey(content: RiakContent): string {
    const meta = new Map((content.usermeta ?? []).map((pair) => [pair.key, pair.value]));
    const mtime = meta.get("riakfs-mtime-ns") ??
      String(BigInt(content.lastModifiedUs ?? 0) * 1000n);
    return `${mtime.padStart(30, "0")}/${meta.get("riakfs-sha256") ?? sha256(content.value)}`;
  }

  /**
   * `stat` by head-only gets: the object at the path (file, symlink), else the directory's
   * attributes object at `<path>/`; undefined when neither.
   */
  async stat(path: Buffer): Promise<DocAttributes | undefined> {
    if (path.length > 0) {
      const location = this.objectLocation(path);
      const head = await this.fetch(location, true);
      if (head !== undefined) {
        if (head.usermeta?.some((pair) => pair.key === "riakfs-layout")) {
          return this.attributesOf(head);
        }
        // riak-fuse's own object: its size is the value's (or its size set's)
        const whole = await this.fetch(location, false);
        if (whole !== undefined) return this.attributesOf(whole);
      }
    }
    const directory = await this.fetch(this.#directoryAttributesLocation(path), true);
    return directory === undefined ? undefined : this.attributesOf(directory);
  }

  #directoryAttributesLocation(path: Buffer): Location {
    return {
      type: this.namespace.contentBucketType,
      bucket: this.namespace.bucket,
      key: this.directoryKey(path),
    };
  }

  /**
   * A file's bytes: the inline value, or the manifest's chunks. Checks everything the page
   * promises: sizes, each chunk's sha256, the whole file's sha256 (manifest and usermeta).
   */
  async readFile(path: Buffer): Promise<{ content: Buffer; attributes: DocAttributes }> {
    const object = await this.fetch(this.objectLocation(path), false);
    if (object === undefined) throw new Error(`${path} not found`);
    const attributes = this.attributesOf(object);
    if (attributes.type !== "file") throw new Error(`${path} is a ${attributes.type}`);
    const value = Buffer.from(object.value);
    if (attributes.storage === "inline") {
      if (attributes.writtenByRiakfs) {
        if (value.length !== attributes.size) throw new Error(`${path}: inline size mismatch`);
        if (sha256(value) !== attributes.sha256) throw new Error(`${path}: sha256 mismatch`);
      }
      return { content: value, attributes };
    }
    if (object.contentType !== MANIFEST_CONTENT_TYPE) {
      throw new Error(`${path}: manifest content type ${object.contentType}`);
    }
    const manifest = this.parseManifest(value);
    if (manifest.size !== attributes.size || manifest.sha256 !== attributes.sha256) {
      throw new Error(`${path}: manifest disagrees with usermeta`);
    }
    const chunks: Buffer[] = [];
    for (const [i, expected] of manifest.chunks.entries()) {
      const chunk = await this.readChunk(manifest.generation, i);
      if (chunk === undefined) throw new Error(`${path}: chunk ${i} missing`);
      const last = i === manifest.chunks.length - 1;
      const length = last ? manifest.size - i * manifest.chunkSize : manifest.chunkSize;
      if (chunk.length !== length) throw new Error(`${path}: chunk ${i} has ${chunk.length} B`);
      if (sha256(chunk) !== expected) throw new Error(`${path}: chunk ${i} sha256 mismatch`);
      chunks.push(chunk);
    }
    const content = Buffer.concat(chunks);
    if (sha256(content) !== manifest.sha256) throw new Error(`${path}: file sha256 mismatch`);
    return { content, attributes };
  }

  /** Chunk `i` of a generation, from the chunk bucket; undefined when missing. */
  async readChunk(generation: string, i: number): Promise<Buffer | undefined> {
    const chunk = await this.fetch({
      type: this.namespace.contentBucketType,
      bucket: this.namespace.chunkBucket,
      key: `${generation}.${i}`,
    }, false);
    return chunk && Buffer.from(chunk.value);
  }

  /** The manifest at a chunked file's path. */
  async readManifest(path: Buffer): Promise<DocManifest> {
    const object = await this.fetch(this.objectLocation(path), false);
    if (object?.contentType !== MANIFEST_CONTENT_TYPE) throw new Error(`${path}: no manifest`);
    return this.parseManifest(object.value);
  }

  /** A manifest's JSON, checked against the page's rules. */
  parseManifest(value: Uint8Array): DocManifest {
    const text = Buffer.from(value).toString();
    if (text.includes("\n")) throw new Error("manifest is not one line");
    const manifest = JSON.parse(text) as DocManifest;
    const fields = Object.keys(manifest).join(",");
    if (fields !== "format,size,chunkSize,sha256,generation,contentType,chunks") {
      throw new Error(`manifest fields ${fields}`);
    }
    if (manifest.format !== "riakfs-manifest/1") throw new Error(`format ${manifest.format}`);
    if (!/^[0-9a-f]{32}$/.test(manifest.generation)) throw new Error("generation");
    if (manifest.chunks.length !== Math.ceil(manifest.size / manifest.chunkSize)) {
      throw new Error("chunks.length != ceil(size / chunkSize)");
    }
    return manifest;
  }

  /** A symlink's target (the value of the object at its path). */
  async readSymlink(path: Buffer): Promise<Buffer> {
    const object = await this.fetch(this.objectLocation(path), false);
    if (object === undefined) throw new Error(`${path} not found`);
    const attributes = this.attributesOf(object);
    if (attributes.type !== "symlink") throw new Error(`${path} is a ${attributes.type}`);
    const target = Buffer.from(object.value);
    if (attributes.size !== target.length || attributes.sha256 !== sha256(target)) {
      throw new Error(`${path}: symlink size or sha256 mismatch`);
    }
    return target;
  }

  // ---- Directories ------------------------------------------------------------------------

  /** The set at `key` of the directory bucket: its members, [] when not found. */
  async #members(key: Buffer): Promise<Buffer[]> {
    const set = await this.riak.fetchSet({
      type: this.namespace.setsBucketType,
      bucket: this.namespace.directoryBucket,
      key,
    });
    return set.members.map((member) => Buffer.from(member));
  }

  /** The shard counts of a directory's levels after the root shard (`#shards:<count>`). */
  levelsOf(rootMembers: Buffer[]): number[] {
    return rootMembers
      .filter((member) => member.subarray(0, SHARDS_MARKER.length).equals(SHARDS_MARKER))
      .map((member) => Number(member.subarray(SHARDS_MARKER.length).toString()))
      .sort((a, b) => a - b);
  }

  /** Key of shard `j` of the level with `count` shards: `<path>/#<count>.<j>`. */
  shardKey(path: Buffer, count: number, j: number): Buffer {
    return Buffer.concat([this.directoryKey(path), Buffer.from(`#${count}.${j}`)]);
  }

  /** Every member of every shard of every level, the level markers left out. */
  async #directoryEntries(path: Buffer): Promise<{ entries: DocEntry[]; levels: number[] }> {
    const root = await this.#members(this.directoryKey(path));
    const levels = this.levelsOf(root);
    const members = root.filter((member) => member[0] !== SHARDS_MARKER[0]);
    for (const count of levels) {
      for (let j = 0; j < count; j++) {
        members.push(...await this.#members(this.shardKey(path, count, j)));
      }
    }
    // A name can be in two levels (two hosts adding it as a level opened): listed once.
    const seen = new Set<string>();
    const entries = members.map(entryOf).filter((entry) => {
      const id = entry.name.toString("latin1");
      return !seen.has(id) && seen.add(id) !== undefined;
    });
    return { entries, levels };
  }

  /**
   * A directory's entries (sorted by name): its shards, or for a riak-fuse `<folder>/images`
   * the folder's `directory` set, whose bare names are typed by the objects behind them.
   */
  async list(path: Buffer): Promise<DocEntry[]> {
    const folder = this.riakFuseFolderOf(path);
    if (folder === undefined) {
      const { entries } = await this.#directoryEntries(path);
      return entries.sort((a, b) => Buffer.compare(a.name, b.name));
    }
    const preset = this.namespace.riakFuse!;
    const listed = await this.riak.fetchSet({
      type: preset.directoryBucketType,
      bucket: Buffer.concat([Buffer.from(preset.directoryPrefix), folder]),
      key: preset.directoryKey,
    });
    const entries: DocEntry[] = [];
    for (const member of listed.members) {
      const name = Buffer.from(member);
      const stat = await this.stat(Buffer.concat([path, Buffer.from("/"), name]));
      if (stat === undefined) throw new Error(`${folder}: ${name} listed, nothing stored`);
      entries.push({ name, type: stat.type });
    }
    return entries.sort((a, b) => Buffer.compare(a.name, b.name));
  }

  /** The shard counts of a directory's levels after the root shard. */
  async levels(path: Buffer): Promise<number[]> {
    return (await this.#directoryEntries(path)).levels;
  }

  /**
   * Finds one name the way the page says a writer does: the root shard, then on each level
   * only shard `uint32_be(sha256(name)[0..4]) mod count`.
   */
  async findEntry(path: Buffer, name: Buffer): Promise<DocEntry | undefined> {
    const root = await this.#members(this.directoryKey(path));
    const candidates = [root];
    const first = createHash("sha256").update(name).digest().readUInt32BE(0);
    for (const count of this.levelsOf(root)) {
      candidates.push(await this.#members(this.shardKey(path, count, first % count)));
    }
    for (const members of candidates) {
      for (const member of members) {
        if (member[0] === SHARDS_MARKER[0]) continue;
        const entry = entryOf(member);
        if (entry.name.equals(name)) return entry;
      }
    }
    return undefined;
  }

  /** True for a directory with an attributes object and no entries (page: "Directories"). */
  async isEmptyDirectory(path: Buffer): Promise<boolean> {
    const attributes = await this.stat(path);
    if (attributes?.type !== "directory") return false;
    return (await this.list(path)).length === 0;
  }

  /** Buckets named in `riakfs-manifest-buckets` (page: "Garbage"). */
  async manifestBuckets(): Promise<string[]> {
    return (await this.#members(Buffer.from("riakfs-manifest-buckets")))
      .map((member) => member.toString()).sort();
  }

  /** The riak-fuse size set of `<folder>/images/<file>`: its decimal sizes. */
  async riakFuseSizes(path: Buffer): Promise<number[]> {
    const parts = this.riakFuseParts(path);
    if (parts === undefined) throw new Error(`${path} is no riak-fuse path`);
    const preset = this.namespace.riakFuse!;
    const set = await this.riak.fetchSet({
      type: preset.directoryBucketType,
      bucket: Buffer.concat([Buffer.from(preset.directoryPrefix), parts.folder]),
      key: parts.file,
    });
    return set.members.map((member) => Number(Buffer.from(member).toString())).sort();
  }
}

/** A manifest as the page shows it. */
export interface DocManifest {
  format: string;
  size: number;
  chunkSize: number;
  sha256: string;
  generation: string;
  contentType: string;
  chunks: string[];
}

/** `t:name` -> entry. */
function entryOf(member: Buffer): DocEntry {
  const type = TYPE_OF_LETTER[String.fromCharCode(member[0])];
  if (type === undefined || member[1] !== 0x3a) throw new Error(`member ${member.toString()}`);
  return { name: member.subarray(2), type };
}

/** A path's names (bytes between `/`; latin1 maps each byte to one character and back). */
function splitPath(path: Buffer): Buffer[] {
  return path.toString("latin1").split("/").filter((name) => name !== "")
    .map((name) => Buffer.from(name, "latin1"));
}
