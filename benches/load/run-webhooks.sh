#!/usr/bin/env bash
# What webhooks cost the write path: create throughput under wrk with no
# webhook, then with one webhook subscribed to key.created whose deliveries go
# to a local receiver (a threaded Python server answering 204), and how long
# the dispatcher takes to deliver every queued event after the load stops.
# Prints creates/s and p99 of both runs, the drain time, deliveries per
# second overall, and the process's peak RSS.
# Usage: benches/load/run-webhooks.sh SECONDS BINARY [CONNECTIONS]
# Needs wrk, curl, python3.
set -euo pipefail
command -v wrk >/dev/null || { echo "run-webhooks: needs wrk (apt-get install wrk)" >&2; exit 1; }
cd "$(dirname "$0")/../.."
secs=$1 bin=$2 conns=${3:-16}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - > "$work/receiver.log" 2>&1 <<'PY' &
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", 18490), Handler).serve_forever()
PY
pids+=($!)

port=18491 base=http://127.0.0.1:18491
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=error \
    KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=1000000 KEYMINT_WEBHOOKS__ALLOW_HTTP=true \
    KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true "$bin" > "$work/log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
export TOKEN

load() {
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency -s benches/load/create.lua "$base" > "$work/wrk-$1"
    echo "$1: $(awk '/Requests\/sec/ {print $2}' "$work/wrk-$1") creates/s, p99 $(awk '$1 == "99%" {print $2}' "$work/wrk-$1"), $(grep 'non-201' "$work/wrk-$1")"
}
count() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$work/db" "$1"; }

load "no webhook"
curl -fs -X POST "$base/api/v2/webhooks" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"url": "http://127.0.0.1:18490/hooks", "event_types": ["key.created"]}' > /dev/null
started=$(date +%s.%N)
load "one webhook"
stopped=$(date +%s.%N)
queued=$(count "select count(*) from webhook_deliveries")
while [ "$(count "select count(*) from webhook_deliveries where status = 'pending'")" -gt 0 ]; do sleep 0.2; done
drained=$(date +%s.%N)
echo "deliveries: $queued queued, $(count "select count(*) from webhook_deliveries where status = 'delivered'") delivered, drained $(echo "$drained - $stopped" | bc) s after the load stopped, $(echo "$queued / ($drained - $started)" | bc) deliveries/s overall"
echo "peak RSS: $(grep VmHWM /proc/$server/status | awk '{print $2, $3}')"
