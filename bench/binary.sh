#!/usr/bin/env bash
# Size of dist/riakfs and its start-up time: the medians over 20 runs of `--version`, `--help`,
# `ls --help` and `serve-riak --help`, wall-clock and CPU (user + system), with the load
# average. CPU time suffers less than wall-clock time when other work shares the cores.
#
#   bash bench/binary.sh                                # dist/riakfs
#   bash bench/binary.sh /tmp/riakfs-old dist/riakfs    # old and new, alternating
#
# With several binaries the runs alternate between them (old, new, old, new...), so a change
# in the machine's load during the measurement hits every binary alike.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- dist/riakfs
for binary in "$@"; do
  [ -x "$binary" ] || { echo "bench/binary.sh: $binary is missing; run 'npm run build'" >&2; exit 1; }
  size=$(stat -c %s "$binary")
  printf 'size of %s: %s bytes (%.1f MB)\n' "$binary" "$size" "$(echo "$size / 1000000" | bc -l)"
done

runs=20
TIMEFORMAT='%3U %3S'

# Prints the median of the numbers (microseconds) given as arguments, in ms.
median_ms() {
  local sorted median
  # shellcheck disable=SC2207 # one number per word
  sorted=($(printf '%s\n' "$@" | sort -n))
  median=$(((sorted[runs / 2 - 1] + sorted[runs / 2]) / 2))
  printf '%d.%03d ms' $((median / 1000)) $((median % 1000))
}

for command in "--version" "--help" "ls --help" "serve-riak --help"; do
  declare -A wall=() cpu=()
  for _ in $(seq "$runs"); do
    for binary in "$@"; do
      start=$(date +%s%N)
      # shellcheck disable=SC2086 # the command is words on purpose
      used=$({ time "$binary" $command >/dev/null; } 2>&1)
      end=$(date +%s%N)
      wall[$binary]+="$(((end - start) / 1000)) "
      read -r user system <<<"${used//./}"
      cpu[$binary]+="$(((10#$user + 10#$system) * 1000)) "
    done
  done
  for binary in "$@"; do
    # shellcheck disable=SC2086 # one number per word
    printf 'start-up (%s), median of %d: %s wall, %s CPU  %s\n' "$command" "$runs" \
      "$(median_ms ${wall[$binary]})" "$(median_ms ${cpu[$binary]})" "$binary"
  done
  unset wall cpu
  echo "  $(uptime | sed 's/.*\(load average\)/\1/')"
done
