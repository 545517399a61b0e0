#!/usr/bin/env bash
# Compares builds of keymint in one run: create throughput (wrk, 16 connections)
# and warm verify (wrk, 64 connections), each build measured in turn, ROUNDS
# times, so machine drift affects every build alike. Used to show that a change
# costs nothing on the hot paths.
# Usage: benches/load/run-ab.sh SECONDS ROUNDS NAME=BINARY [NAME=BINARY ...]
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=$1 rounds=$2; shift 2
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
org=3c90c3cc-0d44-4b50-8888-8dd25736052a

run() {
    local name=$1 bin=$2 port=18180
    rm -f "$work"/db*
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" \
        KEYMINT_LOG__LEVEL=warn KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=1000000 "$bin" > "$work/log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    TOKEN=$("$bin" dev-token --org "$org" --ttl 3600); export TOKEN
    local create warm key
    create=$(wrk -t1 -c16 -d"${secs}s" --timeout 10s --latency -s benches/load/create.lua "http://127.0.0.1:$port")
    key=$(curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d '{"name":"warm"}' | sed -E 's/.*"private_key":"([^"]+)".*/\1/')
    # One verification first, so the run measures the cache, not 64 connections
    # missing it at once.
    curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys/verify" -H 'Content-Type: application/json' \
        -d "{\"key\":\"$key\"}" >/dev/null
    warm=$(KEY=$key wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua "http://127.0.0.1:$port")
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    printf '%-10s create %8s/s  non-201 %s  p99 %8s | warm verify %9s/s  not-VALID %s  p99 %8s\n' "$name" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$create")" "$(awk '/non-201/ {print $3}' <<<"$create")" \
        "$(awk '/^p99 latency/ {print $3}' <<<"$create")" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$warm")" "$(awk '/not VALID/ {print $3}' <<<"$warm")" \
        "$(awk '/^p99 latency/ {print $3}' <<<"$warm")"
}

for round in $(seq 1 "$rounds"); do
    echo "--- round $round"
    for build in "$@"; do run "${build%%=*}" "${build#*=}"; done
done
