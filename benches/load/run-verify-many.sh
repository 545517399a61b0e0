#!/usr/bin/env bash
# Verification at any number of keys: KEYS distinct keys (default 100 000, made
# by examples/fill_keys over 100 organisations, which also gives the create
# rate and the peak RSS while creating), then, on a fresh process (nothing
# cached), every request presenting one of them at random with 64 connections
# for SECONDS (default 75: longer than two cache TTLs), then one warm key in the
# same process for 15 s. Needs wrk.
# With KEYS_FILE set, the keys made are kept in that file, and a later run
# given the same file and database verifies them again without making them.
# Usage: benches/load/run-verify-many.sh BINARY [postgres://…/database] [KEYS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1"); pg=${2:-}; keys=${3:-100000}; secs=${4:-75}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -q --example fill_keys
url=${pg:-sqlite://$work/keys.db}
port=18480 base=http://127.0.0.1:18480

start() {
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="$url" KEYMINT_LOG__LEVEL=warn \
        "$bin" > "$work/server.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 200); do curl -fs "$base/readyz" >/dev/null && return; sleep 0.1; done
    echo "keymint did not start"; cat "$work/server.log"; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }
rss_mb() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
# Samples the server's RSS every 0.2 s into $work/rss until killed.
sample() { while kill -0 "$server" 2>/dev/null; do rss_mb "$server" >> "$work/rss"; sleep 0.2; done; }

keys_file=${KEYS_FILE:-$work/keys.txt}
echo "=== storage: $([ -n "$pg" ] && echo PostgreSQL || echo SQLite); $keys keys"
if [ -s "$keys_file" ]; then
    echo "reusing $(wc -l < "$keys_file") keys from $keys_file"
else
    start
    echo "idle RSS: $(rss_mb "$server") MB"
    sample & sampler=$!
    ./target/release/examples/fill_keys "$base" "$keys" 100 16 "$keys_file"
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    echo "RSS while creating: max $(sort -n "$work/rss" | tail -1) MB (sampled every 0.2 s)"
    stop
fi

echo "=== fresh process: $keys distinct keys at random, wrk -t2 -c64 -d${secs}s"
start
echo "RSS before: $(rss_mb "$server") MB"
: > "$work/rss"; sample & sampler=$!
KEYS_FILE="$keys_file" RANDOM_KEYS=1 wrk -t2 -c64 -d"${secs}s" --latency -s benches/load/verify.lua "$base" \
    | grep -E "Requests/sec|not VALID|p50 latency|p99 latency|p99.9 latency"
echo "RSS: max $(sort -n "$work/rss" | tail -1) MB during, $(rss_mb "$server") MB after"
curl -s "$base/metrics" | grep -E "^keymint_verification_cache_(hits|misses|refreshes)_total|^keymint_key_hash_checks_total|^keymint_verification_cache_entries|^keymint_analytics_" || true

echo "=== the same process: one warm key, wrk -t2 -c64 -d15s"
key=$(head -1 "$keys_file")
KEY=$key wrk -t2 -c64 -d15s --latency -s benches/load/verify.lua "$base" \
    | grep -E "Requests/sec|not VALID|p50 latency|p99 latency"
kill "$sampler" 2>/dev/null || true
stop
