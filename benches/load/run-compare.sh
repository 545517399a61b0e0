#!/usr/bin/env bash
# SQLite next to PostgreSQL, same machine, same run: create throughput (default
# argon2), warm verify and cold verify. PostgreSQL comes from $BENCH_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/test); a database keymint_bench is
# created for the run and dropped afterwards. Needs wrk and psql.
# Usage: benches/load/run-compare.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
admin="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_url="${admin%/*}/keymint_bench"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$admin" -qc "DROP DATABASE IF EXISTS keymint_bench WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q --bin keymint
bin=./target/release/keymint
token=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 7200)
export TOKEN=$token
psql "$admin" -qc "DROP DATABASE IF EXISTS keymint_bench WITH (FORCE)" >/dev/null
psql "$admin" -qc "CREATE DATABASE keymint_bench" >/dev/null

for engine in sqlite postgres; do
    case $engine in
        sqlite) url="sqlite://$work/bench.db" ;;
        postgres) url="$pg_url" ;;
    esac
    env KEYMINT_SERVER__LISTEN=127.0.0.1:18082 KEYMINT_DATABASE__URL="$url" KEYMINT_LOG__LEVEL=warn \
        KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000 "$bin" > "$work/$engine.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 100); do curl -fs http://127.0.0.1:18082/readyz >/dev/null && break; sleep 0.1; done

    echo "=== $engine: create, wrk -t1 -c16 -d${secs}s (default argon2)"
    : > "$work/keys-$engine.txt"
    OUT_FILE="$work/keys-$engine.txt" wrk -t1 -c16 -d"${secs}s" --latency -s benches/load/capture.lua \
        http://127.0.0.1:18082 | grep -E "Requests/sec|99%|Non-2xx"
    key=$(head -n 1 "$work/keys-$engine.txt")
    curl -fs -X POST http://127.0.0.1:18082/api/v2/api-keys/verify -H 'Content-Type: application/json' \
        -d "{\"key\":\"$key\"}" >/dev/null

    echo "=== $engine: warm verify, wrk -t1 -c64 -d${secs}s"
    KEY=$key wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua http://127.0.0.1:18082 \
        | grep -E "Requests/sec|not VALID|p50|p99 "

    echo "=== $engine: cold verify (distinct uncached keys), wrk -t1 -c4 -d8s"
    tail -n +2 "$work/keys-$engine.txt" > "$work/cold-$engine.txt"
    KEYS_FILE="$work/cold-$engine.txt" wrk -t1 -c4 -d8s --latency -s benches/load/verify.lua http://127.0.0.1:18082 \
        | grep -E "requests in|Requests/sec|not VALID|p50|p99 "
    kill "$server"; wait "$server" 2>/dev/null || true
done
