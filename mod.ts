/**
 * riakfs as a library: the pieces an embedder uses to mount, migrate and inspect.
 *
 * The executable's entry point is `src/cli/main.ts`; this module re-exports the public
 * API of each layer as the layers land.
 *
 * @example
 * ```ts
 * import { runCli } from "./mod.ts";
 * const code = await runCli(["--version"]);
 * ```
 *
 * @module
 */
export { buildProgram, EXIT_USAGE, runCli, VERSION } from "./src/cli/program.ts";
export {
  type EmbeddedRiakOptions,
  type EmbeddedRiakServer,
  startEmbeddedRiak,
} from "./src/riak-server/mod.ts";
export {
  type ClusterOptions,
  ConnectionError,
  type GetResult,
  type Location,
  type PutOptions,
  RiakClient,
  type RiakContent,
  RiakError,
  TimeoutError,
} from "./src/riak/mod.ts";
export {
  deleteIfVerified,
  type PrewarmOptions,
  type PrewarmResult,
  progressFromState,
  runPrewarm,
  StateDirectory,
  verifyTree,
} from "./src/migration/mod.ts";
export {
  type Entry,
  Errno,
  fail,
  type FileSystem,
  FuseError,
  type RequestContext,
  serveFileSystem,
  type ServeOptions,
} from "./src/fuse/mod.ts";
export {
  formatStatus,
  ModeError,
  type MountMode,
  OverlayFileSystem,
  type OverlayRuntime,
  type OverlaySettings,
  overlaySettingsFromOptions,
  PRESETS,
  queryStatus,
  resolveMode,
  startOverlay,
  type StatusReport,
  translateLegacyFlags,
} from "./src/overlay/mod.ts";
export {
  openPassthrough,
  PassthroughFileSystem,
  type PassthroughOptions,
} from "./src/overlay/passthrough.ts";
export {
  collectGarbage,
  type DirEntry,
  type FileStat,
  type NamespaceOptions,
  openRiakStoreClient,
  riakStoreClient,
  Store,
  StoreError,
  type StoreOptions,
} from "./src/store/mod.ts";
