/**
 * Content type of a file from its name's extension, so the objects in Riak are served with
 * a sensible `Content-Type` by Riak's HTTP API. Unknown extensions get
 * `application/octet-stream`.
 *
 * @module
 */

/** Content type used when the extension is unknown (riak-fuse used it for everything). */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

const BY_EXTENSION: Record<string, string> = {
  avif: "image/avif",
  bmp: "image/bmp",
  css: "text/css",
  csv: "text/csv",
  gif: "image/gif",
  gz: "application/gzip",
  htm: "text/html",
  html: "text/html",
  ico: "image/vnd.microsoft.icon",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  js: "text/javascript",
  json: "application/json",
  md: "text/markdown",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
  pdf: "application/pdf",
  png: "image/png",
  svg: "image/svg+xml",
  tar: "application/x-tar",
  tif: "image/tiff",
  tiff: "image/tiff",
  txt: "text/plain",
  wasm: "application/wasm",
  webm: "video/webm",
  webp: "image/webp",
  xml: "application/xml",
  zip: "application/zip",
};

/**
 * The content type for a file name, by its last extension (case-insensitive).
 *
 * @example
 * ```ts
 * contentTypeFor("IMG_0001.JPG"); // "image/jpeg"
 * ```
 */
export function contentTypeFor(name: string): string {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return DEFAULT_CONTENT_TYPE;
  return BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
