/**
 * Persistence of the embedded server: an append-only log of change records under the data
 * directory, fsynced before a write is acknowledged, with group commit (writes that arrive
 * while a flush is running share the next fsync) and compaction (the live state is rewritten
 * to a new file that atomically replaces the log once the log outgrows it).
 *
 * A record is `[u32 payload length][u32 CRC-32 of payload][payload]`, the payload
 * `[u32 JSON length][JSON][blobs]`: byte strings travel as blobs the JSON points to, so values
 * are neither escaped nor base64-encoded. At start the log is replayed; a torn or corrupt tail
 * (a crash in the middle of a write, never acknowledged) is cut off, while a damaged record
 * with data after it stops the start instead of silently dropping what follows.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crdtFromJson, crdtToJson } from "./crdt.ts";
import type { Durability } from "./engine.ts";
import type { ChangeRecord, Keyspace, StoredObject } from "./keyspace.ts";
import { TOMBSTONE_KEEP_MS } from "./kv.ts";
import { isProcessAlive } from "../util/process.ts";
import { makeDirectories } from "../util/directories.ts";

/** Name of the log file inside the data directory. */
export const LOG_FILE = "riak.log";
/** Name of the lock file (holding the owner's pid) inside the data directory. */
export const LOCK_FILE = "riak.lock";

/** Tuning of a {@link DataLog}. */
export interface DataLogOptions {
  /** Never compact below this log size in bytes; default 64 MiB. */
  compactMinBytes?: number;
  /** Compact when the log exceeds this multiple of the live data written last time; default 2. */
  compactRatio?: number;
}

/** A data directory that cannot be used, with the path and the reason. */
export class DataLogError extends Error {
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`data log ${path}: ${reason}`, options);
    this.name = "DataLogError";
    this.path = path;
  }
}

const HEADER_BYTES = 8;

/** The append-only, fsynced, compacting log of a data directory. */
export class DataLog implements Durability {
  readonly path: string;
  private readonly lockPath: string;
  private handle: FileHandle;
  private size: number;
  private liveBytes: number;
  private readonly keyspace: Keyspace;
  private readonly compactMinBytes: number;
  private readonly compactRatio: number;
  private pending: Uint8Array[] = [];
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;
  /**
   * While true, records wait in `pending`: from the start of a compaction (they go to the new
   * file) until what waited is written, so that no record overtakes an older one.
   */
  private queueing = false;
  private compactions = 0;
  /** Set when the log can no longer be appended to safely; every commit then fails with it. */
  private broken: DataLogError | undefined;

  private constructor(
    path: string,
    lockPath: string,
    handle: FileHandle,
    size: number,
    keyspace: Keyspace,
    options: DataLogOptions,
  ) {
    this.path = path;
    this.lockPath = lockPath;
    this.handle = handle;
    this.size = size;
    this.liveBytes = size;
    this.keyspace = keyspace;
    this.compactMinBytes = options.compactMinBytes ?? 64 * 1024 * 1024;
    this.compactRatio = options.compactRatio ?? 2;
  }

  /**
   * Opens (creating if needed) the log in `dir` and replays it into `keyspace`.
   *
   * @throws {DataLogError} when the directory or file cannot be used.
   */
  static async open(
    dir: string,
    keyspace: Keyspace,
    options: DataLogOptions = {},
  ): Promise<DataLog> {
    const path = join(dir, LOG_FILE);
    try {
      makeDirectories(dir);
    } catch (error) {
      throw new DataLogError(dir, `cannot create the directory: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const lock = lockDirectory(dir);
    let goodBytes: number;
    try {
      goodBytes = replayLog(path, keyspace);
    } catch (error) {
      unlockDirectory(lock);
      throw new DataLogError(path, `cannot read: ${(error as Error).message}`, { cause: error });
    }
    const handle = await open(path, "a+").catch((error) => {
      unlockDirectory(lock);
      throw new DataLogError(path, `cannot open: ${error.message}`, { cause: error });
    });
    syncDirectory(path); // the log's directory entry must survive a crash too
    const { size } = await handle.stat();
    if (size > goodBytes) {
      // a torn tail: the write that was cut never got its answer
      await handle.truncate(goodBytes);
      await handle.sync();
    }
    reapOldTombstones(keyspace);
    return new DataLog(path, lock, handle, goodBytes, keyspace, options);
  }

  /** Bytes in the log file now. */
  get bytes(): number {
    return this.size;
  }

  /** How many compactions ran since the log was opened. */
  get compactionCount(): number {
    return this.compactions;
  }

  /**
   * Appends a record; settles once it is on disk (fsynced). The record is written at once
   * (to the page cache, which a killed process does not lose): the change is in memory
   * already, where readers see it, and Riak never shows a value that a crash of the node
   * then takes back. Only while the log is compacted do records wait for the new file.
   */
  commit(record: ChangeRecord): Promise<void> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const bytes = encodeRecord(record);
    if (this.queueing) this.pending.push(bytes);
    else {
      try {
        writeAllSync(this.handle.fd, bytes);
      } catch (error) {
        // A torn record would stop the replay there, and every record after it with it.
        try {
          ftruncateSync(this.handle.fd, this.size);
        } catch {
          // The next start cuts a torn tail off.
        }
        return Promise.reject(
          new DataLogError(this.path, `write failed: ${(error as Error).message}`, {
            cause: error,
          }),
        );
      }
      this.size += bytes.length;
    }
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flushing ??= this.flush();
    return promise;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0 || this.waiters.length > 0) {
      const batch = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        await writeAll(this.handle, batch);
        for (const part of batch) this.size += part.length;
        // Nothing queued since: what comes now may be written at once again.
        if (this.pending.length === 0) this.queueing = false;
        await this.handle.datasync();
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        const failure = new DataLogError(this.path, `write failed: ${(error as Error).message}`, {
          cause: error,
        });
        for (const waiter of waiters) waiter.reject(failure);
        // A partly written batch must not stay in front of later records, or replay would stop
        // there and lose them: cut the log back to its last good end, or stop taking writes.
        await this.handle.truncate(this.size).catch((truncateError) => {
          this.broken = new DataLogError(
            this.path,
            `cannot cut a failed write off (${
              (truncateError as Error).message
            }); writes are refused`,
            { cause: truncateError },
          );
        });
      }
      if (this.size > Math.max(this.compactMinBytes, this.liveBytes * this.compactRatio)) {
        await this.compact().catch(() => {
          // compaction is an optimisation: keep appending to the old log if it fails
        });
      }
    }
    this.flushing = undefined;
  }

  /**
   * Rewrites the live state into a fresh file and renames it over the log. Runs between
   * flushes, so no append interleaves; records committed meanwhile wait and follow it.
   */
  async compact(): Promise<void> {
    this.queueing = true;
    try {
      await this.compactNow();
    } finally {
      // What waited is written by the flush that follows; nothing waited: write at once.
      if (this.pending.length === 0) this.queueing = false;
    }
  }

  private async compactNow(): Promise<void> {
    const temporary = `${this.path}.compact`;
    const handle = await open(temporary, "w");
    let written = 0;
    try {
      let chunk: Uint8Array[] = [];
      let chunkBytes = 0;
      for (const record of this.keyspace.snapshot()) {
        const bytes = encodeRecord(record);
        chunk.push(bytes);
        chunkBytes += bytes.length;
        if (chunkBytes >= 4 * 1024 * 1024) {
          await writeAll(handle, chunk);
          written += chunkBytes;
          chunk = [];
          chunkBytes = 0;
        }
      }
      await writeAll(handle, chunk);
      written += chunkBytes;
      await handle.sync();
    } finally {
      await handle.close();
    }
    renameSync(temporary, this.path);
    syncDirectory(this.path);
    await this.handle.close();
    this.handle = await open(this.path, "a+");
    this.size = written;
    this.liveBytes = written;
    this.compactions++;
  }

  /** Waits for pending writes and closes the file. */
  async close(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    await this.handle.close();
    unlockDirectory(this.lockPath);
  }
}

/**
 * Takes the data directory for this process: two servers appending to one log would corrupt
 * it. A lock left by a process that died (kill -9) is taken over.
 *
 * @throws {DataLogError} when a live process holds the directory.
 */
function lockDirectory(dir: string): string {
  const path = join(dir, LOCK_FILE);
  if (LOCKED_HERE.has(resolve(path))) {
    throw new DataLogError(dir, `in use by the riakfs process ${process.pid} (this one)`);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      LOCKED_HERE.add(resolve(path));
      return path;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DataLogError(dir, `cannot lock: ${(error as Error).message}`, { cause: error });
      }
    }
    const owner = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isProcessAlive(owner)) {
      throw new DataLogError(dir, `in use by the riakfs process ${owner} (${path})`);
    }
    rmSync(path, { force: true });
  }
  throw new DataLogError(dir, `cannot take the lock ${path}`);
}

/** Gives up a lock taken by {@link lockDirectory}. */
function unlockDirectory(lockPath: string): void {
  rmSync(lockPath, { force: true });
  LOCKED_HERE.delete(resolve(lockPath));
}

/** Lock files this process holds (a pid in a lock file may be ours from before a restart). */
const LOCKED_HERE = new Set<string>();

function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
}

async function writeAll(handle: FileHandle, buffers: Uint8Array[]): Promise<void> {
  let remaining = buffers;
  while (remaining.length > 0) {
    // writev takes at most IOV_MAX (1024) buffers
    const part = remaining.slice(0, 1024);
    const total = part.reduce((sum, b) => sum + b.length, 0);
    const { bytesWritten } = await handle.writev(part);
    if (bytesWritten < total) {
      const joined = Buffer.concat(part).subarray(bytesWritten);
      await handle.write(joined);
    }
    remaining = remaining.slice(1024);
  }
}

function syncDirectory(path: string): void {
  const dir = join(path, "..");
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Applies every intact record of the log to the keyspace; returns the bytes they span. */
function replayLog(path: string, keyspace: Keyspace): number {
  let fileSize: number;
  try {
    fileSize = statSync(path).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  const fd = openSync(path, "r");
  try {
    let position = 0;
    const header = Buffer.alloc(HEADER_BYTES);
    while (position + HEADER_BYTES <= fileSize) {
      readExactly(fd, header, position);
      const length = header.readUInt32BE(0);
      const checksum = header.readUInt32BE(4);
      const end = position + HEADER_BYTES + length;
      if (end > fileSize) break;
      const payload = Buffer.alloc(length);
      readExactly(fd, payload, position + HEADER_BYTES);
      let record: ChangeRecord | undefined;
      try {
        if (crc32(payload) === checksum) record = decodePayload(payload);
      } catch {
        // Not a record: as a checksum mismatch.
      }
      if (record === undefined) {
        refuseUnlessTornTail(fd, position, end, fileSize);
        break;
      }
      keyspace.apply(record);
      position = end;
    }
    return position;
  } finally {
    closeSync(fd);
  }
}

/**
 * A bad record at `position` (ending at `end`) is a torn tail when it is the last one, or
 * when nothing but zeros follows it (a crash after the file grew, before its blocks were
 * written). Anything else is damage in the middle of the log: cutting it off there would
 * silently drop every acknowledged write after it, so the start is refused instead.
 */
function refuseUnlessTornTail(fd: number, position: number, end: number, fileSize: number): void {
  const piece = Buffer.alloc(Math.min(Math.max(fileSize - end, 0), 1 << 20));
  for (let at = end; at < fileSize; at += piece.length) {
    const read = piece.subarray(0, Math.min(piece.length, fileSize - at));
    readExactly(fd, read, at);
    if (read.some((byte) => byte !== 0)) {
      throw new Error(
        `damaged record at byte ${position} of ${fileSize}, with data after it: refusing to ` +
          "cut the log there (that would drop every write after it); keep a copy of the " +
          "data directory, then repair or remove the damaged record",
      );
    }
  }
}

function readExactly(fd: number, buffer: Buffer, position: number): void {
  let done = 0;
  while (done < buffer.length) {
    const read = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (read === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += read;
  }
}

function reapOldTombstones(keyspace: Keyspace): void {
  for (const record of keyspace.expiredTombstones(Date.now() - TOMBSTONE_KEEP_MS)) {
    keyspace.apply(record);
  }
}

/** Encodes a change record as one log record (header + payload). */
export function encodeRecord(record: ChangeRecord): Uint8Array {
  const blobs: Uint8Array[] = [];
  const json = JSON.stringify(toJson(record, blobs));
  const jsonBytes = Buffer.from(json, "utf8");
  let payloadLength = 4 + jsonBytes.length;
  for (const blob of blobs) payloadLength += blob.length;
  const out = Buffer.allocUnsafe(HEADER_BYTES + payloadLength);
  out.writeUInt32BE(payloadLength, 0);
  out.writeUInt32BE(jsonBytes.length, HEADER_BYTES);
  jsonBytes.copy(out, HEADER_BYTES + 4);
  let at = HEADER_BYTES + 4 + jsonBytes.length;
  for (const blob of blobs) {
    out.set(blob, at);
    at += blob.length;
  }
  out.writeUInt32BE(crc32(out.subarray(HEADER_BYTES)), 4);
  return out;
}

function toJson(record: ChangeRecord, blobs: Uint8Array[]): unknown {
  const withBlobs = (value: unknown): unknown => {
    if (value instanceof Uint8Array) {
      blobs.push(value);
      return { $b: value.length };
    }
    if (Array.isArray(value)) return value.map(withBlobs);
    if (value === null || typeof value !== "object") return value;
    const copy: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(value)) {
      if (field !== undefined) copy[name] = withBlobs(field);
    }
    return copy;
  };
  if (record.t === "object" && record.object !== null) {
    const object: StoredObject = record.object;
    return withBlobs({
      ...record,
      object: {
        ...object,
        siblings: object.siblings.map((s) => ({ ...s, crdt: s.crdt && crdtToJson(s.crdt) })),
      },
    });
  }
  return withBlobs(record);
}

function decodePayload(payload: Buffer): ChangeRecord {
  const jsonLength = payload.readUInt32BE(0);
  const json = JSON.parse(payload.toString("utf8", 4, 4 + jsonLength));
  let at = 4 + jsonLength;
  const fromBlobs = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(fromBlobs);
    if (value === null || typeof value !== "object") return value;
    const object = value as Record<string, unknown>;
    if (typeof object.$b === "number" && Object.keys(object).length === 1) {
      const bytes = new Uint8Array(payload.buffer, payload.byteOffset + at, object.$b).slice();
      at += object.$b;
      return bytes;
    }
    const copy: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(object)) copy[name] = fromBlobs(field);
    return copy;
  };
  const record = fromBlobs(json) as ChangeRecord;
  if (record.t === "object" && record.object !== null) {
    for (const sibling of record.object.siblings) {
      if (sibling.crdt !== undefined) sibling.crdt = crdtFromJson(sibling.crdt);
    }
  }
  return record;
}

/**
 * CRC-32 (IEEE) of bytes. zlib's native one: a table-driven loop in JavaScript took 2.7 ms
 * per MiB, on every disk-mode write and at replay; this takes about 0.01 ms.
 */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes);
}
