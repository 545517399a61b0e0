#!/usr/bin/env bash
# Whether one organisation's hanging webhook endpoints delay another's
# deliveries (the second hardening round's scenario). Organisation X registers
# 20 endpoints that accept connections and never answer, with
# webhooks.timeout_seconds=TIMEOUT (default 5), and creates 40 keys:
# 800 deliveries, every one of which hangs until the timeout. Then, ROUNDS
# times (default 10), organisation Y (one healthy endpoint) creates a key, and
# the time from the create's answer to the healthy endpoint receiving
# key.created is printed; so is the same for a healthy endpoint of X itself.
# Usage: benches/load/run-webhook-fairness.sh BINARY [DATABASE_URL] [ROUNDS] [TIMEOUT]
# DATABASE_URL defaults to a fresh SQLite file; a postgres:// URL is used as is
# (its webhook tables should be empty). Needs python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1
work=$(mktemp -d)
db=${2:-sqlite://$work/db} rounds=${3:-10} timeout=${4:-5}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 8192

port=18394 base=http://127.0.0.1:18394
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="$db" KEYMINT_LOG__LEVEL=error \
    KEYMINT_WEBHOOKS__ALLOW_HTTP=true KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true \
    KEYMINT_WEBHOOKS__TIMEOUT_SECONDS="$timeout" KEYMINT_WEBHOOKS__MAX_PER_ORG=21 \
    "$bin" > "$work/log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
x=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)
y=$("$bin" dev-token --org 7d1c6a52-3f7e-4f43-9a52-0c6f54f5e0b1 --ttl 3600)

python3 - "$base" "$x" "$y" "$rounds" <<'PY'
import http.server, json, socket, statistics, sys, threading, time, urllib.request
base, x, y, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

# An endpoint that accepts every connection and never answers.
hang = socket.socket()
hang.bind(("127.0.0.1", 0))
hang.listen(4096)
held = []
def accept_forever():
    while True:
        conn, _ = hang.accept()
        held.append(conn)
threading.Thread(target=accept_forever, daemon=True).start()

arrivals = {}
class Healthy(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        arrivals[body["data"]["name"]] = time.monotonic()
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
healthy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
threading.Thread(target=healthy.serve_forever, daemon=True).start()

def post(token, path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))

hang_url = f"http://127.0.0.1:{hang.getsockname()[1]}/hooks"
ok_url = f"http://127.0.0.1:{healthy.server_address[1]}/hooks"
for _ in range(20):
    post(x, "/api/v2/webhooks", {"url": hang_url, "event_types": ["key.created"]})
for i in range(40):
    post(x, "/api/v2/api-keys", {"name": f"busy {i}"})
time.sleep(1)
print(f"organisation X: 20 hanging endpoints, 800 deliveries queued; the hanging endpoint has accepted {len(held)} connections", flush=True)
post(y, "/api/v2/webhooks", {"url": ok_url, "event_types": ["key.created"]})
post(x, "/api/v2/webhooks", {"url": ok_url, "event_types": ["key.created"]})

def measure(token, label):
    waits = []
    for i in range(rounds):
        name = f"{label} {i}"
        post(token, "/api/v2/api-keys", {"name": name})
        created = time.monotonic()
        deadline = created + 600
        while name not in arrivals and time.monotonic() < deadline:
            time.sleep(0.002)
        waits.append((arrivals.get(name, deadline) - created) * 1000)
        time.sleep(0.5)
    waits.sort()
    print(f"{label}: {rounds} deliveries, median {statistics.median(waits):.0f} ms, "
          f"max {waits[-1]:.0f} ms", flush=True)

measure(y, "another organisation's healthy endpoint")
measure(x, "the busy organisation's own healthy endpoint")
print(f"connections the hanging endpoint accepted in all: {len(held)}", flush=True)
PY
