#!/usr/bin/env bash
# Create throughput at default argon2 parameters on SQLite, under wrk.
# Usage: benches/load/run-create.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
connections="${1:-16}"
seconds="${2:-30}"
port=18080
data=$(mktemp -d)

cargo build --release -q
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" \
KEYMINT_DATABASE__URL="sqlite://$data/keymint.db" \
KEYMINT_LOG__LEVEL=warn \
KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000 \
  ./target/release/keymint > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

TOKEN=$(./target/release/keymint dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
export TOKEN
wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s --latency -s benches/load/create.lua "http://127.0.0.1:$port"
echo "rows stored: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from api_keys').fetchone()[0])" "$data/keymint.db")"
