#!/usr/bin/env bash
# Size of dist/riakfs and the median start-up time of `riakfs --version` over 20 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=dist/riakfs
[ -x "$binary" ] || { echo "bench/binary.sh: $binary is missing; run 'npm run build'" >&2; exit 1; }
printf 'size: %s bytes (%.1f MB)\n' "$(stat -c %s "$binary")" "$(echo "$(stat -c %s "$binary") / 1000000" | bc -l)"
times=()
for _ in $(seq 20); do
  start=$(date +%s%N)
  "$binary" --version >/dev/null
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=$(( (sorted[9] + sorted[10]) / 2 ))
printf 'start-up (--version), median of 20: %d.%03d ms\n' $((median / 1000)) $((median % 1000))
