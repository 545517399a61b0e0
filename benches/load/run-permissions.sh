#!/usr/bin/env bash
# Warm verify with and without a permission query, in turn, ROUNDS times, against
# one keymint (SQLite): what checking a query on the hot path costs. The key holds
# ten permissions; every response carries them.
# Usage: benches/load/run-permissions.sh SECONDS ROUNDS BINARY
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=$1 rounds=$2 bin=$3 port=18181
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=warn \
    "$bin" > "$work/log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
token=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
# Ten permissions, the query's names among the last: a realistic worst case.
permissions='["orders.read","orders.write","users.read","users.write","invoices.read","invoices.write","reports.read","reports.export","billing.read","billing.*"]'
key=$(curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "{\"name\":\"bench\",\"permissions\":$permissions}" |
    sed -E 's/.*"private_key":"([^"]+)".*/\1/')
query='billing.read AND (billing.refund OR admin) OR reports.export AND invoices.read'
curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys/verify" -H 'Content-Type: application/json' \
    -d "{\"key\":\"$key\"}" >/dev/null
for round in $(seq 1 "$rounds"); do
    # Alternate which goes first, so neither always runs on a just-loaded process.
    if [ $((round % 2)) -eq 1 ]; then order="plain query"; else order="query plain"; fi
    for kind in $order; do
        if [ "$kind" = query ]; then export PERMISSIONS=$query; else unset PERMISSIONS; fi
        out=$(KEY=$key wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua "http://127.0.0.1:$port")
        printf 'round %s %-6s %9s/s  not-VALID %s  p99 %s ms\n' "$round" "$kind" \
            "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '/not VALID/ {print $3}' <<<"$out")" \
            "$(awk '/^p99 latency/ {print $3}' <<<"$out")"
    done
done
