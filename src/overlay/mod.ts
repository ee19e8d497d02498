/**
 * The migrating overlay: mount modes and presets, the overlay filesystem over a local
 * source and a Riak namespace, the write path (spool, journal, upload queue), copy-on-read,
 * Riak health, the chunk cache, status and metrics, and riak-fuse's legacy flags.
 *
 * @example
 * ```ts
 * import { overlaySettingsFromOptions, startOverlay } from "./mod.ts";
 * const settings = overlaySettingsFromOptions({ preset: "migrate" });
 * const runtime = await startOverlay({ settings, source, mountpoint, store, riakNodes, logger });
 * // serve runtime.fileSystem with serveFileSystem(), then:
 * await runtime.stop();
 * ```
 *
 * @module
 */
export {
  checkMode,
  DEFAULT_PRESET,
  describeMode,
  ModeError,
  type MountMode,
  type PresetName,
  presetOf,
  PRESETS,
  renderModeTable,
  resolveMode,
} from "./modes.ts";
export { LegacyFlagError, type LegacyTranslation, translateLegacyFlags } from "./legacy_flags.ts";
export {
  addOverlayOptions,
  type OverlaySettings,
  overlaySettingsFromOptions,
} from "./mount_options.ts";
export { type OverlayRuntime, type OverlayStartOptions, startOverlay } from "./runtime.ts";
export { OverlayFileSystem, type OverlayOptions, type OverlayStore } from "./overlay.ts";
export {
  type DrainOutcome,
  formatStatus,
  NotServingError,
  queryStatus,
  requestDrain,
  runtimePaths,
  type StatusReport,
} from "./control.ts";
export { type MetricsSnapshot, MountMetrics, toPrometheus } from "./metrics.ts";
export { type LogFormat, Logger } from "./log.ts";
export { UploadJournal } from "./journal.ts";
export { UploadQueue } from "./upload_queue.ts";
export { Spool } from "./spool.ts";
export { CopyOnReadQueue } from "./copy_on_read.ts";
export { ChunkCache } from "./chunk_cache.ts";
export {
  DEFAULT_CACHE_BYTES,
  DEFAULT_COPY_CONCURRENCY,
  DEFAULT_READ_AHEAD_BLOCKS,
  DEFAULT_RUN_DIRECTORY,
  DEFAULT_STATUS_TIMEOUT_MS,
  DEFAULT_UPLOAD_CONCURRENCY,
} from "./defaults.ts";
export { RiakHealth } from "./health.ts";
