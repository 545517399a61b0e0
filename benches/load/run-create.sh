#!/usr/bin/env bash
# Create throughput at default argon2 parameters on SQLite, under wrk, against
# the raw argon2 rate of this machine measured in the same run (before and
# after the load, averaged).
# Usage: benches/load/run-create.sh [connections] [seconds] [binary]
set -euo pipefail
cd "$(dirname "$0")/../.."
connections="${1:-16}"
seconds="${2:-30}"
bin="${3:-./target/release/keymint}"
port=18080
data=$(mktemp -d)

cargo build --release -q --bin keymint --example argon2_rate
rate() { ./target/release/examples/argon2_rate 10 | awk '{print $4}'; }
raw_before=$(rate)
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" \
KEYMINT_DATABASE__URL="sqlite://$data/keymint.db" \
KEYMINT_LOG__LEVEL=warn \
KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=1000000 \
  "$bin" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

TOKEN=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
export TOKEN
wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s --latency -s benches/load/create.lua \
    "http://127.0.0.1:$port" | tee "$data/wrk"
echo "rows stored: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from api_keys').fetchone()[0])" "$data/keymint.db")"
kill "$server"; wait "$server" 2>/dev/null || true
raw_after=$(rate)
creates=$(awk '/Requests\/sec/ {print $2}' "$data/wrk")
awk -v c="$creates" -v a="$raw_before" -v b="$raw_after" 'BEGIN {
    raw = (a + b) / 2
    printf "raw argon2 (2 cores): %.1f before, %.1f after, mean %.1f hashes/s\n", a, b, raw
    printf "creates: %.1f/s = %.3f of the raw rate\n", c, c / raw }'
