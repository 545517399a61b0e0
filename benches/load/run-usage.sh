#!/usr/bin/env bash
# Warm verify of a plain key and of a metered key (credits and an auto-applied
# rate limit, both far from running out, so every answer is VALID), in turn,
# ROUNDS times: what settling usage costs on the hot path. 64 connections in all.
# With DATABASE_URL and PROCESSES, that many keymint processes share the database
# and each gets an equal share of the connections from a wrk of its own.
# Usage: benches/load/run-usage.sh SECONDS ROUNDS BINARY [DATABASE_URL PROCESSES]
# Needs wrk (apt-get install wrk).
set -euo pipefail
command -v wrk >/dev/null || { echo "run-usage: needs wrk (apt-get install wrk)" >&2; exit 1; }
cd "$(dirname "$0")/../.."
secs=$1 rounds=$2 bin=$3
work=$(mktemp -d)
url=${4:-sqlite://$work/db} processes=${5:-1}
servers=()
cleanup() { for s in "${servers[@]}"; do kill "$s" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for i in $(seq 1 "$processes"); do
    port=$((18280 + i))
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="$url" KEYMINT_LOG__LEVEL=warn \
        "$bin" > "$work/log$i" 2>&1 &
    servers+=($!)
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
base=http://127.0.0.1:18281
token=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
create() {
    curl -fs -X POST "$base/api/v2/api-keys" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "$1" | sed -E 's/.*"private_key":"([^"]+)".*/\1/'
}
plain=$(create '{"name":"plain"}')
metered=$(create '{"name":"metered","ratelimits":[{"name":"per-second","limit":1000000000,"duration_ms":1000}],"credits":{"remaining":1000000000000}}')
conns=$((64 / processes))
run() {
    local key=$1 pids=() i
    for i in $(seq 1 "$processes"); do
        KEY=$key wrk -t1 -c"$conns" -d"${secs}s" --latency -s benches/load/verify.lua \
            "http://127.0.0.1:$((18280 + i))" > "$work/wrk$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
    cat "$work"/wrk*
}
for key in $plain $metered; do
    curl -fs -X POST "$base/api/v2/api-keys/verify" -H 'Content-Type: application/json' -d "{\"key\":\"$key\"}" >/dev/null
done
for round in $(seq 1 "$rounds"); do
    # Alternate which goes first, so neither always runs on a just-loaded process.
    if [ $((round % 2)) -eq 1 ]; then order="plain metered"; else order="metered plain"; fi
    for kind in $order; do
        if [ "$kind" = plain ]; then key=$plain; else key=$metered; fi
        out=$(run "$key")
        printf 'round %s %-8s %9.0f/s  not-VALID %s  p99 %s ms (worst process)\n' "$round" "$kind" \
            "$(awk '/Requests\/sec/ {s += $2} END {print s}' <<<"$out")" \
            "$(awk '/not VALID/ {s += $3} END {print s}' <<<"$out")" \
            "$(awk '/^p99 latency/ {if ($3 > m) m = $3} END {print m}' <<<"$out")"
    done
done
curl -fs "$base/api/v2/api-keys?limit=2" -H "Authorization: Bearer $token" |
    grep -o '"credits":{"remaining":[0-9]*' | sed 's/^/after the run, metered key: /'
