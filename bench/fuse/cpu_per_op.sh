#!/usr/bin/env bash
# CPU time the mount process spends per operation (all threads, and its main thread alone),
# for two riakfs builds mounted side by side over the same source and measured in
# alternating rounds (attribute caching off). CPU time per operation is far less disturbed
# than wall-clock rates when other work shares the cores:
#
#   sudo bash bench/fuse/cpu_per_op.sh /tmp/riakfs-before dist/riakfs   # ROUNDS=4 by default
#
# Every mount made here is unmounted, and every file written is deleted, on exit.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "cpu_per_op: run as root (mounting needs it)" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: cpu_per_op.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
ROUNDS=${ROUNDS:-4}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/riakfs-cpu-XXXXXX")
mkdir -p "$WORK/source" "$WORK/old" "$WORK/new"
echo x >"$WORK/source/statme"

cleanup() {
  set +e
  for side in old new; do
    if grep -q " $WORK/$side " /proc/self/mountinfo; then
      umount "$WORK/$side" || umount -l "$WORK/$side"
    fi
    # The mount removes its pid file when it exits: no file, nothing left to end.
    pid=$(cat "$WORK/$side.pid" 2>/dev/null) || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$(readlink -f "$1")" mount --preset passthrough -o attr_timeout=0 --pid-file "$WORK/old.pid" \
  "$WORK/source" "$WORK/old"
"$(readlink -f "$2")" mount --preset passthrough -o attr_timeout=0 --pid-file "$WORK/new.pid" \
  "$WORK/source" "$WORK/new"

python3 - "$WORK" "$ROUNDS" <<'PY'
import os, sys, time
work, rounds = sys.argv[1], int(sys.argv[2])
tick = os.sysconf("SC_CLK_TCK")
pids = {side: open(f"{work}/{side}.pid").read().strip() for side in ("old", "new")}

def cpu(pid, main_thread=False):
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = open(path).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def stats(mnt):
    for _ in range(10000):
        os.stat(os.path.join(mnt, "statme"))
    return 10000

def small(mnt):
    for i in range(2000):
        path = os.path.join(mnt, f"small-{i}")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        os.unlink(path)
    return 2000

totals = {(side, kind): [0.0, 0.0, 0.0] for side in pids for kind in ("stat", "small")}
for round_ in range(rounds):
    for side in (("old", "new") if round_ % 2 == 0 else ("new", "old")):
        for kind, run in (("stat", stats), ("small", small)):
            pid = pids[side]
            all_before, main_before, start = cpu(pid), cpu(pid, True), time.perf_counter()
            count = run(os.path.join(work, side))
            took = time.perf_counter() - start
            total = totals[(side, kind)]
            total[0] += (cpu(pid) - all_before) / count
            total[1] += (cpu(pid, True) - main_before) / count
            total[2] += count / took
for (side, kind), (all_cpu, main_cpu, rate) in sorted(totals.items(), reverse=True):
    print(f"{side} {kind:5}: {all_cpu / rounds * 1e6:6.1f} us CPU per op "
          f"({main_cpu / rounds * 1e6:5.1f} us on the main thread), {rate / rounds:8,.0f} ops/s")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
