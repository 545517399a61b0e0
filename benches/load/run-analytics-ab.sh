#!/usr/bin/env bash
# Usage analytics on the warm path, A/B in one run: the same build with
# analytics off, on (no tags) and on with two random tags per request (200 x 4
# values), one cached key, wrk with 64 connections for SECONDS, the three in
# turn ROUNDS times so machine drift affects each alike. SQLite.
# Usage: benches/load/run-analytics-ab.sh BINARY SECONDS ROUNDS
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1"); secs=$2; rounds=$3
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
org=3c90c3cc-0d44-4b50-8888-8dd25736052a
port=18190

run() {
    local name=$1 enabled=$2 tags=$3
    rm -f "$work"/db*
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=warn \
        KEYMINT_ANALYTICS__ENABLED="$enabled" "$bin" > "$work/log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    local token key out
    token=$("$bin" dev-token --org "$org" --ttl 3600)
    key=$(curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"name":"warm"}' | sed -E 's/.*"private_key":"([^"]+)".*/\1/')
    curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys/verify" -H 'Content-Type: application/json' \
        -d "{\"key\":\"$key\"}" >/dev/null
    out=$(KEY=$key TAGS=$tags wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua "http://127.0.0.1:$port")
    # What the counts came to: a graceful stop writes every pending count;
    # the same database is then read by a fresh process.
    kill -TERM "$server"; wait "$server" 2>/dev/null || true
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=warn \
        "$bin" > "$work/log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    local counted
    # No match (analytics off) is a count of 0, not a failed pipeline.
    counted=$(curl -fs "http://127.0.0.1:$port/api/v2/analytics/verifications?granularity=minute" \
        -H "Authorization: Bearer $token" | { grep -o '"count":[0-9]*' || true; } | cut -d: -f2 \
        | awk '{s += $1} END {print s + 0}')
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    printf '%-8s %10s/s  not-VALID %s  p99 %8s  requests %s  counted %s\n' "$name" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '/not VALID/ {print $3}' <<<"$out")" \
        "$(awk '/^p99 latency/ {print $3}' <<<"$out")" "$(awk '/requests in/ {print $1}' <<<"$out")" "${counted:-0}"
}

for round in $(seq 1 "$rounds"); do
    echo "--- round $round"
    run off false ""
    run on true ""
    run tags true random
done
