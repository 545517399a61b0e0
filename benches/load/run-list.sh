#!/usr/bin/env bash
# What the key list's name search costs: GET /api/v2/api-keys (a page of 20)
# plain, with a name search that matches one key in ten, and with one that
# matches nothing (every key of the organisation is read and compared), on an
# organisation holding KEYS keys. Prints requests/s and p99 of each and the
# process's peak RSS.
# Usage: benches/load/run-list.sh SECONDS BINARY [KEYS] [CONNECTIONS] [DATABASE_URL]
# (DATABASE_URL: a PostgreSQL database to use, emptied first; SQLite otherwise.)
# Needs wrk, curl, python3.
set -euo pipefail
command -v wrk >/dev/null || { echo "run-list: needs wrk (apt-get install wrk)" >&2; exit 1; }
cd "$(dirname "$0")/../.."
secs=$1 bin=$2 keys=${3:-5000} conns=${4:-16} url=${5:-}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -n "$url" ]; then
    psql -q "$url" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
else
    url="sqlite://$work/db"
fi
port=18492 base=http://127.0.0.1:18492
# Cheap hashing: it only speeds up filling the organisation; listing never hashes.
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="$url" KEYMINT_LOG__LEVEL=error \
    KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=1000000 KEYMINT_HASHING__MEMORY_KIB=64 KEYMINT_HASHING__ITERATIONS=1 \
    "$bin" > "$work/log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)

python3 - "$port" "$TOKEN" "$keys" <<'PY'
import http.client, json, sys
port, token, keys = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(keys):
    name = f"Billing-Élan {i}" if i % 10 == 0 else f"worker-{i}"
    conn.request("POST", "/api/v2/api-keys", json.dumps({"name": name}),
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
PY

load() {
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency -H "Authorization: Bearer $TOKEN" \
        "$base/api/v2/api-keys?limit=20$2" > "$work/wrk"
    echo "$1: $(awk '/Requests\/sec/ {print $2}' "$work/wrk") lists/s, p99 $(awk '$1 == "99%" {print $2}' "$work/wrk")$(grep -o 'Non-2xx.*' "$work/wrk" | sed 's/^/, /')"
}
echo "$keys keys in one organisation, ${url%%:*}"
load "plain" ""
load "name matching 1 in 10 (billing-élan)" "&name=billing-%C3%A9lan"
load "name matching none" "&name=nothing-like-this"
echo "peak RSS: $(grep VmHWM /proc/$server/status | awk '{print $2, $3}')"
