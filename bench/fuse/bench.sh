#!/usr/bin/env bash
# The FUSE layer side by side: the source directory itself, riakfs --preset passthrough,
# bindfs and mergerfs, all over the same source directory, in one run.
#
#   sudo bash bench/fuse/bench.sh            # needs root, dist/riakfs, bindfs, mergerfs, fio
#   BENCH_DIR=/work/tmp SIZE_MIB=1024 ROUNDS=3 bash bench/fuse/bench.sh
#
# Prints a markdown table (paste it into bench/README.md under "FUSE layer").
# Every mount made here is unmounted, and every file written is deleted, on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RIAKFS=${RIAKFS:-$ROOT/dist/riakfs}
MEASURE=(python3 "$ROOT/bench/measure.py")
BENCH_DIR=${BENCH_DIR:-/tmp}
SIZE_MIB=${SIZE_MIB:-1024}
FILES=${FILES:-10000}
STATS=${STATS:-20000}
ROUNDS=${ROUNDS:-3}

[ "$(id -u)" = 0 ] || { echo "bench: run as root (mounting and drop_caches need it)" >&2; exit 1; }
[ -x "$RIAKFS" ] || { echo "bench: $RIAKFS missing: run 'npm run build'" >&2; exit 1; }
missing=""
for tool in bindfs mergerfs fio python3; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
  echo "bench: missing:$missing (apt-get install -y bindfs mergerfs fio python3)" >&2
  exit 1
fi
free_mib=$(df -Pm "$BENCH_DIR" | awk 'NR==2 {print $4}')
if [ "$free_mib" -lt $((SIZE_MIB * 5 + 1024)) ]; then
  echo "bench: $BENCH_DIR has ${free_mib} MiB free; need $((SIZE_MIB * 5 + 1024))" >&2
  exit 1
fi

WORK=$(mktemp -d "$BENCH_DIR/riakfs-bench-XXXXXX")
SRC=$WORK/source
mkdir -p "$SRC" "$WORK/riakfs" "$WORK/bindfs" "$WORK/mergerfs"
RIAKFS_PID=""
BINDFS_PID=""
MERGERFS_PID=""

cleanup() {
  set +e
  for mnt in "$WORK/riakfs" "$WORK/bindfs" "$WORK/mergerfs"; do
    if grep -q " $mnt " /proc/self/mountinfo; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
  done
  for pid in $RIAKFS_PID $BINDFS_PID $MERGERFS_PID; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Attribute caching off everywhere (name caching stays at each one's default, 1 s), so the
# metadata lines measure the filesystems, not the kernel's cache.
"$RIAKFS" mount --preset passthrough -o attr_timeout=0 --pid-file "$WORK/riakfs.pid" \
  "$SRC" "$WORK/riakfs"
RIAKFS_PID=$(cat "$WORK/riakfs.pid")
# In the foreground (-f), in the background of this script: their pids are known exactly.
bindfs -f -o attr_timeout=0 "$SRC" "$WORK/bindfs" &
BINDFS_PID=$!
mergerfs -f -o cache.files=off,cache.attr=0 "$SRC" "$WORK/mergerfs" &
MERGERFS_PID=$!
for mnt in bindfs mergerfs; do
  for _ in $(seq 100); do grep -q " $WORK/$mnt " /proc/self/mountinfo && break; sleep 0.05; done
done

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
mbps() { python3 -c "import sys; print(f'{$SIZE_MIB * 1.048576 / (float(sys.argv[2]) - float(sys.argv[1])):,.0f}')" "$1" "$2"; }

TARGETS=(source riakfs bindfs mergerfs)
dir_of() { if [ "$1" = source ]; then echo "$SRC"; else echo "$WORK/$1"; fi; }

declare -A WRITE READ RANDREAD STAT LS SMALL
mkdir -p "$SRC/many"
"${MEASURE[@]}" many "$SRC/many" "$FILES"
echo "x" >"$SRC/statme"

# The sequential lines swing by 2-5x from minute to minute on a shared VM (its memory and
# disk are the host's): each is run ROUNDS times, the targets' order rotating every round,
# and the median is reported with the rounds.
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):,.0f}')" "$@"; }
declare -A WRITES READS
for round in $(seq "$ROUNDS"); do
  for i in "${!TARGETS[@]}"; do
    target=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
    dir=$(dir_of "$target")
    drop_caches
    start=$(now)
    dd if=/dev/zero of="$dir/big-$target" bs=1M count="$SIZE_MIB" status=none
    end=$(now)
    WRITES[$target]="${WRITES[$target]-} $(mbps "$start" "$end" | tr -d ,)"
    drop_caches
    start=$(now)
    dd if="$dir/big-$target" of=/dev/null bs=1M status=none
    end=$(now)
    READS[$target]="${READS[$target]-} $(mbps "$start" "$end" | tr -d ,)"
    rm -f "$dir/big-$target"
  done
done
for target in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # the rounds are words
  WRITE[$target]="$(median ${WRITES[$target]}) (${WRITES[$target]# })"
  # shellcheck disable=SC2086
  READ[$target]="$(median ${READS[$target]}) (${READS[$target]# })"
done

for target in "${TARGETS[@]}"; do
  dir=$(dir_of "$target")
  fio --name=randread --filename="$dir/fio-$target" --rw=randread --bs=4k --size=256M \
    --ioengine=psync --numjobs=2 --runtime=8 --time_based --group_reporting \
    --output-format=json >"$WORK/fio.json" 2>/dev/null
  RANDREAD[$target]=$("${MEASURE[@]}" iops "$WORK/fio.json")
  rm -f "$dir/fio-$target"

  STAT[$target]=$("${MEASURE[@]}" stat "$dir/statme" "$STATS")
  LS[$target]=$("${MEASURE[@]}" ls "$dir/many")
  SMALL[$target]=$("${MEASURE[@]}" small "$dir" "$FILES")
done

rss() { awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$1/status"; }

echo "| test | source dir | riakfs | bindfs | mergerfs |"
echo "|---|---|---|---|---|"
row() {
  local label=$1 name=$2
  local -n values=$name
  echo "| $label | ${values[source]} | ${values[riakfs]} | ${values[bindfs]} | ${values[mergerfs]} |"
}
row "sequential write ${SIZE_MIB} MiB, dd bs=1M, MB/s, median (rounds)" WRITE
row "sequential read ${SIZE_MIB} MiB, cold cache, dd bs=1M, MB/s, median (rounds)" READ
row "4 KiB random reads, fio psync 2 jobs, IOPS" RANDREAD
row "stat of one file x${STATS}, caching off, stats/s" STAT
row "ls -l of ${FILES} files, best of 3, ms" LS
row "create+write+close+unlink x${FILES}, files/s" SMALL
echo "| peak RSS of the mount process | - | $(rss "$RIAKFS_PID") | $(rss "$BINDFS_PID") | $(rss "$MERGERFS_PID") |"
