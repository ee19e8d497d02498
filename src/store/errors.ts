/**
 * Typed errors of the store layer. Each carries the errno-style `code` the overlay maps to a
 * FUSE reply, plus the Riak location an operator needs to look at the object by hand.
 *
 * @module
 */

/** Where in Riak something went wrong: bucket type, bucket and key (as text for messages). */
export interface RiakLocationInfo {
  bucketType: string;
  bucket: string;
  key: string;
}

/** errno-style codes the store reports; the overlay maps them to FUSE errors. */
export type StoreErrorCode =
  | "ENOENT"
  | "EEXIST"
  | "ENOTDIR"
  | "EISDIR"
  | "ENOTEMPTY"
  | "EINVAL"
  | "EIO";

/** Base class of every store failure. */
export class StoreError extends Error {
  /** errno-style code, for mapping to a FUSE reply. */
  readonly code: StoreErrorCode;
  /** The store path concerned, if any. */
  readonly path?: string;
  /** The Riak object concerned, if any. */
  readonly location?: RiakLocationInfo;

  constructor(
    code: StoreErrorCode,
    message: string,
    options: { path?: string; location?: RiakLocationInfo; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options.path;
    this.location = options.location;
  }
}

/** The path does not exist in Riak. */
export class NotFoundError extends StoreError {
  constructor(path: string, location?: RiakLocationInfo) {
    super("ENOENT", `${path || "/"}: not found in Riak${where(location)}`, { path, location });
  }
}

/** A path is malformed (empty segment, `.`, `..`, NUL byte) or outside what a layout allows. */
export class InvalidPathError extends StoreError {
  constructor(path: string, reason: string) {
    super("EINVAL", `${JSON.stringify(path)}: invalid path: ${reason}`, { path });
  }
}

/** A directory operation was asked of a file, or a file operation of a directory. */
export class WrongTypeError extends StoreError {
  constructor(code: "ENOTDIR" | "EISDIR", path: string) {
    super(code, `${path || "/"}: ${code === "ENOTDIR" ? "not a directory" : "is a directory"}`, {
      path,
    });
  }
}

/** A directory still has entries and the operation was not recursive. */
export class DirectoryNotEmptyError extends StoreError {
  constructor(path: string) {
    super("ENOTEMPTY", `${path || "/"}: directory not empty`, { path });
  }
}

/** The target of a create or rename already exists. */
export class AlreadyExistsError extends StoreError {
  constructor(path: string) {
    super("EEXIST", `${path || "/"}: already exists`, { path });
  }
}

/**
 * A put with `ifNoneMatch` found the key already holding an object (Riak's `match_found`):
 * nothing was stored. The store handles it by writing over that object with its vclock.
 */
export class KeyExistsError extends StoreError {
  constructor(location: RiakLocationInfo, cause?: unknown) {
    super("EEXIST", `an object already exists${where(location)}`, { location, cause });
  }
}

/**
 * A put with `if_not_modified` found another version at the key (Riak answers `modified`,
 * or `notfound` when it is gone): nothing was stored.
 */
export class KeyModifiedError extends StoreError {
  constructor(location: RiakLocationInfo, cause?: unknown) {
    super("EEXIST", `${location.key}: changed in Riak since it was read`, { location, cause });
  }
}

/** The write would have replaced a version with a later mtime (written elsewhere meanwhile). */
export class NewerVersionError extends StoreError {
  constructor(path: string) {
    super("EEXIST", `${path}: Riak holds a newer version; not replaced`, { path });
  }
}

/** Bytes read from Riak do not match the sha256 recorded when they were written. */
export class ChecksumMismatchError extends StoreError {
  /** sha256 (hex) recorded in the usermeta or manifest. */
  readonly expected: string;
  /** sha256 (hex) of the bytes actually read. */
  readonly actual: string;

  constructor(path: string, location: RiakLocationInfo, expected: string, actual: string) {
    super(
      "EIO",
      `${path}: checksum mismatch${where(location)}: expected sha256 ${expected}, got ${actual}`,
      { path, location },
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** An object in Riak does not follow the layout (bad usermeta, unreadable manifest, missing chunk). */
export class CorruptObjectError extends StoreError {
  constructor(path: string, location: RiakLocationInfo | undefined, reason: string) {
    super("EIO", `${path || "/"}: ${reason}${where(location)}`, { path, location });
  }
}

/** A Riak request failed (network, timeout, quorum not met); the cause is the client's error. */
export class RiakRequestError extends StoreError {
  constructor(operation: string, location: RiakLocationInfo | undefined, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super("EIO", `Riak ${operation} failed${where(location)}: ${reason}`, { location, cause });
  }
}

function where(location?: RiakLocationInfo): string {
  if (!location) return "";
  return ` (type ${JSON.stringify(location.bucketType)}, bucket ${
    JSON.stringify(location.bucket)
  }, key ${JSON.stringify(location.key)})`;
}
