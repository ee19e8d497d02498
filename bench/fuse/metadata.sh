#!/usr/bin/env bash
# Metadata lines only (stat, ls -l, small files; attribute caching off), for riakfs builds
# alternating over the same source, so that changes are compared under the same load:
#
#   sudo bash bench/fuse/metadata.sh /tmp/riakfs-before dist/riakfs   # ROUNDS=3 by default
#
# Every mount made here is unmounted, and every file written is deleted, on exit.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "metadata: run as root (mounting needs it)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: metadata.sh RIAKFS_BINARY..." >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-10000}
STATS=${STATS:-20000}
SMALL=${SMALL:-5000}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/riakfs-metadata-XXXXXX")
SERVER_PID=""

# shellcheck source=bench/fuse/_work.sh
source "$(dirname "$0")/_work.sh" # unmounts $WORK/mnt, ends $SERVER_PID, removes $WORK on exit

mkdir -p "$WORK/source/many" "$WORK/mnt"
python3 - "$WORK/source/many" "$FILES" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], f"file-{i:05d}"), "w") as f:
        f.write("x")
PY
echo x >"$WORK/source/statme"

measure() {
  python3 - "$WORK/mnt" "$STATS" "$SMALL" <<'PY'
import os, subprocess, sys, time
mnt, stats, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
for _ in range(stats):
    os.stat(os.path.join(mnt, "statme"))
stat_rate = stats / (time.perf_counter() - start)
best = None
for _ in range(3):
    start = time.perf_counter()
    subprocess.run(["ls", "-l", os.path.join(mnt, "many")], stdout=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - start
    best = took if best is None else min(best, took)
start = time.perf_counter()
for i in range(small):
    path = os.path.join(mnt, f"small-{i}")
    with open(path, "wb") as f:
        f.write(b"x" * 100)
    os.unlink(path)
small_rate = small / (time.perf_counter() - start)
print(f"{stat_rate:,.0f} stats/s | ls -l {best * 1000:,.0f} ms | {small_rate:,.0f} files/s")
PY
}

BINARIES=()
for binary in "$@"; do BINARIES+=("$(readlink -f "$binary")"); done

for round in $(seq "$ROUNDS"); do
  for binary in "${BINARIES[@]}"; do
    mount_work "$binary" -o attr_timeout=0
    echo "round $round | $binary | $(measure)"
    unmount_work
  done
done
