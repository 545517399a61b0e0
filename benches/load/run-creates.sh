#!/usr/bin/env bash
# Create throughput and memory: KEYS keys (default 100 000) over ORGS
# organisations (default 1 000) with CONCURRENCY requests at once (default 16),
# made by examples/fill_keys against a fresh release server, its resident
# memory sampled every 0.2 s. SQLite unless a PostgreSQL URL is given.
# Usage: benches/load/run-creates.sh BINARY [KEYS] [ORGS] [CONCURRENCY] [postgres://…/database]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1"); keys=${2:-100000}; orgs=${3:-1000}; concurrency=${4:-16}; pg=${5:-}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -q --example fill_keys
port=18490 base=http://127.0.0.1:18490
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="${pg:-sqlite://$work/keys.db}" KEYMINT_LOG__LEVEL=warn \
    "$bin" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
( while kill -0 "$server" 2>/dev/null; do awk '/VmRSS/ {print int($2/1024)}' "/proc/$server/status" >> "$work/rss"; sleep 0.2; done ) &
sampler=$!
./target/release/examples/fill_keys "$base" "$keys" "$orgs" "$concurrency" "$work/keys.txt"
kill "$sampler"; wait "$sampler" 2>/dev/null || true
echo "RSS while creating: max $(sort -n "$work/rss" | tail -1) MB (sampled every 0.2 s)"
