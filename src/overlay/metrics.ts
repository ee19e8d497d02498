/**
 * The counters of a mount: operations by type, bytes read from local disk and from Riak,
 * copy-on-read queue depth, uploads pending and failed, errors, chunk cache hits. Components
 * bump them directly; `riakfs status` shows a {@link MetricsSnapshot} and `--metrics` serves
 * the same numbers in Prometheus text format.
 *
 * @module
 */

/** Every counter and gauge of a mount, as plain JSON. */
export interface MetricsSnapshot {
  /** FUSE operations handled, by operation name. */
  ops: Record<string, number>;
  /**
   * Of `ops`, those the FUSE reader threads answered themselves, without the event loop
   * (local files of the passthrough: getattr, open, read, write, release, create...).
   */
  opsInReaders: Record<string, number>;
  /** Failed operations, by errno name. */
  errors: Record<string, number>;
  bytesReadLocal: number;
  bytesReadRiak: number;
  bytesWritten: number;
  copyOnRead: {
    /** Files waiting in the queue (gauge). */
    queued: number;
    /** Files being copied now (gauge). */
    active: number;
    copied: number;
    /** Not queued: the queue was full or the file was already queued or in Riak. */
    skipped: number;
    failed: number;
    /** Called off (dropped, aborted or not queued) because its path was changing. */
    withdrawn: number;
  };
  uploads: {
    /** Journaled uploads not yet acknowledged by Riak (gauge). */
    pending: number;
    /** Uploads running now (gauge). */
    active: number;
    uploaded: number;
    bytesUploaded: number;
    /** Attempts that failed and will be retried. */
    failedAttempts: number;
    /** Uploads given up on (the staged file disappeared). */
    abandoned: number;
  };
  /**
   * Directories whose new mtime (an entry made, removed or renamed through the mount) is
   * shown but not yet written to Riak (gauge).
   */
  directoryTimesPending: number;
  localDeletion: {
    /** Local copies deleted after Riak's copy was verified. */
    deleted: number;
    /** Local copies kept because verification failed or the file changed. */
    kept: number;
  };
  cache: {
    hits: number;
    misses: number;
    /** Bytes held now, with what each cached block costs beyond its bytes (gauge). */
    bytes: number;
    readAheadChunks: number;
  };
  riak: {
    /** 1 when the last request found Riak reachable (gauge). */
    reachable: number;
    outages: number;
  };
}

/**
 * The live counters of one mount.
 *
 * @example
 * ```ts
 * const metrics = new MountMetrics();
 * metrics.countOp("read");
 * metrics.value.bytesReadLocal += 4096;
 * toPrometheus(metrics.snapshot());
 * ```
 */
export class MountMetrics {
  /** The counters; components update the fields in place. */
  readonly value: MetricsSnapshot = {
    ops: {},
    opsInReaders: {},
    errors: {},
    bytesReadLocal: 0,
    bytesReadRiak: 0,
    bytesWritten: 0,
    copyOnRead: { queued: 0, active: 0, copied: 0, skipped: 0, failed: 0, withdrawn: 0 },
    uploads: {
      pending: 0,
      active: 0,
      uploaded: 0,
      bytesUploaded: 0,
      failedAttempts: 0,
      abandoned: 0,
    },
    directoryTimesPending: 0,
    localDeletion: { deleted: 0, kept: 0 },
    cache: { hits: 0, misses: 0, bytes: 0, readAheadChunks: 0 },
    riak: { reachable: 1, outages: 0 },
  };

  readonly #refreshers: (() => void)[] = [];

  /** Registers a function that updates gauges right before each snapshot. */
  onSnapshot(refresh: () => void): void {
    this.#refreshers.push(refresh);
  }

  /** Counts one operation of type `op` (a FUSE operation name). */
  countOp(op: string): void {
    this.value.ops[op] = (this.value.ops[op] ?? 0) + 1;
  }

  /** Counts one failed operation by its errno name (`EIO`, `ENOENT`...). */
  countError(code: string): void {
    this.value.errors[code] = (this.value.errors[code] ?? 0) + 1;
  }

  /** A deep copy of the counters. */
  snapshot(): MetricsSnapshot {
    for (const refresh of this.#refreshers) refresh();
    return structuredClone(this.value);
  }
}

/** Chunk cache hit ratio in [0, 1], or undefined before the first lookup. */
export function cacheHitRatio(snapshot: MetricsSnapshot): number | undefined {
  const lookups = snapshot.cache.hits + snapshot.cache.misses;
  return lookups === 0 ? undefined : snapshot.cache.hits / lookups;
}

/**
 * The counters in Prometheus text exposition format (version 0.0.4).
 *
 * @example
 * ```ts
 * toPrometheus(new MountMetrics().snapshot()).includes("riakfs_ops_total"); // false: none yet
 * ```
 */
export function toPrometheus(
  snapshot: MetricsSnapshot,
  labels: Record<string, string> = {},
): string {
  const lines: string[] = [];
  const base = Object.entries(labels);
  const render = (extra: [string, string][]) => {
    const all = [...base, ...extra];
    if (all.length === 0) return "";
    return `{${all.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`;
  };
  const metric = (
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: [[string, string][], number][],
  ) => {
    lines.push(`# HELP riakfs_${name} ${help}`, `# TYPE riakfs_${name} ${type}`);
    for (const [extra, value] of samples) lines.push(`riakfs_${name}${render(extra)} ${value}`);
  };
  const one = (value: number): [[string, string][], number][] => [[[], value]];
  metric(
    "ops_total",
    "counter",
    "FUSE operations handled, by operation.",
    Object.entries(snapshot.ops).map(([op, count]) => [[["op", op]], count]),
  );
  metric(
    "ops_in_readers_total",
    "counter",
    "Of riakfs_ops_total, the operations the FUSE reader threads answered themselves.",
    Object.entries(snapshot.opsInReaders).map(([op, count]) => [[["op", op]], count]),
  );
  metric(
    "errors_total",
    "counter",
    "Failed operations, by errno.",
    Object.entries(snapshot.errors).map(([code, count]) => [[["errno", code]], count]),
  );
  metric("read_bytes_total", "counter", "Bytes read, by where they came from.", [
    [[["from", "local"]], snapshot.bytesReadLocal],
    [[["from", "riak"]], snapshot.bytesReadRiak],
  ]);
  metric(
    "written_bytes_total",
    "counter",
    "Bytes written through the mount.",
    one(snapshot.bytesWritten),
  );
  const cor = snapshot.copyOnRead;
  metric("copy_on_read_queued", "gauge", "Files waiting to be copied into Riak.", one(cor.queued));
  metric("copy_on_read_active", "gauge", "Files being copied into Riak.", one(cor.active));
  metric("copy_on_read_total", "counter", "Copy-on-read outcomes.", [
    [[["outcome", "copied"]], cor.copied],
    [[["outcome", "skipped"]], cor.skipped],
    [[["outcome", "failed"]], cor.failed],
    [[["outcome", "withdrawn"]], cor.withdrawn],
  ]);
  const up = snapshot.uploads;
  metric(
    "uploads_pending",
    "gauge",
    "Journaled uploads Riak has not acknowledged.",
    one(up.pending),
  );
  metric("uploads_active", "gauge", "Uploads running now.", one(up.active));
  metric("uploads_total", "counter", "Uploads Riak acknowledged.", one(up.uploaded));
  metric("uploaded_bytes_total", "counter", "Bytes Riak acknowledged.", one(up.bytesUploaded));
  metric(
    "upload_failed_attempts_total",
    "counter",
    "Upload attempts that failed and were retried.",
    one(up.failedAttempts),
  );
  metric(
    "uploads_abandoned_total",
    "counter",
    "Uploads whose staged file vanished.",
    one(up.abandoned),
  );
  metric(
    "directory_times_pending",
    "gauge",
    "Directories whose new mtime Riak does not hold yet.",
    one(snapshot.directoryTimesPending),
  );
  metric("local_deletions_total", "counter", "Verified deletion of local copies.", [
    [[["outcome", "deleted"]], snapshot.localDeletion.deleted],
    [[["outcome", "kept"]], snapshot.localDeletion.kept],
  ]);
  metric("cache_lookups_total", "counter", "Chunk cache lookups.", [
    [[["result", "hit"]], snapshot.cache.hits],
    [[["result", "miss"]], snapshot.cache.misses],
  ]);
  metric("cache_bytes", "gauge", "Bytes held by the chunk cache.", one(snapshot.cache.bytes));
  metric(
    "cache_read_ahead_chunks_total",
    "counter",
    "Chunks fetched ahead of sequential reads.",
    one(snapshot.cache.readAheadChunks),
  );
  metric(
    "riak_reachable",
    "gauge",
    "1 when Riak answered the last request.",
    one(snapshot.riak.reachable),
  );
  metric("riak_outages_total", "counter", "Riak outages seen.", one(snapshot.riak.outages));
  return lines.join("\n") + "\n";
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
