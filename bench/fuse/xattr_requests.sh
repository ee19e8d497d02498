#!/usr/bin/env bash
# What serving extended attributes costs: for riakfs builds alternating over the same source,
# the GETXATTR requests the kernel sends (all, and those the event loop answered rather than
# a reader thread) and the time taken during a 256 MiB `dd bs=1M` write, 2,000 small files
# (create+write+close+unlink) and `ls -l` of 2,000 files:
#
#   sudo bash bench/fuse/xattr_requests.sh /tmp/riakfs-before dist/riakfs   # ROUNDS=2 by default
#
# Every mount made here is unmounted, and every file written is deleted, on exit.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "xattr_requests: run as root (mounting needs it)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: xattr_requests.sh RIAKFS_BINARY..." >&2; exit 2; }
ROUNDS=${ROUNDS:-2}
FILES=${FILES:-2000}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/riakfs-xattr-XXXXXX")
SERVER_PID=""

# shellcheck source=bench/fuse/_work.sh
source "$(dirname "$0")/_work.sh" # unmounts $WORK/mnt, ends $SERVER_PID, removes $WORK on exit

mkdir -p "$WORK/source/many" "$WORK/mnt" "$WORK/run"
for i in $(seq "$FILES"); do : >"$WORK/source/many/file-$i"; done

# "all/loop" GETXATTR counts of the mount so far.
getxattrs() {
  "$binary" status --json --run-dir "$WORK/run" "$WORK/mnt" | python3 -c '
import json, sys
metrics = json.load(sys.stdin)["metrics"]
every = metrics["ops"].get("getxattr", 0)
print(every, every - metrics.get("opsInReaders", {}).get("getxattr", 0))'
}

# Runs a command; prints "seconds getxattr-all getxattr-on-loop" for it.
measure() {
  local before after start end
  read -r -a before <<<"$(getxattrs)"
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  read -r -a after <<<"$(getxattrs)"
  printf "%.2f s, GETXATTR %d (loop %d)" "$(echo "$end - $start" | bc)" \
    $((after[0] - before[0])) $((after[1] - before[1]))
}

small_files() {
  python3 - "$WORK/mnt" "$FILES" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    path = os.path.join(sys.argv[1], f"small-{i}")
    with open(path, "wb") as f:
        f.write(b"x" * 100)
    os.unlink(path)
PY
}

BINARIES=()
for binary in "$@"; do BINARIES+=("$(readlink -f "$binary")"); done

for round in $(seq "$ROUNDS"); do
  for binary in "${BINARIES[@]}"; do
    mount_work "$binary" --run-dir "$WORK/run"
    dd_line=$(measure dd if=/dev/zero of="$WORK/mnt/big" bs=1M count=256 status=none)
    rm -f "$WORK/mnt/big"
    small_line=$(measure small_files)
    ls_line=$(measure sh -c "ls -l '$WORK/mnt/many' >/dev/null")
    echo "round $round | $binary | dd 256 MiB: $dd_line | $FILES small files: $small_line | ls -l $FILES: $ls_line"
    unmount_work
  done
done
