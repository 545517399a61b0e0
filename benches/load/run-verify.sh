#!/usr/bin/env bash
# Verification benchmarks: warm verify against a trivial actix ceiling, cold
# verify against the raw argon2 rate, a 90/9/1 mixed load, and resident memory
# with 100 000 distinct keys cached. Needs wrk and hey (apt-get install wrk hey).
# Usage: benches/load/run-verify.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-20}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q --bin keymint --example ceiling
bin=./target/release/keymint
org=3c90c3cc-0d44-4b50-8888-8dd25736052a

# start_keymint PORT DB [ENV=VALUE ...]: runs keymint in the background, waits for readiness.
start_keymint() {
    local port=$1 db=$2; shift 2
    env KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/$db" \
        KEYMINT_LOG__LEVEL=warn "$@" "$bin" > "$work/server-$port.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.1; done
    echo "keymint did not start"; cat "$work/server-$port.log"; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$1/status"; echo; }
token=$("$bin" dev-token --org "$org" --ttl 7200)
export TOKEN=$token

echo "=== 1. ceiling: trivial actix JSON endpoint, wrk -t1 -c64 -d${secs}s"
./target/release/examples/ceiling 127.0.0.1:18090 & ceiling=$!; pids+=("$ceiling"); sleep 0.5
VERIFY_PATH=/verify KEY=sk_live_dummy wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua http://127.0.0.1:18090 \
    | grep -E "Requests/sec|p50|p99 |p99.9|Latency "
stop "$ceiling"

echo "=== 2. warm verify (one key, cached), default argon2, wrk -t1 -c64 -d${secs}s"
start_keymint 18080 a.db KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000
key=$(curl -fs -X POST http://127.0.0.1:18080/api/v2/api-keys -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"name":"warm"}' | sed -E 's/.*"private_key":"([^"]+)".*/\1/')
curl -fs -X POST http://127.0.0.1:18080/api/v2/api-keys/verify -H 'Content-Type: application/json' -d "{\"key\":\"$key\"}" >/dev/null
KEY=$key wrk -t1 -c64 -d"${secs}s" --latency -s benches/load/verify.lua http://127.0.0.1:18080 \
    | grep -E "Requests/sec|not VALID|p50|p99 |p99.9|Latency "

echo "=== 3. creating 3000+ keys at default argon2 for the cold runs"
OUT_FILE="$work/keys.txt" wrk -t1 -c16 -d30s -s benches/load/capture.lua http://127.0.0.1:18080 | grep -E "Requests/sec"
echo "keys: $(wc -l < "$work/keys.txt")"
stop "$server"

echo "=== 4. cold verify (every key distinct, none cached), wrk -t1 -c4 -d10s"
start_keymint 18080 a.db KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000
KEYS_FILE="$work/keys.txt" wrk -t1 -c4 -d10s --latency -s benches/load/verify.lua http://127.0.0.1:18080 \
    | grep -E "Requests/sec|not VALID|p50|p99 |Latency "
stop "$server"

echo "=== 5. mixed: ~90% warm verify, ~9% cold verify, ~1% create, ${secs}s, fresh process (cold keys uncached)"
start_keymint 18080 a.db KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000
curl -fs -X POST http://127.0.0.1:18080/api/v2/api-keys/verify -H 'Content-Type: application/json' -d "{\"key\":\"$key\"}" >/dev/null
KEYS_FILE="$work/keys.txt" DELAY_MS=25 wrk -t1 -c4 -d"${secs}s" --latency -s benches/load/verify.lua \
    http://127.0.0.1:18080 > "$work/cold.txt" &
cold=$!
hey -z "${secs}s" -c 2 -q 6 -m POST -T application/json -H "Authorization: Bearer $token" -d '{"name":"mixed"}' \
    http://127.0.0.1:18080/api/v2/api-keys > "$work/create.txt" &
create=$!
hey -z "${secs}s" -c 16 -q 68 -m POST -T application/json -d "{\"key\":\"$key\"}" \
    http://127.0.0.1:18080/api/v2/api-keys/verify > "$work/warm.txt"
wait "$cold" "$create"
echo "--- warm verify (hey):"; grep -E "Requests/sec|Status code|\[2|99%|95%|50% in|Error" "$work/warm.txt" || true
echo "--- cold verify (wrk):"; grep -E "requests in|Requests/sec|not VALID|p99 |Non-2xx" "$work/cold.txt" || true
echo "--- create (hey):"; grep -E "Requests/sec|Status code|\[2|\[4|\[5|99%|Error" "$work/create.txt" || true
stop "$server"

echo "=== 6. memory: 100 000 distinct keys verified and cached (cheap argon2 to create them quickly)"
for i in $(seq 1 100); do "$bin" dev-token --org "$(printf '00000000-0000-4000-8000-%012d' "$i")" --ttl 7200; done > "$work/tokens.txt"
start_keymint 18081 b.db KEYMINT_HASHING__MEMORY_KIB=64 KEYMINT_HASHING__ITERATIONS=1 KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=2000
# wrk runs for its whole duration even after the script stops its thread at the
# limit, so watch the captured keys and stop wrk once there are enough.
TOKENS_FILE="$work/tokens.txt" OUT_FILE="$work/keys100k.txt" wrk -t1 -c16 -d900s -s benches/load/capture_many.lua \
    http://127.0.0.1:18081 > /dev/null &
capture=$!
touch "$work/keys100k.txt"
while [ "$(wc -l < "$work/keys100k.txt")" -lt 100000 ]; do sleep 1; done
kill "$capture"; wait "$capture" 2>/dev/null || true
echo "keys: $(wc -l < "$work/keys100k.txt")"
echo -n "before verifying: "; rss "$server"
KEYS_FILE="$work/keys100k.txt" wrk -t1 -c16 -d30s -s benches/load/verify.lua http://127.0.0.1:18081 \
    | grep -E "requests in|Requests/sec|not VALID"
echo -n "after verifying 100 000 distinct keys: "; rss "$server"
stop "$server"
