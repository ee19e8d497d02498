#!/usr/bin/env bash
# Files served locally, side by side in one run: the source directory itself, riakfs
# --preset passthrough, --preset shadow, --preset migrate (against `riakfs serve-riak` running
# as its own process, data on disk) and mergerfs, all over the same source directory. Then the
# memory run: peak RSS (VmHWM/VmRSS) of a migrate mount while 5 GiB are copied into it and
# read back out of it.
#
#   sudo bash bench/overlay/local_bench.sh          # needs root, dist/riakfs, mergerfs, fio
#   LINES=0 bash bench/overlay/local_bench.sh       # only the memory run
#   MEMORY=0 SIZE_MIB=256 FILES=2000 bash bench/overlay/local_bench.sh   # quick, lines only
#   MEMORY=0 TARGETS="shadow migrate" RIAKFS=/tmp/old-riakfs bash ...   # some columns, another build
#   RIAK_PORT=19400 bash ...   # the server on a given port (default: one the system picks)
#
# Read lines read files created directly in the source directory (for migrate: files not in
# Riak); write lines write through the mount. Between lines the script waits until the overlay
# mounts have no upload or copy-on-read left (polled with `riakfs status --json`), so
# background work of one line does not land in the next. Attribute caching is the same for
# every filesystem: ATTR_TIMEOUT (default 0, i.e. off) and ENTRY_TIMEOUT (default 1 s).
#
# The measurements themselves are in bench/measure.py (shared with bench/fuse/bench.sh). Prints markdown tables
# (paste them into bench/README.md under "Overlay"). FUSE operation counts of every line and
# the RSS samples are kept in RESULTS (printed at the end). Every mount made here is unmounted,
# every process started is ended by its pid, and every file written is deleted, on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MEASURE=(python3 "$ROOT/bench/measure.py")
RIAKFS=${RIAKFS:-$ROOT/dist/riakfs}
BENCH_DIR=${BENCH_DIR:-/tmp}
SIZE_MIB=${SIZE_MIB:-1024}
FILES=${FILES:-10000}
STATS=${STATS:-20000}
SMALL=${SMALL:-2000}
ATTR_TIMEOUT=${ATTR_TIMEOUT:-0}
ENTRY_TIMEOUT=${ENTRY_TIMEOUT:-1}
MERGERFS_CACHE_FILES=${MERGERFS_CACHE_FILES:-partial}
MEMORY_MIB=${MEMORY_MIB:-5120}
LINES=${LINES:-1}
MEMORY=${MEMORY:-1}
IDLE_DEADLINE_S=${IDLE_DEADLINE_S:-900}
RIAK_PORT=${RIAK_PORT:-0}

[ "$(id -u)" = 0 ] || { echo "bench: run as root (mounting and drop_caches need it)" >&2; exit 1; }
[ -x "$RIAKFS" ] || { echo "bench: $RIAKFS missing: run 'npm run build'" >&2; exit 1; }
missing=""
for tool in mergerfs fio python3; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
  echo "bench: missing:$missing (apt-get install -y mergerfs fio python3)" >&2
  exit 1
fi
# Lines: a written and a read file of SIZE_MIB plus their copies in the spool and in Riak.
# Memory run: the file in the source, its staged copy and Riak's copy, plus a local-only file.
need_mib=1024
[ "$LINES" = 1 ] && need_mib=$((need_mib + SIZE_MIB * 6))
[ "$MEMORY" = 1 ] && need_mib=$((need_mib + MEMORY_MIB * 5))
free_mib=$(df -Pm "$BENCH_DIR" | awk 'NR==2 {print $4}')
if [ "$free_mib" -lt "$need_mib" ]; then
  echo "bench: $BENCH_DIR has ${free_mib} MiB free; need $need_mib" >&2
  exit 1
fi

WORK=$(mktemp -d "$BENCH_DIR/riakfs-local-bench-XXXXXX")
RESULTS=${RESULTS:-$(mktemp -d "$BENCH_DIR/riakfs-local-bench-results-XXXXXX")}
SRC=$WORK/source
mkdir -p "$RESULTS"
RUN=$WORK/run
mkdir -p "$SRC" "$RUN" "$WORK/riak-data" "$WORK/m/passthrough" "$WORK/m/shadow" \
  "$WORK/m/migrate" "$WORK/m/mergerfs" "$WORK/m/memory"
SERVER_PID=""
MERGERFS_PID=""
SAMPLER_PID=""
declare -A MOUNT_PID

unmount_riakfs() {
  local mnt=$1
  grep -q " $mnt " /proc/self/mountinfo || return 0
  "$RIAKFS" umount --run-dir "$RUN" --drain-timeout 5000 "$mnt" >/dev/null 2>&1 ||
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
}

end_process() {
  local pid=$1
  [ -n "$pid" ] || return 0
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  set +e
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  for name in passthrough shadow migrate memory; do unmount_riakfs "$WORK/m/$name"; done
  if grep -q " $WORK/m/mergerfs " /proc/self/mountinfo; then
    umount "$WORK/m/mergerfs" 2>/dev/null || umount -l "$WORK/m/mergerfs"
  fi
  for pid in "${MOUNT_PID[@]}" $MERGERFS_PID; do end_process "$pid"; done
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  end_process "$SERVER_PID"
  rm -rf "$WORK"
  echo "bench: operation counts and RSS samples are in $RESULTS" >&2
}
trap cleanup EXIT

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
seconds() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }
mbps() { "${MEASURE[@]}" mbps "$1" "$2"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
kib_of() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }

# ---- the embedded server, its own process, data in an fsynced log on disk ----
"$RIAKFS" serve-riak --data "$WORK/riak-data" --listen "127.0.0.1:$RIAK_PORT" >"$WORK/server.out" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.out" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$PORT" ] || { echo "bench: serve-riak did not start: $(cat "$WORK/server.out")" >&2; exit 1; }

# Mounts riakfs with `preset` over `source` at $WORK/m/`name` (in the background; returns once
# it answers) and records its pid.
mount_riakfs() {
  local name=$1 preset=$2 source=$3
  "$RIAKFS" mount --preset "$preset" -o "attr_timeout=$ATTR_TIMEOUT,entry_timeout=$ENTRY_TIMEOUT" \
    --riak "127.0.0.1:$PORT" --bucket "bench-$name" --spool "$WORK/spool-$name" --run-dir "$RUN" \
    --pid-file "$WORK/$name.pid" --log-file "$WORK/$name.log" "$source" "$WORK/m/$name"
  MOUNT_PID[$name]=$(cat "$WORK/$name.pid")
}

status_json() { "$RIAKFS" status --json --run-dir "$RUN" "$WORK/m/$1"; }

# Waits until the overlay mount `name` has no upload and no copy-on-read queued or running.
wait_idle() {
  local name=$1 deadline=$((SECONDS + IDLE_DEADLINE_S))
  case $name in shadow | migrate | memory) ;; *) return 0 ;; esac
  while [ $SECONDS -lt $deadline ]; do
    status_json "$name" >"$WORK/status.json"
    "${MEASURE[@]}" busy "$WORK/status.json" && return 0
    sleep 0.2
  done
  echo "bench: $name still busy after ${IDLE_DEADLINE_S} s" >&2
  return 1
}

# FUSE operations the event loop of mount `name` answered (reader-thread answers not included).
ops_snapshot() {
  case $1 in passthrough | shadow | migrate) status_json "$1" >"$RESULTS/ops-$1-$2.json" ;; esac
}

if [ "$LINES" = 1 ]; then
  mount_riakfs passthrough passthrough "$SRC"
  mount_riakfs shadow shadow "$SRC"
  mount_riakfs migrate migrate "$SRC"
  mergerfs -f -o "cache.files=$MERGERFS_CACHE_FILES,cache.attr=$ATTR_TIMEOUT,cache.entry=$ENTRY_TIMEOUT" \
    "$SRC" "$WORK/m/mergerfs" &
  MERGERFS_PID=$!
  for _ in $(seq 200); do grep -q " $WORK/m/mergerfs " /proc/self/mountinfo && break; sleep 0.05; done

  read -r -a TARGETS <<<"${TARGETS:-source passthrough shadow migrate mergerfs}"
  dir_of() { if [ "$1" = source ]; then echo "$SRC"; else echo "$WORK/m/$1"; fi; }

  declare -A WRITE DRAINED READ RANDREAD STAT LS SMALLF
  mkdir -p "$SRC/many"
  "${MEASURE[@]}" many "$SRC/many" "$FILES"
  echo "x" >"$SRC/statme"
  echo "bench: lines start at $(date -u +%H:%M:%S), load $(load)" >&2

  for target in "${TARGETS[@]}"; do
    dir=$(dir_of "$target")
    ops_snapshot "$target" 0-start

    # Sequential write through the mount; dd's time includes close (staging, publishing).
    drop_caches
    start=$(now)
    dd if=/dev/zero of="$dir/write-$target" bs=1M count="$SIZE_MIB" status=none
    end=$(now)
    WRITE[$target]=$(mbps "$SIZE_MIB" "$(seconds "$start" "$end")")
    case $target in
      shadow | migrate)
        wait_idle "$target"
        DRAINED[$target]=$(mbps "$SIZE_MIB" "$(seconds "$start" "$(now)")")
        ;;
      *) DRAINED[$target]="-" ;;
    esac
    rm -f "$dir/write-$target"
    wait_idle "$target"
    ops_snapshot "$target" 1-write

    # Sequential read, cold cache, of a file made in the source (local only, not in Riak).
    dd if=/dev/zero of="$SRC/read-$target" bs=1M count="$SIZE_MIB" status=none
    drop_caches
    start=$(now)
    dd if="$dir/read-$target" of=/dev/null bs=1M status=none
    end=$(now)
    READ[$target]=$(mbps "$SIZE_MIB" "$(seconds "$start" "$end")")
    wait_idle "$target" # Copy-on-read of the file just read.
    rm -f "$dir/read-$target"
    wait_idle "$target"
    ops_snapshot "$target" 2-read

    dd if=/dev/zero of="$SRC/fio-$target" bs=1M count=256 status=none
    fio --name=randread --filename="$dir/fio-$target" --rw=randread --bs=4k --size=256M \
      --ioengine=psync --numjobs=2 --runtime=8 --time_based --group_reporting \
      --output-format=json >"$WORK/fio.json" 2>/dev/null
    RANDREAD[$target]=$("${MEASURE[@]}" iops "$WORK/fio.json")
    wait_idle "$target"
    rm -f "$dir/fio-$target"
    wait_idle "$target"
    ops_snapshot "$target" 3-randread

    STAT[$target]=$("${MEASURE[@]}" stat "$dir/statme" "$STATS")
    ops_snapshot "$target" 4-stat
    LS[$target]=$("${MEASURE[@]}" ls "$dir/many")
    ops_snapshot "$target" 5-ls
    SMALLF[$target]=$("${MEASURE[@]}" small "$dir" "$SMALL")
    wait_idle "$target"
    ops_snapshot "$target" 6-small
    echo "bench: $target done at $(date -u +%H:%M:%S), load $(load)" >&2
  done

  rss() { echo "$(($(kib_of "$1" VmHWM) / 1024)) MB"; }
  echo "| test | source dir | passthrough | shadow | migrate | mergerfs |"
  echo "|---|---|---|---|---|---|"
  row() {
    local label=$1 name=$2
    local -n values=$name
    echo "| $label | ${values[source]-} | ${values[passthrough]-} | ${values[shadow]-} | ${values[migrate]-} | ${values[mergerfs]-} |"
  }
  row "sequential write ${SIZE_MIB} MiB, dd bs=1M (until close), MB/s" WRITE
  row "same, until uploaded to Riak, MB/s" DRAINED
  row "sequential read ${SIZE_MIB} MiB, cold cache, dd bs=1M, MB/s" READ
  row "4 KiB random reads, fio psync 2 jobs, IOPS" RANDREAD
  row "stat of one file x${STATS}, stats/s" STAT
  row "ls -l of ${FILES} files, best of 3, ms" LS
  row "create+write+close+unlink x${SMALL}, files/s" SMALLF
  echo "| peak RSS of the mount process | - | $(rss "${MOUNT_PID[passthrough]}") | $(rss "${MOUNT_PID[shadow]}") | $(rss "${MOUNT_PID[migrate]}") | $(rss "$MERGERFS_PID") |"
  echo "bench: lines end at $(date -u +%H:%M:%S), load $(load)" >&2

  for name in passthrough shadow migrate; do unmount_riakfs "$WORK/m/$name"; done
  umount "$WORK/m/mergerfs" 2>/dev/null || umount -l "$WORK/m/mergerfs"
  for name in passthrough shadow migrate; do end_process "${MOUNT_PID[$name]}"; done
  end_process "$MERGERFS_PID"
  MOUNT_PID=()
  MERGERFS_PID=""
  rm -rf "$SRC"
fi

if [ "$MEMORY" = 1 ]; then
  # An operator's copy of 5 GiB: `cp` of one big file INTO a migrate mount (staged in the
  # spool, published into the source, uploaded to the embedded server), then reading it back
  # OUT of the mount with a cold page cache (served from Riak once uploaded), then reading a
  # file of the same size that is only local (served locally, then copied to Riak).
  MSRC=$WORK/memory-source
  mkdir -p "$MSRC"
  dd if=/dev/urandom of="$WORK/original" bs=1M count="$MEMORY_MIB" status=none
  mount_riakfs memory migrate "$MSRC"
  mpid=${MOUNT_PID[memory]}
  echo "bench: memory run starts at $(date -u +%H:%M:%S), load $(load)" >&2
  # One VmRSS sample (KiB) every 0.25 s, tagged with the phase named in $WORK/phase.
  # The phase file is replaced by rename, so the sampler never reads it half written.
  set_phase() { echo "$1" >"$WORK/phase.new" && mv "$WORK/phase.new" "$WORK/phase"; }
  set_phase idle
  (
    while kill -0 "$mpid" 2>/dev/null; do
      echo "$(cat "$WORK/phase") $(kib_of "$mpid" VmRSS)"
      sleep 0.25
    done
  ) >"$RESULTS/rss-samples.txt" &
  SAMPLER_PID=$!
  declare -A PHASE_SECONDS
  run_phase() {
    local phase=$1
    shift
    set_phase "$phase"
    local start
    start=$(now)
    "$@"
    PHASE_SECONDS[$phase]=$(seconds "$start" "$(now)")
  }
  idle_rss=$(kib_of "$mpid" VmRSS)
  drop_caches
  run_phase "cp-into-mount" cp "$WORK/original" "$WORK/m/memory/big"
  run_phase "upload-drain" wait_idle memory
  cmp "$WORK/original" "$MSRC/big" # What the mount published locally is what was copied.
  drop_caches
  run_phase "read-from-riak" dd if="$WORK/m/memory/big" of=/dev/null bs=1M status=none
  set_phase idle
  # Deleted through the mount (from Riak too): the embedded server keeps every value in memory
  # (its log on disk is for durability), so this keeps the server at about one copy's size.
  rm -f "$WORK/m/memory/big"
  wait_idle memory
  mv "$WORK/original" "$MSRC/local-only" # The same filesystem: a rename, not a copy.
  drop_caches
  run_phase "read-local-only" dd if="$WORK/m/memory/local-only" of=/dev/null bs=1M status=none
  run_phase "copy-on-read-drain" wait_idle memory
  hwm=$(kib_of "$mpid" VmHWM)
  server_hwm=$(kib_of "$SERVER_PID" VmHWM)
  status_json memory >"$RESULTS/status-memory.json"
  kill "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  echo "bench: memory run ends at $(date -u +%H:%M:%S), load $(load)" >&2
  echo
  echo "| phase (migrate mount, ${MEMORY_MIB} MiB) | seconds | MB/s | peak VmRSS of the mount |"
  echo "|---|---|---|---|"
  for phase in cp-into-mount upload-drain read-from-riak read-local-only copy-on-read-drain; do
    peak=$(awk -v p="$phase" '$1 == p && $2 > max {max = $2} END {printf "%.0f MB", max / 1024}' \
      "$RESULTS/rss-samples.txt")
    rate="-" # A drain phase is what was left after the phase before it: no rate of its own.
    case $phase in *-drain) ;; *) rate=$(mbps "$MEMORY_MIB" "${PHASE_SECONDS[$phase]}") ;; esac
    echo "| $phase | $(printf '%.1f' "${PHASE_SECONDS[$phase]}") | $rate | $peak |"
  done
  echo "| VmHWM of the mount process (idle before: $((idle_rss / 1024)) MB) | | | $((hwm / 1024)) MB |"
  echo "| VmHWM of serve-riak --data (own process) | | | $((server_hwm / 1024)) MB |"
fi
